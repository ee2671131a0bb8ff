"""Metrics: hand-computed values, annualisation per frequency, quantstats cross-checks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.trading import metrics as m

EXACT = {"rel": 0, "abs": 1e-12}
R5 = np.array([0.1, -0.05, 0.02, -0.1, 0.05])


# ---------------------------------------------------------------------- annualisation


@pytest.mark.parametrize(
    ("freq", "calendar", "expected"),
    [
        ("1h", "crypto", 8760),
        ("1h", "fx", 24 * 5 * 52),
        ("1h", "equity", 252 * 6.5),
        ("30min", "crypto", 17520),
        ("15min", "equity", 252 * 26),
        ("4h", "crypto", 2190),
        ("D", "crypto", 365),
        ("D", "fx", 260),
        ("D", "equity", 252),
        ("B", "equity", 252),
        ("W", "equity", 52),
        ("W", "crypto", 365 / 7),
        ("ME", "fx", 12),
        ("QE", "equity", 4),
        ("YE", "crypto", 1),
    ],
)
def test_periods_per_year_from_a_frequency(freq: str, calendar: str, expected: float) -> None:
    assert m.periods_per_year(freq, calendar) == pytest.approx(expected, rel=1e-15)


def test_periods_per_year_from_indexes_with_market_gaps() -> None:
    hourly = pd.date_range("2024-01-01", periods=24 * 60, freq="h")
    assert m.periods_per_year(hourly, "crypto") == 8760
    fx = hourly[hourly.day_of_week < 5]  # FX closes at weekends: gaps must not matter
    assert m.periods_per_year(fx, "fx") == 6240
    session = pd.DatetimeIndex(
        [d + pd.Timedelta(hours=10 + h) for d in pd.bdate_range("2024-01-01", periods=30) for h in range(6)]
    )
    assert m.periods_per_year(session, "equity") == 1638
    assert m.periods_per_year(pd.bdate_range("2024-01-01", periods=300), "equity") == 252
    assert m.periods_per_year(pd.date_range("2020", periods=40, freq="MS"), "equity") == 12


@pytest.mark.parametrize(
    ("arg", "calendar", "message"),
    [
        ("1h", "forex", "unknown calendar"),
        ("B", "crypto", "business-day"),
        ("nonsense", "crypto", "cannot read a bar frequency"),
        (pd.Timedelta("10D"), "equity", "fit no equity convention"),
        (pd.DatetimeIndex(["2024-01-02", "2024-01-01"]), "crypto", "not strictly increasing"),
        (pd.DatetimeIndex(["2024-01-01"]), "crypto", "at least 2"),
    ],
)
def test_periods_per_year_bad_input(arg, calendar: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        m.periods_per_year(arg, calendar)


# ---------------------------------------------------------------------- hand-computed


def test_hand_computed_metrics() -> None:
    total = 1.1 * 0.95 * 1.02 * 0.9 * 1.05 - 1
    assert m.total_return(R5) == pytest.approx(total, **EXACT)
    assert m.annualised_return(R5, 10) == pytest.approx((1 + total) ** 2 - 1, **EXACT)
    mean, sd = 0.004, math.sqrt(sum((x - 0.004) ** 2 for x in R5) / 4)
    assert m.annualised_volatility(R5, 4) == pytest.approx(2 * sd, **EXACT)
    assert m.sharpe(R5, 4) == pytest.approx(mean / sd * 2, **EXACT)
    downside = math.sqrt((0.05**2 + 0.1**2) / 5)  # over ALL five bars
    assert m.sortino(R5, 4) == pytest.approx(mean / downside * 2, **EXACT)
    # equity 1.1, 1.045, 1.0659, 0.95931, 1.0072755: peak 1.1, trough 0.95931
    assert m.max_drawdown(R5) == pytest.approx(0.95931 / 1.1 - 1, **EXACT)
    assert m.max_drawdown_duration(R5) == 4  # under water from bar 1 to the end
    assert m.calmar(R5, 10) == pytest.approx(((1 + total) ** 2 - 1) / (1 - 0.95931 / 1.1), **EXACT)
    assert m.hit_rate(np.r_[R5, 0.0]) == pytest.approx(3 / 5, **EXACT)
    assert m.annualised_turnover(np.array([0.0, 1.0, 0.5, 0.5]), 8760) == pytest.approx(0.5 * 8760)
    pos = np.array([[0.0, 0.0], [1.0, -0.5], [0.5, 0.5], [0.0, 0.0]])
    assert m.exposure(pos) == pytest.approx((0 + 1.5 + 1 + 0) / 4, **EXACT)
    assert m.time_in_market(pos) == 0.5


def test_a_first_bar_loss_is_a_drawdown_and_duration_counts_recovery() -> None:
    assert m.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1, **EXACT)  # 1 -> 0.9
    # under water for bars 1-2, recovered at bar 3, under again for bar 5
    r = [0.1, -0.1, 0.05, 0.1, 0.0, -0.01]
    assert m.max_drawdown_duration(r) == 2
    assert m.max_drawdown_duration([0.01, 0.02]) == 0


def test_risk_free_rate_is_deannualised_geometrically() -> None:
    rf = 0.05
    per_bar = (1 + rf) ** (1 / 8760) - 1
    r = np.random.default_rng(0).normal(1e-4, 0.01, 500)
    expected = (r - per_bar).mean() / r.std(ddof=1) * math.sqrt(8760)
    assert m.sharpe(r, 8760, rf=rf) == pytest.approx(expected, rel=1e-12)


def test_degenerate_series_give_nan_not_a_huge_number() -> None:
    assert math.isnan(m.sharpe(np.full(10, 0.01), 252))  # constant: its float std is ~1e-19, not 0
    assert m.sharpe(np.zeros(10), 252) == 0.0  # never moved: no return for no risk
    assert math.isnan(m.sortino(np.full(10, 0.01), 252))
    assert math.isnan(m.hit_rate(np.zeros(3)))


def test_one_zero_variance_rule_for_every_sharpe() -> None:
    """metrics.sharpe, the bootstrap's statistic, the cost-aware score and PBO share one rule."""
    from flashtrade_lib.trading import stats

    flat, constant = np.zeros(40), np.full(40, 0.01)
    assert stats.block_bootstrap_ci(flat, "sharpe", periods=252, reps=99).estimate == m.sharpe(flat, 252) == 0
    assert math.isnan(m.sharpe(constant, 252))
    with pytest.raises(ValueError, match="undefined"):  # no Sharpe ratio: no interval either
        stats.block_bootstrap_ci(constant, "sharpe", periods=252, reps=99)
    moments = m.sharpe_from_moments(np.array([0.0, 0.01, 0.01]), np.array([0.0, 1e-19, 0.02]),
                                    np.array([0.0, 0.01, 0.03]))
    assert moments[0] == 0 and math.isnan(moments[1]) and moments[2] == 0.5


