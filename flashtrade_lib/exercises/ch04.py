"""Exercise checks for chapter 4 (04_gpu_kernels): counting work, counting programs, and the
online-softmax lines of a Triton forward kernel."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import (
    AttentionCase,
    error_text,
    max_error,
    naming_the_case,
)

_SHAPES = [(1, 1, 1024, 64), (4, 16, 2048, 128), (2, 8, 1000, 64), (1, 32, 16384, 128), (3, 5, 77, 24)]


def _matmul_flops(m: int, k: int, n: int) -> float:
    """An (m×k) @ (k×n) product: m·n dot products of length k, each k multiplies and k adds."""
    return 2.0 * m * k * n


def _expected_fwd_flops(b: int, h: int, n: int, d: int, causal: bool) -> float:
    per_head = _matmul_flops(n, d, n) + _matmul_flops(n, n, d)  # S = Q Kᵀ, then O = P V
    return b * h * per_head / (2 if causal else 1)  # causal: about half of S is never computed


@register(
    "ch04-flops",
    title="FLOPs of the attention forward pass",
)
def _grade_flops(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function fwd_flops(batch, heads, n, d, causal) -> float.")
    for b, h, n, d in _SHAPES:
        for causal in (False, True):
            want = _expected_fwd_flops(b, h, n, d, causal)
            got = answer(b, h, n, d, causal)
            if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-9):
                hint = ""
                if causal and isinstance(got, (int, float)) and math.isclose(got, 2 * want, rel_tol=1e-9):
                    hint = " With causal=True only the lower triangle of S is needed: halve the count."
                elif isinstance(got, (int, float)) and math.isclose(got, want / 2, rel_tol=1e-9):
                    hint = " Count a multiply-add as 2 FLOPs, and there are two matmuls (Q Kᵀ and P V)."
                return Feedback(
                    False,
                    f"for batch={b}, heads={h}, N={n}, d={d}, causal={causal} you gave {got!r}, "
                    f"expected {want:.6g}.{hint}",
                )
    return Feedback(True, "4·B·H·N²·d, halved when causal — the count every FlashAttention paper uses.")


def _expected_grid(batch: int, heads: int, n: int, block_m: int) -> tuple[int, int]:
    return (-(-n // block_m), batch * heads)


@register(
    "ch04-grid",
    title="How many programs does the forward kernel launch?",
)
def _grade_grid(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function grid(batch, heads, n, block_m) -> (tiles, batch*heads).")
    for batch, heads, n, block_m in [(2, 8, 1024, 128), (1, 4, 1000, 128), (3, 2, 1, 64), (4, 16, 4097, 64)]:
        want = _expected_grid(batch, heads, n, block_m)
        got = answer(batch, heads, n, block_m)
        if tuple(got) != want:
            hint = ""
            if tuple(got)[0] == n // block_m and n % block_m:
                hint = (" The last, partial tile of queries needs a program too (rounding down drops "
                        f"{n % block_m} queries): use ceil division, triton.cdiv(n, block_m).")
            elif tuple(got)[1] != batch * heads:
                hint = " Every (batch, head) pair gets its own column of programs: the second axis is batch·heads."
            return Feedback(False, f"for batch={batch}, heads={heads}, N={n}, BLOCK_M={block_m} you gave "
                                   f"{tuple(got)}, expected {want}.{hint}")
    return Feedback(True, "one program per query tile (rounded up) per (batch, head) — exactly _attn_fwd's grid.")


# ------------------------------------------------------------ the kernel's inner loop

LOG2E = 1.4426950408889634  # the kernel keeps scores in base-2 units: exp(x) = 2^(x·log2 e)

# (batch·heads, Nq, Nk, d, causal, BLOCK_M, BLOCK_N): odd N, Nq != Nk, causal and not.
_KERNEL_CASES = [
    (2, 33, 33, 16, False, 16, 16),
    (2, 33, 33, 16, True, 16, 16),
    (1, 20, 45, 32, False, 16, 32),
    (3, 50, 50, 16, True, 32, 16),
    (2, 7, 7, 16, True, 16, 16),
]


@contextmanager
def triton_interpreter(on: bool = True) -> Iterator[None]:
    """``TRITON_INTERPRET=1`` for the duration (Triton reads it when a kernel is defined *and* launched)."""
    saved = os.environ.get("TRITON_INTERPRET")
    if on:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved


def _launch(kernel: object, q, k, v, causal: bool, block_m: int, block_n: int,  # noqa: ANN001 — torch tensors
            scale: float | None = None):
    """The host side of the exercise (given to the learner): allocate O and L, launch the grid."""
    import torch

    bh, nq, d = q.shape
    nk = k.shape[1]
    o = torch.empty_like(q)
    lse = torch.empty((bh, nq), dtype=torch.float32, device=q.device)
    grid = (-(-nq // block_m), bh)
    kernel[grid](q, k, v, o, lse, nq, nk, LOG2E * (d**-0.5 if scale is None else scale),  # type: ignore[index]
                 CAUSAL=causal, HEAD_DIM=d, BLOCK_M=block_m, BLOCK_N=block_n)
    return o, lse


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal within the kernel's float32 tolerance, on the rows where ``want`` is defined."""
    rows = np.isfinite(want).all(axis=-1)
    return bool(rows.any()) and max_error(got[rows], want[rows]) <= 2e-4 * max(1.0, float(np.abs(want[rows]).max()))


