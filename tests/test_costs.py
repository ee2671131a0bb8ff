"""The default cost model: Roll's spread estimator on a market with a known spread, and the units.

Why: chapter 8's default cost is taker fee + half-spread + funding; the spread comes from an
estimator, so the estimator is checked where the answer is known (a simulated bid–ask
bounce), the constant is recomputed from the bundled bars it claims to come from, and each
component is checked to reach the P&L in the unit it says (bps per unit traded, rate per 8 h).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import backtest
from flashtrade_lib.trading.costs import (
    DEFAULT_COST_BPS,
    DEFAULT_COSTS,
    FUNDING_PER_8H,
    HALF_SPREAD_BPS,
    TAKER_FEE_BPS,
    funding_rates,
    roll_spread,
)


def _bounce(spread: float, n: int = 20_000, sigma: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Log returns of trades at the bid or the ask (±spread/2, 50:50) around a random-walk price."""
    rng = np.random.default_rng(seed)
    efficient = np.cumsum(rng.normal(0.0, sigma, n))
    side = rng.choice([-1.0, 1.0], n)
    return np.diff(efficient + side * spread / 2)


def test_roll_recovers_a_known_spread() -> None:
    est, low, high = roll_spread(_bounce(20e-4), reps=200)
    assert low < 20e-4 < high
    assert est == pytest.approx(20e-4, rel=0.15)
    assert low < est < high


def test_roll_refuses_when_no_bounce_is_visible() -> None:
    rng = np.random.default_rng(1)
    trending = np.convolve(rng.normal(0, 1e-3, 5000), np.ones(3), mode="valid")  # positive autocovariance
    with pytest.raises(ValueError, match="undefined"):
        roll_spread(trending, reps=99)


def test_half_spread_constant_is_what_the_bundled_bars_give() -> None:
    from flashtrade_lib.data import load_crypto

    close = load_crypto(["BTC"], freq="30min")["close"]["BTC"]
    est, _, _ = roll_spread(np.log(close).diff().to_numpy(), reps=99)
    assert round(1e4 * est / 2, 1) == HALF_SPREAD_BPS


def _hourly(prices: list[float]) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(prices), freq="1h", tz="UTC")
    return stamp(pd.DataFrame({"X": prices}, index=idx), "test", "1h", calendar="crypto")


def test_cost_units_reach_the_pnl() -> None:
    assert DEFAULT_COST_BPS == DEFAULT_COSTS.per_trade_bps == TAKER_FEE_BPS + HALF_SPREAD_BPS
    prices = _hourly([100.0] * 12)  # no price moves: every loss is a cost
    long_8 = pd.DataFrame({"X": [1.0] * 8 + [0.0] * 4}, index=prices.index)  # long for 8 bars, then flat
    rates = funding_rates(prices)
    assert rates.attrs["interval"] == "1h" and np.allclose(rates, FUNDING_PER_8H / 8)
    res = backtest(prices, long_8, market_is="prices", position="weights", funding=rates)
    # one unit bought, one sold: twice the per-trade cost, in bps of traded value
    assert res.costs.sum() == pytest.approx(2 * DEFAULT_COST_BPS / 1e4)
    # held 8 hourly bars: one 8-hour funding interval, paid by the long
    assert res.funding.sum() == pytest.approx(FUNDING_PER_8H)
    short = backtest(prices, -long_8, market_is="prices", position="weights", funding=rates)
    assert short.funding.sum() == pytest.approx(-FUNDING_PER_8H)  # the short receives it


def test_funding_needs_fixed_length_bars() -> None:
    idx = pd.date_range("2024-01-01", periods=3, freq="MS", tz="UTC")
    monthly = stamp(pd.DataFrame({"X": [1.0, 2.0, 3.0]}, index=idx), "test", "M", calendar="crypto")
    with pytest.raises(ValueError, match="fixed length"):
        funding_rates(monthly)
