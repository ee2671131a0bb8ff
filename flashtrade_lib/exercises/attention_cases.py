"""Test cases shared by the graders of the tiled forward (ch02) and backward (ch03).

Each case is one attention problem in float64 that catches one classic mistake:
``N`` not a multiple of the block, ``Nq != Nk``, causal masking, padding masks, fully
masked rows, logits of ±1e4, leading batch/head dimensions. The expected values come
from the library's naive attention — the dense formula, not any tiled solution.

:func:`score_matrix_peak` runs an answer under :mod:`tracemalloc` (NumPy reports its
buffers to it) and tells whether it ever held an ``Nq × Nk`` array: a tiled answer
needs a few ``block_q × block_k`` tiles, naive attention needs the whole matrix.
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from flashtrade_lib.attention.reference import causal_mask, naive_attention
from flashtrade_lib.exercises import Feedback


@dataclass(frozen=True)
class AttentionCase:
    name: str
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    block_q: int
    block_k: int
    causal: bool = False
    mask: np.ndarray | None = None

    def describe(self) -> str:
        mask = "none" if self.mask is None else f"shape {self.mask.shape}"
        return (f"{self.name}: q{self.q.shape}, k{self.k.shape}, v{self.v.shape}, "
                f"block_q={self.block_q}, block_k={self.block_k}, causal={self.causal}, mask={mask}")

    @property
    def scale(self) -> float:
        return 1.0 / math.sqrt(self.q.shape[-1])

    def allowed(self) -> np.ndarray:
        """Boolean (..., Nq, Nk): which scores take part (causal and mask combined)."""
        nq, nk = self.q.shape[-2], self.k.shape[-2]
        allowed = causal_mask(nq, nk) if self.causal else np.ones((nq, nk), dtype=bool)
        if self.mask is not None:
            allowed = allowed & self.mask
        return np.broadcast_to(allowed, self.q.shape[:-2] + (nq, nk))

    def expected(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(o, lse, p)`` from the dense formula; a row that may attend nothing has lse = -inf."""
        o, p = naive_attention(self.q, self.k, self.v, causal=self.causal, mask=self.mask,
                               return_weights=True)
        s = np.where(self.allowed(), self.q @ np.swapaxes(self.k, -1, -2) * self.scale, -np.inf)
        m = s.max(axis=-1)
        finite = np.isfinite(m)
        shift = np.where(finite, m, 0.0)
        with np.errstate(divide="ignore"):
            lse = np.where(finite, shift + np.log(np.exp(s - shift[..., None]).sum(axis=-1)), -np.inf)
        return o, lse, p


def _qkv(rng: np.random.Generator, lead: tuple[int, ...], nq: int, nk: int, d: int) -> tuple[np.ndarray, ...]:
    return (rng.standard_normal(lead + (nq, d)), rng.standard_normal(lead + (nk, d)),
            rng.standard_normal(lead + (nk, d)))


def attention_cases() -> list[AttentionCase]:
    """The random cases, from easiest to hardest (the first failing one is reported)."""
    rng = np.random.default_rng(2024)
    cases = [
        AttentionCase("blocks divide N", *_qkv(rng, (), 16, 16, 4), block_q=8, block_k=8),
        AttentionCase("N not a multiple of the blocks", *_qkv(rng, (), 37, 37, 8), block_q=16, block_k=8),
        AttentionCase("Nq != Nk", *_qkv(rng, (), 20, 45, 8), block_q=8, block_k=16),
        AttentionCase("blocks larger than N", *_qkv(rng, (), 5, 6, 4), block_q=16, block_k=16),
        AttentionCase("causal", *_qkv(rng, (), 33, 33, 8), block_q=8, block_k=16, causal=True),
        AttentionCase("causal, Nq != Nk", *_qkv(rng, (), 24, 40, 8), block_q=16, block_k=8, causal=True),
    ]
    padding = np.ones((1, 30), dtype=bool)
    padding[:, 25:] = False  # the last five keys are padding
    cases.append(AttentionCase("padding mask", *_qkv(rng, (), 30, 30, 8), block_q=8, block_k=8, mask=padding))
    holes = rng.random((25, 25)) < 0.6
    holes[[0, 7]] = False  # two queries that may attend nothing at all
    cases.append(AttentionCase("fully masked rows", *_qkv(rng, (), 25, 25, 8), block_q=8, block_k=8, mask=holes))
    q, k, v = _qkv(rng, (), 32, 32, 4)
    q *= 1e4 / np.abs(q @ k.T / 2.0).max()  # scores of size ±1e4: exp overflows without the max
    cases.append(AttentionCase("logits of ±1e4", q, k, v, block_q=8, block_k=8))
    lead_mask = np.ones((2, 1, 1, 23), dtype=bool)
    lead_mask[1, ..., 17:] = False  # batch element 1 is padded
    cases.append(AttentionCase("batch and head dimensions", *_qkv(rng, (2, 3), 19, 23, 8), block_q=8,
                               block_k=8, causal=True, mask=lead_mask))
    return cases


