"""flashtrade_lib.measure.bench: interleaved timing and peak extra memory measure what they claim."""

from __future__ import annotations

import time

import numpy as np
import pytest

from flashtrade_lib.measure import bench

MB = 10**6


def _touch(nbytes: int) -> int:
    a = np.ones(nbytes // 8)  # np.ones writes every page, so they become resident
    return int(a[-1])


def test_peak_memory_sees_a_touched_200_mb_array() -> None:
    peak = bench.peak_memory(lambda: _touch(200 * MB))
    assert peak >= 190 * MB, bench.fmt_bytes(peak)
    assert peak < 400 * MB, bench.fmt_bytes(peak)


def test_peak_memory_of_a_noop_is_small() -> None:
    assert bench.peak_memory(lambda: None) < 20 * MB


def test_peak_memory_counts_transient_not_just_result() -> None:
    """A 100 MB temporary freed before return still counts: the peak is what must fit."""

    def f() -> float:
        tmp = np.ones(100 * MB // 8)
        return float(tmp.sum())

    assert bench.peak_memory(f) >= 95 * MB


def test_peak_memory_counts_torch_cpu_tensors() -> None:
    torch = pytest.importorskip("torch")
    if bench.memory_method() != "proc":
        pytest.skip("tracemalloc fallback does not see torch allocations (documented)")
    peak = bench.peak_memory(lambda: float(torch.ones(100 * MB // 4).sum()))
    assert peak >= 95 * MB, bench.fmt_bytes(peak)


def test_tracemalloc_fallback_counts_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "_proc_hwm_resettable", lambda: False)
    assert bench.memory_method() == "tracemalloc"
    peak = bench.peak_memory(lambda: _touch(50 * MB))
    assert 50 * MB <= peak < 60 * MB


def test_time_calls_interleaves_and_takes_the_median() -> None:
    order: list[str] = []
    fns = {
        "a": lambda: order.append("a"),
        "b": lambda: order.append("b"),
    }
    result = bench.time_calls(fns, repeat=3, warmup=2)
    assert order == ["a", "b"] * 5  # 2 warm-up rounds + 3 timed rounds, round-robin
    assert set(result) == {"a", "b"}
    for timing in result.values():
        assert len(timing.times_s) == 3
        assert timing.median_s == sorted(timing.times_s)[1]


def test_time_calls_orders_slow_and_fast() -> None:
    result = bench.time_calls(
        {"slow": lambda: time.sleep(0.02), "fast": lambda: None}, repeat=3, warmup=0
    )
    assert result["slow"].median_s >= 0.019
    assert result["fast"].median_s < result["slow"].median_s


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fns": {}}, "at least one"), ({"fns": {"x": lambda: 0}, "repeat": 0}, "repeat")],
)
def test_time_calls_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bench.time_calls(**kwargs)


def test_time_calls_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        bench.time_calls({"x": 3})  # type: ignore[dict-item]


def test_timing_is_frozen() -> None:
    t = bench.Timing(median_s=1.0, times_s=(1.0,))
    with pytest.raises(AttributeError):
        t.median_s = 2.0  # type: ignore[misc]


def test_formatting() -> None:
    assert bench.fmt_bytes(512) == "512 B"
    assert bench.fmt_bytes(768 * 2**20) == "768.0 MiB"
    assert bench.fmt_bytes(1.5 * 2**30) == "1.5 GiB"
    assert bench.fmt_seconds(0.44) == "440.0 ms"
    assert bench.fmt_seconds(2.5) == "2.50 s"
    assert bench.fmt_seconds(12e-6) == "12 µs"


def test_peak_memory_cuda_without_gpu_says_so() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        peak = bench.peak_memory_cuda(lambda: torch.ones(2**20, device="cuda"))
        assert peak >= 4 * 2**20
    else:
        with pytest.raises(ValueError, match="CUDA"):
            bench.peak_memory_cuda(lambda: None)


def test_peak_memory_is_not_hidden_by_reused_heap() -> None:
    """Memory freed earlier and cached by malloc must not make a later call look free.

    Freeing a 4 MiB mmapped block makes glibc raise its mmap threshold, so the 1 MiB
    arrays after it come from the heap; the small array kept on top stops glibc from
    trimming the freed 200 MiB by itself. Without ``malloc_trim`` this reads ~0 B.
    """
    big = np.ones(2**19)
    del big
    junk = [np.ones(2**17) for _ in range(200)]  # 200 × 1 MiB on the heap
    keep = np.ones(2**15)
    del junk

    def hold_many_small() -> int:
        held = [np.ones(2**17) for _ in range(40)]  # 40 MiB alive at once
        return len(held)

    assert bench.peak_memory(hold_many_small) >= 38 * 2**20
    assert keep[0] == 1.0


def test_blas_threads_sets_and_restores_openblas_threads() -> None:
    before = bench.blas_thread_count()
    if before is None:
        pytest.skip("NumPy does not use a loaded OpenBLAS here (blas_threads yields False)")
    with bench.blas_threads(1) as limited:
        assert limited is True
        assert bench.blas_thread_count() == 1
        a = np.ones((64, 64))
        assert (a @ a == 64).all()
    assert bench.blas_thread_count() == before


def test_blas_threads_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="positive number of threads"), bench.blas_threads(0):
        pass


def test_environment_report_is_json_provenance() -> None:
    """Every recorded benchmark carries this: it must name the machine and be JSON-able."""
    import json

    from flashtrade_lib.measure.env import cpu_model, environment_report

    report = json.loads(json.dumps(environment_report()))
    assert report["date_utc"].endswith("Z") and report["cpu_count"] >= 1
    assert report["processor"] == cpu_model() and report["processor"].strip()
    assert report["versions"]["numpy"] == np.__version__
