"""Held-out scoring of one model's forecasts against the baselines, on the same test windows.

Why a module: chapters 6 and 7 (and the test that holds chapter 6's defaults to
learning the planted echo) must score the transformer, the last-bar ridge, momentum
and — on a synthetic market — the oracle in exactly the same way, on exactly the same
decision bars. Every score is :func:`flashtrade_lib.trading.metrics.forecast_skill`; every
"better than" is a paired test (:func:`flashtrade_lib.trading.stats.paired_difference_test`),
never a comparison of point estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from flashtrade_lib.trading.metrics import forecast_skill

__all__ = [
    "last_bar_features",
    "part_targets",
    "baseline_forecasts",
    "oracle_forecast",
    "skill_table",
    "windows_of_length",
]


def last_bar_features(data: Any, part: str) -> np.ndarray:
    """The (standardised) features of the decision bar of every window of ``part``, ``(n, F)``."""
    bars = data.dataset.times[getattr(data.split, part)]
    return data.dataset.x[bars].numpy()


def part_targets(data: Any, part: str) -> np.ndarray:
    """The label of every window of ``part`` (``train``, ``val`` or ``test``), ``(n,)``."""
    bars = data.dataset.times[getattr(data.split, part)]
    return data.dataset.y[bars].numpy().astype(np.float64).ravel()


def baseline_forecasts(data: Any, *, ridge_alpha: float = 10.0) -> dict[str, np.ndarray]:
    """Forecasts of the simple methods on the test windows of ``data`` (a ``MarketData``).

    * ``momentum`` — the next return equals the last one (the decision bar's log return feature),
    * ``ridge (last bar)`` — a ridge regression on the decision bar's features, fitted on the
      training windows only (:func:`flashtrade_lib.trading.baselines.ridge_fit`).
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_predict

    x_train, x_test = last_bar_features(data, "train"), last_bar_features(data, "test")
    ridge = ridge_fit(x_train, part_targets(data, "train"), alpha=ridge_alpha)
    ret_col = data.metadata["features"].index(f"log_return/{data.metadata['symbol']}")
    return {
        "momentum": x_test[:, ret_col].astype(np.float64),
        "ridge (last bar)": ridge_predict(ridge, x_test).ravel(),
    }


def oracle_forecast(data: Any) -> np.ndarray:
    """The synthetic market's true conditional mean on the test windows (``MarketData.market``)."""
    if data.market is None:
        raise ValueError("only a synthetic market knows the oracle forecast; this data has no market")
    horizon = int(data.metadata["horizon"])
    symbol = data.metadata["symbol"]
    truth = data.market.oracle_forecast(horizon)[symbol].to_numpy()
    return truth[data.dataset.times[data.split.test]].astype(np.float64)


def skill_table(forecasts: Mapping[str, np.ndarray], outcome: np.ndarray) -> pd.DataFrame:
    """One row of :func:`~flashtrade_lib.trading.metrics.forecast_skill` per forecast, same outcome."""
    rows = {name: forecast_skill(f, outcome) for name, f in forecasts.items()}
    return pd.DataFrame({name: {"IC": s.ic, "rank IC": s.rank_ic, "R²": s.r2, "hit rate": s.hit_rate,
                                "n": s.n} for name, s in rows.items()}).T


def windows_of_length(data: Any, part: str, lookback: int) -> Any:
    """The same decision bars and labels as ``part`` of ``data``, with ``lookback``-bar windows.

    For asking what a trained model does with more (or less) history than it was trained
    on: only the window length changes, never the bars scored.
    """
    from flashtrade_lib.data import WindowDataset

    ds = data.dataset
    return WindowDataset(ds.x, ds.y, lookback, horizon=ds.horizon, times=ds.times[getattr(data.split, part)])
