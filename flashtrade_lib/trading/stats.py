"""Statistical tests behind every verdict the book prints: intervals, paired tests, multiple trials.

Why a module: "beats", "helps" and "significant" are claims about noisy, dependent data.
Market returns cluster in volatility, overlapping labels share bars, and a book that tries
many strategies finds a good-looking one by luck. So every verdict here comes from a test
that respects the dependence (block bootstrap with a data-chosen block, HAC errors, fold
clusters) and counts the trials (SPA, Model Confidence Set, Deflated Sharpe Ratio, PBO).

Well-kept libraries do the heavy lifting: ``arch.bootstrap`` (stationary bootstrap,
Politis–White block length, Hansen's SPA, the MCS) and ``statsmodels`` (Newey–West
errors, ACF). Written here are only what they lack: the Probabilistic and Deflated Sharpe
Ratios (Bailey & López de Prado 2012, 2014), the probability of backtest overfitting by
CSCV (Bailey, Borwein, López de Prado & Zhu 2017), a heteroskedasticity-robust ACF band,
clustered t intervals, and :func:`verdict`, which turns a result into the sentence a
chapter prints — so the words are chosen by code, never typed.

Conventions: Sharpe ratios given to or returned by this module are **annualised** with
``periods`` bars per year (``periods=1`` means per bar); p-values are two-sided unless a
result says otherwise (SPA, PSR and DSR are one-sided by construction).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as _sps

from flashtrade_lib.trading import metrics as _metrics

__all__ = [
    "TestResult",
    "SpaResult",
    "McsResult",
    "PboResult",
    "AcfBand",
    "Verdict",
    "block_length",
    "block_bootstrap_ci",
    "paired_difference_test",
    "clustered_mean_ci",
    "clustered_summary",
    "effective_sample_size",
    "hac_mean_test",
    "robust_acf_band",
    "spa_test",
    "model_confidence_set",
    "psr_from_moments",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "deflated_sharpe_ratio",
    "pbo_cscv",
    "verdict",
    "format_p",
    "minimum_detectable_difference",
    "sharpe_null_variance",
    "effective_trials",
    "deflate_selection",
    "traded_verdict",
]

EULER_GAMMA = 0.5772156649015329
#: a series whose standard deviation is at most this × its largest |value| is constant: what is
#: left is floating-point rounding (0.1 repeated has sd 1.7e-18, not 0), never information
FLAT_RTOL = 1e-10
MAX_REPS = 1_000_000  #: bootstrap resamples at most (each one is a pass over the data)
PBO_MAX_BYTES = 2 * 2**30  #: working memory :func:`pbo_cscv` may allocate; more is refused up front


def format_p(p: float, reps: int | None = None, *, two_sided: bool = True) -> str:
    """``p = 0.012`` / ``p < 0.001``; a bootstrap p-value at its floor is printed ``p ≤ floor``.

    Why: ``B`` resamples cannot give a p-value below ``1/(B+1)`` (``2/(B+1)`` two-sided);
    a p-value there says only "no resample was as extreme", so it is printed as a bound
    with its ``B``, never as a value ("p = 0.002" from 1000 resamples is the floor).
    """
    if not np.isfinite(p):
        return "p undefined"
    if reps:
        floor = (2.0 if two_sided else 1.0) / (reps + 1)
        if p <= floor * (1 + 1e-9):
            return f"p ≤ {floor:.2g} (the floor of {reps} resamples)"
    else:
        floor = 0.001
        if p < floor:
            return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


@dataclass(frozen=True)
class TestResult:
    """One statistical answer: estimate, interval, p-value, and how they were obtained."""

    __test__ = False  # not a pytest test class, despite its name

    name: str  #: what was estimated, e.g. "Sharpe(ridge) − Sharpe(momentum)"
    estimate: float
    low: float
    high: float
    level: float  #: confidence level of [low, high]
    p_value: float  #: against the null stated by ``null``
    method: str  #: test and its settings (bootstrap, block length, resamples, lags, ...)
    n: int  #: observations used (bars, runs or clusters, see ``method``)
    n_trials: int = 1  #: strategies / configurations tried that this answer is one of
    null: str = "= 0"
    block: float | None = None  #: bootstrap mean block length, in observations
    reps: int | None = None  #: bootstrap resamples
    alternative: str = "two-sided"  #: or "greater": the p-value is one-sided, for a positive claim
    trials_adjusted: bool = False  #: the p-value already accounts for the ``n_trials`` (SPA, DSR)
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)  #: bootstrap statistics, if any

    def at_level(self, level: float) -> TestResult:
        """The same result with its interval at another ``level`` (from the bootstrap draws).

        Why: a verdict judged at a Bonferroni-adjusted level must quote the interval of that
        level, not the unadjusted 95 % one. Without draws (a t interval) it is refused.
        """
        level = _check_level(level)
        if self.draws is None:
            raise ValueError(f"{self.name}: no bootstrap draws kept; its interval exists at level {self.level} only")
        d = self.draws[np.isfinite(self.draws)]
        low, high = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
        return dataclasses.replace(self, low=float(low), high=float(high), level=level)

    @property
    def significant(self) -> bool:
        """At the 5 % level (use :func:`verdict` for another level and for the words)."""
        return bool(self.p_value < 0.05)

    def evidence(self) -> str:
        """The parenthesis a verdict quotes: estimate, interval, p-value, method, trials."""
        pct = f"{100 * self.level:.4g}"
        how = "in the test" if self.trials_adjusted else "Bonferroni"
        trials = f"; {self.n_trials} trials counted ({how})" if self.n_trials > 1 else ""
        interval = f", {pct} % CI [{self.low:+.3g}, {self.high:+.3g}]" if np.isfinite(self.low) else ""
        return (
            f"{self.name} {self.estimate:+.3g}{interval}, "
            f"{format_p(self.p_value, self.reps, two_sided=self.alternative == 'two-sided')} "
            f"for H0 {self.null}; {self.method}; n = {self.n}{trials}"
        )

    def __str__(self) -> str:
        return self.evidence()

    def _repr_markdown_(self) -> str:
        return self.evidence()


def _as_1d(x: np.ndarray | pd.Series | Sequence[float], what: str, min_n: int = 3) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be one series (1-D), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} has {int((~np.isfinite(a)).sum())} NaN/inf values; drop or fill them first")
    if a.size < min_n:
        raise ValueError(f"{what} needs at least {min_n} values, got {a.size}")
    return a


def _check_level(level: float) -> float:
    if not _real(level) or not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}")
    return float(level)


def _real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _whole(value: object, what: str, low: int, high: int | None = None, hint: str = "") -> int:
    """An integer setting in ``[low, high]``, refused before any work otherwise."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f"between {low:,} and {high:,}" if high is not None else f">= {low:,}"
        raise ValueError(f"{what} must be a whole number {bound}, got {value!r}{hint}")
    return int(value)


def _check_settings(*, n: int | None = None, block: float | None = None, periods: float = 1.0,
                    reps: int = 1000, n_trials: int = 1) -> None:
    """The settings every test shares, checked at its entry: a bad one is a clear error, never a point interval.

    A mean block below 1 bar is meaningless (0 divides by zero); one above half the sample
    leaves a bootstrap with almost one distinct resample, so the interval collapses to a
    point and any p-value is an artefact.
    """
    if not _real(periods) or periods <= 0:
        raise ValueError(f"periods (bars per year, or 1 per bar) must be a finite number > 0, got {periods!r}")
    _whole(reps, "reps (bootstrap resamples)", 99, MAX_REPS)
    _whole(n_trials, "n_trials (strategies or settings tried)", 1)
    if block is not None:
        top = n / 2 if n is not None else float("inf")
        if not _real(block) or not 1 <= block <= top:
            raise ValueError(
                f"block (mean block length in bars) must be a finite number between 1 and half the "
                f"sample ({top:g} bars), got {block!r}; leave it unset to choose it from the data"
            )


