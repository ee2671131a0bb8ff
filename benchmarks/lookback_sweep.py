"""Chapter 9's real-data question at full length: does a lookback of up to 1024 hours help, after costs?

    .venv/bin/python benchmarks/lookback_sweep.py        # CPU defaults: lookbacks 8 … 1024, ~20-40 min on 2 cores
    .venv/bin/python benchmarks/lookback_sweep.py --lookbacks 8 32 128 --seeds 0   # quicker
    .venv/bin/python benchmarks/lookback_sweep.py --power-check --budgets 300 1000 3000 --targets return volatility

The bundled hourly BTC bars (the most recent ``--bars``), the five causal features of
chapter 5, the next bar's log return as the label — the same data as chapter 9's live
sweep, but with lookbacks up to 1024 bars, which the fused SDPA kernel makes affordable on
a CPU (naive attention would keep ``B·N²`` probabilities per step). For every
(lookback, seed, fold) :func:`flashtrade_lib.trading.lookback.lookback_sweep` trains the same model
for the same number of steps on the same decision bars and walk-forward folds, and keeps
every out-of-sample forecast. The record then holds, per lookback,

* the IC with a t interval clustered by fold (:func:`flashtrade_lib.trading.lookback.summarise`),
* the net Sharpe of trading the forecast through chapter 8's engine at ``--cost-bps`` and
  ``--funding-per-8h`` (chapter 8's default cost model)
  (:func:`flashtrade_lib.trading.lookback.net_returns`) with a block-bootstrap interval,

and, over **all** lookbacks tried, Hansen's SPA against the shortest one (forecast loss and
net P&L) and the Model Confidence Set (:func:`flashtrade_lib.trading.lookback.compare_lookbacks`).
Every run has its same-information linear baseline beside it (``linear_*``: ridge on the
whole window, the Zeng et al. 2023 question), and the longest lookback is compared with the
shortest at bar level with the minimum detectable IC difference, so "no difference" says how
large a difference could have been seen.

``--power-check`` first asks whether this budget *could* find a long-lag effect: the same
sweep (bars, features, lookbacks, folds, seeds, model, steps) on chapter 5's synthetic market
with an echo planted at ``--power-lag`` bars. ``--budgets`` lists step counts to try in
increasing order: the first whose power check detects the echo (forecast-loss SPA p < 0.05 and
a best lookback that covers the lag) is the budget of the real sweep; if none does, the real
sweep runs at the largest and the record says the budget cannot detect it. ``--targets
volatility`` adds the hypothesis chapter 5 raises: next-bar |log return| as the label.

The machine's load is watched (:func:`flashtrade_lib.measure.bench.watch_machine`) and the record
carries its own quality verdict: a sweep taken on a busy machine is still a valid *skill*
result (training is deterministic on CPU), but its ``seconds`` are not timings. Results go to ``benchmarks/results/lookback_sweep_cpu.json`` (the record ``lookback_sweep_cpu``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import torch

from flashtrade_lib.data import (
    clock_of,
    forward_log_return,
    load_crypto,
    make_features,
    simulate_market,
)
from flashtrade_lib.measure.bench import add_max_wait_option, watch_machine, write_record
from flashtrade_lib.trading import stats
from flashtrade_lib.trading.costs import DEFAULT_COST_BPS, FUNDING_PER_8H
from flashtrade_lib.trading.lookback import (
    SweepModel,
    compare_lookbacks,
    ic_difference,
    lookback_sweep,
    net_returns,
    summarise,
)
from flashtrade_lib.trading.trials import FULL_LENGTH_LOOKBACKS, SWEEP_RECORD


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--coin", default="BTC")
    p.add_argument("--bars", type=int, default=8000, help="most recent hourly bars used")
    p.add_argument("--lookbacks", type=int, nargs="+", default=list(FULL_LENGTH_LOOKBACKS))
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=300, help="AdamW steps per run (without --power-check)")
    p.add_argument("--power-check", action="store_true",
                   help="first run the same sweep on a synthetic market with a planted long-lag echo")
    p.add_argument("--power-lag", type=int, default=1008, help="lag of the planted echo (chapter 5: 1008)")
    p.add_argument("--power-echo", type=float, default=0.3, help="echo coefficient (chapter 5: 0.3)")
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="step counts tried in the power check, smallest first (default: --steps)")
    p.add_argument("--targets", nargs="+", default=["return"], choices=["return", "volatility"],
                   help="labels swept: next-bar log return, and/or next-bar |log return|")
    p.add_argument("--cost-bps", type=float, default=DEFAULT_COST_BPS,
                   help="cost per unit traded, in bps (default: chapter 8's taker fee + half-spread)")
    p.add_argument("--funding-per-8h", type=float, default=FUNDING_PER_8H,
                   help="funding rate per 8 h held, longs pay (default: Bybit's baseline 0.0001)")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap resamples of the tests")
    p.add_argument("--backend", default="sdpa", help="attention backend of every run")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    add_max_wait_option(p)
    p.add_argument("--out", default=SWEEP_RECORD,
                   help="a record name (bench.results_dir() / NAME.json) or a path")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with watch_machine(args.max_wait) as watch:
        record, elapsed = _sweep(args)
    record["elapsed_s"] = elapsed
    write_record(args.out, record, load=watch.report)
    return 0


def _report(label: str) -> Callable[[dict], None]:
    """Print each finished run as one JSON line: a sweep stopped early still leaves what it measured."""
    def on_run(row: dict) -> None:
        print(f"run {label}: " + json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}),
              flush=True)
    return on_run


def _inputs(panel, symbol: str):
    features = make_features(panel)
    features.columns = [f"{f}_{s}" for f, s in features.columns]
    return features, forward_log_return(panel["close"][symbol], horizon=1)


def power_check(args: argparse.Namespace, steps: int) -> dict:
    """The real sweep's exact budget on a market where a long-lag echo is certainly there."""
    market = simulate_market(args.bars + max(args.lookbacks) + args.power_lag, 1, 0,
                             planted_lag=args.power_lag, echo_coef=args.power_echo)
    panel = market.panel.iloc[-args.bars:]
    symbol = str(panel["close"].columns[0])
    features, target = _inputs(panel, symbol)
    spec = SweepModel(train_steps=steps, backend=args.backend)
    sweep = lookback_sweep(features, target, args.lookbacks, seeds=args.seeds, n_folds=args.folds, model=spec,
                           oracle=market.oracle_forecast(1)[symbol].iloc[-args.bars:],
                           on_run=_report(f"power check {steps} steps"))
    net = net_returns(sweep, panel["close"][symbol], cost_bps=args.cost_bps,
                      funding_per_8h=args.funding_per_8h)
    tests = compare_lookbacks(sweep, net, reps=args.reps)
    ic = summarise(sweep, "ic")
    best = int(ic["mean"].idxmax())
    detected = bool(tests.skill_spa.p_value < 0.05 and best >= args.power_lag)
    print(f"power check at {steps} steps (echo {args.power_echo} at lag {args.power_lag}): "
          f"{'detected' if detected else 'not detected'}; {tests.skill_spa}")
    return {"steps": steps, "lag": args.power_lag, "echo_coef": args.power_echo, "detected": detected,
            "best_lookback": best, "skill_spa": tests.skill_spa.evidence(), "spa_p": tests.skill_spa.p_value,
            "oracle_ic": float(sweep.runs["oracle_ic"].mean()),
            "ic": {int(lb): float(v) for lb, v in ic["mean"].items()},
            "linear_ic": {int(lb): float(v) for lb, v in summarise(sweep, "linear_ic")["mean"].items()}}


