"""Fault injection, class 2 — bounded time: no server, header or network fault makes a fetch wait unboundedly.

Every test runs against a loopback server that misbehaves on purpose (tests/fake_bybit.py)
or a patched resolver, and checks the *clock* as well as the outcome.
"""

from __future__ import annotations

import errno
import socket
import time

import pytest
import urllib3.util.connection
from fake_bybit import FakeBybit, make_bars

from flashtrade_lib.data.bybit import BybitError, BybitNetworkError, fetch_klines

pytestmark = pytest.mark.timeout(60)  # on a client without these bounds the tests fail, not hang


@pytest.mark.parametrize("fault", ["trickle", "trickle_headers"])
def test_a_server_that_trickles_bytes_cannot_stall_a_request(fault: str) -> None:
    bars = make_bars(10)
    # ~600 bytes one every 20 ms: ~12 s in all, while no single read waits more than 20 ms
    with FakeBybit({"BTCUSDT": bars}, faults=[fault, fault], trickle_s=0.02) as fake:
        t0 = time.monotonic()
        with pytest.raises(BybitError, match="failed after retries.*no complete answer within 0.4 s"):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, timeout=0.4, max_retries=1, backoff_factor=0.0)
        elapsed = time.monotonic() - t0
    assert elapsed < 2.5, f"two 0.4 s deadlines took {elapsed:.1f} s"
    assert len(fake.requests) == 2


def test_a_trickled_answer_is_retried_and_the_fetch_completes() -> None:
    bars = make_bars(30)
    with FakeBybit({"BTCUSDT": bars}, faults=["trickle"], trickle_s=0.02) as fake:
        t0 = time.monotonic()
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, timeout=0.4,
                          max_retries=2, backoff_factor=0.0)
        elapsed = time.monotonic() - t0
    assert len(df) == 29 and elapsed < 2.0


def test_retry_after_is_capped_by_max_wait() -> None:
    bars = make_bars(30)
    with FakeBybit({"BTCUSDT": bars}, faults=["retry_after", "retry_after"]) as fake:
        t0 = time.monotonic()
        df = fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, timeout=2.0,
                          max_retries=3, backoff_factor=0.0, max_wait=0.1)
        elapsed = time.monotonic() - t0
    assert len(df) == 29
    assert 0.2 <= elapsed < 2.0, f"the server asked for 3600 s twice; waited {elapsed:.2f} s"
    assert len(fake.requests) == 3


def test_a_whole_fetch_has_one_retry_budget() -> None:
    bars = make_bars(3500)
    # every page fails twice before it succeeds: 4 pages x 2 retries > a budget of 3
    faults = ["500", "500", ""] * 4
    with FakeBybit({"BTCUSDT": bars}, faults=faults) as fake:
        with pytest.raises(BybitError, match="used up its retry budget"):
            fetch_klines("BTCUSDT", "60", start=int(bars[0, 0]), base_url=fake.url, timeout=2.0,
                         max_retries=3, backoff_factor=0.0, retry_budget=3, progress=False)
    assert len(fake.requests) == 5  # page 1 (two retries, then served) and two tries of page 2


def test_a_host_that_does_not_resolve_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def no_dns(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    t0 = time.monotonic()
    with pytest.raises(BybitNetworkError, match="does not resolve.*Retrying will not help") as err:
        fetch_klines("BTCUSDT", "60", base_url="http://api.bybit.invalid", max_retries=5, backoff_factor=0.5)
    assert time.monotonic() - t0 < 1.0 and len(calls) == 1
    assert "\n" not in str(err.value) and "max_retries" not in str(err.value)


def test_a_network_that_is_off_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unreachable(address, *args, **kwargs):
        calls.append(address)
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", unreachable)
    t0 = time.monotonic()
    with pytest.raises(BybitNetworkError, match="network is unreachable"):
        fetch_klines("BTCUSDT", "60", base_url="http://127.0.0.1:9", max_retries=5, backoff_factor=0.5)
    assert time.monotonic() - t0 < 1.0 and len(calls) == 1


def test_the_offline_guard_is_not_retried() -> None:
    # the test suite's netguard blocks every non-loopback host: that is permanent too
    t0 = time.monotonic()
    with pytest.raises(BybitNetworkError, match="blocked"):
        fetch_klines("BTCUSDT", "60", max_retries=5, backoff_factor=0.5)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"timeout": float("inf")}, "timeout must be a finite"),
    ({"timeout": 0}, "timeout must be a finite"),
    ({"max_wait": float("nan")}, "max_wait must be a finite"),
    ({"max_retries": -1}, "max_retries must be an int"),
    ({"retry_budget": -1}, "retry_budget must be >= 0"),
])
def test_unbounded_settings_are_refused_before_any_request(kwargs: dict, pattern: str) -> None:
    with FakeBybit({"BTCUSDT": make_bars(10)}) as fake:
        with pytest.raises(ValueError, match=pattern):
            fetch_klines("BTCUSDT", "60", base_url=fake.url, **kwargs)
    assert fake.requests == []


def test_what_retrying_cannot_fix_is_told_apart_from_what_it_can() -> None:
    import requests

    from flashtrade_lib.data.http import DeadlineExceeded, classify

    assert classify(requests.exceptions.SSLError("certificate verify failed"))[0] is False
    assert classify(requests.exceptions.InvalidURL("http://"))[0] is False
    assert classify(DeadlineExceeded("slow"))[0] is True
    assert classify(requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")))[0] is True
