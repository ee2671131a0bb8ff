"""Align several assets' bars on one clock: a timestamp join with gaps flagged, never trimming.

Why: the seed chapter aligned symbols by cutting every series to the shortest
length, which silently pairs BTC's bar at 10:00 with ETH's bar at 10:30 as soon as
one feed misses a bar. Here every asset is reindexed onto one regular grid of open
times; a slot an asset has no bar for is marked in the ``gap`` field and, for at
most ``max_ffill`` consecutive slots, filled the way exchanges report an idle
market (open = high = low = close = last close, volume = 0). Longer holes stay NaN
so nothing downstream can mistake them for data.

A *panel* is a ``DataFrame`` indexed by UTC bar open time with two column levels
``(field, symbol)``: fields ``open, high, low, close, volume`` (float64) and
``gap`` (bool). ``panel["close"]`` is then a ``time × symbol`` frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from flashtrade_lib.data.times import check_time_order

__all__ = ["OHLCV", "align_bars", "align_panel", "bars_fingerprint"]

OHLCV = ("open", "high", "low", "close", "volume")


def _infer_freq(frames: Mapping[str, pd.DataFrame]) -> pd.Timedelta:
    diffs = np.concatenate([np.diff(f.index.as_unit("ns").asi8) for f in frames.values() if len(f) > 1])
    if len(diffs) == 0:
        raise ValueError("cannot infer the bar size from fewer than two bars; pass freq='30min'")
    return pd.Timedelta(int(np.median(diffs)), unit="ns")


def align_panel(
    frames: Mapping[str, pd.DataFrame], *, freq: str | pd.Timedelta | None = None, max_ffill: int = 12
) -> pd.DataFrame:
    """Join per-symbol OHLCV frames on a regular grid of open times (see module docstring).

    ``freq`` defaults to the median spacing of the bars. ``max_ffill`` bounds how many
    consecutive missing slots are filled (0 = none). The grid runs from the earliest
    to the latest bar of any symbol; slots before a symbol's first bar stay NaN.
    """
    if not frames:
        raise ValueError("align_panel needs at least one symbol, got an empty mapping")
    if max_ffill < 0:
        raise ValueError(f"max_ffill must be >= 0, got {max_ffill}")
    for sym, f in frames.items():
        missing = [c for c in OHLCV if c not in f.columns]
        if missing:
            raise ValueError(f"{sym}: missing columns {missing}; expected {list(OHLCV)}")
        if not isinstance(f.index, pd.DatetimeIndex) or f.index.tz is None:
            raise ValueError(f"{sym}: index must be a tz-aware (UTC) DatetimeIndex of bar open times")
        check_time_order(f.index, sym)
    step = pd.Timedelta(freq) if freq is not None else _infer_freq(frames)
    lo = min(f.index[0] for f in frames.values() if len(f))
    hi = max(f.index[-1] for f in frames.values() if len(f))
    grid = pd.date_range(lo, hi, freq=step, name="open_time").as_unit("ns")
    cols: dict[tuple[str, str], pd.Series] = {}
    for sym, f in frames.items():
        f = f.copy()
        f.index = f.index.as_unit("ns").tz_convert("UTC")
        off_grid = ~f.index.isin(grid)
        if off_grid.any():
            raise ValueError(
                f"{sym}: {int(off_grid.sum())} bars are not on the {step} grid starting {lo} "
                f"(first: {f.index[off_grid][0]}); resample them first (resample_ohlcv)"
            )
        g = f.reindex(grid)
        gap = g["close"].isna()
        close = g["close"].ffill(limit=max_ffill) if max_ffill else g["close"]
        filled = gap & close.notna()
        for c in ("open", "high", "low"):
            cols[(c, sym)] = g[c].where(~filled, close)
        cols[("close", sym)] = close
        cols[("volume", sym)] = g["volume"].where(~filled, 0.0)
        cols[("gap", sym)] = gap
    out = pd.DataFrame(cols)
    out.columns = pd.MultiIndex.from_tuples(list(cols), names=["field", "symbol"])
    order = [(fld, s) for fld in (*OHLCV, "gap") for s in frames]
    return out[order]


def align_bars(
    bars: pd.DataFrame, *, freq: str | pd.Timedelta | None = None, max_ffill: int = 12
) -> pd.DataFrame:
    """One asset's bars on a regular grid with missing slots flagged in a ``gap`` column.

    :func:`align_panel` for a single asset (same grid, fill and flag rules), with flat
    columns ``open, high, low, close, volume, gap``.
    """
    name = str(bars.attrs.get("symbol", "asset"))
    out = align_panel({name: bars}, freq=freq, max_ffill=max_ffill).xs(name, axis=1, level="symbol")
    out.columns.name = None
    out.attrs = dict(bars.attrs)
    return out


def bars_fingerprint(bars: pd.DataFrame) -> str:
    """A short hash of exactly these bars (open times, column names, values): "the same data" made checkable.

    A checkpoint stores it, so the bars a model is later applied to can be shown to be the
    bars it was trained on (:func:`flashtrade_lib.model.checkpoints.check_data_matches`).
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(pd.DatetimeIndex(bars.index).as_unit("ns").asi8))
    h.update(repr([str(c) for c in bars.columns]).encode())
    h.update(np.ascontiguousarray(bars.to_numpy(np.float64)))
    return f"sha256:{h.hexdigest()[:16]}"
