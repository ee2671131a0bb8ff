"""Bybit v5 kline client: paginated, retried, rate-limit aware, closed candles only.

Why so much code for "download some candles": the seed chapter asked for more than
1000 candles in one request (Bybit caps a page at 1000), kept the still-open last
candle (its close changes until the bar ends, so a backtest would see a price that
never existed at decision time) and replaced failed downloads with random data. Here:

* pages walk **backwards** from ``end``: each next page asks for ``end = oldest bar
  received - 1`` until ``start`` is reached or the exchange proves it has nothing older.
  Bars are merged by open time; a bar seen before (an overlapping page) is never counted
  as progress, and a page shorter than ``limit`` is *not* the end of history (a server
  may cap pages below ``limit``). Proof of "nothing older" is a page reaching ``start``,
  an empty page confirmed by a second request (without ``start``: the same page again;
  with ``start``: a probe for the newest bar before ``end``, which must land before
  ``start`` or find nothing). A page that adds no older bar (e.g. a server that
  ignores ``end``), or an empty page contradicted by its probe, is retried and then an
  error naming the bars that could not be fetched — never silently the end of history;
* the still-open candle is dropped (server time from the response decides);
* arguments are validated before any request is sent;
* every request has one overall deadline (``timeout``: a server that trickles bytes
  cannot stall the client, see :mod:`.http`); HTTP 429/5xx, timeouts and dropped
  connections are retried with exponential backoff, waiting what ``Retry-After``
  asks but never more than ``max_wait``; Bybit's in-body rate limit (``retCode``
  10006), its server error (10016) and HTTP 429 wait until
  ``X-Bapi-Limit-Reset-Timestamp`` when Bybit sends it (also at most ``max_wait``); a whole fetch has one retry
  budget; HTTP 403 (an IP ban), a host name that does not resolve and a network that
  is off fail at once, never hammered;
* anything unexpected raises an error that names the request. Nothing is ever
  substituted for missing data.

API reference: https://bybit-exchange.github.io/docs/v5/market/kline
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import requests

from flashtrade_lib.data import http
from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.data.http import make_session
from flashtrade_lib.data.times import fmt_ms, to_ms
from flashtrade_lib.errors import FlashTradeError

__all__ = [
    "BYBIT_URL",
    "CATEGORIES",
    "INTERVALS",
    "MAX_LIMIT",
    "BybitError",
    "BybitAPIError",
    "BybitBannedError",
    "BybitNetworkError",
    "fetch_klines",
    "make_session",
    "interval_to_timedelta",
]

BYBIT_URL = "https://api.bybit.com"
KLINE_PATH = "/v5/market/kline"
CATEGORIES = ("spot", "linear", "inverse")
INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
MAX_LIMIT = 1000
COLUMNS = ("open", "high", "low", "close", "volume", "turnover")
RETRY_RET_CODES = {10006: "rate limit ('Too many visits!')", 10016: "Bybit server error"}
RETRY_STATUS = (429, 500, 502, 503, 504)

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9\-]{1,39}$")
_ALIASES = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
            "4h": "240", "6h": "360", "12h": "720", "1d": "D", "1w": "W", "1mo": "M"}


class BybitError(FlashTradeError, RuntimeError):
    """A request to Bybit failed in a way retrying did not (or must not) fix."""


class BybitAPIError(BybitError):
    """Bybit answered with a non-zero ``retCode`` (e.g. 10001: bad parameter / unknown symbol)."""

    def __init__(self, message: str, ret_code: int | None = None) -> None:
        super().__init__(message)
        self.ret_code = ret_code


class BybitBannedError(BybitError):
    """HTTP 403: Bybit refuses this IP (a temporary ban, or a blocked region). Never retried."""


class BybitNetworkError(BybitError):
    """Bybit cannot be reached at all (no DNS, no network, blocked): failed at once, never retried."""


def interval_to_timedelta(interval: str) -> pd.DateOffset | pd.Timedelta:
    """Length of one bar: minutes for numeric intervals, 1 day/week, or one calendar month."""
    if interval == "D":
        return pd.Timedelta(days=1)
    if interval == "W":
        return pd.Timedelta(weeks=1)
    if interval == "M":
        return pd.DateOffset(months=1)
    return pd.Timedelta(minutes=int(interval))


_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH", "EUR")


def _suggest(symbol: str) -> str:
    """A symbol Bybit lists for what was typed: upper case, and a bare coin ('btc') quoted in
    USDT ('BTCUSDT'), the market of the book's default category (linear perpetuals)."""
    upper = symbol.upper()
    quoted = any(upper.endswith(q) and len(upper) > len(q) for q in _QUOTES)
    return upper if quoted or "-" in upper else f"{upper}USDT"


