"""The order-book client and recorder against a local fake exchange: no internet."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from fake_bybit_orderbook import FakeBybitOrderbook, make_book

from flashtrade_lib.data.bybit import BybitAPIError, BybitBannedError, BybitError
from flashtrade_lib.data.lob_sim import order_imbalance
from flashtrade_lib.data.orderbook import (
    fetch_orderbook,
    load_orderbook_recording,
    record_orderbook,
)

FAST = {"max_retries": 3, "backoff_factor": 0.001, "timeout": 2.0}


def test_snapshot_layout_matches_the_book() -> None:
    bids, asks = make_book(50)
    with FakeBybitOrderbook({"BTCUSDT": (bids, asks)}) as fake:
        snap = fetch_orderbook("BTCUSDT", 25, category="linear", base_url=fake.url, **FAST)
    assert fake.requests[0] == {"category": "linear", "symbol": "BTCUSDT", "limit": "25"}
    assert snap.levels.shape == (25, 4)
    np.testing.assert_allclose(snap.levels[:, 0:2], bids[:25])
    np.testing.assert_allclose(snap.levels[:, 2:4], asks[:25])
    assert snap.mid == pytest.approx(100.0)
    assert snap.update_id == 1 and snap.seq == 1001 and snap.ts_ms == snap.cts_ms + 3
    assert -1 <= float(order_imbalance(snap.levels, 5)) <= 1  # same layout as the simulator


def test_thin_book_is_padded_with_nan() -> None:
    bids, asks = make_book(3)
    with FakeBybitOrderbook({"ETHUSDT": (bids, asks)}) as fake:
        snap = fetch_orderbook("ETHUSDT", 5, base_url=fake.url, **FAST)
    assert np.isnan(snap.levels[3:]).all() and not np.isnan(snap.levels[:3]).any()


@pytest.mark.parametrize("faults", [["10006"], ["10016", "10006"], ["429"], ["500", "500"], ["slow"]])
def test_transient_faults_are_retried(faults: list[str]) -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}, faults=faults, slow_s=0.6) as fake:
        snap = fetch_orderbook("BTCUSDT", 5, base_url=fake.url, **{**FAST, "timeout": 0.3})
    assert len(fake.requests) == len(faults) + 1
    assert snap.update_id == len(faults) + 1


def test_403_is_not_retried() -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}, faults=["403"]) as fake:
        with pytest.raises(BybitBannedError, match="403"):
            fetch_orderbook("BTCUSDT", 5, base_url=fake.url, **FAST)
    assert len(fake.requests) == 1


def test_persistent_rate_limit_gives_up_with_a_clear_error() -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}, faults=["10006"] * 3) as fake:
        with pytest.raises(BybitAPIError, match="rate limit.*persisted after 2 retries"):
            fetch_orderbook("BTCUSDT", 5, base_url=fake.url, **{**FAST, "max_retries": 2})
    assert len(fake.requests) == 3


def test_persistent_timeout_names_the_request() -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}, faults=["slow"] * 3, slow_s=0.5) as fake:
        with pytest.raises(BybitError, match="orderbook.*failed after retries"):
            fetch_orderbook("BTCUSDT", 5, base_url=fake.url, max_retries=1, backoff_factor=0.001,
                            timeout=0.2)


@pytest.mark.parametrize(("fault", "match"), [
    ("malformed_json", "malformed JSON"),
    ("10001", "retCode 10001"),
    ("crossed", "crossed book"),
])
def test_bad_answers_raise(fault: str, match: str) -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}, faults=[fault]) as fake:
        with pytest.raises(BybitError, match=match):
            fetch_orderbook("BTCUSDT", 5, base_url=fake.url, **FAST)
    assert len(fake.requests) == 1


def test_unknown_symbol_is_an_api_error() -> None:
    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}) as fake:
        with pytest.raises(BybitAPIError, match="10001"):
            fetch_orderbook("NOPEUSDT", 5, base_url=fake.url, **FAST)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"symbol": "btcusdt"}, "upper case"),
    ({"category": "futures"}, "category"),
    ({"depth": 0}, "between 1 and 500"),
    ({"category": "spot", "depth": 201}, "between 1 and 200"),
    ({"base_url": "api.bybit.com"}, "http"),
])
def test_bad_arguments_fail_before_any_request(kwargs: dict, match: str) -> None:
    args = {"symbol": "BTCUSDT", "depth": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        fetch_orderbook(**args)


class _FakeClock:
    """A clock the recorder's ``sleep`` advances; each fetch also costs ``cost`` seconds."""

    def __init__(self, cost: float = 0.0) -> None:
        self.t = 1_700_000_000.0
        self.cost = cost
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_recorder_polls_on_a_fixed_schedule_and_writes_parquet(tmp_path) -> None:
    clock = _FakeClock()
    bids, asks = make_book(10)
    with FakeBybitOrderbook({"BTCUSDT": (bids, asks)}) as fake:
        path = record_orderbook("BTCUSDT", 10, interval_s=2.0, count=7, cache_dir=tmp_path,
                                flush_every=3, clock=clock, sleep=clock.sleep, base_url=fake.url, **FAST)
    assert path.parent == tmp_path / "bybit-orderbook" / "linear" and path.suffix == ".parquet"
    assert not list(path.parent.glob(".*.tmp"))  # atomic writes leave no temp files
    snaps, df = load_orderbook_recording(path)
    assert snaps.shape == (7, 10, 4) and len(fake.requests) == 7
    np.testing.assert_allclose(snaps[3, :, :2], bids)
    assert list(df["update_id"]) == list(range(1, 8))
    polled = df["polled_ms"].to_numpy()
    assert np.all(np.diff(polled) == 2000)  # the schedule: start + k * interval
    meta = pq.read_schema(path).metadata[b"flashtrade"]
    assert b'"skipped": 0' in meta and b'"depth": 10' in meta


def test_recorder_skips_missed_slots_and_stops_at_duration(tmp_path, monkeypatch) -> None:
    clock = _FakeClock()
    orig = fetch_orderbook

    def slow_fetch(*args, **kwargs):  # every poll takes 2.5 intervals
        clock.t += 2.5
        return orig(*args, **kwargs)

    import flashtrade_lib.data.orderbook as ob

    with FakeBybitOrderbook({"BTCUSDT": make_book(5)}) as fake:
        monkeypatch.setattr(ob, "fetch_orderbook", slow_fetch)
        path = record_orderbook("BTCUSDT", 5, interval_s=1.0, duration_s=10, cache_dir=tmp_path,
                                clock=clock, sleep=clock.sleep, base_url=fake.url, **FAST)
    _, df = load_orderbook_recording(path)
    polled_s = (df["polled_ms"].to_numpy() - 1_700_000_000_000) / 1000
    # each poll ends 2.5 s after it started: polls at 0, 2.5, 5, 7.5, 10 s; slots 1, 3, 4, 6, 8, 9 missed
    np.testing.assert_allclose(polled_s, [0, 2.5, 5, 7.5, 10])
    assert np.all(polled_s <= 10 + 1e-9)
    assert np.all(np.diff(polled_s) >= 2.5)
    skipped = int(pq.read_schema(path).metadata[b"flashtrade"].split(b'"skipped": ')[1].split(b",")[0])
    assert skipped == 6 == 11 - len(df)  # every slot 0..10 is either polled or counted as skipped


def test_recorder_needs_a_bound(tmp_path) -> None:
    with pytest.raises(ValueError, match="count= .* or duration_s="):
        record_orderbook("BTCUSDT", 5, cache_dir=tmp_path)
