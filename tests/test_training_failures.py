"""Training that fails, fails: fault injection for diverging runs, stale outputs and damaged checkpoints.

Every fault is planted — a model whose loss turns NaN at a known step, NaN inputs,
an older run's checkpoint in the output directory, truncated and garbage files,
configs crafted to describe a model too large to allocate — and each must end in
one clear error (a :class:`~flashtrade_lib.errors.FlashTradeError`, which the CLI
prints as one line) before anything is lost or allocated. Tiny models only: the
whole module runs in seconds, with no sleeps.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch.utils.data import TensorDataset

from flashtrade_lib.errors import FlashTradeError
from flashtrade_lib.model.checkpoints import (
    CHECKPOINT_NAME,
    CheckpointError,
    OutputDirError,
    check_output_dir,
    load_checkpoint,
    save_checkpoint,
)
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
from flashtrade_lib.model.train import TrainConfig, TrainingDiverged, train

N, F = 8, 2
QUICK = {"batch_size": 16, "progress": False, "patience": None, "device": "cpu"}


def _data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N, F, generator=g)
    return TensorDataset(x, 0.01 * x[:, -1, 0])


def _model(**overrides) -> FlashAttentionTrader:
    torch.manual_seed(0)
    return FlashAttentionTrader(ModelConfig(**{"n_features": F, "d_model": 16, "n_heads": 2, "n_layers": 1,
                                               **overrides}))


class GoesNaN(FlashAttentionTrader):
    """A real model whose regression output turns NaN from forward call ``bad_from`` on."""

    def __init__(self, bad_from: int) -> None:
        torch.manual_seed(0)
        super().__init__(ModelConfig(n_features=F, d_model=16, n_heads=2, n_layers=1))
        self.calls, self.bad_from = 0, bad_from

    def forward(self, x):
        out = super().forward(x)
        self.calls += 1
        if self.calls >= self.bad_from:
            out["regression"] = out["regression"] * float("nan")
        return out


# ----------------------------------------------------------------- a non-finite loss stops training


def test_a_loss_that_goes_nan_stops_training_with_a_clear_error(tmp_path):
    model = GoesNaN(bad_from=7)  # 4 steps per epoch: the 3rd step of epoch 2 goes NaN
    start = time.perf_counter()
    with pytest.raises(TrainingDiverged) as info:
        train(model, _data(), TrainConfig(epochs=3, checkpoint_dir=str(tmp_path), **QUICK))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("training diverged: the regression loss is nan at step 7 (epoch 2)")
    assert "lr=" in msg and str(tmp_path / CHECKPOINT_NAME) in msg  # says which checkpoint is the last good one
    assert isinstance(info.value, FlashTradeError) and isinstance(info.value, RuntimeError)
    assert time.perf_counter() - start < 60
    # the NaN step was never applied: the checkpoint is epoch 1's, with finite weights
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.metadata["best_epoch"] == 1 and all(torch.isfinite(p).all() for p in ckpt.model.parameters())


def test_nan_in_the_inputs_stops_training_at_the_first_step():
    data = _data()
    data.tensors[0][5, 3, 1] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"attention received non-finite values .* at step 1 \(epoch 1\)") as info:
        train(_model(), data, TrainConfig(epochs=1, batch_size=64, progress=False, patience=None, device="cpu"))
    assert "no checkpoint of this run was written" in str(info.value)


def test_an_infinite_validation_loss_stops_training():
    class ValNaN(FlashAttentionTrader):
        def forward(self, x):
            out = super().forward(x)
            if not self.training:
                out["regression"] = out["regression"] + float("inf")
            return out

    torch.manual_seed(0)
    model = ValNaN(ModelConfig(n_features=F, d_model=16, n_heads=2, n_layers=1))
    with pytest.raises(TrainingDiverged, match="the validation loss is inf"):
        train(model, (_data(), _data(32, 1)), TrainConfig(epochs=2, **QUICK))


# ----------------------------------------------------------------- an older run's checkpoint in the output


def test_every_run_stamps_its_id_into_its_checkpoint(tmp_path):
    result = train(_model(), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), **QUICK))
    assert result.run_id and result.replaced is None
    assert load_checkpoint(tmp_path).run_id == result.run_id


def test_an_older_runs_checkpoint_is_refused_before_training_starts(tmp_path, monkeypatch):
    old = train(_model(), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), **QUICK))
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    def no_step(*args, **kwargs):
        raise AssertionError("training started before the output directory was checked")

    monkeypatch.setattr("flashtrade_lib.model.train.compute_loss", no_step)
    with pytest.raises(OutputDirError) as info:
        train(_model(), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), **QUICK))
    msg = str(info.value)
    assert "\n" not in msg and f"run {old.run_id}" in msg and "overwrite" in msg and str(tmp_path) in msg
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before  # nothing lost


def test_overwrite_removes_the_old_checkpoint_first_and_says_so(tmp_path):
    old = train(_model(), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), **QUICK))
    new = train(GoesNaN(bad_from=10**9), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path),
                                                              overwrite=True, **QUICK))
    assert new.replaced and f"run {old.run_id}" in new.replaced and "removed" in new.replaced
    assert load_checkpoint(tmp_path).run_id == new.run_id != old.run_id
    # a run refused for another reason (here: fewer samples than one batch) removes nothing
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_model(), _data(8), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), overwrite=True, **QUICK))
    assert load_checkpoint(tmp_path).run_id == new.run_id
    # a replacing run that dies before its first checkpoint leaves no older file behind
    with pytest.raises(TrainingDiverged):
        train(GoesNaN(bad_from=1), _data(), TrainConfig(epochs=1, checkpoint_dir=str(tmp_path), overwrite=True,
                                                        **QUICK))
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_check_output_dir_refuses_a_file_and_an_unwritable_directory(tmp_path):
    a_file = tmp_path / "runs"
    a_file.write_text("not a directory")
    with pytest.raises(OutputDirError, match="is a file"):
        check_output_dir(a_file)
    with pytest.raises(OutputDirError, match="cannot write into output directory"):
        check_output_dir(a_file / "sub")  # its parent is a file: mkdir fails
    assert check_output_dir(tmp_path / "fresh") is None and (tmp_path / "fresh").is_dir()
    (tmp_path / "fresh" / CHECKPOINT_NAME).write_bytes(b"garbage")
    with pytest.raises(OutputDirError, match="an unreadable checkpoint file"):
        check_output_dir(tmp_path / "fresh")


# ----------------------------------------------------------------- damaged checkpoints: one line naming the file


@pytest.fixture
def saved(tmp_path):
    return save_checkpoint(_model(), tmp_path / "good", metadata={"run_id": "r1"})


@pytest.mark.parametrize("damage", ["truncated to half", "truncated to 10 bytes", "empty", "garbage", "flipped bytes"])
def test_a_damaged_checkpoint_gives_one_line_naming_the_file(saved, tmp_path, damage):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes({
        "truncated to half": raw[: len(raw) // 2],
        "truncated to 10 bytes": raw[:10],
        "empty": b"",
        "garbage": b"\x00\x01not a checkpoint at all" * 50,
        "flipped bytes": raw[:200] + bytes(b ^ 0xFF for b in raw[200:400]) + raw[400:],
    }[damage])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    msg = str(info.value)
    assert "\n" not in msg and str(bad) in msg and len(msg) < 500


# ----------------------------------------------------------------- crafted configs: refused before allocation


def _craft(tmp_path, saved, **config_changes):
    payload = torch.load(saved, weights_only=True)
    payload["model_config"] = {**payload["model_config"], **config_changes}
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    return path


def test_a_config_describing_a_huge_model_is_refused_before_any_tensor_is_allocated(saved, tmp_path):
    # 64 layers of width 65,536: ~3·10^12 parameters, 13 TB of float32 — building it would kill the machine
    path = _craft(tmp_path, saved, d_model=65536, n_heads=512, n_layers=64)
    assert path.stat().st_size < 200_000  # a tiny file
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"describes a model of [\d,]+ parameters, more than the limit"):
        load_checkpoint(path)
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize(("changes", "what"), [
    ({"n_heads": 0}, "n_heads"),
    ({"d_model": -8}, "d_model"),
    ({"n_layers": "2"}, "n_layers"),
    ({"causal": "yes"}, "causal"),
    ({"dropout": "0.1"}, "TypeError"),
    ({"backend": "cuda-magic"}, "unknown attention backend"),
    ({"secret": 1}, "unknown ModelConfig fields"),
])
def test_an_invalid_config_is_one_line_naming_the_file(saved, tmp_path, changes, what):
    path = _craft(tmp_path, saved, **changes)
    with pytest.raises(CheckpointError, match="invalid model config") as info:
        load_checkpoint(path)
    assert what in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_weights_that_do_not_fit_their_config_are_refused(saved, tmp_path):
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["input.weight"] = torch.zeros(3, 3)
    path = tmp_path / "mismatch.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights do not fit its own config"):
        load_checkpoint(path)
