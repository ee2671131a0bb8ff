"""Performance metrics of a per-bar return series, annualised from the bar frequency.

Why a module of our own: the seed chapter annualised an *hourly, 24/7* crypto Sharpe
ratio with ``sqrt(252)`` — the number of trading days of an equity year — which
understates it by ``sqrt(8760 / 252) ≈ 5.9×`` for a given per-bar Sharpe (and, worse,
makes numbers from different markets incomparable). Here the number of bars per year
is *derived* from the bar length and the market's calendar by :func:`periods_per_year`,
and every annualised metric takes it as an explicit argument.

Conventions (all returns are **simple** per-bar returns ``P_t / P_{t-1} - 1``):

* ``sharpe``: ``mean(r - rf_bar) / std(r, ddof=1) * sqrt(P)`` (same as quantstats). One
  zero-variance rule, everywhere (the statistics, the cost-aware rule, PBO): a series that
  never moved (every bar 0: no return for no risk) scores 0; any other series without
  variance (up to rounding) has no Sharpe ratio, NaN (:func:`sharpe_from_moments`).
* ``sortino``: downside deviation ``sqrt(sum(min(r - rf_bar, 0)^2) / n)`` over **all**
  ``n`` bars, not only the losing ones (Sortino & Price; quantstats does the same).
* ``annualised_return``: geometric, ``(1 + total)^(P / n) - 1`` with ``n`` bars.
* ``max_drawdown``: the equity curve starts at 1 *before* the first bar, so a loss on
  the very first bar is a drawdown.
* ``hit_rate``: winning bars / bars with a non-zero return (flat bars are neither).

Forecast skill (before any trading) has one definition too: :func:`forecast_skill`
(IC, rank IC, R², directional hit rate) — every chapter, the CLI and the experiments use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from flashtrade_lib.trading.calendars import CALENDARS

__all__ = [
    "CALENDARS",
    "periods_per_year",
    "total_return",
    "annualised_return",
    "annualised_volatility",
    "sharpe",
    "sharpe_from_moments",
    "information_coefficient",
    "sortino",
    "drawdown",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
    "hit_rate",
    "annualised_turnover",
    "exposure",
    "time_in_market",
    "summary",
    "compare",
    "MIN_YEARS_TO_ANNUALISE",
    "annualisation_note",
    "annualised_intervals",
    "ForecastSkill",
    "forecast_skill",
]

Calendar = Literal["crypto", "fx", "equity"]



def _calendar(calendar: str) -> dict[str, float]:
    if calendar not in CALENDARS:
        raise ValueError(
            f"unknown calendar {calendar!r}; use one of {sorted(CALENDARS)} "
            "(crypto trades 24/7, fx 24/5, equity 6.5 h on 252 days)"
        )
    return CALENDARS[calendar]


def _bar_length(index_or_freq: pd.Index | str | pd.Timedelta | pd.DateOffset) -> object:
    """A fixed Timedelta, or the calendar offset (month, week, ...) the bars follow."""
    if isinstance(index_or_freq, pd.DatetimeIndex):
        if len(index_or_freq) < 2:
            raise ValueError("need at least 2 timestamps to infer the bar length of an index")
        steps = np.diff(index_or_freq.asi8)
        lo, hi = steps.min(), steps.max()
        if lo <= 0:
            raise ValueError(
                "the time index is not strictly increasing; sort it and drop duplicates first"
            )
        # Median step: robust to the weekend/overnight gaps of FX and equity data.
        step = lo if lo == hi else int(np.median(steps))
        return pd.Timedelta(int(step), unit=index_or_freq.unit)
    if isinstance(index_or_freq, pd.Index):
        raise TypeError(
            f"periods_per_year needs a DatetimeIndex, got {type(index_or_freq).__name__}; "
            "pass the bar frequency instead, e.g. periods_per_year('1h', calendar='crypto')"
        )
    if isinstance(index_or_freq, pd.Timedelta):
        return index_or_freq
    try:
        offset = pd.tseries.frequencies.to_offset(index_or_freq)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"cannot read a bar frequency from {index_or_freq!r}; use e.g. '1h', '30min', 'D', 'W'"
        ) from exc
    if isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)):  # Day is not a Tick in pandas 3
        return pd.Timedelta(days=offset.n) if isinstance(offset, pd.offsets.Day) else pd.Timedelta(offset)
    return offset


def periods_per_year(
    index_or_freq: pd.DatetimeIndex | str | pd.Timedelta | pd.DateOffset,
    calendar: Calendar,
) -> float:
    """Bars per year from the bar length and the market's trading calendar.

    ``index_or_freq`` is a DatetimeIndex (its median step is the bar length, so
    weekend gaps do not matter), a pandas frequency (``"1h"``, ``"30min"``, ``"D"``,
    ``"B"``, ``"W"``, ``"ME"``) or a Timedelta. Conventions (see :data:`CALENDARS`):

    ============  =====================  ===========  ========  ======  =======
    calendar      intraday bar of ``b``  daily        weekly    monthly yearly
    ============  =====================  ===========  ========  ======  =======
    ``crypto``    365 × 24 h / b         365          365 / 7   12      1
    ``fx``        260 × 24 h / b         260          52        12      1
    ``equity``    252 × 6.5 h / b        252          52        12      1
    ============  =====================  ===========  ========  ======  =======

    So hourly crypto is 8760, hourly FX 6240, hourly equities 1638. For FX and
    equities a "day" is a trading day (a business-day index); bars of several
    days scale accordingly. The calendar has no default: data loaded through
    :mod:`flashtrade_lib.data` carries its own (:func:`flashtrade_lib.data.calendar.clock_of`).
    """
    cal = _calendar(calendar)
    bar = _bar_length(index_or_freq)
    if isinstance(bar, pd.Timedelta):
        if bar <= pd.Timedelta(0):
            raise ValueError(f"the bar length must be positive, got {bar}")
        hours = bar / pd.Timedelta(hours=1)
        if hours < 24:
            return cal["days"] * cal["hours_per_day"] / hours
        days = hours / 24
        if 27 < days < 32:
            return 12.0
        if 88 < days < 93:
            return 4.0
        if 364 <= days <= 367:
            return 1.0
        if calendar == "crypto":
            return cal["days"] / days
        if days < 7:
            return cal["days"] / days
        if days % 7 == 0:
            return 52.0 / (days / 7)
        raise ValueError(
            f"bars of {days:g} days fit no {calendar} convention; pass periods explicitly"
        )
    offset = bar
    n = getattr(offset, "n", 1)
    if isinstance(offset, pd.offsets.BusinessDay):
        if calendar == "crypto":
            raise ValueError("business-day bars make no sense for 24/7 crypto; use 'D'")
        return cal["days"] / n
    if isinstance(offset, pd.offsets.Week):
        return (cal["days"] / 7 if calendar == "crypto" else 52.0) / n
    name = type(offset).__name__
    if name.startswith(("MonthEnd", "MonthBegin", "BusinessMonth", "SemiMonth")):
        return (24.0 if name.startswith("SemiMonth") else 12.0) / n
    if name.startswith(("QuarterEnd", "QuarterBegin", "BQuarter")):
        return 4.0 / n
    if name.startswith(("YearEnd", "YearBegin", "BYear")):
        return 1.0 / n
    raise ValueError(f"cannot annualise bars of frequency {offset!r}; pass periods explicitly")


def _returns(returns: pd.Series | np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"expected a 1-D series of per-bar returns, got shape {r.shape}")
    if r.size == 0:
        raise ValueError("the return series is empty")
    if np.isnan(r).any():
        raise ValueError(
            f"the return series has {int(np.isnan(r).sum())} NaN values; a backtest return "
            "is never missing — fill flat bars with 0 or drop the bars before computing metrics"
        )
    return r


def _check_periods(periods: float) -> float:
    if not (isinstance(periods, (int, float, np.floating)) and periods > 0):
        raise ValueError(
            f"periods must be a positive number of bars per year, got {periods!r}; "
            "read it from the bars: flashtrade_lib.data.clock_of(bars).periods_per_year"
        )
    return float(periods)


def _rf_per_bar(rf: float, periods: float) -> float:
    """Annual risk-free rate → per-bar rate (geometric, like quantstats)."""
    return (1.0 + rf) ** (1.0 / periods) - 1.0 if rf else 0.0


def total_return(returns: pd.Series | np.ndarray) -> float:
    """Compounded return over the whole series: ``prod(1 + r) - 1``."""
    return float(np.prod(1.0 + _returns(returns)) - 1.0)


def annualised_return(returns: pd.Series | np.ndarray, periods: float) -> float:
    """Geometric average yearly return (CAGR) from ``n`` bars of ``1/periods`` years each."""
    return _cagr(_returns(returns), _check_periods(periods))


def _cagr(r: np.ndarray, periods: float) -> float:
    """:func:`annualised_return` of checked returns (the bootstrap calls it thousands of times)."""
    wealth = float(np.prod(1.0 + r))
    if wealth <= 0:
        return -1.0
    return wealth ** (periods / r.size) - 1.0


def annualised_volatility(returns: pd.Series | np.ndarray, periods: float) -> float:
    """Sample standard deviation (ddof=1) of per-bar returns × ``sqrt(periods)``."""
    r = _returns(returns)
    return float(np.std(r, ddof=1) * math.sqrt(_check_periods(periods)))


def sharpe(returns: pd.Series | np.ndarray, periods: float, rf: float = 0.0) -> float:
    """Annualised Sharpe ratio; ``rf`` is an *annual* risk-free rate.

    0 for a series that never moved, NaN for any other without variance (see
    :func:`sharpe_from_moments`).
    """
    r = _returns(returns)
    periods = _check_periods(periods)
    excess = r - _rf_per_bar(rf, periods)
    sd = np.std(r, ddof=1) if r.size > 1 else 0.0
    return float(sharpe_from_moments(excess.mean(), sd, float(np.max(np.abs(r), initial=0.0)), periods))


def sharpe_from_moments(
    mean: float | np.ndarray, sd: float | np.ndarray, largest: float | np.ndarray, periods: float = 1.0
) -> float | np.ndarray:
    """The Sharpe ratio ``mean / sd * sqrt(periods)`` with the book's one zero-variance rule
    (arrays work element-wise): where ``sd`` is 0 — or only rounding noise next to ``largest``,
    the largest absolute return (a constant series' float std is ~1e-19, not 0, and would give
    ~1e17) — it is 0 if ``largest`` is 0 (the series never moved) and NaN otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(mean) / np.asarray(sd) * math.sqrt(periods)
    flat = np.asarray(sd) <= 16 * np.finfo(np.float64).eps * np.asarray(largest)
    out = np.where(flat, np.where(np.asarray(largest) == 0, 0.0, np.nan), ratio)
    return float(out) if out.ndim == 0 else out