def validate_request(symbol: Any, interval: Any, category: Any) -> tuple[str, str, str]:
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"symbol must be a non-empty string like 'BTCUSDT', got {symbol!r}")
    if symbol != symbol.upper():
        raise ValueError(f"Bybit symbols are upper case: use {_suggest(symbol)!r} instead of {symbol!r}")
    if not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"symbol {symbol!r} is not a Bybit symbol (letters, digits and '-', e.g. 'BTCUSDT')"
        )
    if isinstance(interval, (int, np.integer)) and not isinstance(interval, bool):
        interval = str(int(interval))
    if interval not in INTERVALS:
        hint = ""
        if isinstance(interval, str) and interval.lower() in _ALIASES:
            hint = f" — did you mean {_ALIASES[interval.lower()]!r}?"
        raise ValueError(
            f"interval {interval!r} is not a Bybit kline interval; use one of "
            f"{', '.join(INTERVALS)} (minutes, or D/W/M; hourly is '60'){hint}"
        )
    if category not in CATEGORIES:
        raise ValueError(
            f"category {category!r} is not one of {', '.join(CATEGORIES)} "
            "(USDT perpetuals such as BTCUSDT are 'linear')"
        )
    return symbol, interval, category


class _RetryBudget:
    """Retries left for a whole fetch (every page, every kind of fault): a fetch cannot retry forever."""

    def __init__(self, retries: int) -> None:
        self.left = retries

    def spend(self, what: str) -> None:
        if self.left <= 0:
            raise BybitError(
                f"{what}: this download used up its retry budget; Bybit or the connection is "
                "unreliable right now. Try again in a few minutes; bars already cached are kept."
            )
        self.left -= 1


def describe_request(url: str, params: dict[str, Any]) -> str:
    return f"GET {url}?" + "&".join(f"{k}={v}" for k, v in params.items())


def _backoff(attempt: int, backoff_factor: float, max_wait: float) -> float:
    return float(min(backoff_factor * 2**attempt, max_wait))


