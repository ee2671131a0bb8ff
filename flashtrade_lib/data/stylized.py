"""Stylised facts of returns: autocorrelation out to thousands of lags, tails.

Why FFT: the autocorrelation at every lag up to ``max_lag`` costs O(n log n) with one
FFT instead of O(n · max_lag) with ``Series.autocorr`` in a loop, so lags in the
thousands — the range a long-context model could exploit — take milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["acf", "acf_band", "deseasonalised_abs"]


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags ``0..max_lag`` (the usual biased estimator, ``acf[0] = 1``).

    NaNs are not allowed: drop or fill them first (a gap in the series shifts every lag).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or len(a) < 2:
        raise ValueError(f"acf needs a 1-D series of at least 2 values, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("acf got NaN/inf values; drop or fill them first")
    if not 0 <= max_lag < len(a):
        raise ValueError(f"max_lag must be between 0 and len(x)-1 = {len(a) - 1}, got {max_lag}")
    a = a - a.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(a))))
    f = np.fft.rfft(a, size)
    r = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1]
    return r / r[0]


def acf_band(n: int, z: float = 1.96) -> float:
    """Half-width of the ~95% band of the sample ACF of ``n`` independent values: ``z / sqrt(n)``."""
    return z / np.sqrt(n)


def deseasonalised_abs(returns: pd.Series) -> pd.Series:
    """``|r_t|`` divided by the mean ``|r|`` of its slot in the week (weekday × time of day).

    Why: intraday activity (Asian, European, US sessions) makes 30-minute volatility follow a
    daily and weekly cycle; the ACF of raw ``|r|`` then shows peaks at 48, 96, ... bars and
    a slowly decaying level even with no volatility clustering at all. Dividing by each
    slot's mean (a description of the whole sample, not a forecast) removes the cycle, so
    what memory is left belongs to volatility clustering (Andersen & Bollerslev 1997).
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        raise TypeError("returns must be a pandas Series with a DatetimeIndex (the slot comes from the time)")
    a = returns.abs().astype(float)
    slot = returns.index.day_of_week * 1440 + returns.index.hour * 60 + returns.index.minute
    level = a.groupby(slot).transform("mean")
    if (level <= 0).any():
        raise ValueError("a slot of the week has no movement at all; cannot scale it (too few bars?)")
    return a / level
