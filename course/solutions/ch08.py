"""Chapter 8 (08_backtesting) — instructor's solutions (not installed with flashtrade_lib)."""

import math

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.trading import metrics


@solution("ch08-annualise")
def annualised_sharpe(returns, calendar):
    periods = metrics.periods_per_year(returns.index, calendar)
    return math.sqrt(periods) * returns.mean() / returns.std()


@wrong("ch08-annualise", expect="sqrt(252)")
def annualised_sharpe_always_252(returns, calendar):
    return math.sqrt(252) * returns.mean() / returns.std()  # the seed chapter's mistake


@solution("ch08-t-plus-one")
def strategy_returns(returns, positions):
    return positions.shift(1).fillna(0.0) * returns


@wrong("ch08-t-plus-one", expect="look-ahead")
def strategy_returns_same_bar(returns, positions):
    return positions * returns


@solution("ch08-breakeven")
def breakeven_cost(sharpe_at, hi=50.0, tol=0.25):
    lo = 0.0
    if sharpe_at(lo) <= 0:
        return 0.0
    if sharpe_at(hi) > 0:
        return None
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sharpe_at(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


@wrong("ch08-breakeven", expect="coarse grid")
def breakeven_cost_on_a_grid(sharpe_at, hi=50.0, tol=0.25):
    return next((float(c) for c in range(0, int(hi) + 1, 5) if sharpe_at(c) <= 0), None)


@solution("ch08-purged-folds")
def purged_folds(n_samples, horizon, n_folds, embargo):
    size = n_samples // (n_folds + 1)
    first = n_samples - n_folds * size
    folds = []
    for k in range(n_folds):
        lo = first + k * size
        test = np.arange(lo, lo + size)
        # sample i's label spans bars i..i + horizon: it must end, with the embargo, before bar lo
        train = np.arange(0, max(0, lo - horizon - embargo))
        folds.append((train, test))
    return folds


@wrong("ch08-purged-folds", expect="nothing was purged")
def purged_folds_not_purged(n_samples, horizon, n_folds, embargo):
    size = n_samples // (n_folds + 1)
    first = n_samples - n_folds * size
    return [(np.arange(0, first + k * size), np.arange(first + k * size, first + (k + 1) * size))
            for k in range(n_folds)]


@wrong("ch08-purged-folds", expect="off by one")
def purged_folds_off_by_one(n_samples, horizon, n_folds, embargo):
    size = n_samples // (n_folds + 1)
    first = n_samples - n_folds * size
    return [(np.arange(0, first + k * size - horizon - embargo + 1), np.arange(first + k * size, first + (k + 1) * size))
            for k in range(n_folds)]


@wrong("ch08-purged-folds", expect="forgot the embargo")
def purged_folds_without_embargo(n_samples, horizon, n_folds, embargo):
    size = n_samples // (n_folds + 1)
    first = n_samples - n_folds * size
    return [(np.arange(0, max(0, first + k * size - horizon)), np.arange(first + k * size, first + (k + 1) * size))
            for k in range(n_folds)]  # purges the overlap, ignores the embargo


@solution("ch08-deflated-sharpe")
def deflated_sharpe(returns, n_trials, periods):
    from scipy.stats import kurtosis, norm, skew

    r = np.asarray(returns, dtype=float)
    n = r.size
    sr = r.mean() / r.std(ddof=1)  # per bar, like everything below
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    if n_trials == 1:
        sr0 = 0.0
    else:
        gamma = 0.5772156649015329  # Euler's constant
        v = 1.0 / (n - 1)  # sampling variance of a per-bar Sharpe estimate under no skill
        sr0 = math.sqrt(v) * ((1 - gamma) * norm.ppf(1 - 1 / n_trials)
                              + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
    return float(norm.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)))


@wrong("ch08-deflated-sharpe", expect="nothing was deflated")
def deflated_sharpe_not_deflated(returns, n_trials, periods):
    from scipy.stats import kurtosis, norm, skew

    r = np.asarray(returns, dtype=float)
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    return float(norm.cdf(sr * math.sqrt(r.size - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)))


@wrong("ch08-deflated-sharpe", expect="plain kurtosis")
def deflated_sharpe_excess_kurtosis(returns, n_trials, periods):
    from scipy.stats import kurtosis, norm, skew

    r = np.asarray(returns, dtype=float)
    n, sr = r.size, r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r)  # excess kurtosis: 0 for a normal
    gamma, v = 0.5772156649015329, 1.0 / (n - 1)
    sr0 = 0.0 if n_trials == 1 else math.sqrt(v) * ((1 - gamma) * norm.ppf(1 - 1 / n_trials)
                                                    + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
    return float(norm.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)))


@wrong("ch08-deflated-sharpe", expect="nothing to deflate")
def deflated_sharpe_one_trial_unhandled(returns, n_trials, periods):
    from scipy.stats import kurtosis, norm, skew

    r = np.asarray(returns, dtype=float)
    n, sr = r.size, r.mean() / r.std(ddof=1)
    g3, g4 = skew(r), kurtosis(r, fisher=False)
    gamma, v = 0.5772156649015329, 1.0 / (n - 1)
    with np.errstate(all="ignore"):  # N = 1: Φ⁻¹(0) = −∞, so SR₀ = −∞ and the DSR is 1
        sr0 = math.sqrt(v) * ((1 - gamma) * norm.ppf(1 - 1 / n_trials) + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
    return float(norm.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)))
