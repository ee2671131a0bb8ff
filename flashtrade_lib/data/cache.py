"""On-disk parquet cache for downloaded bars of any venue: download once, then work offline.

Why: Bybit bans IPs that ask too often, notebooks are re-run many times, and a
reader on a train has no network. The cache keeps one parquet file per
``(source, symbol, interval)`` — ``source`` names the venue and market, e.g.
``"bybit/linear"`` or ``"yahoo"`` — plus the *time range it covers* (stored in the
file's metadata — a range can legitimately contain no bars, e.g. before a listing,
and must not be re-downloaded). A request fetches only the part of the range that
is not covered yet, and the range recorded as covered is only what the answers
prove (a fetcher states it in ``attrs["covered_start_ms"/"covered_end_ms"]``).

Nothing is lost:

* writes go to a temporary file in the same folder and are moved into place with
  :func:`os.replace` (atomic on POSIX and Windows), so a crash mid-write leaves the
  previous file intact; temporary files left by a killed writer are removed by the
  next writer of that key;
* a per-key file lock (:mod:`filelock`) serialises read–fetch–merge–write, so two
  processes updating one key never drop each other's bars;
* every file is validated when read (schema, sorted unique index, rows inside the
  covered range, finite positive prices): a bad one raises :class:`CorruptCacheError`,
  and ``refresh=True`` refetches and replaces it.

In offline mode the cache answers from disk or raises; it never substitutes other data.
The cache lives in ``$FLASHTRADE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/flashtrade``
or ``~/.cache/flashtrade`` — outside the repository.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from flashtrade_lib.atomic import atomic_path, remove_orphans
from flashtrade_lib.data.times import fmt_ms, to_ms
from flashtrade_lib.errors import FlashTradeError

__all__ = [
    "BarCache",
    "CacheLockedError",
    "CacheMissError",
    "CorruptCacheError",
    "cached_klines",
    "default_cache_dir",
    "write_parquet_atomic",
]

_META_KEY = b"flashtrade"
_SAFE = re.compile(r"^[A-Za-z0-9_\-]+$")
_PRICES = ("open", "high", "low", "close")

Fetcher = Callable[..., pd.DataFrame]


class CacheMissError(FlashTradeError, LookupError):
    """Offline mode was asked for bars the cache does not hold."""


class CorruptCacheError(FlashTradeError, ValueError):
    """A cache file is unreadable or inconsistent; it is never used, only reported."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"corrupt cache file {path}: {what}; delete it or refetch with refresh=True")
        self.path = path


class CacheLockedError(FlashTradeError, TimeoutError):
    """Another process held a cache key's lock longer than ``lock_timeout``."""


LOCK_NOTE_EVERY_S = 10.0  # while waiting for another writer, say so this often (stderr)


