"""Exercise checks for chapter 9 (09_long_context): how long must a context be, was the echo learned, is a gain real?"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from flashtrade_lib.exercises import Feedback, register

_CASES = [(16, 1), (16, 4), (96, 24), (1008, 1), (1008, 24), (50, 50)]


def _expected_lookback(lag: int, horizon: int) -> int:
    # the h-bar label of bar t is r_{t+1} + ... + r_{t+h}; its echo part is
    # c·(r_{t+1-L} + ... + r_{t+h-L}); a window of `lookback` bars ending at t holds
    # bars t-lookback+1 .. t, so it holds the oldest term r_{t+1-L} iff lookback >= L.
    return lag


@register(
    "ch09-lookback-needed",
    title="How many bars must the lookback cover to see the planted lag at horizon h?",
)
def _grade_lookback(answer: Callable[[int, int], int]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function lookback_needed(lag, horizon), got {type(answer).__name__}.")
    for lag, h in _CASES:
        got, want = answer(lag, h), _expected_lookback(lag, h)
        if got == want:
            continue
        if got == want - 1:
            hint = ("Off by one: a window of `lookback` bars ending at the decision bar t holds "
                    "bars t-lookback+1 .. t, and the oldest echoed return is r_{t+1-L}.")
        elif got == lag + h or got == lag + h - 1:
            hint = ("The label reaches h bars into the future, but the echo of r_{t+k} is r_{t+k-L}: "
                    "the newest needed bar is t+h-L (already in the past), the oldest t+1-L.")
        elif got == lag - h + 1:
            hint = ("That lookback sees only the newest echoed return r_{t+h-L}; the oracle needs "
                    "all h of them, down to r_{t+1-L}.")
        else:
            hint = "Write out which bars the h-bar label's echo part uses, then which bars the window holds."
        return Feedback(False, f"for lag={lag}, horizon={h} you said {got}, the answer is {want}. {hint}")
    return Feedback(True, "the window must reach back to r_{t+1-L}: lookback >= L, whatever the "
                          "horizon (as long as h <= L, otherwise no forecast made at t can use the echo fully).")


def _fold_interval(diffs: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """Mean of the fold means and the half-width of its 95 % t interval (folds − 1 df)."""
    from scipy.stats import t as student_t

    d, g = np.asarray(diffs, dtype=float), np.asarray(folds)
    means = np.array([d[g == k].mean() for k in np.unique(g)])
    half = float(student_t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means)))
    return float(means.mean()), half


def _expected_significant(diffs: np.ndarray, folds: np.ndarray) -> bool:
    mean, half = _fold_interval(diffs, folds)
    return bool(abs(mean) > half)


_FOLDS = np.array([0, 0, 1, 1, 2, 2])  # 3 folds × 2 seeds: runs of one fold share their test bars
_DIFFS = {
    "large, consistent gain": np.array([0.30, 0.28, 0.35, 0.31, 0.29, 0.33]),
    "positive mean, noisy": np.array([0.04, -0.03, 0.06, -0.02, 0.05, -0.04]),
    "small but very consistent gain": np.array([0.011, 0.012, 0.010, 0.011, 0.012, 0.010]),
    "seeds agree within folds that disagree": np.array([0.05, 0.05, -0.01, -0.01, 0.04, 0.04]),
    "one lucky run": np.array([0.20, -0.01, 0.00, -0.02, 0.01, -0.01]),
    "consistent loss": np.array([-0.05, -0.06, -0.04, -0.05, -0.06, -0.05]),
}


@register(
    "ch09-significant",
    title="Is this skill difference significant, counting folds (not runs) as the independent draws?",
    hints=("Runs of one fold share their test bars: average the seeds of each fold first.",
           "With G fold means, use Student's t with G − 1 degrees of freedom, not 1.96.",
           "scipy.stats.t.ppf(0.975, G - 1) gives the quantile."),
)
def _grade_significant(answer: Callable[[np.ndarray, np.ndarray], bool]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function is_significant(diffs, folds), got {type(answer).__name__}.")
    for name, d in _DIFFS.items():
        got, want = bool(answer(d.copy(), _FOLDS.copy())), _expected_significant(d, _FOLDS)
        if got != want:
            mean, half = _fold_interval(d, _FOLDS)
            return Feedback(False, (
                f"case '{name}' (differences {np.round(d, 3).tolist()}, folds {_FOLDS.tolist()}): you said {got}, "
                f"but the 95 % interval over the fold means is {mean:+.3f} ± {half:.3f}, which "
                f"{'excludes' if want else 'contains'} 0. The runs of one fold are not independent: average "
                "them per fold, then use t with folds − 1 degrees of freedom."))
    return Feedback(True, "a difference counts only when its interval over the *independent* units (folds) "
                          "excludes zero — and a consistent *loss* is significant too.")


_VERDICTS = ("unreachable", "not learned", "learned")


def _expected_diagnosis(lookback: int, lag: int, model_ic: float, oracle_ic: float) -> str:
    if lookback < lag:  # the oldest echoed return r_{t+1-L} lies outside the window
        return "unreachable"
    return "learned" if model_ic >= 0.5 * oracle_ic else "not learned"


# (lookback, lag, model IC, oracle IC): short windows with noise ICs, the N = L boundary,
# long windows that did and did not learn, and oracles that make a fixed IC threshold wrong
_RUNS = [
    (4, 16, 0.02, 0.50),
    (15, 16, 0.04, 0.50),
    (16, 16, 0.47, 0.50),
    (64, 16, 0.20, 0.50),
    (24, 48, -0.01, 0.50),
    (48, 48, 0.40, 0.50),
    (96, 48, 0.02, 0.50),
    (96, 48, 0.08, 0.12),
    (1024, 1008, 0.15, 0.60),
]


@register(
    "ch09-diagnose",
    title="Unreachable, not learned or learned: diagnose a lookback from the oracle",
)
def _grade_diagnose(answer: Callable[[int, int, float, float], str]) -> Feedback:
    if not callable(answer):
        return Feedback(False, "expected a function diagnose(lookback, lag, model_ic, oracle_ic), "
                               f"got {type(answer).__name__}.")
    for run in _RUNS:
        lookback, lag, model_ic, oracle_ic = run
        got, want = answer(*run), _expected_diagnosis(*run)
        if got == want:
            continue
        case = (f"lookback {lookback}, lag {lag}, model IC {model_ic:+.2f}, oracle IC {oracle_ic:.2f}: "
                f"you said {got!r}, the answer is {want!r}.")
        if got not in _VERDICTS:
            hint = f"Return one of the strings {', '.join(map(repr, _VERDICTS))}."
        elif want == "unreachable" or got == "unreachable":
            hint = ("Decide reachability from the geometry alone, before looking at any IC: the window "
                    "holds the echoed return r_{t+1-L} exactly when lookback >= lag (the first exercise). "
                    "Below that the IC is noise, whatever its value; at or above it a small IC means the "
                    "model did not learn the echo with this budget, not that it could not see it.")
        else:
            hint = ("Judge the IC against the oracle's, not against a fixed number: the oracle says how "
                    "much skill there is to find, and 'learned' means at least half of it.")
        return Feedback(False, f"{case} {hint}")
    return Feedback(True, "a window that covers the lag makes the echo reachable; only the comparison "
                          "with the oracle says whether the model learned it.")


# --------------------------------------------------------------------- SPA with and without the losers

_SPA_ROWS, _SPA_COLUMNS = ("all", "without losers"), ("consistent", "upper")


def _spa_case() -> tuple[np.ndarray, pd.DataFrame]:
    """A losing benchmark, one good candidate, one middling, and eight clear losers (per-bar gains)."""
    rng = np.random.default_rng(10)
    n = 500
    bench = rng.normal(0.0, 1.0, n)
    bench += -0.03 - bench.mean()  # the benchmark loses money too: a loser is judged against it, not against 0
    gains = {"good": bench + rng.normal(0.07, 0.6, n), "middling": bench + rng.normal(0.03, 0.6, n)}
    gains.update({f"loser {i}": bench + rng.normal(-0.15, 0.6, n) for i in range(8)})
    return bench, pd.DataFrame(gains)


def _spa_table(bench: np.ndarray, candidates: pd.DataFrame, losers: list[str]) -> pd.DataFrame:
    from flashtrade_lib.trading.stats import spa_test

    rows = {}
    for row, cand in zip(_SPA_ROWS, (candidates, candidates.drop(columns=losers)), strict=True):
        res = spa_test(bench, cand)
        rows[row] = {"consistent": res.p_value, "upper": res.p_upper}
    return pd.DataFrame.from_dict(rows, orient="index")


def _losers(bench: np.ndarray, candidates: pd.DataFrame) -> list[str]:
    advantage = candidates.sub(bench, axis=0).mean()
    return [str(c) for c in candidates.columns if advantage[c] < 0]


@register(
    "ch09-spa-losers",
    title="SPA with and without the losing strategies",
    hints=(
        "A loser is a candidate whose mean advantage over the benchmark, mean(candidate − benchmark) per bar, "
        "is negative — not one whose own mean is negative.",
        "`stats.spa_test(benchmark, candidates)` with its defaults gives `.p_value` (Hansen's consistent p-value) "
        "and `.p_upper` (the Reality Check's, which treats every candidate as if it could be as good as the "
        "benchmark).",
        "Which p-value answers 'did any of the strategies I tried beat the benchmark'? The one whose null "
        "includes every strategy tried.",
    ),
)
def _grade_spa_losers(answer: Callable[[np.ndarray, pd.DataFrame], tuple]) -> Feedback:
    if not callable(answer):
        return Feedback(False, f"expected a function spa_with_and_without_losers(benchmark, candidates) -> "
                               f"(table, reported), got {type(answer).__name__}")
    bench, candidates = _spa_case()
    losers = _losers(bench, candidates)
    want = _spa_table(bench, candidates, losers)
    got = answer(bench.copy(), candidates.copy())
    if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], pd.DataFrame)):
        return Feedback(False, "return a pair (table, reported): a DataFrame of p-values and the name of the row "
                               f"you report; got {type(got).__name__}")
    table, reported = got
    if list(table.index) != list(_SPA_ROWS) or [c for c in _SPA_COLUMNS if c not in table.columns]:
        return Feedback(False, f"the table needs the rows {list(_SPA_ROWS)} and the columns {list(_SPA_COLUMNS)}; "
                               f"got rows {list(table.index)}, columns {list(table.columns)}.")
    case = f"a benchmark, 2 candidates that beat it on average and {len(losers)} that lose to it (500 bars)"
    for row in _SPA_ROWS:
        for column in _SPA_COLUMNS:
            value, expected = float(table.loc[row, column]), float(want.loc[row, column])
            if math.isclose(value, expected, abs_tol=1e-12):
                continue
            where = f"{case}: row '{row}', column '{column}' is {value:.3f}, the answer is {expected:.3f}"
            other = "upper" if column == "consistent" else "consistent"
            if row == "all" and math.isclose(value, float(want.loc["without losers", column]), abs_tol=1e-12):
                why = ("That is the p-value without the losers: the row 'all' tests every candidate tried, "
                       "the losers included.")
            elif math.isclose(value, float(want.loc[row, other]), abs_tol=1e-12):
                why = ("You swapped the columns: `consistent` is spa_test's .p_value (Hansen's), `upper` its "
                       ".p_upper (the Reality Check's).")
            elif row == "without losers":
                own = [str(c) for c in candidates.columns if candidates[c].mean() < 0]
                why = ("A loser is a candidate whose mean advantage over the benchmark is negative: here that is "
                       f"{len(losers)} candidates."
                       + (f" A negative mean of its own ({len(own)} here) is not the test: the benchmark loses "
                          "money too." if own != losers else ""))
            else:
                why = "Call stats.spa_test(benchmark, candidates) with its defaults (1000 resamples, seed 0)."
            return Feedback(False, f"{where}. {why}")
    if reported != "all":
        return Feedback(False, f"you report {reported!r}. Dropping the losers after seeing how they did is a "
                               "selection the test does not know about: the search that found the good candidate "
                               "also tried the losers, and SPA's null must include every strategy tried. "
                               "Report the row 'all' (Hansen's consistent p-value, which the losers barely move).")
    return Feedback(True, f"with the {len(losers)} losers the upper (Reality Check) p-value is "
                          f"{want.loc['all', 'upper']:.3f}, without them {want.loc['without losers', 'upper']:.3f}; "
                          f"Hansen's consistent one is {want.loc['all', 'consistent']:.3f} and "
                          f"{want.loc['without losers', 'consistent']:.3f}. The consistent p-value discounts "
                          "candidates that are clearly worse, so keeping every strategy tried costs little — "
                          "and dropping them after the fact is the data snooping SPA exists to count.")
