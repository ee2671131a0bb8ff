"""Test a feature for look-ahead: change the future, see whether the past moves.

Why a test instead of a code review: look-ahead hides in innocent code
(``rolling(center=True)``, ``shift(-1)``, a scaler fitted on all the data,
``bfill``). The definition of a causal feature is operational — its value at bar
``t`` must not change when any bar after ``t`` changes — so check exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

__all__ = ["perturb_after", "lookahead_violations"]


def perturb_after(bars: pd.DataFrame, t: int, seed: int = 0) -> pd.DataFrame:
    """A copy of ``bars`` (one asset or a panel) whose rows after position ``t`` are scrambled.

    Prices are multiplied by a random factor per row (the same for open/high/low/close,
    so bars stay valid), volumes by another; rows ``<= t`` are untouched.
    """
    if not 0 <= t < len(bars):
        raise ValueError(f"t must be a row position in [0, {len(bars)}), got {t}")
    rng = np.random.default_rng(seed)
    out = bars.copy()
    n = len(bars) - t - 1
    if n == 0:
        return out
    price_factor = np.exp(rng.normal(0, 0.05, n))
    vol_factor = np.exp(rng.normal(0, 0.5, n))
    fields = out.columns.get_level_values(0) if isinstance(out.columns, pd.MultiIndex) else out.columns
    for j, name in enumerate(fields):
        col = out.columns[j]
        if name in ("open", "high", "low", "close"):
            out.iloc[t + 1 :, j] = out[col].to_numpy()[t + 1 :] * price_factor
        elif name == "volume":
            out.iloc[t + 1 :, j] = out[col].to_numpy()[t + 1 :] * vol_factor
    return out


def lookahead_violations(
    feature_fn: Callable[[pd.DataFrame], pd.DataFrame | pd.Series],
    bars: pd.DataFrame,
    times: Iterable[int] | None = None,
    *,
    seed: int = 0,
) -> list[int]:
    """The bar positions ``t`` at which perturbing the bars after ``t`` changed ``feature_fn``'s
    output at some row ``<= t``. An empty list means no look-ahead was detected.

    ``times`` defaults to ten positions spread over the data.
    """
    base = np.asarray(feature_fn(bars), dtype=np.float64)
    if base.shape[0] != len(bars):
        raise ValueError(f"feature_fn must return one row per bar ({len(bars)}), got {base.shape[0]}")
    if times is None:
        times = np.linspace(len(bars) // 10, len(bars) - 2, 10).astype(int)
    bad = []
    for k, t in enumerate(times):
        moved = np.asarray(feature_fn(perturb_after(bars, int(t), seed + k)), dtype=np.float64)
        past_a, past_b = base[: int(t) + 1], moved[: int(t) + 1]
        if not np.array_equal(past_a, past_b, equal_nan=True):
            bad.append(int(t))
    return bad