def get_result(
    session: requests.Session,
    url: str,
    params: dict[str, Any],
    *,
    timeout: float,
    max_retries: int,
    backoff_factor: float,
    max_wait: float,
    budget: _RetryBudget | None = None,
) -> tuple[Any, int | None]:
    """One v5 request with Bybit's error and retry rules: (``result``, server time in ms or None).

    Shared by every public endpoint (klines here, order books in :mod:`.orderbook`).
    ``timeout`` bounds the whole request; every wait is at most ``max_wait``; each
    retry also spends one from ``budget`` (the whole fetch's), when given.
    """
    what = describe_request(url, params)
    budget = _RetryBudget(max_retries) if budget is None else budget
    for attempt in range(max_retries + 1):
        last = attempt == max_retries
        try:
            reply = http.get_within(session, url, params, deadline=timeout)
        except Exception as exc:
            transient, why = http.classify(exc)
            if not transient:
                raise BybitNetworkError(
                    f"{what} failed: {why}. Retrying will not help: connect to the internet "
                    "and try again, or work offline from cached or bundled data."
                ) from exc
            if last:
                raise BybitError(
                    f"{what} failed after retries ({why}). Check your connection, or try again "
                    "later; bars already cached are kept."
                ) from exc
            budget.spend(what)
            time.sleep(_backoff(attempt, backoff_factor, max_wait))
            continue
        if reply.status == 403:
            raise BybitBannedError(
                f"{what} returned HTTP 403: Bybit is refusing this IP address (a temporary ban "
                "after too many requests, or a region Bybit does not serve). Do not retry in a "
                "loop: wait several minutes, fetch less at a time, and use the on-disk cache "
                "so data is downloaded only once."
            )
        if reply.status in RETRY_STATUS and not last:
            budget.spend(what)
            asked = http.retry_after_seconds(reply.headers)
            wait = _wait_seconds(reply.headers, attempt, backoff_factor, max_wait) if asked is None else asked
            time.sleep(min(wait, max_wait))
            continue
        if reply.status != 200:
            retried = f" after {max_retries} retries" if reply.status in RETRY_STATUS else ""
            raise BybitError(f"{what} returned HTTP {reply.status}{retried}: {reply.text[:200]!r}")
        try:
            payload = json.loads(reply.body)
        except ValueError as exc:
            raise BybitError(
                f"{what} returned malformed JSON ({exc}); first bytes: {reply.text[:120]!r}"
            ) from exc
        if not isinstance(payload, dict) or "retCode" not in payload:
            raise BybitError(f"{what} returned JSON without a 'retCode' envelope: {str(payload)[:200]}")
        code = payload.get("retCode")
        if code in RETRY_RET_CODES:
            if last:
                raise BybitAPIError(
                    f"{what}: {RETRY_RET_CODES[code]} (retCode {code}: {payload.get('retMsg')!r}) "
                    f"persisted after {max_retries} retries; wait a minute and try again.",
                    code,
                )
            budget.spend(what)
            time.sleep(_wait_seconds(reply.headers, attempt, backoff_factor, max_wait))
            continue
        if code != 0:
            advice = ""
            if code == 10001:
                advice = (
                    " (parameter error: check the symbol exists in this category — e.g. "
                    "BTCUSDT is 'linear' or 'spot', BTCUSD is 'inverse')"
                )
            raise BybitAPIError(f"{what}: Bybit retCode {code}: {payload.get('retMsg')!r}{advice}", code)
        server_time = payload.get("time")
        return payload.get("result"), int(server_time) if isinstance(server_time, (int, float)) else None
    raise AssertionError("unreachable")  # pragma: no cover


def check_retry_settings(timeout: float, max_retries: int, backoff_factor: float, max_wait: float) -> None:
    """Refuse settings that would make a wait unbounded or meaningless, before any request."""
    for name, value in (("timeout", timeout), ("max_wait", max_wait)):
        if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
            raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if not (isinstance(backoff_factor, (int, float)) and 0 <= backoff_factor < float("inf")):
        raise ValueError(f"backoff_factor must be a finite number >= 0, got {backoff_factor!r}")


def _page_with_proof(
    session: requests.Session, url: str, params: dict[str, Any], after_full: bool, request: dict[str, Any]
) -> tuple[np.ndarray, int | None]:
    """A parsed kline page; an empty one only when a second request confirms the emptiness.

    Without ``start``, an empty page is asked for once more: empty twice means no
    history before ``end``. With ``start``, an empty page for ``[start, end]`` is checked
    with one probe — the newest bar at or before ``end``, without ``start``: a bar older
    than ``start`` proves the range empty, and so does no bar at all unless the page
    before was full (``after_full``: history does not end exactly at a page boundary
    without a trace, so that is retried). A probe that finds a bar inside the range
    proves the empty page wrong. An unconfirmed empty page is retried and then an error
    naming the bars that could not be fetched — never the silent end of history.
    """
    what = describe_request(url, params)
    for attempt in range(request["max_retries"] + 1):
        rows, server_ms = _get_page(session, url, params, **request)
        data = _parse_rows(rows, what)
        if len(data):
            return data, server_ms
        if "start" not in params:
            again, server_ms = _get_page(session, url, params, **request)
            data = _parse_rows(again, what)
            return data, server_ms  # empty twice: proven; or the bars the first answer lacked
        probe = {k: v for k, v in params.items() if k != "start"} | {"limit": 1}
        newest = _parse_rows(_get_page(session, url, probe, **request)[0], describe_request(url, probe))
        if (len(newest) and newest[:, 0].max() < params["start"]) or (not len(newest) and not after_full):
            return data, server_ms
        if attempt < request["max_retries"]:
            request["budget"].spend(what)
            time.sleep(_backoff(attempt, request["backoff_factor"], request["max_wait"]))
    raise BybitError(
        f"{what} returned no bars {request['max_retries'] + 1} times, although "
        + ("the page before was full" if after_full else "Bybit has bars in that range")
        + f": the bars from {fmt_ms(params['start'])} to {fmt_ms(params['end'])} could not be "
        "downloaded. Try again later"
        + (f"; if the symbol was listed at {fmt_ms(params['end'] + 1)}, ask for a start from then."
           if after_full else ".")
    )


