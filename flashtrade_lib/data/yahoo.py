"""Equities, indices and FX from Yahoo Finance (``yfinance``), in the book's bar and panel format.

Why a third source: crypto trades 24/7 on one clock; stocks trade in sessions, with
nights, weekends and holidays — a different kind of series for the same models.
Yahoo's data is free but unofficial: ``yfinance`` scrapes a web API that changes,
rate-limits and has undocumented history limits. So this loader

* is **live only** and optional: ``pip install "flashtrade-lib[yahoo]"`` (``yfinance``
  is imported only when a download is asked for);
* checks the interval and range **before** asking Yahoo, against the intraday limits
  Yahoo enforces (``1m``: at most 7 days per request, within the last 30 days; other
  intraday intervals: within the last 60 days; ``60m``/``1h``: within the last 730 days);
* turns yfinance's output (columns ``Open, High, Low, Close, Volume``, possibly a
  ``(Price, Ticker)`` column MultiIndex, an exchange-local tz-aware index) into bars:
  a UTC ``DatetimeIndex`` of bar open times and float64 ``open, high, low, close,
  volume``, prices adjusted for splits and dividends (``auto_adjust=True``);
* keeps **closed bars only** (a bar whose open time + length is in the future is
  still forming);
* goes through the same on-disk cache as Bybit (:class:`~flashtrade_lib.data.cache.BarCache`,
  source ``"yahoo"``), so a range is downloaded once;
* raises clear errors for unknown tickers (Yahoo answers "no data"), unsupported
  interval/range combinations and network failures — never substitutes data.

Daily and weekly bars are stamped at **00:00 UTC of the exchange's local date**
(Yahoo stamps them at local midnight, which in UTC moves with daylight saving time
and would break a regular grid). Intraday bars keep their true UTC open time.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.data.times import to_ms
from flashtrade_lib.errors import FlashTradeError

__all__ = [
    "INTERVALS",
    "YahooError",
    "YahooTickerError",
    "YahooNetworkError",
    "fetch_yahoo",
    "cached_yahoo",
    "yahoo_panel",
    "validate_request",
    "bars_from_yfinance",
]

_INSTALL = 'pip install "flashtrade-lib[yahoo]"  (or: pip install yfinance)'

#: Supported intervals and their bar lengths.
INTERVALS: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1), "2m": pd.Timedelta(minutes=2), "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15), "30m": pd.Timedelta(minutes=30), "60m": pd.Timedelta(hours=1),
    "90m": pd.Timedelta(minutes=90), "1h": pd.Timedelta(hours=1), "1d": pd.Timedelta(days=1),
    "1wk": pd.Timedelta(weeks=1),
}
_DAILY = ("1d", "1wk")
_DAY_MS = 86_400_000
_FIELDS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}


class YahooError(FlashTradeError, RuntimeError):
    """A Yahoo Finance download failed, or returned something that is not bars."""


class YahooTickerError(YahooError, LookupError):
    """Yahoo has no data for this ticker (unknown, delisted) in the requested range."""


class YahooNetworkError(YahooError):
    """The request did not get an answer (no connection, timeout, rate limit)."""


def _import_yfinance() -> Any:
    try:
        import yfinance
    except ImportError as exc:
        raise ImportError(
            f"the Yahoo Finance loader needs the optional package yfinance: {_INSTALL}"
        ) from exc
    return yfinance


def validate_request(interval: str, start: Any, end: Any = None, *, now: Any = None) -> tuple[int, int]:
    """``(start_ms, end_ms)`` after checking Yahoo's interval/range limits; raises ``ValueError``.

    Called before any download, so an impossible request costs no network call.
    ``now`` (default: the current time) exists for tests.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval {interval!r} is not supported; use one of {', '.join(INTERVALS)}")
    if start is None:
        raise ValueError("start is required for Yahoo downloads (e.g. start='2024-01-01')")
    now_ms = int(time.time() * 1000) if now is None else to_ms(now, "now")
    s = to_ms(start, "start")
    e = now_ms if end is None else to_ms(end, "end")
    if s >= e:
        raise ValueError(f"start ({pd.Timestamp(s, unit='ms', tz='UTC')}) must be before end "
                         f"({pd.Timestamp(e, unit='ms', tz='UTC')})")
    days = (e - s) / _DAY_MS
    age = (now_ms - s) / _DAY_MS
    if interval == "1m":
        if days > 7:
            raise ValueError(f"interval '1m' allows at most 7 days per request, asked for {days:.1f}; "
                             "split the range, or use '5m'")
        if age > 30:
            raise ValueError(f"Yahoo keeps '1m' bars for the last 30 days only; start is {age:.0f} days "
                             "ago. Use '1h' (730 days) or '1d'")
    elif interval in ("60m", "1h"):
        if age > 730:
            raise ValueError(f"Yahoo keeps hourly bars for the last 730 days only; start is {age:.0f} "
                             "days ago. Use '1d' for older history")
    elif interval not in _DAILY and age > 60:
        raise ValueError(f"Yahoo keeps {interval!r} bars for the last 60 days only; start is {age:.0f} "
                         "days ago. Use '1h' (730 days) or '1d'")
    return s, e


