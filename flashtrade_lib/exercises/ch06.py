"""Exercise checks for chapter 6 (training the FlashAttentionTrader)."""

from __future__ import annotations

import math
from collections.abc import Callable

from flashtrade_lib.exercises import Feedback, register

_CASES = [  # (batch, heads, layers, context)
    (8, 4, 2, 4096),
    (1, 8, 6, 16384),
    (32, 2, 1, 512),
]


def _expected_nxn_bytes(batch: int, heads: int, layers: int, context: int) -> int:
    return layers * batch * heads * context * context * 4


@register(
    "ch06-saved-probabilities",
    title="Memory of the attention probabilities kept for backward",
)
def _grade_nxn(answer: Callable[[int, int, int, int], int]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function (batch, heads, layers, context) -> bytes, got {type(answer).__name__}")
    for case in _CASES:
        want = _expected_nxn_bytes(*case)
        got = answer(*case)
        if not isinstance(got, (int, float)) or not math.isfinite(got):
            return Feedback(False, f"for {case} your function returned {got!r}, not a number of bytes")
        if case[2] > 1 and got == want / case[2]:
            return Feedback(False, f"for {case} you counted one layer only: every layer keeps its own "
                                   "probabilities until the backward pass reaches it.")
        if got == want * 2:
            return Feedback(False, f"for {case} you got twice the answer: float32 has 4 bytes, not 8.")
        if abs(got - want) > 0.5:
            b, h, layer, n = case
            return Feedback(False, f"for batch={b}, heads={h}, layers={layer}, N={n} you said {got:,.0f} "
                                   f"bytes; count layers × batch × heads × N × N float32 values.")
    return Feedback(True, "every layer keeps a B·H·N² float32 matrix: 2 GiB per layer at N=4096, batch 8, "
                          "4 heads — which is why naive attention stops around a few thousand bars.")


@register(
    "ch06-lr-schedule",
    title="Warm-up then cosine decay",
)
def _grade_lr(answer: Callable[[int, int, int, float], float]) -> Feedback:
    from flashtrade_lib.model.train import lr_at

    if not callable(answer):
        return Feedback(False, f"expected a function (step, total, warmup, floor) -> float, got {type(answer).__name__}")
    for total, warmup, floor in ((100, 10, 0.1), (50, 0, 0.0), (200, 20, 0.05)):
        for step in sorted({0, max(0, warmup - 1), warmup, total // 2, total - 1, total}):
            want, got = lr_at(step, total, warmup, floor), answer(step, total, warmup, floor)
            if not isinstance(got, (int, float)) or abs(got - want) > 1e-9:
                where = "during warm-up" if step < warmup else "during the cosine decay"
                return Feedback(False, f"at step {step} of {total} (warm-up {warmup}, floor {floor}) "
                                       f"{where} you returned {got!r}, expected {want:.6f}.")
    return Feedback(True, "linear warm-up to the peak, then a half cosine down to the floor — "
                          "identical to flashtrade_lib.model.train.lr_at.")
