"""Cost of one training step of the cross-asset model vs assets × lookback: naive attention vs SDPA.

    .venv/bin/python benchmarks/cross_asset.py                       # CPU defaults, ~4-6 minutes on 2 cores
    .venv/bin/python benchmarks/cross_asset.py --assets 2 8 --lookbacks 32 128 --repeat 2   # quicker

One step = forward, loss, backward and AdamW update of
:class:`~flashtrade_lib.model.cross_asset.CrossAssetTrader` (batch 2, d_model 32, 2 heads,
2 layers, causal) on a window of ``lookback`` bars of ``assets`` assets: a sequence of
``N = lookback × (assets + 1)`` tokens (:func:`~flashtrade_lib.model.cross_asset.n_tokens`).
At every grid point the backends are timed *interleaved* (medians, so the ratios are
measured side by side in one run), then each step's peak extra memory is measured
(resident memory on CPU, CUDA allocations on a GPU).

Naive attention keeps ``B·H·N²`` probabilities per layer for the backward pass, plus a
few more N×N buffers at the peak: ``(n_layers + 3)·B·H·N²·4`` bytes
(:func:`flashtrade_lib.model.step_cost.naive_step_bytes`). The script evaluates that formula
*before* running anything:

* above ``--oom-gib`` (default 12 GiB, a laptop's usable RAM) the row says
  ``"predicted OOM"`` with the prediction — the step is never run;
* above ``--max-run-gib`` (default 3 GiB) the row says ``"not run (time)"``: it would fit,
  but touching that much fresh memory costs seconds per GiB on this machine;
* a backend is not run above ``--max-tokens`` tokens (the compute still grows as N²:
  on this CPU ~10 s per SDPA step at 17k tokens).

Each measured naive row also records the ratio of measured peak to predicted N×N
bytes, so the formula is checked where it can be. Steps are timed on pre-faulted memory
(``prefaulted`` in :func:`~flashtrade_lib.model.step_cost.sweep_step_costs`: first touch of
fresh pages is the machine's cost, not attention's). The script first waits (bounded,
``--max-wait``) for a quiet machine, and the record checks itself
(:func:`flashtrade_lib.measure.bench.write_record`): load, spread of the repeats, and, per backend
and asset count, growth with the lookback that an O(N²) step can produce. Results go to
``benchmarks/results/cross_asset_<device>.json`` with
:func:`flashtrade_lib.measure.env.environment_report` provenance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from flashtrade_lib.attention.backends import default_capabilities, usable_backends
from flashtrade_lib.measure.bench import (
    add_max_wait_option,
    fmt_bytes,
    fmt_seconds,
    watch_machine,
    write_record,
)
from flashtrade_lib.measure.record_quality import Series
from flashtrade_lib.model.cross_asset import CrossAssetTrader, n_tokens
from flashtrade_lib.model.step_cost import naive_step_bytes, sweep_step_costs, train_step
from flashtrade_lib.model.trader import ModelConfig
from flashtrade_lib.options import add_model_size_options

ROOT = Path(__file__).resolve().parents[1]
GiB = 2**30


def make_step(backend: str, assets: int, lookback: int, *, batch: int, d_model: int, n_heads: int,
              n_layers: int, n_features: int, device: str) -> object:
    """One training step (:func:`~flashtrade_lib.model.step_cost.train_step`) of a fresh ``CrossAssetTrader`` on random data."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_features=n_features, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                      backend=backend)
    model = CrossAssetTrader(cfg, assets).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, lookback, assets, n_features, generator=g).to(device)
    y = torch.randn(batch, assets, generator=g).to(device)
    return train_step(model, x, y, "regression")


def default_backends() -> list[str]:
    """The backends ``"auto"`` considers on this device that can run here, from the backend table."""
    return usable_backends(default_capabilities(head_dim=16, causal=True), auto_only=True)


def _series(rows: list[dict]) -> list[Series]:
    """Every repeat of each (backend, asset count) across lookbacks: N grows with the lookback."""
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["tokens"])
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in ok:
        groups.setdefault((r["backend"], r["assets"]), []).append(r)
    return [Series(f"{b}, {a} assets", 2, tuple(r["tokens"] for r in g), tuple(tuple(r["step_times_s"]) for r in g))
            for (b, a), g in groups.items()]


