"""Fault injection, class 3 (the data and metrics parts) — no silent wrong numbers.

A constant return series has no Sharpe ratio; features and labels computed over
rows in file order (unsorted, duplicated) or across unflagged holes would be
look-ahead or mislabelled, and a negative volume is not data. (NaN through the
attention backends is tested with them, in tests/test_backends.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data import align_bars, forward_log_return, make_features
from flashtrade_lib.data.synthetic import simulate_market
from flashtrade_lib.trading.metrics import sharpe


@pytest.mark.parametrize("value", [0.001, -0.0003, 1e-9])
def test_the_sharpe_of_a_constant_series_is_nan(value: float) -> None:
    assert np.isnan(sharpe(np.full(500, value), 8760))


def test_a_series_that_never_moved_has_a_sharpe_of_zero() -> None:
    """The one zero-variance rule (metrics.sharpe_from_moments): no return for no risk is 0, not NaN."""
    assert sharpe(np.zeros(500), 8760) == 0.0


def test_a_tiny_but_real_spread_still_has_a_sharpe() -> None:
    r = 0.001 + 1e-6 * np.random.default_rng(0).standard_normal(500)
    assert 100 < sharpe(r, 8760) < 1e5


def _bars(n: int = 80) -> pd.DataFrame:
    market = simulate_market(n, 1, 0, planted_lag=None)
    return market.panel.xs("SYN0", axis=1, level="symbol").drop(columns="gap")


@pytest.mark.parametrize("shape", ["one asset", "panel"])
@pytest.mark.parametrize(("fault", "match"), [("unsorted", "not sorted"), ("duplicated", "duplicated timestamps")])
def test_features_refuse_rows_out_of_time_order(shape: str, fault: str, match: str) -> None:
    bars = _bars() if shape == "one asset" else simulate_market(80, 2, 0, planted_lag=None).panel
    bad = bars.iloc[np.r_[0:40, 50:80, 40:50]] if fault == "unsorted" else pd.concat([bars, bars.iloc[10:12]]).sort_index()
    with pytest.raises(ValueError, match=match):
        make_features(bad)


@pytest.mark.parametrize(("fault", "match"), [("unsorted", "not sorted"), ("duplicated", "duplicated timestamps")])
def test_labels_refuse_rows_out_of_time_order(fault: str, match: str) -> None:
    close = _bars()["close"]
    bad = close.iloc[::-1] if fault == "unsorted" else pd.concat([close, close.iloc[:1]]).sort_index()
    with pytest.raises(ValueError, match=match):
        forward_log_return(bad, 1)


def test_negative_volume_is_refused() -> None:
    bars = _bars()
    bars.iloc[30, bars.columns.get_loc("volume")] = -2.0
    with pytest.raises(ValueError, match="1 negative volumes"):
        make_features(bars)


def test_holes_in_one_assets_bars_are_refused_unless_flagged_or_closed_hours() -> None:
    bars = _bars().drop(index=_bars().index[[20, 21, 50]])
    with pytest.raises(ValueError, match="2 holes in their 0 days 01:00:00 grid.*align_bars"):
        make_features(bars)
    aligned = align_bars(bars, max_ffill=0)  # flagged like a panel's gaps
    assert int(aligned["gap"].sum()) == 3 and len(aligned) == 80
    feats = make_features(aligned)
    assert feats["log_return"].iloc[[20, 21, 22, 50, 51]].isna().all()  # no return across a hole
    assert len(make_features(bars, allow_gaps=True)) == 77  # e.g. FX weekends: the market was closed
