"""Exercise checks for chapter 2 (02_online_softmax): online statistics, merging them, the tile
update, the whole tiled forward, causal tiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from flashtrade_lib.attention.reference import tile_schedule
from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.exercises.attention_cases import (
    AttentionCase,
    causal_diagnosis,
    causal_skipping_message,
    error_text,
    grade_tiled,
    max_error,
    naming_the_case,
)


def _vectors() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [
        np.array([3.0]),
        np.array([1.0, 2.0, 3.0]),
        np.array([3.0, 2.0, 1.0]),  # the max comes first: no rescaling ever happens
        np.array([1000.0, 1001.0, 999.0]),  # exp(1000) overflows without the max shift
        np.array([-np.inf, 0.0, -np.inf, 1.0]),  # masked entries
        rng.standard_normal(257) * 10,
    ]


def _stats(x: np.ndarray) -> tuple[float, float]:
    m = float(np.max(x))
    return m, float(np.exp(x - m).sum())


# ------------------------------------------------------------- online statistics


@register(
    "ch02-online-softmax",
    title="One pass over a vector: running max m and running sum ℓ",
)
def _grade_online_stats(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function online_softmax_stats(x) -> (m, ell).")
    for x in _vectors():
        m_ref, l_ref = _stats(x)
        m, ell = answer(x)
        if not math.isclose(float(m), m_ref, rel_tol=1e-12):
            return Feedback(False, f"for x = {np.round(x[:4], 3)}… m should be max(x) = {m_ref:g}, got {m}.")
        if not math.isfinite(float(ell)):
            return Feedback(
                False,
                f"ℓ = {ell} for x = {x[:4]}…: subtract the running max before exp (overflow), and "
                "skip entries while the max is still −inf (−inf − (−inf) is NaN).",
            )
        if not math.isclose(float(ell), l_ref, rel_tol=1e-9):
            hint = " When m grows, the sum so far was taken against the old max: multiply it by exp(m_old − m_new)."
            return Feedback(
                False, f"for x = {np.round(x[:4], 3)}… ℓ should be Σ exp(x − m) = {l_ref:.6g}, got {float(ell):.6g}.{hint}"
            )
    return Feedback(True, "softmax(x) = exp(x − m) / ℓ, from a single pass over x.")


# ------------------------------------------------------------ merging two partials


@register(
    "ch02-merge-stats",
    title="Merge the (m, ℓ) statistics of two blocks (the rescaling identity)",
)
def _grade_merge(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function merge(a, b) -> (m, ell) with a = (m1, ell1), b = (m2, ell2).")
    vectors = _vectors()
    pairs = [(x[: len(x) // 2], x[len(x) // 2 :]) for x in vectors if len(x) > 1]
    pairs.append((np.array([-np.inf]), np.array([2.0])))  # an all-masked block
    pairs.append((np.array([5.0, 1.0]), np.array([-3.0])))
    for left, right in pairs:
        whole = np.concatenate([left, right])
        expected = _stats(whole)
        a = _stats(left) if np.isfinite(left).any() else (-math.inf, 0.0)
        b = _stats(right) if np.isfinite(right).any() else (-math.inf, 0.0)
        m, ell = answer(a, b)
        if not (math.isclose(float(m), expected[0]) and math.isclose(float(ell), expected[1], rel_tol=1e-9)):
            hint = ""
            if math.isclose(float(ell), a[1] + b[1]):
                hint = " Adding ℓ1 + ℓ2 mixes sums taken against different maxima: rescale each by exp(m_i − m)."
            elif not math.isfinite(float(ell)):
                hint = " A block with m = −inf and ℓ = 0 contributes nothing; avoid −inf − (−inf)."
            return Feedback(False, f"merge({a}, {b}) gave ({m}, {ell}), expected {expected}.{hint}")
    empty = answer((-math.inf, 0.0), (-math.inf, 0.0))
    if float(empty[1]) != 0.0:
        return Feedback(False, f"merging two empty blocks gave {empty}; expected (-inf, 0.0), not NaN.")
    return Feedback(True, "this is the update tiled_attention applies to every new key tile.")


# -------------------------------------------------------------- causal tile count


@register(
    "ch02-causal-tiles",
    title="How many tiles does causal tiled attention compute?",
)
def _grade_causal_tiles(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function causal_tiles(n, block_q, block_k) -> int.")
    for n, bq, bk in [(8, 4, 4), (10, 3, 3), (1024, 128, 128), (1000, 128, 64), (1000, 64, 128), (7, 16, 2)]:
        expected = len(list(tile_schedule(n, n, block_q=bq, block_k=bk, causal=True)))
        got = answer(n, bq, bk)
        if got != expected:
            full = -(-n // bq) * -(-n // bk)
            return Feedback(
                False,
                f"causal_tiles({n}, {bq}, {bk}) returned {got}; the tiled forward computes {expected} "
                f"of the {full} tiles. A query tile ending at q1 needs the key tiles that start below q1.",
            )
    return Feedback(True, "about half the tiles: causal attention costs about half the work.")


# ------------------------------------------------------------- one tile update


def _tile_update_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(label, scores seen so far, their values, the new tile's scores, its values)."""
    rng = np.random.default_rng(22)
    rows, dv = 4, 3
    old, new = rng.standard_normal((rows, 5)), rng.standard_normal((rows, 6))
    vo, vn = rng.standard_normal((5, dv)), rng.standard_normal((6, dv))
    raised = new + 5.0  # the new tile raises every row's max: the old sums must shrink
    masked = new.copy()
    masked[1] = -np.inf  # row 1 sees nothing new
    empty_old = old.copy()
    empty_old[2] = -np.inf  # row 2 saw nothing before this tile
    both = masked.copy()
    both[2] = -np.inf  # ...and nothing now: it must stay (m, ℓ, acc) = (-inf, 0, 0)
    return [
        ("first tile (m = -inf, ℓ = 0, acc = 0)", old[:, :0], vo[:0], new, vn),
        ("a second tile", old, vo, new, vn),
        ("the new tile raises the max", old, vo, raised, vn),
        ("a row with no allowed key in the tile", old, vo, masked, vn),
        ("a row with no allowed key so far", empty_old, vo, masked, vn),
        ("a row with no allowed key at all", empty_old, vo, both, vn),
        ("logits of ±1e4", old * 1e4, vo, new * 1e4, vn),
    ]


