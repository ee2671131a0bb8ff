"""Exercise checks for chapter 6 (training the FlashAttentionTrader): judge a model against the
baseline that sees the same information, with a test that pairs the two on the same bars."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flashtrade_lib.exercises import Feedback, register

LOOKBACK, N_FEATURES, N_TRAIN, N_TEST = 8, 2, 600, 1000


@dataclass(frozen=True)
class _Case:
    name: str
    train_windows: np.ndarray  # (n, lookback, features), oldest bar first
    train_y: np.ndarray
    test_windows: np.ndarray
    test_y: np.ndarray
    model: np.ndarray  # the model's forecasts of test_y
    alpha: float


def _baseline_cases() -> list[_Case]:
    """A linear market whose label depends on the window's *oldest* bar (an echo) and on the last bar.

    The outcome's noise is large and shared by both forecasts on each bar, so only a paired test
    sees a moderate difference in squared error (a test that treats the two error series as
    independent samples does not).
    """
    rng = np.random.default_rng(6)

    def windows(n: int) -> np.ndarray:
        return rng.normal(size=(n, LOOKBACK, N_FEATURES))

    def mean_of(w: np.ndarray) -> np.ndarray:
        return 0.8 * w[:, 0, 0] + 0.3 * w[:, -1, 1]

    xtr, xte = windows(N_TRAIN), windows(N_TEST)
    ytr = mean_of(xtr) + rng.normal(0, 2.0, N_TRAIN)
    yte = mean_of(xte) + rng.normal(0, 2.0, N_TEST)
    truth = mean_of(xte)
    return [
        _Case("a model that learned the echo, with some noise of its own", xtr, ytr, xte, yte,
              truth + rng.normal(0, 0.6, N_TEST), 1.0),
        _Case("a model about as good as the regression", xtr, ytr, xte, yte,
              truth + rng.normal(0, 0.35, N_TEST), 10.0),
        _Case("a model that saw the last bar only", xtr, ytr, xte, yte, 0.3 * xte[:, -1, 1], 1.0),
    ]


def _flat(w: np.ndarray) -> np.ndarray:
    return w.reshape(len(w), -1)


def _ridge(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_predict

    return ridge_predict(ridge_fit(x_train, y_train, alpha=alpha), x_test).ravel()


def _paired_pvalues(case: _Case, baseline: np.ndarray) -> tuple[float, float]:
    """The paired p-values the check accepts: the library's paired bootstrap and the HAC t test."""
    from flashtrade_lib.trading.stats import hac_mean_test, paired_difference_test

    loss_model, loss_base = (case.test_y - case.model) ** 2, (case.test_y - baseline) ** 2
    boot = paired_difference_test(loss_model, loss_base, "mean", names=("model", "baseline"), seed=0).p_value
    return boot, hac_mean_test(loss_model - loss_base).p_value


def _unpaired_pvalue(case: _Case, baseline: np.ndarray) -> float:
    from scipy.stats import ttest_ind

    return float(ttest_ind((case.test_y - case.model) ** 2, (case.test_y - baseline) ** 2, equal_var=False).pvalue)


def _p_accepted(p: float, paired: tuple[float, float]) -> bool:
    """Within the spread of the two paired tests (a bootstrap and HAC differ a little), with some slack."""
    low, high = min(paired), max(paired)
    return 0.5 * low - 0.01 <= p <= 1.5 * high + 0.01


