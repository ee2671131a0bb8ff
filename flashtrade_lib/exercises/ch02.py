"""Exercise checks for chapter 2 (02_online_softmax): online statistics, merging them, causal tiles."""

from __future__ import annotations

import math

import numpy as np

from flashtrade_lib.attention.reference import tile_schedule
from flashtrade_lib.exercises import Feedback, register


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


def _online_stats_solution(x: np.ndarray) -> tuple[float, float]:
    m, ell = -math.inf, 0.0
    for xi in x:  # one pass: rescale the old sum whenever the max grows
        m_new = max(m, float(xi))
        if m_new == -math.inf:  # only masked (-inf) entries so far: nothing to add
            continue
        ell = ell * math.exp(m - m_new) + math.exp(float(xi) - m_new)
        m = m_new
    return m, ell


def _online_stats_wrong(x: np.ndarray) -> tuple[float, float]:
    m, ell = -math.inf, 0.0
    for xi in x:
        m = max(m, float(xi))
        ell = ell + math.exp(float(xi) - m)  # forgets to rescale the old terms
    return m, ell


@register(
    "ch02-online-softmax",
    title="One pass over a vector: running max m and running sum ℓ",
    solution=lambda: _online_stats_solution,
    wrong=lambda: _online_stats_wrong,
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


def _merge_solution(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    (m1, l1), (m2, l2) = a, b
    m = max(m1, m2)
    if m == -math.inf:  # both halves empty (fully masked)
        return m, 0.0
    return m, l1 * math.exp(m1 - m) + l2 * math.exp(m2 - m)


def _merge_wrong(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return max(a[0], b[0]), a[1] + b[1]


@register(
    "ch02-merge-stats",
    title="Merge the (m, ℓ) statistics of two blocks (the rescaling identity)",
    solution=lambda: _merge_solution,
    wrong=lambda: _merge_wrong,
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


def _causal_tiles_solution(n: int, block_q: int, block_k: int) -> int:
    total = 0
    for q0 in range(0, n, block_q):
        q1 = min(q0 + block_q, n)
        total += -(-q1 // block_k)  # key tiles starting below q1: ceil(q1 / block_k)
    return total


def _causal_tiles_wrong(n: int, block_q: int, block_k: int) -> int:
    t = -(-n // block_q)
    return t * (t + 1) // 2  # right only when block_q == block_k


@register(
    "ch02-causal-tiles",
    title="How many tiles does causal tiled attention compute?",
    solution=lambda: _causal_tiles_solution,
    wrong=lambda: _causal_tiles_wrong,
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