@pytest.mark.parametrize("bad", [[0.1, float("nan")], []])
def test_metrics_reject_bad_series(bad) -> None:
    with pytest.raises(ValueError, match="NaN|empty"):
        m.sharpe(np.asarray(bad, dtype=float), 252)


def test_periods_must_be_positive() -> None:
    with pytest.raises(ValueError, match="periods_per_year"):
        m.sharpe(R5, 0)


# ------------------------------------------------------------------ quantstats cross-check

CASES = [("h", "crypto"), ("h", "fx"), ("30min", "equity"), ("D", "crypto"), ("B", "equity"),
         ("W", "fx")]


@pytest.mark.parametrize(("freq", "calendar"), CASES)
def test_matches_quantstats_with_its_periods_argument(freq: str, calendar: str) -> None:
    qs = pytest.importorskip("quantstats")
    rng = np.random.default_rng(len(freq) * 7 + len(calendar))
    idx = pd.date_range("2021-01-04", periods=1500, freq=freq)
    r = pd.Series(rng.standard_t(5, 1500) * 0.01 + 3e-4, index=idx)
    periods = m.periods_per_year(idx, calendar)
    # quantstats defaults to periods=252 — pass our bars per year so like is compared with like
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = [
            (m.sharpe(r, periods), qs.stats.sharpe(r, periods=periods)),
            (m.sharpe(r, periods, rf=0.03), qs.stats.sharpe(r, rf=0.03, periods=periods)),
            (m.sortino(r, periods), qs.stats.sortino(r, periods=periods)),
            (m.annualised_volatility(r, periods), qs.stats.volatility(r, periods=periods)),
            (m.annualised_return(r, periods), qs.stats.cagr(r, periods=periods)),
            (m.max_drawdown(r), qs.stats.max_drawdown(r)),
            (m.calmar(r, periods), qs.stats.calmar(r, periods=periods)),
            (m.hit_rate(r), qs.stats.win_rate(r)),
            (m.total_return(r), qs.stats.comp(r)),
        ]
    for ours, theirs in pairs:
        assert ours == pytest.approx(float(theirs), rel=1e-9)


