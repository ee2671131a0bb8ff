"""The lookback sweep: a window that covers a planted lag is better, by a test over all lookbacks tried."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flashtrade_lib.data import simulate_market
from flashtrade_lib.trading.costs import FUNDING_PER_8H
from flashtrade_lib.trading.lookback import (
    LookbackSweep,
    SweepModel,
    compare_lookbacks,
    lookback_sweep,
    mean_forecasts,
    net_returns,
    summarise,
)

LAG = 16


@pytest.fixture(scope="module")
def market():
    return simulate_market(3000, 1, 0, planted_lag=LAG, echo_coef=0.5)


@pytest.fixture(scope="module")
def sweep(market) -> LookbackSweep:
    torch.set_num_threads(1)
    returns = market.log_returns
    target = returns.shift(-1).iloc[:, 0]  # label of bar t: the return of bar t+1 (horizon 1)
    oracle = market.oracle_forecast(1).iloc[:, 0]
    reported: list[dict] = []
    result = lookback_sweep(returns, target, [LAG // 2, 2 * LAG], seeds=(0, 1), n_folds=2,
                            model=SweepModel(), oracle=oracle, on_run=reported.append)
    assert reported == result.runs.to_dict("records")  # each run reported as it finished, none missing
    return result


def test_tidy_rows_one_per_lookback_seed_fold(sweep: LookbackSweep) -> None:
    runs = sweep.runs
    assert len(runs) == 2 * 2 * 2
    assert {"lookback", "seed", "fold", "ic", "rank_ic", "r2", "hit", "oracle_ic", "oracle_r2"} <= set(runs.columns)
    # every lookback is scored on the same test bars, so the oracle's score per fold is identical
    assert (runs.groupby("fold")["oracle_r2"].nunique() == 1).all()
    assert runs["n_test"].nunique() == 1
    # every forecast is kept: one per (lookback, seed, test bar)
    assert len(sweep.forecasts) == int(runs["n_test"].sum())
    by_run = sweep.forecasts.groupby(["lookback", "seed"])["bar"].apply(tuple)
    assert by_run.nunique() == 1  # the same bars for every lookback and seed


def test_covering_the_lag_recovers_the_signal(sweep: LookbackSweep) -> None:
    ic = sweep.runs.groupby("lookback")["ic"].mean()
    short, long = ic[LAG // 2], ic[2 * LAG]
    oracle_ic = float(sweep.runs["oracle_ic"].mean())
    assert oracle_ic > 0.4  # echo_coef 0.5: the oracle's IC is about 0.5
    assert abs(short) < 0.1, f"a window shorter than the lag cannot see the echo, IC {short:.3f}"
    assert long > 0.5 * oracle_ic, f"IC {long:.3f} with lookback {2 * LAG}, oracle {oracle_ic:.3f}"


def test_summarise_is_clustered_by_fold(sweep: LookbackSweep) -> None:
    s = summarise(sweep, "ic")
    assert list(s.index) == [LAG // 2, 2 * LAG]
    assert (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()
    assert (s["folds"] == 2).all() and (s["runs"] == 4).all()
    # two folds: a t interval with 1 degree of freedom over the two fold means, on Fisher's z (an IC)
    runs = sweep.runs[sweep.runs["lookback"] == LAG // 2]
    z = np.arctanh(runs.groupby("fold")["ic"].mean().to_numpy())
    half = 12.706 * z.std(ddof=1) / np.sqrt(2)
    assert s.loc[LAG // 2, "ci_high"] == pytest.approx(np.tanh(z.mean() + half), rel=1e-3)
    assert s.loc[LAG // 2, "ci_low"] == pytest.approx(np.tanh(z.mean() - half), rel=1e-3)
    assert (s["ci_low"] >= -1).all() and (s["ci_high"] <= 1).all()
    # the same-information linear baseline stands beside every run
    assert {"linear_ic", "linear_r2"} <= set(sweep.runs.columns) and "linear" in sweep.forecasts
    with pytest.raises(ValueError, match="no column"):
        summarise(sweep, "sharpe")


def test_net_returns_trade_every_test_bar_through_the_engine(sweep: LookbackSweep, market) -> None:
    close = market.panel["close"].iloc[:, 0]
    free = net_returns(sweep, close, cost_bps=0.0, funding_per_8h=0.0)
    costly = net_returns(sweep, close, cost_bps=10.0, threshold=0.0)
    wide = mean_forecasts(sweep)
    assert list(free.columns) == [LAG // 2, 2 * LAG]
    assert len(free) == len(wide)  # one held bar per decision bar
    # the same positions, minus costs: never better after costs
    assert (costly.sum() < net_returns(sweep, close, cost_bps=0.0, funding_per_8h=0.0, threshold=0.0).sum()).all()
    # without costs, trading the sign of a forecast that sees the echo makes money
    assert free[2 * LAG].mean() > 0
    # funding (the default: Bybit's baseline, longs pay) is charged per bar held, whatever the trades
    funded = net_returns(sweep, close, cost_bps=0.0)
    per_bar = FUNDING_PER_8H / 8  # hourly bars
    held = np.sign(free - funded).abs() > 0
    assert np.allclose((free - funded)[held].abs().to_numpy(), per_bar, rtol=0.05)
    with pytest.raises(ValueError, match="same index"):
        net_returns(sweep, close.iloc[1:])


def test_compare_lookbacks_finds_the_covering_window(sweep: LookbackSweep, market) -> None:
    close = market.panel["close"].iloc[:, 0]
    net = net_returns(sweep, close, cost_bps=0.0, funding_per_8h=0.0)
    result = compare_lookbacks(sweep, net, reps=200)
    assert result.benchmark == LAG // 2 and result.lookbacks == (LAG // 2, 2 * LAG)
    assert result.skill_spa.n_trials == 1
    assert result.skill_spa.p_value < 0.05, str(result.skill_spa)
    assert f"lookback {2 * LAG}" in result.pnl_mcs.included
    assert result.skill_mcs.included == (f"lookback {2 * LAG}",)


def test_bad_inputs_are_explained() -> None:
    x = np.zeros((100, 1))
    with pytest.raises(ValueError, match="align"):
        lookback_sweep(x, np.zeros(99), [4])
    with pytest.raises(ValueError, match="lookbacks"):
        lookback_sweep(x, np.zeros(100), [0])


def test_a_forecast_that_never_clears_the_cost_never_trades(sweep: LookbackSweep, market) -> None:
    close = market.panel["close"].iloc[:, 0]
    flat = net_returns(sweep, close, cost_bps=10.0, threshold=1.0)  # no forecast moves 100 %
    assert (flat.to_numpy() == 0).all()
    result = compare_lookbacks(sweep, flat, reps=99)
    assert result.pnl_spa is None and result.pnl_mcs is None
    assert result.skill_spa is not None


def test_lookbacks_that_never_trade_are_named_not_ranked(sweep: LookbackSweep, market) -> None:
    close = market.panel["close"].iloc[:, 0]
    net = net_returns(sweep, close, cost_bps=0.0, funding_per_8h=0.0)
    net[LAG // 2] = 0.0  # as if the short lookback's forecast never cleared the cost
    result = compare_lookbacks(sweep, net, reps=99)
    assert result.never_traded == (LAG // 2,)
    assert result.pnl_mcs is None  # one lookback left that traded: nothing to rank
    assert result.pnl_spa is not None
