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
def is_significant(diffs):
    d = np.asarray(diffs, dtype=float)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return bool(abs(d.mean()) > half)


@wrong("ch09-significant", expect="A positive mean alone is not evidence")
def is_significant_when_positive(diffs):
    return float(np.mean(diffs)) > 0


@solution("ch09-diagnose")
def diagnose(lookback, lag, model_ic, oracle_ic):
    if lookback < lag:  # the oldest echoed return r_{t+1-L} is outside the window
        return "unreachable"
    return "learned" if model_ic >= 0.5 * oracle_ic else "not learned"


@wrong("ch09-diagnose", expect="Decide reachability from the geometry alone")
def diagnose_from_the_ic_alone(lookback, lag, model_ic, oracle_ic):
    return "learned" if model_ic >= 0.5 * oracle_ic else "unreachable"
