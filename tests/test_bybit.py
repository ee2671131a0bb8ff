"""The Bybit client against a local fake exchange (tests/fake_bybit.py): no internet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fake_bybit import HOUR_MS, FakeBybit, make_bars

from flashtrade_lib.data.bybit import (
    BybitAPIError,
    BybitBannedError,
    BybitError,
    fetch_klines,
)
from flashtrade_lib.data.times import to_ms

FAST = {"max_retries": 3, "backoff_factor": 0.001, "timeout": 2.0}


def _expected(bars: np.ndarray) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.to_datetime(bars[:, 0].astype(np.int64), unit="ms", utc=True))
    return pd.DataFrame(bars[:, 1:], index=idx, columns=["open", "high", "low", "close", "volume", "turnover"])


def _check_same(df: pd.DataFrame, bars: np.ndarray) -> None:
    exp = _expected(bars)
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert str(df.index.tz) == "UTC"
    assert list(df.columns) == list(exp.columns)
    np.testing.assert_array_equal(df.index.asi8, exp.index.asi8)
    np.testing.assert_allclose(df.to_numpy(), exp.to_numpy())


def test_paginates_backwards_and_drops_open_candle() -> None:
    bars = make_bars(2501)
    with FakeBybit({"BTCUSDT": bars}) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    _check_same(df, bars[:-1])  # the newest bar is still open at the fake's clock
    assert len(fake.requests) == 3
    assert all(int(q["limit"]) <= 1000 for q in fake.requests)
    ends = [int(q["end"]) for q in fake.requests]
    assert ends[1] == int(bars[-1000, 0]) - 1 and ends[2] == int(bars[-2000, 0]) - 1
    assert df.attrs["covered_end_ms"] < int(bars[-1, 0])


def test_start_none_walks_back_to_first_bar_and_end_is_inclusive() -> None:
    bars = make_bars(1200)
    with FakeBybit({"ETHUSDT": bars}) as fake:
        df = fetch_klines("ETHUSDT", 60, end=int(bars[999, 0]), base_url=fake.url, **FAST)
    _check_same(df, bars[:1000])
    assert "start" not in fake.requests[0]
    assert len(fake.requests) == 3  # one full page, then an empty page asked twice: no more history


def test_start_inside_range_returns_only_requested_bars() -> None:
    bars = make_bars(500)
    start, end = pd.Timestamp(int(bars[100, 0]), unit="ms"), pd.Timestamp(int(bars[300, 0]), unit="ms")
    with FakeBybit({"BTCUSDT": bars}) as fake:
        df = fetch_klines("BTCUSDT", "60", start=start, end=end, base_url=fake.url, **FAST)
    _check_same(df, bars[100:301])


def test_bar_repeated_across_page_boundary_is_not_duplicated() -> None:
    bars = make_bars(2300)
    with FakeBybit({"BTCUSDT": bars}, repeat_boundary=True) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    _check_same(df, bars[:-1])
    assert fake.rows_served > len(bars)  # the fake really did repeat bars


def test_missing_bars_are_not_invented() -> None:
    bars = make_bars(2100, missing=(5, 999, 1000, 1001, 1500))
    with FakeBybit({"BTCUSDT": bars}) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    _check_same(df, bars[:-1])
    assert len(df) == 2100 - 5 - 1


def test_all_candles_closed_when_clock_is_past_the_last_bar() -> None:
    bars = make_bars(50)
    with FakeBybit({"BTCUSDT": bars}, now_ms=int(bars[-1, 0]) + HOUR_MS) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, **FAST)
    _check_same(df, bars)


@pytest.mark.parametrize("faults", [["10006"], ["10016", "10006"], ["429"], ["500", "500"], ["slow"]])
def test_transient_faults_are_retried(faults: list[str]) -> None:
    bars = make_bars(1500)
    with FakeBybit({"BTCUSDT": bars}, faults=faults, slow_s=0.6) as fake:
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url,
                          max_retries=3, backoff_factor=0.001, timeout=0.3)
    _check_same(df, bars[:-1])
    assert len(fake.requests) == 2 + len(faults)


def test_rate_limit_reset_header_is_honoured() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["10006"]) as fake:
        import time

        t0 = time.perf_counter()
        fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url,
                     max_retries=2, backoff_factor=0.0)
        waited = time.perf_counter() - t0
    assert waited >= 0.015  # the fake's reset timestamp is 30 ms ahead; backoff alone is 0


def test_persistent_server_error_gives_up_with_message() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["500"] * 10) as fake:
        with pytest.raises(BybitError, match=r"HTTP 500 after 3 retries"):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)
    assert len(fake.requests) == 4


def test_persistent_rate_limit_gives_up_with_message() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["10006"] * 10) as fake:
        with pytest.raises(BybitAPIError, match="rate limit") as err:
            fetch_klines("BTCUSDT", "60", base_url=fake.url, max_retries=2, backoff_factor=0.0,
                         max_wait=0.001)
    assert err.value.ret_code == 10006
    assert len(fake.requests) == 3


def test_timeouts_exhausted_give_clear_error() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["slow"] * 5, slow_s=0.5) as fake:
        with pytest.raises(BybitError, match="failed after retries"):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, max_retries=1, backoff_factor=0.0,
                         timeout=0.1)
    assert len(fake.requests) == 2


def test_403_is_raised_at_once() -> None:
    bars = make_bars(10)
    with FakeBybit({"BTCUSDT": bars}, faults=["403", "403", "403"]) as fake:
        with pytest.raises(BybitBannedError, match="403.*wait several minutes"):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)
    assert len(fake.requests) == 1


def test_unknown_symbol_is_a_clear_error() -> None:
    with FakeBybit({"BTCUSDT": make_bars(10)}) as fake:
        with pytest.raises(BybitAPIError, match="10001.*Symbol Invalid.*category") as err:
            fetch_klines("NOSUCHCOIN", "60", base_url=fake.url, **FAST)
    assert err.value.ret_code == 10001


@pytest.mark.parametrize(("fault", "pattern"), [
    ("malformed_json", r"malformed JSON"),
    ("bad_row", r"row 0 has a non-numeric field"),
])
def test_malformed_answers_name_the_request(fault: str, pattern: str) -> None:
    with FakeBybit({"BTCUSDT": make_bars(10)}, faults=[fault]) as fake:
        with pytest.raises(BybitError, match=pattern) as err:
            fetch_klines("BTCUSDT", "60", base_url=fake.url, **FAST)
    assert "/v5/market/kline?category=linear&symbol=BTCUSDT" in str(err.value)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"symbol": "btcusdt"}, "upper case.*'BTCUSDT'"),
    ({"symbol": "btc"}, "upper case: use 'BTCUSDT' instead of 'btc'"),  # a symbol Bybit lists, not 'BTC'
    ({"symbol": ""}, "non-empty"),
    ({"symbol": "BTC/USDT"}, "not a Bybit symbol"),
    ({"interval": "1h"}, "did you mean '60'"),
    ({"interval": "7"}, "not a Bybit kline interval"),
    ({"category": "futures"}, "not one of spot, linear, inverse"),
    ({"start": "2024-01-02", "end": "2024-01-01"}, "must be before end"),
    ({"limit": 5000}, "between 1 and 1000"),
])
def test_validation_happens_before_any_request(kwargs: dict, pattern: str) -> None:
    args = {"symbol": "BTCUSDT", "interval": "60"} | kwargs
    with FakeBybit({"BTCUSDT": make_bars(10)}) as fake:
        with pytest.raises(ValueError, match=pattern):
            fetch_klines(args.pop("symbol"), args.pop("interval"), base_url=fake.url, **args)
    assert fake.requests == []


def test_to_ms_reads_common_time_types() -> None:
    ms = 1_600_000_000_000
    assert to_ms(ms) == ms
    assert to_ms(pd.Timestamp(ms, unit="ms", tz="UTC")) == ms
    assert to_ms("2020-09-13 12:26:40") == ms  # naive = UTC
    assert to_ms(pd.Timestamp(ms, unit="ms", tz="UTC").tz_convert("Asia/Tokyo")) == ms
    with pytest.raises(ValueError, match="could not read"):
        to_ms("yesterday-ish")
    with pytest.raises(TypeError):
        to_ms(1.5)
