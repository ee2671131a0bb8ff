"""The IO model: formulas agree with instrumented runs, and the runs compute real attention."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashtrade_lib.attention.iomodel import (
    IOCount,
    SlowMemory,
    attention_flops,
    backward_blocks_for_memory,
    backward_fast_memory_needed,
    blocks_for_memory,
    fast_memory_needed,
    io_lower_bound,
    simulate_standard,
    simulate_tiled,
    simulate_tiled_backward,
    standard_attention_io,
    tiled_attention_io,
    tiled_backward_io,
    tiled_io_for_memory,
    tiled_io_upper_bound,
)
from flashtrade_lib.attention.reference import (
    naive_attention,
    tiled_attention,
    tiled_attention_backward,
)


def _qkv(nq: int, nk: int, d: int, dv: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((nq, d)), rng.standard_normal((nk, d)), rng.standard_normal((nk, dv))


@settings(max_examples=100, deadline=None)
@given(
    nq=st.integers(1, 40), nk=st.integers(1, 40), d=st.integers(1, 8), dv=st.integers(1, 8),
    block_q=st.integers(1, 50), block_k=st.integers(1, 50), causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_instrumented_tiled_run_matches_model_and_naive(
    nq: int, nk: int, d: int, dv: int, block_q: int, block_k: int, causal: bool, seed: int
) -> None:
    q, k, v = _qkv(nq, nk, d, dv, seed)
    run = simulate_tiled(q, k, v, block_q=block_q, block_k=block_k, causal=causal)
    model = tiled_attention_io(nq, d, n_k=nk, d_v=dv, block_q=block_q, block_k=block_k, causal=causal)
    assert run.io == model
    np.testing.assert_allclose(run.o, naive_attention(q, k, v, causal=causal), atol=1e-12)
    assert run.peak_fast_elements <= fast_memory_needed(block_q, block_k, d, dv)


@settings(max_examples=30, deadline=None)
@given(nq=st.integers(1, 30), nk=st.integers(1, 30), d=st.integers(1, 8), dv=st.integers(1, 8))
def test_instrumented_standard_run_matches_model_and_naive(nq: int, nk: int, d: int, dv: int) -> None:
    q, k, v = _qkv(nq, nk, d, dv, seed=nq * nk)
    o, io = simulate_standard(q, k, v)
    assert io == standard_attention_io(nq, d, n_k=nk, d_v=dv)
    np.testing.assert_allclose(o, naive_attention(q, k, v), atol=1e-12)


def test_standard_formula_by_hand() -> None:
    # N=4, d=2: reads Q,K (8+8) + S (16) + P (16) + V (8) = 56; writes S, P (32) + O (8) = 40.
    assert standard_attention_io(4, 2) == IOCount(56, 40)


def test_tiled_formula_by_hand() -> None:
    # N=8, d=2, block_q=4: Q read once (16), K and V read twice (2·2·16 = 64); O (16) + L (8).
    assert tiled_attention_io(8, 2, block_q=4, block_k=3) == IOCount(80, 24)
    # causal, block_q=block_k=4: row 1 reads K/V rows 0..3, row 2 reads 0..7 → 12 rows · 4.
    assert tiled_attention_io(8, 2, block_q=4, block_k=4, causal=True) == IOCount(16 + 48, 24)


def test_theorem_scaling() -> None:
    """Θ(N²) vs Θ(N²d²/M): doubling M roughly halves tiled traffic; standard ignores M."""
    n, d = 16384, 64
    traffic = []
    for m in (2**16, 2**17, 2**18):
        bq, bk = blocks_for_memory(m, d)
        assert fast_memory_needed(bq, bk, d) <= m
        traffic.append(tiled_attention_io(n, d, block_q=bq, block_k=bk).total)
    assert 1.8 < traffic[0] / traffic[1] < 2.3 and 1.8 < traffic[1] / traffic[2] < 2.3
    assert traffic[-1] < standard_attention_io(n, d).total / 5
    # Quadratic in N for both.
    assert standard_attention_io(2 * n, d).total / standard_attention_io(n, d).total == pytest.approx(4, rel=0.02)


def test_blocks_for_memory_fits_and_is_maximal() -> None:
    assert blocks_for_memory(100_000, 64) == (473, 64)  # ⌊(100000 − 64·128) / (64+64+64+2)⌋
    for m, d in [(100_000, 64), (1000, 64), (5000, 16), (2**17, 128)]:
        bq, bk = blocks_for_memory(m, d)
        assert bk == max(1, min(d, m // (4 * d)))
        assert fast_memory_needed(bq, bk, d) <= m < fast_memory_needed(bq + 1, bk, d)
    with pytest.raises(ValueError, match="cannot hold"):
        blocks_for_memory(100, 64)


def test_slow_memory_counts_loads_and_stores() -> None:
    h = SlowMemory(np.arange(12.0).reshape(3, 4))
    tile = h.load(slice(0, 2))
    tile[:] = 0  # a copy: fast memory is separate
    assert h.peek()[0, 0] == 0.0 and h.peek()[0, 1] == 1.0
    h.store(slice(2, 3), np.ones((1, 4)))
    assert h.io == IOCount(8, 4)


def test_errors_are_named() -> None:
    with pytest.raises(ValueError, match="block_q must be a positive integer"):
        tiled_attention_io(8, 2, block_q=0, block_k=2)
    with pytest.raises(ValueError, match="must be 2-D"):
        simulate_tiled(np.ones((1, 2, 2)), np.ones((2, 2)), np.ones((2, 2)), block_q=1, block_k=1)


def test_tiled_upper_bound_is_a_constant_times_the_lower_bound() -> None:
    """Theorem 2 vs Proposition 3 over d <= M <= Nd: tiled traffic / (N²d²/M) stays in a constant band."""
    n, d = 4096, 64
    ratios = []
    for p in range(8, 19):  # M = 2^8 .. 2^18 = N·d
        m = 2**p
        if m < 4 * d * 2:  # blocks_for_memory needs room for a couple of rows
            continue
        bq, bk = blocks_for_memory(m, d)
        ratios.append(tiled_attention_io(n, d, block_q=bq, block_k=bk).total / io_lower_bound(n, d, m))
    assert all(1 <= r < 20 for r in ratios), ratios
    assert io_lower_bound(n, d, n * d) == n * d


@pytest.mark.parametrize("m", [63, 4096 * 64 + 1])
def test_lower_bound_refuses_memory_outside_the_theorem(m: int) -> None:
    with pytest.raises(ValueError, match="d <= M <= N"):
        io_lower_bound(4096, 64, m)


def test_flop_counts_chapters_3_and_4_agree_on() -> None:
    n, d = 1024, 64
    assert attention_flops(n, d) == 4 * n * n * d
    assert attention_flops(n, d, pass_="backward_stored_p") == 8 * n * n * d
    assert attention_flops(n, d, pass_="backward") == 10 * n * n * d  # recomputing S costs 2N²d, not 4N²d
    assert attention_flops(n, d, pass_="backward") / attention_flops(n, d) == 2.5
    with pytest.raises(ValueError, match="pass_"):
        attention_flops(n, d, pass_="sideways")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(8, 96), d=st.integers(1, 8), extra=st.integers(0, 2000), seed=st.integers(0, 2**16))
def test_exact_formula_in_m_equals_the_instrumented_count(n: int, d: int, extra: int, seed: int) -> None:
    """Chapter 2's plotted curve: the formula at blocks_for_memory(M) is SlowMemory's count, exactly."""
    m = fast_memory_needed(1, 1, d) + extra
    q, k, v = _qkv(n, n, d, d, seed)
    bq, bk = blocks_for_memory(m, d)
    run = simulate_tiled(q, k, v, block_q=bq, block_k=bk)
    assert run.io == tiled_io_for_memory(n, d, m)
    assert run.peak_fast_elements <= m


@pytest.mark.parametrize(("n", "d"), [(2048, 64), (1000, 16), (300, 7)])
def test_closed_form_bound_is_above_the_exact_count_at_every_m(n: int, d: int) -> None:
    """The plotted bound lies on or above the exact (= instrumented) count for every integer M in range."""
    lo = fast_memory_needed(1, 1, d)
    ms = sorted(set(np.unique(np.geomspace(lo, n * d, 600).astype(int)).tolist()) | {lo, n * d})
    for m in ms:
        assert tiled_io_for_memory(n, d, m).total <= tiled_io_upper_bound(n, d, m), m
    # and is an order-N²d²/M curve: within a constant of it where M >> d²
    m = n * d
    assert tiled_io_upper_bound(n, d, m) < 20 * io_lower_bound(n, d, m)


def test_one_pass_over_k_and_v_needs_about_3nd_not_nd() -> None:
    """At M = Nd the query block is about N/3: K and V are read several times, not once."""
    n, d = 2048, 64
    bq, _ = blocks_for_memory(n * d, d)
    assert bq == 633 and -(-n // bq) == 4
    one_pass = min(m for m in range(n * d, 4 * n * d, 64) if blocks_for_memory(m, d)[0] >= n)
    assert 3 * n * d < one_pass < 3.1 * n * d


@settings(max_examples=60, deadline=None)
@given(
    nq=st.integers(1, 30), nk=st.integers(1, 30), d=st.integers(1, 6), dv=st.integers(1, 6),
    block_q=st.integers(1, 40), block_k=st.integers(1, 40), causal=st.booleans(), seed=st.integers(0, 2**16),
)
def test_instrumented_backward_matches_its_formula_and_the_library(
    nq: int, nk: int, d: int, dv: int, block_q: int, block_k: int, causal: bool, seed: int
) -> None:
    if causal:
        nk = nq  # causal rows all see key 0; a square problem keeps every row non-empty
    q, k, v = _qkv(nq, nk, d, dv, seed)
    o, lse = tiled_attention(q, k, v, block_q=block_q, block_k=block_k, causal=causal, return_lse=True)
    do = np.random.default_rng(seed + 1).standard_normal(o.shape)
    grads, io = simulate_tiled_backward(q, k, v, o, lse, do, block_q=block_q, block_k=block_k, causal=causal)
    assert io == tiled_backward_io(nq, d, n_k=nk, d_v=dv, block_q=block_q, block_k=block_k, causal=causal)
    ref = tiled_attention_backward(q, k, v, o, lse, do, block_q=block_q, block_k=block_k, causal=causal)
    for ours, lib in zip(grads, ref, strict=True):
        np.testing.assert_allclose(ours, lib, atol=1e-10)


def test_backward_blocks_fit_and_its_traffic_falls_as_one_over_m() -> None:
    n, d = 16384, 64
    traffic = []
    for m in (2**16, 2**17, 2**18):
        bq, bk = backward_blocks_for_memory(m, d)
        assert backward_fast_memory_needed(bq, bk, d) <= m < backward_fast_memory_needed(bq, bk + 1, d)
        traffic.append(tiled_backward_io(n, d, block_q=bq, block_k=bk).total)
    assert 1.8 < traffic[0] / traffic[1] < 2.5 and 1.8 < traffic[1] / traffic[2] < 2.5
    with pytest.raises(ValueError, match="cannot hold"):
        backward_blocks_for_memory(100, 64)


@pytest.mark.parametrize("n, d, bq, bk", [(256, 16, 64, 64), (300, 8, 32, 48), (77, 4, 16, 5)])
def test_backward_flops_count_the_tiles_the_schedule_visits(n: int, d: int, bq: int, bk: int) -> None:
    """Five products per visited tile: all tiles give attention_flops' backward, causal the schedule's tiles."""
    from flashtrade_lib.attention.iomodel import tiled_backward_flops
    from flashtrade_lib.attention.reference import tile_schedule

    assert tiled_backward_flops(n, d, block_q=bq, block_k=bk) == attention_flops(n, d, pass_="backward")
    visited = sum((q1 - q0) * (k1 - k0) for q0, q1, k0, k1 in tile_schedule(n, n, block_q=bq, block_k=bk, causal=True))
    assert tiled_backward_flops(n, d, block_q=bq, block_k=bk, causal=True) == 10 * visited * d
    assert tiled_backward_flops(n, d, block_q=bq, block_k=bk, d_v=2 * d) == 2 * n * n * (3 * d + 4 * d)
