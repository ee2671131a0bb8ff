"""Two CPU processes under ``torchrun`` (gloo) take the same steps as one process.

Run as a script, this file is the torchrun worker::

    torchrun --standalone --nproc_per_node 2 tests/test_ddp.py OUT_DIR

The test runs that, then trains the same model on the same data in this process
and compares losses and final weights. They match because ``train`` shards each
*global* batch across the processes (DistributedSampler) and DDP averages the
gradients: only the floating-point summation order differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from flashtrade_lib.model.checkpoints import load_checkpoint
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
from flashtrade_lib.model.train import TrainConfig, train

N, F = 12, 2
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=5e-3, seed=11, progress=False, patience=None)


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N, F, generator=g)
    return TensorDataset(x, 0.01 * (x[:, -1, 0] + x[:, -4, 1]))


def _run(checkpoint_dir: str | None = None):
    torch.manual_seed(0)
    model = FlashAttentionTrader(ModelConfig(n_features=F, d_model=32, n_heads=4, n_layers=1))
    cfg = TrainConfig(**{**CONFIG.to_dict(), "checkpoint_dir": checkpoint_dir})
    # 100 samples: not a multiple of the batch, so the drop-last rules are exercised too
    result = train(model, {"train": _data(100, 0), "val": _data(37, 1)}, cfg)
    return model, result


def _worker(out_dir: str) -> None:
    model, result = _run(checkpoint_dir=out_dir)
    rank = int(os.environ["RANK"])
    record = {"world_size": result.world_size, "step_losses": result.step_losses, "history": result.history}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record))
    torch.save(model.state_dict(), Path(out_dir, f"rank{rank}.pt"))


def test_two_process_torchrun_matches_one_process(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"torchrun not found next to {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", __file__, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    model, single = _run()
    assert single.world_size == 1 and single.steps == CONFIG.epochs * (100 // 16)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rec in ranks:
        assert rec["world_size"] == 2
        assert rec["step_losses"] == pytest.approx(single.step_losses, rel=1e-4, abs=1e-6)
        for a, b in zip(rec["history"], single.history, strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    state = model.state_dict()
    for r in (0, 1):
        ddp_state = torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
        for key, value in state.items():
            torch.testing.assert_close(ddp_state[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # only rank 0 writes the checkpoint, and it records the world size
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.metadata["world_size"] == 2


if __name__ == "__main__":
    _worker(sys.argv[1])
