"""Timing and peak-memory measurement shared by the notebooks and ``benchmarks/``.

Why a helper at all: on a shared 2-core machine absolute times drift by tens of
percent between runs, and the first touch of freshly allocated memory can cost
seconds per GiB. So every comparison the book makes is *interleaved* (round-robin
over the candidates, after a warm-up) and reported as medians measured side by
side in one run; memory is the peak *extra* resident memory a call needs, which is
what decides whether attention fits on a machine.

Recorded results check themselves: :func:`watch_machine` waits (bounded) for a quiet
machine and measures the others' load during a run, :func:`write_record` stores every
repeat time with a quality verdict (:mod:`flashtrade_lib.measure.record_quality`), and
:func:`load_record` finds a record by name in one located home (:func:`results_dir`).
:func:`cpu_profile` and :func:`reuse_freed_memory` separate first touch of fresh memory
from the arithmetic being timed.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flashtrade_lib.atomic import write_text_atomic

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
    "CpuProfile",
    "cpu_profile",
    "reuse_freed_memory",
    "other_busy_cores",
    "MachineWatch",
    "start_watch",
    "watch_machine",
    "results_dir",
    "record_path",
    "write_record",
    "load_record",
    "verdict",
    "trusted",
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


# ------------------------------------------------------------------ first touch


@dataclass(frozen=True)
class CpuProfile:
    """Where one call's time went: wall clock, CPU in user code, CPU in the kernel, and page faults."""

    wall_s: float
    user_s: float
    system_s: float
    page_faults: int