def information_coefficient(forecast: np.ndarray, outcome: np.ndarray) -> float:
    """Pearson correlation of forecast and outcome; NaN (never 0) when either side is constant."""
    if forecast.std() == 0 or outcome.std() == 0:
        return float("nan")
    return float(np.corrcoef(forecast, outcome)[0, 1])


def sortino(returns: pd.Series | np.ndarray, periods: float, rf: float = 0.0) -> float:
    """Annualised Sortino ratio; downside deviation over **all** bars. NaN without losses."""
    r = _returns(returns)
    periods = _check_periods(periods)
    excess = r - _rf_per_bar(rf, periods)
    downside = math.sqrt(float(np.sum(np.minimum(excess, 0.0) ** 2)) / r.size)
    if downside == 0:
        return float("nan")
    return float(excess.mean() / downside * math.sqrt(periods))


def drawdown(returns: pd.Series | np.ndarray) -> np.ndarray:
    """Per-bar drawdown ``equity / running peak - 1`` (≤ 0), the peak including the start (1)."""
    equity = np.cumprod(1.0 + _returns(returns))
    peak = np.maximum.accumulate(np.maximum(equity, 1.0))
    return equity / peak - 1.0


def max_drawdown(returns: pd.Series | np.ndarray) -> float:
    """Worst peak-to-trough loss, a number ≤ 0 (``-0.25`` = a 25 % drawdown)."""
    return float(min(drawdown(returns).min(), 0.0))


