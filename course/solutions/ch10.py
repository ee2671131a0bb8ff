"""Chapter 10 (10_beyond_one_series) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np
import torch

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.model.cross_asset import CrossAssetTrader, n_tokens
from flashtrade_lib.model.step_cost import naive_step_bytes


@solution("ch10-token-count")
def tokens(lookback, n_assets):
    return lookback * (n_assets + 1)


@wrong("ch10-token-count", expect="summary token")
def tokens_without_summary(lookback, n_assets):
    return lookback * n_assets


@solution("ch10-imbalance")
def imbalance(snapshots, levels=1):
    b = snapshots[..., :levels, 1].sum(axis=-1)
    a = snapshots[..., :levels, 3].sum(axis=-1)
    return (b - a) / (b + a)


@wrong("ch10-imbalance", expect="the sign is reversed")
def imbalance_ask_minus_bid(snapshots, levels=1):
    b = snapshots[..., :levels, 1].sum(axis=-1)
    a = snapshots[..., :levels, 3].sum(axis=-1)
    return (a - b) / (b + a)


@solution("ch10-budget")
def max_lookback(n_assets, budget_gib=12):
    lookback = 0
    while naive_step_bytes(n_tokens(lookback + 64, n_assets), batch=2, n_heads=2,
                           n_layers=2) <= budget_gib * 2**30:
        lookback += 64
    return lookback


@wrong("ch10-budget", expect="every bar also has a summary token")
def max_lookback_without_summary(n_assets, budget_gib=12):
    lookback = 0
    while naive_step_bytes((lookback + 64) * n_assets, batch=2, n_heads=2, n_layers=2) <= budget_gib * 2**30:
        lookback += 64
    return lookback


@solution("ch10-summary")
class NoSummary(CrossAssetTrader):
    def forward(self, x):
        rep = self.encode(x)[:, -1, : self.n_assets]
        return {"regression": self.heads["regression"](rep).squeeze(-1) * self.target_scale,
                "direction": self.heads["direction"](rep).squeeze(-1),
                "allocation": torch.tanh(self.heads["allocation"](rep).squeeze(-1))}


@wrong("ch10-summary", expect="still uses the summary token")
class StillSummary(CrossAssetTrader):  # the library's read-out, summary token included
    pass


@solution("ch10-bar-mask")
def bar_causal_mask(lookback, n_assets):
    bar = np.arange(n_tokens(lookback, n_assets)) // (n_assets + 1)  # each token's bar, time-major
    return bar[None, :] <= bar[:, None]


@wrong("ch10-bar-mask", expect="that is plain causal attention")
def bar_causal_mask_as_plain_causal(lookback, n_assets):
    n = n_tokens(lookback, n_assets)
    return np.tril(np.ones((n, n), dtype=bool))
