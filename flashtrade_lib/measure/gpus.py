"""The GPUs chapter 4 talks about: a catalogue transcribed from vendor documents, and the reader's own.

Nothing here measures anything: :data:`COMMON_GPUS` is transcribed from NVIDIA's
datasheets and architecture whitepapers (cited per row), :func:`ridge_point` divides two
of its columns, and :func:`this_gpu` reads what the driver reports about the reader's
GPU. (The recorded benchmark figures are in :mod:`flashtrade_lib.measure.plots_gpu`.)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "COMMON_GPUS",
    "catalogue_entry",
    "common_gpus_frame",
    "ridge_point",
    "sdpa_priority_order",
    "this_gpu",
]

#: Memory hierarchy and peak tensor-core rates of common NVIDIA GPUs, from the vendor's
#: documents. Shared memory is the most a kernel can configure per SM (carved out of a
#: larger L1/shared array); every one of these SMs also has a 256 KB register file.
#: Peak rates are *dense* (datasheets print the 2:4-sparsity figure, twice these, with a
#: footnote), for 16-bit inputs with fp32 accumulation; ``None`` where the GPU has no bf16
#: tensor cores (Volta, Turing). ``names`` are what ``torch.cuda.get_device_name`` reports
#: for that exact part (matched case-insensitively by :func:`catalogue_entry`).
COMMON_GPUS: list[dict[str, Any]] = [
    {"gpu": "V100 SXM2 (Volta, sm70)", "SMs": 80, "shared KB/SM (max)": 96, "L1+shared KB/SM": 128,
     "L2 MB": 6, "HBM GB": "16 / 32", "bandwidth TB/s": 0.9, "memory": "HBM2",
     "bf16 TFLOP/s (dense)": None, "fp16 TFLOP/s (dense)": 125,
     "names": ("V100-SXM2",),
     "source": "NVIDIA Tesla V100 GPU Architecture whitepaper (2017); V100 datasheet"},
    {"gpu": "T4 (Turing, sm75)", "SMs": 40, "shared KB/SM (max)": 64, "L1+shared KB/SM": 96,
     "L2 MB": 4, "HBM GB": "16 (GDDR6)", "bandwidth TB/s": 0.32, "memory": "GDDR6",
     "bf16 TFLOP/s (dense)": None, "fp16 TFLOP/s (dense)": 65,
     "names": ("Tesla T4",),
     "source": "NVIDIA Turing GPU Architecture whitepaper; T4 datasheet"},
    {"gpu": "A100 40GB (Ampere, sm80)", "SMs": 108, "shared KB/SM (max)": 164, "L1+shared KB/SM": 192,
     "L2 MB": 40, "HBM GB": "40", "bandwidth TB/s": 1.6, "memory": "HBM2",
     "bf16 TFLOP/s (dense)": 312, "fp16 TFLOP/s (dense)": 312,
     "names": ("A100-SXM4-40GB", "A100-PCIE-40GB"),
     "source": "NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020); A100 datasheet"},
    {"gpu": "A100 80GB SXM (Ampere, sm80)", "SMs": 108, "shared KB/SM (max)": 164, "L1+shared KB/SM": 192,
     "L2 MB": 40, "HBM GB": "80", "bandwidth TB/s": 2.0, "memory": "HBM2e",
     "bf16 TFLOP/s (dense)": 312, "fp16 TFLOP/s (dense)": 312,
     "names": ("A100-SXM4-80GB",),
     "source": "NVIDIA A100 datasheet (80GB)"},
    {"gpu": "RTX 4090 (Ada, sm89)", "SMs": 128, "shared KB/SM (max)": 100, "L1+shared KB/SM": 128,
     "L2 MB": 72, "HBM GB": "24 (GDDR6X)", "bandwidth TB/s": 1.0, "memory": "GDDR6X",
     "bf16 TFLOP/s (dense)": 165.2, "fp16 TFLOP/s (dense)": 165.2,
     "names": ("RTX 4090",),
     "source": "NVIDIA Ada GPU Architecture whitepaper (2022), appendix (fp32 accumulate)"},
    {"gpu": "H100 PCIe (Hopper, sm90)", "SMs": 114, "shared KB/SM (max)": 228, "L1+shared KB/SM": 256,
     "L2 MB": 50, "HBM GB": "80", "bandwidth TB/s": 2.0, "memory": "HBM2e",
     "bf16 TFLOP/s (dense)": 756, "fp16 TFLOP/s (dense)": 756,
     "names": ("H100 PCIe",),
     "source": "NVIDIA H100 Tensor Core GPU datasheet (2022; 1,513 TFLOP/s with sparsity)"},
    {"gpu": "H100 SXM5 (Hopper, sm90)", "SMs": 132, "shared KB/SM (max)": 228, "L1+shared KB/SM": 256,
     "L2 MB": 50, "HBM GB": "80", "bandwidth TB/s": 3.35, "memory": "HBM3",
     "bf16 TFLOP/s (dense)": 989.4, "fp16 TFLOP/s (dense)": 989.4,
     "names": ("H100 80GB HBM3", "H100 SXM"),
     "source": "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022); H100 datasheet "
               "(1,979 TFLOP/s with sparsity)"},
    {"gpu": "H200 SXM (Hopper, sm90)", "SMs": 132, "shared KB/SM (max)": 228, "L1+shared KB/SM": 256,
     "L2 MB": 50, "HBM GB": "141", "bandwidth TB/s": 4.8, "memory": "HBM3e",
     "bf16 TFLOP/s (dense)": 989.4, "fp16 TFLOP/s (dense)": 989.4,
     "names": ("H200",),
     "source": "NVIDIA H200 datasheet (2024; 1,979 TFLOP/s with sparsity)"},
]


def ridge_point(entry: dict[str, Any]) -> float | None:
    """Arithmetic intensity (FLOP per byte of HBM traffic) above which a bf16 kernel can be compute-bound.

    The roofline's corner: peak bf16 tensor FLOP/s divided by peak HBM bytes/s. Below it,
    a kernel moving that many bytes per FLOP cannot reach the peak rate whatever its code.
    ``None`` when the GPU has no bf16 tensor cores (or no peak is known).
    """
    peak, bandwidth = entry.get("bf16 TFLOP/s (dense)"), entry.get("bandwidth TB/s")
    if not peak or not bandwidth:
        return None
    return peak / bandwidth  # (1e12 FLOP/s) / (1e12 B/s)


def catalogue_entry(device_name: str) -> dict[str, Any] | None:
    """The :data:`COMMON_GPUS` row for a name as the driver reports it ("NVIDIA H100 80GB HBM3"), or ``None``.

    Only exact parts match: an "H100 NVL" is not an "H100 SXM5" (different clocks and
    memory), so it gets ``None`` rather than someone else's peak.
    """
    name = device_name.lower()
    if "nvl" in name:  # H100 NVL / H200 NVL: other clocks and memory than the SXM parts catalogued
        return None
    for entry in COMMON_GPUS:
        if any(n.lower() in name for n in entry["names"]):
            return entry
    return None


def common_gpus_frame():
    """:data:`COMMON_GPUS` as a pandas DataFrame indexed by GPU, with each GPU's bf16 ridge point computed."""
    import pandas as pd

    frame = pd.DataFrame(COMMON_GPUS).drop(columns=["names"]).set_index("gpu")
    ridge = [ridge_point(e) for e in COMMON_GPUS]
    frame.insert(frame.columns.get_loc("fp16 TFLOP/s (dense)") + 1, "ridge FLOP/byte (bf16)",
                 [None if r is None else round(r) for r in ridge])
    return frame