def test_quantstats_default_is_252_which_is_wrong_for_hourly_crypto() -> None:
    qs = pytest.importorskip("quantstats")
    idx = pd.date_range("2024", periods=1000, freq="h")
    r = pd.Series(np.random.default_rng(1).normal(1e-4, 0.005, 1000), index=idx)
    ratio = m.sharpe(r, m.periods_per_year(idx, "crypto")) / float(qs.stats.sharpe(r))
    assert ratio == pytest.approx(math.sqrt(8760 / 252), rel=1e-9)


def test_summary_and_compare() -> None:
    s = m.summary(R5, 252, turnover=np.ones(5), positions=np.ones((5, 2)))
    assert s["annual_turnover"] == 252 and s["exposure"] == 2 and s["bars"] == 5
    table = m.compare({"a": s, "b": s})
    assert list(table.index) == ["a", "b"] and table.loc["a", "sharpe"] == s["sharpe"]


def test_forecast_skill_matches_independent_computations() -> None:
    from scipy.stats import pearsonr, spearmanr

    from flashtrade_lib.trading.metrics import forecast_skill

    rng = np.random.default_rng(7)
    y = rng.standard_normal(500)
    p = 0.3 * y + rng.standard_normal(500)
    p[:10] = 0.0  # no opinion: left out of the hit rate
    y[10:20] = 0.0  # no move: left out of the hit rate
    s = forecast_skill(p, y)
    assert s.ic == pytest.approx(pearsonr(p, y).statistic)
    assert s.rank_ic == pytest.approx(spearmanr(p, y).statistic)
    assert s.r2 == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    keep = (p != 0) & (y != 0)
    assert s.n_directional == 480
    assert s.hit_rate == pytest.approx(np.mean(np.sign(p[keep]) == np.sign(y[keep])))
    assert s.n == 500


def test_forecast_skill_refuses_and_flags_what_it_cannot_score() -> None:
    from flashtrade_lib.trading.metrics import forecast_skill

    with pytest.raises(ValueError, match="same length"):
        forecast_skill(np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="at least 3 finite"):
        forecast_skill([1.0, np.nan, 2.0], [1.0, 2.0, np.inf])
    constant = forecast_skill(np.ones(10), np.arange(10.0))
    assert np.isnan(constant.ic) and np.isnan(constant.rank_ic)
    assert constant.hit_rate == pytest.approx(1.0)  # nine positive outcomes, one zero left out


def test_annualisation_note_only_for_short_samples() -> None:
    note = m.annualisation_note(288, 8760)  # 12 days of hourly bars
    assert note is not None and "12.0 days" in note and "30-fold" in note
    assert m.annualisation_note(8760, 8760) is None


def test_annualised_intervals_bracket_the_point_estimates() -> None:
    r = np.random.default_rng(3).normal(2e-4, 0.01, 3000)
    ci = m.annualised_intervals(r, 8760, reps=300)
    assert ci["sharpe"].estimate == pytest.approx(m.sharpe(r, 8760))
    assert ci["annual_return"].estimate == pytest.approx(m.annualised_return(r, 8760))
    for res in ci.values():
        assert res.low < res.estimate < res.high