def _choose_budget(args: argparse.Namespace) -> tuple[int, list[dict]]:
    if not args.power_check:
        return args.steps, []
    checks = []
    for steps in sorted(args.budgets or [args.steps]):
        checks.append(power_check(args, steps))
        if checks[-1]["detected"]:
            return steps, checks
    return checks[-1]["steps"], checks


def _ic_rows(sweep, metric: str) -> list[dict]:
    return [{"lookback": int(lb), **{k: float(v) for k, v in row.items()}}
            for lb, row in summarise(sweep, metric).iterrows()]


def _longest_vs_shortest(sweep, lookbacks: list[int], reps: int) -> dict:
    lo, hi = min(lookbacks), max(lookbacks)
    diff = ic_difference(sweep, hi, lo, reps=reps)
    vs_linear = ic_difference(sweep, hi, hi, column_b="linear", reps=reps)
    return {"longest_vs_shortest": diff.evidence(), "estimate": diff.estimate, "low": diff.low, "high": diff.high,
            "p_value": diff.p_value, "mde": stats.minimum_detectable_difference(diff),
            "longest_vs_linear": vs_linear.evidence(), "vs_linear_p": vs_linear.p_value,
            "vs_linear_estimate": vs_linear.estimate,
            "vs_linear_mde": stats.minimum_detectable_difference(vs_linear)}


