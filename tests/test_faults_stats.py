"""Fault injection — statistics that refuse nonsense (issue #29, item 2).

Every entry point of :mod:`flashtrade_lib.trading.stats` validates its settings (block
lengths, sizes, periods, resamples, split counts) before any work, and a degenerate input
(constant or near-constant series, identical candidates) gets either a clear refusal or
the honest answer — no interval, p = 1 when the statistic equals the null exactly, else
p undefined — so :func:`verdict` never calls it "positive" or "beats". Property tests
(hypothesis, the ``ci`` profile from conftest) sweep the degenerate inputs.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashtrade_lib.trading import stats

pytestmark = pytest.mark.timeout(300)

FAST = {"reps": 99}
RNG = np.random.default_rng(0)
NOISE = RNG.normal(0, 0.01, 300)

constants = st.floats(-1e6, 1e6, allow_nan=False).filter(lambda c: c == 0 or abs(c) > 1e-300)
lengths = st.integers(10, 300)


def _no_claim(result: stats.TestResult) -> None:
    v = stats.verdict(result, "the strategy is positive")
    assert not v.holds and v.sentence.startswith("No evidence")
    assert math.isnan(result.low) and math.isnan(result.high)
    assert result.p_value == 1.0 or math.isnan(result.p_value)
    assert result.method.startswith("not tested: ")


# ---------------------------------------------------------------- constant series


@given(c=constants, n=lengths, statistic=st.sampled_from(["sharpe", "mean"]))
def test_a_constant_series_is_never_significant(c: float, n: int, statistic: str) -> None:
    if statistic == "sharpe" and c != 0:  # no risk: the Sharpe ratio itself is undefined, so refused
        with pytest.raises(ValueError, match="sharpe is undefined: x is constant"):
            stats.block_bootstrap_ci(np.full(n, c), statistic, **FAST)
        return
    res = stats.block_bootstrap_ci(np.full(n, c), statistic, **FAST)
    _no_claim(res)
    assert res.estimate == pytest.approx(c) if statistic == "mean" else res.estimate == 0.0
    assert (res.p_value == 1.0) == (res.estimate == 0)


def test_the_issues_constant_sharpe_is_not_5e17() -> None:
    x = np.full(200, 0.001)  # its computed sd is rounding noise (2e-19 with numpy's sums), not always 0
    with pytest.raises(ValueError, match=r"^sharpe is undefined: x is constant \(sd <= 1e-10 × its size\)"):
        stats.block_bootstrap_ci(x, "sharpe", periods=8760, **FAST)
    res = stats.block_bootstrap_ci(x, "mean", **FAST)  # the mean is defined, but nothing varies to test it
    assert res.estimate == pytest.approx(0.001) and math.isnan(res.p_value)
    assert "not tested: x is constant" in str(res)
    assert str(stats.verdict(res, "the mean is positive")).startswith("No evidence at the 5% level")


@given(c=constants.filter(lambda c: c != 0), n=lengths, eps=st.floats(0, 1e-12))
def test_near_constant_returns_are_refused_by_psr_and_dsr(c: float, n: int, eps: float) -> None:
    x = np.full(n, c) * (1 + eps * np.sin(np.arange(n)))
    with pytest.raises(ValueError, match="the returns are constant: the Sharpe ratio is undefined"):
        stats.probabilistic_sharpe_ratio(x)
    with pytest.raises(ValueError, match="the returns are constant"):
        stats.deflated_sharpe_ratio(x, [0.1, 0.5, 0.9])


@given(c=constants, n=lengths)
def test_constant_series_in_the_other_tests(c: float, n: int) -> None:
    x = np.full(n, c)
    _no_claim(stats.hac_mean_test(x))
    with pytest.raises(ValueError, match="x is constant: its effective sample size is undefined"):
        stats.effective_sample_size(x)
    with pytest.raises(ValueError, match="x is constant: its autocorrelation is undefined"):
        stats.robust_acf_band(x, 5)
    assert stats.block_length(x) == 1.0


@given(c=constants)
def test_equal_cluster_means_are_no_evidence(c: float) -> None:
    res = stats.clustered_mean_ci([c, c, c, c], clusters=[0, 0, 1, 1])
    _no_claim(res)  # before: p = 0 for any c != 0 ("significant")


# ---------------------------------------------------------------- identical candidates


@given(n=st.integers(20, 200), k=st.integers(1, 4))
def test_spa_over_candidates_identical_to_the_benchmark_beats_nothing(n: int, k: int) -> None:
    bench = NOISE[:n]
    res = stats.spa_test(bench, pd.DataFrame({f"c{i}": bench for i in range(k)}), **FAST)
    _no_claim(res)
    assert res.estimate == 0.0 and res.p_value == 1.0 and res.n_trials == k
    assert "A candidate beats" not in str(stats.verdict(res, "a candidate beats the benchmark"))


def test_spa_over_all_flat_candidates_and_a_flat_benchmark() -> None:
    res = stats.spa_test(np.zeros(100), pd.DataFrame({"a": np.zeros(100), "b": np.zeros(100)}), **FAST)
    _no_claim(res)
    assert res.p_value == 1.0


def test_spa_with_a_constant_advantage_is_untestable_not_significant() -> None:
    res = stats.spa_test(NOISE[:100], pd.DataFrame({"a": NOISE[:100] + 0.01}), **FAST)
    _no_claim(res)
    assert math.isnan(res.p_value) and res.estimate == pytest.approx(0.01)


@given(n=st.integers(20, 200), statistic=st.sampled_from(["sharpe", "mean"]))
def test_a_paired_test_of_a_series_with_itself_claims_nothing(n: int, statistic: str) -> None:
    res = stats.paired_difference_test(NOISE[:n], NOISE[:n].copy(), statistic, **FAST)
    _no_claim(res)
    assert res.estimate == 0.0 and res.p_value == 1.0


def test_a_paired_test_against_cash_is_still_a_test() -> None:
    # an all-zero benchmark (no position) is legitimate: its Sharpe is 0, the difference varies
    res = stats.paired_difference_test(NOISE[:200], np.zeros(200), "sharpe", **FAST)
    assert np.isfinite(res.low) and 0 < res.p_value <= 1 and not res.method.startswith("not tested")


def test_identical_candidates_are_refused_by_the_model_confidence_set() -> None:
    frame = pd.DataFrame({"a": NOISE[:100], "b": NOISE[:100] + 0.5, "c": NOISE[100:200]})
    with pytest.raises(ValueError, match="candidates 'a' and 'b' are identical on every bar"):
        stats.model_confidence_set(frame, **FAST)


# ---------------------------------------------------------------- settings refused up front


BAD_BLOCKS = [0, -3, 0.5, 1e9, 151, float("nan"), float("inf"), True]


@pytest.mark.parametrize("block", BAD_BLOCKS)
@pytest.mark.parametrize("test", ["ci", "paired", "spa", "mcs"])
def test_a_block_outside_1_to_half_the_sample_is_refused(block: float, test: str) -> None:
    x, frame = NOISE, pd.DataFrame({"a": NOISE, "b": NOISE[::-1].copy()})
    call = {
        "ci": lambda: stats.block_bootstrap_ci(x, "sharpe", block=block, **FAST),
        "paired": lambda: stats.paired_difference_test(x, x[::-1].copy(), block=block, **FAST),
        "spa": lambda: stats.spa_test(x, frame, block=block, **FAST),
        "mcs": lambda: stats.model_confidence_set(frame, block=block, **FAST),
    }[test]
    with pytest.raises(ValueError, match=r"block \(mean block length in bars\) must be .* between 1 and half "
                                         r"the sample \(150 bars\)"):
        call()


@pytest.mark.parametrize("periods", [0, -252, float("nan"), float("inf")])
def test_periods_must_be_a_positive_finite_number(periods: float) -> None:
    for call in (lambda: stats.block_bootstrap_ci(NOISE, "sharpe", periods=periods, **FAST),
                 lambda: stats.probabilistic_sharpe_ratio(NOISE, periods=periods),
                 lambda: stats.deflated_sharpe_ratio(NOISE, [0.1, 0.2], periods=periods),
                 lambda: stats.spa_test(NOISE, pd.DataFrame({"a": NOISE[::-1].copy()}), periods=periods, **FAST)):
        with pytest.raises(ValueError, match=r"periods \(bars per year, or 1 per bar\) must be a finite number > 0"):
            call()


@pytest.mark.parametrize("size", [1.5, 0, 1, -0.1, float("nan")])
def test_mcs_size_outside_0_1_is_refused(size: float) -> None:
    frame = pd.DataFrame({"a": NOISE, "b": NOISE[::-1].copy()})
    with pytest.raises(ValueError, match=r"size \(the MCS's error rate, e.g. 0.10 for a 90 % set\) must be in \(0, 1\)"):
        stats.model_confidence_set(frame, size=size, **FAST)


@pytest.mark.parametrize("reps", [0, 98, 2.5, 10**7])
def test_resamples_out_of_range_are_refused(reps: float) -> None:
    with pytest.raises(ValueError, match=r"reps \(bootstrap resamples\) must be a whole number between 99 and"):
        stats.block_bootstrap_ci(NOISE, reps=reps)


def test_pbo_refuses_a_split_count_that_would_explode_before_allocating() -> None:
    returns = pd.DataFrame(RNG.normal(0, 0.01, (400, 5)))
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"n_splits=28 means 40,116,600 CSCV splits of 5 strategies, about "
                                         r"[\d.]+ GiB of working memory \(at most 2 GiB\); use n_splits=\d+ or fewer"):
        stats.pbo_cscv(returns, n_splits=28)
    assert time.monotonic() - t0 < 1.0  # refused up front, nothing built


@pytest.mark.parametrize("n_splits, pattern", [(7, "an even number"), (2.0, "a whole number"),
                                                (0, "a whole number between 2 and 400"),
                                                (402, "a whole number between 2 and 400")])
def test_pbo_refuses_bad_split_counts(n_splits: float, pattern: str) -> None:
    with pytest.raises(ValueError, match=f"n_splits must be {pattern}"):
        stats.pbo_cscv(pd.DataFrame(RNG.normal(0, 0.01, (400, 3))), n_splits=n_splits)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"n_trials": 0}, "n_trials"), ({"n_trials": 2.5}, "n_trials"),
    ({"level": float("nan")}, "level must be in"), ({"level": 1}, "level must be in"),
])
def test_trials_and_levels_are_checked(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        stats.block_bootstrap_ci(NOISE, **kwargs, **FAST)


@pytest.mark.parametrize("call, pattern", [
    (lambda: stats.psr_from_moments(float("nan"), 0, 100), "sharpe must be a finite number"),
    (lambda: stats.psr_from_moments(0.1, 0, 1), r"n \(observations\) must be a whole number >= 2"),
    (lambda: stats.expected_max_sharpe(0, 1.0), "n_trials must be a whole number >= 1"),
    (lambda: stats.expected_max_sharpe(5, float("nan")), "variance of the trials' Sharpe ratios must be >= 0"),
    (lambda: stats.effective_sample_size(NOISE, overlap=0), r"overlap \(bars two labels share\)"),
    (lambda: stats.hac_mean_test(NOISE, max_lag=-1), "max_lag must be a whole number between 0 and 299"),
    (lambda: stats.robust_acf_band(NOISE, 300), "max_lag must be a whole number between 1 and 299"),
])
def test_other_settings_are_refused_with_what_was_wrong(call, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        call()


def test_verdict_claims_nothing_from_an_undefined_result() -> None:
    nan = float("nan")
    for estimate, p in ((nan, 0.001), (1.0, nan), (nan, nan)):
        res = stats.TestResult(name="x", estimate=estimate, low=nan, high=nan, level=0.95, p_value=p,
                               method="m", n=100)
        assert not stats.verdict(res, "it works").holds