def this_gpu() -> dict[str, Any] | None:
    """The reader's GPU 0 as the driver reports it (``None`` without CUDA).

    The bandwidth is the *theoretical peak* computed from the reported bus width and
    memory clock (2 transfers per clock), not a measurement. The driver reports no peak
    FLOP/s; the catalogue's is used when the exact part is in it (:func:`catalogue_entry`).
    """
    import torch

    if not torch.cuda.is_available():
        return None
    p = torch.cuda.get_device_properties(0)
    bus = getattr(p, "memory_bus_width", None)
    clock_khz = getattr(p, "memory_clock_rate", None)
    smem = getattr(p, "shared_memory_per_multiprocessor", None)
    l2 = getattr(p, "L2_cache_size", None)
    known = catalogue_entry(p.name) or {}
    return {
        "gpu": f"{p.name} (sm{p.major}{p.minor}) — this machine",
        "SMs": p.multi_processor_count,
        "shared KB/SM (max)": round(smem / 1024) if smem else None,
        "L2 MB": round(l2 / 2**20, 1) if l2 else None,
        "HBM GB": f"{p.total_memory / 1e9:.0f}",
        "bandwidth TB/s": round(2 * bus / 8 * clock_khz * 1e3 / 1e12, 2) if bus and clock_khz else None,
        "bf16 TFLOP/s (dense)": known.get("bf16 TFLOP/s (dense)"),
        "source": "torch.cuda.get_device_properties (driver-reported)"
                  + (f"; peak from the catalogue row {known['gpu']}" if known else "; peak FLOP/s not known"),
    }


def sdpa_priority_order() -> list[str] | None:
    """The order in which *this* torch's SDPA dispatcher tries its fused kernels, read from torch itself.

    ``torch._C._get_sdp_priority_order()`` (private, present since torch 2.5) holds the
    global order; a kernel earlier in it is taken when its constraints hold. The order
    has changed between releases, and a kernel that is disabled or cannot take the inputs
    is passed over, so it is read here rather than typed into a page. ``None`` when this
    torch does not expose it.
    """
    import torch

    get = getattr(torch._C, "_get_sdp_priority_order", None)
    if get is None:
        return None
    from torch.nn.attention import SDPBackend

    names = {int(v): k.lower() for k, v in SDPBackend.__members__.items()}
    return [names.get(int(b), str(b)) for b in get()]
