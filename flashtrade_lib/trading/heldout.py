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
    "VAR_BASELINE",
    "var_ridge_forecast",
    "ridge_on_windows",
    "cross_sectional_ic",
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
    from flashtrade_lib.trading.baselines import ridge_path, ridge_predict

    x_train, y_train = window_features(data, "train"), part_targets(data, "train")
    x_val, y_val = window_features(data, "val"), part_targets(data, "val")
    fits = ridge_path(x_train, y_train, alphas)
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


VAR_BASELINE = "ridge VAR (all assets' lagged returns)"
"""The same-information baseline of chapter 10's cross-asset models."""


def var_ridge_forecast(train: Any, test: Any, *, lags: int | None = None, return_feature: int = 0,
                       alphas: tuple[float, ...] = RIDGE_ALPHAS) -> np.ndarray:
    """A vector autoregression by ridge: every asset's next return from all assets' last ``lags`` returns.

    ``train``/``test`` are :class:`~flashtrade_lib.data.WindowDataset` of ``(lookback, assets,
    features)`` windows (chapter 10); feature ``return_feature`` is each asset's log return.
    A lead–lag market (asset 0's shock moves the others two bars later) is linear in these
    inputs, so this regression recovers it; a cross-asset transformer that does not beat it has
    found nothing a VAR cannot. The penalty is chosen on the last fifth of the training windows.
    Returns ``(test windows, assets)``.
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_path, ridge_predict

    lookback = train.lookback if lags is None else int(lags)
    if not 1 <= lookback <= train.lookback or train.x.ndim != 3:
        raise ValueError(f"need (time, assets, features) windows and 1 <= lags <= {train.lookback}, got lags={lags}")

    def design(ds: Any) -> tuple[np.ndarray, np.ndarray]:
        bars = np.asarray(ds.times)
        rows = bars[:, None] - np.arange(lookback - 1, -1, -1)[None, :]
        x = ds.x.numpy()[rows][..., return_feature]  # (n, lags, assets)
        return x.reshape(len(bars), -1), ds.y.numpy()[bars].astype(np.float64)

    x, y = design(train)
    cut = int(0.8 * len(y))
    fits = ridge_path(x[: cut - 1], y[: cut - 1], alphas)
    mse = [float(np.mean((ridge_predict(f, x[cut:]) - y[cut:]) ** 2)) for f in fits]
    best = ridge_fit(x, y, alpha=float(alphas[int(np.argmin(mse))]))
    return ridge_predict(best, design(test)[0])


def cross_sectional_ic(forecast: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Per-bar rank IC across assets (the industry's IC): one Spearman correlation per row.

    Why: coins move together (correlations 0.6-0.8), so an IC pooled over (bar, asset) rows is
    mostly *market timing* — did the forecast get the common move right? — while a cross-
    sectional IC asks which asset does better than the others at the same bar. Bars where
    the forecasts or the outcomes do not vary across assets give NaN (drop them to average).
    """
    from scipy.stats import rankdata

    f, y = np.asarray(forecast, dtype=float), np.asarray(outcome, dtype=float)
    if f.shape != y.shape or f.ndim != 2 or f.shape[1] < 3:
        raise ValueError(f"forecast and outcome must be (bars, assets >= 3) of one shape, got {f.shape}, {y.shape}")
    rf, ry = rankdata(f, axis=1), rankdata(y, axis=1)
    rf, ry = rf - rf.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rf**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rf * ry).sum(axis=1) / den, np.nan)


def ridge_on_windows(train: Any, test: Any, *, alphas: tuple[float, ...] = RIDGE_ALPHAS) -> np.ndarray:
    """Ridge on every value of every window of a :class:`~flashtrade_lib.data.WindowDataset`, any shape.

    The same-information baseline for models whose windows are not one bar per row (the order
    book's levels × snapshots, chapter 10): exactly the numbers the model reads, read linearly.
    The penalty is chosen on the last fifth of the training windows. Returns ``(test windows, targets)``.
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_path, ridge_predict

    def design(ds: Any) -> tuple[np.ndarray, np.ndarray]:
        bars = np.asarray(ds.times)
        rows = bars[:, None] - np.arange(ds.lookback - 1, -1, -1)[None, :]
        return ds.x.numpy()[rows].reshape(len(bars), -1), ds.y.numpy()[bars].astype(np.float64)

    x, y = design(train)
    cut = int(0.8 * len(y))
    fits = ridge_path(x[: cut - 1], y[: cut - 1], alphas)
    mse = [float(np.mean((ridge_predict(f, x[cut:]).reshape(y[cut:].shape) - y[cut:]) ** 2)) for f in fits]
    best = ridge_fit(x, y, alpha=float(alphas[int(np.argmin(mse))]))
    return ridge_predict(best, design(test)[0])
