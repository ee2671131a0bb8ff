"""Any source flows end to end through the command line: fetch → train → predict → backtest,
against the loopback fake Bybit, then offline from the cache `fetch` filled and from a bars file."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fake_bybit import FakeBybit, make_bars

from flashtrade_lib.cli import main
from flashtrade_lib.data.barfile import read_bars
from flashtrade_lib.data.cache import cached_klines
from flashtrade_lib.model.checkpoints import load_checkpoint

TINY = ["--lookback", "16", "--epochs", "1", "--batch-size", "16", "--d-model", "16", "--n-heads", "2",
        "--n-layers", "1", "--max-steps-per-epoch", "3", "--no-progress", "--json"]
BARS = {"BTCUSDT": make_bars(900), "ETHUSDT": make_bars(900, seed=1)}
START = str(pd.Timestamp(int(BARS["BTCUSDT"][0, 0]), unit="ms"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """Both symbols fetched once from the fake Bybit (its URL from the environment), into a cache and files."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp, FakeBybit(BARS) as fake:
        mp.setenv("FLASHTRADE_BYBIT_URL", fake.url)
        mp.delenv("FLASHTRADE_OFFLINE", raising=False)
        for symbol in BARS:
            assert main(["fetch", symbol, "--interval", "1h", "--start", START, "--cache-dir", str(tmp / "cache"),
                         "--out", str(tmp / f"{symbol}.csv")]) == 0
        assert fake.requests, "fetch did not go to the server named by FLASHTRADE_BYBIT_URL"
    return tmp


def test_fetch_train_predict_backtest_from_the_cache(fetched, capsys, monkeypatch):
    monkeypatch.setenv("FLASHTRADE_CACHE_DIR", str(fetched / "cache"))
    monkeypatch.setenv("FLASHTRADE_OFFLINE", "1")  # the chain after fetch never touches the network
    run_dir = fetched / "run"
    code, out, err = run(capsys, "train", "--data", "bybit:BTCUSDT,ETHUSDT", "--interval", "60",
                         "--out", str(run_dir), *TINY)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["data"]["source"] == "bybit:BTCUSDT,ETHUSDT" and summary["data"]["symbol"] == "BTCUSDT"
    meta = load_checkpoint(run_dir).metadata
    assert meta["features"][-1].endswith("/ETHUSDT")  # both symbols feed the model
    assert (meta["interval"], meta["calendar"], meta["periods_per_year"]) == ("1h", "crypto", 8760.0)
    # the last bar is still open on the fake server: it is never served, so 899 closed bars
    assert meta["data_end"] == str(pd.Timestamp(int(BARS["BTCUSDT"][-2, 0]), unit="ms", tz="UTC"))

    code, out, err = run(capsys, "predict", "--checkpoint", str(run_dir), "--json")
    assert code == 0, err
    predicted = json.loads(out)
    assert predicted["n"] > 0
    code, out, err = run(capsys, "backtest", "--checkpoint", str(run_dir), "--json")
    assert code == 0, err
    table = json.loads(out)
    assert table["metrics"]["model"]["periods_per_year"] == 8760.0
    assert table["metrics"]["buy_and_hold"]["bars"] == table["metrics"]["model"]["bars"] > 0

    # the cache grows (a later fetch): the checkpoint still sees exactly the bars it was trained on
    monkeypatch.delenv("FLASHTRADE_OFFLINE")
    with FakeBybit({s: make_bars(960, seed=i) for i, s in enumerate(BARS)}) as fake:
        for symbol in BARS:
            assert main(["fetch", symbol, "--start", START, "--base-url", fake.url]) == 0
    capsys.readouterr()
    monkeypatch.setenv("FLASHTRADE_OFFLINE", "1")
    assert len(cached_klines("BTCUSDT", "60")) == 959  # 60 more closed bars than at training
    code, out, err = run(capsys, "predict", "--checkpoint", str(run_dir), "--json")
    assert code == 0, err
    assert json.loads(out) == predicted


def test_a_bars_file_is_the_format_fetch_writes(fetched, capsys):
    path = fetched / "BTCUSDT.csv"
    assert path.read_text().startswith("# flashtrade bars: source=bybit symbol=BTCUSDT interval=1h calendar=crypto")
    assert len(read_bars(path)) == len(BARS["BTCUSDT"]) - 1
    code, out, err = run(capsys, "train", "--data", str(path), "--out", str(fetched / "file-run"), *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "backtest", "--checkpoint", str(fetched / "file-run"))
    assert code == 0, err
    assert out.startswith("backtest of BTCUSDT") and "buy_and_hold" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "bybit:DOGEUSDT", "--interval", "60"], "offline mode: nothing cached for bybit/linear/DOGEUSDT"),
        (["--data", "bybit:", "--interval", "60"], "names no symbol"),
        (["--data", "crypto-30m", "--interval", "60"], "--interval is for cached live sources"),
        (["--data", "nope.txt"], "a bars file ends in .csv or .parquet"),
        (["--data", "missing.csv"], "no bars file"),
        (["--data", "kraken:BTCUSD"], "unknown data source 'kraken'"),
    ],
)
def test_bad_data_specs_get_one_clear_line(argv, message, fetched, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLASHTRADE_CACHE_DIR", str(fetched / "cache"))
    monkeypatch.setenv("FLASHTRADE_OFFLINE", "1")
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "r"), *argv, *TINY)
    assert code in (1, 2) and message in err and "Traceback" not in err
