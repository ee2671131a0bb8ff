"""The benchmark scripts run end to end at tiny sizes and write a record with provenance.

They are not timed here (speed targets are checked by running the scripts at full size);
this keeps them from rotting between the runs that record results.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from flashtrade_lib.measure.bench import load_record, provenance, write_record

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

TINY = {
    "backtest": ["--bars", "3000", "--loop-bars", "500", "--repeat", "1", "--max-wait", "0"],
    "numpy_attention": ["--sizes", "128", "256", "--blocks", "32", "--repeat", "1", "--max-wait", "0"],
    "windows_memory": ["--bars", "3000", "--lookback", "64", "--batches", "2", "--max-wait", "0"],
    "train_context": ["--contexts", "32", "64", "--repeat", "1", "--d-model", "16",
                      "--n-heads", "2", "--n-layers", "1", "--batch", "2", "--max-wait", "0",
                      "--long-context", "128"],
    "cross_asset": ["--assets", "2", "--lookbacks", "16", "32", "--repeat", "1", "--d-model", "16",
                    "--n-heads", "2", "--n-layers", "1", "--batch", "2", "--max-wait", "0"],
    "grading_time": ["--chapters", "00", "--cell-timeout", "60", "--max-wait", "0"],
    "lookback_sweep": ["--bars", "700", "--lookbacks", "4", "8", "--folds", "2", "--seeds", "0",
                       "--steps", "5", "--reps", "99", "--threads", "1", "--max-wait", "0",
                       "--power-check", "--power-lag", "6", "--budgets", "3", "5",
                       "--targets", "return", "volatility"],
    "cli_help": ["--commands", "", "train", "--repeat", "1", "--max-wait", "0"],
    # every stage of `make test` in a fresh clone, with `true` standing in for make
    "test_suite_time": ["--make", str(Path(__file__).parent / "data" / "fake_make.sh"), "--max-wait", "0"],
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# grading_time releases and grades a chapter twice (about a minute): the course tests cover
# grading itself, so its smoke test runs in the release check (tests/release_check.sh).
SLOW = {"grading_time"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.release) if n in SLOW else n
                                  for n in sorted(TINY)])
def test_benchmark_script_writes_a_record(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.json"
    status = _load(name).main([*TINY[name], "--out", str(out)])
    record = load_record(out)
    assert record is not None, f"{name} wrote no record"
    assert record["benchmark"] == name
    assert record["environment"]["cpu_count"] >= 1
    if name in ("numpy_attention", "train_context", "cross_asset"):  # self-checking: verdict, load, every repeat
        assert record["quality"]["verdict"] in ("ok", "flagged") and record["load"]["cores"] >= 1
        assert record["series"] and all(len(ts) == 1 for s in record["series"] for ts in s["times_s"])
    if name == "train_context":  # the long context is measured; a prediction is never "met"
        assert record["measured_beyond_sweep"]["long_context"]["context"] == 128
        long_step = record["targets"]["sdpa_step_at_long_context"]  # measured: met, unless the record is flagged
        assert long_step["value"] == 1.0 and (long_step["met"] or long_step.get("met_as_measured"))
        assert not any(t["met"] for t in record["targets"].values() if t.get("predicted"))
    if name == "lookback_sweep":  # the budget was chosen by a power check; every claim has its baseline
        checks = record["power_check"]["checks"]
        assert checks and [c["steps"] for c in checks] == [3, 5][: len(checks)]
        assert record["settings"]["model"]["train_steps"] == checks[-1]["steps"]
        assert record["difference"]["mde"] > 0 and record["linear_ic"] and record["volatility"]["ic"]
        assert all(-1 <= r["ci_low"] <= r["ci_high"] <= 1 for r in record["ic"] + record["linear_ic"])
    if name == "grading_time":  # the reference answer gets every point; the record says how long it took
        assert record["reference_gets_every_point"] and record["load"]["cores"] >= 1
        assert {r["submission"] for r in record["rows"]} == {"reference", "typical-wrong"}
        assert all(r["seconds"] > 0 for r in record["rows"])
    if name == "cli_help":  # every run of every command kept; the verdict is computed, not asserted here
        assert [r["command"] for r in record["rows"]] == ["flashtrade --help", "flashtrade train --help"]
        assert all(len(r["times_s"]) == 1 and r["median_s"] > 0 for r in record["rows"])
        assert isinstance(record["meets_target"], bool)
    if name == "test_suite_time":  # each stage timed, the README's sentence generated from the record
        assert list(record["stages"]) == list(_load(name).STAGES) and record["passed"]
        assert "From a fresh clone, `make test` (with its install) took" in _load(name).readme_line(record)
    # windows_memory returns 1 when its memory target fails: at this size it must pass
    assert status == 0


def test_every_benchmark_script_is_exercised() -> None:
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")}
    gpu = {"gpu_attention", "gpu_check"}  # need a GPU; their dry run is tests/test_gpu_check.py
    assert scripts - gpu == set(TINY), "add new benchmark scripts to TINY"


def test_write_record_stamps_provenance(tmp_path: Path) -> None:
    path = write_record(tmp_path / "sub" / "r.json", {"benchmark": "x", "value": 1.5})
    record = json.loads(path.read_text())
    assert record["value"] == 1.5 and record["environment"]["versions"]["numpy"]
    line = provenance(record, packages=("numpy", "pandas"))
    assert line.startswith("recorded ") and "numpy " in line and "pandas " in line
    with pytest.raises(ValueError, match="environment="):
        write_record(tmp_path / "bad.json", {"environment": {}})
    assert load_record(tmp_path / "missing.json") is None


def test_readme_states_the_recorded_suite_time() -> None:
    """The README's sentence about `make test`'s time is the one generated from its record."""
    suite = _load("test_suite_time")
    readme = (BENCHMARKS.parent / "README.md").read_text()
    record = load_record("test_suite_time")
    if record is None:
        assert "not recorded yet" in readme.split(suite.README_MARKERS[0])[1]
    else:
        assert suite.readme_with(readme, suite.readme_line(record)) == readme