def _last_tile_only(case: AttentionCase) -> np.ndarray:
    """O when every tile throws away the ones before it (alpha = 0: the max ``m_i`` is never carried)."""
    nq, nk = case.q.shape[-2], case.k.shape[-2]
    allowed = np.zeros((nq, nk), dtype=bool)
    for i in range(nq):
        stop = min((i // case.block_q + 1) * case.block_q, nk) if case.causal else nk
        start = (stop - 1) // case.block_k * case.block_k
        allowed[i, start:stop] = True
    stale = AttentionCase(case.name, case.q, case.k, case.v, case.block_q, case.block_k, case.causal, allowed)
    with np.errstate(all="ignore"):
        o, _, _ = stale.expected()
    o[~stale.allowed().any(axis=-1)] = np.nan  # rows that see no key in their last tile: 0 / 0 in the kernel
    return o


def _diagnose(case: AttentionCase, got: dict[str, np.ndarray], bad: list[str]) -> str:
    """The likely mistake behind a wrong O or L, from the pattern of the error (as the NumPy checks do)."""
    o = got["O"]
    if np.isnan(o).all():
        return " Every value is NaN: m_i, l_i and acc never changed, so O = 0 / 0 — fill in the update."
    if bad == ["O"]:
        return (" L is right but O is not: the row sums l_i are rescaled correctly, the accumulator is not — "
                "when the max grows, acc must be multiplied by alpha too (acc * alpha[:, None]).")
    base_e = AttentionCase(case.name, case.q * LOG2E, case.k, case.v, case.block_q, case.block_k, case.causal)
    if _close(o, base_e.expected()[0]):
        return (" O is softmax(log2(e)·S)·V — the pattern of tl.exp applied to scores that are already in "
                "base-2 units (qk_scale holds log2 e): use tl.math.exp2 for alpha and p.")
    if _close(o, _last_tile_only(case)):
        return (" O is the attention over each row's last key tile only: alpha = exp2(m_i − m_new) is 0 at "
                "every tile because m_i never changes — carry the max into the next tile with m_i = m_new.")
    if np.isnan(o).any():
        return " Some values are NaN: check that every row's max comes from tl.maximum(m_i, tl.max(s, 1))."
    return ""


@register(
    "ch04-kernel-inner-loop",
    title="Fill in the online-softmax lines of a Triton forward kernel",
    references=("flashtrade_lib.kernels.flash_attention:_attn_fwd_inner",
                "flashtrade_lib.kernels.flash_attention:_attn_fwd",
                "flashtrade_lib.kernels.flash_attention:flash_attention_forward"),
    hints=(
        "The six lines are chapter 2's tile update written with tl.*: m_new from tl.maximum and "
        "tl.max(s, 1); alpha and p from tl.math.exp2 (s is already in base-2 units).",
        "Broadcast per-row vectors against the tile with [:, None]: s - m_new[:, None], "
        "acc * alpha[:, None]. Row sums are tl.sum(p, 1); the tile product is tl.dot(p, v).",
        "End the iteration by carrying the new max into the next tile: m_i = m_new. Nothing "
        "else changes: the loads before and the stores after the loop are given.",
    ),
)
def _grade_kernel(answer: object) -> Feedback:
    if not (hasattr(answer, "fn") and hasattr(answer, "__getitem__")):
        return Feedback(False, "expected the @triton.jit kernel my_attn_fwd itself (not called).")
    import torch
    from triton.runtime.interpreter import InterpretedFunction

    interpreted = isinstance(answer, InterpretedFunction)
    if not interpreted and not torch.cuda.is_available():
        return Feedback(False, "this kernel was compiled for a GPU but there is none: set "
                               "os.environ['TRITON_INTERPRET'] = '1' before the cell that defines it "
                               "(the chapter's parameters cell does), then re-run that cell.")
    device = "cpu" if interpreted else "cuda"
    rng = np.random.default_rng(4)
    for number, (bh, nq, nk, d, causal, bm, bn) in enumerate(_KERNEL_CASES, start=1):
        q64, k64, v64 = (rng.standard_normal((bh, n, d)) for n in (nq, nk, nk))
        case = AttentionCase(f"kernel case {number} of {len(_KERNEL_CASES)}", q64, k64, v64, bm, bn, causal)
        o_ref, lse_ref, _ = case.expected()
        q, k, v = (torch.tensor(x, dtype=torch.float32, device=device) for x in (q64, k64, v64))
        where = f"{case.describe().replace('block_q', 'BLOCK_M').replace('block_k', 'BLOCK_N')}, float32"
        with np.errstate(all="ignore"), triton_interpreter(on=interpreted), naming_the_case(where):
            o, lse = _launch(answer, q, k, v, causal, bm, bn)
        got = {"O": o.double().cpu().numpy(), "L": lse.double().cpu().numpy()}
        want = {"O": o_ref, "L": lse_ref}
        tol = {name: 2e-4 * max(1.0, float(np.abs(w).max())) for name, w in want.items()}
        err = {name: max_error(got[name], want[name]) for name in got}
        bad = [name for name in ("O", "L") if err[name] > tol[name]]
        if bad:
            name = bad[0]
            return Feedback(False, f"{where}: {name} differs from the float64 reference by up to "
                                   f"{error_text(err[name])} (tolerance {tol[name]:.1g}).{_diagnose(case, got, bad)}")
    mode = "under Triton's interpreter" if interpreted else "compiled on the GPU"
    return Feedback(True, f"your kernel matches the reference on {len(_KERNEL_CASES)} cases ({mode}): "
                          "compare it with _attn_fwd_inner below.")


# ------------------------------------------------------------ the backward's preprocess kernel

# (batch·heads, N, d, BLOCK_M): a partial last tile, several heads, one tile, a row count below the block
_PREPROCESS_CASES = [(2, 33, 16, 16), (3, 50, 32, 16), (2, 64, 16, 32), (1, 7, 16, 16)]
_PAD = 64  # rows of sentinel after each buffer: a store past the end shows, a load past it stays in bounds


def _launch_preprocess(kernel: object, o, do, block_m: int):  # noqa: ANN001, ANN202 — torch tensors
    """The host side (given to the learner): D as NaN, padded with a sentinel, and one program per row tile."""
    import torch

    bh, n, d = o.shape
    flat = [torch.cat([t.reshape(bh * n, d), torch.full((_PAD, d), float("nan"), device=t.device)]) for t in (o, do)]
    delta = torch.full((bh * n + _PAD,), float("nan"), dtype=torch.float32, device=o.device)
    kernel[(-(-n // block_m), bh)](flat[0], flat[1], delta, n, HEAD_DIM=d, BLOCK_M=block_m)  # type: ignore[index]
    return delta[:bh * n].reshape(bh, n), delta[bh * n:]


def _column_sums(product: np.ndarray, block_m: int) -> np.ndarray:
    """What ``tl.sum(o * do, 0)`` stores when ``HEAD_DIM == BLOCK_M``: each tile's sums over its rows, per column."""
    bh, n, d = product.shape
    out = np.full((bh, n), np.nan)
    for t0 in range(0, n, block_m):
        rows = min(block_m, n - t0)
        out[:, t0:t0 + rows] = product[:, t0:t0 + block_m].sum(axis=1)[:, :rows]
    return out


def _preprocess_diagnosis(got: np.ndarray, want: np.ndarray, block_m: int, product: np.ndarray) -> str:
    bh, n = want.shape
    if product.shape[-1] == block_m and np.allclose(got, _column_sums(product, block_m), rtol=1e-5, atol=1e-5):
        return (" Each D holds a column's sum over the tile's rows: sum over the head dimension, axis 1 of the "
                "[BLOCK_M, HEAD_DIM] tile — one number per row.")
    unwritten = np.isnan(got)
    if unwritten.all():
        return " No row of D was written: load this tile's rows of O and dO, and tl.store their row sums into D."
    if bh > 1 and not unwritten[0].any() and unwritten[1:].all():
        return " Only the first (batch, head)'s rows of D were written: store at D + bh * N_Q + the row offsets."
    if unwritten.any():
        first = tuple(int(i) for i in np.argwhere(unwritten)[0])
        if not unwritten[:, :min(block_m, n)].any():
            return (f" Rows from BLOCK_M = {block_m} on were never written (first: head {first[0]}, row {first[1]}): "
                    "every program wrote the first tile — offset the rows by start_m * BLOCK_M.")
        return f" Row {first[1]} of head {first[0]} was never written: does the grid of programs cover every row?"
    if bh > 1 and np.allclose(got, np.broadcast_to(want[0], want.shape), rtol=1e-5, atol=1e-6):
        return (" Every (batch, head) got the first one's D: offset O and dO by bh * N_Q * HEAD_DIM, and D by "
                "bh * N_Q.")
    return ""


@register(
    "ch04-bwd-preprocess",
    title="The backward's first kernel: D = rowsum(dO ∘ O) in Triton",
    references=("flashtrade_lib.kernels.flash_attention:_attn_bwd_preprocess",
                "flashtrade_lib.kernels.flash_attention:flash_attention_backward"),
    hints=(
        "One program owns BLOCK_M rows of one (batch, head): its rows are start_m * BLOCK_M + tl.arange(0, "
        "BLOCK_M), its columns tl.arange(0, HEAD_DIM); row r of head bh starts at (bh * N_Q + r) * HEAD_DIM.",
        "Load both tiles as [BLOCK_M, HEAD_DIM] blocks with a mask on the rows (offs_m < N_Q, broadcast with "
        "[:, None]) and other=0.0; convert to tl.float32 before multiplying.",
        "D of a row is tl.sum(o * do, 1) — one number per row. Store it at D + bh * N_Q + offs_m with the row "
        "mask, so the last, partial tile writes nothing past N_Q.",
    ),
)
def _grade_bwd_preprocess(answer: object) -> Feedback:
    if not (hasattr(answer, "fn") and hasattr(answer, "__getitem__")):
        return Feedback(False, "expected the @triton.jit kernel my_bwd_preprocess itself (not called).")
    import torch
    from triton.runtime.interpreter import InterpretedFunction

    interpreted = isinstance(answer, InterpretedFunction)
    if not interpreted and not torch.cuda.is_available():
        return Feedback(False, "this kernel was compiled for a GPU but there is none: set "
                               "os.environ['TRITON_INTERPRET'] = '1' before the cell that defines it "
                               "(the chapter's parameters cell does), then re-run that cell.")
    device = "cpu" if interpreted else "cuda"
    rng = np.random.default_rng(5)
    for number, (bh, n, d, block_m) in enumerate(_PREPROCESS_CASES, start=1):
        o64, do64 = (rng.standard_normal((bh, n, d)) for _ in range(2))
        want = (o64 * do64).sum(axis=-1)
        o, do = (torch.tensor(x, dtype=torch.float32, device=device) for x in (o64, do64))
        where = (f"preprocess case {number} of {len(_PREPROCESS_CASES)} (batch·heads = {bh}, N = {n}, d = {d}, "
                 f"BLOCK_M = {block_m}, float32)")
        with np.errstate(all="ignore"), triton_interpreter(on=interpreted), naming_the_case(where):
            delta, pad = _launch_preprocess(answer, o, do, block_m)
        got = delta.double().cpu().numpy()
        if not torch.isnan(pad).all():
            return Feedback(False, f"{where}: your kernel wrote past the end of D (the rows after N_Q of the last "
                                   "head): mask the store with offs_m < N_Q.")
        err = max_error(got, want)
        tol = 1e-5 * max(1.0, float(np.abs(want).max()))
        if err > tol:
            return Feedback(False, f"{where}: D differs from rowsum(dO ∘ O) by up to {error_text(err)} (tolerance "
                                   f"{tol:.1g}).{_preprocess_diagnosis(got, want, block_m, o64 * do64)}")
    mode = "under Triton's interpreter" if interpreted else "compiled on the GPU"
    return Feedback(True, f"D matches on {len(_PREPROCESS_CASES)} cases ({mode}): O(N) work and memory before the "
                          "two tile loops, which then read one number per row instead of a row of P.")
