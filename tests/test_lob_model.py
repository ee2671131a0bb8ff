"""The order-book model: shapes, causal features, lazy windows, and real out-of-sample skill on the simulator.

(The model lives beside the cross-asset model it specialises, its features beside the
order-book simulator, its windows are the one lazy-window dataset of chapter 5.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flashtrade_lib.data import WindowDataset
from flashtrade_lib.data.lob_sim import LOB_FEATURES, lob_features, simulate_lob
from flashtrade_lib.model.cross_asset import OrderBookTrader, n_tokens
from flashtrade_lib.model.step_cost import train_step
from flashtrade_lib.model.trader import ModelConfig
from flashtrade_lib.model.train import TrainConfig, predict, train
from flashtrade_lib.trading.metrics import forecast_skill


def _windows(sim, lookback: int) -> WindowDataset:
    feats = lob_features(sim.snapshots, sim.tick)
    t = np.arange(lookback - 1, len(feats))
    t = t[sim.next_move[t] != 0]
    return WindowDataset(feats, sim.next_move.astype(np.float32), lookback, horizon=1, times=t)


def test_features_are_causal_and_as_documented() -> None:
    sim = simulate_lob(300, n_levels=3, seed=2)
    f = lob_features(sim.snapshots, sim.tick)
    assert f.shape == (300, 3, len(LOB_FEATURES)) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, :, 0], np.log1p(sim.snapshots[:, :, 1]), rtol=1e-6)
    np.testing.assert_allclose(f[:, 0, 2], sim.imbalance(1), atol=1e-6)
    np.testing.assert_allclose(f[1:, 1, 3], np.diff(sim.mid) / sim.tick, atol=1e-4)
    # row t uses snapshots <= t only: changing the future leaves the past untouched
    later = sim.snapshots.copy()
    later[200:, :, 1] += 7
    np.testing.assert_array_equal(lob_features(later, sim.tick)[:200], f[:200])
    with pytest.raises(ValueError, match=r"\(T, n_levels, 4\)"):
        lob_features(sim.snapshots[:, :, :3], sim.tick)
    with pytest.raises(ValueError, match="tick"):
        lob_features(sim.snapshots, 0.0)


def test_windows_are_views_ending_at_the_decision_time() -> None:
    feats = np.arange(10 * 2 * 3, dtype=np.float32).reshape(10, 2, 3)
    ds = WindowDataset(feats, np.arange(10.0), lookback=4, horizon=1)
    assert len(ds) == 7
    x, y = ds[0]
    assert x.shape == (4, 2, 3) and float(y) == 3.0
    np.testing.assert_array_equal(x.numpy(), feats[0:4])
    assert x.data_ptr() == ds.x[0].data_ptr()  # a view, no copy
    strided = ds.strided_view()
    assert strided.shape == (7, 4, 2, 3) and strided.data_ptr() == ds.x.data_ptr()
    np.testing.assert_array_equal(strided[3].numpy(), feats[3:7])
    assert ds.nbytes_if_materialised() == 7 * 4 * 2 * 3 * 4
    with pytest.raises(ValueError, match="decision bars"):
        WindowDataset(feats, np.arange(10.0), 4, horizon=1, times=np.array([2]))
    with pytest.raises(ValueError, match="NaN"):
        WindowDataset(np.full((5, 2, 3), np.nan), np.zeros(5), 2, horizon=1)


def test_shapes_token_count_and_no_look_ahead() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(n_features=4, d_model=16, n_heads=2, n_layers=1, backend="naive")
    model = OrderBookTrader(cfg, 5).eval()
    x = torch.randn(3, 6, 5, 4)
    assert model.tokens(x).shape == (3, n_tokens(6, 5), 16) == (3, 36, 16)
    out = model(x)
    assert set(out) == {"regression", "direction", "allocation"}
    assert all(v.shape == (3, 1) for v in out.values())
    with torch.no_grad():  # the summary of snapshot t sees no later snapshot
        h = model.encode(x)
        y = x.clone()
        y[:, 4:] += 5.0
        torch.testing.assert_close(model.encode(y)[:, :4], h[:, :4], rtol=0, atol=1e-6)


def test_training_step_runs_and_updates_weights() -> None:
    torch.manual_seed(0)
    model = OrderBookTrader(ModelConfig(n_features=4, d_model=16, n_heads=2, n_layers=1, backend="sdpa"), 3)
    before = [p.detach().clone() for p in model.parameters()]
    step = train_step(model, torch.randn(2, 4, 3, 4), torch.tensor([1.0, -1.0]), "direction")
    assert math.isfinite(step())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="unknown objective"):
        train_step(model, torch.randn(2, 4, 3, 4), torch.zeros(2), "sharpe")


def test_hit_rate_ignores_no_opinion_and_no_move() -> None:
    skill = forecast_skill(np.array([1.0, -2.0, 0.0, 3.0]), np.array([1, 1, 1, 0]))
    assert (skill.hit_rate, skill.n_directional) == (0.5, 2)
    nothing = forecast_skill(np.zeros(3), np.ones(3))  # no opinion anywhere: nothing to score
    assert math.isnan(nothing.hit_rate) and nothing.n_directional == 0


def test_model_trained_on_the_simulator_beats_chance_out_of_sample() -> None:
    """Trained on one simulated book, scored on another seed: clearly better than a coin."""
    torch.set_num_threads(1)
    lookback = 4
    train_set = _windows(simulate_lob(6000, seed=10), lookback)
    test_sim = simulate_lob(4000, seed=11)
    test_set = _windows(test_sim, lookback)
    torch.manual_seed(0)
    model = OrderBookTrader(ModelConfig(n_features=4, d_model=16, n_heads=2, n_layers=1, backend="sdpa"), 5)
    cfg = TrainConfig(epochs=5, batch_size=64, lr=2e-3, objective="direction", patience=None,
                      progress=False, device="cpu")
    losses = train(model, train_set, cfg).step_losses  # the book's one loop trains this model too
    assert np.mean(losses[-50:]) < np.mean(losses[:50])
    with torch.no_grad():
        prob_up = predict(model, test_set, batch_size=512, device="cpu")["direction"][:, 0]
    skill = forecast_skill(prob_up - 0.5, test_sim.next_move[test_set.times])
    acc, n = skill.hit_rate, skill.n_directional
    se = math.sqrt(0.25 / n)
    assert acc > 0.5 + 4 * se, f"accuracy {acc:.3f} on {n} windows is not clearly above chance"
    # and it cannot exceed what is there: the simulator's documented signal is ~0.67-0.68
    assert acc < 0.75
