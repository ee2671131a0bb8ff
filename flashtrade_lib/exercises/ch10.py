"""Exercise checks for chapter 10 (beyond one series: cross-asset tokens, order books)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flashtrade_lib.exercises import Feedback, register


def _solution_imbalance(snapshots: np.ndarray, levels: int = 1) -> np.ndarray:
    b = snapshots[..., :levels, 1].sum(axis=-1)
    a = snapshots[..., :levels, 3].sum(axis=-1)
    return (b - a) / (b + a)


def _wrong_imbalance(snapshots: np.ndarray, levels: int = 1) -> np.ndarray:
    b = snapshots[..., :levels, 1].sum(axis=-1)
    a = snapshots[..., :levels, 3].sum(axis=-1)
    return (a - b) / (b + a)  # the ask-minus-bid sign convention: up moves get negative scores


@register(
    "ch10-imbalance",
    title="Order imbalance of the first levels of a book",
    solution=lambda: _solution_imbalance,
    wrong=lambda: _wrong_imbalance,
)
def _grade_imbalance(answer: Callable[..., np.ndarray]) -> Feedback:
    from flashtrade_lib.data.lob_sim import order_imbalance, simulate_lob

    if not callable(answer):
        return Feedback(False, f"expected a function imbalance(snapshots, levels), got {type(answer).__name__}")
    snaps = simulate_lob(500, seed=3).snapshots
    for levels in (1, 3):
        got = np.asarray(answer(snaps, levels), dtype=np.float64)
        want = order_imbalance(snaps, levels)
        if got.shape != want.shape:
            return Feedback(False, f"levels={levels}: expected one value per snapshot, shape {want.shape}; "
                                   f"got {got.shape}. Sum sizes over the level axis (axis=-1 after slicing).")
        if np.allclose(got, -want):
            return Feedback(False, "the sign is reversed: imbalance is (bid size - ask size) / total, "
                                   "positive when buyers queue up (which points to an up move).")
        if not np.allclose(got, want, atol=1e-12):
            return Feedback(False, f"levels={levels}: values differ from (B - A) / (B + A) with B, A the "
                                   "bid and ask sizes summed over the first `levels` levels "
                                   "(bid size is field 1, ask size field 3).")
    return Feedback(True, "right: (B - A) / (B + A), in [-1, 1]; its sign is the baseline the model must beat.")


def _wrong_tokens(lookback: int, n_assets: int) -> int:
    return lookback * n_assets


@register(
    "ch10-token-count",
    title="How long is the cross-asset token sequence?",
    solution=lambda: (lambda lookback, n_assets: lookback * (n_assets + 1)),
    wrong=lambda: _wrong_tokens,
)
def _grade_tokens(answer: Callable[[int, int], int]) -> Feedback:
    from flashtrade_lib.cross_asset import n_tokens

    if not callable(answer):
        return Feedback(False, f"expected a function tokens(lookback, n_assets), got {type(answer).__name__}")
    for lookback, assets in ((512, 5), (2048, 100), (1, 1)):
        got, want = answer(lookback, assets), n_tokens(lookback, assets)
        if got == lookback * assets:
            return Feedback(False, "close: you counted one token per (asset, bar), but every bar also "
                                   "ends with a summary token S(t).")
        if got != want:
            return Feedback(False, f"for lookback={lookback}, n_assets={assets} the sequence has {want} "
                                   f"tokens, you said {got}.")
    return Feedback(True, "right: lookback × (assets + 1). At 2048 bars × 100 assets that is 206,848 tokens.")
