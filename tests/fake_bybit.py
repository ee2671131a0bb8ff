"""A local fake of Bybit's ``GET /v5/market/kline`` for the client tests.

It serves synthetic bars with Bybit's semantics — newest first, at most 1000 rows a
page (``limit`` above that is a 10001 parameter error, as on Bybit), inclusive
``start``/``end`` on the open time, the newest candle still open at the server's
``time`` — on 127.0.0.1 at a random port (stdlib ``http.server`` in a thread), so the
tests never touch the internet. Faults are queued and consumed one per request:

``"10006"``   in-body rate limit, with ``X-Bapi-Limit-Reset-Timestamp`` 30 ms ahead
``"10016"``   in-body server error
``"429"``, ``"500"``, ``"403"``   HTTP status codes
``"slow"``    sleep ``slow_s`` before answering (beyond the client's timeout)
``"malformed_json"``  a truncated JSON body
``"bad_row"``  a row with a non-numeric price
``"10001"``   parameter error
``"empty"``   a well-formed page with no rows (as if the history ended there)
``"retry_after"``  HTTP 429 with ``Retry-After: 3600`` (an hour: the client must cap it)
``"429_reset"``  HTTP 429 with ``X-Bapi-Limit-Reset-Timestamp`` ``reset_ms`` ahead (no Retry-After)
``"trickle"``  a correct answer whose body arrives one byte every ``trickle_s`` seconds
``"trickle_headers"``  the status line and headers arrive one byte every ``trickle_s`` seconds
``""``        no fault (serve this request normally; lets a fault hit a later request)

Data faults: ``repeat_boundary=True`` adds, to every page, the bar just newer than
``end`` (i.e. the oldest bar of the previous page again; ``repeat_boundary=n``: the
``n`` bars just newer, an overlap of ``n``); ``missing`` removes bars;
``page_cap=n`` serves at most ``n`` rows a page whatever ``limit`` asks (repeated bar
included: a short page that is not the end of history); ``ignore_end=True`` answers
every request with the newest bars, as if ``end`` had not been sent.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

HOUR_MS = 3_600_000


def make_bars(
    n: int, *, interval_ms: int = HOUR_MS, first_open_ms: int = 1_600_000_000_000 // HOUR_MS * HOUR_MS,
    seed: int = 0, missing: tuple[int, ...] = (),
) -> np.ndarray:
    """(n - len(missing), 7) float64 rows: open time, OHLC, volume, turnover; bars at ``missing`` removed."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    volume = rng.uniform(1, 10, n).round(3)
    times = first_open_ms + interval_ms * np.arange(n)
    bars = np.column_stack([times, open_.round(2), high.round(2), low.round(2), close.round(2),
                            volume, (volume * close).round(2)])
    keep = np.ones(n, dtype=bool)
    keep[list(missing)] = False
    return bars[keep]


