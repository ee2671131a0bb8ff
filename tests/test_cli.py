"""The ``flashtrade`` command line: every sub-command runs offline, helps, and fails clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from flashtrade_lib.cli import main
from flashtrade_lib.model.checkpoints import load_checkpoint
from flashtrade_lib.trading.costs import FUNDING_PER_8H

SUBCOMMANDS = ("fetch", "train", "predict", "backtest", "bench")
TINY = [
    "--data", "synthetic", "--n-bars", "900", "--n-assets", "1", "--planted-lag", "8",
    "--lookback", "16", "--epochs", "1", "--batch-size", "16", "--d-model", "16",
    "--n-heads", "2", "--n-layers", "1", "--max-steps-per-epoch", "4", "--no-progress",
]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: flashtrade {command}")


def test_help_imports_neither_torch_nor_pandas():
    """What keeps `--help` instant (benchmarks/cli_help.py times it): the parser and every
    command's help text are built without the heavy imports."""
    code = ("import sys, contextlib, io\n"
            "from flashtrade_lib.cli import main\n"
            f"for argv in ([], *[[c] for c in {SUBCOMMANDS + ('course',)!r}]):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main([*argv, '--help'])\n"
            "print(sorted(m for m in ('torch', 'pandas', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "flashtrade_lib.cli", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and all(c in proc.stdout for c in SUBCOMMANDS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model trained through the CLI, shared by the predict/backtest tests."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_a_checkpoint_with_data_metadata(trained, capsys):
    ckpt = load_checkpoint(trained)
    meta = ckpt.metadata
    assert meta["source"] == "synthetic" and meta["lookback"] == 16 and meta["symbol"] == "SYN0"
    assert len(meta["scaler"]["mean"]) == len(meta["features"]) == ckpt.config.n_features == 5
    assert meta["data_start"].startswith("2021-01-01")
    assert ckpt.config.d_model == 16 and ckpt.config.causal


def test_train_prints_a_json_summary(tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--out", str(tmp_path), *TINY, "--bidirectional", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["epochs_run"] == 1 and summary["test"]["n"] > 0
    assert 0 <= summary["test"]["hit_rate"] <= 1
    assert not load_checkpoint(tmp_path).config.causal


def test_predict_writes_one_row_per_test_window(trained, tmp_path, capsys):
    csv = tmp_path / "pred.csv"
    code, out, _ = run(capsys, "predict", "--checkpoint", str(trained), "--out", str(csv), "--backend", "naive",
                       "--json")
    assert code == 0
    frame = pd.read_csv(csv, index_col=0, parse_dates=True)
    summary = json.loads(out)
    assert list(frame.columns) == ["prediction", "prob_up", "allocation", "target"]
    assert len(frame) == summary["n"] > 0
    assert frame.index.is_monotonic_increasing
    assert str(frame.index[0]) == summary["first"].replace("+00:00", "+00:00")


def test_results_read_as_sentences_by_default(trained, capsys):
    code, out, _ = run(capsys, "predict", "--checkpoint", str(trained))
    assert code == 0 and out.startswith("SYN0, test split ") and "IC " in out and "{" not in out
    code, out, _ = run(capsys, "backtest", "--checkpoint", str(trained), "--json")
    assert code == 0 and json.loads(out)["metrics"]["model"]["periods_per_year"] == 8760
    assert json.loads(out)["funding_per_8h"] == FUNDING_PER_8H  # the default cost model's funding


def test_backtest_prints_model_and_buy_and_hold(trained, tmp_path, capsys):
    equity = tmp_path / "equity.csv"
    code, out, _ = run(capsys, "backtest", "--checkpoint", str(trained), "--cost-bps", "2",
                       "--out", str(equity))
    assert code == 0
    assert "model" in out and "buy_and_hold" in out and "sharpe" in out
    assert "cost 2 bps per unit traded, funding 1 bps per 8 h held" in out
    assert "95 % intervals" in out and "annual_return" in out and "[" in out
    assert "mean little below 0.25 years" in out  # the test split covers about 5 days
    curves = pd.read_csv(equity, index_col=0)
    assert list(curves.columns) == ["model", "buy_and_hold"] and (curves > 0).all().all()


def test_bench_measures_both_backends_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code, out, _ = run(capsys, "bench", "--contexts", "32", "64", "--batch", "2", "--d-model", "16",
                       "--n-heads", "2", "--n-layers", "1", "--repeat", "1", "--no-progress",
                       "--json", str(path))
    assert code == 0
    report = json.loads(path.read_text())
    assert report["environment"]["versions"]["torch"]
    rows = {(r["context"], r["backend"]): r for r in report["rows"]}
    assert set(rows) == {(32, "naive"), (32, "sdpa"), (64, "naive"), (64, "sdpa")}
    assert all(r["status"] == "ok" and r["step_s"] > 0 for r in rows.values())


def test_bench_skips_naive_beyond_the_memory_limit(capsys):
    code, out, _ = run(capsys, "bench", "--contexts", "64", "--backends", "naive", "--batch", "2",
                       "--d-model", "16", "--n-heads", "2", "--n-layers", "1", "--repeat", "1",
                       "--max-gib", "1e-6", "--no-progress")
    assert code == 0 and "skipped" in out and "predicted" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--out", "{tmp}", "--data", "eurusd-1h", "--symbol", "GBPUSD"], "symbol 'GBPUSD' is not in"),
        (["train", "--out", "{tmp}", "--d-model", "30", "--n-heads", "4"], "not divisible by n_heads"),
        (["predict", "--checkpoint", "{tmp}/nothing"], "no checkpoint at"),
        (["backtest", "--checkpoint", "{tmp}/nothing"], "no checkpoint at"),
        (["fetch", "BTCUSDT", "--interval", "7", "--no-cache"], "interval"),
    ],
)
def test_bad_inputs_get_one_clear_line(argv, message, tmp_path, capsys):
    code, _, err = run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert message in err and "Traceback" not in err


def test_train_requires_an_output_directory(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


# ----------------------------------------------------------------- fetch against a local server

BAR_MS = 3_600_000
FIRST = 1_704_067_200_000  # 2024-01-01 00:00 UTC
N_BARS = 30


class _FakeBybit(BaseHTTPRequestHandler):
    """Serves /v5/market/kline like Bybit: newest first, start/end inclusive, limit cap."""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        start, end = int(query.get("start", 0)), int(query["end"])
        limit = min(int(query.get("limit", 200)), 1000)
        rows = [
            [str(t), "100", "101", "99", str(100 + i), "5", "500"]
            for i, t in enumerate(FIRST + BAR_MS * k for k in range(N_BARS))
            if start <= t <= end
        ][::-1][:limit]
        body = json.dumps({"retCode": 0, "retMsg": "OK", "result": {"list": rows}, "time": FIRST + 10**10})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_bybit():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeBybit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_downloads_through_the_cache_and_writes_parquet(fake_bybit, tmp_path, capsys):
    out = tmp_path / "bars.parquet"
    argv = ["fetch", "BTCUSDT", "--interval", "60", "--start", "2024-01-01", "--end", "2024-01-01 23:00",
            "--base-url", fake_bybit, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    bars = pd.read_parquet(out)
    assert len(bars) == 24 == json.loads(stdout)["bars"]
    assert bars["close"].iloc[0] == 100 and bars.index.is_monotonic_increasing
    assert any((tmp_path / "cache").rglob("*.parquet")), "the cache was not written"