def _flat(x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Which series (columns) are constant up to rounding: sd <= ``FLAT_RTOL`` × largest |value|."""
    x = np.asarray(x, dtype=np.float64)
    return np.std(x, axis=axis) <= FLAT_RTOL * np.max(np.abs(x), axis=axis)


def _untestable(name: str, estimate: float, why: str, n: int, level: float, n_trials: int = 1,
                **extra: object) -> TestResult:
    """The honest answer for a degenerate input: no interval, and p = 1 when the statistic
    equals the null exactly, else undefined (NaN) — :func:`verdict` claims nothing from it.
    A statistic that is itself undefined (the Sharpe ratio of a constant non-zero series) is refused."""
    if not np.isfinite(estimate):
        raise ValueError(f"{name} is undefined: {why}; there is nothing to test")
    return TestResult(
        name=name, estimate=float(estimate), low=float("nan"), high=float("nan"), level=level,
        p_value=1.0 if estimate == 0 else float("nan"), method=f"not tested: {why}", n=int(n),
        n_trials=int(n_trials), **extra,
    )


def block_length(x: np.ndarray | pd.Series | pd.DataFrame) -> float:
    """Mean block length for a stationary bootstrap, chosen from the data (Politis & White 2004).

    Why data-chosen: a block too short breaks the volatility clustering and makes every
    interval too narrow; one too long wastes the sample. ``arch.bootstrap.optimal_block_length``
    (with Patton, Politis & White's 2009 correction) estimates it per column; we take the
    largest, never below 1 bar nor above a third of the sample.
    """
    from arch.bootstrap import optimal_block_length

    a = np.asarray(x, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    if a.shape[0] < 10:
        raise ValueError(f"need at least 10 observations to choose a block length, got {a.shape[0]}")
    a = a[:, ~_flat(a)]
    if a.shape[1] == 0:
        return 1.0  # a constant series has no dependence to keep
    with np.errstate(divide="ignore", invalid="ignore"):
        b = float(np.max(optimal_block_length(a)["stationary"].to_numpy()))
    if not np.isfinite(b):
        raise ValueError(
            "the Politis–White estimate of the block length is undefined for this data (a series "
            "with almost no variation?); pass block=... explicitly"
        )
    return float(min(max(b, 1.0), a.shape[0] / 3))


def _bootstrap(data: np.ndarray, func: Callable[[np.ndarray], float], block: float, reps: int, seed: int) -> np.ndarray:
    """``reps`` values of ``func`` on stationary-bootstrap resamples of the rows of ``data``."""
    from arch.bootstrap import StationaryBootstrap

    if reps < 99:
        raise ValueError(f"reps must be at least 99 bootstrap resamples, got {reps}")
    bs = StationaryBootstrap(block, data, seed=seed)
    return bs.apply(lambda d: np.array([func(d)]), reps)[:, 0]


def _interval_and_p(est: float, draws: np.ndarray, level: float, null_value: float = 0.0) -> tuple[float, float, float]:
    """Percentile interval and the p-value that inverts it (H0: statistic = ``null_value``).

    The p-value is twice the share of bootstrap statistics beyond the null value: the
    largest level at which the percentile interval still excludes it, so interval and
    p-value always agree on the verdict.
    """
    ok = np.isfinite(draws)
    if ok.mean() < 0.99:
        raise ValueError(
            f"{int((~ok).sum())} of {draws.size} bootstrap statistics are undefined (e.g. a constant "
            "resample); the statistic is not stable on this sample — use more data"
        )
    d = draws[ok]
    alpha = (1 - level) / 2
    low, high = np.quantile(d, [alpha, 1 - alpha])
    tail = min(np.sum(d <= null_value), np.sum(d >= null_value))
    p = 2 * (1 + tail) / (d.size + 1)
    return float(low), float(high), float(min(p, 1.0))


Statistic = Literal["mean", "sharpe", "ic"] | Callable[..., float]


def _stat_fn(statistic: Statistic, periods: float) -> Callable[..., float]:
    if callable(statistic):
        return statistic
    if statistic == "mean":
        return lambda x, y=None: float(x.mean())
    if statistic == "sharpe":
        return lambda x, y=None: _metrics.sharpe(x, periods)
    if statistic == "ic":
        return _metrics.information_coefficient
    raise ValueError(f"unknown statistic {statistic!r}; use 'mean', 'sharpe', 'ic' or a function")


def block_bootstrap_ci(
    x: np.ndarray | pd.Series,
    statistic: Statistic = "mean",
    *,
    outcome: np.ndarray | pd.Series | None = None,
    periods: float = 1.0,
    level: float = 0.95,
    reps: int = 1000,
    block: float | None = None,
    seed: int = 0,
    name: str | None = None,
    n_trials: int = 1,
) -> TestResult:
    """Interval and p-value (H0: statistic = 0) of a statistic of one dependent series.

    Stationary bootstrap (Politis & Romano 1994) with a data-chosen block
    (:func:`block_length`), percentile interval. ``statistic`` is ``"mean"``,
    ``"sharpe"`` (annualised with ``periods``), ``"ic"`` (correlation with ``outcome``)
    or a function ``f(x)`` / ``f(x, outcome)``. A 2-D ``x`` (bars × columns) is resampled
    by rows for a function of all its columns, e.g. a ratio of two means.
    """
    level = _check_level(level)
    _check_settings(n=np.shape(x)[0] if np.ndim(x) else None, block=block, periods=periods, reps=reps,
                    n_trials=n_trials)
    fn = _stat_fn(statistic, periods)
    if np.ndim(x) == 2:
        if not callable(statistic):
            raise ValueError("a 2-D x (bars × columns) needs a function of the rows as its statistic")
        data = np.asarray(x, dtype=np.float64)
        if not np.isfinite(data).all() or data.shape[0] < 10:
            raise ValueError(f"x must be finite with at least 10 rows, got shape {data.shape}")
        return _bootstrap_result(data, fn, float(fn(data)), data, level, reps, block, seed,
                                 name or getattr(statistic, "__name__", "statistic"), n_trials)
    a = _as_1d(x, "x", 10)
    if outcome is not None or statistic == "ic":
        if outcome is None:
            raise ValueError("statistic='ic' needs the outcome the forecast predicts (outcome=...)")
        y = _as_1d(outcome, "outcome", 10)
        if y.size != a.size:
            raise ValueError(f"x and outcome must have the same length, got {a.size} and {y.size}")
        data = np.column_stack([a, y])
        score = _standardise(a) * _standardise(y)
        est = fn(a, y)

        def func(d: np.ndarray) -> float:
            return fn(d[:, 0], d[:, 1])
    else:
        data = a[:, None]
        score = _sharpe_influence(a) if statistic == "sharpe" else a
        est = fn(a)

        def func(d: np.ndarray) -> float:
            return fn(d[:, 0])

    label = name or (statistic if isinstance(statistic, str) else getattr(statistic, "__name__", "statistic"))
    if not callable(statistic) and _flat(data).any():
        what = "x" if _flat(a) else "outcome"
        return _untestable(label, est, f"{what} is constant (sd <= {FLAT_RTOL:g} × its size): "
                           "there is no variation to resample", a.size, level, n_trials)
    return _bootstrap_result(data, func, float(est), score, level, reps, block, seed, label, n_trials)


def _bootstrap_result(
    data: np.ndarray, func: Callable[[np.ndarray], float], est: float, score: np.ndarray, level: float,
    reps: int, block: float | None, seed: int, name: str, n_trials: int, kind: str = "stationary bootstrap",
) -> TestResult:
    b = float(block) if block is not None else block_length(score)
    draws = _bootstrap(data, func, b, reps, seed)
    low, high, p = _interval_and_p(est, draws, level)
    return TestResult(
        name=name, estimate=est, low=low, high=high, level=level, p_value=p,
        method=f"{kind}, mean block {b:.1f} bars ({'given' if block else 'data-chosen'}), {reps} resamples",
        n=int(data.shape[0]), n_trials=int(n_trials), block=b, reps=int(reps), draws=draws,
    )


def _sharpe_influence(x: np.ndarray) -> np.ndarray:
    """Per-bar influence of each return on the Sharpe ratio, ``z − SR/2 · (z² − 1)``.

    The block length is chosen on this series because the Sharpe ratio's sampling error is,
    to first order, its mean: the dependence that matters is this series' dependence.
    """
    sd = x.std()
    if sd == 0:
        return x - x.mean()
    z = (x - x.mean()) / sd
    return z - x.mean() / sd / 2 * (z**2 - 1)


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


def paired_difference_test(
    a: np.ndarray | pd.Series,
    b: np.ndarray | pd.Series,
    statistic: Statistic = "sharpe",
    *,
    outcome: np.ndarray | pd.Series | None = None,
    periods: float = 1.0,
    names: tuple[str, str] = ("a", "b"),
    level: float = 0.95,
    reps: int = 1000,
    block: float | None = None,
    seed: int = 0,
    n_trials: int = 1,
) -> TestResult:
    """Is ``statistic(a) − statistic(b)`` different from 0, on the same bars?

    Why paired: two strategies traded on the same bars share the market's noise; resampling
    the *rows* jointly keeps that shared part out of the difference, so the test is far
    sharper than comparing two separate intervals. ``a``/``b`` are return series
    (``"sharpe"``, ``"mean"``) or forecasts of one ``outcome`` (``"ic"``), or anything a
    function ``f(x)`` / ``f(x, outcome)`` scores. The block length is chosen from the
    series that drives the difference (the Sharpe ratios' influence series, the forecast ×
    outcome products, or ``a − b``).
    """
    level = _check_level(level)
    xa, xb = _as_1d(a, names[0], 10), _as_1d(b, names[1], 10)
    _check_settings(n=xa.size, block=block, periods=periods, reps=reps, n_trials=n_trials)
    if xa.size != xb.size:
        raise ValueError(f"paired series must cover the same bars: {names[0]} has {xa.size}, {names[1]} {xb.size}")
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ValueError(f"{names[0]} and {names[1]} have different indexes; align them on the same bars first")
    fn = _stat_fn(statistic, periods)
    if outcome is not None or statistic == "ic":
        if outcome is None:
            raise ValueError("statistic='ic' needs the outcome both forecasts predict (outcome=...)")
        y = _as_1d(outcome, "outcome", 10)
        if y.size != xa.size:
            raise ValueError(f"forecasts and outcome must have the same length, got {xa.size} and {y.size}")
        data = np.column_stack([xa, xb, y])
        zy = _standardise(y)
        score = _standardise(xa) * zy - _standardise(xb) * zy
        est = fn(xa, y) - fn(xb, y)

        def func(d: np.ndarray) -> float:
            return fn(d[:, 0], d[:, 2]) - fn(d[:, 1], d[:, 2])
    else:
        data = np.column_stack([xa, xb])
        score = _sharpe_influence(xa) - _sharpe_influence(xb) if statistic == "sharpe" else xa - xb
        est = fn(xa) - fn(xb)

        def func(d: np.ndarray) -> float:
            return fn(d[:, 0]) - fn(d[:, 1])

    what = statistic if isinstance(statistic, str) else getattr(statistic, "__name__", "statistic")
    label = {"sharpe": "Sharpe", "ic": "IC", "mean": "mean"}.get(what, what)
    if not callable(statistic) and (_flat(score) or not np.isfinite(est)):
        why = ("are identical on every bar" if np.array_equal(xa, xb) else "differ by a constant on every bar"
               if _flat(score) else "give an undefined statistic (a constant series)")
        return _untestable(f"{label}({names[0]}) − {label}({names[1]})", est,
                           f"the paired series {why}: there is no variation to resample",
                           xa.size, level, n_trials)
    return _bootstrap_result(data, func, float(est), score, level, reps, block, seed,
                             f"{label}({names[0]}) − {label}({names[1]})", n_trials,
                             kind="paired stationary bootstrap")


def clustered_mean_ci(
    values: np.ndarray | pd.Series | Sequence[float],
    clusters: np.ndarray | pd.Series | Sequence[object] | None = None,
    *,
    level: float = 0.95,
    name: str = "mean",
    n_trials: int = 1,
    correlation: bool = False,
) -> TestResult:
    """Mean with a t interval over **clusters**: runs that share test bars are one cluster.

    Why: six runs (3 folds × 2 seeds) scored on the same three test periods are not six
    independent draws — their errors move together within a fold. Averaging within each
    cluster and using Student's t with ``G − 1`` degrees of freedom over the ``G`` cluster
    means is the honest small-sample interval (a normal z = 1.96 over all runs is too narrow).
    Without ``clusters`` every value is its own cluster (a plain t interval).
    ``correlation=True`` (for ICs) builds the interval on Fisher's ``z = atanh(r)`` of the
    cluster means and maps it back with ``tanh``, so it stays inside [−1, 1] however few
    clusters there are (a t interval on raw correlations over 2 folds can reach ±1.5).
    """
    level = _check_level(level)
    _check_settings(n_trials=n_trials)
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(v).all():
        raise ValueError("values have NaN/inf; drop the failed runs explicitly first")
    g = np.arange(v.size) if clusters is None else np.asarray(clusters).ravel()
    if g.size != v.size:
        raise ValueError(f"values and clusters must have the same length, got {v.size} and {g.size}")
    means = pd.Series(v).groupby(pd.Series(g)).mean().to_numpy()
    k = means.size
    if k < 2:
        raise ValueError(
            f"need at least 2 clusters for an interval, got {k}; with one shared test period the "
            "spread between runs says nothing about sampling noise — use a bootstrap on its bars"
        )
    est = float(means.mean())
    what = f"{k} clusters" if clusters is not None else f"{k} independent values"
    if _flat(means):
        return _untestable(name, est, f"the {what} are all equal: their spread cannot measure noise",
                           k, level, n_trials)
    if correlation:
        if (np.abs(means) > 1).any():
            raise ValueError("correlation=True needs values in [-1, 1] (ICs); got a cluster mean outside")
        means = np.arctanh(np.clip(means, -0.999999, 0.999999))
    centre = float(means.mean())
    se = float(means.std(ddof=1) / math.sqrt(k))
    tq = float(_sps.t.ppf(0.5 + level / 2, k - 1))
    p = float(2 * _sps.t.sf(abs(centre) / se, k - 1))
    low, high = centre - tq * se, centre + tq * se
    if correlation:
        low, high = math.tanh(low), math.tanh(high)
    return TestResult(
        name=name, estimate=est, low=low, high=high, level=level, p_value=p,
        method=(f"t interval over {what} (t with {k - 1} df; {v.size} runs"
                + ("; on Fisher's z, mapped back)" if correlation else ")")),
        n=int(k), n_trials=int(n_trials),
    )


def minimum_detectable_difference(result: TestResult, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true effect this test finds with probability ``power`` at level ``alpha``.

    Why: "no difference" means little unless the test could have seen one. The standard
    error is read from the width of a bootstrap interval over many bars (close to normal),
    and the effect is ``(z_{1−α/2} + z_{power}) · se`` (two-sided). A t interval over two or
    three folds is far from normal; it is refused — use a bar-level bootstrap instead.
    """
    if result.reps is None:
        raise ValueError(f"{result.name}: the minimum detectable difference needs a bar-level bootstrap result "
                         "(paired_difference_test / block_bootstrap_ci), not a t interval over a few folds")
    if not (0 < power < 1 and 0 < alpha < 1):
        raise ValueError(f"power and alpha must be in (0, 1), got {power}, {alpha}")
    se = (result.high - result.low) / (2 * float(_sps.norm.ppf(0.5 + result.level / 2)))
    return float((_sps.norm.ppf(1 - alpha / 2) + _sps.norm.ppf(power)) * se)


def clustered_summary(
    results: pd.DataFrame, metric: str, *, by: str, cluster: str, level: float = 0.95
) -> pd.DataFrame:
    """:func:`clustered_mean_ci` for each group of a results table (e.g. per lookback, folds as clusters).

    One row per value of ``by``: mean, interval, p-value (H0: mean = 0), clusters and runs.
    The intervals are not adjusted for the number of groups: compare groups with a paired
    test or :func:`spa_test`, not by overlapping intervals.
    """
    missing = [c for c in (metric, by, cluster) if c not in results]
    if missing:
        raise ValueError(f"results has no column(s) {missing}; columns: {list(results.columns)}")
    rows = {}
    for key, group in results.groupby(by, sort=True):
        res = clustered_mean_ci(group[metric], group[cluster], level=level, name=metric)
        rows[key] = {"mean": res.estimate, "ci_low": res.low, "ci_high": res.high, "p_value": res.p_value,
                     "clusters": res.n, "runs": len(group)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)


def _newey_west_lags(n: int) -> int:
    """Newey & West's (1994) rule of thumb ``floor(4 (n/100)^(2/9))``."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def effective_sample_size(x: np.ndarray | pd.Series, *, overlap: int | None = None) -> float:
    """How many independent observations a dependent series is worth for its mean.

    ``n · γ₀ / LRV``, the sample variance over the long-run variance. Labels that overlap
    by ``overlap`` bars (an h-bar forward return sampled every bar, or h windows sharing one
    label) are correlated at lags ``< overlap`` by construction: the long-run variance then
    sums those lags with equal weight (Hansen & Hodrick 1980) — about ``n / overlap`` for
    i.i.d. increments. Without ``overlap``, Bartlett weights over Newey–West's lag count.
    Never more than ``n``: we do not claim more independence than there are values.
    """
    from statsmodels.tsa.stattools import acovf

    a = _as_1d(x, "x", 10)
    n = a.size
    if _flat(a):
        raise ValueError("x is constant: its effective sample size is undefined")
    if overlap is not None:
        _whole(overlap, "overlap (bars two labels share)", 1, n - 1)
        lags = int(overlap) - 1
        weights = np.ones(lags)
    else:
        lags = _newey_west_lags(n)
        weights = 1 - np.arange(1, lags + 1) / (lags + 1)
    lags = min(lags, n - 1)
    g = acovf(a, adjusted=False, fft=True, nlag=lags)
    if g[0] == 0:
        raise ValueError("x is constant: its effective sample size is undefined")
    lrv = g[0] + 2 * float(np.dot(weights[:lags], g[1 : lags + 1]))
    if lrv <= 0:
        return float(n)
    return float(min(n, n * g[0] / lrv))


def hac_mean_test(
    x: np.ndarray | pd.Series,
    *,
    max_lag: int | None = None,
    level: float = 0.95,
    name: str = "mean",
    n_trials: int = 1,
) -> TestResult:
    """Mean of a serially correlated series with Newey–West (HAC) standard error.

    Why: overlapping labels and clustered volatility make the i.i.d. ``sd/√n`` too small.
    statsmodels' OLS on a constant with ``cov_type="HAC"`` gives the Bartlett-kernel
    long-run variance; ``max_lag`` defaults to Newey & West's rule of thumb (pass the
    label overlap − 1 at least, when labels overlap).
    """
    import statsmodels.api as sm

    level = _check_level(level)
    _check_settings(n_trials=n_trials)
    a = _as_1d(x, "x", 10)
    lags = _newey_west_lags(a.size) if max_lag is None else _whole(max_lag, "max_lag", 0, a.size - 1)
    if _flat(a):
        return _untestable(name, float(a.mean()), "x is constant: no variation to estimate an error from",
                           a.size, level, n_trials)
    fit = sm.OLS(a, np.ones(a.size)).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    low, high = fit.conf_int(alpha=1 - level)[0]
    return TestResult(
        name=name, estimate=float(fit.params[0]), low=float(low), high=float(high), level=level,
        p_value=float(fit.pvalues[0]), method=f"Newey–West HAC standard error, {lags} lags (statsmodels)",
        n=int(a.size), n_trials=int(n_trials),
    )


@dataclass(frozen=True)
class AcfBand:
    """Sample ACF with two noise bands: i.i.d. ``z/√n`` and heteroskedasticity-robust, per lag."""

    lags: np.ndarray
    acf: np.ndarray
    iid: float  #: half-width ``z / √n`` (right only for independent, identically distributed values)
    robust: np.ndarray  #: half-width per lag, valid under volatility clustering
    level: float
    n: int
    excess_kurtosis: float

    @property
    def outside(self) -> np.ndarray:
        """Lags (≥ 1) whose autocorrelation lies outside the robust band."""
        mask = np.abs(self.acf) > self.robust
        return self.lags[1:][mask[1:]]

    def portmanteau(self, max_lag: int | None = None, *, name: str = "robust Q") -> TestResult:
        """Joint test that lags 1..m have no autocorrelation, valid under volatility clustering.

        ``Q* = Σ_k (ρ_k / se_k)²`` with the robust standard errors of the band, against χ²_m
        (Lobato, Nankervis & Savin 2001, without cross-lag terms). Why: 3000 lags each at
        5 % show ~150 "outside" lags by chance alone; one joint test answers one question.
        """
        m = int(self.lags[-1] if max_lag is None else max_lag)
        if not 1 <= m <= self.lags[-1]:
            raise ValueError(f"max_lag must be between 1 and {self.lags[-1]}, got {max_lag}")
        z = float(_sps.norm.ppf(0.5 + self.level / 2))
        q = float(np.sum((self.acf[1 : m + 1] / (self.robust[1 : m + 1] / z)) ** 2))
        return TestResult(
            name=name, estimate=q, low=float("nan"), high=float("nan"), level=self.level,
            p_value=float(_sps.chi2.sf(q, m)), null=f"no autocorrelation at lags 1–{m}",
            method=f"robust Box–Pierce χ² with {m} df (Lobato, Nankervis & Savin 2001)",
            n=self.n, alternative="greater",
        )

    def __str__(self) -> str:
        pct = round(100 * self.level)
        return (
            f"ACF to lag {self.lags[-1]}: i.i.d. {pct} % band ±{self.iid:.4f}; robust band "
            f"±{np.median(self.robust[1:]):.4f} (median over lags, {self.robust[1:].min():.4f}–"
            f"{self.robust[1:].max():.4f}); {self.outside.size} lags outside the robust band; "
            f"n = {self.n}, excess kurtosis {self.excess_kurtosis:.1f}"
        )

    def _repr_markdown_(self) -> str:
        return str(self)


def robust_acf_band(x: np.ndarray | pd.Series, max_lag: int, *, level: float = 0.95) -> AcfBand:
    """ACF with a band that stays right when volatility clusters (Taylor 1984; Lo & MacKinlay 1989).

    Why: under "no autocorrelation" the variance of the lag-k sample autocorrelation is
    ``Σ x_t² x_{t−k}² / (Σ x_t²)²``. For i.i.d. values that is ``1/n`` — the familiar
    ``1.96/√n`` band. When big moves cluster, ``x_t² x_{t−k}²`` is large far more often,
    so the true band is wider (by roughly ``√(1 + excess kurtosis × ρ_k(x²))``-type
    factors): the i.i.d. band flags noise as structure. ACF and products come from
    statsmodels' FFT ``acovf``.
    """
    from statsmodels.tsa.stattools import acovf

    level = _check_level(level)
    a = _as_1d(x, "x", 10)
    _whole(max_lag, "max_lag", 1, a.size - 1, f" (len(x) - 1 = {a.size - 1})")
    if _flat(a):
        raise ValueError("x is constant: its autocorrelation is undefined")
    d = a - a.mean()
    n = d.size
    g = acovf(d, adjusted=False, fft=True, nlag=max_lag)
    if g[0] == 0:
        raise ValueError("x is constant: its autocorrelation is undefined")
    sq = acovf(d**2, demean=False, adjusted=False, fft=True, nlag=max_lag) * n  # Σ_t x_t² x_{t+k}²
    z = float(_sps.norm.ppf(0.5 + level / 2))
    robust = z * np.sqrt(sq) / (n * g[0])
    return AcfBand(
        lags=np.arange(max_lag + 1), acf=g / g[0], iid=z / math.sqrt(n), robust=robust,
        level=level, n=int(n), excess_kurtosis=float(_sps.kurtosis(a, fisher=True, bias=False)),
    )


def _gains_frame(frame: pd.DataFrame | np.ndarray, what: str) -> pd.DataFrame:
    df = pd.DataFrame(frame) if not isinstance(frame, pd.DataFrame) else frame
    if df.shape[1] < 1 or df.shape[0] < 10:
        raise ValueError(f"{what} must be a (bars × strategies) table with at least 10 bars, got {df.shape}")
    if not np.isfinite(df.to_numpy(dtype=float)).all():
        raise ValueError(f"{what} has NaN/inf values; every strategy must have a value on every bar")
    return df.astype(float)


def _whole_block(block: float | None, series: np.ndarray) -> int:
    """arch's SPA and MCS take a whole block length: the given one or the data's, rounded up."""
    return int(math.ceil(float(block) if block is not None else block_length(series)))


@dataclass(frozen=True)
class SpaResult(TestResult):
    """Hansen's SPA: could *any* of the candidates tried beat the benchmark?"""

    best: str = ""
    p_lower: float = float("nan")
    p_upper: float = float("nan")
    mean_differences: pd.Series = field(default_factory=pd.Series)


def spa_test(
    benchmark: np.ndarray | pd.Series,
    candidates: pd.DataFrame,
    *,
    higher_is_better: bool = True,
    periods: float = 1.0,
    reps: int = 1000,
    block: float | None = None,
    seed: int = 0,
    benchmark_name: str = "benchmark",
    unit: str | None = None,
) -> SpaResult:
    """Hansen's (2005) test of superior predictive ability over **every** candidate tried.

    Why: picking the best of k strategies and testing it alone ignores the k − 1 others —
    the best of many noisy trials looks good by luck. SPA asks "does any candidate beat the
    benchmark?" with the whole search in the null distribution, so pass every strategy or
    lookback actually tried, the losers included. ``arch.bootstrap.SPA`` on losses
    (``−gains`` when ``higher_is_better``), stationary bootstrap with a data-chosen block;
    the reported p-value is Hansen's consistent one. ``estimate`` is the best candidate's
    mean advantage per bar × ``periods`` (annualised when ``periods`` is bars per year);
    ``unit`` names it in the evidence (e.g. "annualised net return, 1 = 100 % of equity"),
    so that "−0.6" is never printed without what it is.
    """
    from arch.bootstrap import SPA

    cand = _gains_frame(candidates, "candidates")
    bench = _as_1d(benchmark, benchmark_name, 10)
    if bench.size != cand.shape[0]:
        raise ValueError(f"benchmark has {bench.size} bars, candidates {cand.shape[0]}: use the same bars")
    _check_settings(n=bench.size, block=block, periods=periods, reps=reps)
    flat = _flat(cand.to_numpy() - bench[:, None])
    if flat.all():  # identical to the benchmark (or apart by a constant): nothing to resample
        adv = (cand.to_numpy() - bench[:, None]).mean(axis=0) * (1 if higher_is_better else -1)
        best = int(np.argmax(adv))
        est = 0.0 if abs(adv[best]) <= FLAT_RTOL * max(np.abs(bench).max(), 1e-300) else adv[best] * periods
        return SpaResult(**vars(_untestable(
            f"mean advantage of the best, {cand.columns[best]}, over {benchmark_name}", est,
            f"every candidate differs from {benchmark_name} by a constant on every bar"
            + (" (zero: they are identical)" if est == 0 else ""), bench.size, 0.95, cand.shape[1],
            null=f"no candidate beats {benchmark_name}", alternative="greater", trials_adjusted=True,
        )), best=str(cand.columns[best]), mean_differences=pd.Series(
            adv * periods, index=[str(c) for c in cand.columns], name="mean advantage"))
    sign = -1.0 if higher_is_better else 1.0
    diffs = cand.to_numpy() - bench[:, None]  # gains (or losses) over the benchmark
    adv = diffs.mean(axis=0) * (1 if higher_is_better else -1)
    blk = _whole_block(block, diffs)
    spa = SPA(sign * bench, sign * cand.to_numpy(), block_size=blk, reps=reps, seed=seed)
    spa.compute()
    pv = spa.pvalues
    best = int(np.argmax(adv))
    means = pd.Series(adv * periods, index=[str(c) for c in cand.columns], name="mean advantage")
    return SpaResult(
        name=(f"mean advantage of the best, {cand.columns[best]}, over {benchmark_name}"
              + (f" (in {unit})" if unit else "")),
        estimate=float(adv[best] * periods), low=float("nan"), high=float("nan"), level=0.95,
        p_value=float(pv["consistent"]), null=f"no candidate beats {benchmark_name}", alternative="greater",
        trials_adjusted=True,
        method=(f"Hansen SPA (arch), consistent p-value; stationary bootstrap, block {blk} bars "
                f"({'given' if block else 'data-chosen'}), {reps} resamples"),
        n=int(bench.size), n_trials=int(cand.shape[1]), block=float(blk), reps=int(reps),
        best=str(cand.columns[best]), p_lower=float(pv["lower"]), p_upper=float(pv["upper"]),
        mean_differences=means,
    )


@dataclass(frozen=True)
class McsResult:
    """The Model Confidence Set: the candidates the data cannot tell from the best."""

    included: tuple[str, ...]
    excluded: tuple[str, ...]
    pvalues: pd.Series  #: MCS p-value per candidate (in the set when ≥ size)
    size: float
    method: str
    n: int
    n_trials: int

    def __str__(self) -> str:
        pv = ", ".join(f"{k} {v:.2f}" for k, v in self.pvalues.items())
        return (
            f"{round(100 * (1 - self.size))} % model confidence set of {self.n_trials} candidates: "
            f"{{{', '.join(self.included)}}} (MCS p-values: {pv}); {self.method}; n = {self.n}"
        )

    def _repr_markdown_(self) -> str:
        return str(self)


def model_confidence_set(
    values: pd.DataFrame,
    *,
    higher_is_better: bool = True,
    size: float = 0.10,
    reps: int = 1000,
    block: float | None = None,
    seed: int = 0,
) -> McsResult:
    """Hansen, Lunde & Nason's (2011) Model Confidence Set over every candidate tried.

    Why: when no single winner is clear, the honest answer is the *set* of candidates that
    contains the best one with probability ``1 − size``. ``arch.bootstrap.MCS`` (range
    statistic) on per-bar losses (``−values`` when ``higher_is_better``); block data-chosen.
    """
    from arch.bootstrap import MCS

    df = _gains_frame(values, "values")
    if df.shape[1] < 2:
        raise ValueError("a model confidence set needs at least 2 candidates")
    if not _real(size) or not 0 < size < 1:
        raise ValueError(f"size (the MCS's error rate, e.g. 0.10 for a 90 % set) must be in (0, 1), got {size!r}")
    _check_settings(n=df.shape[0], block=block, reps=reps)
    x = df.to_numpy()
    for i, j in itertools.combinations(range(x.shape[1]), 2):
        if _flat(x[:, i] - x[:, j]):
            raise ValueError(
                f"candidates {df.columns[i]!r} and {df.columns[j]!r} are identical on every bar (up to a "
                "constant), so the data cannot rank them; keep one of them"
            )
    losses = -df if higher_is_better else df
    blk = _whole_block(block, losses.to_numpy() - losses.to_numpy().mean(axis=1, keepdims=True))
    mcs = MCS(losses.to_numpy(), size, reps=reps, block_size=blk, method="R", seed=seed)
    mcs.compute()
    names = [str(c) for c in df.columns]
    pv = mcs.pvalues["Pvalue"]
    pvalues = pd.Series({names[int(i)]: float(p) for i, p in pv.items()}).reindex(names)
    return McsResult(
        included=tuple(names[int(i)] for i in mcs.included), excluded=tuple(names[int(i)] for i in mcs.excluded),
        pvalues=pvalues, size=float(size),
        method=f"MCS (arch, range statistic), stationary bootstrap, block {blk} bars, {reps} resamples",
        n=int(df.shape[0]), n_trials=int(df.shape[1]),
    )


def _moments(r: np.ndarray) -> tuple[float, float, float]:
    """Per-bar Sharpe, skewness and (non-excess) kurtosis of a return series."""
    if _flat(r):
        raise ValueError("the returns are constant: the Sharpe ratio is undefined")
    return float(r.mean() / r.std(ddof=1)), float(_sps.skew(r)), float(_sps.kurtosis(r, fisher=False))


def psr_from_moments(sharpe: float, benchmark: float, n: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Probability that the true per-bar Sharpe exceeds ``benchmark`` (Bailey & López de Prado 2012).

    ``Φ((SR − SR*) √(n − 1) / √(1 − γ₃ SR + (γ₄ − 1)/4 · SR²))``, all per bar, γ₄ the
    *non-excess* kurtosis (3 for a normal): skewed, fat-tailed returns make a Sharpe
    ratio less certain than the normal formula says.
    """
    _whole(n, "n (observations)", 2)
    for what, value in (("sharpe", sharpe), ("benchmark", benchmark), ("skew", skew), ("kurtosis", kurtosis)):
        if not _real(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
    var = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if var <= 0:
        raise ValueError(f"skew {skew} and kurtosis {kurtosis} give a non-positive variance for Sharpe {sharpe}")
    return float(_sps.norm.cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected best Sharpe ratio of ``n_trials`` skill-less trials whose Sharpes vary by ``variance``.

    Bailey & López de Prado (2014), from extreme-value theory:
    ``√V · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))`` with γ Euler's constant.
    """
    _whole(n_trials, "n_trials", 1)
    if n_trials == 1:
        return 0.0
    if not _real(variance) or variance < 0:
        raise ValueError(f"the variance of the trials' Sharpe ratios must be >= 0, got {variance}")
    z1 = _sps.norm.ppf(1 - 1 / n_trials)
    z2 = _sps.norm.ppf(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(variance) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def _sr_interval(sr: float, n: int, skew: float, kurt: float, level: float) -> tuple[float, float]:
    se = math.sqrt(max(1 - skew * sr + (kurt - 1) / 4 * sr**2, 0.0) / (n - 1))
    z = float(_sps.norm.ppf(0.5 + level / 2))
    return sr - z * se, sr + z * se


def probabilistic_sharpe_ratio(
    returns: np.ndarray | pd.Series,
    *,
    benchmark_sharpe: float = 0.0,
    periods: float = 1.0,
    level: float = 0.95,
    name: str = "Sharpe",
    n_trials: int = 1,
) -> TestResult:
    """PSR: the probability that the true Sharpe exceeds ``benchmark_sharpe`` (annualised).

    ``p_value = 1 − PSR`` (one-sided); the interval is the asymptotic one that accounts for
    skewness and kurtosis (Mertens 2002), annualised. Assumes serially independent returns.
    """
    level = _check_level(level)
    _check_settings(periods=periods, n_trials=n_trials)
    if not _real(benchmark_sharpe):
        raise ValueError(f"benchmark_sharpe must be a finite number, got {benchmark_sharpe!r}")
    r = _as_1d(returns, "returns", 10)
    sr, sk, ku = _moments(r)
    scale = math.sqrt(periods)
    psr = psr_from_moments(sr, benchmark_sharpe / scale, r.size, sk, ku)
    lo, hi = _sr_interval(sr, r.size, sk, ku, level)
    return TestResult(
        name=name, estimate=sr * scale, low=lo * scale, high=hi * scale, level=level, p_value=1 - psr,
        null=f"true Sharpe ≤ {benchmark_sharpe:g}", alternative="greater",
        method=f"Probabilistic Sharpe Ratio {psr:.3f} (skew {sk:.2f}, kurtosis {ku:.1f}; Bailey & López de Prado 2012)",
        n=int(r.size), n_trials=int(n_trials),
    )


def deflated_sharpe_ratio(
    returns: np.ndarray | pd.Series,
    trial_sharpes: Sequence[float] | np.ndarray,
    *,
    n_trials: int | None = None,
    periods: float = 1.0,
    level: float = 0.95,
    name: str = "Sharpe",
    variance: float | None = None,
) -> TestResult:
    """DSR: the PSR of the selected strategy against the best Sharpe that luck alone would give.

    Why: the best of N trials has a positive expected Sharpe even when none has skill.
    The benchmark is :func:`expected_max_sharpe` of the N trials, with the variance of the
    trials' (annualised) Sharpe ratios ``trial_sharpes``; ``n_trials`` defaults to their
    number — pass a larger count when more were tried than you have Sharpes for (the
    variance then comes from those you have). ``variance`` (annualised; ``n_trials`` may then be a
    clustered count below the number of Sharpes given) replaces the trials'
    dispersion by a given one — e.g. :func:`sharpe_null_variance`, the sampling variance of a
    Sharpe estimate under no skill, which is what the null of "skill-less trials" means
    (the trials' own dispersion also contains whatever skill and exposure they differ by).
    ``p_value = 1 − DSR``.
    """
    _check_settings(periods=periods, n_trials=1 if n_trials is None else n_trials)
    r = _as_1d(returns, "returns", 10)
    srs = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    if variance is None and (srs.size < 2 or not np.isfinite(srs).all()):
        raise ValueError("trial_sharpes needs the finite Sharpe ratios of at least 2 trials")
    n_tr = int(n_trials) if n_trials is not None else srs.size
    if variance is None and n_tr < srs.size:
        raise ValueError(f"n_trials={n_tr} is less than the {srs.size} trial Sharpe ratios given: count every trial")
    if n_tr < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_tr}")
    if variance is not None and not (np.isfinite(variance) and variance > 0):
        raise ValueError(f"variance must be a positive annualised variance of the Sharpe ratio, got {variance}")
    var_bar = (float(srs.var(ddof=1)) if variance is None else float(variance)) / periods
    sr0 = expected_max_sharpe(n_tr, var_bar) * math.sqrt(periods)
    res = probabilistic_sharpe_ratio(r, benchmark_sharpe=sr0, periods=periods, level=level, name=name, n_trials=n_tr)
    dsr = 1 - res.p_value
    return TestResult(
        name=name, estimate=res.estimate, low=res.low, high=res.high, level=level, p_value=res.p_value,
        null=f"true Sharpe ≤ {sr0:.2f}, the best of {n_tr} skill-less trials", alternative="greater",
        trials_adjusted=True,
        method=(f"Deflated Sharpe Ratio {dsr:.3f} (Bailey & López de Prado 2014; "
                + ("trials' Sharpe sd" if variance is None else "Sharpe sd under no skill")
                + f" {math.sqrt(var_bar * periods):.2f})"),
        n=res.n, n_trials=n_tr,
    )


def sharpe_null_variance(n_bars: int, periods: float = 1.0) -> float:
    """Sampling variance of an annualised Sharpe estimate from ``n_bars`` bars when the true Sharpe is 0.

    ``periods / (n_bars − 1)`` (Lo 2002; Mertens 2002 at SR = 0, where skew and kurtosis drop
    out): 8,760 hourly bars a year over 6,000 bars gives a sd of about 1.21.
    """
    if n_bars < 3 or periods <= 0:
        raise ValueError(f"need n_bars >= 3 and periods > 0, got {n_bars}, {periods}")
    return float(periods / (n_bars - 1))


def effective_trials(returns: pd.DataFrame, *, min_correlation: float = 0.9) -> int:
    """Trials that are not near-duplicates: clusters of strategies whose returns correlate ≥ ``min_correlation``.

    Why: 28 points of one frontier (the same forecast at 7 thresholds) are not 28 independent
    chances to get lucky. Average-linkage clustering on ``1 − ρ`` cut at ``1 − min_correlation``;
    strategies that never trade (all-zero returns) are one cluster together.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    df = _gains_frame(returns, "returns")
    if not 0 < min_correlation < 1:
        raise ValueError(f"min_correlation must be in (0, 1), got {min_correlation}")
    active = df.loc[:, df.std() > 0]
    flat = int(active.shape[1] < df.shape[1])
    if active.shape[1] < 2:
        return active.shape[1] + flat
    dist = np.clip(1 - active.corr().to_numpy(), 0, 2)
    np.fill_diagonal(dist, 0)
    tree = linkage(squareform(dist, checks=False), method="average")
    return int(fcluster(tree, t=1 - min_correlation, criterion="distance").max()) + flat


def deflate_selection(
    trials: pd.DataFrame,
    *,
    not_selected: Sequence[str] = (),
    extra_trials: int = 0,
    periods: float = 1.0,
    level: float = 0.95,
    min_correlation: float = 0.9,
) -> TestResult:
    """The Deflated Sharpe Ratio of the best strategy a search *selected*, with the right inputs.

    ``trials`` (bars × strategies) holds every strategy the search tried. Columns named in
    ``not_selected`` — a benchmark such as buy-and-hold that nobody chose by searching — are
    neither candidates nor trials: deflating them answers no question, so they are excluded
    (and if nothing else is left, refused). The null is "skill-less trials": the expected best
    Sharpe uses the sampling variance of a Sharpe estimate under no skill
    (:func:`sharpe_null_variance`), and the number of trials is the clustered effective count
    (:func:`effective_trials`) plus ``extra_trials`` tried elsewhere (each counted as independent).
    """
    df = _gains_frame(trials, "trials")
    unknown = [c for c in not_selected if c not in df.columns]
    if unknown:
        raise ValueError(f"not_selected names {unknown}, which are not columns of trials")
    chosen = df.drop(columns=list(not_selected))
    if chosen.shape[1] == 0:
        raise ValueError("every column is a benchmark nobody selected: there is no selected strategy to deflate")
    sharpes = chosen.apply(lambda c: _metrics.sharpe(c.to_numpy(), periods)).fillna(0.0)
    best = str(sharpes.idxmax())
    n_eff = effective_trials(chosen, min_correlation=min_correlation) + int(extra_trials)
    res = deflated_sharpe_ratio(chosen[best].to_numpy(), sharpes.to_numpy(), n_trials=n_eff,
                                periods=periods, level=level, name=f"Sharpe({best})",
                                variance=sharpe_null_variance(len(chosen), periods))
    how = (f"{n_eff} effective trials: {chosen.shape[1]} selected strategies clustered at ρ ≥ {min_correlation:g}"
           + (f" + {extra_trials} tried elsewhere" if extra_trials else "")
           + (f"; {', '.join(not_selected)} excluded (not selected)" if not_selected else ""))
    return dataclasses.replace(res, method=f"{res.method}; {how}")


@dataclass(frozen=True)
class PboResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation."""

    pbo: float  #: share of IS/OOS splits where the in-sample best ranks at or below the OOS median
    logits: np.ndarray  #: λ = log(ω / (1 − ω)) of the in-sample best's OOS relative rank ω, per split
    n_splits: int
    n_combinations: int
    n_strategies: int
    n: int
    prob_oos_loss: float  #: share of splits where the in-sample best has a negative OOS statistic

    def __str__(self) -> str:
        # one quantity per sentence: PBO is about *rank*; losing money out of sample is another question
        return (
            f"PBO {self.pbo:.2f}: in {self.pbo:.0%} of {self.n_combinations} CSCV splits ({self.n_splits} blocks, "
            f"{self.n_strategies} strategies counted, n = {self.n}) the strategy that was best in sample ranked "
            f"at or below the median out of sample. Separately, that in-sample best had a negative "
            f"out-of-sample Sharpe ratio in {self.prob_oos_loss:.0%} of the splits"
        )

    def _repr_markdown_(self) -> str:
        return str(self)


def pbo_cscv(returns: pd.DataFrame | np.ndarray, *, n_splits: int = 16) -> PboResult:
    """Probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu 2017).

    Cut the (bars × strategies) returns into ``n_splits`` blocks in time; for every way of
    choosing half of them as in-sample (IS), pick the strategy with the best IS Sharpe and
    find its relative rank ω among all strategies out of sample (OOS). PBO is the share of
    splits with ω ≤ ½ — the selection did no better than the OOS median. With no skill at
    all PBO is about ½; a real edge drives it towards 0.
    """
    df = _gains_frame(returns, "returns")
    x = df.to_numpy()
    n, k = x.shape
    if k < 2:
        raise ValueError("PBO needs at least 2 strategies (every one tried)")
    _whole(n_splits, "n_splits", 2, n, f" (the {n} bars)")
    if n_splits % 2:
        raise ValueError(f"n_splits must be an even number between 2 and the {n} bars, got {n_splits}")
    n_combos = math.comb(n_splits, n_splits // 2)
    need = n_combos * (n_splits + 3 * k) * 8  # the IS mask, IS/OOS Sharpe and rank arrays
    if need > PBO_MAX_BYTES:
        fits = max(m for m in range(2, n_splits, 2) if math.comb(m, m // 2) * (m + 3 * k) * 8 <= PBO_MAX_BYTES)
        raise ValueError(
            f"n_splits={n_splits} means {n_combos:,} CSCV splits of {k} strategies, about "
            f"{need / 2**30:.1f} GiB of working memory (at most {PBO_MAX_BYTES / 2**30:g} GiB); "
            f"use n_splits={fits} or fewer"
        )
    edges = np.linspace(0, n, n_splits + 1).astype(int)
    count = np.diff(edges).astype(float)
    s1 = np.add.reduceat(x, edges[:-1], axis=0)
    s2 = np.add.reduceat(x**2, edges[:-1], axis=0)
    peak = np.maximum.reduceat(np.abs(x), edges[:-1], axis=0)  # the largest |return| of each block
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    is_mask = np.zeros((len(combos), n_splits))
    np.put_along_axis(is_mask, combos, 1.0, axis=1)

    def sharpe_of(mask: np.ndarray) -> np.ndarray:
        m = mask @ count
        mean = (mask @ s1) / m[:, None]
        var = ((mask @ s2) - m[:, None] * mean**2) / (m[:, None] - 1)
        largest = (mask[:, :, None] * peak[None]).max(axis=1)
        return _metrics.sharpe_from_moments(mean, np.sqrt(np.maximum(var, 0)), largest)

    sr_is, sr_oos = sharpe_of(is_mask), sharpe_of(1.0 - is_mask)
    best = np.argmax(sr_is, axis=1)
    chosen = sr_oos[np.arange(len(combos)), best]
    rank = (sr_oos < chosen[:, None]).sum(axis=1) + 1  # 1 = worst OOS, k = best
    omega = rank / (k + 1)
    logits = np.log(omega / (1 - omega))
    return PboResult(
        pbo=float((logits <= 0).mean()), logits=logits, n_splits=int(n_splits), n_combinations=len(combos),
        n_strategies=int(k), n=int(n), prob_oos_loss=float((chosen < 0).mean()),
    )


@dataclass(frozen=True)
class Verdict:
    """A sentence chosen by a test: the claim if the evidence supports it, its negation if not."""

    holds: bool
    sentence: str
    result: object

    def __str__(self) -> str:
        return self.sentence

    def _repr_markdown_(self) -> str:
        return self.sentence


def traded_verdict(
    result: TestResult,
    claim: str,
    *,
    trades: int,
    strategy: str,
    min_trades: int = 20,
    opposite: str | None = None,
    alpha: float = 0.05,
) -> Verdict:
    """:func:`verdict` for a comparison of trading strategies that first asks whether ``strategy`` traded.

    Why: a rule that never traded "beats" a losing one by not trading, and one that traded on
    a handful of bars has no P&L to test. ``trades`` is the number of bars on which
    ``strategy`` traded; below ``min_trades`` the sentence says so instead of the claim.
    """
    if trades < 0:
        raise ValueError(f"trades must be a count >= 0, got {trades}")
    if trades == 0:
        sentence = (f"No test of whether {claim}: {strategy} never traded, so any difference is earned by not "
                    f"trading ({result.evidence()}).")
        return Verdict(holds=False, sentence=sentence, result=result)
    if trades < min_trades:
        sentence = (f"No test of whether {claim}: too few trades ({trades} bars, fewer than {min_trades}) by "
                    f"{strategy} ({result.evidence()}).")
        return Verdict(holds=False, sentence=sentence, result=result)
    return verdict(result, claim, alpha=alpha, opposite=opposite)


def verdict(
    result: TestResult,
    claim: str,
    *,
    alpha: float = 0.05,
    opposite: str | None = None,
    positive: bool = True,
) -> Verdict:
    """Turn a test result into the sentence a chapter prints — the words are chosen here.

    ``claim`` is a clause such as ``"the transformer beats ridge on net Sharpe"``; it
    holds when ``p < alpha`` **and** the estimate points the claimed way (``positive``:
    the estimate is above the null). Otherwise the sentence is "no evidence that …", or
    ``opposite`` when the data significantly support the other direction. A result that is
    one of ``n_trials`` comparisons its p-value does not account for is judged at
    ``alpha / n_trials`` (Bonferroni). The evidence (estimate, interval, p-value, method,
    trials) is always quoted.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    level_words = f"the {alpha:.0%} level"
    if result.n_trials > 1 and not result.trials_adjusted:
        alpha = alpha / result.n_trials
        level_words = f"the {alpha:.3g} level ({alpha * result.n_trials:.0%} Bonferroni over {result.n_trials})"
        level_words = level_words.replace(f"{alpha:.3g} level", f"{100 * alpha:.3g}% level")
    p = result.p_value
    if not (np.isfinite(p) and np.isfinite(result.estimate)):
        p = 1.0  # a degenerate result (constant input, undefined statistic) supports no claim
    one_sided = result.alternative == "greater"
    if one_sided and not positive:
        raise ValueError(f"{result.name}: a one-sided ('greater') test supports positive claims only")
    # A one-sided p-value below 1/2 already says the estimate lies above the null.
    right_way = one_sided or (result.estimate > 0 if positive else result.estimate < 0)
    quoted = result
    if result.n_trials > 1 and not result.trials_adjusted and np.isfinite(result.low):
        # the interval beside an adjusted verdict is the adjusted one (from the draws), or says it is not
        if result.draws is not None:
            quoted = result.at_level(1 - alpha)
        else:
            quoted = dataclasses.replace(result, name=f"{result.name} (interval not adjusted)")
    evidence = quoted.evidence()
    if p < alpha and right_way:
        sentence = f"{claim[0].upper()}{claim[1:]} ({evidence})."
        holds = True
    elif p < alpha and opposite is not None and not one_sided:
        sentence = f"{opposite[0].upper()}{opposite[1:]} ({evidence})."
        holds = False
    else:
        sentence = f"No evidence at {level_words} that {claim} ({evidence})."
        holds = False
    return Verdict(holds=holds, sentence=sentence, result=result)
