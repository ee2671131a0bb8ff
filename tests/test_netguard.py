"""The offline guard blocks the internet but not loopback (used by tests, nbval and the book build)."""

from __future__ import annotations

import socket
import threading

import pytest

from flashtrade_lib import netguard


def test_guard_is_on_during_tests() -> None:
    assert netguard.is_installed()


def test_non_loopback_connection_is_refused_with_a_clear_message() -> None:
    with pytest.raises(netguard.NetworkBlockedError, match="offline by default"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_dns_lookup_of_a_public_host_is_refused() -> None:
    with pytest.raises(netguard.NetworkBlockedError):
        socket.getaddrinfo("api.bybit.com", 443)


def test_loopback_still_works() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"ok")
    thread.join(5)
    accepted[0].close()
    server.close()
    assert accepted, "a loopback connection must be allowed"
