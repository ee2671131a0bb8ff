"""The roofline: phases turn the IO model's counts into seconds, and the ceilings measure something real."""

from __future__ import annotations

import pytest

from flashtrade_lib.attention import roofline
from flashtrade_lib.attention.iomodel import (
    attention_flops,
    standard_attention_io,
    tiled_attention_io,
)


def test_naive_phases_count_numpys_passes() -> None:
    n, d = 512, 16
    phases = roofline.naive_numpy_phases(n, d)
    assert sum(p.flops for p in phases) == attention_flops(n, d)
    assert sum(p.exps for p in phases) == n * n
    io = roofline.naive_numpy_io(n, d)
    assert io.total == sum(p.elements for p in phases)
    paper = standard_attention_io(n, d)  # the fused Algorithm 0: 2 reads and 2 writes of N²
    assert (io.reads - paper.reads, io.writes - paper.writes) == (5 * n * n, 3 * n * n)


def test_tiled_phase_is_the_io_models_traffic() -> None:
    (phase,) = roofline.attention_phases("tiled", 1024, 64, block=128)
    assert phase.elements == tiled_attention_io(1024, 64, block_q=128, block_k=128).total
    with pytest.raises(ValueError, match="block size"):
        roofline.attention_phases("tiled", 1024, 64)
    with pytest.raises(ValueError, match="kind"):
        roofline.attention_phases("fused", 1024, 64)


def test_predict_adds_phases_and_names_the_bound() -> None:
    machine = roofline.Roofline(bandwidth=1e10, matmul_flops=1e11, exp_rate=1e9)
    assert machine.ridge == 10
    streaming = roofline.Phase("copy", flops=0, exps=0, elements=2.5e9)  # 10 GB → 1 s
    product = roofline.Phase("matmul", flops=2e11, exps=0, elements=1e6)  # 2 s of arithmetic
    pred = machine.predict([streaming, product])
    assert pred.memory_s == pytest.approx(1.0) and pred.compute_s == pytest.approx(2.0)
    assert pred.seconds == pytest.approx(3.0) and pred.bound == "compute"
    assert machine.predict([streaming]).bound == "memory"


def test_measured_ceilings_are_plausible() -> None:
    bandwidth = roofline.measure_bandwidth(8 * 2**20, repeat=3)
    flops = roofline.measure_matmul(256, repeat=3)
    exps = roofline.measure_exp(repeat=3)
    assert 1e8 < bandwidth < 1e12, bandwidth  # 0.1 GB/s .. 1 TB/s
    assert 1e8 < flops < 1e13, flops
    assert 1e6 < exps < 1e11, exps
    with pytest.raises(ValueError, match="repeat"):
        roofline.cpu_seconds(lambda: None, repeat=0)
