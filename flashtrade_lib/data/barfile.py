"""The bars file: what ``flashtrade fetch --out`` writes and ``--data FILE`` reads.

Why a format of our own (a thin one): a file of bars must carry its clock — the bar
interval and the market calendar that annualises every metric — or a reader would have
to type the calendar again. Parquet keeps it in the frame's ``attrs`` (pandas stores them
in the file's metadata); a CSV starts with one comment line that says it::

    # flashtrade bars: source=bybit symbol=BTCUSDT interval=1h calendar=crypto
    open_time,open,high,low,close,volume,turnover
    2024-01-01 00:00:00+00:00,42283.6,42554.5,42261.0,42475.2,1621.3,68768831.6
    ...

``open_time`` is the bar's UTC open time; ``open, high, low, close, volume`` are required,
other columns are kept. A CSV from elsewhere becomes a bars file by adding that first line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from flashtrade_lib.atomic import atomic_path
from flashtrade_lib.data.calendar import clock_of, stamp, symbol_of

__all__ = ["read_bars", "write_bars", "HEADER"]

HEADER = "# flashtrade bars:"
_FIELDS = ("source", "symbol", "interval", "calendar")
_REQUIRED = ("open", "high", "low", "close", "volume")


def write_bars(bars: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write one asset's stamped bars to ``path`` (``.csv`` or ``.parquet``)."""
    clock, out = clock_of(bars), Path(path)
    attrs = {"source": bars.attrs.get("source", "file"), "symbol": symbol_of(bars),
             "interval": str(clock.interval), "calendar": clock.calendar}
    if out.suffix not in (".parquet", ".csv"):
        raise ValueError(f"a bars file ends in .csv or .parquet, got {out.name!r}")
    with atomic_path(out) as tmp:  # whole or not at all (a full disk leaves no partial file)
        if out.suffix == ".parquet":
            frame = bars.copy()
            frame.attrs = attrs
            frame.to_parquet(tmp)
        else:
            tmp.write_text(f"{HEADER} " + " ".join(f"{k}={attrs[k]}" for k in _FIELDS) + "\n", encoding="utf-8")
            bars.to_csv(tmp, mode="a", index_label="open_time")
    return out


def read_bars(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One asset's bars from a file :func:`write_bars` wrote, stamped with the clock it records."""
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no bars file {src}; write one with `flashtrade fetch SYMBOL --out {src.name}`")
    if src.suffix == ".parquet":
        bars = pd.read_parquet(src)
        attrs = dict(bars.attrs)
    else:
        with open(src, encoding="utf-8") as f:
            first = f.readline().strip()
        if not first.startswith(HEADER):
            raise ValueError(
                f"{src} does not start with the bars header line ('{HEADER} source=... symbol=... "
                "interval=... calendar=...'), so its bar interval and market calendar are unknown; "
                "add that line (see flashtrade_lib.data.barfile) or write the file with `flashtrade fetch --out`"
            )
        attrs = dict(item.split("=", 1) for item in first[len(HEADER):].split())
        bars = pd.read_csv(src, skiprows=1, index_col="open_time")
        bars.index = pd.DatetimeIndex(pd.to_datetime(bars.index, utc=True), name="open_time")
    missing = [k for k in _FIELDS if k not in attrs] + [c for c in _REQUIRED if c not in bars.columns]
    if missing:
        raise ValueError(f"{src} lacks {missing}; a bars file is what `flashtrade fetch --out` writes")
    if not bars.index.is_monotonic_increasing or not bars.index.is_unique:
        raise ValueError(f"{src}: the open times must be unique and increasing")
    bars.attrs = {}
    return stamp(bars, attrs["source"], attrs["interval"], symbol=attrs["symbol"], calendar=attrs["calendar"])
