"""Exercise checks for chapter 7 (predictions and attention maps)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from flashtrade_lib.exercises import Feedback, register


def _expected_last_row(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    s = k @ q[-1] / math.sqrt(q.shape[-1])
    p = np.exp(s - s.max())
    return p / p.sum()


def _unscaled_last_row(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    s = k @ q[-1]  # forgot the 1/sqrt(d) scale
    p = np.exp(s - s.max())
    return p / p.sum()


@register(
    "ch07-last-row",
    title="The attention row of the last bar",
)
def _grade_last_row(answer: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function (q, k) -> weights, got {type(answer).__name__}")
    rng = np.random.default_rng(7)
    for n, d in ((5, 4), (40, 16)):
        q, k = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        want = _expected_last_row(q, k)
        got = np.asarray(answer(q, k), dtype=float)
        if got.shape != (n,):
            return Feedback(False, f"for N={n} return one weight per bar, shape ({n},); got {got.shape}")
        if not math.isclose(got.sum(), 1.0, rel_tol=1e-6):
            return Feedback(False, f"your weights sum to {got.sum():.4f}; a softmax row sums to 1.")
        if np.allclose(got, _unscaled_last_row(q, k), atol=1e-8):
            return Feedback(False, "close — but scores are scaled by 1/sqrt(d) before the softmax.")
        if not np.allclose(got, want, atol=1e-8):
            return Feedback(False, f"for N={n}, d={d} your weights differ from softmax(K q_last / sqrt(d)) "
                                   f"by up to {np.abs(got - want).max():.2e}.")
    return Feedback(True, "the last bar's row is softmax(K q_N / sqrt(d)); with a causal mask it is "
                          "unaffected, since the last bar may see every bar.")


def _expected_ic(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.corrcoef(pred, target)[0, 1])


@register(
    "ch07-ic",
    title="Information coefficient",
)
def _grade_ic(answer: Callable[[np.ndarray, np.ndarray], float]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function (pred, target) -> float, got {type(answer).__name__}")
    rng = np.random.default_rng(3)
    target = rng.standard_normal(500)
    for pred in (0.1 * target + rng.standard_normal(500), -target + 0.5 * rng.standard_normal(500),
                 1e-3 * (target + rng.standard_normal(500))):
        want, got = _expected_ic(pred, target), answer(pred, target)
        if not isinstance(got, (int, float, np.floating)) or not math.isfinite(got):
            return Feedback(False, f"return one finite number, got {got!r}")
        if abs(got - want) > 1e-9:
            return Feedback(False, f"you returned {got:.4f} but the correlation of the predictions with "
                                   f"the targets is {want:.4f}; the IC is the Pearson correlation "
                                   "(a directional hit rate is a different metric).")
    return Feedback(True, "the IC is the correlation of forecasts and outcomes; it ignores scale, so a "
                          "tiny but well-ordered forecast still scores.")
