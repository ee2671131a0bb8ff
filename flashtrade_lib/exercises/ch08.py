"""Exercise checks for chapter 8 (08_backtesting): annualise correctly; execute at t+1."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from flashtrade_lib.exercises import Feedback, register
from flashtrade_lib.metrics import periods_per_year, sharpe

# --------------------------------------------------------------------- annualisation


def _annualised_sharpe_solution(returns: pd.Series, calendar: str) -> float:
    return sharpe(returns, periods_per_year(returns.index, calendar))


def _annualised_sharpe_wrong(returns: pd.Series, calendar: str) -> float:
    # the seed chapter's mistake: 252 whatever the bars and the market
    return math.sqrt(252) * returns.mean() / returns.std()


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
    solution=lambda: _annualised_sharpe_solution,
    wrong=lambda: _annualised_sharpe_wrong,
)
def _grade_annualise(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function annualised_sharpe(returns, calendar) -> float.")
    for label, r, calendar in _annualisation_cases():
        expected = _annualised_sharpe_solution(r, calendar)
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


def _t_plus_one_solution(returns: pd.Series, positions: pd.Series) -> pd.Series:
    # the position decided at the close of bar t earns the return of bar t+1
    return positions.shift(1).fillna(0.0) * returns


def _t_plus_one_wrong(returns: pd.Series, positions: pd.Series) -> pd.Series:
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
    solution=lambda: _t_plus_one_solution,
    wrong=lambda: _t_plus_one_wrong,
)
def _grade_t_plus_one(answer: object) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function strategy_returns(returns, positions) -> Series.")
    r, pos = _t_plus_one_case()
    expected = _t_plus_one_solution(r, pos)
    got = answer(r, pos)
    if not isinstance(got, pd.Series) or not got.index.equals(r.index):
        return Feedback(False, "return a Series on the same index as `returns` (one value per bar).")
    if got.isna().any():
        return Feedback(False, "your series has NaN (the first bar?): no position is held before "
                        "the first decision, so that bar's strategy return is 0.")
    if np.allclose(got, _t_plus_one_wrong(r, pos), atol=1e-15):
        return Feedback(False, "look-ahead! The position decided with bar t's close earns bar t's "
                        "return in your version; shift the positions by one bar.")
    if np.allclose(got, (pos.shift(-1) * r).fillna(0.0), atol=1e-15):
        return Feedback(False, "you shifted in the wrong direction (shift(-1) looks further ahead).")
    if not np.allclose(got, expected, atol=1e-15, rtol=0):
        return Feedback(False, "the values differ from positions.shift(1) * returns with a flat first bar.")
    return Feedback(True, "a decision at the close of bar t earns the return of bar t+1.")
