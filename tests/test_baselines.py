"""Baselines: hand values, causality, closed-form ridge against least squares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import backtest
from flashtrade_lib.trading.baselines import (
    buy_and_hold,
    mean_reversion,
    momentum,
    next_bar_returns,
    ridge_fit,
    ridge_predict,
    ridge_signals,
)

EXACT = {"rtol": 0, "atol": 1e-12}


def _prices(n: int = 200, k: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h")
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, k)), axis=0)), idx,
                          columns=[f"c{i}" for i in range(k)])
    return stamp(prices, "test", "1h", calendar="crypto")


def test_buy_and_hold_trades_once_and_earns_the_weighted_price_growth() -> None:
    p = _prices()
    w0 = pd.Series({"c0": 0.5, "c1": 0.3, "c2": 0.2})
    res = backtest(p, buy_and_hold(p, w0), market_is="prices", position="weights", cost_bps=10)
    assert res.turnover.iloc[1] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.turnover.iloc[2:], 0.0, **EXACT)
    # bought at the close of bar 0 (held from bar 1); the 10 bps entry cost is charged
    # in bar 1 (additively, like every cost), after which equity follows the portfolio
    growth = (p / p.iloc[0]).to_numpy() @ w0.to_numpy()
    first = growth[1] - 1e-3
    np.testing.assert_allclose(res.equity.iloc[1:], first * growth[1:] / growth[1], rtol=1e-12)


def test_buy_and_hold_keeps_uninvested_weight_in_cash() -> None:
    p = _prices(k=1)
    res = backtest(p, buy_and_hold(p, {"c0": 0.5}), market_is="prices", position="weights", cost_bps=0.0)
    expected = 0.5 + 0.5 * p["c0"] / p["c0"].iloc[0]
    np.testing.assert_allclose(res.equity.iloc[1:], expected.iloc[1:], rtol=1e-12)
    np.testing.assert_allclose(res.turnover.iloc[2:], 0.0, **EXACT)


def test_momentum_and_mean_reversion_hand_values() -> None:
    idx = pd.date_range("2024", periods=5, freq="D")
    p = pd.Series([100.0, 110.0, 99.0, 120.0, 108.0], idx, name="x")
    np.testing.assert_allclose(momentum(p, 2)["x"], [0, 0, 99 / 100 - 1, 120 / 110 - 1, 108 / 99 - 1], **EXACT)
    mr = mean_reversion(p, 3)["x"].to_numpy()
    window = np.array([110.0, 99.0, 120.0])
    assert mr[:2].tolist() == [0.0, 0.0]
    assert mr[3] == pytest.approx(-(120 - window.mean()) / window.std(ddof=1), abs=1e-12)


@pytest.mark.parametrize("make", [lambda p: momentum(p, 5), lambda p: mean_reversion(p, 5),
                                  lambda p: buy_and_hold(p)])
def test_baselines_are_causal(make) -> None:
    p = _prices()
    p2 = p.copy()
    p2.iloc[101:] *= 1.3
    np.testing.assert_array_equal(make(p).iloc[:101], make(p2).iloc[:101])


def test_baselines_reject_returns_and_bad_lookbacks() -> None:
    r = _prices().pct_change()
    with pytest.raises(ValueError, match="prices"):
        momentum(r)
    with pytest.raises(ValueError, match="lookback"):
        momentum(_prices(), 0)


def test_ridge_equals_augmented_least_squares() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4)) * [1, 10, 0.1, 3] + 5
    y = x @ [0.5, -0.1, 2.0, 0.0] + rng.normal(size=80)
    model = ridge_fit(x, y, alpha=3.0)
    z = (x - x.mean(0)) / x.std(0)
    # ridge = least squares on [Z; sqrt(alpha) I] with the centred label
    aug_x = np.vstack([z, np.sqrt(3.0) * np.eye(4)])
    aug_y = np.r_[y - y.mean(), np.zeros(4)]
    beta = np.linalg.lstsq(aug_x, aug_y, rcond=None)[0]
    np.testing.assert_allclose(model.coef[:, 0], beta, **EXACT)
    np.testing.assert_allclose(ridge_predict(model, x)[:, 0], z @ beta + y.mean(), **EXACT)
    ols = ridge_fit(x, y, alpha=0.0)
    design = np.c_[np.ones(80), x]
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(ridge_predict(ols, x)[:, 0], design @ coef, atol=1e-10)


def test_ridge_signals_fit_on_train_only_and_purge_the_last_label() -> None:
    p = _prices(300, 2)
    r = p.pct_change().fillna(0.0)
    feats = pd.concat({"mom": momentum(p, 3), "mr": mean_reversion(p, 10)}, axis=1)
    feats.columns = ["_".join(c) for c in feats.columns]
    y = next_bar_returns(r)
    train = p.index[:200]
    sig, model = ridge_signals(feats, y, train, alpha=2.0, purge=1)
    # changing anything after the training period (features or labels) changes nothing fitted
    feats2, y2 = feats.copy(), y.copy()
    feats2.iloc[200:] += 5.0
    y2.iloc[199:] = 0.3  # row 199's label is r_200, outside training: purged
    _, model2 = ridge_signals(feats2, y2, train, alpha=2.0, purge=1)
    np.testing.assert_array_equal(model.coef, model2.coef)
    _, leaky = ridge_signals(feats, y2, train, alpha=2.0, purge=0)
    assert not np.array_equal(model.coef, leaky.coef)
    assert sig.index.equals(p.index) and list(sig.columns) == ["c0", "c1"]
    assert np.isfinite(sig.to_numpy()).all()
    res = backtest(p, sig, market_is="prices", position="sign", cost_bps=5)
    assert len(res.returns) == 300


def test_ridge_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ridge_fit(np.array([[1.0], [np.nan]]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="same n"):
        ridge_fit(np.ones((3, 2)), np.ones(4))
