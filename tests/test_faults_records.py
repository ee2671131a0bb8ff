"""Fault injection — benchmark records that can't lie (issue #29, item 3).

A writer killed mid-write or a full disk leaves the previous record (never a 0-byte one);
NaN anywhere in a load or quality input flags the record; a flagged record's targets are
never "met" wherever they sit; the quiet-machine wait refuses a bound that is not one.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flashtrade_lib.atomic import WriteError
from flashtrade_lib.measure import bench
from flashtrade_lib.measure.record_quality import Series, assess, gate_targets

pytestmark = pytest.mark.timeout(120)

SIZES = (1024, 2048, 4096)
NAN = float("nan")


def quiet_load(**changes) -> dict:
    load = {"cores": 2, "threshold_cores": 1.0, "waited_s": 0.0, "max_wait_s": 60, "quiet_at_start": True,
            "load_average_1min": {"before": 0.1, "after": 1.0}, "other_busy_cores": 0.05, "run_s": 10.0}
    return {**load, **changes}


def steady(times: tuple[float, ...] | None = None) -> Series:
    base = tuple((1e-8 * n * n, 1.01e-8 * n * n) for n in SIZES)
    if times is not None:
        base = (times, *base[1:])
    return Series("naive", 2, SIZES, base)


# ---------------------------------------------------------------- NaN flags the record


@pytest.mark.parametrize("load, flag", [
    (quiet_load(other_busy_cores=NAN), "load.other_busy_cores = nan"),
    (quiet_load(threshold_cores=NAN), "load.threshold_cores = nan"),
    (quiet_load(other_busy_cores=None, load_average_1min={"before": NAN, "after": 1.0}),
     "load.load_average_1min.before = nan"),
    (quiet_load(other_busy_cores=float("inf")), "load.other_busy_cores = inf"),
])
def test_nan_in_the_load_report_flags_the_record(load: dict, flag: str) -> None:
    quality = assess([steady()], load)
    assert quality["verdict"] == "flagged"
    assert quality["flags"] == [f"the load report holds non-numbers ({flag}): nothing says the machine was quiet"]


def test_nan_repeat_times_and_a_nan_bound_flag_the_record() -> None:
    quality = assess([steady((NAN, 0.01))], quiet_load())
    assert quality["verdict"] == "flagged"
    assert quality["flags"] == ["naive at N=1024: repeat times [nan, 0.01] are not all positive numbers"]
    quality = assess([steady()], quiet_load(), spread_bound=NAN)
    assert quality["flags"] == ["the spread bound nan is not a positive number: no spread could be checked"]


# ---------------------------------------------------------------- one gate, every shape


SHAPES = {
    "target": {"target": {"value": 1, "met": True}},
    "targets": {"targets": {"speedup": {"value": 3.0, "met": True}}},
    "a list": {"targets": [{"value": 1, "met": True}, {"value": 2, "met": True}]},
    "results.target": {"results": {"target": {"value": 1, "met": True}}},
    "results list": {"results": [{"n": 8, "target": {"met": True}}, {"n": 16, "target": {"met": True}}]},
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_flagged_record_meets_no_target_whatever_its_shape(shape: str, tmp_path: Path) -> None:
    path = bench.write_record(tmp_path / "r.json", SHAPES[shape], series=[steady()],
                              load=quiet_load(other_busy_cores=NAN), environment={"test": True})
    text = path.read_text()
    assert '"met": true' not in text and text.count('"met_as_measured": true') == text.count('"met"')
    assert json.loads(text)["quality"]["verdict"] == "flagged"


def test_an_ok_record_keeps_its_targets() -> None:
    record = json.loads(json.dumps(SHAPES["results list"]))
    gate_targets(record, assess([steady()], quiet_load()))
    assert [r["target"]["met"] for r in record["results"]] == [True, True]


# ---------------------------------------------------------------- atomic record writes


_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from flashtrade_lib.measure import bench

    path, ready = Path(sys.argv[1]), Path(sys.argv[2])
    real = Path.write_text

    def slow(self, text, *a, **kw):  # half the record, then stuck: a kill lands mid-write
        with open(self, "w") as fh:
            fh.write(text[: len(text) // 2])
        ready.touch()
        time.sleep(60)

    Path.write_text = slow
    bench.write_record(path, {"benchmark": "new"}, environment={"test": True})
""")


def test_a_writer_killed_mid_write_keeps_the_previous_record(tmp_path: Path) -> None:
    path = bench.write_record(tmp_path / "r.json", {"benchmark": "old"}, environment={"test": True})
    before = path.read_bytes()
    script, ready = tmp_path / "writer.py", tmp_path / "ready"
    script.write_text(_SLOW_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), "the writer never reached its write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert path.read_bytes() == before  # not 0 bytes, not half a record
    orphans = list(tmp_path.glob(".r.json.*.tmp"))
    assert len(orphans) == 1
    bench.write_record(path, {"benchmark": "next"}, environment={"test": True})
    assert not orphans[0].exists()  # the next writer removes what the killed one left
    assert json.loads(path.read_text())["benchmark"] == "next"


def _disk_full_after(n_bytes: int):
    def write_text(self, text, *a, **kw):
        with open(self, "w") as fh:
            fh.write(text[:n_bytes])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write_text


def test_a_full_disk_is_one_error_and_leaves_nothing_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bench.write_record(tmp_path / "r.json", {"benchmark": "old"}, environment={"test": True})
    before = path.read_bytes()
    monkeypatch.setattr(Path, "write_text", _disk_full_after(10))
    with pytest.raises(WriteError) as err:
        bench.write_record(path, {"benchmark": "new"}, environment={"test": True})
    assert str(err.value) == (f"cannot write {path}: No space left on device; nothing was written "
                              "(a previous r.json, if any, is unchanged)")
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


# ---------------------------------------------------------------- the quiet-machine wait


@pytest.mark.parametrize("bad", [NAN, float("inf"), -1.0, "soon"])
def test_a_max_wait_that_is_not_a_bound_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_wait_s must be a finite number of seconds >= 0, got"):
        bench.start_watch(bad)


def test_the_environment_variable_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bench.QUIET_WAIT_ENV, "nan")
    with pytest.raises(ValueError, match=r"\$FLASHTRADE_QUIET_WAIT_S must be a finite number of seconds >= 0, "
                                         r"got 'nan'"):
        bench.start_watch()


@pytest.mark.parametrize("bad", ["nan", "inf", "-5"])
def test_the_max_wait_option_refuses_it(bad: str, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    bench.add_max_wait_option(parser)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--max-wait", bad])
    assert exit_.value.code == 2
    assert f"argument --max-wait: must be a finite number of seconds >= 0, got '{bad}'" in capsys.readouterr().err
    assert parser.parse_args(["--max-wait", "0"]).max_wait == 0.0