@register(
    "ch06-same-information",
    title="A same-information baseline and a paired test",
    hints=(
        "The model reads every bar of its window: flatten each window, "
        "`train_windows.reshape(len(train_windows), -1)`, and fit `ridge_fit` on all of it — "
        "on the training windows only.",
        "Pair the two forecasts bar by bar: the per-bar difference of squared errors, "
        "`(test_y - model_forecast)**2 - (test_y - baseline)**2`, is what you test; its mean is "
        "negative when the model's errors are smaller.",
        "`stats.paired_difference_test(loss_model, loss_baseline, \"mean\")` resamples the bars "
        "jointly (or use `stats.hac_mean_test` on the differences); a test of two independent "
        "samples ignores that both forecasts face the same noise on each bar.",
    ),
)
def _grade_same_information(answer: Callable[..., tuple]) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function same_information_test(train_windows, train_y, test_windows, "
                               f"test_y, model_forecast, alpha) -> (baseline, mean_difference, p_value), "
                               f"got {type(answer).__name__}")
    for case in _baseline_cases():
        where = f"case '{case.name}' (alpha={case.alpha:g})"
        got = answer(case.train_windows.copy(), case.train_y.copy(), case.test_windows.copy(),
                     case.test_y.copy(), case.model.copy(), case.alpha)
        if not (isinstance(got, tuple) and len(got) == 3):
            return Feedback(False, f"{where}: return a tuple (baseline forecasts, mean loss difference, p-value), "
                                   f"got {type(got).__name__}")
        baseline, mean_diff, p = np.asarray(got[0], dtype=float).ravel(), got[1], got[2]
        want = _ridge(_flat(case.train_windows), case.train_y, _flat(case.test_windows), case.alpha)
        if baseline.shape != want.shape:
            return Feedback(False, f"{where}: the baseline must give one forecast per test window, shape "
                                   f"{want.shape}; got {baseline.shape}.")
        scale = float(np.abs(want).max())
        if not np.allclose(baseline, want, rtol=1e-6, atol=1e-9 * scale):
            last = _ridge(case.train_windows[:, -1], case.train_y, case.test_windows[:, -1], case.alpha)
            both = _ridge(np.vstack([_flat(case.train_windows), _flat(case.test_windows)]),
                          np.concatenate([case.train_y, case.test_y]), _flat(case.test_windows), case.alpha)
            if np.allclose(baseline, last, rtol=1e-6):
                why = ("your baseline reads the last bar only: it cannot see the echo at the window's oldest bar, so "
                       "beating it shows what the window adds, not what the model adds. Fit on every bar of the "
                       "window (flatten it).")
            elif np.allclose(baseline, both, rtol=1e-6):
                why = "your baseline was fitted on the test windows too: fit on the training windows only."
            else:
                why = (f"it differs from ridge_fit(flattened training windows, train_y, alpha={case.alpha:g}) by up "
                       f"to {float(np.abs(baseline - want).max()):.3g}.")
            return Feedback(False, f"{where}: the baseline's forecasts are wrong — {why}")
        loss_model, loss_base = (case.test_y - case.model) ** 2, (case.test_y - want) ** 2
        want_diff = float(np.mean(loss_model - loss_base))
        if not isinstance(mean_diff, (int, float, np.floating)) or not math.isfinite(mean_diff):
            return Feedback(False, f"{where}: the mean loss difference must be a number, got {mean_diff!r}")
        if math.isclose(mean_diff, -want_diff, rel_tol=1e-6) and want_diff != 0:
            return Feedback(False, f"{where}: the mean difference has the wrong sign — it is the model's squared "
                                   "error minus the baseline's (negative when the model is better).")
        if not math.isclose(mean_diff, want_diff, rel_tol=1e-6, abs_tol=1e-12):
            return Feedback(False, f"{where}: the mean of (test_y − model)² − (test_y − baseline)² over the test "
                                   f"bars is {want_diff:.4f}, you returned {float(mean_diff):.4f}.")
        if not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
            return Feedback(False, f"{where}: the p-value must be a number in [0, 1], got {p!r}")
        paired = _paired_pvalues(case, want)
        if not _p_accepted(float(p), paired):
            unpaired = _unpaired_pvalue(case, want)
            why = ""
            if math.isclose(float(p), unpaired, rel_tol=0.05, abs_tol=0.005):
                why = (" That is an unpaired test: it treats the two error series as independent samples, but "
                       "both forecasts face the same outcome on each bar, and that shared noise swamps the "
                       "difference. Test the per-bar differences of the squared errors.")
            return Feedback(False, f"{where}: your p-value is {float(p):.4f}; a paired test of the per-bar loss "
                                   f"differences gives about {paired[0]:.3f} (paired bootstrap) or "
                                   f"{paired[1]:.3f} (HAC t test).{why}")
    return Feedback(True, "the same-information baseline reads the whole window, and the paired test sees a "
                          "difference that two separate error series hide: on a linear market a model can at "
                          "best match this regression.")
