"""The vectorised backtest: hand-computed cases, the slow loop, look-ahead, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.exercises import check
from flashtrade_lib.trading.backtest import (
    apply_caps,
    backtest,
    backtest_loop,
    market_returns,
    sign_weights,
)
from flashtrade_lib.trading.seed_mistakes import seed_style_backtest

EXACT = {"rtol": 0, "atol": 1e-12}
IDX4 = pd.date_range("2024-01-01", periods=4, freq="h")


def hourly(frame, calendar: str = "crypto"):
    """A test's frame as hourly bars of ``calendar``: the clock a backtest reads from its market."""
    return stamp(frame, "test", "1h", calendar=calendar)


def _hand_market() -> tuple[pd.DataFrame, pd.DataFrame]:
    # returns: A = [., +10%, -10%, 0], B = [., 0, +10%, -20%]
    prices = hourly(pd.DataFrame({"A": [100.0, 110.0, 99.0, 99.0], "B": [50.0, 50.0, 55.0, 44.0]}, IDX4))
    weights = pd.DataFrame({"A": [1.0, 0.5, 0.0, 1.0], "B": [0.0, -0.5, 0.0, 1.0]}, IDX4)
    return prices, weights


def test_hand_computed_positions_pnl_and_costs() -> None:
    prices, weights = _hand_market()
    res = backtest(prices, weights, market_is="prices", position="weights", cost_bps=10)
    # t+1: held h_t = w_{t-1}, flat in bar 0; the last decision is never held
    np.testing.assert_allclose(res.positions, [[0, 0], [1, 0], [0.5, -0.5], [0, 0]], **EXACT)
    np.testing.assert_allclose(res.gross_returns, [0, 0.1, 0.5 * -0.1 - 0.5 * 0.1, 0], **EXACT)
    # drift: after bar 2 the weights are 0.5*0.9/0.9 = 0.5 and -0.5*1.1/0.9 = -11/18
    np.testing.assert_allclose(res.turnover, [0, 1, 1, 0.5 + 11 / 18], **EXACT)
    np.testing.assert_allclose(res.costs, [0, 1e-3, 1e-3, (0.5 + 11 / 18) * 1e-3], **EXACT)
    net = np.array([0, 0.1 - 1e-3, -0.1 - 1e-3, -(0.5 + 11 / 18) * 1e-3])
    np.testing.assert_allclose(res.returns, net, **EXACT)
    np.testing.assert_allclose(res.equity, np.cumprod(1 + net), **EXACT)
    np.testing.assert_allclose(
        res.asset_pnl,
        [[0, 0], [0.1 - 1e-3, 0], [-0.05 - 5e-4, -0.05 - 5e-4], [-5e-4, -(11 / 18) * 1e-3]],
        **EXACT,
    )
    np.testing.assert_allclose(res.asset_pnl.sum(axis=1), res.returns, **EXACT)
    trades = res.trades
    assert len(trades) == 5
    assert trades.iloc[0]["decided"] == IDX4[0] and trades.iloc[0]["held_from"] == IDX4[1]
    np.testing.assert_allclose(trades["cost"].sum(), res.costs.sum(), **EXACT)


def test_without_drift_turnover_is_the_weight_change() -> None:
    prices, weights = _hand_market()
    res = backtest(
        prices, weights, market_is="prices", position="weights", cost_bps=10, account_drift=False
    )
    np.testing.assert_allclose(res.turnover, [0, 1, 1, 1], **EXACT)


def test_spread_slippage_and_per_asset_costs_add_up() -> None:
    prices, weights = _hand_market()
    res = backtest(
        prices,
        weights,
        market_is="prices",
        position="weights",
        cost_bps={"A": 2.0, "B": 6.0},
        spread_bps=4.0,  # half of it is paid: 2 bps
        slippage_bps=1.0,
    )
    bps = np.array([5.0, 9.0]) / 1e4
    h = res.positions.to_numpy()
    r = res.asset_returns.to_numpy()
    drifted = h[:-1] * (1 + r[:-1]) / (1 + (h[:-1] * r[:-1]).sum(axis=1, keepdims=True))
    expected = np.r_[0.0, (np.abs(h[1:] - drifted) * bps).sum(axis=1)]
    np.testing.assert_allclose(res.costs, expected, **EXACT)
    np.testing.assert_allclose(res.costs.iloc[1], 5e-4, **EXACT)