def cpu_profile(fn: Callable[[], object]) -> CpuProfile:
    """Run ``fn()`` once and say how much of its time the operating system took.

    A page fault is the kernel handing the process a page it touches for the first
    time (and zeroing it); on some virtual machines that costs seconds per GiB, so code
    that allocates big fresh arrays on every call (naive attention) spends a large,
    erratic share of its time in the kernel — ``system_s`` — rather than in arithmetic.
    User and system times are this process's (all threads).
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = (after.ru_minflt - before.ru_minflt) + (after.ru_majflt - before.ru_majflt)
    return CpuProfile(wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, faults)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters
_GLIBC_DEFAULT_MMAP_MAX = 65536


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Inside the block, memory a call frees is kept and handed to the next call, already faulted in.

    glibc serves big allocations with fresh ``mmap`` pages and returns them on ``free``,
    so every call of a function that allocates big arrays touches fresh memory again.
    Here large blocks come from the heap instead (``M_MMAP_MAX = 0``) and freed heap is
    not returned (``M_TRIM_THRESHOLD`` huge): after one warm-up call the same code runs on
    pre-faulted buffers. Same function, same arithmetic — only first touch is removed.
    Yields ``False`` (and changes nothing) where glibc's ``mallopt`` is not available.
    On exit it restores glibc's static defaults and trims the heap (the *dynamic* mmap
    threshold glibc adapts by itself is not restored).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        yield False
        return
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**62 - 1))
    try:
        yield ok
    finally:
        mallopt(_M_MMAP_MAX, _GLIBC_DEFAULT_MMAP_MAX)
        mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        _release_free_heap()


# ------------------------------------------------------------------ a quiet machine

QUIET_WAIT_ENV = "FLASHTRADE_QUIET_WAIT_S"
"""Environment variable with the default bound, in seconds, on waiting for a quiet machine."""


def _cpu_jiffies() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``; None elsewhere."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0.0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal  # steal: the hypervisor ran someone else
    return busy / hz, (busy + idle + iowait) / hz


def _own_cpu_s() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def other_busy_cores(seconds: float = 1.0) -> float | None:
    """Cores kept busy by *other* programs over the next ``seconds`` (``None`` without ``/proc/stat``)."""
    start, own0, t0 = _cpu_jiffies(), _own_cpu_s(), time.perf_counter()
    time.sleep(seconds)
    end, own1, t1 = _cpu_jiffies(), _own_cpu_s(), time.perf_counter()
    if start is None or end is None:
        return None
    return max(0.0, (end[0] - start[0]) - (own1 - own0)) / (t1 - t0)


@dataclass
class MachineWatch:
    """What :func:`start_watch` saw: the wait for a quiet machine; :meth:`finish` adds the load during the run."""

    threshold_cores: float
    max_wait_s: float
    waited_s: float = 0.0
    quiet_at_start: bool | None = None
    load_before: float = 0.0
    report: dict[str, Any] | None = None
    _start: tuple[tuple[float, float] | None, float, float] | None = None

    def finish(self) -> dict[str, Any]:
        """Stop watching: the load report :func:`write_record` stores and checks (also kept as ``.report``)."""
        if self._start is None:
            raise RuntimeError("finish() called twice, or on a MachineWatch not made by start_watch()")
        (start, own0, t1), self._start = self._start, None
        end, own1, t2 = _cpu_jiffies(), _own_cpu_s(), time.perf_counter()
        others = None
        if start is not None and end is not None and t2 > t1:
            others = max(0.0, (end[0] - start[0]) - (own1 - own0)) / (t2 - t1)
        self.report = {
            "cores": os.cpu_count() or 1,
            "threshold_cores": self.threshold_cores,
            "waited_s": round(self.waited_s, 1),
            "max_wait_s": self.max_wait_s,
            "quiet_at_start": self.quiet_at_start,
            "load_average_1min": {"before": self.load_before, "after": os.getloadavg()[0]},
            "other_busy_cores": others,
            "run_s": round(t2 - t1, 1),
        }
        return self.report


def start_watch(max_wait_s: float | None = None, *, threshold_cores: float | None = None,
                poll_s: float = 2.0) -> MachineWatch:
    """Wait (at most ``max_wait_s``) for a quiet machine, then start measuring the others' load.

    Quiet means other programs keep at most ``threshold_cores`` busy (default: half the
    cores) over a ``poll_s`` window. The wait is bounded — default 60 s, or the
    environment variable ``FLASHTRADE_QUIET_WAIT_S``; 0 checks once without waiting — and
    when it runs out the benchmark goes ahead and the record says so. Call
    ``watch.finish()`` when the measurement ends (or use :func:`watch_machine`).
    """
    if max_wait_s is None:
        max_wait_s = max_wait_seconds(os.environ.get(QUIET_WAIT_ENV, "60"), f"${QUIET_WAIT_ENV}")
    max_wait_s = max_wait_seconds(max_wait_s, "max_wait_s")
    if threshold_cores is not None and not (isinstance(threshold_cores, (int, float))
                                            and math.isfinite(threshold_cores)):
        raise ValueError(f"threshold_cores must be a finite number of cores, got {threshold_cores!r}")
    cores = os.cpu_count() or 1
    watch = MachineWatch(threshold_cores=cores / 2 if threshold_cores is None else threshold_cores,
                         max_wait_s=max_wait_s)
    t0 = time.perf_counter()
    while True:
        busy = other_busy_cores(min(poll_s, max(max_wait_s, 0.2)))
        watch.quiet_at_start = busy is None or busy <= watch.threshold_cores
        if watch.quiet_at_start or time.perf_counter() - t0 >= max_wait_s:
            break
    watch.waited_s = time.perf_counter() - t0
    if not watch.quiet_at_start:
        print(f"note: the machine did not become quiet within {max_wait_s:g} s "
              f"(others keep {busy:.2f} cores busy > {watch.threshold_cores:g}); measuring anyway, "
              "and the record will say so", flush=True)
    watch.load_before = os.getloadavg()[0]
    watch._start = (_cpu_jiffies(), _own_cpu_s(), time.perf_counter())
    return watch


def max_wait_seconds(value: Any, what: str = "--max-wait") -> float:
    """A wait bound in seconds: finite and ``>= 0`` (NaN would make every ``elapsed >= bound`` false: no bound)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def _max_wait_arg(text: str) -> float:
    import argparse

    try:
        return max_wait_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-wait ")) from None


def add_max_wait_option(parser: Any) -> None:
    """Every benchmark script's ``--max-wait``: the bound on waiting for a quiet machine (:func:`start_watch`)."""
    parser.add_argument("--max-wait", type=_max_wait_arg, default=None,
                        help=f"seconds to wait for a quiet machine first (default 60, or ${QUIET_WAIT_ENV})")


@contextlib.contextmanager
def watch_machine(max_wait_s: float | None = None, *, threshold_cores: float | None = None,
                  poll_s: float = 2.0) -> Iterator[MachineWatch]:
    """:func:`start_watch` before the block and ``finish()`` after it: ``watch.report`` then holds the load."""
    watch = start_watch(max_wait_s, threshold_cores=threshold_cores, poll_s=poll_s)
    try:
        yield watch
    finally:
        watch.finish()


