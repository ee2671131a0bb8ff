"""What machine is this? Versions, cores, memory and GPU, for 00_setup and benchmark provenance."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import sys
from typing import Any


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def total_memory_bytes() -> int | None:
    """Physical memory of this machine (Linux/macOS), or ``None`` when unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pick_device() -> str:
    """``"cuda"`` when a CUDA GPU is usable, else ``"cpu"`` — notebooks size their runs from this."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu_info() -> dict[str, Any] | None:
    """Name, compute capability, memory and SM count of GPU 0, or ``None`` without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "memory_GiB": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "cuda": torch.version.cuda,
    }


def environment_report() -> dict[str, Any]:
    """A JSON-able description of this machine: stamped into every recorded benchmark."""
    mem = total_memory_bytes()
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_GiB": round(mem / 2**30, 1) if mem else None,
        "executable": sys.executable,
        "versions": {
            name: package_version(name)
            for name in ("numpy", "pandas", "torch", "triton", "flash-attn", "plotly", "flashtrade-lib")
        },
        "gpu": gpu_info(),
    }