def test_funding_is_paid_by_longs_when_positive() -> None:
    prices, weights = _hand_market()
    rate = pd.DataFrame({"A": [0.0, 1e-4, 1e-4, 0.0], "B": [0.0, 0.0, 2e-4, 0.0]}, IDX4)
    res = backtest(prices, weights, market_is="prices", position="weights", funding=rate, cost_bps=0.0)
    np.testing.assert_allclose(res.funding, [0, 1e-4, 0.5e-4 - 0.5 * 2e-4, 0], **EXACT)
    np.testing.assert_allclose(res.returns, res.gross_returns - res.funding, **EXACT)


def test_sign_tanh_and_caps() -> None:
    s = np.array([[0.3, -0.05, 0.0], [-2.0, 0.2, 0.1]])
    np.testing.assert_array_equal(sign_weights(s, 0.1), [[1, 0, 0], [-1, 1, 0]])
    capped = apply_caps(np.array([[2.0, -0.5, 0.25], [0.2, 0.2, -0.1]]), max_weight=1.0, max_gross=1.0)
    # row 0: clip to [1, -0.5, 0.25] (gross 1.75) then scale by 1/1.75; row 1 untouched
    np.testing.assert_allclose(capped[0], np.array([1.0, -0.5, 0.25]) / 1.75, **EXACT)
    np.testing.assert_allclose(capped[1], [0.2, 0.2, -0.1], **EXACT)
    r = hourly(pd.DataFrame({"A": [0.0, 0.01, 0.02, -0.01]}, IDX4))
    sig = pd.Series([0.5, -1.0, 0.0, 2.0], IDX4, name="A")
    res = backtest(r, sig, market_is="simple_returns", position="tanh", scale=2.0, cost_bps=0.0)
    np.testing.assert_allclose(res.targets["A"], np.tanh(2.0 * sig.to_numpy()), **EXACT)


def test_log_returns_are_converted_not_treated_as_simple() -> None:
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024", periods=50, freq="h")
    lr = hourly(pd.DataFrame(rng.normal(0, 0.05, (50, 2)), idx, columns=["x", "y"]))
    sig = pd.DataFrame(rng.normal(size=(50, 2)), idx, columns=["x", "y"])
    from_log = backtest(lr, sig, market_is="log_returns", position="tanh", cost_bps=3)
    from_simple = backtest(np.expm1(lr), sig, market_is="simple_returns", position="tanh", cost_bps=3)
    prices = 100 * np.exp(lr.cumsum())
    from_prices = backtest(prices, sig, market_is="prices", position="tanh", cost_bps=3)
    np.testing.assert_allclose(from_log.returns, from_simple.returns, **EXACT)
    # from prices the first bar has no return, and no position is held there anyway
    np.testing.assert_allclose(from_prices.returns, from_simple.returns, **EXACT)
    wrong = backtest(lr, sig, market_is="simple_returns", position="tanh", cost_bps=3)
    assert np.abs(wrong.returns - from_log.returns).max() > 1e-4


def _random_case(seed: int, n: int = 300, k: int = 3) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2023-01-01", periods=n, freq="h")
    cols = [f"a{i}" for i in range(k)]
    r = hourly(pd.DataFrame(rng.standard_t(4, (n, k)) * 0.01, idx, columns=cols))
    s = pd.DataFrame(rng.normal(size=(n, k)), idx, columns=cols)
    f = pd.DataFrame(rng.normal(0, 1e-4, (n, k)), idx, columns=cols)
    return r, s, f


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position": "sign", "threshold": 0.2},
        {"position": "tanh", "scale": 3.0, "max_weight": 0.6, "max_gross": 1.5},
        {"position": "weights", "account_drift": False},
        {"position": "tanh", "target_vol": 0.3, "vol_lookback": "24h", "max_gross": 2.0},
    ],
)
def test_vectorised_equals_the_per_bar_loop(kwargs: dict) -> None:
    r, s, f = _random_case(11)
    fast = backtest(
        r, s, market_is="simple_returns", cost_bps=7.5, funding=f, capital=1000.0, **kwargs
    )
    in_bars = {**kwargs, "vol_lookback": 24} if "vol_lookback" in kwargs else kwargs  # the loop counts bars
    slow = backtest_loop(r, s, cost_bps=7.5, funding=f, periods=8760, capital=1000.0, **in_bars)
    for name, series in [
        ("net", fast.returns),
        ("gross", fast.gross_returns),
        ("costs", fast.costs),
        ("funding", fast.funding),
        ("turnover", fast.turnover),
        ("positions", fast.positions),
    ]:
        np.testing.assert_allclose(series.to_numpy(), slow[name], err_msg=name, **EXACT)
    np.testing.assert_allclose(fast.equity.to_numpy(), slow["equity"], rtol=1e-12)


