"""Held-out scoring of one model's forecasts against the baselines, on the same test windows.

Why a module: chapters 6 and 7 (and the test that holds chapter 6's defaults to
learning the planted echo) must score the transformer, the baselines and — on a
synthetic market — the oracle in exactly the same way, on exactly the same decision
bars. A model is judged against the best baseline that sees **the same information**
(:func:`window_ridge_forecast`: ridge on the model's whole window); a baseline that sees
less (the last bar only) shows what the window adds, not what the model adds. Every score is :func:`flashtrade_lib.trading.metrics.forecast_skill`; every
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
    "window_features",
    "window_ridge_forecast",
    "raw_last_return",
    "SAME_INFORMATION",
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


def window_features(data: Any, part: str) -> np.ndarray:
    """Every window of ``part`` flattened, ``(n, lookback * F)``: exactly what the model reads."""
    ds = data.dataset
    bars = ds.times[getattr(data.split, part)]
    lookback = ds.lookback
    rows = bars[:, None] - np.arange(lookback - 1, -1, -1)[None, :]  # oldest bar first
    return ds.x.numpy()[rows].reshape(len(bars), -1)


SAME_INFORMATION = "ridge (same window)"
"""The name of the same-information baseline in every table and verdict of chapters 6-7."""

RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0)
"""The ridge penalties tried; the one with the lowest validation MSE is used (never the test)."""


def window_ridge_forecast(data: Any, part: str = "test", *, alphas: tuple[float, ...] = RIDGE_ALPHAS
                          ) -> tuple[np.ndarray, float]:
    """Ridge on the model's own window (every feature of every bar), the penalty chosen on validation.

    On a linear market (chapter 5's echo is an AR process) this is the correctly
    specified model, so a transformer that matches it has learned what a regression
    learns; only a transformer that beats it has learned something a linear model on
    the same inputs cannot. Returns (forecasts on ``part``, chosen alpha).
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_predict

    x_train, y_train = window_features(data, "train"), part_targets(data, "train")
    x_val, y_val = window_features(data, "val"), part_targets(data, "val")
    fits = [ridge_fit(x_train, y_train, alpha=a) for a in alphas]
    mse = [float(np.mean((ridge_predict(f, x_val).ravel() - y_val) ** 2)) for f in fits]
    best = fits[int(np.argmin(mse))]
    return ridge_predict(best, window_features(data, part)).ravel(), best.alpha


def raw_last_return(data: Any, part: str) -> np.ndarray:
    """The decision bar's one-bar log return in *return units* (the feature un-standardised).

    Momentum's forecast must be in the target's units: the model's inputs are
    standardised (mean 0, sd 1), the target is a raw log return (sd ~ 0.01), and a
    standardised feature used as a forecast gives an R² of minus thousands.
    """
    features = data.metadata["features"]
    col = features.index(f"log_return/{data.metadata['symbol']}")
    scaler = data.metadata["scaler"]
    z = last_bar_features(data, part)[:, col].astype(np.float64)
    return z * scaler["std"][col] + scaler["mean"][col]


def part_targets(data: Any, part: str) -> np.ndarray:
    """The label of every window of ``part`` (``train``, ``val`` or ``test``), ``(n,)``."""
    bars = data.dataset.times[getattr(data.split, part)]
    return data.dataset.y[bars].numpy().astype(np.float64).ravel()


def baseline_forecasts(data: Any, *, ridge_alpha: float = 10.0) -> dict[str, np.ndarray]:
    """Forecasts of the simple methods on the test windows of ``data`` (a ``MarketData``).

    * ``momentum`` — the next return equals the last one (:func:`raw_last_return`, in return units),
    * ``ridge (last bar)`` — ridge on the decision bar's features only, fitted on the training
      windows (:func:`flashtrade_lib.trading.baselines.ridge_fit`): it shows what the window adds,
    * ``ridge (same window)`` — ridge on the model's whole window (:func:`window_ridge_forecast`),
      the same-information baseline every verdict about the model names.
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_predict

    x_train, x_test = last_bar_features(data, "train"), last_bar_features(data, "test")
    ridge = ridge_fit(x_train, part_targets(data, "train"), alpha=ridge_alpha)
    return {
        "momentum": raw_last_return(data, "test"),
        "ridge (last bar)": ridge_predict(ridge, x_test).ravel(),
        SAME_INFORMATION: window_ridge_forecast(data, "test")[0],
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
