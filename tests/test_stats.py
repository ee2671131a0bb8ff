"""Tests of flashtrade_lib.trading.stats: each hand-written statistic against a published example or
an independent computation (Monte Carlo, a brute-force loop, scipy), each library-backed one
against what it must do on data whose answer is known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from flashtrade_lib.trading import stats as st


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n + 200)
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, e.size):
        x[t] = phi * x[t - 1] + e[t]
    return x[200:]


def _clustered_vol(n: int, seed: int) -> np.ndarray:
    """Uncorrelated returns whose volatility is persistent (log-vol AR(1)): fat tails, clustering."""
    rng = np.random.default_rng(seed)
    log_vol = _ar1(n, 0.98, seed + 1000) * 0.35
    return np.exp(log_vol) * rng.standard_normal(n)


# --- Deflated / Probabilistic Sharpe Ratio -------------------------------------------------

def test_dsr_matches_the_published_worked_example():
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example:
    # N = 100 trials, V[SR_n] = 1/2 (annual), T = 1250 daily bars, annual SR 2.5,
    # skewness -3, kurtosis 10  ->  SR0 = 0.1132 (daily) and DSR = 0.9004.
    sr0 = st.expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    dsr = st.psr_from_moments(2.5 / math.sqrt(250), sr0, 1250, skew=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9004, abs=2e-4)


def test_expected_max_sharpe_agrees_with_monte_carlo():
    # 30 skill-less strategies, 500 bars each: the best sample Sharpe's mean over many draws.
    rng = np.random.default_rng(0)
    n, k, sims = 500, 30, 2000
    best = np.empty(sims)
    for s in range(sims):
        r = rng.standard_normal((n, k))
        best[s] = (r.mean(axis=0) / r.std(axis=0, ddof=1)).max()
    predicted = st.expected_max_sharpe(k, 1.0 / n)  # Var of a sample Sharpe of n normal bars ≈ 1/n
    assert best.mean() == pytest.approx(predicted, rel=0.05)
    assert st.expected_max_sharpe(1, 1.0) == 0.0


def test_psr_standard_error_matches_monte_carlo_for_skewed_fat_tailed_returns():
    # Skewed, fat-tailed returns (shifted lognormal): the Sharpe ratio's sampling sd from the
    # PSR's formula (Mertens 2002) must match the spread seen across samples.
    rng = np.random.default_rng(1)
    n, sims = 2000, 3000
    draws = rng.lognormal(0.0, 0.6, size=(sims, n))
    draws = draws - np.exp(0.18) + 0.08  # positive mean, strong right skew
    srs = draws.mean(axis=1) / draws.std(axis=1, ddof=1)
    pooled = draws.ravel()
    sr, sk, ku = pooled.mean() / pooled.std(), sps.skew(pooled), sps.kurtosis(pooled, fisher=False)
    formula_se = math.sqrt((1 - sk * sr + (ku - 1) / 4 * sr**2) / (n - 1))
    assert srs.std() == pytest.approx(formula_se, rel=0.08)
    normal_se = math.sqrt((1 + sr**2 / 2) / (n - 1))
    assert abs(srs.std() - formula_se) < abs(srs.std() - normal_se)  # the moments matter


def test_psr_is_calibrated_under_its_null():
    # True per-bar Sharpe 0.05: PSR(benchmark 0.05) should exceed 0.95 in about 5 % of samples.
    rng = np.random.default_rng(2)
    n, sims = 400, 1500
    r = 0.05 + rng.standard_normal((sims, n))
    psr = np.array([st.probabilistic_sharpe_ratio(x, benchmark_sharpe=0.05).p_value for x in r])
    rejection = float((psr < 0.05).mean())
    assert 0.03 < rejection < 0.075


def test_dsr_deflates_and_counts_every_trial():
    rng = np.random.default_rng(3)
    r = 0.0004 + 0.01 * rng.standard_normal(4000)
    one = st.probabilistic_sharpe_ratio(r, periods=8760)
    trials = [0.5, -0.3, 1.2, 0.1, 2.0]
    few = st.deflated_sharpe_ratio(r, trials, periods=8760)
    many = st.deflated_sharpe_ratio(r, trials, n_trials=200, periods=8760)
    assert few.n_trials == 5 and many.n_trials == 200
    assert one.p_value < few.p_value < many.p_value  # more trials, a higher bar
    assert few.estimate == pytest.approx(one.estimate)
    with pytest.raises(ValueError, match="count every trial"):
        st.deflated_sharpe_ratio(r, trials, n_trials=3, periods=8760)


# --- PBO by CSCV ------------------------------------------------------------------------

def _pbo_brute_force(x: np.ndarray, n_splits: int) -> np.ndarray:
    """An independent, slow CSCV: concatenate the blocks, rank with scipy, loop over splits."""
    blocks = np.array_split(np.arange(x.shape[0]), n_splits)
    logits = []
    for combo in itertools.combinations(range(n_splits), n_splits // 2):
        is_rows = np.concatenate([blocks[i] for i in combo])
        oos_rows = np.concatenate([blocks[i] for i in range(n_splits) if i not in combo])
        sr_is = x[is_rows].mean(0) / x[is_rows].std(0, ddof=1)
        sr_oos = x[oos_rows].mean(0) / x[oos_rows].std(0, ddof=1)
        best = int(np.argmax(sr_is))
        omega = sps.rankdata(sr_oos, method="min")[best] / (x.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
    return np.array(logits)


def test_pbo_matches_a_brute_force_cscv():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((600, 5)) * 0.01
    x[:, 2] += 0.001
    res = st.pbo_cscv(x, n_splits=6)
    # np.linspace edges vs np.array_split differ only in where the remainder goes: use n divisible.
    np.testing.assert_allclose(np.sort(res.logits), np.sort(_pbo_brute_force(x, 6)), atol=1e-12)
    assert res.n_combinations == math.comb(6, 3)


def test_pbo_is_about_one_half_without_skill_and_near_zero_with_it():
    rng = np.random.default_rng(5)
    noise = [st.pbo_cscv(rng.standard_normal((800, 10)), n_splits=8).pbo for _ in range(20)]
    assert 0.35 < float(np.mean(noise)) < 0.65
    skilled = rng.standard_normal((800, 10))
    skilled[:, 0] += 0.3
    assert st.pbo_cscv(skilled, n_splits=8).pbo < 0.05


# --- bootstrap and paired tests ----------------------------------------------------------

def test_block_length_grows_with_dependence():
    assert st.block_length(np.random.default_rng(6).standard_normal(3000)) < 3
    assert st.block_length(_ar1(3000, 0.8, 7)) > 8


def test_bootstrap_interval_of_a_mean_agrees_with_hac_on_autocorrelated_data():
    x = _ar1(4000, 0.5, 8) + 0.05
    boot = st.block_bootstrap_ci(x, "mean", reps=999, seed=0)
    hac = st.hac_mean_test(x, max_lag=20)
    iid_half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert (boot.high - boot.low) / 2 == pytest.approx((hac.high - hac.low) / 2, rel=0.25)
    assert (hac.high - hac.low) / 2 > 1.5 * iid_half  # the i.i.d. interval is too narrow here
    assert boot.low < boot.estimate < boot.high


def test_paired_sharpe_test_finds_a_real_difference_and_none_between_twins():
    rng = np.random.default_rng(9)
    market = 0.01 * rng.standard_normal(5000)
    good = market + 0.002 + 0.002 * rng.standard_normal(5000)
    res = st.paired_difference_test(good, market, "sharpe", periods=8760, names=("good", "market"))
    assert res.p_value < 0.01 and res.low > 0
    assert res.name == "Sharpe(good) − Sharpe(market)" and res.block is not None and res.block >= 1
    same = st.paired_difference_test(market, market.copy(), "sharpe", periods=8760)
    assert same.estimate == 0 and same.p_value == 1.0


def test_paired_ic_test_uses_the_outcome():
    rng = np.random.default_rng(10)
    y = rng.standard_normal(3000)
    skilled, unskilled = 0.2 * y + rng.standard_normal(3000), rng.standard_normal(3000)
    res = st.paired_difference_test(skilled, unskilled, "ic", outcome=y, names=("skilled", "unskilled"))
    direct = np.corrcoef(skilled, y)[0, 1] - np.corrcoef(unskilled, y)[0, 1]
    assert res.estimate == pytest.approx(direct)
    assert res.p_value < 0.01
    with pytest.raises(ValueError, match="outcome"):
        st.paired_difference_test(skilled, unskilled, "ic")


def test_paired_test_rejects_misaligned_series():
    a = pd.Series(np.random.default_rng(11).standard_normal(100), index=pd.RangeIndex(100))
    b = pd.Series(a.to_numpy(), index=pd.RangeIndex(1, 101))
    with pytest.raises(ValueError, match="different indexes"):
        st.paired_difference_test(a, b)
    with pytest.raises(ValueError, match="NaN"):
        st.paired_difference_test(np.r_[a.to_numpy()[:-1], np.nan], a.to_numpy())


# --- clusters, effective sample size, HAC, ACF band --------------------------------------

def test_clustered_interval_is_a_t_interval_over_cluster_means():
    # the example: 6 runs = 3 folds x 2 seeds sharing each fold's test bars
    ic = np.array([0.01, 0.05, -0.02, 0.03, 0.06, 0.01])
    fold = np.array([0, 0, 1, 1, 2, 2])
    res = st.clustered_mean_ci(ic, fold, name="IC")
    means = pd.Series(ic).groupby(fold).mean().to_numpy()
    lo, hi = sps.t.interval(0.95, len(means) - 1, loc=means.mean(), scale=sps.sem(means))
    assert (res.low, res.high) == pytest.approx((lo, hi))
    assert res.p_value == pytest.approx(sps.ttest_1samp(means, 0.0).pvalue)
    z_half = 1.96 * ic.std(ddof=1) / math.sqrt(ic.size)
    assert (res.high - res.low) / 2 > 1.5 * z_half  # z = 1.96 over 6 runs is too narrow
    with pytest.raises(ValueError, match="at least 2 clusters"):
        st.clustered_mean_ci(ic, np.zeros(6))


def test_effective_sample_size_of_overlapping_labels():
    rng = np.random.default_rng(12)
    h, n = 24, 20000
    labels = np.convolve(rng.standard_normal(n + h - 1), np.ones(h), "valid")  # 24-bar forward sums
    assert st.effective_sample_size(labels, overlap=h) == pytest.approx(n / h, rel=0.2)
    iid = rng.standard_normal(n)
    assert st.effective_sample_size(iid) > 0.85 * n
    assert st.effective_sample_size(iid) <= n


def test_hac_interval_widens_with_label_overlap():
    rng = np.random.default_rng(13)
    h = 10
    labels = np.convolve(rng.standard_normal(10009), np.ones(h), "valid")
    hac = st.hac_mean_test(labels, max_lag=2 * h)
    iid_half = 1.96 * labels.std(ddof=1) / math.sqrt(labels.size)
    assert (hac.high - hac.low) / 2 == pytest.approx(iid_half * math.sqrt(h), rel=0.25)


def test_robust_acf_band_keeps_its_size_when_volatility_clusters():
    # Monte Carlo size of "|ACF(1)| outside the band" for uncorrelated returns with clustered
    # volatility: the i.i.d. band rejects far too often, the robust band about 5 % of the time.
    sims, n = 300, 2000
    out_iid = out_robust = 0
    for s in range(sims):
        band = st.robust_acf_band(_clustered_vol(n, s), 1)
        out_iid += abs(band.acf[1]) > band.iid
        out_robust += abs(band.acf[1]) > band.robust[1]
    assert out_iid / sims > 0.12
    assert out_robust / sims < 0.09
    iid = st.robust_acf_band(np.random.default_rng(14).standard_normal(5000), 10)
    assert np.median(iid.robust[1:]) == pytest.approx(iid.iid, rel=0.1)


# --- SPA and MCS ---------------------------------------------------------------------------

def test_spa_finds_the_one_real_edge_among_many_and_not_in_noise():
    rng = np.random.default_rng(15)
    n = 3000
    bench = 0.01 * rng.standard_normal(n)
    noise = pd.DataFrame(0.01 * rng.standard_normal((n, 8)), columns=[f"s{i}" for i in range(8)])
    res = st.spa_test(bench, noise, reps=500, seed=0)
    assert res.n_trials == 8 and res.p_value > 0.05 and res.alternative == "greater"
    edge = noise.copy()
    edge["real"] = bench + 0.002 + 0.002 * rng.standard_normal(n)
    res = st.spa_test(bench, edge, reps=500, seed=0)
    assert res.best == "real" and res.p_value < 0.01 and res.n_trials == 9


def test_model_confidence_set_drops_the_clearly_worse():
    rng = np.random.default_rng(16)
    n = 2000
    base = 0.01 * rng.standard_normal(n)
    gains = pd.DataFrame({"best": base + 0.003, "good": base + 0.0028, "bad": base - 0.003,
                          "worse": base - 0.006})
    gains += 0.001 * rng.standard_normal(gains.shape)
    res = st.model_confidence_set(gains, reps=500, seed=0)
    assert "best" in res.included and "bad" in res.excluded and "worse" in res.excluded
    assert res.n_trials == 4


# --- verdicts -------------------------------------------------------------------------------

def _result(estimate: float, p: float, **kw) -> st.TestResult:
    return st.TestResult(name="Sharpe(x) − Sharpe(y)", estimate=estimate, low=estimate - 1, high=estimate + 1,
                         level=0.95, p_value=p, method="test", n=100, **kw)


def test_verdict_words_are_chosen_by_the_result():
    claim = "x beats y on net Sharpe"
    yes = st.verdict(_result(0.8, 0.01), claim)
    assert yes.holds and yes.sentence.startswith("X beats y on net Sharpe (") and "p = 0.010" in yes.sentence
    no = st.verdict(_result(0.8, 0.2), claim)
    assert not no.holds and no.sentence.startswith("No evidence at the 5% level that x beats y")
    wrong_way = st.verdict(_result(-0.8, 0.01), claim, opposite="y beats x on net Sharpe")
    assert not wrong_way.holds and wrong_way.sentence.startswith("Y beats x")
    assert not st.verdict(_result(-0.8, 0.01), claim).holds
    one_sided = _result(0.8, 0.01, alternative="greater")
    with pytest.raises(ValueError, match="positive claims"):
        st.verdict(one_sided, claim, positive=False)
    assert str(yes) == yes.sentence == yes._repr_markdown_()


def test_results_print_their_test():
    res = st.clustered_mean_ci([0.1, 0.2, 0.3], name="IC", n_trials=4)
    text = str(res)
    assert "IC +0.2" in text and "95 % CI" in text and "t with 2 df" in text and "4 trials counted" in text
    assert st.format_p(0.0004) == "p < 0.001" and st.format_p(0.5) == "p = 0.50"


def test_robust_portmanteau_keeps_its_size_and_finds_real_autocorrelation():
    sims, n, m = 200, 2000, 10
    rejections = sum(st.robust_acf_band(_clustered_vol(n, 500 + s), m).portmanteau().p_value < 0.05
                     for s in range(sims))
    assert rejections / sims < 0.09
    res = st.robust_acf_band(_ar1(5000, 0.1, 17), m).portmanteau()
    assert res.p_value < 0.01 and res.alternative == "greater" and "10 df" in res.method


def test_sharpe_interval_is_seeded_brackets_the_estimate_and_widens_with_blocks():
    # (formerly metrics.sharpe_bootstrap_ci: one bootstrap for the book, on arch)
    r = _ar1(3000, 0.6, 18) * 0.01 + 2e-4
    a = st.block_bootstrap_ci(r, "sharpe", periods=8760, reps=400, seed=1)
    assert a == st.block_bootstrap_ci(r, "sharpe", periods=8760, reps=400, seed=1)
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(8760))
    iid = st.block_bootstrap_ci(r, "sharpe", periods=8760, reps=400, block=1, seed=0)
    assert (a.high - a.low) > 1.4 * (iid.high - iid.low)  # an i.i.d. bootstrap is over-confident


def test_verdict_counts_untested_trials_with_bonferroni():
    four = _result(0.8, 0.02, n_trials=4)
    v = st.verdict(four, "x beats y")
    assert not v.holds and "Bonferroni" in v.sentence and "1.25%" in v.sentence
    assert st.verdict(_result(0.8, 0.01, n_trials=4), "x beats y").holds
    spa_like = _result(0.8, 0.02, n_trials=4, alternative="greater", trials_adjusted=True)
    assert st.verdict(spa_like, "x beats y").holds


def test_clustered_summary_is_one_clustered_interval_per_group():
    runs = pd.DataFrame({"lookback": [8] * 6 + [64] * 6, "fold": [0, 0, 1, 1, 2, 2] * 2,
                         "seed": [0, 1] * 6,
                         "ic": [0.01, 0.05, -0.02, 0.03, 0.06, 0.01, 0.1, 0.12, 0.08, 0.09, 0.11, 0.1]})
    table = st.clustered_summary(runs, "ic", by="lookback", cluster="fold")
    one = st.clustered_mean_ci(runs.ic[runs.lookback == 64], runs.fold[runs.lookback == 64])
    assert list(table.index) == [8, 64] and list(table["clusters"]) == [3, 3] and list(table["runs"]) == [6, 6]
    assert (table.loc[64, "ci_low"], table.loc[64, "ci_high"]) == pytest.approx((one.low, one.high))
    with pytest.raises(ValueError, match="no column"):
        st.clustered_summary(runs, "sharpe", by="lookback", cluster="fold")


# --- the DSR fed the right inputs (issue #28) ----------------------------------------------

def _trial_frame(seed: int = 4, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    market = 0.01 * rng.standard_normal(n)
    base = 0.01 * rng.standard_normal(n)
    frame = {"buy-and-hold": market + 0.002}  # a strong benchmark that no search selected
    for k in range(6):  # one forecast at six thresholds: near-duplicates
        frame[f"rule k={k}"] = base * (1 - 0.01 * k) + 0.0005 * rng.standard_normal(n)
    frame["other"] = 0.01 * rng.standard_normal(n)
    frame["never trades"] = np.zeros(n)
    return pd.DataFrame(frame)


def test_dsr_excludes_the_benchmark_nobody_selected_and_refuses_it_alone():
    frame = _trial_frame()
    res = st.deflate_selection(frame, not_selected=["buy-and-hold"], periods=8760)
    assert "buy-and-hold" not in res.name and "excluded (not selected)" in res.method
    with pytest.raises(ValueError, match="no selected strategy"):
        st.deflate_selection(frame[["buy-and-hold"]], not_selected=["buy-and-hold"], periods=8760)
    with pytest.raises(ValueError, match="not columns"):
        st.deflate_selection(frame, not_selected=["buy and hold"], periods=8760)


def test_dsr_counts_near_duplicates_once_and_uses_the_null_sampling_variance():
    frame = _trial_frame().drop(columns="buy-and-hold")
    assert st.effective_trials(frame) == 3  # the six-threshold rule, "other", and the flat one
    res = st.deflate_selection(frame, periods=8760, extra_trials=10)
    assert res.n_trials == 13
    assert "Sharpe sd under no skill 1.71" in res.method  # sqrt(8760 / 2999)
    assert st.sharpe_null_variance(6000, 8760) == pytest.approx(1.21**2, rel=0.01)


def test_bootstrap_p_at_its_floor_is_printed_as_a_bound():
    assert st.format_p(2 / 1001, reps=1000) == "p ≤ 0.002 (the floor of 1000 resamples)"
    assert st.format_p(1 / 501, reps=500, two_sided=False).startswith("p ≤ 0.002")
    assert st.format_p(0.01, reps=1000) == "p = 0.010"


def test_fisher_z_keeps_a_two_fold_ic_interval_inside_minus_one_one():
    raw = st.clustered_mean_ci([0.3, -0.1, 0.25, -0.05], [0, 1, 0, 1])
    fisher = st.clustered_mean_ci([0.3, -0.1, 0.25, -0.05], [0, 1, 0, 1], correlation=True)
    assert raw.low < -1 or raw.high > 1  # t with 1 df on raw ICs leaves [-1, 1]
    assert -1 < fisher.low < fisher.estimate < fisher.high < 1


def test_minimum_detectable_difference_scales_with_the_interval():
    rng = np.random.default_rng(5)
    y = rng.standard_normal(800)
    a, b = y + 3 * rng.standard_normal(800), y + 3 * rng.standard_normal(800)
    res = st.paired_difference_test(a, b, "ic", outcome=y, reps=199)
    mde = st.minimum_detectable_difference(res)
    assert mde == pytest.approx(2.8016 * (res.high - res.low) / (2 * 1.95996), rel=1e-3)
    with pytest.raises(ValueError, match="bar-level bootstrap"):
        st.minimum_detectable_difference(st.clustered_mean_ci([0.1, 0.2, 0.3]))


def test_adjusted_verdicts_quote_adjusted_intervals():
    rng = np.random.default_rng(6)
    x = 0.05 + rng.standard_normal(600)
    one = st.block_bootstrap_ci(x, "mean", reps=499)
    four = st.block_bootstrap_ci(x, "mean", reps=499, n_trials=4)
    text = str(st.verdict(four, "the mean is positive"))
    assert "98.75 % CI" in text and "95 % CI" in str(st.verdict(one, "the mean is positive"))
    wide = four.at_level(0.9875)
    assert wide.low < one.low and wide.high > one.high
    t_four = st.clustered_mean_ci([0.1, 0.2, 0.3], n_trials=4)
    assert "(interval not adjusted)" in str(st.verdict(t_four, "the mean is positive"))


def test_trading_verdicts_say_when_a_rule_did_not_trade():
    rng = np.random.default_rng(7)
    res = st.paired_difference_test(0.01 * rng.standard_normal(300), 0.01 * rng.standard_normal(300), "mean",
                                    reps=199)
    never = st.traded_verdict(res, "the cost-aware rule improves mean reversion", trades=0, strategy="the rule")
    few = st.traded_verdict(res, "the cost-aware rule improves mean reversion", trades=7, strategy="the rule")
    assert not never.holds and "by not trading" in never.sentence
    assert not few.holds and "too few trades (7" in few.sentence
    assert st.traded_verdict(res, "x", trades=50, strategy="s").sentence == st.verdict(res, "x").sentence


def test_pbo_says_one_quantity_per_sentence():
    rng = np.random.default_rng(8)
    text = str(st.pbo_cscv(pd.DataFrame(rng.standard_normal((400, 5))), n_splits=4))
    first, second = text.split(". Separately, ")
    assert "PBO" in first and "negative" not in first and "negative" in second and "median" not in second
