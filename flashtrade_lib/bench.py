"""Timing and peak-memory measurement shared by the notebooks and ``benchmarks/``.

Why a helper at all: on a shared 2-core machine absolute times drift by tens of
percent between runs, and the first touch of freshly allocated memory can cost
seconds per GiB. So every comparison the book makes is *interleaved* (round-robin
over the candidates, after a warm-up) and reported as medians measured side by
side in one run; memory is the peak *extra* resident memory a call needs, which is
what decides whether attention fits on a machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Timing",
    "time_calls",
    "peak_memory",
    "peak_memory_cuda",
    "memory_method",
    "blas_threads",
    "blas_thread_count",
    "fmt_bytes",
    "fmt_seconds",
    "write_record",
    "load_record",
    "provenance",
]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of one candidate: every repeat, and their median (what we report)."""

    median_s: float
    times_s: tuple[float, ...]

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    def __str__(self) -> str:
        return f"{fmt_seconds(self.median_s)} (median of {len(self.times_s)})"


def time_calls(
    fns: dict[str, Callable[[], object]], *, repeat: int = 5, warmup: int = 1
) -> dict[str, Timing]:
    """Time several zero-argument callables *interleaved*: each repeat runs every one once.

    Interleaving means a slow spell of the machine (another job, thermal throttling)
    hits every candidate alike, so the ratios stay meaningful even when the absolute
    times drift. ``warmup`` untimed rounds come first (page faults, caches, lazy init).
    """
    if not fns:
        raise ValueError("time_calls needs at least one callable in `fns`, got an empty dict")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for name, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"fns[{name!r}] is a {type(fn).__name__}, not a zero-argument callable")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {
        name: Timing(median_s=statistics.median(ts), times_s=tuple(ts)) for name, ts in times.items()
    }


def _proc_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in {_STATUS}")


def _proc_hwm_resettable() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        _proc_kib("VmHWM")
        _CLEAR_REFS.write_text("5")
    except (OSError, RuntimeError):
        return False
    return True


def memory_method() -> str:
    """Which method :func:`peak_memory` uses here: ``"proc"`` (Linux RSS) or ``"tracemalloc"``."""
    return "proc" if _proc_hwm_resettable() else "tracemalloc"


def _release_free_heap() -> None:
    """Hand freed-but-cached heap pages back to the OS (glibc ``malloc_trim``).

    Without this, memory freed by an earlier computation stays resident, a later one
    reuses it without raising the resident size, and its peak reads as ~0.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim, measurement still valid
        pass


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak *extra* memory, in bytes, that ``fn()`` needs above what the process held before.

    On Linux this is the resident-set high-water mark: reset ``VmHWM`` by writing
    ``5`` to ``/proc/self/clear_refs``, run ``fn``, and subtract the resident size
    before the call from ``VmHWM`` after it. It therefore counts *every* allocation
    that was touched — NumPy, PyTorch CPU tensors, BLAS work space — which is what
    decides whether a computation fits in RAM. Memory allocated but never touched
    is not counted (the OS has not handed it out yet). Freed heap memory is first
    handed back to the OS (glibc ``malloc_trim``) so that a call reusing it is not
    reported as free. Resolution is a few pages; other threads of this process
    count too.

    Elsewhere (macOS, or a kernel without ``clear_refs``) it falls back to
    :mod:`tracemalloc`, which sees only allocations reported to Python's tracer:
    NumPy arrays yes, PyTorch tensors and BLAS buffers **no** — use it for NumPy
    code only. :func:`memory_method` says which method is in use. For CUDA tensors
    use :func:`peak_memory_cuda`.
    """
    gc.collect()
    if _proc_hwm_resettable():
        _release_free_heap()  # also resets the high-water mark
        before = _proc_kib("VmRSS")
        _CLEAR_REFS.write_text("5")
        result = fn()
        peak = _proc_kib("VmHWM")
        del result
        return max(0, peak - before) * 1024

    import tracemalloc

    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if started_here:
            tracemalloc.stop()
    return max(0, peak - before)


