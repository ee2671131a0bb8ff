"""Chapter 9 (09_long_context) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch09-lookback-needed")
def lookback_needed(lag, horizon):
    return lag


@wrong("ch09-lookback-needed", expect="the label reaches h bars into the future")
def lookback_needed_plus_horizon(lag, horizon):
    return lag + horizon


@solution("ch09-significant")
def is_significant(diffs, folds):
    from scipy.stats import t

    d, g = np.asarray(diffs, dtype=float), np.asarray(folds)
    means = np.array([d[g == k].mean() for k in np.unique(g)])  # one value per fold: the independent draws
    half = t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means))
    return bool(abs(means.mean()) > half)


@wrong("ch09-significant", expect="The runs of one fold are not independent")
def is_significant_over_runs(diffs, folds):
    d = np.asarray(diffs, dtype=float)
    return bool(abs(d.mean()) > 1.96 * d.std(ddof=1) / np.sqrt(len(d)))


@wrong("ch09-significant", expect="The runs of one fold are not independent")
def is_significant_when_positive(diffs, folds):
    return float(np.mean(diffs)) > 0


@solution("ch09-diagnose")
def diagnose(lookback, lag, model_ic, oracle_ic):
    if lookback < lag:  # the oldest echoed return r_{t+1-L} is outside the window
        return "unreachable"
    return "learned" if model_ic >= 0.5 * oracle_ic else "not learned"


@wrong("ch09-diagnose", expect="Decide reachability from the geometry alone")
def diagnose_from_the_ic_alone(lookback, lag, model_ic, oracle_ic):
    return "learned" if model_ic >= 0.5 * oracle_ic else "unreachable"
