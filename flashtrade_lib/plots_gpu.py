"""Chapter 4's GPU tables and figures: memory hierarchies, and recorded benchmark results.

Nothing here measures anything: :func:`this_gpu` reads what the driver reports about
the reader's GPU, :data:`COMMON_GPUS` is transcribed from NVIDIA's datasheets and
architecture whitepapers (cited per row), and :func:`plot_tflops` draws what
``benchmarks/gpu_attention.py`` recorded, with the machine and date it was recorded on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "COMMON_GPUS",
    "RESULTS_DIR",
    "common_gpus_frame",
    "load_gpu_results",
    "plot_tflops",
    "results_frame",
    "this_gpu",
]

RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

#: Memory hierarchy of common NVIDIA GPUs, from the vendor's documents. Shared memory is
#: the most a kernel can configure per SM (it is carved out of a larger L1/shared array);
#: every one of these SMs also has a 256 KB register file (65,536 32-bit registers).
COMMON_GPUS: list[dict[str, Any]] = [
    {"gpu": "V100 SXM2 (Volta, sm70)", "SMs": 80, "shared KB/SM (max)": 96, "L1+shared KB/SM": 128,
     "L2 MB": 6, "HBM GB": "16 / 32", "bandwidth TB/s": 0.9, "memory": "HBM2",
     "source": "NVIDIA Tesla V100 GPU Architecture whitepaper (2017)"},
    {"gpu": "T4 (Turing, sm75)", "SMs": 40, "shared KB/SM (max)": 64, "L1+shared KB/SM": 96,
     "L2 MB": 4, "HBM GB": "16 (GDDR6)", "bandwidth TB/s": 0.32, "memory": "GDDR6",
     "source": "NVIDIA Turing GPU Architecture whitepaper; T4 datasheet"},
    {"gpu": "A100 40GB (Ampere, sm80)", "SMs": 108, "shared KB/SM (max)": 164, "L1+shared KB/SM": 192,
     "L2 MB": 40, "HBM GB": "40", "bandwidth TB/s": 1.6, "memory": "HBM2",
     "source": "NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020); A100 datasheet"},
    {"gpu": "A100 80GB SXM (Ampere, sm80)", "SMs": 108, "shared KB/SM (max)": 164, "L1+shared KB/SM": 192,
     "L2 MB": 40, "HBM GB": "80", "bandwidth TB/s": 2.0, "memory": "HBM2e",
     "source": "NVIDIA A100 datasheet (80GB)"},
    {"gpu": "RTX 4090 (Ada, sm89)", "SMs": 128, "shared KB/SM (max)": 100, "L1+shared KB/SM": 128,
     "L2 MB": 72, "HBM GB": "24 (GDDR6X)", "bandwidth TB/s": 1.0, "memory": "GDDR6X",
     "source": "NVIDIA Ada GPU Architecture whitepaper (2022)"},
    {"gpu": "H100 SXM5 (Hopper, sm90)", "SMs": 132, "shared KB/SM (max)": 228, "L1+shared KB/SM": 256,
     "L2 MB": 50, "HBM GB": "80", "bandwidth TB/s": 3.35, "memory": "HBM3",
     "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022); H100 datasheet"},
    {"gpu": "H200 SXM (Hopper, sm90)", "SMs": 132, "shared KB/SM (max)": 228, "L1+shared KB/SM": 256,
     "L2 MB": 50, "HBM GB": "141", "bandwidth TB/s": 4.8, "memory": "HBM3e",
     "source": "NVIDIA H200 datasheet (2024)"},
]


def common_gpus_frame():
    """:data:`COMMON_GPUS` as a pandas DataFrame indexed by GPU."""
    import pandas as pd

    return pd.DataFrame(COMMON_GPUS).set_index("gpu")


def this_gpu() -> dict[str, Any] | None:
    """The reader's GPU 0 as the driver reports it (``None`` without CUDA).

    The bandwidth is the *theoretical peak* computed from the reported bus width and
    memory clock (2 transfers per clock), not a measurement.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    bus = getattr(p, "memory_bus_width", None)
    clock_khz = getattr(p, "memory_clock_rate", None)
    smem = getattr(p, "shared_memory_per_multiprocessor", None)
    l2 = getattr(p, "L2_cache_size", None)
    return {
        "gpu": f"{p.name} (sm{p.major}{p.minor}) — this machine",
        "SMs": p.multi_processor_count,
        "shared KB/SM (max)": round(smem / 1024) if smem else None,
        "L2 MB": round(l2 / 2**20, 1) if l2 else None,
        "HBM GB": f"{p.total_memory / 1e9:.0f}",
        "bandwidth TB/s": round(2 * bus / 8 * clock_khz * 1e3 / 1e12, 2) if bus and clock_khz else None,
        "source": "torch.cuda.get_device_properties (driver-reported)",
    }


def load_gpu_results(directory: Path | str | None = None) -> list[dict[str, Any]]:
    """Every recorded ``gpu_attention*.json`` (newest first); an empty list when none exists yet."""
    directory = RESULTS_DIR if directory is None else Path(directory)
    records = [json.loads(p.read_text()) for p in sorted(directory.glob("gpu_attention*.json"))]
    for rec, path in zip(records, sorted(directory.glob("gpu_attention*.json")), strict=True):
        rec["_file"] = path.name
    return sorted(records, key=lambda r: r.get("environment", {}).get("date_utc", ""), reverse=True)


def results_frame(record: dict[str, Any]):
    """The rows of one recorded benchmark as a DataFrame (TFLOP/s per backend, pass, shape)."""
    import pandas as pd

    return pd.DataFrame(record["rows"])


def plot_tflops(record: dict[str, Any], *, head_dim: int = 128):
    """TFLOP/s vs sequence length, one line per backend; forward/backward × full/causal panels."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = results_frame(record)
    df = df[(df["head_dim"] == head_dim) & (df["status"] == "ok")]
    gpu = record.get("gpu", {})
    fig = make_subplots(
        rows=2, cols=2, shared_xaxes=True,
        subplot_titles=["forward, full", "forward, causal", "backward, full", "backward, causal"],
    )
    backends = sorted(df["backend"].unique())
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"]
    for i, backend in enumerate(backends):
        for row, p in enumerate(("fwd", "bwd"), start=1):
            for col, causal in enumerate((False, True), start=1):
                sel = df[(df["backend"] == backend) & (df["pass"] == p) & (df["causal"] == causal)]
                sel = sel.sort_values("seqlen")
                fig.add_trace(
                    go.Scatter(x=sel["seqlen"], y=sel["tflops"], mode="lines+markers", name=backend,
                               legendgroup=backend, showlegend=(row == 1 and col == 1),
                               line={"color": palette[i % len(palette)]}),
                    row=row, col=col,
                )
    fig.update_xaxes(type="log", title_text="sequence length N (tokens)", row=2)
    fig.update_yaxes(title_text="TFLOP/s (bf16)", col=1)
    date = record.get("environment", {}).get("date_utc", "?")[:10]
    fig.update_layout(
        title=f"Attention throughput, head dim {head_dim} — {gpu.get('name', '?')}, "
              f"torch {gpu.get('torch', '?')}, triton {gpu.get('triton', '?')}, recorded {date}",
        height=650,
    )
    return fig