def main(argv: list[str] | None = None) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assets", type=int, nargs="+", default=[2, 8, 32, 128])
    p.add_argument("--lookbacks", type=int, nargs="+", default=[32, 128, 512])
    p.add_argument("--backends", nargs="+", default=None,
                   help="default: every backend 'auto' considers on this device that can run here")
    p.add_argument("--batch", type=int, default=2)
    add_model_size_options(p, d_model=32, n_heads=2)
    p.add_argument("--n-features", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--oom-gib", type=float, default=12.0, help="predicted N×N memory above this: 'predicted OOM'")
    p.add_argument("--max-run-gib", type=float, default=3.0, help="never run a naive step predicted above this")
    p.add_argument("--max-tokens", type=int, default=20_000 if not cuda else 200_000,
                   help="never run any backend above this many tokens (compute time)")
    add_max_wait_option(p)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = "cuda" if cuda else "cpu"
    args.backends = args.backends or default_backends()
    if device == "cpu":
        torch.set_num_threads(min(2, torch.get_num_threads()))
    out = args.out or ROOT / "benchmarks" / "results" / f"cross_asset_{device}.json"
    sizes = {"batch": args.batch, "d_model": args.d_model, "n_heads": args.n_heads, "n_layers": args.n_layers,
             "n_features": args.n_features}
    print(f"device {device}; backends {args.backends}; {sizes}", flush=True)
    started = time.perf_counter()

    def step_at(b: str, point: dict) -> object:
        return make_step(b, point["assets"], point["lookback"], device=device, **sizes)

    def too_long(b: str, point: dict) -> tuple[str, str] | None:
        if point["tokens"] > args.max_tokens:
            return "not run (time)", f"{point['tokens']} tokens > --max-tokens {args.max_tokens}"
        return None

    def done(point: dict) -> None:
        print(f"  assets {point['assets']:4d} lookback {point['lookback']:5d}: {point['tokens']:7,d} tokens done "
              f"({time.perf_counter() - started:.0f} s)", flush=True)

    grid = [{"assets": a, "lookback": lb, "tokens": n_tokens(lb, a)} for a in args.assets for lb in args.lookbacks]
    with watch_machine(args.max_wait) as watch:
        rows = sweep_step_costs(
            grid, args.backends, step_at,
            nxn_bytes=lambda p: naive_step_bytes(p["tokens"], batch=args.batch, n_heads=args.n_heads,
                                                 n_layers=args.n_layers),
            nxn_limits=[(args.oom_gib * GiB, "predicted OOM"), (args.max_run_gib * GiB, "not run (time)")],
            skip=too_long, repeat=args.repeat, device=device, on_point=done, prefaulted=True,
        )

    def cell(a: int, lb: int, b: str) -> dict | None:
        return next((r for r in rows if r["assets"] == a and r["lookback"] == lb and r["backend"] == b), None)

    print(f"\n{'assets':>6} {'lookback':>8} {'tokens':>8} | "
          + " | ".join(f"{b:>24}" for b in args.backends) + " | sdpa vs naive: speed-up, memory")
    for a in args.assets:
        for lb in args.lookbacks:
            cells = []
            for b in args.backends:
                r = cell(a, lb, b)
                if r and r["status"] == "ok":
                    cells.append(f"{fmt_seconds(r['step_s']):>10} {fmt_bytes(r['peak_bytes']):>13}")
                elif r and "predicted_nxn_bytes" in r:
                    cells.append(f"{r['status'] + ' ' + fmt_bytes(r['predicted_nxn_bytes']):>24}")
                else:
                    cells.append(f"{(r or {}).get('status', '-'):>24}")
            nv, sd = cell(a, lb, "naive"), cell(a, lb, "sdpa")
            ratio = ""
            if nv and sd and nv["status"] == sd["status"] == "ok":
                ratio = (f"{nv['step_s'] / sd['step_s']:.2f}x faster, "
                         f"{nv['peak_bytes'] / max(sd['peak_bytes'], 1):.1f}x less memory")
            print(f"{a:>6} {lb:>8} {n_tokens(lb, a):>8} | " + " | ".join(cells) + f" | {ratio}")

    write_record(out, {
        "benchmark": "cross_asset",
        "description": "one training step (forward+backward+AdamW, regression loss) of CrossAssetTrader, "
                       "time-major (asset, time) tokens + one summary token per bar, causal",
        "settings": {**sizes, "assets": args.assets, "lookbacks": args.lookbacks, "backends": args.backends,
                     "repeat": args.repeat, "oom_gib": args.oom_gib, "max_run_gib": args.max_run_gib,
                     "max_tokens": args.max_tokens, "device": device,
                     "naive_formula": "(n_layers + 3) * batch * n_heads * N^2 * 4 bytes"},
        "rows": rows,
        "runtime_s": time.perf_counter() - started,
    }, series=_series(rows), load=watch.report)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
