"""Fault injection, class 4 — ruin is never hidden: equity <= 0 is caught on every bar, costs are sane.

Each case plants the bar that wipes the account out — through the positions, the
costs or the funding, on the last bar or inside the series, with and without the
drift accounting — and checks the backtest refuses it instead of returning a
negative equity curve (whose "total return" would read below -100 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import MAX_COST_BPS, RuinError, backtest

IDX = pd.date_range("2024-01-01", periods=6, freq="h")


def _frame(values: list[float]) -> pd.DataFrame:
    return stamp(pd.DataFrame({"x": values}, IDX), "test", "1h", calendar="crypto")


@pytest.mark.parametrize("account_drift", [True, False])
@pytest.mark.parametrize("bar", [2, 5])  # inside the series, and the very last bar
def test_a_bar_that_loses_everything_is_ruin(account_drift: bool, bar: int) -> None:
    r = [0.01] * 6
    r[bar] = -0.6  # held at weight 2: the position loses 120 %
    with pytest.raises(RuinError, match=f"lost 100% or more in one bar \\(bar {bar}, .*gross -120.0%"):
        backtest(_frame(r), _frame([2.0] * 6), market_is="simple_returns", position="weights",
                 account_drift=account_drift)


@pytest.mark.parametrize("account_drift", [True, False])
def test_costs_alone_can_ruin_and_are_counted(account_drift: bool) -> None:
    # no price moves; flipping between +6 and -6 trades 12x equity at 10 % cost: -120 % a bar
    with pytest.raises(RuinError, match="bar 2, .*gross .0.0%, costs 120.0%"):
        backtest(_frame([0.0] * 6), _frame([6.0, -6.0] * 3), market_is="simple_returns",
                 position="weights", cost_bps=MAX_COST_BPS, account_drift=account_drift)


def test_funding_can_ruin_and_is_counted_on_the_last_bar() -> None:
    funding = _frame([0.0, 0.0, 0.0, 0.0, 0.0, 1.5])  # longs pay 150 % in the last bar
    with pytest.raises(RuinError, match="bar 5, .*funding \\+150.0%"):
        backtest(_frame([0.0] * 6), _frame([1.0] * 6), market_is="simple_returns", position="weights",
                 funding=funding)


def test_a_heavy_but_survivable_loss_is_not_ruin() -> None:
    res = backtest(_frame([0.0, 0.0, -0.45, 0.0, 0.0, 0.0]), _frame([2.0] * 6), market_is="simple_returns",
                   position="weights", cost_bps=0.0)
    assert res.equity.min() == pytest.approx(0.1) and (res.equity > 0).all()


@pytest.mark.parametrize("kwargs", [{"cost_bps": 5000.0}, {"spread_bps": 2 * MAX_COST_BPS + 2},
                                    {"cost_bps": {"x": 400.0}, "slippage_bps": 700.0}])
def test_costs_beyond_the_sane_bound_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="beyond the sane bound of 1000 bps .*basis points"):
        backtest(_frame([0.0] * 6), _frame([1.0] * 6), market_is="simple_returns", position="weights",
                 **kwargs)


def test_the_bound_itself_is_allowed() -> None:
    res = backtest(_frame([0.0] * 6), _frame([1.0] * 6), market_is="simple_returns", position="weights",
                   cost_bps=MAX_COST_BPS)
    assert np.isclose(res.costs.sum(), 0.1)  # one trade of the whole equity at 10 %