def test_asset_pnl_with_funding_and_per_asset_costs_adds_up() -> None:
    """Per-asset P&L is derived on demand; it must add up to every bar's net return,
    and the caller mutating its frames afterwards must not change it."""
    r, s, f = _random_case(21)
    costs = {"a0": 2.0, "a1": 6.0, "a2": 11.0}
    res = backtest(r, s, market_is="simple_returns", position="tanh", cost_bps=costs,
                   spread_bps=3.0, funding=f, max_gross=1.2)
    pnl = res.asset_pnl.copy()
    np.testing.assert_allclose(pnl.sum(axis=1), res.returns, **EXACT)
    # one asset's P&L by hand: held x return - |trade| x its cost - held x funding
    h, trade = res.positions["a1"], res.trades.query("asset == 'a1'")
    cost_a1 = pd.Series(0.0, index=r.index)
    cost_a1[trade["held_from"]] = trade["size"].abs().to_numpy() * (6.0 + 1.5) / 1e4
    np.testing.assert_allclose(pnl["a1"], h * r["a1"] - cost_a1 - h * f["a1"], **EXACT)
    f.iloc[:, :] = 1.0
    r.iloc[:, :] = 0.5
    res.__dict__.pop("asset_pnl")  # drop the cached value: recompute from what res holds
    res.__dict__.pop("_weights_before_rebalance")
    np.testing.assert_allclose(res.asset_pnl, pnl, **EXACT)


