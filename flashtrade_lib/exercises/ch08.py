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


# --------------------------------------------------------------------- purged walk-forward folds

_FOLD_CASES = ((500, 24, 4, 0), (500, 24, 4, 24), (1000, 24, 5, 12), (300, 1, 3, 0), (240, 48, 2, 6))


def _expected_folds(n: int, horizon: int, n_folds: int, embargo: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from flashtrade_lib.data import walk_forward_folds

    t = np.arange(n)
    folds = walk_forward_folds(np.stack([t, t + horizon], axis=1), n_folds=n_folds, embargo=embargo)
    return [(f.train, f.test) for f in folds]


def _fold_mistake(train: np.ndarray, lo: int, horizon: int, embargo: int) -> str:
    """Why a fold's training samples (all before test sample ``lo``) differ from the purged ones."""
    last = int(train.max()) if train.size else -1
    want_last = lo - horizon - embargo - 1
    if last == lo - 1:
        return (f"nothing was purged: training sample {last}'s label spans bars {last}..{last + horizon}, "
                f"which overlaps the test labels that start at bar {lo}. Drop every training sample i with "
                f"i + horizon + embargo >= {lo}.")
    if last == want_last + 1 and embargo == 0:
        return (f"off by one: training sample {last}'s label ends at bar {last + horizon}, the bar where the "
                "first test label starts, so the two share a bar. Keep i only when i + horizon < the test start.")
    if last == lo - horizon - 1 and embargo > 0:
        return (f"you purged the overlapping labels but forgot the embargo: drop {embargo} more samples "
                f"(keep i when i + horizon + embargo < {lo}).")
    if last == want_last + 1:
        return (f"off by one: keep sample i only when i + horizon + embargo < {lo} (strictly), so the last "
                f"training sample is {want_last}, not {last}.")
    if last < want_last:
        return (f"you dropped too much: the last training sample may be {want_last} (its label ends at bar "
                f"{want_last + horizon}, {embargo} bars of embargo before the test start {lo}); yours is {last}.")
    return f"the last training sample should be {want_last} (i + horizon + embargo < {lo}); yours is {last}."


@register(
    "ch08-purged-folds",
    title="Purged walk-forward folds for 24-bar labels",
    hints=(
        "Sample t's label is the return from bar t to bar t + horizon: it spans the bars t..t + horizon.",
        "Test blocks first: the last n_folds blocks of n_samples // (n_folds + 1) consecutive samples each, "
        "so the first test block starts n_folds blocks before the end.",
        "Training is every earlier sample i whose label ends, with the embargo, strictly before the first test "
        "label starts: i + horizon + embargo < the first test sample.",
    ),
    references=("flashtrade_lib.data.splits:walk_forward_folds", "flashtrade_lib.data.splits:purge"),
)
def _grade_purged_folds(answer: Callable[[int, int, int, int], list]) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function purged_folds(n_samples, horizon, n_folds, embargo) -> list of "
                               f"(train, test) position arrays, got {type(answer).__name__}")
    for n, horizon, n_folds, embargo in _FOLD_CASES:
        where = f"n_samples={n}, horizon={horizon}, n_folds={n_folds}, embargo={embargo}"
        want = _expected_folds(n, horizon, n_folds, embargo)
        got = list(answer(n, horizon, n_folds, embargo))
        if len(got) != len(want):
            return Feedback(False, f"{where}: expected {len(want)} folds, got {len(got)}.")
        for k, (fold, (w_train, w_test)) in enumerate(zip(got, want, strict=True)):
            try:
                train, test = (np.asarray(part, dtype=np.int64).ravel() for part in fold)
            except (TypeError, ValueError):
                return Feedback(False, f"{where}, fold {k}: each fold must be a pair (train, test) of sample "
                                       f"positions, got {type(fold).__name__}")
            if not np.array_equal(np.sort(test), w_test):
                return Feedback(False, f"{where}, fold {k}: the test block should be samples {w_test[0]}..{w_test[-1]} "
                                       f"({w_test.size} samples: n_samples // (n_folds + 1) each, the last n_folds "
                                       f"blocks); yours has {test.size} samples"
                                       + (f", {test.min()}..{test.max()}." if test.size else "."))
            train = np.sort(train)
            if np.array_equal(train, w_train):
                continue
            if train.size and train.max() >= w_test[0]:
                return Feedback(False, f"{where}, fold {k}: a training sample ({int(train.max())}) is not before the "
                                       f"test block, which starts at {w_test[0]}.")
            if train.size and (train.min() != 0 or np.any(np.diff(train) != 1)):
                return Feedback(False, f"{where}, fold {k}: the training window expands — every sample from 0 up to "
                                       f"the purge, {w_train[0]}..{w_train[-1]}, without gaps.")
            return Feedback(False, f"{where}, fold {k}: {_fold_mistake(train, int(w_test[0]), horizon, embargo)}")
    return Feedback(True, "no training label shares a bar with a test label, and the embargo keeps serially "
                          "correlated features apart too — identical to flashtrade_lib.data.walk_forward_folds.")


