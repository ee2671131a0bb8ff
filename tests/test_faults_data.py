"""Fault injection, class 1 — nothing lost: no fault in a download or on disk drops bars silently.

Faults: an empty page part-way through a download (tests/fake_bybit.py), a fetch that
proves less than it was asked for, planted corrupt cache files, a killed writer's
temporary file, and two real processes updating one cache key at once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_bybit import HOUR_MS, FakeBybit, make_bars

from flashtrade_lib.data.bybit import BybitError, fetch_klines
from flashtrade_lib.data.cache import BarCache, CorruptCacheError, cached_klines

pytestmark = pytest.mark.timeout(120)

FAST = {"max_retries": 2, "backoff_factor": 0.0, "timeout": 2.0, "progress": False}
T0 = 1_600_000_000_000 // HOUR_MS * HOUR_MS
SRC = "bybit/linear"


def _h(n: int) -> int:
    return T0 + n * HOUR_MS


def _bars(lo: int, hi: int) -> pd.DataFrame:
    hours = np.arange(-(-(lo - T0) // HOUR_MS), (hi - T0) // HOUR_MS + 1)
    idx = pd.DatetimeIndex(pd.to_datetime(T0 + hours * HOUR_MS, unit="ms", utc=True), name="open_time")
    return pd.DataFrame({c: 100.0 + hours for c in ("open", "high", "low", "close", "volume")}, index=idx)


# ---------------------------------------------------------------- an empty page part-way


def test_an_empty_page_part_way_is_retried_and_no_bar_is_lost() -> None:
    bars = make_bars(2500)
    with FakeBybit({"BTCUSDT": bars}, faults=["", "empty"]) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    assert len(df) == 2499  # all closed bars, the older 1499 included
    # page 1, the empty page, a probe that finds a bar inside its range, the retry, page 3
    assert len(fake.requests) == 5
    assert "start" not in fake.requests[2] and fake.requests[2]["limit"] == "1"


def test_an_empty_page_that_persists_is_an_error_not_the_end_of_history() -> None:
    bars = make_bars(2500)
    with FakeBybit({"BTCUSDT": bars}, faults=["", *["empty"] * 6]) as fake:
        with pytest.raises(BybitError, match="returned no bars 3 times.*page before was full.*could not be"):
            fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)


def test_after_such_an_error_the_cache_records_nothing(tmp_path: Path) -> None:
    bars = make_bars(2500)
    lo, hi = int(bars[0, 0]), int(bars[-2, 0])
    with FakeBybit({"BTCUSDT": bars}, faults=["", *["empty"] * 6]) as fake:
        with pytest.raises(BybitError):
            cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, base_url=fake.url, **FAST)
        assert BarCache(tmp_path).read(SRC, "BTCUSDT", "60") is None
        # the next (healthy) call downloads everything
        df = cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, base_url=fake.url, **FAST)
    assert len(df) == 2499


def test_an_empty_first_page_is_believed_only_when_a_probe_confirms_it() -> None:
    bars = make_bars(100)
    lo, hi = int(bars[10, 0]), int(bars[50, 0])
    with FakeBybit({"BTCUSDT": bars}, faults=["empty"]) as fake:  # a flaky empty answer
        df = fetch_klines("BTCUSDT", "60", lo, hi, base_url=fake.url, **FAST)
    assert len(df) == 41  # the probe found a bar in the range: retried, nothing marked empty
    early = int(bars[0, 0]) - 500 * HOUR_MS  # before the listing: genuinely empty
    with FakeBybit({"BTCUSDT": bars}) as fake:
        df = fetch_klines("BTCUSDT", "60", early, early + 100 * HOUR_MS, base_url=fake.url, **FAST)
    assert len(df) == 0 and len(fake.requests) == 2  # the page and its probe


def test_a_real_hole_in_the_exchanges_history_is_not_an_error() -> None:
    original = make_bars(2000)
    start = int(original[100, 0])  # inside a hole the exchange never filled (hours 50..999)
    bars = make_bars(2000, missing=tuple(range(50, 1000)))
    with FakeBybit({"BTCUSDT": bars}) as fake:
        df = fetch_klines("BTCUSDT", "60", start, base_url=fake.url, **FAST)
    # one full page, then an empty one; the probe finds hour 49, older than start: proven empty
    assert len(df) == 999 and len(fake.requests) == 3


def test_without_start_an_empty_page_is_the_end_of_history() -> None:
    bars = make_bars(1000)
    with FakeBybit({"BTCUSDT": bars}, now_ms=int(bars[-1, 0]) + HOUR_MS) as fake:
        df = fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)
    assert len(df) == 1000 and df.attrs["covered_start_ms"] == 0


def test_the_cache_records_only_what_a_fetch_proves(tmp_path: Path) -> None:
    calls = []

    def short_fetch(symbol, interval, start, end, **kw):  # proves only from hour 50 on
        calls.append((start, end))
        part = _bars(max(start, _h(50)), end)
        part.attrs = {"covered_start_ms": _h(50), "covered_end_ms": end}
        return part

    cache = BarCache(tmp_path)
    cache.get("BTCUSDT", "60", _h(0), _h(100), source=SRC, fetch=short_fetch)
    assert cache.read(SRC, "BTCUSDT", "60")[1] == (_h(50), _h(100))
    cache.get("BTCUSDT", "60", _h(0), _h(100), source=SRC, fetch=short_fetch)
    assert calls[1] == (_h(0), _h(50) - 1)  # the unproven hours are asked for again


# ---------------------------------------------------------------- corrupt files


def _plant(path: Path, df: pd.DataFrame, meta: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, preserve_index=True)
    if meta is not None:
        import json

        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"flashtrade": json.dumps(meta).encode()})
    pq.write_table(table, path)


GOOD = _bars(_h(0), _h(20))
COV = {"covered_start_ms": _h(0), "covered_end_ms": _h(20)}
CORRUPTIONS = {
    "unsorted": (GOOD.iloc[::-1], COV, "not sorted"),
    "duplicated": (pd.concat([GOOD, GOOD.iloc[:3]]).sort_index(), COV, "3 duplicated timestamps"),
    "outside coverage": (GOOD, {"covered_start_ms": _h(5), "covered_end_ms": _h(20)}, "outside the covered range"),
    "reversed coverage": (GOOD.iloc[:0], {"covered_start_ms": _h(5), "covered_end_ms": _h(1)}, "reversed"),
    "nan price": (GOOD.assign(close=np.r_[GOOD["close"].to_numpy()[:-1], np.nan]), COV, "not finite and positive"),
    "negative price": (GOOD.assign(low=-1.0), COV, "not finite and positive"),
    "negative volume": (GOOD.assign(volume=-5.0), COV, "volumes"),
    "missing column": (GOOD.drop(columns="close"), COV, r"columns \['close'\] are missing"),
    "no metadata": (GOOD, None, "no valid flashtrade coverage metadata"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupt_cache_file_is_refused_with_what_to_do(name: str, tmp_path: Path) -> None:
    df, meta, what = CORRUPTIONS[name]
    cache = BarCache(tmp_path)
    path = cache.path(SRC, "BTCUSDT", "60")
    _plant(path, df, meta)
    for offline in (True, False):
        with pytest.raises(CorruptCacheError, match=f"corrupt cache file {path}: .*{what}.*refresh=True"):
            cache.get("BTCUSDT", "60", _h(0), _h(10), source=SRC, offline=offline, fetch=_never)


def _never(*args, **kwargs):
    raise AssertionError("a corrupt file must not be silently refetched")


def test_a_truncated_cache_file_is_refused(tmp_path: Path) -> None:
    cache = BarCache(tmp_path)
    path = cache.write(GOOD, (_h(0), _h(20)), SRC, "BTCUSDT", "60")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptCacheError, match="not a readable parquet file"):
        cache.read(SRC, "BTCUSDT", "60")


def test_refresh_refetches_and_replaces_a_corrupt_file(tmp_path: Path) -> None:
    cache = BarCache(tmp_path)
    path = cache.path(SRC, "BTCUSDT", "60")
    _plant(path, GOOD.iloc[::-1], COV)

    def fetch(symbol, interval, start, end, **kw):
        return _bars(start, end)

    got = cache.get("BTCUSDT", "60", _h(0), _h(10), source=SRC, fetch=fetch, refresh=True)
    assert len(got) == 11
    df, cov = cache.read(SRC, "BTCUSDT", "60")
    assert cov == (_h(0), _h(10)) and df.index.is_monotonic_increasing


# ---------------------------------------------------------------- killed and concurrent writers


def test_a_killed_writers_temporary_file_is_cleaned_up(tmp_path: Path) -> None:
    cache = BarCache(tmp_path)
    path = cache.write(GOOD, (_h(0), _h(20)), SRC, "BTCUSDT", "60")
    orphan = path.parent / f".{path.name}.k1ll3d.tmp"
    orphan.write_bytes(b"half a parquet file")
    cache.get("BTCUSDT", "60", _h(0), _h(30), source=SRC, fetch=lambda s, i, lo, hi, **kw: _bars(lo, hi))
    assert not orphan.exists()
    assert cache.read(SRC, "BTCUSDT", "60")[1] == (_h(0), _h(30))


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np, pandas as pd
    from flashtrade_lib.data.cache import BarCache

    root, lo, hi, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    H = 3_600_000

    def slow_fetch(symbol, interval, start, end, **kw):
        time.sleep(0.5)  # both processes are inside a download at the same time
        t = np.arange(-(-start // H) * H, end + 1, H)
        idx = pd.DatetimeIndex(pd.to_datetime(t, unit="ms", utc=True), name="open_time")
        return pd.DataFrame({c: 1.0 + t / H for c in ("open", "high", "low", "close", "volume")}, index=idx)

    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    BarCache(root).get("BTCUSDT", "60", lo, hi, source="bybit/linear", fetch=slow_fetch)
""")


