"""The roofline: phases turn the IO model's counts into seconds, and the ceilings measure something real."""

from __future__ import annotations

import json
from pathlib import Path

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


# --- Chapter 2's reading of the table is generated: it follows the numbers on any machine ---

_RECORDED = json.loads((Path(__file__).parent / "data" / "roofline_2core_vm.json").read_text())


def _repredicted(machine: roofline.Roofline) -> list[dict]:
    """The recorded table's measured times beside another machine's predictions (same phases)."""
    rows = []
    for r in _RECORDED["rows"]:
        pred = machine.predict(roofline.attention_phases(r["kind"], r["N"], r["d"], block=r["block"]))
        ratio = pred.seconds / r["measured_s"]
        rows.append({**r, "bound": pred.bound, "traffic_s": pred.traffic_s, "matmul_s": pred.matmul_s,
                     "exp_s": pred.exp_s, "predicted_s": pred.seconds, "ratio": ratio,
                     "within_2x": bool(0.5 <= ratio <= 2)})
    return rows


def _naive_paragraph(text: str) -> str:
    return text.split("\n\n")[0]


def test_describe_on_the_recorded_vm_says_what_its_table_says() -> None:
    rows = _RECORDED["rows"]
    text = roofline.describe(rows)
    naive = [r for r in rows if r["kind"] == "naive"]
    assert {r["bound"] for r in naive} == {"compute"}  # what this recording measured
    first = _naive_paragraph(text)
    assert f"calls all {len(naive)} naive points compute-bound" in first and "memory-bound" not in first
    inside = sum(r["within_2x"] for r in naive)
    assert ("at every one of them" in first) == (inside == len(naive))
    tiled = [r for r in rows if r["kind"] == "tiled"]
    assert f"within 2× of the measurement at {sum(r['within_2x'] for r in tiled)} of {len(tiled)}" in text


def test_describe_names_the_other_bound_where_memory_is_slow() -> None:
    """A machine with an eighth of this VM's bandwidth: the naive passes become memory-bound."""
    c = _RECORDED["ceilings"]
    slow_memory = roofline.Roofline(bandwidth=c["bandwidth"] / 8, matmul_flops=c["matmul_flops"], exp_rate=c["exp_rate"])
    rows = _repredicted(slow_memory)
    naive = [r for r in rows if r["kind"] == "naive"]
    assert {r["bound"] for r in naive} == {"memory"}  # the classification differs from the recording's
    first = _naive_paragraph(roofline.describe(rows))
    assert f"calls all {len(naive)} naive points memory-bound" in first and "compute-bound" not in first
    assert "its traffic (" in first and "× its arithmetic" in first  # traffic is the larger cost, in words


def test_describe_splits_a_mixed_classification_and_refuses_a_half_table() -> None:
    """Half this VM's bandwidth: d = 16 becomes memory-bound, d = 64 stays compute-bound."""
    c = _RECORDED["ceilings"]
    rows = _repredicted(roofline.Roofline(bandwidth=c["bandwidth"] / 2, matmul_flops=c["matmul_flops"],
                                          exp_rate=c["exp_rate"]))
    naive = [r for r in rows if r["kind"] == "naive"]
    assert {r["d"] for r in naive if r["bound"] == "memory"} == {16}
    assert {r["d"] for r in naive if r["bound"] == "compute"} == {64}
    first = _naive_paragraph(roofline.describe(rows))
    assert "calls 2 of the 4 naive points memory-bound (N = 4096, d = 16; N = 8192, d = 16)" in first
    with pytest.raises(ValueError, match="naive and tiled"):
        roofline.describe(naive)


def test_measure_points_gives_describe_its_table() -> None:
    """Chapter 2's table at a tiny size: one row per point, predictions from the phases, words from the rows."""
    machine = roofline.Roofline(bandwidth=1e10, matmul_flops=5e10, exp_rate=5e8)
    rows = roofline.measure_points(machine, [(128, 16)], [(128, 16, 32), (128, 16, 64)], repeat=1)
    assert [(r["kind"], r["block"]) for r in rows] == [("naive", None), ("tiled", 32), ("tiled", 64)]
    for r in rows:
        pred = machine.predict(roofline.attention_phases(r["kind"], r["N"], r["d"], block=r["block"]))
        assert r["predicted_s"] == pytest.approx(pred.seconds) and r["bound"] == pred.bound
        assert r["measured_s"] > 0 and r["within_2x"] == (0.5 <= r["ratio"] <= 2)
    assert rows[1]["tiles"] == 16 and rows[2]["tiles"] == 4
    assert "naive point" in roofline.describe(rows)
