"""A CPU roofline measured on the reader's machine, and the IO model's counts turned into seconds.

The roofline model says a computation takes at least ``max(bytes / bandwidth,
flops / throughput)``: whichever of memory traffic and arithmetic is the slower is the
bound. :func:`measure` takes the two ceilings on this machine — sustained memory
bandwidth from a STREAM-style *add* (``a = b + c`` over arrays far larger than the
caches: two reads and one write per element) and float32 matrix-multiply throughput —
both single-threaded, like NumPy's element-wise operations (and NumPy's BLAS when it
is pinned to one thread). :func:`attention_cost` takes FLOPs from
:func:`~flashtrade_lib.attention.iomodel.attention_flops` and bytes from the IO
model's element counts, and :meth:`Roofline.predict` turns them into seconds.

Times are CPU seconds of this process (user + system), not wall clock: on a shared
machine a descheduled process loses wall time that says nothing about the algorithm.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flashtrade_lib.attention.iomodel import (
    IOCount,
    _positive,
    attention_flops,
    standard_attention_io,
    tiled_attention_io,
)
from flashtrade_lib.measure.bench import blas_threads, cpu_profile

__all__ = [
    "Roofline",
    "Phase",
    "Prediction",
    "cpu_seconds",
    "measure_bandwidth",
    "measure_matmul",
    "measure_exp",
    "measure",
    "naive_numpy_phases",
    "naive_numpy_io",
    "tiled_phases",
    "attention_phases",
]


def cpu_seconds(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median CPU time (user + system) of ``fn()`` over ``repeat`` calls, after ``warmup`` untimed ones."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        fn()
    profiles = [cpu_profile(fn) for _ in range(repeat)]
    return statistics.median(p.user_s + p.system_s for p in profiles)


def measure_bandwidth(n_bytes: int = 64 * 2**20, *, repeat: int = 7) -> float:
    """Sustained memory bandwidth in bytes/s: STREAM's *add* kernel ``a = b + c`` on float32 arrays.

    Each array is ``n_bytes`` (default 64 MiB, larger than the last-level cache of most
    CPUs, so the traffic goes to main memory); STREAM's accounting: 3 arrays moved per call.
    """
    n = _positive(n_bytes // 4, "n_bytes // 4")
    a, b, c = (np.ones(n, dtype=np.float32) for _ in range(3))  # touched: no first-touch cost in the timing
    seconds = cpu_seconds(lambda: np.add(b, c, out=a), repeat=repeat)
    return 3 * n * 4 / seconds


def measure_matmul(n: int = 512, *, repeat: int = 7) -> float:
    """Float32 matrix-multiply throughput in FLOP/s (``2n³`` per ``n × n`` product), BLAS on one thread."""
    n = _positive(n, "n")
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    with blas_threads(1):
        seconds = cpu_seconds(lambda: a @ a, repeat=repeat)
    return 2 * n**3 / seconds


def measure_exp(n: int = 2**16, *, repeat: int = 7) -> float:
    """Float32 ``exp`` throughput in elements/s, on an array that stays in cache (256 KiB)."""
    x = np.random.default_rng(0).standard_normal(_positive(n, "n")).astype(np.float32)
    out = np.empty_like(x)
    calls = 16
    seconds = cpu_seconds(lambda: [np.exp(x, out=out) for _ in range(calls)], repeat=repeat)
    return calls * n / seconds


@dataclass(frozen=True)
class Phase:
    """One step of a computation: its matrix-product FLOPs, its ``exp`` evaluations, and the elements it moves."""

    name: str
    flops: float
    exps: float
    elements: float


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds, split into the time phases spend bound by memory and bound by arithmetic."""

    memory_s: float
    compute_s: float

    @property
    def seconds(self) -> float:
        return self.memory_s + self.compute_s

    @property
    def bound(self) -> str:
        """``"memory"`` when memory-bound phases hold most of the predicted time, else ``"compute"``."""
        return "memory" if self.memory_s >= self.compute_s else "compute"


