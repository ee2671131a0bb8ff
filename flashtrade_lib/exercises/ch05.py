"""Exercise checks for chapter 5 (market data)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from flashtrade_lib.exercises import Feedback, register


def _test_close() -> pd.DataFrame:
    from flashtrade_lib.data.synthetic import simulate_market

    return simulate_market(600, 1, seed=5, planted_lag=None).panel


@register(
    "ch05-causal-feature",
    title="Find and fix a leaky feature",
)
def _grade_causal(answer: Callable[..., pd.Series]) -> Feedback:
    from flashtrade_lib.data.features import price_ma_ratio
    from flashtrade_lib.data.leakage import lookahead_violations

    if not callable(answer):
        return Feedback(False, f"expected a function close -> Series, got {type(answer).__name__}")
    panel = _test_close()
    close = panel["close"].iloc[:, 0]

    def fn(p: pd.DataFrame) -> pd.Series:
        return answer(p["close"].iloc[:, 0], 24)

    out = answer(close, 24)
    if not isinstance(out, pd.Series) or len(out) != len(close):
        return Feedback(False, "return a pandas Series with one value per bar (same index as close).")
    bad = lookahead_violations(fn, panel)
    if bad:
        return Feedback(
            False,
            f"still looks ahead: changing bars after t={bad[0]} changed your value at or before "
            "t. A centred window uses window/2 future bars; use a trailing window.",
        )
    ref = price_ma_ratio(close, 24)
    if not np.allclose(out.to_numpy(), ref.to_numpy(), equal_nan=True):
        return Feedback(
            False,
            "causal now, but not the price / moving-average ratio: divide close by the mean of "
            "the last 24 closes (including the current one); the first 23 values are NaN.",
        )
    return Feedback(True, "causal, and equal to flashtrade_lib.data.features.price_ma_ratio.")


@register(
    "ch05-lookback-days",
    title="How much calendar time does a lookback cover?",
)
def _grade_days(answer: object) -> Feedback:
    expected = 2048 * 30 / (60 * 24)
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        return Feedback(False, f"expected a number of days, got {type(answer).__name__}")
    if math.isclose(answer, 2048 / 24, rel_tol=1e-3):
        return Feedback(False, "that is 2048 *hourly* bars; these bars are 30 minutes long.")
    if not math.isclose(answer, expected, rel_tol=1e-3):
        return Feedback(False, f"{answer:.2f} days is off: bars × minutes per bar / minutes per day.")
    return Feedback(True, f"2048 thirty-minute bars span {expected:.2f} days (about six weeks).")


def _expected_purged_count(n_train: int = 700, horizon: int = 24, embargo: int = 24) -> int:
    t = np.arange(n_train)
    return int(np.sum(~(t + horizon + embargo < n_train)))


@register(
    "ch05-purged-count",
    title="How many training samples does purging remove?",
)
def _grade_purged(answer: object) -> Feedback:
    expected = _expected_purged_count()
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool):
        return Feedback(False, f"expected a whole number of samples, got {type(answer).__name__}")
    if answer == 24:
        return Feedback(False, "24 removes the overlap but forgets the embargo of another 24 bars.")
    if answer != expected:
        return Feedback(
            False,
            f"{answer} is not it. Sample t is kept when t + horizon + embargo < 700 "
            "(its label ends, plus the embargo, before the first test bar).",
        )
    return Feedback(True, f"{expected} samples: {expected // 2} for the label overlap, {expected // 2} for the embargo.")
