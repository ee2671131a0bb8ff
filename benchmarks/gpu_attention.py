"""GPU attention benchmark: forward and backward TFLOP/s of every backend vs sequence length.

    .venv/bin/python benchmarks/gpu_attention.py            # the full sweep (a few minutes on a GPU)
    .venv/bin/python benchmarks/gpu_attention.py --quick    # N in {1024, 4096}, head dim 64 only

Backends: every kernel in the backend table (:func:`candidates`) — this book's Triton kernel,
each SDPA sub-backend (flash, efficient, cuDNN, math), flash-attn when installed, and naive
matmul-softmax-matmul. bf16, batch × N = 16k tokens and
heads × d = 2048 (the FlashAttention papers' set-up), causal and not, head dim 64 and 128.
A backend that runs out of GPU memory is recorded as ``"oom"``; one that cannot run these
inputs as ``"unavailable"`` with the reason.

FLOPs are counted as in the FlashAttention papers: forward ``4·B·H·N²·d`` (two matmuls),
halved when causal; backward ``2.5×`` the forward (five matmuls, not counting recomputation).

Times are medians from ``triton.testing.do_bench`` (CUDA events, warm-up first). The
results go to ``benchmarks/results/gpu_attention_<gpu>_<date>.json`` with the GPU name,
driver, CUDA, torch and triton versions and the date; ``flashtrade_lib.measure.plots_gpu`` plots
them in chapter 4. Without a CUDA GPU the script prints why it skipped and exits 0.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TOKENS = 16384  # batch × N
MODEL_DIM = 2048  # heads × d


def candidates() -> list[str]:
    """The kernels to time: every registered backend except dispatchers over the others.

    Read from the backend table (:mod:`flashtrade_lib.attention.backends`), so a newly
    registered backend is benchmarked without touching this script; one that cannot
    run on this GPU is recorded as ``"unavailable"`` with its reason.
    """
    from flashtrade_lib.attention.backends import BACKENDS, backend

    return [name for name in BACKENDS if backend(name).own_kernel]


def attention_flops(batch: int, heads: int, n: int, d: int, *, causal: bool, mode: str) -> float:
    """FLOPs of one attention call, counted as in the FlashAttention papers."""
    fwd = 4.0 * batch * heads * n * n * d / (2.0 if causal else 1.0)
    return {"fwd": fwd, "bwd": 2.5 * fwd, "fwd_bwd": 3.5 * fwd}[mode]


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _measure(backend: str, batch: int, heads: int, n: int, d: int, causal: bool) -> list[dict]:
    """Forward and backward timings of one backend on one shape (two rows)."""
    import torch
    from triton.testing import do_bench

    from flashtrade_lib.attention.backends import BackendUnavailable, attention, describe, why_not

    rows = []
    base = {"backend": backend, "batch": batch, "heads": heads, "seqlen": n, "head_dim": d, "causal": causal}
    shape = (batch, heads, n, d)
    try:
        q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        why = why_not(backend, describe(q, k, v, causal=causal))
        if why is not None:
            return [{**base, "pass": p, "status": "unavailable", "reason": why} for p in ("fwd", "bwd")]

        def fwd():
            return attention(q, k, v, causal=causal, backend=backend)

        ms_fwd = do_bench(fwd, warmup=25, rep=100, return_mode="median")
        rows.append({**base, "pass": "fwd", "status": "ok", "ms": ms_fwd})
        o = fwd()
        do = torch.randn_like(o)
        ms_bwd = do_bench(lambda: o.backward(do, retain_graph=True), warmup=25, rep=100,
                          grad_to_none=[q, k, v], return_mode="median")
        rows.append({**base, "pass": "bwd", "status": "ok", "ms": ms_bwd})
    except torch.cuda.OutOfMemoryError:
        done = {r["pass"] for r in rows}
        rows += [{**base, "pass": p, "status": "oom"} for p in ("fwd", "bwd") if p not in done]
    except (BackendUnavailable, RuntimeError) as exc:  # e.g. torch refused a pinned SDPA kernel
        done = {r["pass"] for r in rows}
        reason = str(exc).splitlines()[0][:300]
        rows += [{**base, "pass": p, "status": "unavailable", "reason": reason} for p in ("fwd", "bwd") if p not in done]
    finally:
        q = k = v = o = do = None  # noqa: F841 — free the memory before the next backend
        torch.cuda.empty_cache()
    for r in rows:
        if r["status"] == "ok":
            flops = attention_flops(batch, heads, n, d, causal=causal, mode=r["pass"])
            r["tflops"] = flops / (r["ms"] * 1e-3) / 1e12
    return rows


def ratios(rows: list[dict], *, seqlen: int, head_dim: int) -> dict[str, float | None]:
    """Triton time advantage over the fastest SDPA sub-backend (>1 means Triton is faster)."""
    out: dict[str, float | None] = {}
    for causal in (False, True):
        for p in ("fwd", "bwd"):
            sel = [r for r in rows if r["seqlen"] == seqlen and r["head_dim"] == head_dim
                   and r["causal"] == causal and r["pass"] == p and r["status"] == "ok"]
            triton = [r["tflops"] for r in sel if r["backend"] == "triton"]
            sdpa = [r["tflops"] for r in sel if r["backend"].startswith("sdpa:")]
            key = f"{p}_{'causal' if causal else 'full'}"
            out[key] = triton[0] / max(sdpa) if triton and sdpa else None
    return out


def main(argv: list[str] | None = None) -> int:
    from flashtrade_lib.measure.bench import add_max_wait_option

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seqlens", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--backends", nargs="+", default=candidates(), choices=candidates())
    parser.add_argument("--quick", action="store_true", help="N in {1024, 4096}, head dim 64")
    add_max_wait_option(parser)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/...)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("skipped: no CUDA GPU (this benchmark measures GPU kernels; run it on a machine with one)")
        return 0
    if args.quick:
        args.seqlens, args.head_dims = [1024, 4096], [64]

    import triton

    from flashtrade_lib.measure.bench import watch_machine, write_record
    from flashtrade_lib.measure.env import environment_report

    env = environment_report()
    props = torch.cuda.get_device_properties(0)
    gpu = {
        **(env.get("gpu") or {}),
        "driver": _driver_version(),
        "cudnn": torch.backends.cudnn.version(),
        "triton": triton.__version__,
        "torch": torch.__version__,
        "total_memory_GiB": round(props.total_memory / 2**30, 1),
    }
    print(f"GPU: {gpu['name']} (sm{gpu['compute_capability']}), driver {gpu['driver']}, "
          f"CUDA {gpu['cuda']}, torch {torch.__version__}, triton {triton.__version__}")

    rows: list[dict] = []
    # kernel launches are CPU work: a busy host slows the short ones, so wait (bounded) and record the load
    with watch_machine(args.max_wait) as watch:
        for d in args.head_dims:
            for causal in (False, True):
                for n in args.seqlens:
                    batch, heads = max(1, TOKENS // n), MODEL_DIM // d
                    for backend in args.backends:
                        new = _measure(backend, batch, heads, n, d, causal)
                        rows += new
                        for r in new:
                            val = (f"{r['tflops']:7.1f} TFLOP/s ({r['ms']:.3f} ms)" if r["status"] == "ok"
                                   else r["status"])
                            print(f"d={d:3d} {'causal' if causal else 'full  '} N={n:5d} {r['pass']} "
                                  f"{backend:15s} {val}")

    record = {
        "benchmark": "gpu_attention",
        "dtype": "bfloat16",
        "flops": "forward 4*B*H*N^2*d (halved when causal); backward 2.5x forward",
        "tokens_per_batch": TOKENS,
        "model_dim": MODEL_DIM,
        "timer": "triton.testing.do_bench, median, warmup 25 ms, rep 100 ms",
        "gpu": gpu,
        "rows": rows,
    }
    target_n = 8192 if 8192 in args.seqlens else max(args.seqlens)
    target_d = 128 if 128 in args.head_dims else max(args.head_dims)
    r = ratios(rows, seqlen=target_n, head_dim=target_d)
    record["triton_vs_best_sdpa"] = {"seqlen": target_n, "head_dim": target_d, **r}
    print(f"\nTriton / fastest SDPA sub-backend (TFLOP/s ratio), N={target_n}, d={target_d}:")
    goals = {"fwd": 1.0, "bwd": 0.8}
    for key, val in r.items():
        goal = goals[key.split("_")[0]]
        verdict = "n/a" if val is None else ("meets" if val >= goal else "below") + f" the {goal:.1f}x target"
        print(f"  {key:12s} {'n/a' if val is None else f'{val:.2f}x'}  ({verdict})")

    out = args.out
    if out is None:
        slug = re.sub(r"[^a-z0-9]+", "-", gpu["name"].lower()).strip("-")
        out = RESULTS / f"gpu_attention_{slug}_{env['date_utc'][:10]}.json"
    write_record(out, record, environment=env, load=watch.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
