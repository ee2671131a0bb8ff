"""What machine is this? Versions, cores, memory and GPU, for 00_setup and benchmark provenance."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import math
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class CpuBudget:
    """How many CPUs this process may use, and why: the host's count is only an upper limit."""

    host: int  # logical CPUs of the machine (os.cpu_count())
    affinity: int  # CPUs this process may be scheduled on (os.sched_getaffinity)
    quota: float | None  # CPUs' worth of time per period the cgroup allows (None: no limit)

    @property
    def usable(self) -> int:
        """The budget: the smallest of the three, a quota rounded up (1.5 CPUs keeps 2 busy part-time)."""
        limits = [self.host, self.affinity] + ([math.ceil(self.quota)] if self.quota else [])
        return max(1, min(limits))


def _cgroup_quota(root: Path, self_cgroup: Path) -> float | None:
    """The CPU quota of this process's cgroup, in CPUs: cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``."""
    groups: dict[str, str] = {}
    try:
        for line in self_cgroup.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                groups[name] = path.lstrip("/")
    except (OSError, ValueError):
        pass
    candidates = []
    if "" in groups:  # v2: one unified hierarchy
        candidates.append(("v2", root / groups[""] / "cpu.max"))
    candidates.append(("v2", root / "cpu.max"))
    for folder in ("cpu", "cpu,cpuacct"):  # v1: the cpu controller's own hierarchy
        if "cpu" in groups:
            candidates.append(("v1", root / folder / groups["cpu"]))
        candidates.append(("v1", root / folder))
    for kind, path in candidates:
        try:
            if kind == "v2":
                quota, period = path.read_text().split()[:2]
                return None if quota == "max" else int(quota) / int(period)
            quota = int((path / "cpu.cfs_quota_us").read_text())
            return None if quota < 0 else quota / int((path / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
    return None


def cpu_budget(*, cgroup_root: Path | str = "/sys/fs/cgroup", self_cgroup: Path | str = "/proc/self/cgroup") -> CpuBudget:
    """The CPUs this process may use: ``os.cpu_count()`` counts the host's, which a container,
    ``taskset`` or a batch scheduler may not give us. Affinity and the cgroup quota say what we get."""
    host = os.cpu_count() or 1
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else host
    return CpuBudget(host=host, affinity=affinity, quota=_cgroup_quota(Path(cgroup_root), Path(self_cgroup)))


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
