"""Causal features: the value at bar ``t`` uses only bars ``<= t``.

Why so strict: a feature that peeks one bar ahead (a centred moving average, a
scaler fitted on the whole history, ``shift(-1)``) makes any model look brilliant
in a backtest and useless in trading. Every function here is built from trailing
windows (``rolling``, ``ewm(adjust=False)``, ``diff``), and the test suite checks
causality directly: changing any bar after ``t`` leaves every value at ``<= t``
unchanged. Scalers are fitted on the training range only (:class:`Standardizer`).

The features are the seed chapter's: one-bar log return, rolling volatility of log
returns, volume / moving-average volume, close / moving-average close, and Wilder's
RSI. Bars the panel flagged as gaps (filled, volume 0) flow through unchanged;
unfilled (NaN) bars make the windows touching them NaN, and
:class:`~flashtrade_lib.data.windows.WindowDataset` skips windows containing NaN.

Inputs are checked first: timestamps must be sorted and unique (a trailing window
over rows in file order would mix future bars into the past), volume must not be
negative, and one asset's bars with missing slots must be put on a grid with
:func:`~flashtrade_lib.data.panel.align_bars` (which flags them, as a panel does) —
unless the market was closed then (``allow_gaps=True``, e.g. FX weekends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flashtrade_lib.data.times import check_time_order

__all__ = [
    "FEATURES",
    "Standardizer",
    "log_returns",
    "make_features",
    "price_ma_ratio",
    "rolling_volatility",
    "rsi",
    "volume_ma_ratio",
]

FEATURES = ("log_return", "volatility", "volume_ratio", "price_ma_ratio", "rsi")


def _check_window(window: int, name: str) -> None:
    if int(window) != window or window < 2:
        raise ValueError(f"{name} must be a whole number of bars >= 2, got {window}")


def log_returns(close: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """``log(close_t / close_{t-1})``: NaN at the first bar."""
    return np.log(close).diff()


def rolling_volatility(close: pd.Series | pd.DataFrame, window: int = 24) -> pd.Series | pd.DataFrame:
    """Standard deviation of the last ``window`` one-bar log returns (trailing)."""
    _check_window(window, "window")
    return log_returns(close).rolling(window).std()


def volume_ma_ratio(volume: pd.Series | pd.DataFrame, window: int = 24) -> pd.Series | pd.DataFrame:
    """Volume relative to its trailing ``window``-bar mean (1 = an average bar)."""
    _check_window(window, "window")
    return volume / volume.rolling(window).mean()


def price_ma_ratio(close: pd.Series | pd.DataFrame, window: int = 24) -> pd.Series | pd.DataFrame:
    """Close relative to its trailing ``window``-bar mean (1 = at the average)."""
    _check_window(window, "window")
    return close / close.rolling(window).mean()


def rsi(close: pd.Series | pd.DataFrame, window: int = 14) -> pd.Series | pd.DataFrame:
    """Wilder's relative strength index in [0, 100], with his recursive (trailing) smoothing."""
    _check_window(window, "window")
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    out = 100 - 100 / (1 + gain / loss)
    return out.where(loss != 0, 100.0).where(gain.notna())


def _check_bars(bars: pd.DataFrame, allow_gaps: bool) -> None:
    """Sorted unique timestamps, no negative volume, and no unflagged holes in one asset's bars."""
    check_time_order(bars.index, "bars")
    volume = bars["volume"].to_numpy(dtype=np.float64)
    if (volume < 0).any():
        raise ValueError(f"bars have {int((volume < 0).sum())} negative volumes; volume is a count, fix the data")
    flat = not isinstance(bars.columns, pd.MultiIndex)
    if flat and not allow_gaps and "gap" not in bars.columns and isinstance(bars.index, pd.DatetimeIndex):
        steps = np.diff(bars.index.as_unit("ns").asi8)
        if len(steps) > 1:
            step = np.median(steps)
            holes = np.flatnonzero(steps > step)
            if len(holes):
                raise ValueError(
                    f"bars have {len(holes)} holes in their {pd.Timedelta(int(step))} grid (first after "
                    f"{bars.index[holes[0]]}): a return across a hole is not a one-bar return. Flag "
                    "them with align_bars(bars) (a 'gap' column, as a panel has), or pass "
                    "allow_gaps=True if the market was closed then (e.g. FX weekends)"
                )


def make_features(
    bars: pd.DataFrame,
    *,
    vol_window: int = 24,
    ma_window: int = 24,
    rsi_window: int = 14,
    allow_gaps: bool = False,
) -> pd.DataFrame:
    """The five causal features of one OHLCV frame or of every symbol of a panel.

    For a panel (columns ``(field, symbol)``) the result has columns
    ``(feature, symbol)``; for one asset, flat columns named as in :data:`FEATURES`.
    ``features.to_numpy(np.float32)`` is then the ``(time, features)`` array the
    windows are cut from. The first ``max(windows)`` rows are NaN (warm-up).
    Unsorted or duplicated timestamps, negative volume and (for one asset) unflagged
    holes in the bar grid are refused; ``allow_gaps=True`` accepts holes where the
    market was closed.
    """
    if isinstance(bars.columns, pd.MultiIndex):
        fields = set(bars.columns.get_level_values(0))
        if not {"close", "volume"} <= fields:
            raise ValueError(f"a panel needs 'close' and 'volume' fields, got {sorted(fields)}")
    elif not {"close", "volume"} <= set(bars.columns):
        raise ValueError(f"bars need 'close' and 'volume' columns, got {list(bars.columns)}")
    _check_bars(bars, allow_gaps)
    close, volume = bars["close"], bars["volume"]
    parts = {
        "log_return": log_returns(close),
        "volatility": rolling_volatility(close, vol_window),
        "volume_ratio": volume_ma_ratio(volume, ma_window),
        "price_ma_ratio": price_ma_ratio(close, ma_window),
        "rsi": rsi(close, rsi_window),
    }
    if isinstance(close, pd.Series):
        return pd.DataFrame(parts)
    out = pd.concat(parts, axis=1, names=["feature", "symbol"])
    return out


@dataclass
class Standardizer:
    """``(x - mean) / std`` per column, with mean and std fitted on the training range only.

    Fitting on the whole history would tell the model the future's average level
    and spread — a subtle leak. ``fit`` ignores NaN (warm-up rows).
    """

    mean_: np.ndarray | None = None
    std_: np.ndarray | None = None

    def fit(self, train: pd.DataFrame | np.ndarray) -> Standardizer:
        x = np.asarray(train, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"fit needs a (time, features) array with >= 2 rows, got shape {x.shape}")
        self.mean_ = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        if np.isnan(self.mean_).any():
            raise ValueError("a feature is NaN throughout the training range; start the range later")
        self.std_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        if self.mean_ is None or self.std_ is None:
            raise ValueError("call fit(training_features) before transform")
        if isinstance(x, pd.DataFrame):
            return (x - self.mean_) / self.std_
        return (np.asarray(x) - self.mean_) / self.std_