def _get_page(
    session: requests.Session, url: str, params: dict[str, Any], **request: Any
) -> tuple[list[Any], int | None]:
    """One kline page: (rows as sent by Bybit, server time in ms or None).

    ``request``: the timeout and retry settings of :func:`get_result`.
    """
    result, server_time = get_result(session, url, params, **request)
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise BybitError(f"{describe_request(url, params)} returned no result.list: {str(result)[:200]}")
    return rows, server_time


def _wait_seconds(headers: Mapping[str, str], attempt: int, backoff_factor: float, max_wait: float) -> float:
    """Until Bybit's ``X-Bapi-Limit-Reset-Timestamp`` if sent, else exponential backoff; at most ``max_wait``."""
    reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
    if reset is not None:
        try:
            return float(min(max(int(reset) / 1000.0 - time.time(), 0.0), max_wait))
        except ValueError:
            pass
    return _backoff(attempt, backoff_factor, max_wait)


def _parse_rows(rows: Iterable[Any], what: str) -> np.ndarray:
    """Bybit's string arrays -> float64 array (n, 7): startTime, OHLCV, turnover."""
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) < 7:
            raise BybitError(f"{what}: row {i} is malformed (expected 7 fields), got {row!r}")
        try:
            values = [float(x) for x in row[:7]]
        except (TypeError, ValueError) as exc:
            raise BybitError(f"{what}: row {i} has a non-numeric field: {row!r}") from exc
        if not all(np.isfinite(values)) or values[0] != int(values[0]):
            raise BybitError(f"{what}: row {i} has an invalid value: {row!r}")
        out.append(values)
    return np.asarray(out, dtype=np.float64).reshape(-1, 7)


def _stalled(stalled: int, url: str, params: dict[str, Any], floor: int, start_ms: int | None,
             request: dict[str, Any]) -> int:
    """A page with no bar older than the last one: retry (from the budget), then name the gap."""
    what = describe_request(url, params)
    if stalled >= request["max_retries"]:
        gap = f"from {fmt_ms(floor)} to" if start_ms is not None else "at or before"
        raise BybitError(
            f"{what} answered {stalled + 1} times with no bar at or before end={params['end']} "
            "(only bars already received: the server ignores 'end'), so the bars "
            f"{gap} {fmt_ms(params['end'])} could not be downloaded. Nothing was cached for "
            "that range; try again later, or check base_url points at Bybit's v5 API."
        )
    request["budget"].spend(what)
    time.sleep(_backoff(stalled, request["backoff_factor"], request["max_wait"]))
    return stalled + 1


