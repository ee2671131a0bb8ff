"""Does a longer context help? The lookback sweep of chapter 9, scored by skill and by net P&L.

Why a function and not a notebook loop: the answer must not depend on details that
change with the lookback by accident. :func:`lookback_sweep` therefore evaluates
every lookback on the **same decision bars** (those that the longest window can
reach), the same walk-forward folds (purged, embargoed), the same seeds and the
same number of optimiser steps — only the window length changes. It keeps every
out-of-sample forecast, so the same runs answer both questions a trader asks:

* *Is the forecast better?* — IC per run (:func:`flashtrade_lib.trading.metrics.forecast_skill`),
  summarised with a t interval **clustered by fold** (:func:`summarise`: runs of one fold
  share their test bars, so they are one cluster, not independent draws);
* *Does it pay after costs?* — :func:`net_returns` trades each lookback's forecast through
  chapter 8's engine (:func:`flashtrade_lib.trading.backtest.backtest`), fold by fold.
* *Is it the transformer, or just the information?* — every run has a **same-information
  linear baseline** beside it (:func:`linear_window_forecast`: ridge on the whole window, the
  question of Zeng et al. 2023, "are transformers effective for time series forecasting?"),
  fitted on the same fold's training bars, scored on the same test bars (``linear_*`` columns).

:func:`compare_lookbacks` then asks the question once for **all** lookbacks tried
(Hansen's SPA against the shortest, and the Model Confidence Set), so the best of
several noisy lookbacks is not mistaken for a finding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flashtrade_lib.trading.costs import DEFAULT_COST_BPS, FUNDING_PER_8H, funding_rates

__all__ = [
    "SweepModel",
    "LookbackSweep",
    "LookbackComparison",
    "lookback_sweep",
    "linear_window_forecast",
    "LINEAR",
    "summarise",
    "mean_forecasts",
    "net_returns",
    "compare_lookbacks",
    "ic_difference",
]


@dataclass(frozen=True)
class SweepModel:
    """Sizes of the model and the training run used at every lookback (CPU-sized defaults).

    The defaults (one layer, one head of width 16, 300 AdamW steps at ``lr=3e-3``)
    learn a 16-bar echo in a few seconds on a laptop CPU; longer lags need more
    steps and data (chapter 9 shows what happens when the budget is too small).
    """

    d_model: int = 16
    n_heads: int = 1
    n_layers: int = 1
    train_steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    rope_base: float = 10_000.0
    backend: str = "auto"
    device: str = "cpu"


@dataclass
class LookbackSweep:
    """What a sweep produced: one row per run, and every out-of-sample forecast.

    ``runs``: ``lookback, seed, fold, n_train, n_test, ic, rank_ic, r2, hit`` (+ ``oracle_ic,
    oracle_r2, oracle_hit``), ``train_loss`` (last 20 steps' mean) and ``seconds``.
    ``forecasts``: one row per ``(lookback, seed, test bar)`` with ``fold``, ``bar`` (row
    position in the features), ``forecast`` and ``target`` (+ ``oracle``).
    ``index``: the features' index, so ``index[bar]`` is a forecast's decision time.
    """

    runs: pd.DataFrame
    forecasts: pd.DataFrame
    index: pd.Index


def _frame(x: Any, name: str) -> pd.DataFrame:
    if isinstance(x, pd.Series):
        return x.to_frame()
    if isinstance(x, pd.DataFrame):
        return x
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (time, columns), got shape {arr.shape}")
    return pd.DataFrame(arr)


def _skill_columns(pred: np.ndarray, target: np.ndarray, prefix: str = "") -> dict[str, float]:
    from flashtrade_lib.trading.metrics import forecast_skill

    s = forecast_skill(pred, target)
    return {f"{prefix}ic": s.ic, f"{prefix}rank_ic": s.rank_ic, f"{prefix}r2": s.r2, f"{prefix}hit": s.hit_rate}


LINEAR = "linear (same window)"
"""Name of the same-information baseline of the sweep: ridge on the whole window (DLinear-style)."""

_ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10_000.0)


def _windows(x: np.ndarray, bars: np.ndarray, lookback: int) -> np.ndarray:
    """The flattened windows ``x[t - lookback + 1 : t + 1]`` of every bar ``t``, ``(n, lookback * F)``."""
    rows = bars[:, None] - np.arange(lookback - 1, -1, -1)[None, :]
    return x[rows].reshape(len(bars), -1)


def linear_window_forecast(
    x: np.ndarray, y: np.ndarray, train_bars: np.ndarray, test_bars: np.ndarray, lookback: int, *,
    horizon: int = 1, alphas: Sequence[float] = _ALPHAS,
) -> np.ndarray:
    """Ridge on every feature of every bar of the ``lookback``-bar window: the model's information, linearly.

    DLinear (Zeng et al. 2023) is one linear map of the window (after splitting off a
    moving-average trend, itself linear in the window); ridge on the whole window contains
    it. The penalty is chosen on the last fifth of the training bars (purged by
    ``horizon``) and the model refitted on all of them; the test bars are never seen.
    """
    from flashtrade_lib.trading.baselines import ridge_fit, ridge_path, ridge_predict

    train_bars, test_bars = np.asarray(train_bars), np.asarray(test_bars)
    cut = int(0.8 * len(train_bars))
    if cut < 10 or len(train_bars) - cut <= horizon + 2:
        raise ValueError(f"the linear baseline needs at least ~20 training bars, got {len(train_bars)}")
    inner, held = train_bars[: cut - horizon], train_bars[cut:]
    xi, xh = _windows(x, inner, lookback), _windows(x, held, lookback)
    mse = [float(np.mean((ridge_predict(fit, xh).ravel() - y[held]) ** 2)) for fit in ridge_path(xi, y[inner], alphas)]
    best = float(alphas[int(np.argmin(mse))])
    fit = ridge_fit(_windows(x, train_bars, lookback), y[train_bars], best)
    return ridge_predict(fit, _windows(x, test_bars, lookback)).ravel()


def lookback_sweep(
    features: pd.DataFrame | np.ndarray,
    target: pd.Series | np.ndarray,
    lookbacks: Sequence[int],
    *,
    horizon: int = 1,
    seeds: Sequence[int] = (0,),
    n_folds: int = 2,
    test_size: int | None = None,
    train_size: int | None = None,
    model: SweepModel | None = None,
    oracle: pd.Series | np.ndarray | None = None,
    linear: bool = True,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> LookbackSweep:
    """Train and score one model per ``(lookback, seed, fold)``; keep every test forecast.

    ``features`` ``(T, F)`` are the causal inputs of bar ``t`` (standardised per fold on
    its training bars only); ``target`` ``(T,)`` is the label of decision bar ``t``,
    spanning bars ``[t, t + horizon]`` (e.g. :func:`~flashtrade_lib.data.forward_log_return`).
    Decision bars are those every lookback can reach, so all lookbacks are scored on
    identical test bars; ``walk_forward_folds`` (purged, embargo = ``horizon``) cuts them.
    ``oracle`` (optional, ``(T,)``) is a ground-truth forecast scored on the same bars.
    ``linear`` adds the same-information baseline (:func:`linear_window_forecast`) per
    ``(lookback, fold)``: ``linear_ic`` etc. in ``runs``, ``linear`` in ``forecasts``.
    ``on_run`` (optional) is called with each finished run's row: a long sweep reports as it goes,
    so a run that must be stopped early still leaves what it measured.
    Deterministic on CPU for given seeds.
    """
    import time

    import torch
    from torch.utils.data import Subset

    from flashtrade_lib.data import Standardizer, WindowDataset, walk_forward_folds
    from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
    from flashtrade_lib.model.train import TrainConfig, predict, train

    spec = model or SweepModel()
    x = _frame(features, "features")
    y = np.array(target, dtype=np.float64).ravel()  # a writable copy (pandas hands out read-only views)
    if len(y) != len(x):
        raise ValueError(f"target has {len(y)} rows but features have {len(x)}; align them on the same bars")
    lbs = sorted({int(lb) for lb in lookbacks})
    if not lbs or lbs[0] < 1:
        raise ValueError(f"lookbacks must be positive whole numbers of bars, got {list(lookbacks)}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    orc = None
    if oracle is not None:
        orc = np.asarray(oracle, dtype=np.float64).ravel()
        if len(orc) != len(y):
            raise ValueError(f"oracle has {len(orc)} rows but target has {len(y)}")

    # decision bars that the *longest* window reaches with finite inputs and label
    raw = np.array(x.to_numpy(dtype=np.float64))
    probe = WindowDataset(raw, y, lbs[-1], horizon=horizon)
    times = np.asarray(probe.times)
    folds = walk_forward_folds(
        np.stack([times, times + horizon], axis=1), n_folds=n_folds, test_size=test_size,
        train_size=train_size, embargo=horizon,
    )
    rows: list[dict[str, Any]] = []
    parts: list[pd.DataFrame] = []
    for k, fold in enumerate(folds):
        last_train_bar = int(times[fold.train[-1]])
        scaled = np.array(Standardizer().fit(x.iloc[: last_train_bar + 1]).transform(x), dtype=np.float32)
        test_bars = times[fold.test]
        oracle_scores = {} if orc is None else _skill_columns(orc[test_bars], y[test_bars], "oracle_")
        for lb in lbs:
            ds = WindowDataset(scaled, y.astype(np.float32), lb, horizon=horizon, times=times)
            lin = (linear_window_forecast(scaled, y, times[fold.train], test_bars, lb, horizon=horizon)
                   if linear else None)
            linear_scores = {} if lin is None else _skill_columns(lin, y[test_bars], "linear_")
            for seed in seeds:
                start = time.perf_counter()
                torch.manual_seed(seed)
                net = FlashAttentionTrader(ModelConfig(
                    n_features=x.shape[1], d_model=spec.d_model, n_heads=spec.n_heads,
                    n_layers=spec.n_layers, backend=spec.backend, rope_base=spec.rope_base,
                ))
                steps_per_epoch = max(1, len(fold.train) // spec.batch_size)
                epochs = math.ceil(spec.train_steps / steps_per_epoch)
                result = train(net, (Subset(ds, fold.train), None), TrainConfig(
                    epochs=epochs, batch_size=spec.batch_size, lr=spec.lr, patience=None,
                    max_steps_per_epoch=min(steps_per_epoch, spec.train_steps), progress=False,
                    seed=seed, device=spec.device, warmup_frac=0.1,
                ))
                out = predict(net, Subset(ds, fold.test), batch_size=256, device=spec.device)
                pred, label = out["regression"][:, 0].astype(np.float64), out["target"][:, 0].astype(np.float64)
                rows.append({
                    "lookback": lb, "seed": int(seed), "fold": k,
                    "n_train": len(fold.train), "n_test": len(fold.test),
                    **_skill_columns(pred, label),
                    **oracle_scores,
                    **linear_scores,
                    "train_loss": float(np.mean(result.step_losses[-20:])),
                    "seconds": time.perf_counter() - start,
                })
                if on_run is not None:
                    on_run(rows[-1])
                part = pd.DataFrame({"lookback": lb, "seed": int(seed), "fold": k, "bar": test_bars,
                                     "forecast": pred, "target": label})
                if orc is not None:
                    part["oracle"] = orc[test_bars]
                if lin is not None:
                    part["linear"] = lin
                parts.append(part)
    return LookbackSweep(runs=pd.DataFrame(rows), forecasts=pd.concat(parts, ignore_index=True), index=x.index)


def summarise(runs: pd.DataFrame | LookbackSweep, metric: str = "ic", *, level: float = 0.95) -> pd.DataFrame:
    """Mean of ``metric`` per lookback with a t interval **clustered by fold**.

    Runs of one fold share their test bars, so their errors move together: each fold is
    one cluster (its seeds averaged), and the interval is Student's t over the fold means
    (:func:`flashtrade_lib.trading.stats.clustered_mean_ci`, ``folds − 1`` degrees of freedom).
    It needs at least two folds. An IC (``ic``, ``rank_ic``, ``linear_ic``, ...) gets its interval
    on Fisher's z, so it stays inside [−1, 1]. Columns: ``mean, ci_low, ci_high, p_value``
    (H0: mean = 0), ``folds`` and ``runs``.
    """
    from flashtrade_lib.trading.stats import clustered_mean_ci

    frame = runs.runs if isinstance(runs, LookbackSweep) else runs
    if metric not in frame:
        raise ValueError(f"results has no column {metric!r}; columns: {list(frame.columns)}")
    out = {}
    for lb, g in frame.groupby("lookback"):
        r = clustered_mean_ci(g[metric].to_numpy(), g["fold"].to_numpy(), level=level, name=f"{metric} at {lb}",
                              correlation=metric.endswith("ic"))
        out[lb] = {"mean": r.estimate, "ci_low": r.low, "ci_high": r.high, "p_value": r.p_value,
                   "folds": r.n, "runs": len(g)}
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "lookback"
    return table


def mean_forecasts(sweep: LookbackSweep, column: str = "forecast") -> pd.DataFrame:
    """Test bars × lookbacks: each lookback's forecast averaged over its seeds (an ensemble).

    The index is the decision time of each test bar (``sweep.index[bar]``); a ``fold``
    column says which fold's model made it and ``target`` holds the label.
    """
    f = sweep.forecasts
    wide = f.pivot_table(index="bar", columns="lookback", values=column, aggfunc="mean")
    first = f[f["lookback"] == f["lookback"].min()].groupby("bar")[["fold", "target"]].first()
    wide = wide.join(first)
    wide.index = sweep.index[wide.index.to_numpy()]
    return wide


def net_returns(
    sweep: LookbackSweep,
    prices: pd.Series,
    *,
    cost_bps: float = DEFAULT_COST_BPS,
    funding_per_8h: float = FUNDING_PER_8H,
    threshold: float | None = None,
) -> pd.DataFrame:
    """Net one-bar returns of trading each lookback's forecast, fold by fold (bars × lookbacks).

    Chapter 8's engine (:func:`flashtrade_lib.trading.backtest.backtest`): the seed-averaged forecast
    of decision bar ``t`` (:func:`mean_forecasts`) becomes a position held during bar
    ``t + 1``, costs ``cost_bps`` per unit traded and pays ``funding_per_8h`` per 8 h held
    (:func:`~flashtrade_lib.trading.costs.funding_rates`; longs pay, shorts receive). The
    position is the forecast's sign, but only when ``|forecast|`` exceeds ``threshold`` (default: the one-way cost, in return
    units — a trade is made only when the forecast move would pay for it); otherwise flat.
    Each fold's test period is traded separately, starting flat. ``prices`` must share
    the sweep's index (the close of every bar) and carry their clock, which the result
    carries on (its ``attrs``) to annualise the comparison.
    """
    from flashtrade_lib.trading.backtest import backtest

    if not isinstance(prices, pd.Series) or not prices.index.equals(sweep.index):
        raise ValueError("prices must be a Series on the same index as the sweep's features (one close per bar)")
    if cost_bps < 0:
        raise ValueError(f"cost_bps must be >= 0, got {cost_bps}")
    cut = cost_bps / 1e4 if threshold is None else float(threshold)
    wide = mean_forecasts(sweep)
    lookbacks = [c for c in wide.columns if c not in ("fold", "target")]
    pieces = []
    for _, part in wide.groupby("fold"):
        first = prices.index.get_loc(part.index[0])
        last = prices.index.get_loc(part.index[-1])
        window = prices.iloc[first : last + 2]  # one bar more: the last decision is held in it
        cols = {}
        for lb in lookbacks:
            signal = part[lb].reindex(window.index).fillna(0.0)
            res = backtest(window, signal, market_is="prices", position="sign", threshold=cut, cost_bps=cost_bps,
                           funding=funding_rates(window, funding_per_8h))
            cols[lb] = res.returns.iloc[1:]  # bar 0 of the window holds nothing
        pieces.append(pd.DataFrame(cols))
    out = pd.concat(pieces)
    out.columns.name = "lookback"
    out.attrs = dict(prices.attrs)
    return out


@dataclass(frozen=True)
class LookbackComparison:
    """All lookbacks tried, tested at once: SPA against the shortest and the Model Confidence Set."""

    skill_spa: Any  #: SPA on minus squared forecast error per bar
    pnl_spa: Any  #: SPA on net return per bar (``None`` when no lookback ever traded)
    skill_mcs: Any  #: MCS of lookbacks on minus squared forecast error per bar
    pnl_mcs: Any  #: MCS on net return per bar of the lookbacks that traded (``None`` if fewer than 2)
    benchmark: int
    lookbacks: tuple[int, ...]
    never_traded: tuple[int, ...] = ()  #: lookbacks whose forecast never cleared the threshold


def compare_lookbacks(
    sweep: LookbackSweep, net: pd.DataFrame, *, reps: int = 1000, seed: int = 0, periods: float = 1.0
) -> LookbackComparison:
    """Could **any** longer lookback beat the shortest one tried — in forecast loss, in net P&L?

    Hansen's SPA (:func:`flashtrade_lib.trading.stats.spa_test`) with the shortest lookback as the
    benchmark and every longer one as a candidate (the losers count too), once on minus the
    squared forecast error per test bar and once on net return per bar (``periods`` bars a
    year annualises its estimate); and the Model Confidence Set of all lookbacks on each.
    Forecasts are the seed-averaged ones of :func:`mean_forecasts`. When no forecast ever
    cleared the trading threshold, every net return is 0: there is no P&L to compare, and
    the P&L tests are ``None`` (the answer is "it never trades", not a p-value); lookbacks
    that never traded are left out of the MCS on P&L (identical all-zero series cannot be
    ranked) and listed in ``never_traded``.
    """
    from flashtrade_lib.trading.stats import model_confidence_set, spa_test

    wide = mean_forecasts(sweep)
    lookbacks = tuple(int(c) for c in wide.columns if c not in ("fold", "target"))
    if len(lookbacks) < 2:
        raise ValueError("comparing lookbacks needs at least two of them")
    short, longer = lookbacks[0], list(lookbacks[1:])
    gains = -(wide[list(lookbacks)].sub(wide["target"], axis=0) ** 2)
    names = {lb: f"lookback {lb}" for lb in lookbacks}
    skill = spa_test(gains[short], gains[longer].rename(columns=names), reps=reps, seed=seed,
                     benchmark_name=names[short], unit="squared log-return error per bar")
    skill_set = model_confidence_set(gains[list(lookbacks)].rename(columns=names), reps=reps, seed=seed)
    traded = [lb for lb in lookbacks if (net[lb].to_numpy() != 0).any()]
    pnl, pnl_set = None, None
    traded_longer = [lb for lb in longer if lb in traded]
    if traded_longer:  # a lookback that never traded has no P&L to compare: it is listed, not tested
        bench_name = names[short] if short in traded else f"{names[short]} (never traded: flat)"
        pnl = spa_test(net[short], net[traded_longer].rename(columns=names), reps=reps, seed=seed,
                       benchmark_name=bench_name, periods=periods, unit="annualised net return, 1 = 100 %")
    if len(traded) >= 2:
        pnl_set = model_confidence_set(net[traded].rename(columns=names), reps=reps, seed=seed)
    never = tuple(lb for lb in lookbacks if lb not in traded)
    return LookbackComparison(skill, pnl, skill_set, pnl_set, short, lookbacks, never)


def ic_difference(sweep: LookbackSweep, a: int, b: int, *, column_a: str = "forecast",
                  column_b: str = "forecast", reps: int = 1000, seed: int = 0) -> Any:
    """Paired, bar-level test of IC(lookback ``a``) − IC(lookback ``b``) over every test bar.

    The seed-averaged forecasts (:func:`mean_forecasts`) of both are resampled jointly by a
    stationary block bootstrap (:func:`flashtrade_lib.trading.stats.paired_difference_test`),
    so the interval uses every test bar (not 2-3 fold means) and stays inside [−2, 2].
    ``column_b="linear"`` compares the transformer with the same-information baseline.
    Feed the result to :func:`~flashtrade_lib.trading.stats.minimum_detectable_difference` to
    say how large a difference this sweep could have seen.
    """
    from flashtrade_lib.trading.stats import paired_difference_test

    fa, fb = mean_forecasts(sweep, column_a), mean_forecasts(sweep, column_b)
    for lb in (a, b):
        if lb not in fa.columns:
            raise ValueError(f"lookback {lb} is not in this sweep; it has {[c for c in fa.columns if c not in ('fold', 'target')]}")
    name_a = f"{a} bars" + ("" if column_a == "forecast" else f" ({column_a})")
    name_b = f"{b} bars" + ("" if column_b == "forecast" else f" ({column_b})")
    return paired_difference_test(fa[a].to_numpy(), fb[b].to_numpy(), "ic", outcome=fa["target"].to_numpy(),
                                  names=(name_a, name_b), reps=reps, seed=seed)
