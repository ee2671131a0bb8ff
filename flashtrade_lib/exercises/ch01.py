"""Exercise checks for chapter 1 (01_attention_bottleneck): predict memory, size a context."""

from __future__ import annotations

import math

from flashtrade_lib.exercises import Feedback, register

# ------------------------------------------------------------- score-matrix memory


def _expected_score_bytes(n: int, *, heads: int = 1, batch: int = 1, itemsize: int = 4) -> int:
    return batch * heads * n * n * itemsize


_SCORE_CASES = [
    dict(n=1024),
    dict(n=8192, itemsize=4),
    dict(n=8192, heads=8, itemsize=2),
    dict(n=16384, heads=8, batch=4, itemsize=4),
    dict(n=3, heads=2, batch=5, itemsize=8),
]


@register(
    "ch01-score-bytes",
    title="Bytes of the N×N score matrix",
)
def _grade_score_bytes(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function score_matrix_bytes(n, *, heads, batch, itemsize) -> int.")
    for case in _SCORE_CASES:
        expected = _expected_score_bytes(**case)
        got = answer(**case)
        if got == expected:
            continue
        n, itemsize = case["n"], case.get("itemsize", 4)
        hint = ""
        if got == n * n * itemsize:
            hint = " That is one matrix: each batch element and each head has its own."
        elif got == expected // itemsize:
            hint = " That is a count of elements: multiply by the bytes per element (itemsize)."
        return Feedback(False, f"for {case} you returned {got}, expected {expected} bytes.{hint}")
    gib = _expected_score_bytes(16384, heads=8, batch=4) / 2**30
    return Feedback(True, f"e.g. N=16384, 8 heads, batch 4 in float32 needs {gib:.0f} GiB for S alone.")


# ------------------------------------------------------------------ context span

_BARS_PER_DAY = {"1min": 1440, "1h": 24, "1d": 1}


def _expected_context_days(n: int, bar: str) -> float:
    return n / _BARS_PER_DAY[bar]  # crypto trades 24/7: every day has 1440 minutes


def _equity_session_days(n: int, bar: str) -> float:
    return n / {"1min": 390, "1h": 6.5, "1d": 1}[bar]  # equity-session hours, not 24/7


@register(
    "ch01-context-days",
    title="How many days of crypto market does a context of N bars cover?",
)
def _grade_context_days(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function context_days(n, bar) -> float, bar in '1min', '1h', '1d'.")
    for n in (512, 8192, 100_000):
        for bar in _BARS_PER_DAY:
            expected = _expected_context_days(n, bar)
            got = float(answer(n, bar))
            if math.isclose(got, expected, rel_tol=1e-9):
                continue
            hint = ""
            if bar != "1d" and math.isclose(got, _equity_session_days(n, bar), rel_tol=1e-9):
                hint = " Those are equity-session hours; crypto trades 24 hours a day, 7 days a week."
            return Feedback(False, f"context_days({n}, {bar!r}) returned {got:g}, expected {expected:g}.{hint}")
    return Feedback(True, f"8192 one-minute bars are only {8192 / 1440:.1f} days; 8192 hourly bars are almost a year.")
