"""A local fake of Bybit's ``GET /v5/market/orderbook``, built on :class:`fake_bybit.FakeBybit`.

It reuses the kline fake's server life cycle (127.0.0.1, random port, a thread) and
response helpers, and answers the order-book path with a fixed book per symbol;
every answer bumps the update id ``u``. Faults are queued and consumed one per request,
with the kline fake's names: ``"10006"``, ``"10016"``, ``"10001"``, ``"429"``, ``"500"``,
``"403"``, ``"slow"``, ``"malformed_json"``, plus ``"crossed"`` (best bid above best ask).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from fake_bybit import FakeBybit


def make_book(depth: int = 50, *, mid: float = 100.0, tick: float = 0.1, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """(bids, asks), each (depth, 2) [price, size]; bids best (highest) first, asks lowest first."""
    rng = np.random.default_rng(seed)
    lv = np.arange(depth)
    bids = np.column_stack([(mid - tick / 2 - lv * tick).round(4), rng.integers(1, 100, depth) / 10])
    asks = np.column_stack([(mid + tick / 2 + lv * tick).round(4), rng.integers(1, 100, depth) / 10])
    return bids, asks


class FakeBybitOrderbook(FakeBybit):
    """``with FakeBybitOrderbook({"BTCUSDT": make_book()}) as fake: fetch_orderbook(..., base_url=fake.url)``."""

    def __init__(self, books: dict[str, tuple[np.ndarray, np.ndarray]], *,
                 faults: list[str] | None = None, slow_s: float = 0.5) -> None:
        super().__init__({}, now_ms=1_700_000_000_000, faults=faults, slow_s=slow_s)
        self.books = books
        self.update_id = 0

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path, q, fault = self._take_request(h)
        with self._lock:
            self.update_id += 1
            u = self.update_id
        if path != "/v5/market/orderbook":
            return self._send(h, 404, b'{"error": "not found"}')
        if self._answer_fault(h, fault, malformed=b'{"retCode": 0, "result": {"s": "BTC'):
            return None
        symbol = q.get("symbol", "")
        if symbol not in self.books:
            return self._send(h, 200, self._envelope(10001, "params error: symbol invalid"))
        limit = int(q.get("limit", 1))
        bids, asks = self.books[symbol]
        if fault == "crossed":
            bids = bids.copy()
            bids[0, 0] = asks[0, 0] + 1
        ts = self.now_ms + 100 * u
        result: dict[str, Any] = {
            "s": symbol,
            "b": [[repr(float(p)), repr(float(s))] for p, s in bids[:limit]],
            "a": [[repr(float(p)), repr(float(s))] for p, s in asks[:limit]],
            "ts": ts, "u": u, "seq": 1000 + u, "cts": ts - 3,
        }
        body = json.dumps({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                           "time": ts + 1}).encode()
        self._send(h, 200, body, {"X-Bapi-Limit-Status": "599"})
