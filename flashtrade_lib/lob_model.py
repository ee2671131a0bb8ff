"""An order-book model over (level, snapshot) tokens, and the small helpers chapter 10 shares.

A limit-order book is a second axis next to time: at every snapshot it holds
``n_levels`` price levels per side. The model here treats each (snapshot, level)
pair as a token — exactly the (time, asset) layout of
:class:`~flashtrade_lib.cross_asset.CrossAssetTrader`, with levels in place of
assets — so it *is* that model (same blocks, bar-rotary time positions, level
embeddings, time-major order with one summary token per snapshot, plain
``causal=True`` attention that keeps the flash backends usable). The only change is
the read-out: one prediction per window, the **sign of the next mid-price move**,
read from the summary token of the last snapshot, which has seen every level of
every snapshot in the window. A window of ``S`` snapshots of ``L`` levels is
``S · (L + 1)`` tokens (see :func:`~flashtrade_lib.cross_asset.n_tokens`).

:func:`lob_features` turns raw snapshots (simulated by
:func:`~flashtrade_lib.data.lob_sim.simulate_lob` or recorded by
:func:`~flashtrade_lib.data.orderbook.record_orderbook`) into per-token features;
:class:`TokenWindows` cuts ``(lookback, tokens, features)`` windows lazily (views,
never copies) from any ``(time, tokens, features)`` array — order-book levels or the
assets of a panel. Every model chapter 10 compares is trained by the book's one loop,
:func:`flashtrade_lib.train.train` (they all have its ``target_scale`` interface), so
no model gets a better optimiser than another. :func:`training_step` builds the
zero-argument step that :mod:`flashtrade_lib.bench` times and measures.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from flashtrade_lib.cross_asset import CrossAssetTrader
from flashtrade_lib.model import ModelConfig
from flashtrade_lib.train import OBJECTIVES, compute_loss

__all__ = [
    "LOB_FEATURES",
    "lob_features",
    "TokenWindows",
    "OrderBookTrader",
    "training_step",
    "direction_accuracy",
]

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


class TokenWindows(Dataset):
    """``(window, target)`` pairs: ``window = features[t - lookback + 1 : t + 1]``, a view, ``(lookback, tokens, F)``.

    ``features`` is ``(T, tokens, F)`` — levels of a book or assets of a panel at each
    time; ``targets`` is ``(T,)`` or ``(T, k)``, row ``t`` the label of decision time
    ``t``. ``times`` (default: every ``t >= lookback - 1``) lists the decision times;
    they must leave a full window behind them.
    """

    def __init__(self, features: np.ndarray | Tensor, targets: np.ndarray | Tensor, lookback: int,
                 times: np.ndarray | None = None) -> None:
        x = torch.from_numpy(np.array(features, dtype=np.float32))  # one float32 copy; windows are views of it
        y = torch.from_numpy(np.array(targets, dtype=np.float32))
        if x.ndim != 3:
            raise ValueError(f"features must be 3-D (time, tokens, features), got shape {tuple(x.shape)}")
        if y.shape[0] != x.shape[0] or y.ndim not in (1, 2):
            raise ValueError(f"targets must have shape (T,) or (T, k) with T = {x.shape[0]}, got {tuple(y.shape)}")
        if isinstance(lookback, bool) or not isinstance(lookback, int) or not 1 <= lookback <= x.shape[0]:
            raise ValueError(f"lookback must be an int between 1 and the {x.shape[0]} time steps, got {lookback!r}")
        t = np.arange(lookback - 1, x.shape[0]) if times is None else np.asarray(times, dtype=np.int64)
        if t.ndim != 1 or (len(t) and (t.min() < lookback - 1 or t.max() >= x.shape[0])):
            raise ValueError(
                f"times must be decision times between lookback-1={lookback - 1} and {x.shape[0] - 1}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("features contain NaN or inf; drop the warm-up rows or fill gaps first")
        self.x, self.y, self.lookback, self.times = x, y, lookback, t

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        t = int(self.times[i])
        return self.x[t - self.lookback + 1 : t + 1], self.y[t]


class OrderBookTrader(CrossAssetTrader):
    """:class:`~flashtrade_lib.cross_asset.CrossAssetTrader` over (snapshot, level) tokens, one prediction per window.

    ``forward(x)`` takes ``(batch, snapshots, n_levels, n_features)`` and returns the
    usual dict (``regression``, ``direction`` logit, ``allocation``), each ``(batch, 1)``,
    read from the summary token of the last snapshot. Train it with the ``direction``
    objective on ``next_move`` (``+1`` up, ``-1`` down).
    """

    def __init__(self, config: ModelConfig, n_levels: int) -> None:
        super().__init__(config, n_levels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        summary = self.encode(x)[:, -1, self.n_assets]  # (batch, d): sees every level of every snapshot
        return {
            "regression": self.heads["regression"](summary) * self.target_scale,
            "direction": self.heads["direction"](summary),
            "allocation": torch.tanh(self.heads["allocation"](summary)),
        }


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def training_step(model: nn.Module, x: Tensor, y: Tensor, objective: str = "regression") -> Callable[[], float]:
    """A zero-argument callable running one forward + loss + backward + AdamW step on ``(x, y)``.

    What :func:`flashtrade_lib.bench.time_calls` and :func:`~flashtrade_lib.bench.peak_memory`
    measure: call it once first (it allocates gradients and optimizer state).
    """
    _check_objective(objective)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step() -> float:
        loss = compute_loss(model(x), y, objective)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def direction_accuracy(score: np.ndarray, outcome: np.ndarray) -> tuple[float, int]:
    """Share of ``sign(score) == sign(outcome)`` over the cases where both are non-zero, and how many cases.

    Zero scores (no opinion) and zero outcomes (no move) are left out, so 0.5 is chance.
    """
    score, outcome = np.asarray(score, dtype=np.float64).ravel(), np.asarray(outcome, dtype=np.float64).ravel()
    if score.shape != outcome.shape:
        raise ValueError(f"score and outcome must have the same length, got {score.shape} and {outcome.shape}")
    keep = (score != 0) & (outcome != 0) & np.isfinite(score) & np.isfinite(outcome)
    if not keep.any():
        raise ValueError("no case where both score and outcome are non-zero: nothing to score")
    return float(np.mean(np.sign(score[keep]) == np.sign(outcome[keep]))), int(keep.sum())
