"""Fault injection — a pager that proves completeness (issue #29, item 1).

Against the loopback fake Bybit (tests/fake_bybit.py): pages that overlap, pages capped
below ``limit`` (short, but not the end of history), a server that ignores ``end`` and
``limit``, and rate limits in between. Each test asserts the exact set of bars returned
(or the exact error), and what the cache records as covered.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_bybit import HOUR_MS, FakeBybit, make_bars

from flashtrade_lib.data.bybit import BybitError, fetch_klines
from flashtrade_lib.data.cache import BarCache, CacheLockedError, cached_klines
from flashtrade_lib.data.times import fmt_ms

pytestmark = pytest.mark.timeout(120)

FAST = {"max_retries": 2, "backoff_factor": 0.0, "timeout": 2.0, "progress": False}
SRC = "bybit/linear"


def _times(df) -> np.ndarray:
    return df.index.as_unit("ms").asi8


def _closed(bars: np.ndarray) -> np.ndarray:
    return bars[:-1, 0].astype(np.int64)  # the fake's newest bar is still open


def test_a_rate_limit_then_pages_that_repeat_a_bar_within_limit_lose_nothing() -> None:
    # the case: 1,998 of 2,596 bars came back, the oldest 598 silently lost
    bars = make_bars(2597)
    with FakeBybit({"BTCUSDT": bars}, faults=["10006"], repeat_boundary=True, page_cap=1000) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    np.testing.assert_array_equal(_times(df), _closed(bars))
    np.testing.assert_allclose(df["close"].to_numpy(), bars[:-1, 4])


@pytest.mark.parametrize("overlap", [1, 150, 600])
def test_overlapping_pages_are_merged_and_never_counted_as_progress(overlap: int) -> None:
    bars = make_bars(2400)
    with FakeBybit({"BTCUSDT": bars}, repeat_boundary=overlap, page_cap=1000) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    np.testing.assert_array_equal(_times(df), _closed(bars))
    assert df.index.is_unique


@pytest.mark.parametrize("start", ["first bar", "before the listing", None])
def test_short_pages_mid_history_are_not_the_end_of_history(start: str | None) -> None:
    bars = make_bars(1300)
    first = int(bars[0, 0])
    asked = {"first bar": first, "before the listing": first - 500 * HOUR_MS, None: None}[start]
    with FakeBybit({"BTCUSDT": bars}, page_cap=300) as fake:  # 300 rows a page whatever limit says
        df = fetch_klines("BTCUSDT", "60", start=asked, base_url=fake.url, **FAST)
    np.testing.assert_array_equal(_times(df), _closed(bars))
    assert df.attrs["covered_start_ms"] == (0 if asked is None else asked)


def test_rate_limits_in_between_pages_lose_nothing() -> None:
    bars = make_bars(1900)
    faults = ["", "429", "10006", "", "500", "10016", ""]
    with FakeBybit({"BTCUSDT": bars}, faults=faults, page_cap=400) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    np.testing.assert_array_equal(_times(df), _closed(bars))


def test_a_server_that_ignores_end_and_limit_is_an_error_naming_the_gap(tmp_path: Path) -> None:
    # the case: 199 of 2,499 bars, and the whole range recorded as covered
    bars = make_bars(2500)
    lo, hi = int(bars[0, 0]), int(bars[-2, 0])
    oldest_served = int(bars[-200, 0])
    with FakeBybit({"BTCUSDT": bars}, ignore_end=True, page_cap=200) as fake:
        gap = f"the bars from {fmt_ms(lo)} to {fmt_ms(oldest_served - 1)} could not be downloaded"
        with pytest.raises(BybitError, match=(
                rf"answered 3 times with no bar at or before end={oldest_served - 1} .*ignores 'end'.*"
                + re.escape(gap))):
            cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, base_url=fake.url, **FAST)
        assert fake.requests[1]["end"] == str(oldest_served - 1)
    assert BarCache(tmp_path).read(SRC, "BTCUSDT", "60") is None  # nothing recorded as covered


def test_without_start_a_server_ignoring_end_is_an_error_too() -> None:
    bars = make_bars(700)
    with FakeBybit({"BTCUSDT": bars}, ignore_end=True, page_cap=200) as fake:
        with pytest.raises(BybitError, match="the bars at or before .* could not be downloaded"):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)


def test_a_server_that_ignores_start_and_limit_gives_the_exact_range() -> None:
    bars = make_bars(900)
    lo, hi = int(bars[100, 0]), int(bars[600, 0])
    with FakeBybit({"BTCUSDT": bars}, page_cap=None) as fake:
        df = fetch_klines("BTCUSDT", "60", lo, hi, base_url=fake.url, limit=50, **FAST)
    np.testing.assert_array_equal(_times(df), bars[100:601, 0].astype(np.int64))


def test_without_start_an_empty_page_is_believed_only_when_asked_twice() -> None:
    bars = make_bars(1500)
    # page 1 (1000 bars), then a flaky empty answer where 499 older bars exist
    with FakeBybit({"BTCUSDT": bars}, faults=["", "empty"]) as fake:
        df = fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)
    np.testing.assert_array_equal(_times(df), _closed(bars))
    assert df.attrs["covered_start_ms"] == 0


def test_the_cache_records_exactly_the_range_short_pages_prove(tmp_path: Path) -> None:
    bars = make_bars(1100)
    lo, hi = int(bars[10, 0]), int(bars[1050, 0])
    with FakeBybit({"BTCUSDT": bars}, page_cap=250, repeat_boundary=3) as fake:
        df = cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, base_url=fake.url, **FAST)
        n = len(fake.requests)
        again = cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, base_url=fake.url, **FAST)
        assert len(fake.requests) == n  # proven once, served from disk
    np.testing.assert_array_equal(_times(df), bars[10:1051, 0].astype(np.int64))
    assert again.equals(df)
    assert BarCache(tmp_path).read(SRC, "BTCUSDT", "60")[1] == (lo, hi)


# ---------------------------------------------------------------- HTTP 429's reset header


def test_http_429_waits_for_bybits_reset_timestamp() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["429_reset"], reset_ms=300) as fake:
        t0 = time.monotonic()
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
        waited = time.monotonic() - t0
    assert len(df) == 9 and waited >= 0.25  # backoff alone is 0 s here


def test_http_429_reset_timestamp_is_capped_by_max_wait() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["429_reset"], reset_ms=3_600_000) as fake:  # an hour
        t0 = time.monotonic()
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url,
                          **FAST | {"max_wait": 0.1})
        waited = time.monotonic() - t0
    assert len(df) == 9 and waited < 2.0


# ---------------------------------------------------------------- the cache lock wait


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the key's lock until its stdin closes."""
    code = ("import sys; from filelock import FileLock\n"
            f"with FileLock({str(path) + '.lock'!r}):\n print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_wait_is_bounded_settable_and_announced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = BarCache(tmp_path).path(SRC, "BTCUSDT", "60")
    path.parent.mkdir(parents=True)
    holder = _hold_lock(path)
    try:
        t0 = time.monotonic()
        with pytest.raises(CacheLockedError, match=r"for over 0\.4 s.*--lock-wait SECONDS"):
            cached_klines("BTCUSDT", "60", 0, HOUR_MS * 10, cache_dir=tmp_path, lock_timeout=0.4,
                          base_url="http://127.0.0.1:9", **FAST)
        assert 0.35 <= time.monotonic() - t0 < 3.0
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert f"waiting for another process updating {path} (giving up in 0 s)" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, "10"])
def test_a_lock_wait_that_is_not_a_finite_number_of_seconds_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="lock_timeout must be a finite number of seconds >= 0"):
        BarCache("/tmp/unused", lock_timeout=bad)


def test_fetch_lock_wait_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from flashtrade_lib.cli import main

    path = BarCache(tmp_path).path(SRC, "BTCUSDT", "60")
    path.parent.mkdir(parents=True)
    holder = _hold_lock(path)
    try:
        status = main(["fetch", "BTCUSDT", "--start", "2024-01-01", "--end", "2024-01-02", "--cache-dir",
                       str(tmp_path), "--lock-wait", "0.3", "--base-url", "http://127.0.0.1:9"])
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert status == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("waiting for another process updating")
    assert lines[-1].startswith("flashtrade fetch: error: another process has been updating")


@pytest.mark.parametrize("bad", ["nan", "-1", "inf"])
def test_fetch_refuses_a_lock_wait_that_is_not_seconds(bad: str, capsys: pytest.CaptureFixture) -> None:
    from flashtrade_lib.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["fetch", "BTCUSDT", "--lock-wait", bad])
    assert exit_.value.code == 2
    assert f"--lock-wait: must be a positive number of seconds, got {bad}" in capsys.readouterr().err