def _state(s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, ℓ, acc) of a block of scores computed directly, with the empty-row convention."""
    m = s.max(axis=1) if s.shape[1] else np.full(s.shape[0], -np.inf)
    shift = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - shift[:, None])
    return m, e.sum(axis=1), e @ v


@register(
    "ch02-tile-update",
    title="The online-softmax update when a new key tile arrives",
    references=("flashtrade_lib.attention.reference:tiled_attention",),
    hints=(
        "The new maximum is m_new = max(m, rowmax(s)). Everything accumulated so far was taken "
        "against the old m: by how much is each old term too large?",
        "alpha = exp(m - m_new) rescales both the old ℓ and the old acc; the new tile contributes "
        "p = exp(s - m_new) to ℓ (its row sums) and p @ v_tile to acc.",
        "A row whose m_new is still -inf has seen no key: shift it by 0 instead of m_new, so you "
        "never compute -inf - (-inf) = NaN.",
    ),
)
def _grade_tile_update(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function tile_update(m, ell, acc, s, v_tile) -> (m, ell, acc).")
    for label, s_old, v_old, s_new, v_new in _tile_update_cases():
        m, ell, acc = _state(s_old, v_old)
        want = _state(np.concatenate([s_old, s_new], axis=1), np.concatenate([v_old, v_new]))
        shapes = f"m{m.shape}, ell{ell.shape}, acc{acc.shape}, s{s_new.shape}, v_tile{v_new.shape}"
        with np.errstate(all="ignore"), naming_the_case(f"{label} ({shapes})"):
            got = answer(m.copy(), ell.copy(), acc.copy(), s_new.copy(), v_new.copy())
        if not (isinstance(got, tuple) and len(got) == 3):
            return Feedback(False, "return the three updated arrays as a tuple (m, ell, acc).")
        for name, g, w in zip(("m", "ell", "acc"), got, want, strict=True):
            g = np.asarray(g, dtype=float)
            if g.shape != w.shape:
                return Feedback(False, f"{label}: {name} must have shape {w.shape}, got {g.shape}.")
            err = max_error(g, w)
            if err > 1e-9 * max(1.0, float(np.abs(w[np.isfinite(w)]).max(initial=0.0))):
                why = ""
                if np.isnan(g).any():
                    why = " It holds NaN: a row with no allowed key yet computed -inf - (-inf)."
                elif name == "acc" and max_error(np.asarray(got[1], dtype=float), want[1]) < 1e-9:
                    why = (" ℓ is right but acc is not: acc was accumulated against the old max too, "
                           "so rescale it like ℓ.")
                return Feedback(False, f"{label}: {name} is off by up to {error_text(err)}.{why}")
    return Feedback(True, "that update, applied to every key tile, is the whole online softmax.")


# --------------------------------------------------------------- the tiled forward


@register(
    "ch02-tiled-forward",
    title="The whole tiled forward: my_tiled_attention(q, k, v, block_q, block_k, causal, mask)",
    references=("flashtrade_lib.attention.reference:tiled_attention",),
    hints=(
        "Two loops: query tiles outside, key tiles inside. For each query tile start m = -inf, "
        "ℓ = 0, acc = 0, apply your tile update to every key tile, then write o = acc / ℓ and "
        "lse = m + log ℓ for those rows.",
        "Masks: inside a tile, set the scores of disallowed (query, key) pairs to -inf before the "
        "update — causal allows key j <= query i, and `mask[..., q0:q1, k0:k1]` (after "
        "np.broadcast_to) gives the tile's part of the mask. Use `...` for the batch/head dims.",
        "A row that may attend nothing ends with ℓ = 0: give it o = 0 and lse = -inf (not NaN). "
        "Causal: a key tile that starts at or after the query tile's end can be skipped.",
    ),
)
def _grade_tiled_forward(answer: object) -> Feedback:
    def prepare(case: AttentionCase) -> tuple[tuple, tuple[np.ndarray, ...]]:
        o, lse, _ = case.expected()
        return (case.q, case.k, case.v, case.block_q, case.block_k), (o, lse)

    def diagnose(bad: list[str], got: Sequence[np.ndarray], case: AttentionCase) -> str:
        if any(np.isnan(g).any() for g in got):
            return " It holds NaN: a row that has seen no key yet computed -inf − (-inf)."
        if case.causal and "o" in bad and (found := causal_diagnosis(case, got[0])):
            return found
        if bad == ["o"]:
            return (" lse is right, so every row's max and ℓ are: the accumulated output is not — when the max "
                    "grows, acc must be rescaled by alpha like ℓ (does your tile_update pass its check?).")
        return ""

    feedback = grade_tiled(
        answer, signature="my_tiled_attention(q, k, v, block_q, block_k, causal=False, mask=None) -> (o, lse)",
        outputs=("o", "lse"), prepare=prepare, diagnose=diagnose,
        passed="all {cases} cases match the float64 reference, your answer never holds more than a "
               "tile of scores, and it skips the causal tiles above the diagonal: this is FlashAttention's forward.",
    )
    if not feedback.passed:
        return feedback
    not_skipped = causal_skipping_message(answer)  # type: ignore[arg-type]
    return Feedback(False, not_skipped) if not_skipped else feedback


# ---------------------------------------------------- fast memory for a number of K/V passes

# (n, d, passes): every case's answer has M >= 4d², where blocks_for_memory's key block is d.
# (1000, 16, 90): ⌈1000/12⌉ = 84 passes are enough — fewer than the 90 allowed.
_PASSES_CASES = [(4096, 64, 8), (1000, 32, 3), (4096, 128, 1), (1000, 16, 90), (10000, 64, 7), (300, 64, 7)]


def _kv_passes(n: int, d: int, m: int) -> int:
    from flashtrade_lib.attention.iomodel import blocks_for_memory

    return -(-n // blocks_for_memory(m, d)[0])


def _smallest_memory(n: int, d: int, passes: int) -> int:
    """The smallest M >= 4d² at which iomodel's blocks read K and V at most ``passes`` times (bisection:
    from 4d² up the key block is d, so the query block only grows with M)."""
    lo = 4 * d * d
    if _kv_passes(n, d, lo) <= passes:
        raise ValueError(f"case (n={n}, d={d}, passes={passes}) is already satisfied at M = 4d²: not in the exercise's regime")
    hi = 2 * lo
    while _kv_passes(n, d, hi) > passes:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # invariant: lo is not enough, hi is
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _kv_passes(n, d, mid) <= passes else (mid, hi)
    return hi


def _memory_diagnosis(n: int, d: int, passes: int, got: int, want: int) -> str:
    from flashtrade_lib.attention.iomodel import blocks_for_memory

    need = -(-n // passes)  # the query block the answer needs
    if got == need * (3 * d + 2):
        return (f" That leaves out the K and V tiles: {d} rows of d and of d_v, 2d² = {2 * d * d} elements, are on chip "
                "during every tile step too.")
    if got == need * 3 * d + 2 * d * d:
        return (f" That is short by 2·B_r = {2 * need}: each query row also keeps its running statistics m and ℓ "
                "on chip.")
    if got == (n // passes) * (3 * d + 2) + 2 * d * d and n % passes:
        return (f" That fits a query block of ⌊N/passes⌋ = {n // passes} rows, which reads K and V "
                f"{-(-n // (n // passes))} times: round N/passes up.")
    if got < 1:
        return ""
    try:
        block_q, _ = blocks_for_memory(got, d)
    except ValueError:
        return " At that M not even one query row fits."
    used = -(-n // block_q)
    if used > passes:
        return f" At M = {got:,} the query block is {block_q} rows, so K and V are read {used} times: too small."
    return f" M = {got:,} is enough, but not the smallest: {want:,} already gives a query block of {need} rows."


def _traffic_diagnosis(n: int, d: int, passes: int, m: int, got: int) -> str:
    from flashtrade_lib.attention.iomodel import blocks_for_memory

    block_q, _ = blocks_for_memory(m, d)
    used = -(-n // block_q)
    if used != passes and got == 2 * n * d + n + passes * 2 * n * d:
        return (f" You counted {passes} passes over K and V, but your query block of {block_q} rows needs only "
                f"⌈N/B_r⌉ = {used}: count the passes the blocks make, not the ones allowed.")
    if got == 2 * n * d + used * 2 * n * d:
        return " That is short by N: the log-sum-exp L, one number per query row, is written for the backward too."
    if got == 2 * n * d + n + 2 * n * d:
        return " That reads K and V once; they are read once per query tile, ⌈N/B_r⌉ times."
    return ""


@register(
    "ch02-memory-for-passes",
    title="The fast memory M that reads K and V at most p times, and the traffic there",
    references=("flashtrade_lib.attention.iomodel:blocks_for_memory",
                "flashtrade_lib.attention.iomodel:tiled_attention_io",
                "flashtrade_lib.attention.iomodel:tiled_io_for_memory",
                "flashtrade_lib.attention.iomodel:fast_memory_needed"),
    hints=(
        "A tile step holds, for each of the B_r query rows, its Q row (d), its score row (B_c), its output row "
        "(d_v) and m, ℓ (2 numbers); and the K and V tiles, B_c rows of d and d_v. From M = 4d² on, B_c = d.",
        "K and V are read once per query tile, ⌈N/B_r⌉ times. At most `passes` times means B_r ≥ N/passes, "
        "rounded up; then M is what a tile step with that B_r holds.",
        "Traffic: Q is read once, K and V once per query tile, O written once and L (one number per row) "
        "written once. Count the passes your B_r makes — it can be fewer than `passes`.",
    ),
)
def _grade_memory_for_passes(answer: object) -> Feedback:
    from flashtrade_lib.attention.iomodel import tiled_io_for_memory

    if not callable(answer):
        return Feedback(False, "expected a function memory_for_passes(n, d, passes) -> (m, traffic).")
    for n, d, passes in _PASSES_CASES:
        where = f"memory_for_passes(n={n}, d={d}, passes={passes})"
        with naming_the_case(where):
            got = answer(n, d, passes)
        try:
            m, traffic = (int(x) for x in got)
        except (TypeError, ValueError):
            return Feedback(False, f"{where} returned {got!r}: expected a pair of integers (m, traffic).")
        want_m = _smallest_memory(n, d, passes)
        if m != want_m:
            return Feedback(False, f"{where}: M = {m:,} elements, expected {want_m:,}."
                                   f"{_memory_diagnosis(n, d, passes, m, want_m)}")
        io = tiled_io_for_memory(n, d, want_m)
        if traffic != io.total:
            return Feedback(False, f"{where}: M is right, but the traffic is {traffic:,} elements, expected "
                                   f"{io.total:,} ({io.reads:,} reads + {io.writes:,} writes)."
                                   f"{_traffic_diagnosis(n, d, passes, want_m, traffic)}")
    n, d = 4096, 64
    one, eight = _smallest_memory(n, d, 1), _smallest_memory(n, d, 8)
    return Feedback(True, f"e.g. N = {n}, d = {d}: reading K and V once takes M = {one:,} elements, eight times "
                          f"only {eight:,} — {one / eight:.1f}× less on-chip memory for "
                          f"{tiled_io_for_memory(n, d, eight).total / tiled_io_for_memory(n, d, one).total:.1f}× "
                          "the traffic: M buys fewer passes, as Θ(N²d²/M) says.")