@pytest.mark.parametrize("block", [1, 7, 64])
def test_block_boundaries_change_nothing(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine works through the bars in cache-sized blocks: the split must not show."""
    import flashtrade_lib.trading.backtest as bt

    r, s, f = _random_case(13)
    kwargs = {"position": "tanh", "target_vol": 0.3, "vol_lookback": "24h", "max_gross": 1.5,
              "cost_bps": {"a0": 3.0, "a1": 5.0, "a2": 8.0}, "funding": f}
    whole = backtest(r, s, market_is="simple_returns", **kwargs)
    monkeypatch.setattr(bt, "_BLOCK", block)
    split = backtest(r, s, market_is="simple_returns", **kwargs)
    for a, b in [(whole.returns, split.returns), (whole.turnover, split.turnover),
                 (whole.asset_pnl, split.asset_pnl), (whole.positions, split.positions)]:
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), **EXACT)
    slow = backtest_loop(r, s, cost_bps=0.0, funding=f, position="tanh", target_vol=0.3,
                         vol_lookback=24, periods=8760, max_gross=1.5)
    np.testing.assert_allclose(split.gross_returns.to_numpy(), slow["gross"], **EXACT)
    np.testing.assert_allclose(split.turnover.to_numpy(), slow["turnover"], **EXACT)


@pytest.mark.parametrize("t", [0, 5, 40, 150, 298])
def test_no_look_ahead(t: int) -> None:
    """Changing signals after bar t, or prices after bar t+1, changes nothing up to t+1."""
    r, s, _ = _random_case(5)
    prices = 100 * (1 + r).cumprod()
    kwargs = {"market_is": "prices", "position": "tanh", "target_vol": 0.4, "vol_lookback": "12h",
              "cost_bps": 5, "max_gross": 1.5}
    base = backtest(prices, s, **kwargs)
    rng = np.random.default_rng(t)
    s2 = s.copy()
    s2.iloc[t + 1 :] = rng.normal(size=s2.iloc[t + 1 :].shape) * 10
    p2 = prices.copy()
    p2.iloc[t + 2 :] = p2.iloc[t + 2 :] * rng.uniform(0.5, 1.5, p2.iloc[t + 2 :].shape)
    for changed in (backtest(prices, s2, **kwargs), backtest(p2, s2, **kwargs)):
        upto = slice(None, t + 2)  # bars 0..t+1
        np.testing.assert_array_equal(changed.returns.iloc[upto], base.returns.iloc[upto])
        np.testing.assert_array_equal(changed.positions.iloc[upto], base.positions.iloc[upto])
        np.testing.assert_array_equal(changed.equity.iloc[upto], base.equity.iloc[upto])
        np.testing.assert_array_equal(changed.targets.iloc[: t + 1], base.targets.iloc[: t + 1])
    # and the change does matter later (the test would be vacuous otherwise)
    if t < 290:
        assert not np.array_equal(backtest(prices, s2, **kwargs).returns, base.returns)


def test_t_plus_one_exercise_solution_is_the_library_rule() -> None:
    # the instructor's solution from course/solutions/, not a private name of the package
    from flashtrade_lib.course.solutions import load

    strategy_returns = load()["ch08-t-plus-one"].build()
    rng = np.random.default_rng(1)
    r = hourly(pd.Series(rng.normal(0, 0.01, 200), index=pd.date_range("2022-01-01", periods=200, freq="h")))
    pos = np.sign(r).where(rng.random(200) < 0.7, -np.sign(r))  # a look-ahead position
    res = backtest(r.rename("x"), pos.rename("x"), market_is="simple_returns", position="weights", cost_bps=0.0)
    np.testing.assert_allclose(res.returns, strategy_returns(r, pos), **EXACT)
    assert check("ch08-t-plus-one", strategy_returns).passed


def test_result_metrics_use_the_bar_frequency() -> None:
    r, s, _ = _random_case(2)
    res = backtest(r, s, market_is="simple_returns", cost_bps=0.0)
    assert res.periods_per_year == 8760 and res.returns.attrs["calendar"] == "crypto"
    fx = backtest(hourly(r.copy(), "fx"), s, market_is="simple_returns")
    assert fx.periods_per_year == 6240
    m = res.metrics()
    assert m["sharpe"] == pytest.approx(res.returns.mean() / res.returns.std() * np.sqrt(8760))


# ------------------------------------------------------------------ the seed's mistakes


def test_seed_style_with_every_mistake_switched_off_is_the_honest_backtest() -> None:
    r, s, _ = _random_case(9, n=200, k=2)
    lr = np.log1p(r)
    seed = seed_style_backtest(lr, s, overlapping=False, log_as_simple=False, transaction_cost=1e-3)
    honest = backtest(
        lr,
        s,
        market_is="log_returns",
        position=lambda x: np.tanh(10 * x) * 0.1,
        cost_bps=10,
        account_drift=False,  # the seed charges |Δw|, without drift
    )
    # the seed labels the bar where the decision is taken, the backtest the bar it is held
    np.testing.assert_allclose(seed.returns.to_numpy(), honest.returns.to_numpy()[1:], **EXACT)


def test_seed_style_overlapping_counts_each_move_horizon_times() -> None:
    idx = pd.date_range("2024", periods=100, freq="h")
    lr = pd.DataFrame({"x": np.random.default_rng(0).normal(0, 0.01, 100)}, idx)
    sig = pd.DataFrame({"x": np.full(100, 0.5)}, idx)
    seed = seed_style_backtest(lr, sig, horizon=24, transaction_cost=0.0)
    one = seed_style_backtest(lr, sig, horizon=24, overlapping=False, transaction_cost=0.0)
    # with a constant weight, each overlapping step is the sum of the next 24 one-bar steps
    rolling = one.returns.rolling(24).sum().shift(-23).dropna()
    np.testing.assert_allclose(seed.returns.to_numpy(), rolling.to_numpy()[: len(seed.returns)], **EXACT)
    assert seed.annualisation == 252


# -------------------------------------------------------------------------- bad input


def _ok() -> tuple[pd.DataFrame, pd.DataFrame]:
    prices, weights = _hand_market()
    return prices, weights


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, w: (p, w.set_axis(w.index + pd.Timedelta("1h"))), "different time indexes"),
        (lambda p, w: (p.where(p > 60), w), "NaN"),
        (lambda p, w: (p, w.where(w > 0)), "NaN values.*fillna"),
        (lambda p, w: (p.iloc[[1, 0, 2, 3]], w.iloc[[1, 0, 2, 3]]), "not increasing"),
        (lambda p, w: (p.set_axis(IDX4[[0, 1, 1, 2]]), w.set_axis(IDX4[[0, 1, 1, 2]])), "duplicated"),
        (lambda p, w: (p.reset_index(drop=True), w.reset_index(drop=True)), "DatetimeIndex"),
        (lambda p, w: (p, w[["B", "A"]]), "columns"),
        (lambda p, w: (p - 100, w), "positive"),
    ],
)
def test_bad_input_gets_a_clear_error(mutate, message: str) -> None:
    p, w = mutate(*_ok())
    with pytest.raises(ValueError, match=message):
        backtest(p, w, market_is="prices", position="weights")


def test_market_kind_must_be_said() -> None:
    p, w = _ok()
    with pytest.raises(TypeError):
        backtest(p, w)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="market_is"):
        market_returns(p, market_is="returns")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="simple returns must be > -1"):
        market_returns(p * 0 - 1.5, market_is="simple_returns")


def test_ruin_is_an_error_not_a_negative_equity() -> None:
    idx = pd.date_range("2024", periods=3, freq="h")
    r = hourly(pd.DataFrame({"x": [0.0, -0.6, 0.1]}, idx))
    with pytest.raises(ValueError, match="lost 100%"):
        backtest(r, pd.DataFrame({"x": [2.0, 2.0, 2.0]}, idx), market_is="simple_returns",
                 position="weights")
