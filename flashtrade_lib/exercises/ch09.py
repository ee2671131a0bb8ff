"""Exercise checks for chapter 9 (09_long_context): how long must a context be, was the echo learned, is a gain real?"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from flashtrade_lib.exercises import Feedback, register

_CASES = [(16, 1), (16, 4), (96, 24), (1008, 1), (1008, 24), (50, 50)]


def _expected_lookback(lag: int, horizon: int) -> int:
    # the h-bar label of bar t is r_{t+1} + ... + r_{t+h}; its echo part is
    # c·(r_{t+1-L} + ... + r_{t+h-L}); a window of `lookback` bars ending at t holds
    # bars t-lookback+1 .. t, so it holds the oldest term r_{t+1-L} iff lookback >= L.
    return lag


@register(
    "ch09-lookback-needed",
    title="How many bars must the lookback cover to see the planted lag at horizon h?",
)
def _grade_lookback(answer: Callable[[int, int], int]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function lookback_needed(lag, horizon), got {type(answer).__name__}.")
    for lag, h in _CASES:
        got, want = answer(lag, h), _expected_lookback(lag, h)
        if got == want:
            continue
        if got == want - 1:
            hint = ("off by one: a window of `lookback` bars ending at the decision bar t holds "
                    "bars t-lookback+1 .. t, and the oldest echoed return is r_{t+1-L}.")
        elif got == lag + h or got == lag + h - 1:
            hint = ("the label reaches h bars into the future, but the echo of r_{t+k} is r_{t+k-L}: "
                    "the newest needed bar is t+h-L (already in the past), the oldest t+1-L.")
        elif got == lag - h + 1:
            hint = ("that lookback sees only the newest echoed return r_{t+h-L}; the oracle needs "
                    "all h of them, down to r_{t+1-L}.")
        else:
            hint = "write out which bars the h-bar label's echo part uses, then which bars the window holds."
        return Feedback(False, f"for lag={lag}, horizon={h} you said {got}, the answer is {want}. {hint}")
    return Feedback(True, "the window must reach back to r_{t+1-L}: lookback >= L, whatever the "
                          "horizon (as long as h <= L, otherwise no forecast made at t can use the echo fully).")


def _fold_interval(diffs: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """Mean of the fold means and the half-width of its 95 % t interval (folds − 1 df)."""
    from scipy.stats import t as student_t

    d, g = np.asarray(diffs, dtype=float), np.asarray(folds)
    means = np.array([d[g == k].mean() for k in np.unique(g)])
    half = float(student_t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means)))
    return float(means.mean()), half


def _expected_significant(diffs: np.ndarray, folds: np.ndarray) -> bool:
    mean, half = _fold_interval(diffs, folds)
    return bool(abs(mean) > half)


_FOLDS = np.array([0, 0, 1, 1, 2, 2])  # 3 folds × 2 seeds: runs of one fold share their test bars
_DIFFS = {
    "large, consistent gain": np.array([0.30, 0.28, 0.35, 0.31, 0.29, 0.33]),
    "positive mean, noisy": np.array([0.04, -0.03, 0.06, -0.02, 0.05, -0.04]),
    "small but very consistent gain": np.array([0.011, 0.012, 0.010, 0.011, 0.012, 0.010]),
    "seeds agree within folds that disagree": np.array([0.05, 0.05, -0.01, -0.01, 0.04, 0.04]),
    "one lucky run": np.array([0.20, -0.01, 0.00, -0.02, 0.01, -0.01]),
    "consistent loss": np.array([-0.05, -0.06, -0.04, -0.05, -0.06, -0.05]),
}


@register(
    "ch09-significant",
    title="Is this skill difference significant, counting folds (not runs) as the independent draws?",
    hints=("Runs of one fold share their test bars: average the seeds of each fold first.",
           "With G fold means, use Student's t with G − 1 degrees of freedom, not 1.96.",
           "scipy.stats.t.ppf(0.975, G - 1) gives the quantile."),
)
def _grade_significant(answer: Callable[[np.ndarray, np.ndarray], bool]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function is_significant(diffs, folds), got {type(answer).__name__}.")
    for name, d in _DIFFS.items():
        got, want = bool(answer(d.copy(), _FOLDS.copy())), _expected_significant(d, _FOLDS)
        if got != want:
            mean, half = _fold_interval(d, _FOLDS)
            return Feedback(False, (
                f"case '{name}' (differences {np.round(d, 3).tolist()}, folds {_FOLDS.tolist()}): you said {got}, "
                f"but the 95 % interval over the fold means is {mean:+.3f} ± {half:.3f}, which "
                f"{'excludes' if want else 'contains'} 0. The runs of one fold are not independent: average "
                "them per fold, then use t with folds − 1 degrees of freedom."))
    return Feedback(True, "a difference counts only when its interval over the *independent* units (folds) "
                          "excludes zero — and a consistent *loss* is significant too.")


_VERDICTS = ("unreachable", "not learned", "learned")


def _expected_diagnosis(lookback: int, lag: int, model_ic: float, oracle_ic: float) -> str:
    if lookback < lag:  # the oldest echoed return r_{t+1-L} lies outside the window
        return "unreachable"
    return "learned" if model_ic >= 0.5 * oracle_ic else "not learned"


# (lookback, lag, model IC, oracle IC): short windows with noise ICs, the N = L boundary,
# long windows that did and did not learn, and oracles that make a fixed IC threshold wrong
_RUNS = [
    (4, 16, 0.02, 0.50),
    (15, 16, 0.04, 0.50),
    (16, 16, 0.47, 0.50),
    (64, 16, 0.20, 0.50),
    (24, 48, -0.01, 0.50),
    (48, 48, 0.40, 0.50),
    (96, 48, 0.02, 0.50),
    (96, 48, 0.08, 0.12),
    (1024, 1008, 0.15, 0.60),
]


@register(
    "ch09-diagnose",
    title="Unreachable, not learned or learned: diagnose a lookback from the oracle",
)
def _grade_diagnose(answer: Callable[[int, int, float, float], str]) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function diagnose(lookback, lag, model_ic, oracle_ic), "
                               f"got {type(answer).__name__}.")
    for run in _RUNS:
        lookback, lag, model_ic, oracle_ic = run
        got, want = answer(*run), _expected_diagnosis(*run)
        if got == want:
            continue
        case = (f"lookback {lookback}, lag {lag}, model IC {model_ic:+.2f}, oracle IC {oracle_ic:.2f}: "
                f"you said {got!r}, the answer is {want!r}.")
        if got not in _VERDICTS:
            hint = f"Return one of the strings {', '.join(map(repr, _VERDICTS))}."
        elif want == "unreachable" or got == "unreachable":
            hint = ("Decide reachability from the geometry alone, before looking at any IC: the window "
                    "holds the echoed return r_{t+1-L} exactly when lookback >= lag (the first exercise). "
                    "Below that the IC is noise, whatever its value; at or above it a small IC means the "
                    "model did not learn the echo with this budget, not that it could not see it.")
        else:
            hint = ("Judge the IC against the oracle's, not against a fixed number: the oracle says how "
                    "much skill there is to find, and 'learned' means at least half of it.")
        return Feedback(False, f"{case} {hint}")
    return Feedback(True, "a window that covers the lag makes the echo reachable; only the comparison "
                          "with the oracle says whether the model learned it.")
