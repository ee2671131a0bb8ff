"""Peak resident memory of lazy windows: 35k bars x 25 features at lookback 2048 (target <= 100 MB).

    .venv/bin/python benchmarks/windows_memory.py [--bars 35000] [--features 25] [--lookback 2048]

It builds the feature matrix of a 5-asset synthetic market (5 features per asset),
wraps it in :class:`flashtrade_lib.data.windows.WindowDataset`, touches every window
once (``ds[i]`` for all ``i``, checking each is a view) and iterates one epoch's worth
of DataLoader batches, measuring the peak *extra* resident memory with
:func:`flashtrade_lib.measure.bench.peak_memory` (Linux: VmHWM after resetting it through
/proc/self/clear_refs). It prints that next to what the seed chapter's materialised
``(samples, lookback, features)`` array would need (computed, not allocated: it would
not fit), and writes JSON with provenance to benchmarks/results/windows_memory.json.
Resident memory does not depend on the machine's load, but the seconds it prints do: the
script waits (bounded, ``--max-wait``) for a quiet machine and records the load.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from flashtrade_lib.data.features import Standardizer, make_features
from flashtrade_lib.data.labels import forward_log_return
from flashtrade_lib.data.synthetic import simulate_market
from flashtrade_lib.data.windows import WindowDataset
from flashtrade_lib.measure.bench import (
    add_max_wait_option,
    fmt_bytes,
    memory_method,
    peak_memory,
    watch_machine,
    write_record,
)

LIMIT_BYTES = 100 * 10**6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=35_000)
    ap.add_argument("--features", type=int, default=25, help="a multiple of 5 (5 features per asset)")
    ap.add_argument("--lookback", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=50, help="DataLoader batches to iterate")
    add_max_wait_option(ap)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "windows_memory.json")
    args = ap.parse_args(argv)
    if args.features % 5:
        raise SystemExit("--features must be a multiple of 5 (five features per asset)")
    torch.set_num_threads(1)

    market = simulate_market(args.bars, args.features // 5, seed=0)
    feats = make_features(market.panel)
    y = forward_log_return(market.panel["close"].iloc[:, 0], 24).to_numpy(np.float32)
    x = Standardizer().fit(feats.iloc[: args.bars // 2]).transform(feats).to_numpy(np.float32)
    del market, feats

    state: dict[str, object] = {}

    def build_and_touch() -> None:
        ds = WindowDataset(x, y, args.lookback, horizon=24)
        base = ds.x.untyped_storage().data_ptr()
        checksum = 0.0
        for i in range(len(ds)):
            w, target = ds[i]
            if w.untyped_storage().data_ptr() != base:
                raise AssertionError(f"window {i} is not a view")
            checksum += float(w[-1, 0]) + float(target)
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                             generator=torch.Generator().manual_seed(0))
        for b, (xb, _) in enumerate(loader):
            checksum += float(xb[:, -1, 0].sum())
            if b + 1 >= args.batches:
                break
        state.update(samples=len(ds), materialised32=ds.nbytes_if_materialised(torch.float32),
                     materialised64=ds.nbytes_if_materialised(torch.float64), checksum=checksum)

    with watch_machine(args.max_wait) as watch:
        t0 = time.perf_counter()
        peak = peak_memory(build_and_touch)
        seconds = time.perf_counter() - t0
    batch_bytes = args.batch_size * args.lookback * args.features * 4
    ok = peak <= LIMIT_BYTES
    rows = [
        ("features array (float32)", x.nbytes),
        ("one DataLoader batch (float32)", batch_bytes),
        ("peak extra resident memory, measured", peak),
        ("materialised windows, float32 (computed)", state["materialised32"]),
        ("materialised windows, float64 (seed chapter, computed)", state["materialised64"]),
    ]
    print(f"{args.bars} bars x {args.features} features, lookback {args.lookback}: "
          f"{state['samples']} windows (memory method: {memory_method()})")
    for name, v in rows:
        print(f"  {name:<58} {fmt_bytes(int(v)):>12}")
    print(f"  materialised float64 / measured peak = {state['materialised64'] / max(peak, 1):,.0f}x")
    print(f"  target <= {fmt_bytes(LIMIT_BYTES)}: {'PASS' if ok else 'FAIL'}  ({seconds:.1f} s)")

    result = {
        "benchmark": "windows_memory",
        "bars": args.bars, "features": args.features, "lookback": args.lookback,
        "batch_size": args.batch_size, "batches": args.batches, "samples": state["samples"],
        "memory_method": memory_method(),
        "features_bytes": int(x.nbytes), "batch_bytes": batch_bytes,
        "peak_extra_bytes": int(peak),
        "materialised_float32_bytes": int(state["materialised32"]),
        "materialised_float64_bytes": int(state["materialised64"]),
        "limit_bytes": LIMIT_BYTES, "passed": ok, "seconds": round(seconds, 2),
    }
    write_record(args.out, result, load=watch.report)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
