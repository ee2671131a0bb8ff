"""A seeded synthetic limit-order book whose order imbalance really predicts the next mid move.

Why a simulator: live order-book data must be recorded by the reader (see
:mod:`~flashtrade_lib.data.orderbook`), and in real data nobody knows how much of the
next price move is predictable. Here the mechanism is known, so a model's skill can
be compared with what is there to find.

The model is the queue model of Cont, Stoikov and Talreja (2010), with a one-tick
spread as in Cont and de Larrard (2013) — a "large-tick" market:

* the book holds ``n_levels`` price levels per side, one tick apart; level 1 is the
  best bid / best ask and the spread is always one tick, so ``mid = best bid + tick/2``;
* **limit orders** of one lot arrive at level ``l`` of each side as a Poisson process of
  rate ``limit_rate[l]``;
* **cancellations**: each resting lot is cancelled at rate ``cancel_rate`` (so a queue
  of ``q`` lots shrinks at rate ``cancel_rate * q``);
* **market orders** of one lot hit the best bid and the best ask, each at rate
  ``market_rate``;
* when the best bid queue empties, the price ticks **down**: bid level 2 becomes the
  best bid, a new (fresh) ask queue appears one tick above it, the deepest ask level
  drops out of view and a fresh bid level appears at the bottom (if level 2 was empty
  too, the price moves again). Symmetrically for the ask. A fresh queue has ``max(1, Poisson(limit_rate / cancel_rate))`` lots, the
  stationary size of an untouched level.

**Why imbalance is informative.** The mid moves exactly when one of the two best
queues hits zero, and both queues are eroded by the same flows. A small queue reaches
zero sooner than a large one, so the next move is more likely *towards the thinner
side*: with ``I = (q_bid - q_ask) / (q_bid + q_ask)`` at level 1, ``P(next move up)``
increases with ``I`` (Cont and de Larrard derive it in closed form for their model;
here it is measured). The deeper levels carry information too: after a move, level 2
becomes the best queue on one side. Nothing else is predictable — order flows are
memoryless — so the sign of the next move is the whole signal.

**Expected size** (measured with the defaults, 20,000 snapshots, seeds 0–4; see
``tests/test_lob_sim.py``): the sign of the level-1 imbalance predicts the sign of the
next mid move with an accuracy of 0.67–0.68 on snapshots where the imbalance is not
zero (0.5 would be no skill); the imbalance summed over the first 2 (3) levels
gives about 0.60–0.61 (0.57–0.59) — level 1 carries most of the signal, deeper levels dilute it
as a plain sum but matter after a move. The exact values depend on the rates.

The clock is in arbitrary time units; snapshots are taken every ``dt`` units, like
a recorder polling an exchange. With the defaults about 20 events (arrivals,
cancellations, market orders) happen between two snapshots, best queues hold about 4
lots on average, and the mid changes between about one snapshot pair in five.

The event loop is sequential by nature (each event changes the rates of the next),
so it is a plain Python loop over small lists, with all random numbers drawn from
NumPy in blocks up front; 20,000 snapshots (about 400,000 events) take about a second
on one core.

:func:`lob_features` turns snapshots — simulated here or recorded by
:func:`~flashtrade_lib.data.orderbook.record_orderbook` — into causal per-(snapshot, level)
features, the tokens of :class:`~flashtrade_lib.model.cross_asset.OrderBookTrader`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LOBSimulation", "simulate_lob", "order_imbalance", "FIELDS", "LOB_FEATURES", "lob_features"]

#: Order of the last axis of ``snapshots``.
FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size")


@dataclass(frozen=True)
class LOBSimulation:
    """Output of :func:`simulate_lob`.

    ``snapshots``: float64 ``(T, n_levels, 4)`` — for each snapshot and level (1 = best):
    bid price, bid size, ask price, ask size (see :data:`FIELDS`). ``mid``: ``(T,)`` mid
    prices. ``times``: ``(T,)`` snapshot times. ``next_move``: ``(T,)`` in ``{-1, 0, +1}``,
    the sign of the first mid change *after* snapshot ``t`` (0 if the run ends first) —
    the label a model predicts. ``move_times``/``move_signs``: every mid change.
    """

    snapshots: np.ndarray
    mid: np.ndarray
    times: np.ndarray
    next_move: np.ndarray
    move_times: np.ndarray
    move_signs: np.ndarray
    tick: float
    seed: int

    @property
    def n_levels(self) -> int:
        return int(self.snapshots.shape[1])

    def imbalance(self, levels: int = 1) -> np.ndarray:
        """Order imbalance of the first ``levels`` levels, see :func:`order_imbalance`."""
        return order_imbalance(self.snapshots, levels)


def order_imbalance(snapshots: np.ndarray, levels: int = 1) -> np.ndarray:
    """``(B - A) / (B + A)`` with ``B``, ``A`` the bid and ask sizes summed over the first ``levels``.

    In ``[-1, 1]``; positive means more resting buy interest, which (in the simulator,
    and empirically, Cont et al. 2014) points to an up move. Works on any array shaped
    ``(..., n_levels, 4)`` in :data:`FIELDS` order — simulated or recorded snapshots.
    """
    snapshots = np.asarray(snapshots, dtype=np.float64)
    if snapshots.ndim < 2 or snapshots.shape[-1] != 4:
        raise ValueError(
            f"snapshots must have shape (..., n_levels, 4) in {FIELDS} order, got {snapshots.shape}"
        )
    if not 1 <= levels <= snapshots.shape[-2]:
        raise ValueError(f"levels must be between 1 and {snapshots.shape[-2]}, got {levels}")
    b = np.nansum(snapshots[..., :levels, 1], axis=-1)
    a = np.nansum(snapshots[..., :levels, 3], axis=-1)
    total = b + a
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (b - a) / np.where(total > 0, total, 1.0), 0.0)


def _rates(name: str, value: float | np.ndarray, n_levels: int) -> list[float]:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_levels,))
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite (a scalar or one value per level), got {value!r}")
    return [float(x) for x in arr]


def simulate_lob(
    n_snapshots: int = 20_000,
    *,
    n_levels: int = 5,
    seed: int = 0,
    dt: float = 1.0,
    limit_rate: float | np.ndarray = 1.0,
    cancel_rate: float = 0.2,
    market_rate: float = 0.8,
    tick: float = 0.01,
    start_price: float = 100.0,
) -> LOBSimulation:
    """Simulate the one-tick-spread queue model described in the module docstring.

    Rates are per unit of time: ``limit_rate`` lots per level and side (scalar or one
    value per level), ``cancel_rate`` per resting lot, ``market_rate`` lots per side.
    The same ``seed`` and arguments give the same book, bit for bit.
    """
    if not isinstance(n_snapshots, (int, np.integer)) or n_snapshots < 2:
        raise ValueError(f"n_snapshots must be an int >= 2, got {n_snapshots!r}")
    if not isinstance(n_levels, (int, np.integer)) or not 1 <= n_levels <= 50:
        raise ValueError(f"n_levels must be an int between 1 and 50, got {n_levels!r}")
    for name, value in (("dt", dt), ("cancel_rate", cancel_rate), ("market_rate", market_rate),
                        ("tick", tick), ("start_price", start_price)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    lam = _rates("limit_rate", limit_rate, n_levels)
    theta, mu = float(cancel_rate), float(market_rate)
    n_snapshots, n_levels = int(n_snapshots), int(n_levels)
    rng = np.random.default_rng(seed)

    fresh_mean = lam[-1] / theta  # stationary mean size of a level nobody trades at
    block = 4096

    def refill() -> tuple[list[float], list[float], list[int]]:
        return (rng.exponential(size=block).tolist(), rng.random(block).tolist(),
                np.maximum(rng.poisson(fresh_mean, size=block), 1).tolist())

    expo, unif, fresh = refill()
    i_e = i_f = 0

    bid = np.maximum(rng.poisson(np.asarray(lam) / theta), 1).tolist()
    ask = np.maximum(rng.poisson(np.asarray(lam) / theta), 1).tolist()
    best_bid = int(round(start_price / tick))  # in ticks
    lam_side = sum(lam)

    snaps = np.empty((n_snapshots, n_levels, 4), dtype=np.float64)
    best = np.empty(n_snapshots, dtype=np.int64)
    move_t: list[float] = []
    move_s: list[int] = []
    t = 0.0
    k = 0
    next_snap = dt
    while k < n_snapshots:
        total = 2 * lam_side + theta * (sum(bid) + sum(ask)) + 2 * mu
        if i_e == block:
            expo, unif, fresh = refill()
            i_e = i_f = 0
        t_new = t + expo[i_e] / total
        u = unif[i_e] * total
        i_e += 1
        while next_snap <= t_new and k < n_snapshots:
            snaps[k, :, 1] = bid
            snaps[k, :, 3] = ask
            best[k] = best_bid
            k += 1
            next_snap = dt * (k + 1)
        t = t_new
        # pick the event: market orders, then per-level arrivals, then cancellations
        if u < mu:
            side, level, delta = 0, 0, -1
        elif u < 2 * mu:
            side, level, delta = 1, 0, -1
        else:
            u -= 2 * mu
            side, level, delta = -1, 0, 0
            for s, book in ((0, bid), (1, ask)):
                for lvl in range(n_levels):
                    r = lam[lvl]
                    if u < r:
                        side, level, delta = s, lvl, 1
                        break
                    u -= r
                    r = theta * book[lvl]
                    if u < r:
                        side, level, delta = s, lvl, -1
                        break
                    u -= r
                if side >= 0:
                    break
            if side < 0:  # rounding at the very end of the rate list
                side, level, delta = 1, n_levels - 1, 1
        book = bid if side == 0 else ask
        book[level] += delta
        while (bid if side == 0 else ask)[0] == 0:  # best queue gone: the price moves one tick
            # (again, if the level behind it was empty too)
            if i_f + 2 > block:
                expo, unif, fresh = refill()
                i_e = i_f = 0
            new_deep, new_best = fresh[i_f], fresh[i_f + 1]
            i_f += 2
            if side == 0:  # bid depleted: down
                bid = bid[1:] + [new_deep]
                ask = [new_best] + ask[:-1]
                best_bid -= 1
                move_s.append(-1)
            else:
                ask = ask[1:] + [new_deep]
                bid = [new_best] + bid[:-1]
                best_bid += 1
                move_s.append(1)
            move_t.append(t)

    levels = np.arange(n_levels)
    snaps[:, :, 0] = (best[:, None] - levels) * tick
    snaps[:, :, 2] = (best[:, None] + 1 + levels) * tick
    mid = (best + 0.5) * tick
    times = dt * np.arange(1, n_snapshots + 1)
    mt = np.asarray(move_t, dtype=np.float64)
    ms = np.asarray(move_s, dtype=np.int64)
    nxt = np.searchsorted(mt, times, side="right")
    next_move = np.where(nxt < len(ms), ms[np.minimum(nxt, max(len(ms) - 1, 0))] if len(ms) else 0, 0)
    return LOBSimulation(snapshots=snaps, mid=mid, times=times, next_move=next_move.astype(np.int64),
                         move_times=mt, move_signs=ms, tick=float(tick), seed=int(seed))


#: Features of one (snapshot, level) token, in the order of :func:`lob_features`' last axis.
LOB_FEATURES = ("log_bid_size", "log_ask_size", "level_imbalance", "mid_change_ticks")


def lob_features(snapshots: np.ndarray, tick: float) -> np.ndarray:
    """Per-(snapshot, level) features ``(T, n_levels, 4)`` float32, causal (row ``t`` uses snapshots ``<= t``).

    * ``log_bid_size``, ``log_ask_size`` — ``log(1 + size)``: queue sizes span orders of
      magnitude on real books, and the log keeps them at unit scale;
    * ``level_imbalance`` — ``(bid - ask) / (bid + ask)`` at that level (0 when both are empty);
    * ``mid_change_ticks`` — the mid-price change since the previous snapshot, in ticks
      (0 for the first), the same for every level: what just happened to the price.

    Absolute prices are left out: they carry no information about the next move's sign
    and would change scale between instruments.
    """
    s = np.asarray(snapshots, dtype=np.float64)
    if s.ndim != 3 or s.shape[-1] != 4:
        raise ValueError(
            f"snapshots must have shape (T, n_levels, 4) in (bid_price, bid_size, ask_price, ask_size) "
            f"order, got {s.shape}"
        )
    if not (isinstance(tick, (int, float)) and tick > 0):
        raise ValueError(f"tick must be a positive price increment, got {tick!r}")
    bid, ask = np.nan_to_num(s[..., 1]), np.nan_to_num(s[..., 3])
    total = bid + ask
    imb = np.divide(bid - ask, total, out=np.zeros_like(total), where=total > 0)
    mid = (s[:, 0, 0] + s[:, 0, 2]) / 2
    dmid = np.concatenate([[0.0], np.diff(mid)]) / tick
    out = np.stack([np.log1p(bid), np.log1p(ask), imb, np.broadcast_to(dmid[:, None], bid.shape)], axis=-1)
    return out.astype(np.float32)
