"""On-disk kline cache: incremental updates, atomic writes, offline mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fake_bybit import HOUR_MS, FakeBybit, make_bars

from flashtrade_lib.data.cache import BarCache, CacheMissError, cached_klines, default_cache_dir

T0 = 1_600_000_000_000 // HOUR_MS * HOUR_MS
SRC = "bybit/linear"


def _bars_frame(lo: int, hi: int) -> pd.DataFrame:
    """Deterministic hourly bars with open time in [lo, hi] (value = 100 + hours since T0)."""
    first = -(-(lo - T0) // HOUR_MS)
    hours = np.arange(first, (hi - T0) // HOUR_MS + 1)
    idx = pd.DatetimeIndex(pd.to_datetime(T0 + hours * HOUR_MS, unit="ms", utc=True), name="open_time")
    vals = 100.0 + hours
    return pd.DataFrame({c: vals for c in ["open", "high", "low", "close", "volume", "turnover"]}, index=idx)


class CountingFetcher:
    def __init__(self) -> None:
        self.calls: list[tuple[int | None, int]] = []

    def __call__(self, symbol: str, interval: str, start: int | None, end: int, **kw: object) -> pd.DataFrame:
        self.calls.append((start, end))
        return _bars_frame(T0 if start is None else start, end)


def _h(n: int) -> int:
    return T0 + n * HOUR_MS


def test_incremental_update_fetches_only_the_missing_range(tmp_path: Path) -> None:
    cache, fetch = BarCache(tmp_path), CountingFetcher()
    a = cache.get("BTCUSDT", "60", _h(100), _h(200), source=SRC, fetch=fetch)
    assert fetch.calls == [(_h(100), _h(200))] and len(a) == 101
    b = cache.get("BTCUSDT", "60", _h(150), _h(300), source=SRC, fetch=fetch)
    assert fetch.calls[1:] == [(_h(200) + 1, _h(300))]
    c = cache.get("BTCUSDT", "60", _h(50), _h(300), source=SRC, fetch=fetch)
    assert fetch.calls[2:] == [(_h(50), _h(100) - 1)]
    d = cache.get("BTCUSDT", "60", _h(60), _h(250), source=SRC, fetch=fetch)  # fully covered: no fetch
    assert len(fetch.calls) == 3
    pd.testing.assert_frame_equal(b, _bars_frame(_h(150), _h(300)), check_index_type=False)
    pd.testing.assert_frame_equal(c, _bars_frame(_h(50), _h(300)), check_index_type=False)
    assert np.array_equal(d["close"].to_numpy(), 100.0 + np.arange(60, 251))


def test_cache_is_keyed_by_category_symbol_and_interval(tmp_path: Path) -> None:
    cache, fetch = BarCache(tmp_path), CountingFetcher()
    cache.get("BTCUSDT", "60", _h(0), _h(10), source=SRC, fetch=fetch)
    cache.get("BTCUSDT", "60", _h(0), _h(10), source="bybit/spot", fetch=fetch)
    cache.get("ETHUSDT", "60", _h(0), _h(10), source=SRC, fetch=fetch)
    cache.get("BTCUSDT", "15", _h(0), _h(10), source=SRC, fetch=fetch)
    assert len(fetch.calls) == 4
    assert len(list(tmp_path.rglob("*.parquet"))) == 4
    with pytest.raises(ValueError, match="cannot be part of a cache path"):
        cache.path("bybit/linear", "../etc", "60")


def test_interrupted_write_leaves_previous_cache_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, fetch = BarCache(tmp_path), CountingFetcher()
    before = cache.get("BTCUSDT", "60", _h(0), _h(100), source=SRC, fetch=fetch)
    path = cache.path("bybit/linear", "BTCUSDT", "60")
    bytes_before = path.read_bytes()

    class Crash(Exception):
        pass

    real_write = pq.write_table

    def crashing_write(table, where, **kw):  # writes half a file, then "the process dies"
        real_write(table, where, **kw)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])
        raise Crash("power cut")

    monkeypatch.setattr(pq, "write_table", crashing_write)
    with pytest.raises(Crash):
        cache.get("BTCUSDT", "60", _h(0), _h(500), source=SRC, fetch=fetch)
    monkeypatch.undo()
    assert path.read_bytes() == bytes_before
    left = [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")]
    assert left == [path.name]  # no temp file left behind
    after, cov = cache.read("bybit/linear", "BTCUSDT", "60")
    pd.testing.assert_frame_equal(after, before, check_index_type=False)
    assert cov == (_h(0), _h(100))


def test_offline_mode_reads_cache_or_raises(tmp_path: Path) -> None:
    cache, fetch = BarCache(tmp_path), CountingFetcher()
    with pytest.raises(CacheMissError, match="nothing cached.*offline=False"):
        cache.get("BTCUSDT", "60", _h(0), _h(10), offline=True, source=SRC, fetch=fetch)
    cache.get("BTCUSDT", "60", _h(0), _h(100), source=SRC, fetch=fetch)
    got = cache.get("BTCUSDT", "60", _h(10), _h(20), offline=True, source=SRC, fetch=fetch)
    assert len(got) == 11
    everything = cache.get("BTCUSDT", "60", offline=True, source=SRC, fetch=fetch)
    assert len(everything) == 101
    with pytest.raises(CacheMissError, match="covers .* but .* was asked for"):
        cache.get("BTCUSDT", "60", _h(50), _h(150), offline=True, source=SRC, fetch=fetch)
    assert len(fetch.calls) == 1


def test_offline_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHTRADE_OFFLINE", "1")
    with pytest.raises(CacheMissError):
        BarCache(tmp_path).get("BTCUSDT", "60", _h(0), _h(10), source=SRC, fetch=CountingFetcher())


def test_default_cache_dir_outside_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLASHTRADE_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FLASHTRADE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "flashtrade"
    monkeypatch.delenv("XDG_CACHE_HOME")
    repo = Path(__file__).resolve().parents[1]
    assert repo not in default_cache_dir().resolve().parents


def test_end_to_end_with_fake_exchange_second_call_is_free(tmp_path: Path) -> None:
    bars = make_bars(1500)
    lo, hi = int(bars[0, 0]), int(bars[1200, 0])
    with FakeBybit({"BTCUSDT": bars}) as fake:
        kw = {"base_url": fake.url, "max_retries": 1, "backoff_factor": 0.0}
        first = cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, **kw)
        n_requests = len(fake.requests)
        second = cached_klines("BTCUSDT", "60", lo, hi, cache_dir=tmp_path, **kw)
        assert len(fake.requests) == n_requests
        # extending to "now" fetches only the newer bars, and drops the still-open candle
        latest = cached_klines("BTCUSDT", "60", lo, cache_dir=tmp_path, **kw)
        assert all(int(q["end"]) > hi for q in fake.requests[n_requests:])
    pd.testing.assert_frame_equal(first, second)
    assert len(first) == 1201 and len(latest) == 1499
    np.testing.assert_allclose(latest["close"].to_numpy(), bars[:-1, 4])
