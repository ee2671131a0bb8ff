"""Exercise checks for chapter 8 (08_backtesting): annualise correctly; execute at t+1; break-even cost."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.trading.metrics import periods_per_year, sharpe

# --------------------------------------------------------------------- annualisation


def _expected_sharpe(returns: pd.Series, calendar: str) -> float:
    return sharpe(returns, periods_per_year(returns.index, calendar))


def _annualisation_cases() -> list[tuple[str, pd.Series, str]]:
    rng = np.random.default_rng(8)
    cases = []
    for label, freq, n, calendar in [
        ("hourly crypto (24/7)", "h", 2000, "crypto"),
        ("daily equities", "B", 500, "equity"),
        ("hourly FX", "h", 1500, "fx"),
        ("30-minute crypto", "30min", 3000, "crypto"),
    ]:
        idx = pd.date_range("2021-01-04", periods=n, freq=freq)
        cases.append((label, pd.Series(rng.normal(2e-4, 0.01, n), index=idx), calendar))
    return cases


@register(
    "ch08-annualise",
    title="Annualise a Sharpe ratio from the bar frequency and the market calendar",
)
def _grade_annualise(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function annualised_sharpe(returns, calendar) -> float.")
    for label, r, calendar in _annualisation_cases():
        expected = _expected_sharpe(r, calendar)
        got = float(answer(r, calendar))
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        per_bar = r.mean() / r.std()
        hint = ""
        if per_bar and math.isclose(got / per_bar, math.sqrt(252), rel_tol=1e-6):
            hint = " You multiplied by sqrt(252): that is for daily equity bars only."
        elif per_bar and math.isclose(got, per_bar, rel_tol=1e-6):
            hint = " You did not annualise at all: multiply by sqrt(bars per year)."
        elif per_bar and math.isclose(
            got / per_bar, periods_per_year(r.index, calendar), rel_tol=1e-6
        ):
            hint = " You multiplied by the bars per year, not by its square root."
        return Feedback(
            False,
            f"for {label} returns you got {got:.4f}, expected {expected:.4f} "
            f"({periods_per_year(r.index, calendar):g} bars per year).{hint}",
        )
    return Feedback(True, "hourly crypto uses 8760 bars a year, hourly FX 6240, daily equities 252.")


# --------------------------------------------------------------------- t+1 execution


def _expected_strategy_returns(returns: pd.Series, positions: pd.Series) -> pd.Series:
    # the position decided at the close of bar t earns the return of bar t+1
    return positions.shift(1).fillna(0.0) * returns


def _same_bar_returns(returns: pd.Series, positions: pd.Series) -> pd.Series:
    # look-ahead: earns the return of the same bar the decision used
    return positions * returns


def _t_plus_one_case() -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(1)
    idx = pd.date_range("2022-01-01", periods=200, freq="h")
    r = pd.Series(rng.normal(0, 0.01, 200), index=idx)
    # a look-ahead position: it "knows" the current bar's return
    pos = np.sign(r).where(rng.random(200) < 0.7, -np.sign(r))
    return r, pos


@register(
    "ch08-t-plus-one",
    title="Strategy returns with t+1 execution",
)
def _grade_t_plus_one(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function strategy_returns(returns, positions) -> Series.")
    r, pos = _t_plus_one_case()
    expected = _expected_strategy_returns(r, pos)
    got = answer(r, pos)
    if not isinstance(got, pd.Series) or not got.index.equals(r.index):
        return Feedback(False, "return a Series on the same index as `returns` (one value per bar).")
    if got.isna().any():
        return Feedback(False, "your series has NaN (the first bar?): no position is held before "
                        "the first decision, so that bar's strategy return is 0.")
    if np.allclose(got, _same_bar_returns(r, pos), atol=1e-15):
        return Feedback(False, "look-ahead! The position decided with bar t's close earns bar t's "
                        "return in your version; shift the positions by one bar.")
    if np.allclose(got, (pos.shift(-1) * r).fillna(0.0), atol=1e-15):
        return Feedback(False, "you shifted in the wrong direction (shift(-1) looks further ahead).")
    if not np.allclose(got, expected, atol=1e-15, rtol=0):
        return Feedback(False, "the values differ from positions.shift(1) * returns with a flat first bar.")
    return Feedback(True, "a decision at the close of bar t earns the return of bar t+1.")


# --------------------------------------------------------------------- break-even cost


def _breakeven_cases() -> list[tuple[str, Callable[[float], float], float | None]]:
    return [
        ("a Sharpe ratio of 1.2 - 0.1 × cost", lambda c: 1.2 - 0.1 * c, 12.0),
        ("a Sharpe ratio of 2 exp(-cost / 10) - 0.5", lambda c: 2 * math.exp(-c / 10) - 0.5,
         10 * math.log(4)),
        ("a Sharpe ratio of 0.9 - 0.3 × cost", lambda c: 0.9 - 0.3 * c, 3.0),
        ("a strategy that never trades (Sharpe 0.4 at any cost)", lambda c: 0.4, None),
        ("a strategy that loses even without costs", lambda c: -0.2 - 0.05 * c, 0.0),
    ]


@register(
    "ch08-breakeven",
    title="The cost at which a strategy's Sharpe ratio crosses zero",
)
def _grade_breakeven(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function breakeven_cost(sharpe_at, hi=50.0, tol=0.25).")
    for label, sharpe_at, expected in _breakeven_cases():
        got = answer(sharpe_at)
        if expected is None:
            if got is not None:
                return Feedback(False, f"for {label} you returned {got!r}: the Sharpe ratio is "
                                "still positive at `hi`, so there is no break-even cost in "
                                "range; return None.")
            continue
        if got is None:
            return Feedback(False, f"for {label} you returned None; it crosses zero at "
                            f"{expected:.2f} bps.")
        if expected == 0.0 and got != 0.0:
            return Feedback(False, f"for {label} you returned {got}: it loses money at 0 bps "
                            "already, so the break-even cost is 0.")
        if abs(float(got) - expected) > 0.25:
            hint = ""
            if float(got) % 5 == 0:
                hint = (" Your answer is a point of a coarse grid: narrow the interval where "
                        "the sign changes (bisection) until it is shorter than `tol`.")
            return Feedback(False, f"for {label} you returned {float(got):.2f} bps, but it "
                            f"crosses zero at {expected:.2f} bps.{hint}")
    return Feedback(True, "bisection halves the interval around the sign change at every step: "
                    "about eight backtests give the break-even cost to a quarter of a bp.")