@dataclass(frozen=True)
class Roofline:
    """This machine's ceilings, single-threaded: memory bandwidth, matmul FLOP/s, and ``exp`` rate."""

    bandwidth: float  # bytes / s
    matmul_flops: float  # FLOP / s
    exp_rate: float  # exp evaluations / s

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (matmul FLOP per byte) above which a matrix product is compute-bound."""
        return self.matmul_flops / self.bandwidth

    def predict(self, phases: list[Phase], itemsize: int = 4) -> Prediction:
        """Each phase takes ``max(bytes / bandwidth, flops / matmul_flops + exps / exp_rate)``; phases add up.

        NumPy runs one step after another, so phases do not overlap; within a phase the
        memory traffic and the arithmetic do (the roofline's ``max``).
        """
        memory_s = compute_s = 0.0
        for ph in phases:
            mem = ph.elements * itemsize / self.bandwidth
            arith = ph.flops / self.matmul_flops + ph.exps / self.exp_rate
            if mem >= arith:
                memory_s += mem
            else:
                compute_s += arith
        return Prediction(memory_s, compute_s)


def measure(*, repeat: int = 7) -> Roofline:
    """Measure the three ceilings on this machine (about a second)."""
    return Roofline(bandwidth=measure_bandwidth(repeat=repeat), matmul_flops=measure_matmul(repeat=repeat),
                    exp_rate=measure_exp(repeat=repeat))


def naive_numpy_phases(n: int, d: int) -> list[Phase]:
    """The passes :func:`~flashtrade_lib.attention.reference.naive_attention` makes, one head.

    The paper's standard attention (:func:`~flashtrade_lib.attention.iomodel.standard_attention_io`)
    fuses the softmax into one read of ``S`` and one write of ``P``. NumPy runs each
    element-wise step as its own pass over the ``N × N`` array — 7 reads and 5 writes of
    ``N²`` elements in all, plus the ``N × d`` inputs and output.
    """
    n, d = _positive(n, "n"), _positive(d, "d")
    n2, nd = n * n, n * d
    return [
        Phase("S = Q Kᵀ", 2 * n2 * d, 0, 2 * nd + n2),
        Phase("S *= scale", 0, 0, 2 * n2),
        Phase("row max", 0, 0, n2),
        Phase("S − m", 0, 0, 2 * n2),
        Phase("exp", 0, n2, 2 * n2),
        Phase("row sum", 0, 0, n2),
        Phase("P /= ℓ", 0, 0, 2 * n2),
        Phase("O = P V", 2 * n2 * d, 0, n2 + 2 * nd),
    ]


def tiled_phases(n: int, d: int, block: int) -> list[Phase]:
    """:func:`~flashtrade_lib.attention.reference.tiled_attention` as one phase: the IO model's traffic.

    Its element-wise work happens on tiles that stay in cache, so only the slow-memory
    traffic of :func:`~flashtrade_lib.attention.iomodel.tiled_attention_io` is charged to
    memory; the arithmetic is the two products and one ``exp`` per score.
    """
    io = tiled_attention_io(n, d, block_q=block, block_k=block)
    return [Phase("tiles", attention_flops(n, d), n * n, io.total)]


def naive_numpy_io(n: int, d: int) -> IOCount:
    """Elements :func:`naive_numpy_phases` moves — 7 reads and 5 writes of ``N²``, against the paper's 2 and 2."""
    paper = standard_attention_io(n, d)  # 2 reads and 2 writes of N², plus the N×d terms
    return IOCount(paper.reads + 5 * n * n, paper.writes + 3 * n * n)


def attention_phases(kind: str, n: int, d: int, *, block: int | None = None) -> list[Phase]:
    """Phases of one head's forward: ``kind`` is ``"naive"`` (NumPy's passes) or ``"tiled"`` (needs ``block``)."""
    if kind == "naive":
        return naive_numpy_phases(n, d)
    if kind == "tiled":
        if block is None:
            raise ValueError("tiled attention needs its block size: attention_phases('tiled', n, d, block=128)")
        return tiled_phases(n, d, block)
    raise ValueError(f"kind must be 'naive' or 'tiled', got {kind!r}")