# ------------------------------------------------------------------ recorded results

RESULTS_ENV = "FLASHTRADE_RESULTS"
"""Environment variable naming a directory of benchmark records (overrides every other home)."""


def results_dir() -> Path:
    """Where benchmark records live: one located home, installed or not.

    1. ``$FLASHTRADE_RESULTS``, when set;
    2. the checkout's ``benchmarks/results`` when ``flashtrade_lib`` is imported from a
       source tree (editable install, or the repository on ``sys.path``) — where the
       benchmark scripts write;
    3. the records shipped inside an installed wheel (package data ``flashtrade_lib.results``).
    """
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "benchmarks").is_dir():
        return checkout / "benchmarks" / "results"
    from importlib.resources import files

    return Path(str(files("flashtrade_lib") / "results"))


def record_path(name_or_path: Path | str) -> Path:
    """``"numpy_attention"`` → ``results_dir() / "numpy_attention.json"``; a path is returned as given."""
    if isinstance(name_or_path, Path) or "/" in name_or_path or name_or_path.endswith(".json"):
        return Path(name_or_path)
    if not name_or_path:
        raise ValueError("name a record, e.g. load_record('numpy_attention'), or give its path")
    return results_dir() / f"{name_or_path}.json"


def write_record(
    path: Path | str,
    record: dict[str, Any],
    *,
    environment: dict[str, Any] | None = None,
    series: list[Any] | None = None,
    load: dict[str, Any] | None = None,
    spread_bound: float | None = None,
) -> Path:
    """Write a benchmark's result as JSON, stamped with the machine and with its own quality verdict.

    ``path`` is a file path or a record name (see :func:`record_path`). ``series``
    (:class:`~flashtrade_lib.measure.record_quality.Series`: every repeat time, and the order of
    the cost in N) and ``load`` (``watch.report`` from :func:`watch_machine`) are stored
    and checked now (:func:`~flashtrade_lib.measure.record_quality.assess`); a flagged record's
    targets are never "met". ``environment`` defaults to
    :func:`flashtrade_lib.measure.env.environment_report` taken now: a number in the book is only
    as good as the statement of where it came from.
    """
    from flashtrade_lib.measure import record_quality
    from flashtrade_lib.measure.env import environment_report

    for key in ("environment", "quality", "series", "load"):
        if key in record:
            raise ValueError(f"pass {key!r} as the keyword argument {key}= (or let write_record compute it), "
                             "not inside the record")
    path = record_path(path)
    bound = record_quality.SPREAD_BOUND if spread_bound is None else spread_bound
    quality = record_quality.assess(series, load, spread_bound=bound)
    full = json.loads(json.dumps(record, default=_json_scalar))  # a copy: gating must not edit the caller's dict
    record_quality.gate_targets(full, quality)
    full.update({"quality": quality, "load": load, "series": [s.as_json() for s in series or ()],
                 "environment": environment or environment_report()})
    write_text_atomic(path, json.dumps(full, indent=2, default=_json_scalar) + "\n")  # a kill leaves the old one
    print(f"wrote {path}\n{record_quality.verdict_sentence(quality)}")
    return path


def _json_scalar(value: Any) -> Any:
    """NumPy / torch scalars (``np.float64``, ``np.int64``, 0-d tensors) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a benchmark record holds plain JSON types, not {type(value).__name__}")


def load_record(name_or_path: Path | str) -> dict[str, Any] | None:
    """A recorded benchmark by name (``load_record("numpy_attention")``) or path; ``None`` if not recorded.

    The record's ``"quality"`` verdict comes with it — ``None`` for records written before
    records checked themselves — and :func:`verdict` turns it into the sentence a chapter
    prints next to the number.
    """
    path = record_path(name_or_path)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    record.setdefault("quality", None)
    return record


def verdict(record: dict[str, Any]) -> str:
    """The record's quality verdict as one plain sentence (see :mod:`flashtrade_lib.measure.record_quality`)."""
    from flashtrade_lib.measure.record_quality import verdict_sentence

    return verdict_sentence(record.get("quality"))


def trusted(record: dict[str, Any]) -> bool:
    """True only when the record checked itself and passed: the one case a chapter may call its timings evidence."""
    return (record.get("quality") or {}).get("verdict") == "ok"


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