def test_two_processes_writing_one_key_lose_no_bars(tmp_path: Path) -> None:
    script, go = tmp_path / "writer.py", tmp_path / "go"
    script.write_text(_WRITER)
    ranges = [(_h(0), _h(100)), (_h(50), _h(200))]
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(lo), str(hi), str(go)])
             for lo, hi in ranges]
    go.touch()
    for p in procs:
        assert p.wait(timeout=60) == 0
    df, cov = BarCache(tmp_path / "cache").read(SRC, "BTCUSDT", "60")
    assert cov == (_h(0), _h(200))
    assert len(df) == 201 and df.index.is_unique


def test_waiting_for_another_writer_is_bounded(tmp_path: Path) -> None:
    import time

    from filelock import FileLock

    from flashtrade_lib.data.cache import CacheLockedError

    cache = BarCache(tmp_path, lock_timeout=0.3)
    path = cache.path(SRC, "BTCUSDT", "60")
    path.parent.mkdir(parents=True)
    with FileLock(str(path) + ".lock"):  # another process is mid-update (a stuck one, say)
        t0 = time.monotonic()
        with pytest.raises(CacheLockedError, match="another process has been updating .* for over 0.3 s"):
            cache.get("BTCUSDT", "60", _h(0), _h(10), source=SRC, fetch=_never)
        assert time.monotonic() - t0 < 1.5