# --------------------------------------------------------------------- the Deflated Sharpe Ratio by hand


def _dsr_cases() -> list[tuple[str, pd.Series, int, float]]:
    rng = np.random.default_rng(14)
    idx = pd.date_range("2023-01-01", periods=3000, freq="h")
    skewed = rng.lognormal(0.0, 0.8, 3000)
    return [
        ("hourly returns, 20 trials", pd.Series(rng.normal(0.9e-4, 0.004, 3000), index=idx), 20, 8760.0),
        ("right-skewed, fat-tailed returns, 50 trials",
         pd.Series(0.004 * (skewed - skewed.mean()) / skewed.std() + 2e-4, index=idx), 50, 8760.0),
        ("one trial (nothing was selected)", pd.Series(rng.normal(1e-4, 0.004, 3000), index=idx), 1, 8760.0),
        ("daily returns, 7 trials", pd.Series(rng.normal(8e-4, 0.01, 1000),
                                              index=pd.bdate_range("2019-01-01", periods=1000)), 7, 252.0),
    ]


def _expected_dsr(returns: pd.Series, n_trials: int, periods: float) -> tuple[float, float]:
    """(DSR, the benchmark Sharpe it deflates to, annualised) from the library."""
    from flashtrade_lib.trading.stats import (
        deflated_sharpe_ratio,
        expected_max_sharpe,
        sharpe_null_variance,
    )

    var = sharpe_null_variance(len(returns), periods)
    res = deflated_sharpe_ratio(returns.to_numpy(), [], n_trials=n_trials, periods=periods, variance=var)
    return 1.0 - res.p_value, expected_max_sharpe(n_trials, var / periods) * math.sqrt(periods)


def _dsr_variants(r: np.ndarray, n_trials: int, periods: float) -> dict[str, float]:
    """The DSR computed with each typical mistake (the message names the one that matches)."""
    from scipy import stats as sps

    from flashtrade_lib.trading.stats import expected_max_sharpe, psr_from_moments

    n, sr = r.size, r.mean() / r.std(ddof=1)
    skew, kurt = float(sps.skew(r)), float(sps.kurtosis(r, fisher=False))
    sr0 = expected_max_sharpe(n_trials, 1.0 / (n - 1))
    return {
        "not deflated": psr_from_moments(sr, 0.0, n, skew, kurt),
        "excess kurtosis": psr_from_moments(sr, sr0, n, skew, kurt - 3.0) if 1 - skew * sr + (kurt - 4) / 4 * sr**2 > 0
        else float("nan"),
        "normal": psr_from_moments(sr, sr0, n),
        "annualised benchmark": psr_from_moments(sr, sr0 * math.sqrt(periods), n, skew, kurt),
        "annualised throughout": _psr_or_nan(sr * math.sqrt(periods), sr0 * math.sqrt(periods), n, skew, kurt),
    }


def _psr_or_nan(sr: float, benchmark: float, n: int, skew: float, kurt: float) -> float:
    from flashtrade_lib.trading.stats import psr_from_moments

    try:
        return psr_from_moments(sr, benchmark, n, skew, kurt)
    except ValueError:  # a variance that is not positive: this mistake cannot give a number
        return float("nan")


