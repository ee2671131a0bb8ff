"""The cost of one training step: the N×N formula and the measured sweep."""

from __future__ import annotations

import math

import pytest
import torch

from flashtrade_lib.model.step_cost import (
    measure_train_context,
    naive_step_bytes,
    random_batch_step,
    sweep_step_costs,
    train_step,
)
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig


def test_naive_step_bytes_is_the_documented_formula() -> None:
    # (n_layers + n_live) · B · H · N² · itemsize
    assert naive_step_bytes(1024, batch=2, n_heads=4, n_layers=2) == 5 * 2 * 4 * 1024**2 * 4
    assert naive_step_bytes(2048) / naive_step_bytes(1024) == 4.0  # quadratic in N
    assert naive_step_bytes(512, itemsize=2) * 2 == naive_step_bytes(512)


def test_train_step_learns_and_refuses_amp_on_cpu() -> None:
    step = random_batch_step("naive", 16, batch=2, d_model=16, n_heads=2, n_layers=1)
    losses = [step() for _ in range(5)]
    assert all(math.isfinite(v) for v in losses)
    with pytest.raises(ValueError, match="amp=True needs device='cuda'"):
        random_batch_step("sdpa", 16, amp=True)
    model = FlashAttentionTrader(ModelConfig(n_features=3, d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(ValueError, match="amp=True needs device='cuda'"):
        train_step(model, torch.randn(2, 4, 3), torch.zeros(2), amp=True)
    with pytest.raises(ValueError, match="unknown objective"):
        train_step(model, torch.randn(2, 4, 3), torch.zeros(2), "sharpe")


def test_sweep_measures_small_contexts_and_skips_what_would_not_fit() -> None:
    rows = measure_train_context([16, 4096], ("naive", "sdpa"), batch=1, d_model=16, n_heads=2,
                                 n_layers=1, repeat=1, max_bytes=2**20)
    by = {(r["context"], r["backend"]): r for r in rows}
    assert by[(16, "naive")]["status"] == by[(16, "sdpa")]["status"] == "ok"
    assert by[(16, "naive")]["step_s"] > 0 and by[(16, "sdpa")]["peak_bytes"] >= 0
    skipped = by[(4096, "naive")]
    assert skipped["status"] == "skipped" and "predicted" in skipped["reason"]
    assert skipped["predicted_nxn_bytes"] == naive_step_bytes(4096, batch=1, n_heads=2, n_layers=1)


def test_sweep_can_time_on_prefaulted_memory_and_says_which() -> None:
    """First touch is the machine's cost: a benchmark times steps without it, and the row says so."""
    from flashtrade_lib.measure.bench import reuse_freed_memory

    with reuse_freed_memory() as available:
        pass
    rows = measure_train_context([64], ("naive",), batch=1, d_model=16, n_heads=2, n_layers=1, repeat=2,
                                 prefaulted=True)
    assert rows[0]["status"] == "ok" and len(rows[0]["step_times_s"]) == 2
    assert rows[0]["timed_on"] == ("pre-faulted memory" if available else "fresh memory")
    fresh = measure_train_context([64], ("naive",), batch=1, d_model=16, n_heads=2, n_layers=1, repeat=1)
    assert fresh[0]["timed_on"] == "fresh memory"


def test_sweep_is_model_agnostic_and_records_what_it_refused() -> None:
    """The one sweep over any grid: N×N limits for score-materialising backends, other refusals by skip."""
    calls: list[tuple[str, int]] = []

    def make(backend: str, point) -> object:
        calls.append((backend, point["n"]))
        model = FlashAttentionTrader(ModelConfig(n_features=2, d_model=8, n_heads=1, n_layers=1, backend=backend))
        return train_step(model, torch.randn(1, point["n"], 2), torch.zeros(1))

    rows = sweep_step_costs(
        [{"n": 8}, {"n": 64}], ("naive", "sdpa", "sdpa:math"), make,
        nxn_bytes=lambda p: float(p["n"]) ** 2, nxn_limits=[(1000.0, "predicted OOM")],
        skip=lambda b, p: ("not run (time)", "too long") if b == "sdpa" and p["n"] > 10 else None, repeat=1,
    )
    by = {(r["n"], r["backend"]): r for r in rows}
    assert {k: r["status"] for k, r in by.items()} == {
        (8, "naive"): "ok", (8, "sdpa"): "ok", (8, "sdpa:math"): "ok",
        (64, "naive"): "predicted OOM", (64, "sdpa"): "not run (time)", (64, "sdpa:math"): "predicted OOM",
    }
    assert sorted(calls) == [("naive", 8), ("sdpa", 8), ("sdpa:math", 8)]  # refused steps are never built
    assert by[(8, "naive")]["predicted_nxn_bytes"] == 64.0 and "measured_over_predicted" in by[(8, "naive")]
    assert "predicted_nxn_bytes" not in by[(8, "sdpa")]  # sdpa does not materialise the scores
