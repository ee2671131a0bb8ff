"""Chapter 9 (09_long_context) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np
import pandas as pd

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.trading import stats


@solution("ch09-lookback-needed")
def lookback_needed(lag, horizon):
    return lag


@wrong("ch09-lookback-needed", expect="The label reaches h bars into the future")
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


@solution("ch09-spa-losers")
def spa_with_and_without_losers(benchmark, candidates):
    advantage = candidates.sub(benchmark, axis=0).mean()  # mean gain over the benchmark, per bar
    losers = [c for c in candidates.columns if advantage[c] < 0]
    rows = {}
    for row, cand in (("all", candidates), ("without losers", candidates.drop(columns=losers))):
        if cand.shape[1] == 0:  # every candidate lost: nothing left to test
            rows[row] = {"consistent": np.nan, "upper": np.nan}
            continue
        res = stats.spa_test(benchmark, cand)
        rows[row] = {"consistent": res.p_value, "upper": res.p_upper}
    return pd.DataFrame.from_dict(rows, orient="index"), "all"  # every strategy tried stays in the null


@wrong("ch09-spa-losers", expect="Dropping the losers after seeing how they did")
def spa_reporting_without_losers(benchmark, candidates):
    advantage = candidates.sub(benchmark, axis=0).mean()
    losers = [c for c in candidates.columns if advantage[c] < 0]
    rows = {}
    for row, cand in (("all", candidates), ("without losers", candidates.drop(columns=losers))):
        res = stats.spa_test(benchmark, cand)
        rows[row] = {"consistent": res.p_value, "upper": res.p_upper}
    return pd.DataFrame.from_dict(rows, orient="index"), "without losers"  # the smaller search, after the fact


@wrong("ch09-spa-losers", expect="A negative mean of its own")
def spa_losers_by_their_own_mean(benchmark, candidates):
    losers = [c for c in candidates.columns if candidates[c].mean() < 0]  # not relative to the benchmark
    rows = {}
    for row, cand in (("all", candidates), ("without losers", candidates.drop(columns=losers))):
        res = stats.spa_test(benchmark, cand)
        rows[row] = {"consistent": res.p_value, "upper": res.p_upper}
    return pd.DataFrame.from_dict(rows, orient="index"), "all"
