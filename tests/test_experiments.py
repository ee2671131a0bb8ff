"""The lookback sweep: a model whose window covers a planted lag beats one whose window does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from flashtrade_lib.data import simulate_market
from flashtrade_lib.experiments import SweepModel, lookback_sweep, summarise
from flashtrade_lib.metrics import forecast_skill

LAG = 16


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    torch.set_num_threads(1)
    market = simulate_market(3000, 1, 0, planted_lag=LAG, echo_coef=0.5)
    returns = market.log_returns
    target = returns.shift(-1).iloc[:, 0]  # label of bar t: the return of bar t+1 (horizon 1)
    oracle = market.oracle_forecast(1).iloc[:, 0]
    return lookback_sweep(returns, target, [LAG // 2, 2 * LAG], seeds=(0, 1), n_folds=1,
                          model=SweepModel(), oracle=oracle)


def test_tidy_rows_one_per_lookback_seed_fold(sweep: pd.DataFrame) -> None:
    assert len(sweep) == 2 * 2 * 1
    assert {"lookback", "seed", "fold", "ic", "r2", "hit", "oracle_ic", "oracle_r2"} <= set(sweep.columns)
    # every lookback is scored on the same test bars, so the oracle's score is identical
    assert sweep["oracle_r2"].nunique() == 1 and sweep["n_test"].nunique() == 1


def test_covering_the_lag_recovers_the_signal(sweep: pd.DataFrame) -> None:
    ic = sweep.groupby("lookback")["ic"].mean()
    short, long = ic[LAG // 2], ic[2 * LAG]
    oracle_ic = float(sweep["oracle_ic"].iloc[0])
    assert oracle_ic > 0.4  # echo_coef 0.5: the oracle's IC is about 0.5
    assert abs(short) < 0.1, f"a window shorter than the lag cannot see the echo, IC {short:.3f}"
    assert long > short + 0.2, f"IC {long:.3f} with lookback {2 * LAG} vs {short:.3f} with {LAG // 2}"
    assert long > 0.5 * oracle_ic
    r2 = sweep.groupby("lookback")["r2"].mean()
    assert r2[2 * LAG] > 0.05 > r2[LAG // 2]


def test_skill_definitions() -> None:
    """The sweep's ic, r2 and hit columns are the book's one forecast-skill metric."""
    y = np.array([1.0, -2.0, 3.0, -4.0, 5.0])
    perfect = forecast_skill(y, y)
    assert (perfect.ic, perfect.r2, perfect.hit_rate) == (pytest.approx(1.0), pytest.approx(1.0), 1.0)
    flipped = forecast_skill(-y, y)
    assert flipped.ic == pytest.approx(-1.0) and flipped.hit_rate == 0.0 and flipped.r2 < 0
    with pytest.raises(ValueError, match="same length"):
        forecast_skill(y[:3], y)


def test_summarise_interval_brackets_mean(sweep: pd.DataFrame) -> None:
    s = summarise(sweep, "ic")
    assert list(s.index) == [LAG // 2, 2 * LAG]
    assert (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()
    assert (s["n"] == 2).all()
    with pytest.raises(ValueError, match="no column"):
        summarise(sweep, "sharpe")


def test_bad_inputs_are_explained() -> None:
    x = np.zeros((100, 1))
    with pytest.raises(ValueError, match="align"):
        lookback_sweep(x, np.zeros(99), [4])
    with pytest.raises(ValueError, match="lookbacks"):
        lookback_sweep(x, np.zeros(100), [0])
