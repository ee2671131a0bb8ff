"""The cost of one training step: the N×N formula and the measured sweep."""

from __future__ import annotations

import math

import pytest

from flashtrade_lib.step_cost import measure_train_context, naive_step_bytes, train_step


def test_naive_step_bytes_is_the_documented_formula() -> None:
    # (n_layers + n_live) · B · H · N² · itemsize
    assert naive_step_bytes(1024, batch=2, n_heads=4, n_layers=2) == 5 * 2 * 4 * 1024**2 * 4
    assert naive_step_bytes(2048) / naive_step_bytes(1024) == 4.0  # quadratic in N
    assert naive_step_bytes(512, itemsize=2) * 2 == naive_step_bytes(512)


def test_train_step_learns_and_refuses_amp_on_cpu() -> None:
    step = train_step("naive", 16, batch=2, d_model=16, n_heads=2, n_layers=1)
    losses = [step() for _ in range(5)]
    assert all(math.isfinite(v) for v in losses)
    with pytest.raises(ValueError, match="amp=True needs device='cuda'"):
        train_step("sdpa", 16, amp=True)


def test_sweep_measures_small_contexts_and_skips_what_would_not_fit() -> None:
    rows = measure_train_context([16, 4096], ("naive", "sdpa"), batch=1, d_model=16, n_heads=2,
                                 n_layers=1, repeat=1, max_bytes=2**20)
    by = {(r["context"], r["backend"]): r for r in rows}
    assert by[(16, "naive")]["status"] == by[(16, "sdpa")]["status"] == "ok"
    assert by[(16, "naive")]["step_s"] > 0 and by[(16, "sdpa")]["peak_bytes"] >= 0
    skipped = by[(4096, "naive")]
    assert skipped["status"] == "skipped" and "predicted" in skipped["reason"]
    assert skipped["predicted_nxn_bytes"] == naive_step_bytes(4096, batch=1, n_heads=2, n_layers=1)
