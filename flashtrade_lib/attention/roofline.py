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
:func:`measure_points` sets predictions beside measured times, and :func:`describe` writes
chapter 2's reading of that table from its numbers — memory- or compute-bound, which cost
weighs more, how close the model comes — so the words hold on any machine.

Times are CPU seconds of this process (user + system), not wall clock: on a shared
machine a descheduled process loses wall time that says nothing about the algorithm.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flashtrade_lib.attention.iomodel import (
    IOCount,
    attention_flops,
    check_positive_int,
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
    "measure_points",
    "describe",
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
    n = check_positive_int(n_bytes // 4, "n_bytes // 4")
    a, b, c = (np.ones(n, dtype=np.float32) for _ in range(3))  # touched: no first-touch cost in the timing
    seconds = cpu_seconds(lambda: np.add(b, c, out=a), repeat=repeat)
    return 3 * n * 4 / seconds


def measure_matmul(n: int = 512, *, repeat: int = 7) -> float:
    """Float32 matrix-multiply throughput in FLOP/s (``2n³`` per ``n × n`` product), BLAS on one thread."""
    n = check_positive_int(n, "n")
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    with blas_threads(1):
        seconds = cpu_seconds(lambda: a @ a, repeat=repeat)
    return 2 * n**3 / seconds


def measure_exp(n: int = 2**16, *, repeat: int = 7) -> float:
    """Float32 ``exp`` throughput in elements/s, on an array that stays in cache (256 KiB)."""
    x = np.random.default_rng(0).standard_normal(check_positive_int(n, "n")).astype(np.float32)
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
    """Predicted seconds, split into the time phases spend bound by memory and bound by arithmetic.

    ``traffic_s``, ``matmul_s`` and ``exp_s`` are the three ceilings' times summed over *all*
    phases, whichever bounds each one: what a sentence about "what weighs more" compares.
    """

    memory_s: float
    compute_s: float
    traffic_s: float = 0.0
    matmul_s: float = 0.0
    exp_s: float = 0.0

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
        memory_s = compute_s = traffic_s = matmul_s = exp_s = 0.0
        for ph in phases:
            mem = ph.elements * itemsize / self.bandwidth
            products, exps = ph.flops / self.matmul_flops, ph.exps / self.exp_rate
            if mem >= products + exps:
                memory_s += mem
            else:
                compute_s += products + exps
            traffic_s, matmul_s, exp_s = traffic_s + mem, matmul_s + products, exp_s + exps
        return Prediction(memory_s, compute_s, traffic_s, matmul_s, exp_s)


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
    n, d = check_positive_int(n, "n"), check_positive_int(d, "d")
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


def measure_points(
    machine: Roofline,
    naive: list[tuple[int, int]],
    tiled: list[tuple[int, int, int]],
    *,
    repeat: int = 3,
    seed: int = 0,
) -> list[dict]:
    """Time naive ``(N, d)`` and tiled ``(N, d, block)`` attention and set each beside its prediction.

    One row per point: the model's bound and its three ceiling times, the predicted and
    measured CPU seconds, ``ratio`` = predicted / measured, ``within_2x`` and the tile count.
    One BLAS thread (the ceilings are single-threaded) and pre-faulted memory for naive
    (chapter 1's first-touch cost is not part of the model).
    """
    from flashtrade_lib.attention.reference import naive_attention, tiled_attention
    from flashtrade_lib.measure.bench import reuse_freed_memory

    rng = np.random.default_rng(seed)
    points = [("naive", n, d, None) for n, d in naive] + [("tiled", n, d, b) for n, d, b in tiled]
    rows = []
    with blas_threads(1), reuse_freed_memory():
        for kind, n, d, b in points:
            q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(3))
            if kind == "naive":
                def run(q=q, k=k, v=v):
                    return naive_attention(q, k, v)
            else:
                def run(q=q, k=k, v=v, b=b):
                    return tiled_attention(q, k, v, block_q=b, block_k=b)
            measured_s = cpu_seconds(run, repeat=repeat)
            pred = machine.predict(attention_phases(kind, n, d, block=b))
            ratio = pred.seconds / measured_s
            rows.append({"kind": kind, "N": n, "d": d, "block": b, "bound": pred.bound,
                         "traffic_s": pred.traffic_s, "matmul_s": pred.matmul_s, "exp_s": pred.exp_s,
                         "predicted_s": pred.seconds, "measured_s": measured_s, "ratio": ratio,
                         "within_2x": bool(0.5 <= ratio <= 2.0),
                         "tiles": math.ceil(n / b) ** 2 if b else None})
    return rows


def _times(x: float) -> str:
    """A ratio ≥ 1 as the page prints it: ``"3.1×"``."""
    return f"{x:.1f}×"


def _where(r: dict) -> str:
    return f"N = {r['N']}, d = {r['d']}" + (f", block {r['block']}" if r["kind"] == "tiled" else "")


def _weigh(r: dict) -> str:
    """Which of traffic and arithmetic the model charges more for one point, in words."""
    arith = r["matmul_s"] + r["exp_s"]
    big = "the `exp`" if r["exp_s"] > r["matmul_s"] else "the matrix products"
    share = max(r["exp_s"], r["matmul_s"]) / arith
    what = f"its arithmetic ({r['matmul_s'] + r['exp_s']:.3f} s, {share:.0%} of it {big})"
    ratio = arith / r["traffic_s"]
    if 0.8 <= ratio <= 1.25:
        return f"its traffic ({r['traffic_s']:.3f} s) and {what} weigh about the same"
    if ratio > 1:
        return f"{what} is {_times(ratio)} its traffic ({r['traffic_s']:.3f} s)"
    return f"its traffic ({r['traffic_s']:.3f} s) is {_times(1 / ratio)} {what}"


def _fit(rows: list[dict]) -> str:
    """How well predictions meet measurements over ``rows``, in words."""
    inside = [r for r in rows if r["within_2x"]]
    lo, hi = min(r["ratio"] for r in rows), max(r["ratio"] for r in rows)
    span = f"predicted/measured {lo:.2f}" + (f" to {hi:.2f}" if f"{hi:.2f}" != f"{lo:.2f}" else "")
    if len(inside) == len(rows):
        return f"the prediction is within 2× of the measurement at every one of them ({span})"
    if not inside:
        return f"the prediction misses the measurement by more than 2× at every one of them ({span})"
    return f"the prediction is within 2× of the measurement at {len(inside)} of {len(rows)} ({span})"


def describe(rows: list[dict] | object) -> str:
    """Chapter 2's reading of its roofline table, generated from the table.

    ``rows`` is :func:`measure_points`' output (or a DataFrame of it). Every interpretive
    word — memory-/compute-bound, which cost weighs more, how close the model comes, what
    the block size does — is chosen here from the numbers, so the paragraph stays true on
    a machine whose ceilings classify the points differently.
    """
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    rows = [dict(r) for r in rows]
    for r in rows:
        if r["kind"] == "tiled":
            r["block"], r["tiles"] = int(r["block"]), int(r["tiles"])
    naive = [r for r in rows if r["kind"] == "naive"]
    tiled = sorted((r for r in rows if r["kind"] == "tiled"), key=lambda r: r["block"])
    if not naive or not tiled:
        raise ValueError("describe() needs naive and tiled points (kind 'naive' and 'tiled')")
    out = []

    mem = [r for r in naive if r["bound"] == "memory"]
    comp = [r for r in naive if r["bound"] == "compute"]
    if not comp:
        verdict = f"the model calls all {len(naive)} naive points memory-bound"
    elif not mem:
        verdict = f"the model calls all {len(naive)} naive points compute-bound"
    else:
        verdict = (f"the model calls {len(mem)} of the {len(naive)} naive points memory-bound "
                   f"({'; '.join(_where(r) for r in mem)}) and the others compute-bound")
    heavy = []
    for d in sorted({r["d"] for r in naive}):
        r = max((r for r in naive if r["d"] == d), key=lambda r: r["N"])
        heavy.append(f"at {_where(r)} {_weigh(r)}")
    out.append(
        "How to read it. NumPy's naive attention makes a dozen passes over $N \\times N$ arrays. "
        f"On this machine {verdict}: {'; '.join(heavy)}. For the naive points {_fit(naive)}."
    )

    bounds = {r["bound"] for r in tiled}
    tbound = (f"all {len(tiled)} tiled points {bounds.pop()}-bound" if len(bounds) == 1
              else "the tiled points partly memory-, partly compute-bound")
    first, last = tiled[0], tiled[-1]
    traffic_fall = first["traffic_s"] / last["traffic_s"]
    time_fall = first["measured_s"] / last["measured_s"]
    same = [r for r in naive if (r["N"], r["d"]) == (last["N"], last["d"])]
    less = (f" (at block {last['block']}, {_times(same[0]['traffic_s'] / last['traffic_s'])} less modelled traffic "
            f"than naive at the same N and d)" if same else "")
    text = (f"The tiled version keeps its tiles in cache and moves less{less}; the model calls {tbound}, "
            f"and {_fit(tiled)}. From block {first['block']} to block {last['block']} the modelled traffic "
            f"falls {_times(traffic_fall)} and the measured time "
            + (f"{_times(time_fall)}" if time_fall >= 1 else f"rises {_times(1 / time_fall)}") + ".")
    excess = [(r, r["measured_s"] - r["predicted_s"]) for r in tiled if r["measured_s"] > r["predicted_s"]]
    if len(excess) >= 2:
        per_tile = [e / r["tiles"] for r, e in excess]
        listed = ", ".join(f"{e * 1e3:.0f} ms at block {r['block']} ({p * 1e6:.0f} µs per tile)"
                           for (r, e), p in zip(excess, per_tile, strict=True))
        shrinks = all(a > b for (_, a), (_, b) in zip(excess, excess[1:], strict=False))
        if shrinks and max(per_tile) <= 2 * min(per_tile):
            why = ("It shrinks with the number of tiles at a roughly fixed cost per tile — the Python and NumPy "
                   "calls each tile makes, which no FLOP or byte count includes.")
        elif shrinks:
            why = ("It shrinks as the tiles grow fewer, but not in proportion (per tile it changes with the block), "
                   "so only part of it is a fixed cost per tile — the Python and NumPy calls each tile makes, which "
                   "no FLOP or byte count includes.")
        else:
            why = ("It does not shrink steadily as the tiles grow fewer, so this run cannot pin it on a cost per "
                   "tile; re-run on a quieter machine.")
        text += f" The measured time beyond the prediction: {listed}. {why}"
    out.append(text)
    return "\n\n".join(out)
