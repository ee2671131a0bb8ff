"""The cost-aware position rule and the break-even cost (flashtrade_lib.trading.cost_aware)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import backtest
from flashtrade_lib.trading.cost_aware import (
    breakeven_cost,
    calibrate,
    fit_rule,
    hold_until_confident,
)


def _market(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices whose next return is 0.3 × a known signal plus noise."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h")
    sig = rng.standard_normal(n)
    r = np.r_[0.0, 0.3 * 1e-3 * sig[:-1]] + 1e-3 * rng.standard_normal(n)
    prices = stamp(pd.DataFrame({"X": 100 * np.cumprod(1 + r)}, index=idx), "test", "1h", calendar="crypto")
    return prices, pd.DataFrame({"X": sig}, index=idx)


def test_hold_until_confident_holds_between_confident_forecasts():
    f = np.array([0.0, 0.5, 2.0, 0.5, -0.5, -3.0, 0.1, 1.5])
    w = hold_until_confident(f, 1.0)[:, 0]
    np.testing.assert_array_equal(w, [0, 0, 1, 1, 1, -1, -1, 1])
    np.testing.assert_array_equal(hold_until_confident(f, 0.0)[1:, 0], np.sign(f[1:]))
    with pytest.raises(ValueError, match="NaN"):
        hold_until_confident(np.array([np.nan, 1.0]), 0.5)


def test_calibrate_is_a_through_origin_slope_clipped_at_zero():
    idx = pd.RangeIndex(4)
    s = pd.DataFrame({"a": [1.0, 2.0, -1.0, 0.5], "b": [1.0, 2.0, -1.0, 0.5]}, index=idx)
    y = pd.DataFrame({"a": 0.1 * s["a"], "b": -0.1 * s["b"]}, index=idx)
    np.testing.assert_allclose(calibrate(s, y), [0.1, 0.0])


def test_fit_rule_chooses_k_on_the_bars_it_is_given():
    prices, sig = _market()
    rule = fit_rule(sig, prices, cost_bps=5.0, k_grid=[0, 0.5, 1, 2, 50])
    assert rule.k == rule.validation_sharpe.idxmax()
    assert rule.beta[0] == pytest.approx(0.3e-3, rel=0.2)
    assert rule.validation_sharpe[50.0] == 0.0  # never trades: scores 0, not NaN
    # an anti-predictive signal gets slope 0 and is never traded; every k ties, the larger wins
    flipped = fit_rule(-sig, prices, cost_bps=5.0, k_grid=[0, 1])
    assert flipped.beta[0] == 0 and flipped.k == 1
    assert (flipped.weights(-sig).to_numpy() == 0).all()


def test_breakeven_cost_is_where_the_engine_nets_zero():
    prices, sig = _market()
    gross = backtest(prices, sig, market_is="prices", position="sign", cost_bps=0.0)
    be = breakeven_cost(gross.gross_returns, gross.turnover, reps=200)
    at_breakeven = backtest(prices, sig, market_is="prices", position="sign", cost_bps=be.estimate)
    assert abs(at_breakeven.returns.mean()) < 1e-12
    assert be.low < be.estimate < be.high and be.estimate > 0
    with pytest.raises(ValueError, match="never trades"):
        breakeven_cost(np.zeros(50), np.zeros(50))