def peak_memory_cuda(fn: Callable[[], object], device: object = None) -> int:
    """Peak extra CUDA memory, in bytes, allocated by PyTorch's caching allocator during ``fn()``.

    Counts tensors (not the allocator's cached-but-free blocks, nor the CUDA context),
    which is the number that says whether a sequence length fits on a GPU.
    """
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            "peak_memory_cuda needs a CUDA GPU and none is available; "
            "use peak_memory(fn) for CPU computations"
        )
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del result
    return max(0, peak - before)


_OPENBLAS_SYMBOLS = [  # (get, set) names: NumPy's bundled scipy-openblas, then plain OpenBLAS
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
]


def _loaded_openblas() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """(get, set) thread functions of every OpenBLAS this process has loaded (Linux)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return []
    paths = sorted({line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line.lower()})
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_SYMBOLS:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                found.append((getattr(lib, get_name), getattr(lib, set_name)))
                break
    return found


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[bool]:
    """Run the block with NumPy's OpenBLAS limited to ``n`` threads; yields whether it could.

    Why: on a machine shared with other jobs, OpenBLAS's spinning worker threads can
    make matrix products 5–10× slower at random, and code that makes many small
    BLAS calls (tiled attention) suffers most. One thread gives stable, fair
    comparisons. Yields ``False`` — and changes nothing — where NumPy does not use
    a loaded OpenBLAS (macOS Accelerate, MKL builds); say so next to the result.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of threads, got {n!r}")
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded before looking for it)

    libs = _loaded_openblas()
    previous = [get() for get, _ in libs]
    for _, set_threads in libs:
        set_threads(n)
    try:
        yield bool(libs)
    finally:
        for (_, set_threads), old in zip(libs, previous, strict=True):
            set_threads(old)


def blas_thread_count() -> int | None:
    """Threads NumPy's OpenBLAS uses now, or ``None`` when no OpenBLAS is loaded."""
    libs = _loaded_openblas()
    return int(libs[0][0]()) if libs else None


def fmt_bytes(n: float) -> str:
    """Human-readable binary size: ``fmt_bytes(805306368) == '768.0 MiB'``."""
    if n < 0:
        return "-" + fmt_bytes(-n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def fmt_seconds(s: float) -> str:
    """Human-readable duration with a sensible unit: ``'0.44 s'``, ``'3.1 ms'``, ``'12 µs'``."""
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


# ------------------------------------------------------------------ recorded results


def write_record(
    path: Path | str, record: dict[str, Any], *, environment: dict[str, Any] | None = None
) -> Path:
    """Write a benchmark's result as JSON, stamped with the machine that measured it.

    ``environment`` defaults to :func:`flashtrade_lib.env.environment_report` taken now;
    a number in the book is only as good as the statement of where it came from.
    """
    from flashtrade_lib.env import environment_report

    if "environment" in record:
        raise ValueError("pass the machine report as environment=, not inside the record")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {**record, "environment": environment or environment_report()}
    path.write_text(json.dumps(full, indent=2, default=_json_scalar) + "\n")
    print(f"wrote {path}")
    return path


def _json_scalar(value: Any) -> Any:
    """NumPy / torch scalars (``np.float64``, ``np.int64``, 0-d tensors) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a benchmark record holds plain JSON types, not {type(value).__name__}")


def load_record(path: Path | str) -> dict[str, Any] | None:
    """A recorded benchmark, or ``None`` when it has not been recorded (yet)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def provenance(record: dict[str, Any], packages: tuple[str, ...] = ("numpy",)) -> str:
    """One line saying when, on what machine and with which versions ``record`` was measured."""
    env = record["environment"]
    date = env["date_utc"].replace("T", " ").removesuffix("Z")
    gpu = env.get("gpu")
    machine = f"{env['processor']}, {env['cpu_count']} cores"
    if gpu:
        machine = f"{gpu['name']} (CUDA {gpu.get('cuda')}), {machine}"
    versions = ", ".join(f"{name} {env['versions'].get(name)}" for name in packages)
    return f"recorded {date} UTC on {machine}; {versions}"