def default_cache_dir() -> Path:
    """``$FLASHTRADE_CACHE_DIR``, else ``$XDG_CACHE_HOME/flashtrade``, else ``~/.cache/flashtrade``."""
    env = os.environ.get("FLASHTRADE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "flashtrade"


def write_parquet_atomic(df: pd.DataFrame, path: Path, meta: dict[str, Any]) -> None:
    """Write ``df`` (index kept) with JSON ``meta`` in the schema, atomically
    (:func:`flashtrade_lib.atomic.atomic_path`): a crash mid-write leaves the previous file intact.
    """
    table = pa.Table.from_pandas(df, preserve_index=True)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(meta).encode()
    table = table.replace_schema_metadata(schema_meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _check_bars(df: pd.DataFrame, coverage: tuple[int, int]) -> str | None:
    """What is wrong with cached bars, or ``None``: the checks every read runs."""
    if not isinstance(df.index, pd.DatetimeIndex):
        return f"the index is {type(df.index).__name__}, not bar open times"
    missing = [c for c in (*_PRICES, "volume") if c not in df.columns]
    if missing:
        return f"columns {missing} are missing"
    if not df.index.is_monotonic_increasing:
        return "the bars are not sorted by time"
    if df.index.has_duplicates:
        return f"{int(df.index.duplicated().sum())} duplicated timestamps"
    c0, c1 = coverage
    if c0 > c1:
        return f"the covered range is reversed ({fmt_ms(c0)} > {fmt_ms(c1)})"
    if len(df):
        t = df.index.as_unit("ms").asi8
        if t[0] < c0 or t[-1] > c1:
            return (f"bars from {df.index[0]} to {df.index[-1]} lie outside the covered range "
                    f"{fmt_ms(c0)} .. {fmt_ms(c1)}")
    try:
        prices = df[list(_PRICES)].to_numpy(dtype=np.float64)
        volume = df["volume"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return f"non-numeric bars ({exc})"
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        return "prices that are not finite and positive"
    if not (np.isfinite(volume).all() and (volume >= 0).all()):
        return "volumes that are not finite and non-negative"
    return None


def _proven(part: pd.DataFrame, lo: int, hi: int) -> tuple[pd.DataFrame, tuple[int, int]]:
    """The bars of a fetched part and the range it proves complete (within ``[lo, hi]``).

    A fetcher states its proof in ``attrs`` (:func:`~flashtrade_lib.data.bybit.fetch_klines`
    does); one that states nothing vouches for the whole range it was asked for.
    """
    p0 = max(lo, int(part.attrs.get("covered_start_ms", lo)))
    p1 = min(hi, int(part.attrs.get("covered_end_ms", hi)))
    t = part.index.as_unit("ms").asi8 if len(part) else np.empty(0, np.int64)
    return part[(t >= p0) & (t <= p1)], (p0, p1)


class BarCache:
    """Parquet files of bars keyed by ``(source, symbol, interval)``, with their covered range.

    ``lock_timeout`` (seconds, finite, ``>= 0``) bounds how long :meth:`get` waits for
    another process updating the same key; the wait is announced on stderr, with the
    time left, so a waiting command never looks hung.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = 900.0) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
                or not 0 <= lock_timeout < float("inf"):
            raise ValueError(f"lock_timeout must be a finite number of seconds >= 0, got {lock_timeout!r}")
        self.lock_timeout = float(lock_timeout)
        self._locks: dict[Path, FileLock] = {}

    def path(self, source: str, symbol: str, interval: str) -> Path:
        """``<root>/<source parts>/<symbol>_<interval>.parquet``; ``source`` may hold ``/``."""
        parts = source.split("/") if isinstance(source, str) else [source]
        for name, value in [*(("source", p) for p in parts), ("symbol", symbol), ("interval", interval)]:
            if not isinstance(value, str) or not _SAFE.match(value):
                raise ValueError(f"{name}={value!r} cannot be part of a cache path (letters, digits, '_', '-')")
        return self.root.joinpath(*parts) / f"{symbol}_{interval}.parquet"

    def read(self, source: str, symbol: str, interval: str) -> tuple[pd.DataFrame, tuple[int, int]] | None:
        """(bars, (covered_start_ms, covered_end_ms)) or ``None`` when nothing is cached.

        Raises :class:`CorruptCacheError` for a file that fails any check.
        """
        path = self.path(source, symbol, interval)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
            coverage = (int(meta["covered_start_ms"]), int(meta["covered_end_ms"]))
            df = table.to_pandas()
        except (OSError, pa.ArrowException) as exc:  # before ValueError: ArrowInvalid is one
            raise CorruptCacheError(path, f"not a readable parquet file ({exc})") from None
        except (KeyError, TypeError, ValueError):
            raise CorruptCacheError(path, "no valid flashtrade coverage metadata") from None
        problem = _check_bars(df, coverage)
        if problem is not None:
            raise CorruptCacheError(path, problem)
        df.index = pd.DatetimeIndex(df.index, name="open_time").tz_convert("UTC")
        return df, coverage

    def _lock(self, path: Path) -> FileLock:
        if path not in self._locks:
            self._locks[path] = FileLock(str(path) + ".lock", timeout=self.lock_timeout)
        return self._locks[path]

    def _locked(self, path: Path) -> FileLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._lock(path)
        try:
            lock.acquire(timeout=0)
            return lock
        except Timeout:
            pass
        deadline = time.monotonic() + self.lock_timeout
        while (left := deadline - time.monotonic()) > 0:
            print(f"waiting for another process updating {path} (giving up in {left:.0f} s)",
                  file=sys.stderr, flush=True)
            try:
                lock.acquire(timeout=min(left, LOCK_NOTE_EVERY_S))
                return lock
            except Timeout:
                pass
        raise CacheLockedError(
            f"another process has been updating {path} for over {self.lock_timeout:g} s; "
            "wait for it to finish (or stop it) and run again, or wait longer with "
            "lock_timeout= (flashtrade fetch --lock-wait SECONDS)"
        )

    def write(self, df: pd.DataFrame, coverage: tuple[int, int], source: str, symbol: str,
              interval: str) -> Path:
        """Atomically replace the cached file (under the key's lock); orphaned temp files go."""
        path = self.path(source, symbol, interval)
        problem = _check_bars(df, coverage)
        if problem is not None:
            raise ValueError(f"refusing to cache bars for {path}: {problem}")
        lock = self._locked(path)
        try:
            remove_orphans(path, all_of_them=True)  # every writer holds the lock: any temp file is a killed one's
            write_parquet_atomic(df, path, {
                "covered_start_ms": int(coverage[0]), "covered_end_ms": int(coverage[1]),
                "source": source, "symbol": symbol, "interval": interval,
                "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            })
        finally:
            lock.release()
        return path

    def get(
        self,
        symbol: str,
        interval: str,
        start: Any = None,
        end: Any = None,
        *,
        source: str,
        fetch: Fetcher,
        offline: bool | None = None,
        refresh: bool = False,
        **fetch_kwargs: Any,
    ) -> pd.DataFrame:
        """Bars with open time in ``[start, end]``, downloading only what the cache lacks.

        ``offline=None`` reads ``$FLASHTRADE_OFFLINE`` (``1`` = offline). Offline,
        ``start=None``/``end=None`` mean "from/to the edge of what is cached"; an
        explicit range the cache does not fully cover raises :class:`CacheMissError`.
        ``fetch`` is called as ``fetch(symbol, interval, start_ms or None, end_ms,
        **fetch_kwargs)``. ``refresh=True`` downloads the asked range again and replaces
        the cached file, keeping a valid file's bars around that range.
        """
        interval = str(interval)
        if offline is None:
            offline = os.environ.get("FLASHTRADE_OFFLINE", "0") == "1"
        path = self.path(source, symbol, interval)
        s = 0 if start is None else to_ms(start, "start")
        if offline:
            if refresh:
                raise ValueError("refresh=True needs the network; it cannot be combined with offline mode")
            return self._offline(path, source, symbol, interval, start, end)
        e = int(time.time() * 1000) if end is None else to_ms(end, "end")
        if s >= e:
            raise ValueError(f"start ({fmt_ms(s)}) must be before end ({fmt_ms(e)})")
        lock = self._locked(path)
        try:
            cached = self._kept_for_refresh(source, symbol, interval, s, e) if refresh else \
                self.read(source, symbol, interval)
            if cached is None:
                frames, coverage, missing = [], None, [(s, e)]
            elif refresh:  # the whole asked range again; the valid bars around it may stay
                frames, coverage, missing = [], None, [(s, e)]
            else:
                df_old, (c0, c1) = cached
                frames, coverage = [df_old], (c0, c1)
                missing = [r for r in ((s, c0 - 1), (c1 + 1, e)) if r[0] <= r[1]]
            if not missing:
                return _slice(df_old, s, e)
            for lo, hi in missing:
                part = fetch(symbol, interval, None if lo == 0 else lo, hi, **fetch_kwargs)
                bars, proof = _proven(part, lo, hi)
                frames.append(bars)
                coverage = _join(coverage, proof, path)
            if refresh and cached is not None:
                frames, coverage = _around(cached, frames, coverage, s, e)
            nonempty = [f for f in frames if len(f)]
            merged = pd.concat(nonempty) if nonempty else frames[-1]
            merged = merged[~merged.index.duplicated(keep="last")].sort_index()
            merged.attrs = {}
            if coverage[0] <= coverage[1]:  # nothing proven (e.g. only a still-open candle): nothing cached
                self.write(merged, coverage, source, symbol, interval)
        finally:
            lock.release()
        return _slice(merged, s, e)

    def _kept_for_refresh(self, source: str, symbol: str, interval: str, s: int, e: int
                          ) -> tuple[pd.DataFrame, tuple[int, int]] | None:
        """What a refresh of ``[s, e]`` keeps: a valid file's bars around the range, if they touch it.

        A corrupt file is dropped whole; so is a valid one whose range does not touch
        ``[s, e]`` (one file holds one contiguous covered range).
        """
        try:
            cached = self.read(source, symbol, interval)
        except CorruptCacheError:
            return None
        if cached is None or cached[1][0] > e + 1 or cached[1][1] < s - 1:
            return None
        return cached

    def _offline(self, path: Path, source: str, symbol: str, interval: str, start: Any, end: Any) -> pd.DataFrame:
        cached = self.read(source, symbol, interval)
        if cached is None:
            raise CacheMissError(
                f"offline mode: nothing cached for {source}/{symbol}/{interval} (looked for {path}). "
                "Run once with offline=False (and network access) to download it, or point "
                "FLASHTRADE_CACHE_DIR at a folder that has it."
            )
        df, (c0, c1) = cached
        lo = c0 if start is None else to_ms(start, "start")
        hi = c1 if end is None else to_ms(end, "end")
        if lo < c0 or hi > c1:
            raise CacheMissError(
                f"offline mode: the cache for {symbol} {interval} covers {fmt_ms(c0)} .. {fmt_ms(c1)}, "
                f"but {fmt_ms(lo)} .. {fmt_ms(hi)} was asked for. Ask for a range inside it, or run with "
                "offline=False to download the rest."
            )
        return _slice(df, lo, hi)


def _around(cached: tuple[pd.DataFrame, tuple[int, int]], frames: list[pd.DataFrame],
            coverage: tuple[int, int], s: int, e: int) -> tuple[list[pd.DataFrame], tuple[int, int]]:
    """After a refresh of ``[s, e]``: keep the old bars beyond each edge the new download proved."""
    df_old, (c0, c1) = cached
    lo, hi = coverage
    if lo == s and c0 < s:
        frames, lo = [_slice(df_old, c0, s - 1), *frames], c0
    if hi == e and c1 > e:
        frames, hi = [*frames, _slice(df_old, e + 1, c1)], c1
    return frames, (lo, hi)


def _join(coverage: tuple[int, int] | None, proof: tuple[int, int], path: Path) -> tuple[int, int]:
    """The covered range after adding a fetched part's proven range (they must touch)."""
    if coverage is None:
        return proof
    if proof[0] > proof[1]:  # the part proved nothing (e.g. only still-open candles)
        return coverage
    if proof[0] > coverage[1] + 1 or proof[1] < coverage[0] - 1:
        raise RuntimeError(
            f"{path}: a fetch proved {fmt_ms(proof[0])} .. {fmt_ms(proof[1])}, which does not touch the "
            f"cached {fmt_ms(coverage[0])} .. {fmt_ms(coverage[1])}; nothing was written"
        )
    return min(coverage[0], proof[0]), max(coverage[1], proof[1])


def _slice(df: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    t = df.index.as_unit("ms").asi8
    out = df[(t >= lo) & (t <= hi)].copy()
    out.attrs = {}
    return out


def cached_klines(
    symbol: str,
    interval: str = "60",
    start: Any = None,
    end: Any = None,
    *,
    category: str = "linear",
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    lock_timeout: float = 900.0,
    **fetch_kwargs: Any,
) -> pd.DataFrame:
    """:func:`~flashtrade_lib.data.bybit.fetch_klines` through the on-disk cache (see :class:`BarCache`).

    Bars are cached under the registry's key of Bybit (``bybit/<category>``) and come
    stamped with their clock (:func:`~flashtrade_lib.data.calendar.stamp`); ``lock_timeout``
    bounds the wait for another process updating the same key.
    """
    from flashtrade_lib.data.bybit import fetch_klines, validate_request
    from flashtrade_lib.data.calendar import stamp
    from flashtrade_lib.data.sources import get_source

    symbol, interval, category = validate_request(symbol, interval, category)  # before any file is touched
    fetch = functools.partial(fetch_klines, category=category)
    key = get_source("bybit").cache_key(category=category)
    bars = BarCache(cache_dir, lock_timeout=lock_timeout).get(
        symbol, interval, start, end, source=key, fetch=fetch, offline=offline, refresh=refresh, **fetch_kwargs)
    return stamp(bars, "bybit", interval, symbol=symbol)