_DSR_WHY = {
    "not deflated": "that is the PSR against a Sharpe of 0: nothing was deflated. The benchmark is SR₀, the best "
                    "Sharpe ratio that n_trials skill-less trials would show by luck.",
    "excess kurtosis": "you used the excess kurtosis (0 for a normal); the formula's γ₄ is the plain kurtosis "
                       "(3 for a normal): scipy.stats.kurtosis(r, fisher=False).",
    "normal": "you left out the skewness and kurtosis: the denominator is √(1 − γ₃·SR + (γ₄ − 1)/4·SR²), "
              "and these returns are skewed and fat-tailed.",
    "annualised benchmark": "your SR₀ is annualised but your Sharpe ratio is per bar: compute both per bar "
                            "(the null variance per bar is 1/(n − 1)).",
    "annualised throughout": "you annualised the Sharpe ratios: the formula works per bar (its √(n − 1) counts "
                             "bars, and the skew/kurtosis term assumes a per-bar Sharpe ratio).",
}


@register(
    "ch08-deflated-sharpe",
    title="The Deflated Sharpe Ratio by hand",
    hints=(
        "Work per bar throughout: SR = mean / std (ddof=1); skew and kurtosis from scipy.stats "
        "(`kurtosis(r, fisher=False)`, 3 for a normal).",
        "Under no skill the per-bar Sharpe estimate has variance V = 1/(n − 1); the expected best of N trials is "
        "SR₀ = √V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e))), γ ≈ 0.5772 (0 when N = 1).",
        "DSR = Φ((SR − SR₀) √(n − 1) / √(1 − γ₃ SR + (γ₄ − 1)/4 · SR²)) with scipy.stats.norm.cdf.",
    ),
    references=("flashtrade_lib.trading.stats:deflated_sharpe_ratio", "flashtrade_lib.trading.stats:deflate_selection",
                "flashtrade_lib.trading.stats:expected_max_sharpe", "flashtrade_lib.trading.stats:psr_from_moments",
                "flashtrade_lib.trading.stats:probabilistic_sharpe_ratio"),
)
def _grade_dsr(answer: Callable[[pd.Series, int, float], float]) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function deflated_sharpe(returns, n_trials, periods) -> probability, "
                               f"got {type(answer).__name__}")
    for label, r, n_trials, periods in _dsr_cases():
        want, sr0 = _expected_dsr(r, n_trials, periods)
        got = answer(r.copy(), n_trials, periods)
        if not isinstance(got, (int, float, np.floating)) or not math.isfinite(got) or not 0 <= got <= 1:
            extra = " With one trial there is nothing to deflate: SR₀ = 0." if n_trials == 1 else ""
            return Feedback(False, f"for {label}: the DSR is a probability in [0, 1], you returned {got!r}.{extra}")
        if abs(float(got) - want) <= 5e-5:  # scipy or pandas moments: both pass
            continue
        why = "" if n_trials == 1 else next((text for name, text in _DSR_WHY.items()
                                             if abs(_dsr_variants(r.to_numpy(), n_trials, periods)[name] - float(got))
                                             <= 5e-5), "")
        if n_trials == 1:  # the earlier cases already graded the moments: here only N = 1 itself can be wrong
            why = "with one trial nothing was selected, so there is nothing to deflate: SR₀ = 0 (Φ⁻¹(1 − 1/N) is −∞ at N = 1)."
        elif not why:
            why = (f"the benchmark should be SR₀ = {sr0:.3f} (annualised), the expected best of {n_trials} skill-less "
                   "trials with the sampling variance 1/(n − 1) per bar.")
        return Feedback(False, f"for {label} (n = {len(r)} bars, {periods:g} a year) the DSR is {want:.4f}, "
                               f"you returned {float(got):.4f}: {why}")
    return Feedback(True, "the Sharpe ratio is judged against the best that luck gives N skill-less trials, with "
                          "its uncertainty widened by skewness and fat tails — the same number as "
                          "stats.deflated_sharpe_ratio with the null variance.")
