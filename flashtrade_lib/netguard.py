"""Refuse network connections that leave this machine.

The book is offline by default: tests, notebook checks and book builds install
this guard so that any attempt to reach a non-loopback address fails loudly
instead of silently depending on the internet. Live-data code paths are only
exercised against local servers on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_getaddrinfo = socket.getaddrinfo


class NetworkBlockedError(ConnectionRefusedError):
    """Raised when code tries to reach a non-loopback address while the guard is on."""


def _is_local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        raise NetworkBlockedError(
            f"network access to {address!r} blocked: the book runs offline by default. "
            "Live data is fetched only when you ask for it (e.g. LIVE = True in a notebook), "
            "outside the test suite and the book build."
        )


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        raise NetworkBlockedError(
            f"DNS lookup of {host!r} blocked: the book runs offline by default."
        )
    return _original_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    """Block every socket connection to a non-loopback address in this process."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


def is_installed() -> bool:
    """Whether :func:`install` has been called in this process."""
    return socket.socket.connect is _guarded_connect