def bars_from_yfinance(raw: pd.DataFrame, ticker: str, interval: str) -> pd.DataFrame:
    """yfinance's DataFrame -> bars (see the module docstring). Pure: no network.

    Accepts single-level columns ``Open, High, Low, Close, Volume, ...`` (``Ticker.history``)
    and the ``(Price, Ticker)`` MultiIndex of recent ``yf.download`` (either level order).
    """
    if not isinstance(raw, pd.DataFrame):
        raise YahooError(f"{ticker}: yfinance returned {type(raw).__name__}, not a DataFrame")
    if raw.empty:
        raise YahooTickerError(
            f"Yahoo returned no {interval} bars for {ticker!r}: the ticker is unknown or delisted, "
            "or has no trading in this range. Check the symbol on finance.yahoo.com "
            "(indices start with '^', FX ends with '=X', e.g. 'EURUSD=X')"
        )
    df = raw
    if isinstance(df.columns, pd.MultiIndex):
        price_level = next((i for i in range(df.columns.nlevels)
                            if "Close" in df.columns.get_level_values(i)), None)
        if price_level is None:
            raise YahooError(f"{ticker}: no 'Close' column in yfinance's output {list(df.columns)[:6]}")
        other = [i for i in range(df.columns.nlevels) if i != price_level]
        tickers = {c[other[0]] for c in df.columns} if other else set()
        if len(tickers) > 1:
            if ticker not in tickers:
                raise YahooError(f"{ticker}: yfinance's output holds tickers {sorted(tickers)}, not {ticker!r}")
            df = df.xs(ticker, level=other[0], axis=1)
        else:
            df = df.droplevel(other, axis=1) if other else df
    missing = [c for c in _FIELDS if c not in df.columns]
    if missing:
        raise YahooError(f"{ticker}: yfinance's output lacks columns {missing}; got {list(df.columns)}")
    out = df[list(_FIELDS)].rename(columns=_FIELDS).astype(np.float64)
    out.columns = pd.Index(list(out.columns))  # drop yfinance's 'Price' level name
    idx = pd.DatetimeIndex(out.index)
    if interval in _DAILY:  # local calendar date, stamped 00:00 UTC
        local = idx.tz_localize(None) if idx.tz is not None else idx
        idx = local.normalize().tz_localize("UTC")
    elif idx.tz is None:
        raise YahooError(f"{ticker}: intraday timestamps without a time zone cannot be placed in UTC; "
                         "do not pass ignore_tz=True")
    else:
        idx = idx.tz_convert("UTC")
    out.index = pd.DatetimeIndex(idx.as_unit("ns"), name="open_time", freq=None)
    out = out[out[["open", "high", "low", "close"]].notna().all(axis=1)]
    out = out[~out.index.duplicated(keep="last")].sort_index()
    if out.empty:
        raise YahooTickerError(f"Yahoo returned only empty rows for {ticker!r} at interval {interval}")
    return out