def max_drawdown_duration(returns: pd.Series | np.ndarray) -> int:
    """Longest run of bars spent below a previous peak (recovered or not), in bars.

    Multiply by the bar length for a time: hourly bars → hours under water.
    """
    under = drawdown(returns) < 0
    if not under.any():
        return 0
    # Length of each run of True values.
    padded = np.concatenate(([False], under, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[0::2]).max())


def calmar(returns: pd.Series | np.ndarray, periods: float) -> float:
    """Annualised return / |max drawdown| (NaN without a drawdown)."""
    mdd = max_drawdown(returns)
    if mdd == 0:
        return float("nan")
    return annualised_return(returns, periods) / abs(mdd)


def hit_rate(returns: pd.Series | np.ndarray) -> float:
    """Share of winning bars among the bars with a non-zero return (NaN if always flat)."""
    r = _returns(returns)
    active = r != 0
    if not active.any():
        return float("nan")
    return float((r > 0).sum() / active.sum())


def annualised_turnover(turnover: pd.Series | np.ndarray, periods: float) -> float:
    """Mean per-bar turnover (fraction of equity traded) × periods: times the book trades per year."""
    return float(_returns(turnover).mean() * _check_periods(periods))


def exposure(positions: pd.DataFrame | np.ndarray) -> float:
    """Average gross exposure ``sum_a |w_a|`` per bar (1.0 = fully invested, no leverage)."""
    w = np.asarray(positions, dtype=float)
    w = w[:, None] if w.ndim == 1 else w
    return float(np.abs(w).sum(axis=1).mean())


