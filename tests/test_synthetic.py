"""The synthetic market: seeded, stylised facts present, planted signal and oracle exact."""

from __future__ import annotations

import numpy as np
import pytest

from flashtrade_lib.data.features import make_features
from flashtrade_lib.data.synthetic import simulate_market


@pytest.fixture(scope="module")
def market():
    return simulate_market(30_000, 3, seed=7)


def test_seeded_and_reproducible(market) -> None:
    again = simulate_market(30_000, 3, seed=7)
    assert again.panel.equals(market.panel)
    assert not simulate_market(30_000, 3, seed=8).panel.equals(market.panel)


def test_panel_layout_matches_real_data(market) -> None:
    p = market.panel
    assert list(dict.fromkeys(p.columns.get_level_values("field"))) == [
        "open", "high", "low", "close", "volume", "gap"]
    assert str(p.index.tz) == "UTC" and p.index.freq is not None
    assert (p["high"] >= np.maximum(p["open"], p["close"])).all().all()
    assert (p["low"] <= np.minimum(p["open"], p["close"])).all().all()
    np.testing.assert_allclose(np.log(p["close"]).diff().iloc[1:], market.log_returns.iloc[1:], atol=1e-12)
    assert make_features(p).shape == (30_000, 15)


def test_stylised_facts(market) -> None:
    r = market.log_returns
    assert (r.kurt() > 3).all()  # fat tails (excess kurtosis of a Gaussian is 0)
    for s in r:
        assert abs(r[s].autocorr(1)) < 0.03  # returns: no short-range memory ...
        assert r[s].abs().autocorr(1) > 0.05  # ... but volatility clusters
    c = r.corr().to_numpy()[np.triu_indices(3, 1)]
    assert np.all((c > 0.4) & (c < 0.6))  # cross-asset correlation 0.5


def test_planted_echo_and_oracle(market) -> None:
    lag = market.planted_lag
    assert lag == 1008
    r = market.log_returns
    for s in r:
        assert abs(r[s].autocorr(lag) - 0.3) < 0.05
        assert abs(r[s].autocorr(lag // 2)) < 0.05  # invisible at shorter lags
    assert market.theoretical_r2 == pytest.approx(0.09)
    assert np.all(np.abs(market.oracle_r2 - 0.09) < 0.02)
    # the signal is exactly the predictable part: what remains is the shock, uncorrelated with the past
    resid = r - market.signal
    for s in r:
        assert abs(np.corrcoef(resid[s].iloc[lag:], r[s].shift(lag).iloc[lag:])[0, 1]) < 0.03
    # the h-bar oracle uses only information up to the decision bar, and keeps R² ~ echo_coef²
    assert np.all(np.abs(market.oracle_r2_at(24) - 0.09) < 0.03)
    with pytest.raises(ValueError, match="between 1 and 1008"):
        market.oracle_forecast(2000)


def test_no_echo_means_nothing_to_predict() -> None:
    m = simulate_market(5_000, 2, seed=1, planted_lag=None)
    assert m.theoretical_r2 == 0.0 and (m.signal.to_numpy() == 0).all()
    assert np.all(np.abs(m.oracle_r2) < 1e-3)


def test_lead_lag() -> None:
    m = simulate_market(20_000, 3, seed=2, planted_lag=None, lead_lag=(48, 0.4))
    r = m.log_returns
    assert abs(np.corrcoef(r["SYN1"].iloc[48:], r["SYN0"].shift(48).iloc[48:])[0, 1]) > 0.25
    assert abs(np.corrcoef(r["SYN0"].iloc[48:], r["SYN1"].shift(48).iloc[48:])[0, 1]) < 0.05
    assert m.theoretical_r2 is None and m.max_oracle_horizon() == 48
    assert m.oracle_r2["SYN0"] == pytest.approx(0.0, abs=1e-3) and m.oracle_r2["SYN1"] > 0.1


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"echo_coef": 1.0}, "stationary"),
    ({"df": 2.0}, "df must be > 2"),
    ({"garch": (0.2, 0.8)}, "alpha \\+ beta < 1"),
    ({"planted_lag": 10**6}, "planted_lag"),
    ({"correlation": -0.9}, "equicorrelation"),
])
def test_bad_parameters_are_explained(kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        simulate_market(2_000, 3, seed=0, **kwargs)


def test_fft_acf_matches_pandas(market) -> None:
    from flashtrade_lib.data.stylized import acf

    r = market.log_returns["SYN0"]
    a = acf(r.to_numpy(), 1100)
    assert a[0] == pytest.approx(1.0)
    for lag in (1, 24, 1008):
        assert a[lag] == pytest.approx(r.autocorr(lag), abs=0.02)  # pandas normalises per lag
    with pytest.raises(ValueError, match="NaN"):
        acf(np.array([1.0, np.nan, 2.0]), 1)


def test_deseasonalised_abs_removes_a_daily_volatility_cycle() -> None:
    """A pure intraday cycle in volatility (no clustering) makes raw |r| look like long memory."""
    import pandas as pd

    from flashtrade_lib.data.stylized import acf, deseasonalised_abs

    index = pd.date_range("2020-01-06", periods=48 * 7 * 40, freq="30min")
    cycle = 1 + 0.8 * np.sin(2 * np.pi * index.hour.to_numpy() / 24)
    r = pd.Series(np.random.default_rng(0).standard_normal(len(index)) * cycle, index=index)
    raw, des = acf(r.abs().to_numpy(), 48), acf(deseasonalised_abs(r).to_numpy(), 48)
    assert raw[48] > 0.1  # the cycle alone: a "memory" at one day
    assert abs(des[48]) < 0.03  # gone once each slot's mean |r| is divided out
    with pytest.raises(TypeError, match="DatetimeIndex"):
        deseasonalised_abs(pd.Series([0.1, -0.2]))
