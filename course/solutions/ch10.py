"""Chapter 10 (10_beyond_one_series) — instructor's solutions (not installed with flashtrade_lib)."""

import numpy as np
import pandas as pd
import torch

from flashtrade_lib.course.solutions import solution, wrong
from flashtrade_lib.model.cross_asset import CrossAssetTrader, n_tokens
from flashtrade_lib.model.step_cost import naive_step_bytes


@solution("ch10-cross-sectional-ic")
def ic_table(forecasts, outcome):
    from scipy.stats import rankdata

    rows = {}
    for name, f in forecasts.items():
        rf, ry = rankdata(f, axis=1), rankdata(outcome, axis=1)  # rank the assets within each bar
        rf, ry = rf - rf.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
        den = np.sqrt((rf**2).sum(axis=1) * (ry**2).sum(axis=1))
        per_bar = (rf * ry).sum(axis=1)[den > 0] / den[den > 0]  # bars with no spread have no correlation
        rows[name] = {"pooled IC": np.corrcoef(f.ravel(), outcome.ravel())[0, 1],
                      "cross-sectional rank IC": per_bar.mean()}
    return pd.DataFrame.from_dict(rows, orient="index")


@wrong("ch10-cross-sectional-ic", expect="pooled, it mostly measures")
def ic_table_pooled_rank(forecasts, outcome):
    from scipy.stats import spearmanr

    rows = {name: {"pooled IC": np.corrcoef(f.ravel(), outcome.ravel())[0, 1],
                   "cross-sectional rank IC": spearmanr(f.ravel(), outcome.ravel()).statistic}
            for name, f in forecasts.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


@wrong("ch10-cross-sectional-ic", expect="time-series IC")
def ic_table_per_asset(forecasts, outcome):
    from scipy.stats import spearmanr

    rows = {name: {"pooled IC": np.corrcoef(f.ravel(), outcome.ravel())[0, 1],
                   "cross-sectional rank IC": np.mean([spearmanr(f[:, a], outcome[:, a]).statistic
                                                       for a in range(f.shape[1])])}
            for name, f in forecasts.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


@wrong("ch10-cross-sectional-ic", expect="drop them before averaging")
def ic_table_flat_bars_as_zero(forecasts, outcome):
    from scipy.stats import rankdata

    rows = {}
    for name, f in forecasts.items():
        rf, ry = rankdata(f, axis=1), rankdata(outcome, axis=1)
        rf, ry = rf - rf.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
        den = np.sqrt((rf**2).sum(axis=1) * (ry**2).sum(axis=1))
        per_bar = np.where(den > 0, (rf * ry).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
        rows[name] = {"pooled IC": np.corrcoef(f.ravel(), outcome.ravel())[0, 1],
                      "cross-sectional rank IC": per_bar.mean()}
    return pd.DataFrame.from_dict(rows, orient="index")


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