def time_in_market(positions: pd.DataFrame | np.ndarray) -> float:
    """Share of bars with any non-zero position."""
    w = np.asarray(positions, dtype=float)
    w = w[:, None] if w.ndim == 1 else w
    return float((np.abs(w).sum(axis=1) > 0).mean())


def summary(
    returns: pd.Series | np.ndarray,
    periods: float,
    *,
    turnover: pd.Series | np.ndarray | None = None,
    positions: pd.DataFrame | np.ndarray | None = None,
    rf: float = 0.0,
) -> dict[str, float]:
    """Every metric of this module for one return series, as a flat dict."""
    out = {
        "total_return": total_return(returns),
        "annual_return": annualised_return(returns, periods),
        "annual_volatility": annualised_volatility(returns, periods),
        "sharpe": sharpe(returns, periods, rf),
        "sortino": sortino(returns, periods, rf),
        "max_drawdown": max_drawdown(returns),
        "max_drawdown_bars": float(max_drawdown_duration(returns)),
        "calmar": calmar(returns, periods),
        "hit_rate": hit_rate(returns),
    }
    if turnover is not None:
        out["annual_turnover"] = annualised_turnover(turnover, periods)
    if positions is not None:
        out["exposure"] = exposure(positions)
        out["time_in_market"] = time_in_market(positions)
    out["periods_per_year"] = float(periods)
    out["bars"] = float(np.asarray(returns).size)
    return out