class FakeBybit:
    """``with FakeBybit({"BTCUSDT": bars}) as fake: fetch_klines(..., base_url=fake.url)``."""

    def __init__(
        self,
        bars: dict[str, np.ndarray],
        *,
        interval_ms: int = HOUR_MS,
        now_ms: int | None = None,
        faults: list[str] | None = None,
        repeat_boundary: bool | int = False,
        page_cap: int | None = None,
        ignore_end: bool = False,
        reset_ms: int = 30,
        slow_s: float = 0.5,
        trickle_s: float = 0.02,
    ) -> None:
        self.bars = {s: np.asarray(b, dtype=np.float64) for s, b in bars.items()}
        self.interval_ms = interval_ms
        if now_ms is None:  # the newest bar of every symbol is still open
            now_ms = int(max(b[-1, 0] for b in self.bars.values())) + interval_ms // 2
        self.now_ms = now_ms
        self.faults = list(faults or [])
        self.repeat_boundary = repeat_boundary
        self.page_cap = page_cap
        self.ignore_end = ignore_end
        self.reset_ms = reset_ms
        self.slow_s = slow_s
        self.trickle_s = trickle_s
        self.requests: list[dict[str, str]] = []
        self.rows_served = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- server life cycle -------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBybit:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- Bybit semantics ----------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def _trickle(self, h: BaseHTTPRequestHandler, body: bytes, *, headers_too: bool) -> None:
        """Send a 200 answer one byte at a time: each byte beats any per-read timeout."""
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        try:
            if not headers_too:
                h.wfile.write(head)
                h.wfile.flush()
            for i in range(len(head) if headers_too else 0):
                h.wfile.write(head[i : i + 1])
                h.wfile.flush()
                time.sleep(self.trickle_s)
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                time.sleep(self.trickle_s)
        except (BrokenPipeError, ConnectionResetError, OSError):  # the client gave up: good
            pass

    def _envelope(self, code: int, msg: str, rows: list[list[str]] | None = None,
                  symbol: str = "", category: str = "") -> bytes:
        result: dict[str, Any] = {"symbol": symbol, "category": category, "list": rows or []}
        return json.dumps({"retCode": code, "retMsg": msg, "result": result if code == 0 else {},
                           "retExtInfo": {}, "time": self.now_ms}).encode()

    def _answer_fault(self, h: BaseHTTPRequestHandler, fault: str | None, *, malformed: bytes) -> bool:
        """Answer with an injected transport/envelope fault; False when the request is served normally.

        Shared by every fake endpoint (klines here, order books in fake_bybit_orderbook.py).
        ``slow`` only delays the answer, so it returns False.
        """
        if fault == "slow":
            time.sleep(self.slow_s)
            return False
        if fault in ("429", "500", "403"):
            self._send(h, int(fault), b"fault injected")
            return True
        if fault == "retry_after":
            self._send(h, 429, b"slow down", {"Retry-After": "3600"})
            return True
        if fault == "429_reset":
            self._send(h, 429, b"slow down",
                       {"X-Bapi-Limit-Reset-Timestamp": str(int(time.time() * 1000) + self.reset_ms)})
            return True
        if fault == "malformed_json":
            self._send(h, 200, malformed)
            return True
        if fault in ("10006", "10016", "10001"):
            headers = {}
            if fault == "10006":
                headers["X-Bapi-Limit-Status"] = "0"
                headers["X-Bapi-Limit-Reset-Timestamp"] = str(int(time.time() * 1000) + 30)
            msg = {"10006": "Too many visits!", "10016": "Server error", "10001": "params error"}[fault]
            self._send(h, 200, self._envelope(int(fault), msg), headers)
            return True
        return False

    def _take_request(self, h: BaseHTTPRequestHandler) -> tuple[str, dict[str, str], str | None]:
        """Record the request and take the next planned fault: (path, query, fault or None)."""
        parsed = urlparse(h.path)
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        with self._lock:
            self.requests.append(q)
            fault = self.faults.pop(0) if self.faults else None
        return parsed.path, q, fault

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path, q, fault = self._take_request(h)
        if path != "/v5/market/kline":
            return self._send(h, 404, b'{"error": "not found"}')
        if self._answer_fault(h, fault, malformed=b'{"retCode": 0, "result": {"list": [["16'):
            return None

        symbol, category = q.get("symbol", ""), q.get("category", "")
        limit = int(q.get("limit", 200))
        if not 1 <= limit <= 1000:
            return self._send(h, 200, self._envelope(10001, "params error: limit must be in [1, 1000]"))
        if symbol not in self.bars:
            return self._send(h, 200, self._envelope(10001, "params error: Symbol Invalid"))
        bars = self.bars[symbol]
        bars = bars[bars[:, 0] <= self.now_ms]
        t = bars[:, 0]
        lo = int(q["start"]) if "start" in q else -1
        hi = int(q["end"]) if "end" in q and not self.ignore_end else self.now_ms
        sel = bars[(t >= lo) & (t <= hi)][::-1][:limit]  # newest first, capped
        if self.repeat_boundary:
            newer = bars[t > hi]
            if len(newer):
                sel = np.vstack([newer[: int(self.repeat_boundary)][::-1], sel])
        if self.page_cap is not None:
            sel = sel[: self.page_cap]
        rows = [[str(int(r[0]))] + [repr(float(x)) for x in r[1:]] for r in sel]
        if fault == "bad_row" and rows:
            rows[0][4] = "not-a-price"
        if fault == "empty":
            rows = []
        with self._lock:
            self.rows_served += len(rows)
        body = self._envelope(0, "OK", rows, symbol, category)
        if fault in ("trickle", "trickle_headers"):
            return self._trickle(h, body, headers_too=fault == "trickle_headers")
        self._send(h, 200, body, {"X-Bapi-Limit-Status": "599"})
