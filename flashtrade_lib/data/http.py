"""One HTTP GET with an overall deadline, and the line between faults worth retrying and not.

Why not just ``requests.get(url, timeout=10)``: that timeout bounds each socket
operation, not the request, so a server that trickles one byte a second keeps a
client waiting forever; and urllib3's ``Retry`` sleeps for whatever ``Retry-After``
a server sends and retries a host name that does not resolve as patiently as a
server hiccup. Here:

* :func:`get_within` runs the request (headers *and* body) under one deadline; past
  it the connection is closed and :class:`DeadlineExceeded` is raised;
* :func:`classify` says whether an exception is *transient* (timeouts, resets, a
  refused connection: retry) or *permanent* (the name does not resolve, the network
  is unreachable or blocked, a malformed URL: fail at once, with what to do);
* :func:`retry_after_seconds` reads a ``Retry-After`` header (seconds or an HTTP
  date); callers cap it with their ``max_wait``.

Retrying itself is the caller's (:func:`flashtrade_lib.data.bybit.get_result`), so
one loop counts every retry against one budget.
"""

from __future__ import annotations

import email.utils
import errno
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

__all__ = ["DeadlineExceeded", "Reply", "classify", "get_within", "make_session", "retry_after_seconds"]

_CHUNK = 65536
# errno values that mean "this machine cannot reach the network": retrying won't help
_NO_NETWORK = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


class DeadlineExceeded(requests.exceptions.Timeout):
    """The whole request (connect, headers and body) took longer than its deadline."""


@dataclass(frozen=True)
class Reply:
    """What a GET returned: status, headers and the complete body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def make_session() -> requests.Session:
    """A pooled ``requests`` session that never retries by itself (the caller's loop does)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "flashtrade-book (+https://github.com/) requests"
    return session


def get_within(session: requests.Session, url: str, params: Mapping[str, Any], *, deadline: float) -> Reply:
    """GET ``url`` and read the whole body within ``deadline`` seconds, or raise.

    The request runs in a helper thread so the caller's wait is bounded even while
    headers trickle in. At the deadline the connection's socket is shut down (once
    headers have arrived; before that the helper ends at its own socket timeout,
    ``deadline`` too, or when the server stops) and never goes back to the pool.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            resp = session.get(url, params=params, timeout=deadline, stream=True)
            box["resp"] = resp
            chunks = []
            while not box.get("abandoned"):
                chunk = resp.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                chunks.append(chunk)
            if box.get("abandoned"):
                resp.raw.close()  # closes the connection: it is not handed back to the pool
                return
            box["reply"] = Reply(resp.status_code, dict(resp.headers), b"".join(chunks))
            resp.close()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="flashtrade-http", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        box["abandoned"] = True
        _shut_down(box.get("resp"))
        raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
    if "error" in box:
        raise box["error"]
    return box["reply"]


def _shut_down(resp: requests.Response | None) -> None:
    """End a read blocked in another thread: shut the socket down (close alone would not)."""
    sock = getattr(getattr(getattr(resp, "raw", None), "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (requests -> urllib3 -> socket errors)."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend([getattr(e, "reason", None), e.__cause__, e.__context__, *e.args])
    return seen


def classify(exc: BaseException) -> tuple[bool, str]:
    """``(transient, what happened)`` for an exception raised by :func:`get_within`.

    Permanent: the host name does not resolve, the network is unreachable, the
    book's offline guard blocked the connection, TLS failed (a certificate or clock
    problem), or the request itself is invalid.
    Everything else a server or a flaky link can cause is transient.
    """
    causes = _causes(exc)
    for e in causes:
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return False, "the host name does not resolve (no network, or DNS is down)"
        if type(e).__name__ == "NetworkBlockedError":
            return False, f"the connection was blocked: {e}"
        if isinstance(e, OSError) and e.errno in _NO_NETWORK:
            return False, f"the network is unreachable ({e.strerror})"
    if isinstance(exc, requests.exceptions.SSLError):
        return False, f"the TLS handshake failed ({exc}); check the system clock and CA certificates"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return False, f"the request is invalid ({exc})"
    if isinstance(exc, requests.exceptions.Timeout):
        return True, f"timed out ({exc})"
    if isinstance(exc, (requests.exceptions.RequestException, OSError)):
        return True, f"{type(exc).__name__}: {exc}"
    return False, f"{type(exc).__name__}: {exc}"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (a number or an HTTP date), or ``None``."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
