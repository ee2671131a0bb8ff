"""Chapter 8 (08_backtesting) — instructor's solutions (not installed with flashtrade_lib)."""

import math

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