def _closed_until(server_ms: int, interval: str) -> int:
    """Largest open time (ms) whose candle has closed at ``server_ms``."""
    now = pd.Timestamp(server_ms, unit="ms", tz="UTC")
    return int((now - interval_to_timedelta(interval)).value // 1_000_000)


def fetch_klines(
    symbol: str,
    interval: str = "60",
    start: Any = None,
    end: Any = None,
    *,
    category: str = "linear",
    base_url: str = BYBIT_URL,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    max_retries: int = 5,
    backoff_factor: float = 0.5,
    max_wait: float = 60.0,
    retry_budget: int | None = None,
    limit: int = MAX_LIMIT,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Closed Bybit candles of one symbol, oldest first, with a UTC ``DatetimeIndex`` (bar open time).

    ``start``/``end`` are inclusive bounds on the bar *open* time (ms, strings or
    datetimes, UTC). ``start=None`` walks back to the first bar Bybit has;
    ``end=None`` means now. Columns are float64 ``open, high, low, close, volume,
    turnover``. ``timeout`` (seconds) bounds each request as a whole; a failed
    request is retried up to ``max_retries`` times, waiting ``backoff_factor * 2**n``
    seconds (or what the server asks) but at most ``max_wait``; the whole fetch
    retries at most ``retry_budget`` times (default ``4 * max_retries``).
    ``progress=None`` shows a tqdm bar only for long fetches.

    ``df.attrs`` records the request and the range the answer is proven complete on,
    ``covered_start_ms`` .. ``covered_end_ms`` (closed candles only), which the cache uses.
    """
    symbol, interval, category = validate_request(symbol, interval, category)
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT} (Bybit's page cap), got {limit}")
    check_retry_settings(timeout, max_retries, backoff_factor, max_wait)
    retry_budget = 4 * max_retries if retry_budget is None else retry_budget
    if retry_budget < 0:
        raise ValueError(f"retry_budget must be >= 0, got {retry_budget}")
    start_ms = None if start is None else to_ms(start, "start")
    end_ms = int(time.time() * 1000) if end is None else to_ms(end, "end")
    if start_ms is not None and start_ms >= end_ms:
        raise ValueError(
            f"start ({pd.Timestamp(start_ms, unit='ms', tz='UTC')}) must be before end "
            f"({pd.Timestamp(end_ms, unit='ms', tz='UTC')})"
        )
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")

    own_session = session is None
    if session is None:
        session = make_session()
    url = base_url.rstrip("/") + KLINE_PATH
    request = {"timeout": timeout, "max_retries": max_retries, "backoff_factor": backoff_factor,
               "max_wait": max_wait, "budget": _RetryBudget(retry_budget)}

    bar_ms = None if interval == "M" else int(interval_to_timedelta(interval).total_seconds() * 1000)
    expected = None if (start_ms is None or bar_ms is None) else (end_ms - start_ms) // bar_ms + 1
    if progress is None:
        progress = expected is not None and expected > 5 * limit
    from tqdm.auto import tqdm

    bar = tqdm(total=expected, unit="bar", desc=f"{symbol} {interval}", disable=not progress)
    pages: list[np.ndarray] = []
    server_ms: int | None = None
    cur_end = end_ms
    floor = 0 if start_ms is None else start_ms
    after_full = False
    stalled = 0
    try:
        while True:
            params: dict[str, Any] = {"category": category, "symbol": symbol, "interval": interval}
            if start_ms is not None:
                params["start"] = start_ms
            params["end"] = cur_end
            params["limit"] = int(limit)
            data, page_time = _page_with_proof(session, url, params, after_full, request)
            if page_time is not None and server_ms is None:
                server_ms = page_time
            if len(data) == 0:
                break  # proven: nothing in [start, cur_end], or no history before cur_end
            pages.append(data)  # every bar is merged by open time below; repeats are dropped there
            times = data[:, 0]
            older = times[times <= cur_end]  # the only bars that are progress: not seen before
            if not len(older):
                stalled = _stalled(stalled, url, params, floor, start_ms, request)
                continue
            stalled = 0
            oldest = int(older.min())
            bar.update(int((older >= floor).sum()))
            if start_ms is not None and oldest <= start_ms:
                break  # the page reaches start (or is older than it): nothing left to ask
            after_full = len(older) >= int(limit)
            cur_end = oldest - 1
    finally:
        bar.close()
        if own_session:
            session.close()

    if server_ms is None:
        server_ms = int(time.time() * 1000)
    closed_until = min(end_ms, _closed_until(server_ms, interval))
    data = np.concatenate(pages) if pages else np.empty((0, 7))
    times = data[:, 0].astype(np.int64)
    keep = (times <= closed_until) & (times >= (start_ms if start_ms is not None else 0))
    data, times = data[keep], times[keep]
    times, first = np.unique(times, return_index=True)  # sorted, duplicates across pages dropped
    data = data[first]
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="open_time")
    df = pd.DataFrame(data[:, 1:], index=index, columns=list(COLUMNS))
    df.attrs.update(
        source="bybit", category=category, symbol=symbol, interval=interval,
        start_ms=start_ms, end_ms=end_ms, covered_start_ms=0 if start_ms is None else start_ms,
        covered_end_ms=closed_until, server_time_ms=server_ms,
    )
    return stamp(df, "bybit", interval, symbol=symbol)
