"""The GPUs chapter 4 talks about: a catalogue transcribed from vendor documents, and the reader's own.

Nothing here measures anything: :data:`COMMON_GPUS` is transcribed from NVIDIA's
datasheets and architecture whitepapers (cited per row), and :func:`this_gpu` reads
what the driver reports about the reader's GPU. (The recorded benchmark figures are
in :mod:`flashtrade_lib.measure.plots_gpu`.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMMON_GPUS", "common_gpus_frame", "this_gpu"]

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
