"""``flashtrade``: the book's pipeline from the command line.

    flashtrade fetch BTCUSDT --interval 60 --start 2024-01-01 --out btc.csv   # live Bybit (explicit)
    flashtrade train --data bybit:BTCUSDT --interval 60 --out runs/btc        # offline, from the cache
    flashtrade train --data crypto-30m --symbol BTC --out runs/bundled        # offline, bundled bars
    flashtrade predict --checkpoint runs/btc --out predictions.csv
    flashtrade backtest --checkpoint runs/btc --cost-bps 5
    flashtrade bench --contexts 256 512 1024

Everything except ``fetch`` is offline: it works on bars ``fetch`` cached, a bars file,
the bundled data or the synthetic market. ``train`` writes its checkpoint only into the directory given
with ``--out``; ``predict`` and ``backtest`` rebuild the exact inputs the model was
trained on (source, windows, scaler) from the checkpoint's metadata. Run a command
with ``--help`` for its options. Under ``torchrun`` (``torchrun --nproc_per_node 2
-m flashtrade_lib.cli train ...``) ``train`` uses DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flashtrade_lib import __version__
from flashtrade_lib.atomic import atomic_path
from flashtrade_lib.errors import FlashTradeError
from flashtrade_lib.options import add_model_size_options
from flashtrade_lib.options import positive_int as _positive

__all__ = ["main", "build_parser"]


class CLIError(FlashTradeError):
    """A problem with the command's inputs: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- helpers


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _report(args: argparse.Namespace, summary: dict[str, Any], lines: Sequence[str]) -> None:
    """The result as readable lines, or as JSON with ``--json`` (for scripts)."""
    if args.json:
        _print(summary)
    else:
        print("\n".join(lines))


def _skill_line(skill: dict[str, float]) -> str:
    return (f"IC {skill['ic']:+.3f}, rank IC {skill['rank_ic']:+.3f}, R² {skill['r2']:+.4f}, "
            f"hit rate {skill['hit_rate']:.3f} over {skill['n']} windows")


def _skill(pred: Any, target: Any) -> dict[str, float]:
    """:func:`flashtrade_lib.trading.metrics.forecast_skill` as plain JSON fields."""
    from flashtrade_lib.trading.metrics import forecast_skill

    return dataclasses.asdict(forecast_skill(pred, target))


def _check_out_file(path: str | None, suffixes: tuple[str, ...], flag: str = "--out") -> Path | None:
    """Refuse an output file that cannot be written, *before* any download or training."""
    if path is None:
        return None
    out = Path(path)
    if suffixes and out.suffix not in suffixes:
        raise CLIError(f"{flag} must end in {' or '.join(suffixes)}, got {out.name!r}")
    if out.is_dir():
        raise CLIError(f"{flag} {out} is a directory; give a file name")
    _check_out_dir(str(out.parent), flag)
    return out


def _check_out_dir(path: str, flag: str = "--out") -> Path:
    """The folder exists (or can be created) and is writable; checked before the work starts."""
    out = Path(path)
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CLIError(f"{flag} {out}: {existing} exists and is not a directory")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {out}: {existing} is not writable; choose another folder")
    return out


# The library's advice names Python arguments; on the command line the same advice is a flag.
_CLI_WORDS = {
    "refetch with refresh=True": "refetch with --refresh",
    "Run once with offline=False (and network access)": "Run once online (unset FLASHTRADE_OFFLINE)",
    "run with offline=False": "run online (unset FLASHTRADE_OFFLINE)",
    "overwrite=True; the CLI's --overwrite": "--overwrite",
}