# The memory trap: big enough that an N×N float64 matrix (2 MiB) dwarfs the tiles.
TRAP_N, TRAP_D, TRAP_BLOCK = 512, 8, 64


def trap_case() -> AttentionCase:
    rng = np.random.default_rng(7)
    return AttentionCase("memory check", *_qkv(rng, (), TRAP_N, TRAP_N, TRAP_D), block_q=TRAP_BLOCK,
                         block_k=TRAP_BLOCK)


def score_matrix_peak(call: Callable[[], object], nq: int, nk: int, itemsize: int = 8) -> int | None:
    """Peak bytes allocated during ``call()`` if they reach half an ``nq × nk`` matrix, else None."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    extra = peak - before
    return extra if extra >= nq * nk * itemsize // 2 else None


def naive_attention_message(peak: int, case: AttentionCase) -> str:
    nq, nk = case.q.shape[-2], case.k.shape[-2]
    tile_kib = case.block_q * case.block_k * case.q.itemsize / 2**10
    return (f"your answer materialises a {nq}×{nk} score matrix: that is naive attention "
            f"(it held {peak / 2**20:.1f} MiB at once for {case.describe()}; a tile of "
            f"{case.block_q}×{case.block_k} scores is {tile_kib:.0f} KiB). Keep only one "
            "block_q × block_k tile of S (and P) alive at a time.")


def first_wrong_row(got: np.ndarray, want: np.ndarray) -> tuple[int, ...] | None:
    """Index (batch/head dims, then query) of the first output row that differs from ``want``."""
    scale = max(1.0, float(np.abs(want[np.isfinite(want)]).max(initial=0.0)))
    rows = [index for index in np.ndindex(want.shape[:-1]) if max_error(got[index], want[index]) > 1e-9 * scale]
    return rows[0] if rows else None


_CAUSAL_SLIPS = {  # a causal mask off by one, and what it looks like from the learner's side
    -1: "excludes the diagonal (key j < query i): a query may attend to itself, keep key j <= query i",
    1: "lets each query see the next key too (key j <= query i + 1): the diagonal is the last allowed key",
}


def causal_diagnosis(case: AttentionCase, o: np.ndarray) -> str:
    """Where a causal answer goes wrong: a mask off by one at the diagonal, or the first wrong row."""
    want = case.expected()[0]
    row = first_wrong_row(o, want)
    if row is None:
        return ""
    nq, nk = case.q.shape[-2], case.k.shape[-2]
    for shift, what in _CAUSAL_SLIPS.items():
        slipped = np.tri(nq, nk, shift, dtype=bool)
        mask = slipped if case.mask is None else (slipped & case.mask)
        alt = AttentionCase(case.name, case.q, case.k, case.v, case.block_q, case.block_k, False, mask)
        with np.errstate(all="ignore"):
            if max_error(o, alt.expected()[0]) <= 1e-9 * max(1.0, float(np.abs(want).max())):
                return f" Your output matches a causal mask that {what}."
    query = row[-1]
    where = ("the first row (query 0, which may attend only key 0)" if query == 0 else
             f"query row {query}, in the query tile starting at {query // case.block_q * case.block_q}, where "
             "the diagonal crosses the key tiles")
    return f" The first wrong row is {where}{' (batch/head ' + str(row[:-1]) + ')' if row[:-1] else ''}."


class _CountingKeys(np.ndarray):
    """Keys (and every slice or transpose of them) that count the matrix products they take part in."""

    products: list[int]

    def __array_finalize__(self, obj: object) -> None:
        self.products = getattr(obj, "products", [])

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: object, **kwargs: object) -> object:
        if ufunc is np.matmul and method == "__call__":
            self.products.append(1)
        plain = [x.view(np.ndarray) if isinstance(x, _CountingKeys) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, _CountingKeys) else x
                                  for x in kwargs["out"])  # type: ignore[union-attr]
        return getattr(ufunc, method)(*plain, **kwargs)


SKIP_N, SKIP_BLOCK = 64, 16  # a causal case of 4 × 4 tiles: 10 on or below the diagonal, 6 above


def causal_skipping_message(answer: Callable[..., object]) -> str | None:
    """None if a causal answer skips the key tiles above the diagonal (or cannot be told); else why it fails.

    The keys are an ndarray subclass that counts the products taken with them: one per score tile.
    """
    from flashtrade_lib.attention.reference import tile_schedule

    rng = np.random.default_rng(11)
    q, k, v = _qkv(rng, (), SKIP_N, SKIP_N, 8)
    keys = k.view(_CountingKeys)
    keys.products = []
    with np.errstate(all="ignore"):
        answer(q, keys, v, SKIP_BLOCK, SKIP_BLOCK, causal=True, mask=None)
    needed = len(list(tile_schedule(SKIP_N, SKIP_N, block_q=SKIP_BLOCK, block_k=SKIP_BLOCK, causal=True)))
    every = (SKIP_N // SKIP_BLOCK) ** 2
    if len(keys.products) < every:
        return None
    return (f"causal block skipping: with causal=True, N = {SKIP_N} and blocks of {SKIP_BLOCK} your answer "
            f"computed {len(keys.products)} score tiles, but only {needed} of the {every} tiles touch the "
            f"diagonal or lie below it — the other {every - needed} are entirely masked. Skip a key tile that "
            "starts at or after the query tile's end (and stop the key loop there).")


def max_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest |got − want|, counting -inf == -inf as equal and any other mismatch of infinities as inf."""
    both_inf = np.isinf(got) & np.isinf(want) & (np.sign(got) == np.sign(want))
    with np.errstate(invalid="ignore"):
        diff = np.where(both_inf, 0.0, np.abs(got - want))
    return float(np.nan_to_num(diff, nan=np.inf, posinf=np.inf).max()) if diff.size else 0.0


