"""Bybit v5 order-book snapshots, and a recorder that polls them into the cache.

Bybit keeps no public history of its order book: to study one you record it
yourself. :func:`fetch_orderbook` takes one snapshot of ``depth`` levels per side
(``GET /v5/market/orderbook``); :func:`record_orderbook` polls it at a fixed cadence
for a bounded number of snapshots or seconds and writes them as a parquet file into
the cache folder (:func:`~flashtrade_lib.data.cache.default_cache_dir`).

The HTTP side is the kline client's (:mod:`~flashtrade_lib.data.bybit`), reused, not
copied: the same retrying session (429/5xx, timeouts), the same in-body rate-limit
retries (``retCode`` 10006/10016), the same immediate error on HTTP 403 (an IP ban)
and the same error classes. Arguments are validated before anything is sent.

A snapshot has the layout of the simulator (:mod:`~flashtrade_lib.data.lob_sim`):
``(n_levels, 4)`` with columns bid price, bid size, ask price, ask size, level 1 first,
so recorded and simulated books feed the same code. Levels the book does not have
(a thin market) are NaN.

API reference: https://bybit-exchange.github.io/docs/v5/market/orderbook
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import requests

from flashtrade_lib.data import bybit
from flashtrade_lib.data.bybit import BYBIT_URL, BybitError, make_session
from flashtrade_lib.data.cache import default_cache_dir, write_parquet_atomic

__all__ = [
    "ORDERBOOK_PATH",
    "MAX_DEPTH",
    "OrderBookSnapshot",
    "fetch_orderbook",
    "record_orderbook",
    "load_orderbook_recording",
]

ORDERBOOK_PATH = "/v5/market/orderbook"
#: Largest ``limit`` (levels per side) Bybit accepts, per category.
MAX_DEPTH = {"spot": 200, "linear": 500, "inverse": 500}


@dataclass(frozen=True)
class OrderBookSnapshot:
    """One order-book snapshot.

    ``levels``: float64 ``(depth, 4)`` — bid price, bid size, ask price, ask size per
    level (1 = best), NaN where the book has fewer levels. ``ts_ms``: Bybit's snapshot
    time; ``update_id`` (``u``) and ``seq`` let you detect a repeated snapshot;
    ``cts_ms`` is the matching engine's time (may be ``None``).
    """

    symbol: str
    category: str
    ts_ms: int
    update_id: int
    seq: int | None
    cts_ms: int | None
    levels: np.ndarray

    @property
    def mid(self) -> float:
        return float((self.levels[0, 0] + self.levels[0, 2]) / 2)


def _validate(symbol: Any, category: Any, depth: Any) -> tuple[str, str, int]:
    # bybit.validate_request checks symbol and category (with the kline interval, fixed here)
    symbol, _, category = bybit.validate_request(symbol, "1", category)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth must be an int (levels per side), got {type(depth).__name__}")
    cap = MAX_DEPTH[category]
    if not 1 <= depth <= cap:
        raise ValueError(f"depth must be between 1 and {cap} for category {category!r}, got {depth}")
    return symbol, category, int(depth)


def _side(raw: Any, name: str, depth: int, what: str) -> np.ndarray:
    if not isinstance(raw, list):
        raise BybitError(f"{what}: field {name!r} is not a list of [price, size] pairs: {str(raw)[:120]}")
    out = np.full((depth, 2), np.nan)
    for i, level in enumerate(raw[:depth]):
        if not isinstance(level, (list, tuple)) or len(level) < 2:
            raise BybitError(f"{what}: {name}[{i}] is malformed (expected [price, size]), got {level!r}")
        try:
            price, size = float(level[0]), float(level[1])
        except (TypeError, ValueError) as exc:
            raise BybitError(f"{what}: {name}[{i}] has a non-numeric field: {level!r}") from exc
        if not (math.isfinite(price) and math.isfinite(size) and price > 0 and size > 0):
            raise BybitError(f"{what}: {name}[{i}] has an invalid price or size: {level!r}")
        out[i] = price, size
    return out


def _parse(result: Any, symbol: str, category: str, depth: int, what: str) -> OrderBookSnapshot:
    if not isinstance(result, dict):
        raise BybitError(f"{what}: result is not an object: {str(result)[:200]}")
    missing = [k for k in ("s", "b", "a", "ts", "u") if k not in result]
    if missing:
        raise BybitError(f"{what}: result lacks field(s) {missing}: {str(result)[:200]}")
    if result["s"] != symbol:
        raise BybitError(f"{what}: asked for {symbol} but got a book for {result['s']!r}")
    bids = _side(result["b"], "b", depth, what)
    asks = _side(result["a"], "a", depth, what)
    n_b, n_a = int(np.sum(~np.isnan(bids[:, 0]))), int(np.sum(~np.isnan(asks[:, 0])))
    if n_b == 0 or n_a == 0:
        raise BybitError(f"{what}: the book has no {'bids' if n_b == 0 else 'asks'}; is the market halted?")
    if np.any(np.diff(bids[:n_b, 0]) >= 0) or np.any(np.diff(asks[:n_a, 0]) <= 0):
        raise BybitError(f"{what}: bids must be sorted best (highest) first and asks best (lowest) first")
    if bids[0, 0] >= asks[0, 0]:
        raise BybitError(f"{what}: crossed book (best bid {bids[0, 0]} >= best ask {asks[0, 0]})")
    try:
        ts, u = int(result["ts"]), int(result["u"])
        seq = None if result.get("seq") is None else int(result["seq"])
        cts = None if result.get("cts") is None else int(result["cts"])
    except (TypeError, ValueError) as exc:
        raise BybitError(f"{what}: non-integer ts/u/seq/cts in {str(result)[:200]}") from exc
    levels = np.column_stack([bids[:, 0], bids[:, 1], asks[:, 0], asks[:, 1]])
    return OrderBookSnapshot(symbol, category, ts, u, seq, cts, levels)


def fetch_orderbook(
    symbol: str,
    depth: int = 50,
    *,
    category: str = "linear",
    base_url: str = BYBIT_URL,
    session: requests.Session | None = None,
    timeout: float = 10.0,
    max_retries: int = 5,
    backoff_factor: float = 0.5,
    max_wait: float = 60.0,
) -> OrderBookSnapshot:
    """One snapshot of ``depth`` levels per side of ``symbol``'s book (live; touches the network).

    ``depth`` is Bybit's ``limit``: 1–200 for spot, 1–500 for linear/inverse. Errors
    and retries follow :func:`~flashtrade_lib.data.bybit.fetch_klines`: HTTP 403 raises
    :class:`~flashtrade_lib.data.bybit.BybitBannedError` at once; an unknown symbol
    raises :class:`~flashtrade_lib.data.bybit.BybitAPIError` (``retCode`` 10001).
    """
    symbol, category, depth = _validate(symbol, category, depth)
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    bybit.check_retry_settings(timeout, max_retries, backoff_factor, max_wait)
    if session is None:
        session = make_session()
    url = base_url.rstrip("/") + ORDERBOOK_PATH
    params = {"category": category, "symbol": symbol, "limit": depth}
    result, _ = bybit.get_result(
        session, url, params, timeout=timeout, max_retries=max_retries,
        backoff_factor=backoff_factor, max_wait=max_wait,
    )
    return _parse(result, symbol, category, depth, bybit.describe_request(url, params))


def _columns(depth: int) -> list[str]:
    return [f"{f}_{i}" for i in range(1, depth + 1) for f in ("bid_price", "bid_size", "ask_price", "ask_size")]


def _frame(snaps: list[OrderBookSnapshot], polled_ms: list[int], depth: int) -> pd.DataFrame:
    data = np.stack([s.levels.reshape(-1) for s in snaps]) if snaps else np.empty((0, 4 * depth))
    df = pd.DataFrame(data, columns=_columns(depth))
    df.insert(0, "update_id", np.array([s.update_id for s in snaps], dtype=np.int64))
    df.insert(1, "polled_ms", np.array(polled_ms, dtype=np.int64))
    df.index = pd.DatetimeIndex(pd.to_datetime([s.ts_ms for s in snaps], unit="ms", utc=True), name="ts")
    return df


def record_orderbook(
    symbol: str,
    depth: int = 50,
    *,
    interval_s: float = 1.0,
    count: int | None = None,
    duration_s: float | None = None,
    category: str = "linear",
    cache_dir: str | os.PathLike[str] | None = None,
    flush_every: int = 100,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    **fetch_kwargs: Any,
) -> Path:
    """Poll :func:`fetch_orderbook` every ``interval_s`` seconds into a parquet file; return its path.

    Stops after ``count`` snapshots or ``duration_s`` seconds, whichever comes first
    (at least one of them is required: a recorder must end). The schedule is fixed —
    poll ``k`` is due at ``start + k * interval_s`` — so slow answers do not make the
    cadence drift; a poll that is already late skips the missed slots (their count
    is stored in the file's metadata as ``skipped``), and a snapshot whose update id
    did not change is kept (the book was quiet). The file
    ``<cache>/bybit-orderbook/<category>/<SYMBOL>_<depth>_<start>.parquet`` is rewritten
    atomically every ``flush_every`` snapshots and at the end, so an interrupted
    recording keeps what it had. Read it back with :func:`load_orderbook_recording`.
    ``clock``/``sleep`` exist so tests can run the schedule without waiting.
    """
    symbol, category, depth = _validate(symbol, category, depth)
    if not (isinstance(interval_s, (int, float)) and math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
    if count is None and duration_s is None:
        raise ValueError("pass count= (snapshots) or duration_s= (seconds): the recorder needs a bound")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be a positive int, got {count!r}")
    if duration_s is not None and not (isinstance(duration_s, (int, float)) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not isinstance(flush_every, int) or flush_every < 1:
        raise ValueError(f"flush_every must be a positive int, got {flush_every!r}")


    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    start = clock()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start))
    folder = root / "bybit-orderbook" / category
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}_{depth}_{stamp}.parquet"
    if "session" not in fetch_kwargs:  # one connection pool for the whole recording
        fetch_kwargs["session"] = make_session()
    snaps: list[OrderBookSnapshot] = []
    polled: list[int] = []
    skipped = 0
    k = 0

    def flush() -> None:
        meta = {"symbol": symbol, "category": category, "depth": depth, "interval_s": interval_s,
                "start_utc": stamp, "skipped": skipped, "source": "bybit", "path": ORDERBOOK_PATH}
        write_parquet_atomic(_frame(snaps, polled, depth), path, meta)

    while True:
        due = start + k * interval_s
        if duration_s is not None and due - start > duration_s:
            break
        now = clock()
        if now < due:
            sleep(due - now)
        polled.append(int(clock() * 1000))
        snaps.append(fetch_orderbook(symbol, depth, category=category, **fetch_kwargs))
        if len(snaps) % flush_every == 0:
            flush()
        if count is not None and len(snaps) >= count:
            break
        k += 1
        latest_due = int((clock() - start) // interval_s)  # slots k..latest_due-1 were missed
        if duration_s is not None:  # slots after the end are not "missed"
            latest_due = min(latest_due, int(duration_s // interval_s) + 1)
        if latest_due > k:
            skipped += latest_due - k
            k = latest_due
    flush()
    return path


def load_orderbook_recording(path: str | os.PathLike[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """``(snapshots, frame)``: ``snapshots`` is ``(T, depth, 4)`` in the simulator's layout."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no order-book recording at {path}; record one with record_orderbook()")
    df = pq.read_table(path).to_pandas()
    cols = [c for c in df.columns if c.startswith(("bid_", "ask_"))]
    depth = len(cols) // 4
    if depth == 0 or cols != _columns(depth):
        raise ValueError(f"{path} is not an order-book recording (columns {list(df.columns)[:6]}...)")
    return df[cols].to_numpy(dtype=np.float64).reshape(len(df), depth, 4), df
