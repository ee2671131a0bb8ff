"""GPU attention benchmark: forward and backward TFLOP/s of every backend vs sequence length.

    python benchmarks/gpu_attention.py                  # the full sweep (about 3 minutes on an H100)
    python benchmarks/gpu_attention.py --quick          # N in {1024, 4096}, head dim 64 only
    python benchmarks/gpu_attention.py --dry-run --out /tmp/x.json   # the same code path on the CPU
    python benchmarks/gpu_attention.py --update-readme  # README's GPU table from the records that exist

Backends: every kernel in the backend table (:func:`candidates`) — this book's Triton kernel,
each SDPA sub-backend (flash, efficient, cuDNN, math), flash-attn when installed, and naive
matmul-softmax-matmul. bf16, batch × N = 16k tokens and heads × d = 2048 (the FlashAttention
papers' set-up), so every shape does the same number of FLOPs per unit of N: the work grows
linearly in N and each backend's times form an O(N) series the record checks itself against.
Causal and not, head dim 64 and 128. A backend that runs out of GPU memory is recorded as
``"oom"``, one that cannot run these inputs as ``"unavailable"`` with the reason, and a shape
left out because ``--deadline-s`` ran out as ``"skipped"``. The target shapes (d = 128,
N = 8192) are measured first, so a run cut short still answers the targets.

FLOPs are counted as in the FlashAttention papers (:func:`flashtrade_lib.measure.plots_gpu.attention_flops`).
Each measurement repeats ``triton.testing.do_bench`` (CUDA events, warm-up first, median of
its own runs) ``--repeats`` times; the record keeps every repeat. Results go to
``benchmarks/results/gpu_attention_<gpu>_<date>.json`` with the GPU name, driver, CUDA, torch
and triton versions, the GPU's catalogue peak and the date. Without a CUDA GPU the script
prints why it skipped and exits 0.

``--dry-run`` runs every step on the CPU at tiny sizes — float32 (Triton's interpreter cannot
multiply bf16), the kernel under ``TRITON_INTERPRET=1`` — with a *fake timer* that calls each
function once and reports 1 ms: it proves the code path and the record's schema, and measures
nothing (the record says ``"dry_run": true`` and chapter 4 never shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"


class Setup(NamedTuple):
    """What differs between a GPU run and the CPU dry run; everything else is the same code.

    (A NamedTuple, not a dataclass: chapter 4 and the tests load this script by path, and a
    dataclass needs its module registered in ``sys.modules``.)
    """

    device: str
    dtype: str
    tokens: int  # batch × N
    model_dim: int  # heads × d
    repeats: int
    dry_run: bool

    def timer(self, fn: Callable[[], object], grad_to_none: list) -> list[float]:
        """Milliseconds per call, one number per repeat."""
        if self.dry_run:  # the fake timer: run the code once, measure nothing
            fn()
            return [1.0] * self.repeats
        from triton.testing import do_bench

        return [do_bench(fn, warmup=10, rep=40, grad_to_none=grad_to_none, return_mode="median")
                for _ in range(self.repeats)]

    @property
    def timer_doc(self) -> str:
        if self.dry_run:
            return "fake (dry run): each function called once, 1.0 ms reported — not a measurement"
        return f"triton.testing.do_bench median (warmup 10 ms, rep 40 ms), repeated {self.repeats} times"


GPU = Setup(device="cuda", dtype="bfloat16", tokens=16384, model_dim=2048, repeats=3, dry_run=False)
DRY = Setup(device="cpu", dtype="float32", tokens=256, model_dim=64, repeats=2, dry_run=True)
DRY_SEQLENS, DRY_HEAD_DIMS = [64, 128], [32]


def candidates() -> list[str]:
    """The kernels to time: every registered backend except dispatchers over the others.

    Read from the backend table (:mod:`flashtrade_lib.attention.backends`), so a newly
    registered backend is benchmarked without touching this script; one that cannot
    run on this GPU is recorded as ``"unavailable"`` with its reason.
    """
    from flashtrade_lib.attention.backends import BACKENDS, backend

    return [name for name in BACKENDS if backend(name).own_kernel]


def plan(seqlens: list[int], head_dims: list[int]) -> list[tuple[int, bool, int]]:
    """Every (head dim, causal, N) to measure, the target shapes first (a run cut short still answers them)."""
    from flashtrade_lib.measure.plots_gpu import TARGET

    shapes = [(d, causal, n) for d in head_dims for causal in (False, True) for n in seqlens]
    return sorted(shapes, key=lambda s: (s[0] != TARGET["head_dim"] or s[2] != TARGET["seqlen"]))


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _measure(setup: Setup, backend: str, batch: int, heads: int, n: int, d: int, causal: bool) -> list[dict]:
    """Forward and backward timings of one backend on one shape (two rows)."""
    import torch

    from flashtrade_lib.attention.backends import BackendUnavailable, attention, describe, why_not
    from flashtrade_lib.measure.plots_gpu import attention_flops

    rows: list[dict] = []
    base = {"backend": backend, "batch": batch, "heads": heads, "seqlen": n, "head_dim": d, "causal": causal}
    shape = (batch, heads, n, d)
    q = k = v = o = do = None
    try:
        dtype = getattr(torch, setup.dtype)
        q, k, v = (torch.randn(shape, device=setup.device, dtype=dtype, requires_grad=True) for _ in range(3))
        why = why_not(backend, describe(q, k, v, causal=causal))
        if why is not None:
            return [{**base, "pass": p, "status": "unavailable", "reason": why} for p in ("fwd", "bwd")]

        def fwd():
            return attention(q, k, v, causal=causal, backend=backend)

        times = setup.timer(fwd, [])
        rows.append({**base, "pass": "fwd", "status": "ok", "times_ms": times})
        o = fwd()
        do = torch.randn_like(o)
        times = setup.timer(lambda: o.backward(do, retain_graph=True), [q, k, v])
        rows.append({**base, "pass": "bwd", "status": "ok", "times_ms": times})
    except torch.cuda.OutOfMemoryError:
        done = {r["pass"] for r in rows}
        rows += [{**base, "pass": p, "status": "oom"} for p in ("fwd", "bwd") if p not in done]
    except (BackendUnavailable, RuntimeError, ValueError, TypeError) as exc:  # e.g. torch refused a pinned kernel
        done = {r["pass"] for r in rows}
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        rows += [{**base, "pass": p, "status": "unavailable", "reason": reason} for p in ("fwd", "bwd") if p not in done]
    finally:
        q = k = v = o = do = None  # noqa: F841 — free the memory before the next backend
        if setup.device == "cuda":
            torch.cuda.empty_cache()
    for r in rows:
        if r["status"] == "ok":
            r["ms"] = statistics.median(r["times_ms"])
            flops = attention_flops(batch, heads, n, d, causal=causal, mode=r["pass"])
            r["tflops"] = flops / (r["ms"] * 1e-3) / 1e12
    return rows


def series_of(rows: list[dict]) -> list:
    """One O(N) series per (backend, pass, causal, d): batch × N is fixed, so the work grows linearly in N."""
    from flashtrade_lib.measure.record_quality import Series

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            groups.setdefault((r["backend"], r["pass"], r["causal"], r["head_dim"]), []).append(r)
    out = []
    for (backend, p, causal, d), rs in sorted(groups.items(), key=str):
        rs = sorted(rs, key=lambda r: r["seqlen"])
        out.append(Series(f"{backend} {p} {'causal' if causal else 'full'} d={d}", 1,
                          tuple(r["seqlen"] for r in rs), tuple(tuple(t / 1e3 for t in r["times_ms"]) for r in rs)))
    return out


def gpu_description(setup: Setup) -> dict | None:
    """The GPU, driver and library versions the record is stamped with (``None`` in a dry run)."""
    if setup.dry_run:
        return None
    import torch
    import triton

    from flashtrade_lib.measure.env import gpu_info

    props = torch.cuda.get_device_properties(0)
    return {
        **(gpu_info() or {}),
        "driver": _driver_version(),
        "cudnn": torch.backends.cudnn.version(),
        "triton": triton.__version__,
        "torch": torch.__version__,
        "total_memory_GiB": round(props.total_memory / 2**30, 1),
    }


def run(setup: Setup, seqlens: list[int], head_dims: list[int], backends: list[str], *,
        deadline_s: float | None, max_wait: float | None, out: Path | None,
        gpu_tests: dict | None = None) -> Path:
    """Measure every planned shape (until the deadline), then write the record; returns its path."""
    from flashtrade_lib.measure import gpus, plots_gpu
    from flashtrade_lib.measure.bench import watch_machine, write_record
    from flashtrade_lib.measure.env import environment_report

    env = environment_report()
    gpu = gpu_description(setup)
    entry = gpus.catalogue_entry(gpu["name"]) if gpu else None
    peak = entry["bf16 TFLOP/s (dense)"] if entry else None
    if gpu:
        print(f"GPU: {gpu['name']} (sm{gpu['compute_capability']}), driver {gpu['driver']}, "
              f"CUDA {gpu['cuda']}, torch {gpu['torch']}, triton {gpu['triton']}; catalogue peak bf16: "
              f"{peak if peak else 'unknown'} TFLOP/s", flush=True)
    else:
        print("dry run on the CPU: fake timer, nothing is measured", flush=True)

    start = time.monotonic()
    rows: list[dict] = []
    stopped = None
    # kernel launches are CPU work: a busy host slows the short ones, so wait (bounded) and record the load
    with watch_machine(max_wait) as watch:
        for d, causal, n in plan(seqlens, head_dims):
            batch, heads = max(1, setup.tokens // n), max(1, setup.model_dim // d)
            for backend in backends:
                base = {"backend": backend, "batch": batch, "heads": heads, "seqlen": n, "head_dim": d,
                        "causal": causal}
                if deadline_s is not None and time.monotonic() - start > deadline_s:
                    stopped = f"the benchmark's time budget ({deadline_s:g} s) ran out; later shapes are 'skipped'"
                    rows += [{**base, "pass": p, "status": "skipped", "reason": stopped} for p in ("fwd", "bwd")]
                    continue
                new = _measure(setup, backend, batch, heads, n, d, causal)
                rows += new
                for r in new:
                    val = (f"{r['tflops']:8.3f} TFLOP/s ({r['ms']:.3f} ms)" if r["status"] == "ok" else r["status"])
                    print(f"d={d:3d} {'causal' if causal else 'full  '} N={n:5d} {r['pass']} {backend:15s} {val}",
                          flush=True)

    target = {"seqlen": plots_gpu.TARGET["seqlen"] if plots_gpu.TARGET["seqlen"] in seqlens else max(seqlens),
              "head_dim": plots_gpu.TARGET["head_dim"] if plots_gpu.TARGET["head_dim"] in head_dims else max(head_dims)}
    record = {
        "benchmark": "gpu_attention",
        "dry_run": setup.dry_run,
        "device": setup.device,
        "dtype": setup.dtype,
        "flops": plots_gpu.FLOPS_CONVENTION,
        "tokens_per_batch": setup.tokens,
        "model_dim": setup.model_dim,
        "timer": setup.timer_doc,
        "gpu": gpu,
        "peak_bf16_tflops": peak,
        "peak_source": f"{entry['gpu']}: {entry['source']}" if entry else None,
        "stopped_early": stopped,
        "gpu_tests": gpu_tests,  # tests/test_gpu.py's counts when run by benchmarks/gpu_check.sh just before
        "target_shape": target,
        "targets": plots_gpu.targets(rows, peak_tflops=peak, **target),
        "rows": rows,
    }
    if out is None:
        slug = re.sub(r"[^a-z0-9]+", "-", (gpu["name"] if gpu else "cpu-dry-run").lower()).strip("-")
        out = RESULTS / f"gpu_attention_{slug}_{env['date_utc'][:10]}.json"
    # the measurements first, as they are: a failure while the record checks itself must not lose them
    unchecked = out.parent / f"unchecked_{out.name}"
    unchecked.parent.mkdir(parents=True, exist_ok=True)
    unchecked.write_text(json.dumps({**record, "environment": env, "load": watch.report}, indent=1, default=str))
    path = write_record(out, record, environment=env, series=series_of(rows), load=watch.report)
    unchecked.unlink()
    from flashtrade_lib.measure.bench import load_record

    print(plots_gpu.format_targets(load_record(path)), flush=True)
    return path


def update_readme(readme: Path = README) -> bool:
    """Rewrite README's generated GPU block from the records that exist; True when it changed."""
    from flashtrade_lib.measure import plots_gpu

    text = readme.read_text()
    new = plots_gpu.replace_readme_block(text, plots_gpu.readme_block(plots_gpu.load_gpu_results()))
    if new != text:
        readme.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    from flashtrade_lib.measure.bench import add_max_wait_option

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seqlens", type=int, nargs="+", default=None, help="default 1024 … 16384")
    parser.add_argument("--head-dims", type=int, nargs="+", default=None, help="default 64 128")
    parser.add_argument("--backends", nargs="+", default=None, help=f"default: all of {candidates()}")
    parser.add_argument("--quick", action="store_true", help="N in {1024, 4096}, head dim 64")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every step on the CPU at tiny sizes with a fake timer (measures nothing)")
    parser.add_argument("--deadline-s", type=float, default=None,
                        help="stop starting new measurements after this many seconds; the rest are 'skipped'")
    parser.add_argument("--gpu-tests", type=Path, default=None,
                        help="JSON counts of tests/test_gpu.py from the same machine (gpu_check.sh passes them)")
    parser.add_argument("--update-readme", action="store_true",
                        help="only rewrite README.md's GPU block from benchmarks/results and exit")
    add_max_wait_option(parser)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/...)")
    args = parser.parse_args(argv)

    if args.update_readme:
        print("README.md updated" if update_readme() else "README.md already up to date")
        return 0
    unknown = set(args.backends or ()) - set(candidates())
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}; choose from {candidates()}")
    if args.dry_run:
        if args.out is None:
            parser.error("--dry-run needs --out (a dry run's record never goes into benchmarks/results)")
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are first imported
        setup = DRY
        seqlens, head_dims = args.seqlens or DRY_SEQLENS, args.head_dims or DRY_HEAD_DIMS
    else:
        import torch

        if not torch.cuda.is_available():
            print("skipped: no CUDA GPU (this benchmark measures GPU kernels; run it on a machine with one, "
                  "or --dry-run to check the code path on the CPU)")
            return 0
        setup = GPU
        seqlens = args.seqlens or ([1024, 4096] if args.quick else [1024, 2048, 4096, 8192, 16384])
        head_dims = args.head_dims or ([64] if args.quick else [64, 128])
    gpu_tests = json.loads(args.gpu_tests.read_text()) if args.gpu_tests and args.gpu_tests.is_file() else None
    run(setup, seqlens, head_dims, args.backends or candidates(), deadline_s=args.deadline_s,
        max_wait=args.max_wait, out=args.out, gpu_tests=gpu_tests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