def error_text(err: float) -> str:
    """``max_error`` for a learner: a number, or what an infinite error means."""
    if math.isinf(err):
        return "an infinite amount (an inf, -inf or NaN where the reference has a finite value, or the other way round)"
    return f"{err:.3g}"


@contextmanager
def naming_the_case(where: str) -> Iterator[None]:
    """An exception raised by the answer carries the case it failed on (``check`` puts it in the message)."""
    try:
        yield
    except Exception as exc:
        if not hasattr(exc, "flashtrade_case"):
            exc.flashtrade_case = where  # type: ignore[attr-defined]
        raise


def grade_tiled(
    answer: object,
    *,
    signature: str,
    outputs: Sequence[str],
    prepare: Callable[[AttentionCase], tuple[tuple, tuple[np.ndarray, ...]]],
    diagnose: Callable[[list[str], Sequence[np.ndarray], AttentionCase], str],
    passed: str,
) -> Feedback:
    """Run a tiled answer on every case, then under the memory trap; the first failure is the feedback.

    ``prepare(case)`` gives the positional arguments of the answer (after ``causal``/``mask``
    come as keywords) and the expected outputs; ``diagnose(bad outputs, got, case)`` adds the
    likely cause.
    """
    if not callable(answer):
        return Feedback(False, f"expected a function {signature}.")
    cases = attention_cases()
    for number, case in enumerate(cases, start=1):
        args, want = prepare(case)
        where = f"case {number} of {len(cases)} ({case.describe()})"
        with np.errstate(all="ignore"), naming_the_case(where):
            got = answer(*(a.copy() if isinstance(a, np.ndarray) else a for a in args),
                         causal=case.causal, mask=case.mask)
        if not (isinstance(got, tuple) and len(got) == len(outputs)):
            return Feedback(False, f"{where}: return the tuple ({', '.join(outputs)}), got {type(got).__name__}.")
        got = [np.asarray(g, dtype=float) for g in got]
        errors = {}
        for name, g, w in zip(outputs, got, want, strict=True):
            if g.shape != w.shape:
                return Feedback(False, f"{where}: {name} must have shape {w.shape}, got {g.shape}.")
            errors[name] = max_error(g, w) / max(1.0, float(np.abs(w[np.isfinite(w)]).max(initial=0.0)))
        bad = [name for name, err in errors.items() if err > 1e-9]
        if bad:
            details = ", ".join(f"{name} differs by {error_text(errors[name])}" for name in bad)
            return Feedback(False, f"{where}: {details} (relative to the largest value of the float64 "
                                   f"reference; tolerance 1e-9).{diagnose(bad, got, case)}")
    trap = trap_case()
    args, _ = prepare(trap)
    peak = score_matrix_peak(lambda: answer(*args, causal=False, mask=None), trap.q.shape[-2], trap.k.shape[-2])
    if peak is not None:
        return Feedback(False, naive_attention_message(peak, trap))
    return Feedback(True, passed.format(cases=len(cases)))
