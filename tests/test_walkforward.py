"""Walk-forward: re-fit per fold on the past only, trade the future, join the results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import backtest
from flashtrade_lib.trading.baselines import (
    momentum,
    next_bar_returns,
    ridge_predict,
    ridge_signals,
)
from flashtrade_lib.trading.walkforward import fold_positions, walk_forward

EXACT = {"rtol": 0, "atol": 1e-12}


def _prices(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    idx = pd.date_range("2024-01-01", periods=n, freq="h")
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0)), idx,
                          columns=["a", "b"])
    return stamp(prices, "test", "1h", calendar="crypto")  # hourly 24/7 bars: the clock the data carries


def _expanding(n: int, first: int, step: int) -> list[tuple[slice, slice]]:
    return [(slice(0, s), slice(s, min(s + step, n))) for s in range(first, n, step)]


def test_each_fold_is_fitted_on_its_past_and_backtested_on_its_future() -> None:
    p = _prices()
    r = p.pct_change().fillna(0.0)
    seen: list[pd.DatetimeIndex] = []

    def fit(train: pd.DatetimeIndex) -> pd.Series:
        seen.append(train)
        return np.sign(r.loc[train].mean())  # "model": the sign of the average return

    def signal(model: pd.Series, test: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(np.tile(model.to_numpy(), (len(test), 1)), test, columns=p.columns)

    folds = _expanding(len(p), 100, 100)
    wf = walk_forward(folds, fit, signal, market=p, market_is="prices", position="weights",
                      cost_bps=5)
    assert len(wf.folds) == 3 and len(wf.returns) == 300
    assert wf.returns.index.equals(p.index[100:])
    for (train, test), f, used in zip(folds, wf.folds, seen, strict=True):
        assert used.equals(p.index[train]) and used.max() < f.test_start
        # the fold's returns are a plain backtest of its test bars with its model's signals
        alone = backtest(p.iloc[test], signal(f.model, p.index[test]), market_is="prices",
                         position="weights", cost_bps=5)
        np.testing.assert_allclose(f.returns, alone.returns, **EXACT)
    assert wf.metrics()["bars"] == 300
    table = wf.fold_table()
    assert list(table["n_train"]) == [100, 200, 300]
    np.testing.assert_allclose(wf.equity.iloc[-1], np.prod(1 + wf.returns), rtol=1e-12)


def test_history_gives_vol_targeting_a_window_without_leaking_positions() -> None:
    p = _prices()
    folds = [(slice(0, 200), slice(200, 300)), (slice(0, 300), slice(300, 400))]

    def signal(model, test):
        return momentum(p, 5).loc[test]

    wf = walk_forward(folds, lambda train: None, signal, market=p, market_is="prices",
                      history=48, position="tanh", target_vol=0.2, vol_lookback="48h")
    for f in wf.folds:
        assert (f.positions.iloc[0] == 0).all()  # each fold starts flat
        assert (f.positions.iloc[1:] != 0).any().any()  # vol window exists from the start


def test_ridge_walk_forward_runs_end_to_end() -> None:
    p = _prices()
    r = p.pct_change().fillna(0.0)
    feats = pd.concat([momentum(p, 3).add_prefix("m3_"), momentum(p, 24).add_prefix("m24_")], axis=1)
    y = next_bar_returns(r)

    def fit(train):
        return ridge_signals(feats, y, train, alpha=10.0, purge=1)[1]

    def signal(model, test):
        return pd.DataFrame(ridge_predict(model, feats.loc[test].to_numpy()), test, columns=p.columns)

    wf = walk_forward(_expanding(len(p), 150, 125), fit, signal, market=p, market_is="prices",
                      position="sign", cost_bps=5)
    assert len(wf.returns) == 250 and np.isfinite(wf.returns).all()


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        ([(slice(0, 100), slice(50, 150))], "must come after"),
        ([(slice(0, 100), slice(100, 200)), (slice(0, 150), slice(150, 250))], "overlaps"),
        ([(slice(0, 100), np.r_[100:120, 130:140])], "contiguous"),
        ([(slice(0, 100), slice(400, 500))], "empty"),
        ([], "no folds"),
        ([(slice(0, 10),)], "pair"),
    ],
)
def test_bad_folds_get_clear_errors(folds, message: str) -> None:
    p = _prices()

    def signal(model, test):
        return pd.DataFrame(1.0, test, columns=p.columns)

    with pytest.raises((ValueError, TypeError), match=message):
        walk_forward(folds, lambda train: None, signal, market=p, market_is="prices")


def test_signal_must_cover_exactly_the_test_bars() -> None:
    p = _prices()
    with pytest.raises(ValueError, match="expected exactly"):
        walk_forward([(slice(0, 100), slice(100, 200))], lambda t: None,
                     lambda m, test: pd.DataFrame(1.0, test[:-1], columns=p.columns),
                     market=p, market_is="prices")


def test_fold_positions_accepts_every_kind_of_index() -> None:
    idx = pd.date_range("2024", periods=10, freq="h")
    mask = np.zeros(10, dtype=bool)
    mask[2:5] = True
    for part in (slice(2, 5), np.r_[4, 2, 3], idx[2:5], mask, idx[2:5].to_numpy()):
        np.testing.assert_array_equal(fold_positions(part, idx), [2, 3, 4])
    with pytest.raises(ValueError, match="not in the market index"):
        fold_positions(pd.date_range("2030", periods=2, freq="h"), idx)


def test_accepts_the_data_chapters_walk_forward_folds() -> None:
    splits = pytest.importorskip("flashtrade_lib.data.splits")
    p = _prices()
    n = len(p)
    # one sample per bar; its label (the next bar's return) spans bar t+1
    intervals = np.c_[np.arange(n) + 1, np.arange(n) + 1]
    folds = splits.walk_forward_folds(intervals, n_folds=3, embargo=1)
    seen = []

    def fit(train):
        seen.append(train)
        return None

    wf = walk_forward(folds, fit, lambda model, test: momentum(p, 5).loc[test],
                      market=p, market_is="prices", cost_bps=5)
    assert len(wf.folds) == 3
    for fold, f, train in zip(folds, wf.folds, seen, strict=True):
        assert train.equals(p.index[fold.train]) and f.returns.index.equals(p.index[fold.test])
        assert train.max() < f.test_start


def test_fill_lag_delays_every_fill_by_one_bar_within_each_fold() -> None:
    p = _prices()
    folds = _expanding(len(p), 100, 100)

    def signal(model, test):
        return momentum(p, 5).loc[test]

    now = walk_forward(folds, lambda train: None, signal, market=p, market_is="prices", cost_bps=5)
    late = walk_forward(folds, lambda train: None, signal, market=p, market_is="prices", cost_bps=5,
                        fill_lag=1)
    assert late.fill_lag == 1
    for a, b in zip(now.folds, late.folds, strict=True):
        assert (b.positions.iloc[:2] == 0).all().all()  # flat one bar longer at the fold's start
        np.testing.assert_allclose(b.positions.iloc[1:], a.positions.iloc[:-1], **EXACT)
    costs = pd.concat([f.backtest.costs.loc[f.returns.index] for f in late.folds])
    np.testing.assert_allclose(late.gross_returns - costs, late.returns, **EXACT)
    with pytest.raises(ValueError, match="fill_lag"):
        walk_forward(folds, lambda train: None, signal, market=p, market_is="prices", fill_lag=-1)


def test_funding_rates_on_the_market_bars_reach_every_fold() -> None:
    from flashtrade_lib.trading.costs import FUNDING_PER_8H, funding_rates

    p = _prices()
    folds = _expanding(len(p), 200, 100)
    sig = pd.DataFrame(1.0, index=p.index, columns=p.columns)  # long both assets: each pays funding every bar held
    kw = {"market": p, "market_is": "prices", "position": "sign", "cost_bps": 0.0}
    free = walk_forward(folds, lambda train: None, lambda _, idx: sig.loc[idx], **kw)
    funded = walk_forward(folds, lambda train: None, lambda _, idx: sig.loc[idx], funding=funding_rates(p), **kw)
    held = funded.returns.index[(funded.positions != 0).all(axis=1).to_numpy()]
    assert len(held) > 0
    np.testing.assert_allclose((free.returns - funded.returns).loc[held], 2 * FUNDING_PER_8H / 8)