def _one_line(exc: BaseException) -> str:
    """The message of an error a person can act on, as one line in the CLI's words."""
    text = " ".join(str(exc).split())
    for library, cli in _CLI_WORDS.items():
        text = text.replace(library, cli)
    if type(exc).__name__ == "BybitNetworkError":
        text += (" (only `flashtrade fetch` needs the network: bars fetched before are read from the "
                 "cache with FLASHTRADE_OFFLINE=1, and `flashtrade train --data crypto-30m` is offline)")
    if isinstance(exc, OSError) and not isinstance(exc, FlashTradeError) and exc.filename:
        text = f"cannot write {exc.filename}: {exc.strerror or text}"
    return text


def _device(name: str, flag: str = "--device") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` — and ``cuda`` only where a CUDA GPU is visible."""
    import torch

    if name not in ("auto", "cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise CLIError(f"{flag} must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"{flag} {name}: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
                       "use --device cpu or auto")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _check_attention_memory(args: argparse.Namespace) -> None:
    """Refuse a window whose N×N attention scores cannot fit in memory, before building any data."""
    from flashtrade_lib.attention.backends import decide, default_capabilities, materialises_scores
    from flashtrade_lib.model.step_cost import naive_step_bytes

    name = args.backend
    if name == "auto":
        name = decide(default_capabilities(args.d_model // args.n_heads, not args.bidirectional)).name
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux: nothing to compare with
        return
    need = naive_step_bytes(args.lookback, batch=args.batch_size, n_heads=args.n_heads, n_layers=args.n_layers)
    if materialises_scores(name) and need > free:
        raise CLIError(
            f"--lookback {args.lookback} with --batch-size {args.batch_size} needs about {need / 2**30:.1f} GiB "
            f"for the {name} backend's attention scores, more than the {free / 2**30:.1f} GiB free; "
            "lower --lookback or --batch-size"
        )


def _load(checkpoint: str, backend: str | None) -> Any:
    from flashtrade_lib.model.checkpoints import load_checkpoint

    try:
        return load_checkpoint(checkpoint, backend=backend)
    except FileNotFoundError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _data_for(ckpt: Any) -> Any:
    from flashtrade_lib.data.tasks import market_datasets_from_metadata
    from flashtrade_lib.model.checkpoints import check_data_matches, check_data_request

    meta = ckpt.metadata
    missing = [k for k in ("source", "symbol", "lookback", "horizon", "scaler") if k not in meta]
    if missing:
        raise CLIError(
            f"checkpoint {ckpt.path} lacks data metadata {missing}; it was not written by "
            "`flashtrade train` — predict with the library instead"
        )
    check_data_request(meta, ckpt.path)  # sizes and types, before any data is built
    data = market_datasets_from_metadata(meta)
    check_data_matches(ckpt, data.metadata)  # the data it was trained on, or a one-line refusal
    return data


def _predict_frame(ckpt: Any, data: Any, split: str, batch_size: int) -> Any:
    import pandas as pd

    from flashtrade_lib.model.train import predict

    if split == "all":
        ds, times = data.dataset, data.bar_times[data.dataset.times]
    else:
        ds, times = getattr(data, split), data.decision_times(split)
        if len(ds) == 0:
            raise CLIError(f"the {split} split is empty; choose another --split")
    out = predict(ckpt.model, ds, batch_size=batch_size)
    frame = pd.DataFrame(
        {
            "prediction": out["regression"][:, 0],
            "prob_up": out["direction"][:, 0],
            "allocation": out["allocation"][:, 0],
            "target": out["target"][:, 0],
        },
        index=pd.DatetimeIndex(times, name="decision_time"),
    )
    return frame


# --------------------------------------------------------------------------- sub-commands


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download closed Bybit candles (the only command that uses the network)."""
    from flashtrade_lib.data import cached_klines, fetch_klines
    from flashtrade_lib.data.barfile import write_bars
    from flashtrade_lib.data.calendar import BarInterval

    out = _check_out_file(args.out, (".csv", ".parquet"))
    if args.no_cache and args.refresh:
        raise CLIError("--refresh rewrites the cache; it cannot be combined with --no-cache")
    interval = BarInterval.parse(args.interval).bybit
    kwargs: dict[str, Any] = {"category": args.category, "timeout": args.timeout,
                              "max_retries": args.max_retries}
    base_url = args.base_url or os.environ.get("FLASHTRADE_BYBIT_URL")
    if base_url:
        kwargs["base_url"] = base_url
    if args.no_cache:
        bars = fetch_klines(args.symbol, interval, args.start, args.end, **kwargs)
    else:
        bars = cached_klines(args.symbol, interval, args.start, args.end, cache_dir=args.cache_dir,
                             refresh=args.refresh, lock_timeout=args.lock_wait, **kwargs)
    if out is not None:
        write_bars(bars, out)  # atomic: a full disk leaves no partial file
    summary = {
        "symbol": args.symbol, "interval": interval, "bars": len(bars),
        "first": str(bars.index[0]) if len(bars) else None,
        "last": str(bars.index[-1]) if len(bars) else None,
        "written": args.out,
    }
    _print(summary)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model on bundled or synthetic data and write the best checkpoint into --out."""
    import torch

    from flashtrade_lib.data.tasks import market_datasets
    from flashtrade_lib.model.checkpoints import check_output_dir
    from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
    from flashtrade_lib.model.train import TrainConfig, predict, train

    # an unwritable --out, or an older run's checkpoint in it, is refused before any work
    replaced = None
    if int(os.environ.get("RANK", "0")) == 0 or not args.overwrite:
        replaced = check_output_dir(args.out, overwrite=args.overwrite)
    architecture = {"d_model": args.d_model, "n_heads": args.n_heads, "n_layers": args.n_layers,
                    "dropout": args.dropout, "causal": not args.bidirectional, "backend": args.backend}
    # every setting is validated before the data is built and long before training starts
    ModelConfig(n_features=1, **architecture)
    _device(args.device)
    _check_attention_memory(args)
    tconfig = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, objective=args.objective,
        patience=args.patience, seed=args.seed, device=args.device,
        max_steps_per_epoch=args.max_steps_per_epoch, progress=not args.no_progress,
        checkpoint_dir=str(args.out), overwrite=args.overwrite,
    )
    data = market_datasets(
        args.data, interval=args.interval, symbol=args.symbol, lookback=args.lookback, horizon=args.horizon,
        last_bars=args.last_bars, n_bars=args.n_bars, n_assets=args.n_assets,
        planted_lag=args.planted_lag, echo_coef=args.echo_coef, seed=args.seed,
    )
    torch.manual_seed(args.seed)
    config = ModelConfig(n_features=len(data.metadata["features"]), **architecture)
    model = FlashAttentionTrader(config)
    result = train(model, {"train": data.train, "val": data.val}, tconfig, metadata=data.metadata)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    test = predict(model, data.test, batch_size=2 * args.batch_size, device=args.device)
    meta = data.metadata
    summary = {
        "checkpoint": result.checkpoint,
        "replaced": replaced or result.replaced,
        "data": {k: meta[k] for k in ("source", "symbol", "interval", "calendar", "lookback", "horizon", "splits")},
        "parameters": model.n_parameters(),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "history": result.history,
        "test": _skill(test["regression"], test["target"]),
        "seconds": round(result.seconds, 1),
    }
    train_span, test_span = meta["splits"]["train"], meta["splits"]["test"]
    _report(args, summary, [
        f"trained on {meta['source']}: {meta['target']} from {meta['lookback']} {meta['interval']} bars "
        f"of {len(meta['symbols'])} asset(s), {meta['calendar']} calendar",
        f"  train {train_span[0]} → {train_span[1]}; test {test_span[0]} → {test_span[1]}",
        f"  {summary['parameters']:,} parameters, {summary['epochs_run']} epoch(s) in {summary['seconds']} s; "
        f"best validation loss {result.best_val_loss:.4g} (epoch {result.best_epoch})",
        f"  test: {_skill_line(summary['test'])}",
        f"checkpoint: {result.checkpoint}" + (f" (replaced {summary['replaced']})" if summary["replaced"] else ""),
        f"next: flashtrade backtest --checkpoint {args.out}",
    ])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict a split with a trained checkpoint; write CSV with --out or print a summary."""
    _check_out_file(args.out, (".csv",))
    ckpt = _load(args.checkpoint, args.backend)
    data = _data_for(ckpt)
    frame = _predict_frame(ckpt, data, args.split, args.batch_size)
    if args.out:
        with atomic_path(args.out) as tmp:
            frame.to_csv(tmp)
    summary = {
        "checkpoint": str(ckpt.path),
        "split": args.split,
        "first": str(frame.index[0]),
        "last": str(frame.index[-1]),
        **_skill(frame["prediction"], frame["target"]),
        "written": args.out,
    }
    _report(args, summary, [
        f"{ckpt.metadata['symbol']}, {args.split} split {summary['first']} → {summary['last']}: "
        f"{len(frame)} predictions",
        f"  {_skill_line(summary)}",
        f"written: {args.out}" if args.out else "(write them with --out FILE.csv)",
    ])
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    """Backtest a checkpoint's signals (t+1 execution, costs) against buy-and-hold."""
    import pandas as pd

    from flashtrade_lib.trading.backtest import backtest
    from flashtrade_lib.trading.metrics import compare

    _check_out_file(args.out, (".csv",))
    ckpt = _load(args.checkpoint, args.backend)
    data = _data_for(ckpt)
    frame = _predict_frame(ckpt, data, args.split, args.batch_size)
    symbol = ckpt.metadata["symbol"]
    close = data.close[symbol]
    # the bars from the first decision to the last one: a signal decided at bar t is held in t+1
    prices = close.loc[frame.index[0] : frame.index[-1]].to_frame(symbol)
    column = {"regression": "prediction", "direction": "prob_up", "allocation": "allocation"}[args.signal]
    raw = frame[column] - (0.5 if args.signal == "direction" else 0.0)
    # bars without a prediction (a NaN in their window) hold no position
    signals = raw.reindex(prices.index).fillna(0.0).to_frame(symbol)
    from flashtrade_lib.trading.costs import funding_rates

    common = {"market_is": "prices", "cost_bps": args.cost_bps,  # the prices carry their calendar
              "funding": funding_rates(prices, args.funding_per_8h)}
    model_bt = backtest(prices, signals, position=args.position, scale=args.scale, **common)
    hold = backtest(prices, pd.DataFrame(1.0, index=prices.index, columns=[symbol]), position="sign", **common)
    table = compare({"model": model_bt.metrics(), "buy_and_hold": hold.metrics()})
    keep = ["total_return", "annual_return", "sharpe", "max_drawdown", "hit_rate", "annual_turnover",
            "periods_per_year", "bars"]
    intervals, note = _intervals({"model": model_bt.returns, "buy_and_hold": hold.returns},
                                 model_bt.periods_per_year)
    pd.set_option("display.width", 140)
    lines = [f"backtest of {symbol}, {args.split} split {prices.index[0]} → {prices.index[-1]}, "
             f"signal={args.signal}, position={args.position}, cost {args.cost_bps:g} bps per unit traded, "
             f"funding {1e4 * args.funding_per_8h:g} bps per 8 h held",
             table[keep].round(4).to_string()]
    if intervals:
        lines.append("95 % intervals (stationary block bootstrap, data-chosen block, 1000 resamples):")
        lines += [f"  {name:13s}" + "  ".join(f"{k} {v['estimate']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]"
                                                for k, v in ci.items()) for name, ci in intervals.items()]
    else:
        lines.append(f"only {len(prices)} bars: too few for an interval")
    if note:
        lines.append("note: " + note)
    _report(args, {"checkpoint": str(ckpt.path), "symbol": symbol, "split": args.split,
                   "first": str(prices.index[0]), "last": str(prices.index[-1]), "signal": args.signal,
                   "position": args.position, "cost_bps": args.cost_bps, "funding_per_8h": args.funding_per_8h,
                   "metrics": table[keep].to_dict(orient="index"), "intervals": intervals, "note": note,
                   "written": args.out}, lines)
    if args.out:
        with atomic_path(args.out) as tmp:
            pd.DataFrame({"model": model_bt.equity, "buy_and_hold": hold.equity}).to_csv(tmp)
    return 0


def _intervals(returns: dict, periods: float) -> tuple[dict[str, dict], str | None]:
    """Sharpe and annual return with 95 % block-bootstrap intervals (none below 10 bars), and a
    warning when the bars cover too little time for annualised figures."""
    from flashtrade_lib.trading.metrics import annualisation_note, annualised_intervals

    bars = len(next(iter(returns.values())))
    intervals = {} if bars < 10 else {
        name: {k: {"estimate": v.estimate, "low": v.low, "high": v.high}
               for k, v in annualised_intervals(r, periods).items()}
        for name, r in returns.items()
    }
    return intervals, annualisation_note(bars, periods)


def cmd_bench(args: argparse.Namespace) -> int:
    """Time and peak memory of one training step vs context length, per attention backend."""
    from flashtrade_lib.measure.bench import fmt_bytes, fmt_seconds, write_record
    from flashtrade_lib.model.step_cost import measure_train_context

    _check_out_file(args.json, (), "--json")
    device = _device(args.device)
    rows = measure_train_context(
        args.contexts, args.backends, batch=args.batch, d_model=args.d_model, n_heads=args.n_heads,
        n_layers=args.n_layers, repeat=args.repeat, max_bytes=args.max_gib * 2**30, device=device,
        amp=device.startswith("cuda"), progress=not args.no_progress,
    )
    print(f"{'context':>8} {'backend':>12} {'step':>10} {'peak memory':>12}")
    for r in rows:
        if r["status"] == "ok":
            print(f"{r['context']:>8} {r['backend']:>12} {fmt_seconds(r['step_s']):>10} "
                  f"{fmt_bytes(r['peak_bytes']):>12}")
        else:
            print(f"{r['context']:>8} {r['backend']:>12} {r['status']:>10}  {r['reason']}")
    if args.json:
        write_record(args.json, {"benchmark": "train_context", "rows": rows})
    return 0


# --------------------------------------------------------------------------- parser


def _positive_number(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _non_negative_number(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


class _Help(argparse.RawDescriptionHelpFormatter):
    """Help that states every option's default — except where there is none to state
    (required options, switches, and options whose help already says what "unset" means)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or action.default is None or action.default is False
                or action.default is argparse.SUPPRESS or "%(default)" in text):
            return text
        return f"{text} (default: %(default)s)"

    def _expand_help(self, action: argparse.Action) -> str:
        if isinstance(action.choices, _Backends):  # listing them would import torch; the help names them
            action = copy.copy(action)
            action.choices = None
        return super()._expand_help(action)


def _description(doc: str | None) -> str:
    """A docstring as plain terminal text: no reStructuredText markup."""
    return (doc or "").replace("``", "").replace(":func:", "")


class _Backends:
    """``--backend``'s choices, read from the backend registry only when a name is checked:
    the registry imports torch, which a ``--help`` must not wait for."""

    def _names(self) -> tuple[str, ...]:
        from flashtrade_lib.attention.backends import BACKENDS

        return ("auto", *BACKENDS)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Any:
        return iter(self._names())


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; it imports nothing heavy (``--help`` answers at once)."""
    from flashtrade_lib.data.sources import data_spec_help
    from flashtrade_lib.options import OBJECTIVES
    from flashtrade_lib.trading.costs import DEFAULT_COST_BPS, FUNDING_PER_8H

    parser = argparse.ArgumentParser(prog="flashtrade", description=_description(__doc__), formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    backends = _Backends()
    backend_help = "attention backend: auto, sdpa, naive, or another this install registers"

    def command(name: str, helptext: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=_description(func.__doc__), formatter_class=_Help)
        p.set_defaults(func=func)
        return p

    p = command("fetch", "download Bybit klines (network; cached)", cmd_fetch)
    p.add_argument("symbol", help="Bybit symbol, e.g. BTCUSDT")
    p.add_argument("--interval", default="60",
                   help="bar size: 1,3,5,15,30,60,120,240,360,720 minutes or D,W,M (also 1h, 4h, 1d...)")
    p.add_argument("--start", help="first bar, e.g. 2024-01-01 (UTC; unset: as far back as Bybit has)")
    p.add_argument("--end", help="last bar (UTC; unset: now)")
    p.add_argument("--category", default="linear", choices=("spot", "linear", "inverse"),
                   help="Bybit market: linear = USDT perpetuals")
    p.add_argument("--out", help="also write the bars to this .csv or .parquet file (unset: print a summary only)")
    p.add_argument("--cache-dir", help="cache folder (unset: $FLASHTRADE_CACHE_DIR or ~/.cache/flashtrade)")
    p.add_argument("--no-cache", action="store_true", help="always download, never read or write the cache")
    p.add_argument("--refresh", action="store_true",
                   help="download the range again and replace the cached file (e.g. a corrupt one)")
    p.add_argument("--timeout", type=_seconds, default=10.0, help="deadline of each request, in seconds")
    p.add_argument("--max-retries", type=int, default=5, help="retries of a failed request")
    p.add_argument("--lock-wait", type=_seconds, default=900.0,
                   help="wait at most this many seconds for another process updating the same cache file")
    p.add_argument("--base-url", help="Bybit API host, e.g. https://api-testnet.bybit.com or a regional one "
                   "(unset: $FLASHTRADE_BYBIT_URL, else https://api.bybit.com)")

    p = command("train", "train a model (offline)", cmd_train)
    p.add_argument("--out", required=True, help="directory for the checkpoint (created if missing)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a checkpoint an earlier run left in --out (it is refused otherwise)")
    p.add_argument("--data", default="crypto-30m", metavar="SOURCE", help=data_spec_help())
    p.add_argument("--interval", help="bar size of cached live bars (bybit:... 60, D; yahoo:... 1h, 1d; "
                   "unset: the source's default) — read from the cache `flashtrade fetch` filled, offline")
    p.add_argument("--symbol", help="asset whose forward return is the target (unset: the first)")
    p.add_argument("--lookback", type=_positive, default=128, help="bars per input window")
    p.add_argument("--horizon", type=_positive, default=1, help="bars ahead of the forward log return")
    p.add_argument("--last-bars", type=_positive, default=4000,
                   help="use only the most recent bars (sized for a CPU; pass a large number for all)")
    p.add_argument("--epochs", type=_positive, default=3, help="passes over the training split at most")
    p.add_argument("--batch-size", type=_positive, default=32, help="global batch (all processes)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--objective", choices=OBJECTIVES, default="regression", help="what the loss trains")
    p.add_argument("--patience", type=_positive, default=3, help="early-stopping patience in epochs")
    p.add_argument("--max-steps-per-epoch", type=_positive, default=None,
                   help="cap the optimiser steps of an epoch (unset: the whole training split)")
    add_model_size_options(p)
    p.add_argument("--dropout", type=float, default=0.1, help="dropout probability in each block")
    p.add_argument("--bidirectional", action="store_true", help="non-causal encoder over the window")
    p.add_argument("--backend", choices=backends, metavar="BACKEND", default="auto", help=backend_help)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the batches and the synthetic market")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
    g = p.add_argument_group("synthetic market (--data synthetic)")
    g.add_argument("--n-bars", type=_positive, default=6000, help="bars to simulate")
    g.add_argument("--n-assets", type=_positive, default=2, help="assets to simulate")
    g.add_argument("--planted-lag", type=_positive, default=48, help="lag of the planted echo, in bars")
    g.add_argument("--echo-coef", type=float, default=0.3, help="strength of the planted echo")

    for name, func, helptext in (
        ("predict", cmd_predict, "predict a split with a checkpoint (offline)"),
        ("backtest", cmd_backtest, "backtest a checkpoint's signals with costs (offline)"),
    ):
        p = command(name, helptext, func)
        p.add_argument("--checkpoint", required=True, help="checkpoint file or the directory holding it")
        p.add_argument("--split", choices=("train", "val", "test", "all") if name == "predict"
                       else ("val", "test"), default="test", help="which purged split's decision bars")
        p.add_argument("--backend", choices=backends, metavar="BACKEND", default=None,
                       help=backend_help + " (unset: the one saved in the checkpoint)")
        p.add_argument("--batch-size", type=_positive, default=128, help="windows per forward pass")
        p.add_argument("--json", action="store_true", help="print the result as JSON (for scripts)")
        if name == "predict":
            p.add_argument("--out", help="write predictions to this CSV file (unset: print a summary only)")
        else:
            p.add_argument("--signal", choices=("regression", "direction", "allocation"), default="regression",
                           help="which model head becomes the position")
            p.add_argument("--position", choices=("sign", "tanh"), default="sign",
                           help="how a signal becomes a weight")
            p.add_argument("--scale", type=_positive_number, default=1.0, help="tanh scale for --position tanh")
            p.add_argument("--cost-bps", type=_non_negative_number, default=DEFAULT_COST_BPS,
                           help="cost per unit traded, bps of traded value (default: Bybit's taker fee + "
                                "half the spread estimated from the bundled bars)")
            p.add_argument("--funding-per-8h", type=float, default=FUNDING_PER_8H,
                           help="perpetual funding rate per 8 h held, positive = longs pay (default: Bybit's "
                                "baseline 0.0001); 0 for spot")
            p.add_argument("--out", help="write both equity curves to this CSV file (unset: none)")

    p = command("bench", "time/memory of a training step vs context (offline)", cmd_bench)
    p.add_argument("--contexts", type=_positive, nargs="+", default=[256, 512, 1024], help="context lengths")
    p.add_argument("--backends", choices=backends, metavar="BACKEND", nargs="+", default=["naive", "sdpa"],
                   help="attention backends to compare: " + backend_help.split(": ")[1])
    p.add_argument("--batch", type=_positive, default=8, help="windows per step")
    add_model_size_options(p)
    p.add_argument("--repeat", type=_positive, default=3, help="timed steps per backend (median reported)")
    p.add_argument("--max-gib", type=_positive_number, default=16.0,
                   help="skip naive steps predicted to need more N×N memory than this")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", help="also write the rows and the machine report to this JSON file (unset: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    # the course kit keeps its commands to itself (flashtrade_lib/course/cli.py)
    from flashtrade_lib.course import cli as course_cli

    p = sub.add_parser("course", help="instructors: release chapters to students, autograde submissions",
                       formatter_class=_Help)
    course_cli.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flashtrade`` console script; returns the exit status.

    An error a person can act on — bad input (exit 2), or a library error: Bybit,
    the cache, a corrupt file, an unwritable ``--out`` (exit 1) — is printed as one
    line on stderr; ``--debug`` shows the traceback instead.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (CLIError, ValueError, FlashTradeError, OSError, ImportError) as exc:
        if args.debug:
            raise
        bad_input = isinstance(exc, (CLIError, ValueError)) and not isinstance(exc, OSError)
        print(f"flashtrade {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if bad_input else 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"flashtrade {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
