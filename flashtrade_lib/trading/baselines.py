"""Baseline strategies a model must beat: buy-and-hold, momentum, mean reversion, ridge.

Why: a transformer's Sharpe ratio means nothing on its own. Each baseline here
returns *signals aligned to the price index* (one column per asset), so it runs
through exactly the same :func:`flashtrade_lib.trading.backtest.backtest` — same bars, same
t+1 execution, same costs — as the model. Every signal at bar ``t`` uses prices up
to the close of ``t`` only. Where a baseline has no view yet (warm-up bars, missing
features) its signal is **0, meaning flat** — chosen here explicitly, because the
backtest rejects NaN signals rather than guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "buy_and_hold",
    "momentum",
    "mean_reversion",
    "next_bar_returns",
    "RidgeModel",
    "ridge_fit",
    "ridge_path",
    "ridge_predict",
    "ridge_signals",
]


def _prices(prices: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(prices, pd.Series):
        prices = prices.to_frame(name=prices.name if prices.name is not None else "asset")
    if not isinstance(prices, pd.DataFrame):
        raise TypeError(f"prices must be a DataFrame or Series, got {type(prices).__name__}")
    values = prices.to_numpy(dtype=float)
    if np.isnan(values).any() or (values <= 0).any():
        raise ValueError(
            "prices must be positive and without NaN; these baselines take *prices* — "
            "from simple returns r use (1 + r).cumprod()"
        )
    return prices


def _lookback(lookback: int) -> int:
    if not isinstance(lookback, (int, np.integer)) or lookback < 1:
        raise ValueError(f"lookback must be a positive number of bars, got {lookback!r}")
    return int(lookback)


def buy_and_hold(
    prices: pd.DataFrame | pd.Series, weights: pd.Series | None = None
) -> pd.DataFrame:
    """Target weights of a portfolio bought at the first bar and never rebalanced.

    Use with ``position="weights"``. The weights drift with prices
    (``w_{t,a} ∝ w_{0,a} P_{t,a} / P_{0,a}``), so with the backtest's drift-aware
    turnover the only trade is the initial purchase. ``weights`` defaults to equal
    weights summing to 1; weights summing to less keep the rest in cash.
    """
    p = _prices(prices)
    n = p.shape[1]
    w0 = np.full(n, 1.0 / n) if weights is None else pd.Series(weights).reindex(p.columns)
    w0 = np.asarray(w0, dtype=float)
    if np.isnan(w0).any():
        raise ValueError(f"weights must give a value for every column {list(p.columns)}")
    value = w0 * (p.to_numpy(dtype=float) / p.to_numpy(dtype=float)[0])
    total = value.sum(axis=1, keepdims=True) + (1.0 - w0.sum())  # cash earns nothing
    return pd.DataFrame(value / total, index=p.index, columns=p.columns)


def momentum(prices: pd.DataFrame | pd.Series, lookback: int = 24) -> pd.DataFrame:
    """Trailing ``lookback``-bar return ``P_t / P_{t-lookback} - 1``: long what went up."""
    p = _prices(prices)
    return (p / p.shift(_lookback(lookback)) - 1.0).fillna(0.0)


def mean_reversion(prices: pd.DataFrame | pd.Series, lookback: int = 24) -> pd.DataFrame:
    """Minus the z-score of the price against its trailing ``lookback``-bar mean: fade moves."""
    p = _prices(prices)
    lb = _lookback(lookback)
    if lb < 2:
        raise ValueError("mean_reversion needs lookback >= 2 for a standard deviation")
    roll = p.rolling(lb, min_periods=lb)
    sd = roll.std(ddof=1)
    z = (p - roll.mean()) / sd.where(sd > 0)
    return (-z).fillna(0.0)


def next_bar_returns(simple_returns: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """The label for a one-bar forecast: row ``t`` holds ``r_{t+1}`` (NaN in the last row).

    It is known only at the close of ``t+1`` — so the last training row's label
    reaches one bar past the training period (see ``purge`` in :func:`ridge_signals`).
    """
    return simple_returns.shift(-1)


@dataclass(frozen=True)
class RidgeModel:
    """A fitted ridge regression: standardisation and coefficients, all from training data."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    coef: np.ndarray  # (n_features, n_targets), on standardised features
    intercept: np.ndarray  # (n_targets,)
    alpha: float


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float = 1.0) -> RidgeModel:
    """Closed-form ridge: ``beta = (Z'Z + alpha I)^-1 Z'(y - mean y)`` on standardised ``Z``.

    Features are standardised with the *training* mean and std (a constant feature
    gets scale 1); the intercept is not penalised. ``alpha`` penalises the sum of
    squares as in scikit-learn's ``Ridge`` (not scaled by the number of rows).
    """
    return ridge_path(x, y, (alpha,))[0]


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[RidgeModel]:
    """:func:`ridge_fit` for several penalties at once, one model per ``alpha``.

    Why: choosing a penalty fits the same data several times; the standardisation and
    ``Z'Z`` (the costly part with wide windows: rows × features²) are computed once.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    y2 = y[:, None] if y.ndim == 1 else y
    if x.ndim != 2 or y2.ndim != 2 or x.shape[0] != y2.shape[0]:
        raise ValueError(f"x must be (n, p) and y (n,) or (n, k) with the same n; got {x.shape}, {y.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 training rows, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y2).all()):
        raise ValueError("training data has NaN/inf; drop those rows before fitting")
    if any(a < 0 for a in alphas):
        raise ValueError(f"alpha must be >= 0, got {list(alphas)}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    y_mean = y2.mean(axis=0)
    gram, zty = z.T @ z, z.T @ (y2 - y_mean)
    eye = np.eye(z.shape[1])
    return [RidgeModel(mean, scale, np.linalg.solve(gram + a * eye, zty), y_mean, float(a)) for a in alphas]


def ridge_predict(model: RidgeModel, x: np.ndarray) -> np.ndarray:
    """Predictions ``(n, k)`` for feature rows ``x`` (NaN rows give NaN)."""
    z = (np.asarray(x, dtype=float) - model.x_mean) / model.x_scale
    return z @ model.coef + model.intercept


def ridge_signals(
    features: pd.DataFrame,
    target: pd.DataFrame | pd.Series,
    train_index: pd.Index,
    *,
    alpha: float = 1.0,
    purge: int = 1,
    predict_index: pd.Index | None = None,
) -> tuple[pd.DataFrame, RidgeModel]:
    """Fit ridge on ``train_index`` rows only and predict ``target`` on ``predict_index``.

    ``features`` (time × p) must be causal (row ``t`` uses data up to ``t``);
    ``target`` (time × assets) is the forecast label, e.g. :func:`next_bar_returns`.
    The last ``purge`` training rows are dropped: their labels reach into the bars
    after training. Training rows with NaN features or labels are dropped; predicted
    rows with NaN features get signal 0 (flat). Returns (signals, fitted model).
    """
    if not isinstance(features, pd.DataFrame):
        raise TypeError("features must be a DataFrame (time × features)")
    tgt = target.to_frame() if isinstance(target, pd.Series) else target
    if not features.index.equals(tgt.index):
        raise ValueError("features and target must have the same index; align them first")
    if purge < 0:
        raise ValueError(f"purge must be >= 0 bars, got {purge}")
    train_index = pd.Index(train_index)
    if not train_index.isin(features.index).all():
        raise ValueError("train_index has timestamps that are not in the features index")
    train_index = train_index.sort_values()
    if purge:
        train_index = train_index[:-purge]
    x = features.loc[train_index].to_numpy(dtype=float)
    y = tgt.loc[train_index].to_numpy(dtype=float)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    model = ridge_fit(x[ok], y[ok], alpha)
    where = features.index if predict_index is None else pd.Index(predict_index)
    pred = ridge_predict(model, features.loc[where].to_numpy(dtype=float))
    pred = np.where(np.isfinite(pred), pred, 0.0)
    return pd.DataFrame(pred, index=where, columns=tgt.columns), model
