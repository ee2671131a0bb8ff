"""Fault injection — checkpoints that can't lie (issue #29, item 3).

A checkpoint is checked against the data it is applied to: edited metadata (source,
lookback, horizon, data range, fingerprint) is refused with one line naming the field; a
small file cannot ask for a huge market (refused before any data is built); temporary
files of killed writers are removed by the next save.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flashtrade_lib.cli import main
from flashtrade_lib.model.checkpoints import CHECKPOINT_NAME, MAX_DATA_VALUES, save_checkpoint
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig

pytestmark = pytest.mark.timeout(300)




def _edited(tiny_run: Path, tmp_path: Path, **changes) -> Path:
    payload = torch.load(tiny_run / CHECKPOINT_NAME, weights_only=True)
    meta = payload["metadata"]
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            meta[outer] = {**meta[outer], inner: value}
        else:
            meta[key] = value
    out = tmp_path / "edited"
    out.mkdir()
    torch.save(payload, out / CHECKPOINT_NAME)
    return out


def _refused(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_the_unedited_checkpoint_predicts(tiny_run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(tiny_run)]) == 0
    assert torch.load(tiny_run / CHECKPOINT_NAME, weights_only=True)["metadata"]["data_fingerprint"].startswith("sha256:")


@pytest.mark.parametrize("changes, field", [
    ({"lookback": 20}, "splits.train[0]"),  # longer windows: the first decision bar moves
    ({"horizon": 3}, "splits.train[1]"),
    ({"data_end": "2031-01-01 00:00:00+00:00"}, None),  # refused by the rebuild itself (its own message)
    ({"data_fingerprint": "sha256:0000000000000000"}, "data_fingerprint"),
    ({"synthetic.seed": 7}, "data_fingerprint"),  # other bars, same shape: only the fingerprint tells
    ({"splits": {"train": [], "val": [], "test": []}}, "splits.train count"),
])
def test_edited_metadata_is_refused_in_one_line(tiny_run: Path, tmp_path: Path, capsys, changes: dict,
                                                field: str | None) -> None:
    ckpt = _edited(tiny_run, tmp_path, **changes)
    for command in ("predict", "backtest"):
        line = _refused(capsys, [command, "--checkpoint", str(ckpt)])
        if field is None:
            assert "not 2021-01-01 00:00:00+00:00 .. 2031-01-01 00:00:00+00:00 as when the model was trained" in line
        else:
            assert f"checkpoint {ckpt / CHECKPOINT_NAME} was trained on other data: its {field} is " in line


def test_a_checkpoint_of_the_synthetic_market_relabelled_as_eurusd_is_refused(tiny_run: Path, tmp_path: Path,
                                                                            capsys) -> None:
    ckpt = _edited(tiny_run, tmp_path, source="eurusd-1h", symbol="EURUSD")
    line = _refused(capsys, ["predict", "--checkpoint", str(ckpt)])
    assert line.startswith("flashtrade predict: error: the bars of eurusd-1h now run 2017-")
    assert line.endswith("as when the model was trained; fetch that range again (or use the bars file it was "
                         "trained on)")
    # with the range edited to match too, the features (and the fingerprint) still tell
    payload = torch.load(ckpt / CHECKPOINT_NAME, weights_only=True)
    eurusd = line.split("now run ")[1].split(", not")[0].split(" .. ")
    payload["metadata"].update(data_start=eurusd[0], data_end=eurusd[1])
    torch.save(payload, ckpt / CHECKPOINT_NAME)
    line = _refused(capsys, ["predict", "--checkpoint", str(ckpt)])
    assert f"checkpoint {ckpt / CHECKPOINT_NAME} was trained on other data: its " in line


@pytest.mark.parametrize("changes, reason", [
    ({"synthetic.n_bars": 10**9}, f"n_bars=1000000000 × n_assets=1; at most {MAX_DATA_VALUES:,} bars × assets"),
    ({"synthetic.n_assets": 10**6}, "n_bars=900 × n_assets=1000000"),
    ({"synthetic.n_bars": 2.5}, "n_bars=2.5"),
    ({"lookback": 10**9}, f"its lookback is 1000000000, not a whole number between 1 and {MAX_DATA_VALUES:,}"),
    ({"horizon": -1}, "its horizon is -1"),
    ({"last_bars": "all"}, "its last_bars is 'all'"),
    ({"source": "nasdaq"}, "its data source 'nasdaq' is not one of"),
    ({"scaler": {"mean": [0.0], "std": [float("nan")]}}, "its scaler is not two equally long lists"),
    ({"synthetic.echo_coef": float("inf")}, "synthetic option echo_coef=inf is not a finite number"),
])
def test_sizes_and_types_are_checked_before_any_data_is_built(tiny_run: Path, tmp_path: Path, capsys, monkeypatch,
                                                                changes: dict, reason: str) -> None:
    import flashtrade_lib.data.tasks as tasks

    ckpt = _edited(tiny_run, tmp_path, **changes)
    monkeypatch.setattr(tasks, "market_datasets", lambda *a, **k: pytest.fail("data built before the checks"))
    line = _refused(capsys, ["predict", "--checkpoint", str(ckpt)])
    assert reason in line and "it cannot be applied to data" in line


# ---------------------------------------------------------------- temp files of killed writers


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_save_removes_the_temp_files_killed_writers_left(tmp_path: Path) -> None:
    model = FlashAttentionTrader(ModelConfig(n_features=2, d_model=8, n_heads=2, n_layers=1))
    dead = [tmp_path / f".{CHECKPOINT_NAME}.{_dead_pid()}.k1ll3d{i}.tmp" for i in range(5)]
    legacy = tmp_path / f".{CHECKPOINT_NAME}.abc123.tmp"  # written before temp names carried a pid
    alive = tmp_path / f".{CHECKPOINT_NAME}.{os.getppid()}.busy.tmp"  # a writer that is still running
    other = tmp_path / ".notes.txt.123.x.tmp"  # not a checkpoint's
    for f in (*dead, legacy, alive, other):
        f.write_bytes(b"half a checkpoint")
    path = save_checkpoint(model, tmp_path)
    assert not any(f.exists() for f in (*dead, legacy))
    assert alive.exists() and other.exists() and path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT_NAME, alive.name, other.name])