def _sweep(args: argparse.Namespace) -> tuple[dict, float]:
    start = time.perf_counter()
    steps, checks = _choose_budget(args)
    panel = load_crypto([args.coin], freq="1h").iloc[-args.bars:]
    features, target = _inputs(panel, args.coin)
    spec = SweepModel(train_steps=steps, backend=args.backend)
    sweep = lookback_sweep(features, target, args.lookbacks, seeds=args.seeds, n_folds=args.folds, model=spec,
                           on_run=_report("return"))
    net = net_returns(sweep, panel["close"][args.coin], cost_bps=args.cost_bps,
                      funding_per_8h=args.funding_per_8h)
    periods = clock_of(net).periods_per_year
    tests = compare_lookbacks(sweep, net, reps=args.reps, periods=periods)
    sharpe = {
        int(lb): stats.block_bootstrap_ci(net[lb].to_numpy(), "sharpe", periods=periods, reps=args.reps,
                                          name=f"net Sharpe at {lb}", n_trials=len(net.columns))
        for lb in net.columns if net[lb].std() > 0  # a lookback that never trades has no Sharpe
    }
    ic = summarise(sweep, "ic")
    volatility = None
    if "volatility" in args.targets:  # chapter 5's hypothesis: a long context knows the volatility regime
        vol_sweep = lookback_sweep(features, target.abs(), args.lookbacks, seeds=args.seeds, n_folds=args.folds,
                                   model=spec, on_run=_report("volatility"))
        volatility = {"ic": _ic_rows(vol_sweep, "ic"), "linear_ic": _ic_rows(vol_sweep, "linear_ic"),
                      **_longest_vs_shortest(vol_sweep, args.lookbacks, args.reps)}
    elapsed = time.perf_counter() - start
    for lb, row in ic.iterrows():
        pnl = sharpe.get(int(lb))
        print(f"lookback {lb:5d}: IC {row['mean']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}], "
              + (f"net Sharpe {pnl.estimate:+.2f} [{pnl.low:+.2f}, {pnl.high:+.2f}]" if pnl else "never traded"))
    for result in (tests.skill_spa, tests.pnl_spa, tests.skill_mcs, tests.pnl_mcs):
        print(result if result is not None else "no lookback ever traded: no P&L test")
    record = {
        "benchmark": "lookback_sweep",
        "settings": {
            "coin": args.coin, "bars": args.bars, "first_bar": str(panel.index[0]), "last_bar": str(panel.index[-1]),
            "lookbacks": sorted(set(args.lookbacks)), "folds": args.folds, "seeds": args.seeds,
            "cost_bps": args.cost_bps, "funding_per_8h": args.funding_per_8h, "reps": args.reps,
            "periods_per_year": periods,
            "torch_threads": torch.get_num_threads(),
            "targets": list(args.targets),
            "model": {k: getattr(spec, k) for k in ("d_model", "n_heads", "n_layers", "train_steps",
                                                     "batch_size", "lr", "backend")},
        },
        "runs": sweep.runs.to_dict("records"),
        "ic": _ic_rows(sweep, "ic"),
        "linear_ic": _ic_rows(sweep, "linear_ic"),
        "difference": _longest_vs_shortest(sweep, args.lookbacks, args.reps),
        "power_check": {"requested": bool(args.power_check), "checks": checks,
                        "detected": bool(checks and checks[-1]["detected"])},
        "volatility": volatility,
        "net_sharpe": [{"lookback": lb, "estimate": r.estimate, "low": r.low, "high": r.high, "p_value": r.p_value,
                        "method": r.method, "evidence": r.evidence()} for lb, r in sharpe.items()],
        "tests": {
            "skill_spa": {"p_value": tests.skill_spa.p_value, "best": tests.skill_spa.best,
                          "evidence": tests.skill_spa.evidence()},
            "pnl_spa": None if tests.pnl_spa is None else {
                "p_value": tests.pnl_spa.p_value, "best": tests.pnl_spa.best, "evidence": tests.pnl_spa.evidence()},
            "skill_mcs": {"included": list(tests.skill_mcs.included), "summary": str(tests.skill_mcs)},
            "pnl_mcs": None if tests.pnl_mcs is None else {
                "included": list(tests.pnl_mcs.included), "summary": str(tests.pnl_mcs)},
            "benchmark_lookback": tests.benchmark,
            "never_traded": list(tests.never_traded),
        },
    }
    return record, elapsed


if __name__ == "__main__":
    sys.exit(main())
