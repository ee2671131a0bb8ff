"""Held-out baselines see what the model sees, in the target's units (issue #28)."""

from __future__ import annotations

import numpy as np
import pytest

from flashtrade_lib.data.tasks import market_datasets
from flashtrade_lib.trading.heldout import (
    SAME_INFORMATION,
    baseline_forecasts,
    oracle_forecast,
    part_targets,
    raw_last_return,
    window_features,
)
from flashtrade_lib.trading.metrics import forecast_skill


@pytest.fixture(scope="module")
def syn():
    return market_datasets("synthetic", n_bars=3000, n_assets=1, planted_lag=6, echo_coef=0.5, lookback=8, seed=1)


def test_window_features_are_exactly_the_model_window(syn) -> None:
    x = window_features(syn, "test")
    for i in (0, 5, len(syn.test) - 1):
        window, _ = syn.test[i]
        np.testing.assert_array_equal(x[i], window.numpy().ravel())


def test_momentum_is_a_forecast_in_return_units(syn) -> None:
    y = part_targets(syn, "test")
    mom = baseline_forecasts(syn)["momentum"]
    # the last return, not its z-score: same scale as the target, and R² of a random-walk guess
    assert 0.3 < mom.std() / y.std() < 3
    assert -3 < forecast_skill(mom, y).r2 < 0.5
    bars = syn.dataset.times[syn.split.test]
    truth = np.log(syn.close.iloc[:, 0]).diff().to_numpy()[bars]
    np.testing.assert_allclose(raw_last_return(syn, "test"), truth, rtol=1e-4, atol=1e-7)


def test_same_window_ridge_recovers_a_linear_echo_the_last_bar_cannot(syn) -> None:
    y = part_targets(syn, "test")
    f = baseline_forecasts(syn)
    oracle = forecast_skill(oracle_forecast(syn), y).ic
    assert forecast_skill(f[SAME_INFORMATION], y).ic > 0.9 * oracle
    assert forecast_skill(f["ridge (last bar)"], y).ic < 0.3 * oracle


def test_var_ridge_recovers_a_planted_lead_lag() -> None:
    from flashtrade_lib.data import WindowDataset, simulate_market
    from flashtrade_lib.trading.heldout import var_ridge_forecast

    market = simulate_market(3000, n_assets=3, seed=0, planted_lag=None, lead_lag=(2, 0.4))
    r = market.log_returns.to_numpy()
    x = ((r - r.mean(0)) / r.std(0))[:, :, None].astype(np.float32)  # (time, assets, 1 feature)
    y = np.vstack([r[1:], np.full((1, 3), np.nan)])
    t = np.arange(7, 2999)
    train = WindowDataset(x, y, 8, horizon=1, times=t[t < 2000])
    test = WindowDataset(x, y, 8, horizon=1, times=t[t >= 2001])
    pred = var_ridge_forecast(train, test)
    truth = y[test.times]
    oracle = market.oracle_forecast(1).to_numpy()[test.times]
    for a in (1, 2):  # the followers: the VAR reaches most of the oracle's IC
        assert forecast_skill(pred[:, a], truth[:, a]).ic > 0.8 * forecast_skill(oracle[:, a], truth[:, a]).ic
    with pytest.raises(ValueError, match="lags"):
        var_ridge_forecast(train, test, lags=9)


def test_cross_sectional_ic_ranks_assets_within_each_bar() -> None:
    from flashtrade_lib.trading.heldout import cross_sectional_ic

    y = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    f = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    ic = cross_sectional_ic(f, y)
    assert ic[0] == pytest.approx(1.0) and ic[1] == pytest.approx(-1.0) and np.isnan(ic[2])
    # a common market move added to every asset changes the pooled IC, not the cross-sectional one
    np.testing.assert_allclose(cross_sectional_ic(f, y + np.array([[5.0], [-5.0], [0.0]])), ic)