def compare(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """A table (one row per strategy) from ``{name: summary_dict}``."""
    return pd.DataFrame.from_dict(dict(rows), orient="index")


# Below about a quarter of a year, an annualised figure mostly extrapolates a few weeks' luck:
# 12 days of returns annualised are raised to the power 30.
MIN_YEARS_TO_ANNUALISE = 0.25


def annualisation_note(bars: int, periods: float, min_years: float = MIN_YEARS_TO_ANNUALISE) -> str | None:
    """A plain warning when ``bars`` cover too little time for annualised figures to mean much."""
    years = bars / _check_periods(periods)
    if years >= min_years:
        return None
    return (
        f"{bars} bars cover {years * 365:.1f} days ({years:.3f} years): annualised figures extrapolate "
        f"them {1 / years:.0f}-fold and mean little below {min_years:g} years; read total_return and "
        "the intervals, or test on a longer split"
    )


def annualised_intervals(
    returns: pd.Series | np.ndarray, periods: float, *, level: float = 0.95, reps: int = 1000, seed: int = 0
) -> dict[str, object]:
    """Sharpe ratio and annual return, each with a stationary block-bootstrap interval.

    Why: a Sharpe ratio or annual return without an interval invites reading noise as skill,
    and the shorter the sample, the wider the truth. The interval comes from
    :func:`flashtrade_lib.trading.stats.block_bootstrap_ci` (arch, data-chosen block).
    """
    from flashtrade_lib.trading import stats

    r = _returns(returns)
    periods = _check_periods(periods)
    return {
        "sharpe": stats.block_bootstrap_ci(r, "sharpe", periods=periods, level=level, reps=reps, seed=seed,
                                           name="sharpe"),
        "annual_return": stats.block_bootstrap_ci(r, lambda x: _cagr(x, periods), level=level, reps=reps,
                                                  seed=seed, name="annual_return"),
    }


@dataclass(frozen=True)
class ForecastSkill:
    """How well a forecast ranks and signs the outcome it predicts (see :func:`forecast_skill`)."""

    ic: float  #: Pearson correlation of forecast and outcome (information coefficient)
    rank_ic: float  #: Spearman rank correlation (robust to a few huge outcomes)
    r2: float  #: ``1 - SSE / Σ(y - ȳ)²``: negative when worse than the outcome's own mean
    hit_rate: float  #: share of right signs among pairs where forecast and outcome are both non-zero
    n: int  #: finite (forecast, outcome) pairs scored
    n_directional: int  #: pairs the hit rate counted

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("ic", "rank_ic", "r2", "hit_rate", "n", "n_directional")}


def forecast_skill(forecast: np.ndarray | pd.Series, outcome: np.ndarray | pd.Series) -> ForecastSkill:
    """Out-of-sample skill of a forecast: IC, rank IC, R² and directional hit rate.

    Why one function: the book compares forecasts across chapters, so every number must
    mean the same thing. Rules, stated once:

    * pairs where either side is not finite are dropped (``n`` counts what is left);
    * a correlation with a constant side is undefined: NaN, never 0;
    * ``hit_rate`` leaves out zero outcomes (no move) **and** zero forecasts (no opinion),
      so 0.5 is chance whatever the share of flat bars; NaN if nothing is left.
    """
    from scipy.stats import spearmanr

    p = np.array(forecast, dtype=np.float64).ravel()  # copies: pandas may hand out read-only views
    y = np.array(outcome, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"forecast and outcome must have the same length, got {p.size} and {y.size}")
    ok = np.isfinite(p) & np.isfinite(y)
    p, y = p[ok], y[ok]
    if p.size < 3:
        raise ValueError(f"need at least 3 finite (forecast, outcome) pairs, got {p.size}")
    varied = p.std() > 0 and y.std() > 0
    sst = float(((y - y.mean()) ** 2).sum())
    directional = (p != 0) & (y != 0)
    return ForecastSkill(
        ic=information_coefficient(p, y),
        rank_ic=float(spearmanr(p, y).statistic) if varied else float("nan"),
        r2=1.0 - float(((y - p) ** 2).sum()) / sst if sst > 0 else float("nan"),
        hit_rate=float((np.sign(p[directional]) == np.sign(y[directional])).mean()) if directional.any() else float("nan"),
        n=int(p.size),
        n_directional=int(directional.sum()),
    )