def test_refreshing_part_of_a_valid_file_keeps_the_bars_around_it(tmp_path: Path) -> None:
    cache = BarCache(tmp_path)
    cache.write(_bars(_h(0), _h(100)), (_h(0), _h(100)), SRC, "BTCUSDT", "60")

    def fetch(symbol, interval, start, end, **kw):
        return _bars(start, end) * 2.0  # the refetched bars differ, so we can tell them apart

    cache.get("BTCUSDT", "60", _h(40), _h(60), source=SRC, fetch=fetch, refresh=True)
    df, cov = cache.read(SRC, "BTCUSDT", "60")
    assert cov == (_h(0), _h(100)) and len(df) == 101
    assert df["close"].iloc[39] == 139.0 and df["close"].iloc[40] == 280.0 and df["close"].iloc[61] == 161.0


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pyarrow.parquet as pq
    import numpy as np, pandas as pd
    from flashtrade_lib.data.cache import BarCache

    real = pq.write_table

    def half_then_hang(table, where, **kw):  # the process is killed in the middle of a write
        real(table, where, **kw)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])
        Path(sys.argv[2]).touch()
        time.sleep(60)

    pq.write_table = half_then_hang
    H = 3_600_000
    t = np.arange(0, 500 * H + 1, H) + 1_600_000_000_000 // H * H
    idx = pd.DatetimeIndex(pd.to_datetime(t, unit="ms", utc=True), name="open_time")
    bars = pd.DataFrame({c: 100.0 for c in ("open", "high", "low", "close", "volume")}, index=idx)
    BarCache(sys.argv[1]).write(bars, (int(t[0]), int(t[-1])), "bybit/linear", "BTCUSDT", "60")
""")


def test_a_writer_killed_mid_write_leaves_the_file_intact_and_its_temp_file_is_removed(tmp_path: Path) -> None:
    import os
    import signal
    import time

    cache = BarCache(tmp_path / "cache")
    path = cache.write(GOOD, (_h(0), _h(20)), SRC, "BTCUSDT", "60")
    before = path.read_bytes()
    script, ready = tmp_path / "writer.py", tmp_path / "ready"
    script.write_text(_KILLED_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), "the writer never reached its write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    orphans = list(path.parent.glob(f".{path.name}.*.tmp"))
    assert len(orphans) == 1 and path.read_bytes() == before  # the old file is untouched
    cache.get("BTCUSDT", "60", _h(0), _h(30), source=SRC, fetch=lambda s, i, lo, hi, **kw: _bars(lo, hi))
    assert not orphans[0].exists()  # the next writer (the lock is free: its holder died) cleans up
    assert cache.read(SRC, "BTCUSDT", "60")[1] == (_h(0), _h(30))


def test_a_range_of_still_open_candles_is_returned_empty_and_not_cached(tmp_path: Path) -> None:
    bars = make_bars(50)
    now_ms = int(bars[-1, 0]) + HOUR_MS // 2  # the last bar is open
    with FakeBybit({"BTCUSDT": bars}, now_ms=now_ms) as fake:
        df = cached_klines("BTCUSDT", "60", int(bars[-1, 0]), now_ms, cache_dir=tmp_path, base_url=fake.url, **FAST)
    assert len(df) == 0 and BarCache(tmp_path).read(SRC, "BTCUSDT", "60") is None
