"""Chapter 4's figures of recorded GPU benchmarks: TFLOP/s per attention backend.

Nothing here measures anything: :func:`plot_tflops` draws what
``benchmarks/gpu_attention.py`` recorded, with the machine and date it was recorded on;
records are read through :func:`flashtrade_lib.measure.bench.load_record`. (The catalogue of
GPUs and the reader's own GPU are in :mod:`flashtrade_lib.measure.gpus`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "load_gpu_results",
    "plot_tflops",
    "results_frame",
]

from flashtrade_lib.measure.bench import results_dir

RESULTS_DIR = results_dir()  # the records' one home: $FLASHTRADE_RESULTS, the checkout, or the wheel's copy

def load_gpu_results(directory: Path | str | None = None) -> list[dict[str, Any]]:
    """Every recorded ``gpu_attention*.json`` (newest first); an empty list when none exists yet."""
    from flashtrade_lib.measure.bench import load_record

    directory = results_dir() if directory is None else Path(directory)
    records = []
    for path in sorted(directory.glob("gpu_attention*.json")):
        record = load_record(path)
        if record is not None:
            records.append({**record, "_file": path.name})
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
