"""The seed chapter's backtest, **WRONG ON PURPOSE**: chapter 8 measures its mistakes.

Why a module of its own: the honest engine (:mod:`flashtrade_lib.trading.backtest`) should
not sit beside a function that must never be used to evaluate a strategy. This one
reuses the engine's input checks, so the difference between the two is only the
seed's three mistakes, each behind a switch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flashtrade_lib.trading.backtest import align_signals, time_frame

__all__ = ["SeedStyleResult", "seed_style_backtest"]


@dataclass(frozen=True)
class SeedStyleResult:
    """What the seed chapter's backtest reported (see :func:`seed_style_backtest`)."""

    returns: pd.Series
    sharpe: float
    total_return: float
    annualisation: float


def seed_style_backtest(
    log_returns: pd.DataFrame,
    signals: pd.DataFrame,
    *,
    horizon: int = 24,
    overlapping: bool = True,
    log_as_simple: bool = True,
    annualisation: float = 252.0,
    transaction_cost: float = 0.001,
    position_size: float = 0.1,
    scale: float = 10.0,
) -> SeedStyleResult:
    """**WRONG ON PURPOSE** — the seed chapter's backtest, to measure its mistakes.

    Do not use this to evaluate a strategy. It reproduces, with a switch for each,
    the three mistakes of the seed chapter's ``backtest_flash_attention_strategy``:

    1. ``overlapping=True``: every bar books the *next ``horizon`` bars'* return
       (the training target) as that bar's P&L, so each market move is counted
       ``horizon`` times (≈ 24× over-counting for a 24-bar target). ``False`` books
       the next *one* bar's return, as an honest backtest does.
    2. ``log_as_simple=True``: those summed **log** returns are multiplied by the
       weights as if they were simple returns. ``False`` converts with ``expm1``
       (per asset, before weighting).
    3. ``annualisation=252``: the Sharpe ratio of *hourly 24/7* bars is annualised
       with ``sqrt(252)`` trading days. The bars carry their own (``clock_of(bars).periods_per_year``: 8760) to fix it.

    Like the seed: weights ``tanh(scale * signal) * position_size``, cost
    ``transaction_cost × |Δweight|`` per bar, Sharpe = ``sqrt(A) * mean / std``
    of the per-bar equity changes. The weight decided at bar ``t`` (features up to
    ``t``) is applied to the returns of bars ``t+1 … t+horizon`` — the seed's own
    timing, so the difference from an honest backtest is only the three mistakes.
    """
    lr = time_frame(log_returns, "log_returns")
    x = lr.to_numpy(dtype=float)
    if np.isnan(x).any():
        raise ValueError("log_returns has NaN values; drop the first bar of a diff first")
    s = align_signals(signals, lr)
    h = horizon if overlapping else 1
    # target at t: sum of log returns of bars t+1 .. t+h (NaN where the future is missing)
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    n = x.shape[0]
    valid = n - h
    if valid < 2:
        raise ValueError(f"need more than horizon+1 = {h + 1} bars, got {n}")
    fwd = csum[1 + h : n + 1] - csum[1:valid + 1]  # rows t = 0 .. valid-1
    realised = fwd if log_as_simple else np.expm1(fwd)
    w = np.tanh(scale * s[:valid]) * position_size
    dw = np.abs(np.diff(np.vstack([np.zeros((1, w.shape[1])), w]), axis=0)).sum(axis=1)
    # the seed's capital update: capital * (1 + w·y) - cost * |Δw| * capital
    step = (w * realised).sum(axis=1) - transaction_cost * dw
    rets = pd.Series(step, index=lr.index[:valid], name="seed_style_return")
    sd = rets.std()
    sharpe = float(math.sqrt(annualisation) * rets.mean() / (sd + 1e-8))
    return SeedStyleResult(
        returns=rets,
        sharpe=sharpe,
        total_return=float(np.prod(1 + step) - 1),
        annualisation=float(annualisation),
    )
