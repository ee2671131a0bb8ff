"""Training loop: it learns, it is deterministic, it stops early; checkpoints are safe and strict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import flashtrade_lib.model.train as train_mod
from flashtrade_lib.model.checkpoints import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
from flashtrade_lib.model.train import (
    TrainConfig,
    compute_loss,
    lr_at,
    predict,
    train,
)

N, F = 12, 2


def lag_task(n: int, seed: int) -> TensorDataset:
    """Target = 1% × (feature 0 of the last bar + feature 1 of the bar 3 steps earlier).

    Learnable only by attending to a specific *earlier* bar: the model has to use
    attention and relative positions, not just the last input.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N, F, generator=g)
    return TensorDataset(x, 0.01 * (x[:, -1, 0] + x[:, -4, 1]))


def small_model(seed: int = 0, **overrides) -> FlashAttentionTrader:
    torch.manual_seed(seed)
    cfg = {"n_features": F, "d_model": 32, "n_heads": 4, "n_layers": 1, **overrides}
    return FlashAttentionTrader(ModelConfig(**cfg))


QUICK = {"batch_size": 32, "progress": False, "patience": None}


def test_training_drives_the_loss_of_a_learnable_task_far_below_its_start():
    train_set, val_set = lag_task(512, seed=0), lag_task(128, seed=1)
    model = small_model()
    result = train(model, {"train": train_set, "val": val_set}, TrainConfig(epochs=10, lr=1e-2, **QUICK))
    first, last = result.step_losses[0], result.history[-1]["val_loss"]
    # normalised MSE: ~1 means "no better than the mean"; the task is noise-free
    assert first > 0.5
    assert last < 0.1 * first, f"validation loss only went from {first:.3f} to {last:.3f}"
    pred = predict(model, val_set, batch_size=64)
    ic = np.corrcoef(pred["regression"].ravel(), pred["target"].ravel())[0, 1]
    assert ic > 0.9, f"held-out correlation {ic:.3f}"
    assert result.steps == 10 * (512 // 32)
    assert model.target_scale.item() == pytest.approx(float(train_set.tensors[1].double().std(correction=0)), rel=1e-6)


def test_training_is_deterministic_on_cpu_for_a_seed():
    runs = []
    for _ in range(2):
        model = small_model(seed=3, dropout=0.1)
        res = train(model, lag_task(128, seed=0), TrainConfig(epochs=2, seed=7, **QUICK))
        runs.append((res.step_losses, {k: v.clone() for k, v in model.state_dict().items()}))
    assert runs[0][0] == runs[1][0]
    for k in runs[0][1]:
        assert torch.equal(runs[0][1][k], runs[1][1][k]), k
    other = small_model(seed=3, dropout=0.1)
    res = train(other, lag_task(128, seed=0), TrainConfig(epochs=2, seed=8, **QUICK))
    assert res.step_losses != runs[0][0], "a different seed should shuffle differently"


class DictDataset(Dataset):
    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.base[i]
        return {"x": x, "y": y}


@pytest.mark.parametrize("objective", ["direction", "allocation", "multi"])
def test_every_objective_trains_and_dict_items_are_accepted(objective):
    base = lag_task(96, seed=0)
    data = DictDataset(base)
    model = small_model()
    x, y = base.tensors
    std = float(y.double().std(correction=0))
    model.target_scale.fill_(std)
    with torch.no_grad():
        untrained = compute_loss(model(x), y, objective, std).item()
    res = train(model, (data, data), TrainConfig(epochs=4, lr=1e-2, objective=objective, **QUICK))
    assert len(res.history) == 4 and all(math.isfinite(r["val_loss"]) for r in res.history)
    assert res.best_val_loss < untrained - 0.05, (untrained, res.history)


def test_compute_loss_values():
    out = {
        "regression": torch.tensor([[0.0], [2.0]]),
        "direction": torch.tensor([[0.0], [0.0]]),
        "allocation": torch.tensor([[1.0], [-0.5]]),
    }
    y = torch.tensor([1.0, -1.0])
    assert compute_loss(out, y, "regression", target_std=2.0).item() == pytest.approx((1 + 9) / 2 / 4)
    assert compute_loss(out, y, "direction").item() == pytest.approx(math.log(2))
    assert compute_loss(out, y, "allocation").item() == pytest.approx(-(1.0 + 0.5) / 2)
    with pytest.raises(ValueError, match="unknown objective"):
        compute_loss(out, y, "sharpe")


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 100, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lr_at(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_early_stopping_restores_the_best_epoch(monkeypatch, tmp_path):
    val_losses = iter([1.0, 0.5, 0.6, 0.7, 0.4])
    monkeypatch.setattr(train_mod, "_evaluate", lambda *a, **k: next(val_losses))
    model = small_model()
    cfg = TrainConfig(epochs=5, batch_size=32, progress=False, patience=2, checkpoint_dir=str(tmp_path))
    res = train(model, (lag_task(64, 0), lag_task(32, 1)), cfg, metadata={"features": ["a", "b"]})
    assert res.stopped_early and len(res.history) == 4
    assert res.best_epoch == 2 and res.best_val_loss == 0.5
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.metadata["best_epoch"] == 2 and ckpt.metadata["features"] == ["a", "b"]
    assert ckpt.metadata["train_config"]["patience"] == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt.model.state_dict()[k]), f"{k} is not the best epoch's weights"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"objective": "profit"}, "unknown objective"),
        ({"amp": "fp8"}, "amp"),
        ({"device": "tpu"}, "device"),
        ({"warmup_frac": 1.0}, "warmup_frac"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_train_reports_bad_setups_clearly(monkeypatch):
    data = lag_task(64, 0)
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        train(small_model(), data, TrainConfig(amp="bf16", device="cpu", **QUICK))
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(small_model(), lag_task(8, 0), TrainConfig(**QUICK))
    with pytest.raises(ValueError, match="must vary"):
        train(small_model(), TensorDataset(torch.randn(64, N, F), torch.zeros(64)), TrainConfig(**QUICK))
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        train(small_model(), data, TrainConfig(**QUICK))
    if not torch.cuda.is_available():
        monkeypatch.delenv("WORLD_SIZE")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            train(small_model(), data, TrainConfig(device="cuda", batch_size=32, progress=False))


class LastBarLinear(torch.nn.Module):
    """The smallest TrainableModel: a linear read-out of the last bar, no transformer at all."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(N * F, 3)
        self.register_buffer("target_scale", torch.ones(()))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r, d, a = self.linear(x.flatten(1)).unbind(-1)
        return {"regression": r[:, None] * self.target_scale, "direction": d[:, None],
                "allocation": torch.tanh(a[:, None])}


def test_train_takes_any_model_with_the_trainable_interface():
    torch.manual_seed(0)
    model = LastBarLinear()
    res = train(model, (lag_task(256, 0), lag_task(64, 1)), TrainConfig(epochs=10, lr=3e-2, **QUICK))
    assert res.step_losses[0] > 0.5
    assert res.best_val_loss < 0.05  # the lag task is linear in the window: a linear model solves it
    assert model.target_scale.item() == pytest.approx(float(lag_task(256, 0).tensors[1].double().std(correction=0)))
    assert predict(model, lag_task(8, 2))["regression"].shape == (8, 1)


def test_train_says_what_a_model_lacks(tmp_path):
    data = lag_task(64, 0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        train(lambda x: x, data, TrainConfig(**QUICK))
    no_scale = torch.nn.Linear(F, 1)
    with pytest.raises(TypeError, match=r"target_scale.*register_buffer"):
        train(no_scale, data, TrainConfig(**QUICK))
    with pytest.raises(TypeError, match="target_scale"):
        predict(no_scale, data)

    class TupleOut(LastBarLinear):
        def forward(self, x):
            return tuple(super().forward(x).values())

    with pytest.raises(TypeError, match=r"return a dict with \['direction', 'regression'\]"):
        train(TupleOut(), data, TrainConfig(objective="multi", **QUICK))
    with pytest.raises(TypeError, match="checkpoint_dir=None"):
        train(LastBarLinear(), data, TrainConfig(checkpoint_dir=str(tmp_path), **QUICK))
    assert not any(tmp_path.iterdir()), "nothing may be written before the error"


# ----------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = small_model(seed=5, causal=False)
    model.target_scale.fill_(0.02)
    meta = {"data": "synthetic", "start": "2020-01-01T00:00:00+00:00", "features": ["r", "v"], "lookback": N}
    path = save_checkpoint(model, tmp_path / "run1", metadata=meta)
    assert path == tmp_path / "run1" / CHECKPOINT_NAME
    raw = torch.load(path, weights_only=True)  # plain types only: the safe loader accepts it
    assert raw["model_config"] == model.config.to_dict()
    assert raw["versions"]["torch"] == str(torch.__version__)
    ckpt = load_checkpoint(tmp_path / "run1", backend="naive")
    assert ckpt.config == model.config.replace(backend="naive") and ckpt.metadata == meta
    x = torch.randn(2, 20, F)
    model.eval()
    for key, value in model(x).items():
        torch.testing.assert_close(ckpt.model(x)[key], value)
    # loading into a model whose config differs only in the run-time backend is fine
    same = small_model(seed=9, causal=False, backend="sdpa")
    load_checkpoint(path, same)
    torch.testing.assert_close(same(x)["regression"], model(x)["regression"])


def test_checkpoint_config_mismatch_is_a_clear_error(tmp_path):
    save_checkpoint(small_model(), tmp_path)
    with pytest.raises(ValueError, match=r"d_model: checkpoint 32 vs model 64"):
        load_checkpoint(tmp_path, small_model(d_model=64))
    with pytest.raises(ValueError, match="causal"):
        load_checkpoint(tmp_path, small_model(causal=False))


def test_checkpoint_rejects_unsafe_metadata_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match=r"metadata\['start'\] is a datetime64"):
        save_checkpoint(small_model(), tmp_path, metadata={"start": np.datetime64("2020-01-01")})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a flashtrade checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    good = small_model(seed=1)
    save_checkpoint(good, tmp_path, metadata={"run": 1})

    def crash(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(train_mod.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(small_model(seed=2), tmp_path, metadata={"run": 2})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME], "temp file left behind"
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.metadata == {"run": 1}
    assert torch.equal(ckpt.model.input.weight, good.input.weight)


def test_predict_shapes_and_ranges():
    data = lag_task(50, 0)
    out = predict(small_model(n_outputs=1), data, batch_size=16)
    assert set(out) == {"regression", "direction", "allocation", "target"}
    assert all(v.shape == (50, 1) for v in out.values())
    assert ((out["direction"] >= 0) & (out["direction"] <= 1)).all()
    np.testing.assert_allclose(out["target"].ravel(), data.tensors[1].numpy(), rtol=1e-6)


def test_target_scale_is_read_from_windowed_subsets_without_nan():
    from torch.utils.data import Subset

    from flashtrade_lib.data import WindowDataset

    g = np.random.default_rng(0)
    feats, y = g.standard_normal((300, 3)), g.standard_normal(300)
    y[-5:] = np.nan  # the last bars have no forward label yet
    ds = WindowDataset(feats, y, 10, horizon=5)
    part = Subset(ds, range(40, 200))
    expected = np.array([float(part[i][1]) for i in range(len(part))])
    np.testing.assert_allclose(train_mod._targets(part), expected, rtol=1e-6)
    np.testing.assert_allclose(train_mod._targets(ds), y[ds.times], rtol=1e-6)