def fetch_yahoo(
    ticker: str, interval: str = "1d", start: Any = None, end: Any = None, *,
    timeout: float = 30.0, now: Any = None,
) -> pd.DataFrame:
    """Closed bars of one Yahoo ticker with open time in ``[start, end]`` (live; touches the network).

    ``df.attrs["covered_end_ms"]`` is the last open time the answer is complete up to
    (the cache uses it).
    """
    if not isinstance(ticker, str) or not ticker.strip() or ticker != ticker.strip():
        raise ValueError(f"ticker must be a non-empty string without spaces, like 'AAPL', got {ticker!r}")
    s, e = validate_request(interval, start, end, now=now)
    yf = _import_yfinance()
    step = INTERVALS[interval]
    # yfinance's end is exclusive and date-based for daily bars: ask one bar further
    s_ts = pd.Timestamp(s, unit="ms", tz="UTC")
    e_ts = pd.Timestamp(e, unit="ms", tz="UTC") + step
    try:
        raw = yf.Ticker(ticker).history(
            start=s_ts, end=e_ts, interval=interval, auto_adjust=True, actions=False,
            raise_errors=True, timeout=timeout,
        )
    except Exception as exc:  # yfinance raises its own, requests' and curl's exception types
        name = type(exc).__name__
        if name in ("YFPricesMissingError", "YFTzMissingError", "YFTickerMissingError"):
            raise YahooTickerError(
                f"Yahoo has no {interval} data for {ticker!r} from {s_ts} to {e_ts} ({exc}); "
                "check the symbol on finance.yahoo.com"
            ) from exc
        if name == "YFRateLimitError":
            raise YahooNetworkError(f"Yahoo rate-limited the request for {ticker!r}; wait a few minutes "
                                    "and use the cache (cached_yahoo) so data is downloaded once") from exc
        if isinstance(exc, (ValueError, TypeError)) and not name.startswith("YF"):
            raise
        raise YahooNetworkError(
            f"downloading {ticker!r} ({interval}, {s_ts} .. {e_ts}) from Yahoo failed: {name}: {exc}. "
            "Check your connection; yfinance needs https access to query*.finance.yahoo.com"
        ) from exc
    bars = bars_from_yfinance(raw, ticker, interval)
    now_ms = int(time.time() * 1000) if now is None else to_ms(now, "now")
    step_ms = int(step.total_seconds() * 1000)
    t = bars.index.as_unit("ms").asi8
    bars = bars[(t >= s) & (t <= e) & (t + step_ms <= now_ms)]
    bars.attrs = {"covered_end_ms": int(min(e, now_ms - step_ms))}
    return stamp(bars, "yahoo", interval, symbol=ticker)


_KEY_SAFE = re.compile(r"[A-Za-z0-9\-]")


def _cache_key(ticker: str) -> str:
    """A reversible file-name-safe key: '^GSPC' -> '_5EGSPC' (the cache allows [A-Za-z0-9_-])."""
    return "".join(c if _KEY_SAFE.match(c) else "".join(f"_{b:02X}" for b in c.encode()) for c in ticker)


def _from_key(key: str) -> str:
    out, i = bytearray(), 0
    while i < len(key):
        if key[i] == "_":
            out += bytes.fromhex(key[i + 1 : i + 3])
            i += 3
        else:
            out += key[i].encode()
            i += 1
    return out.decode()


def cached_yahoo(
    ticker: str, interval: str = "1d", start: Any = None, end: Any = None, *,
    cache_dir: str | os.PathLike[str] | None = None, offline: bool | None = None, **fetch_kwargs: Any,
) -> pd.DataFrame:
    """:func:`fetch_yahoo` through the on-disk cache (source ``yahoo``); offline reads the cache only."""
    from flashtrade_lib.data.cache import BarCache
    from flashtrade_lib.data.sources import get_source

    if offline is None:
        offline = os.environ.get("FLASHTRADE_OFFLINE", "0") == "1"
    if not offline:
        validate_request(interval, start, end, now=fetch_kwargs.get("now"))

    def fetch(key: str, interval: str, start_ms: int | None, end_ms: int, **kwargs: Any) -> pd.DataFrame:
        return fetch_yahoo(_from_key(key), interval, start_ms, end_ms, **kwargs)

    key = get_source("yahoo").cache_key()
    bars = BarCache(cache_dir).get(_cache_key(ticker), interval, start, end, source=key,
                                   offline=offline, fetch=fetch, **fetch_kwargs)
    return stamp(bars, "yahoo", interval, symbol=ticker)


def yahoo_panel(
    tickers: list[str], interval: str = "1d", start: Any = None, end: Any = None, *,
    max_ffill: int = 0, drop_closed: bool = True, cache: bool = True, **kwargs: Any,
) -> pd.DataFrame:
    """A panel (columns ``(field, symbol)``, see :func:`~flashtrade_lib.data.panel.align_panel`).

    Bars are joined on timestamps by ``align_panel``. Exchanges close at night and on
    weekends, so the regular grid has slots where nobody traded: with
    ``drop_closed=True`` the slots where *every* ticker is a gap are dropped (the panel
    then has session gaps in its index, which is what an equity series looks like);
    slots where only some tickers are missing stay, flagged in ``gap``.
    """
    from flashtrade_lib.data.panel import align_panel

    if not tickers or isinstance(tickers, str):
        raise ValueError(f"tickers must be a non-empty list like ['AAPL', 'MSFT'], got {tickers!r}")
    load = cached_yahoo if cache else fetch_yahoo
    frames = {t: load(t, interval, start, end, **kwargs) for t in tickers}
    panel = align_panel(frames, freq=INTERVALS[interval], max_ffill=max_ffill)
    if drop_closed:
        panel = panel[~panel["gap"].all(axis=1)]
    return panel
