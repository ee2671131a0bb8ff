"""The one-call GPU check (``benchmarks/gpu_check.sh``) and the records it writes, checked on the CPU.

The GPU run itself needs a GPU; everything around it does not: the stage budgets, stopping a
stage that overruns, the install onto an existing torch/triton, the benchmark's code path
(a dry run: kernels under Triton's interpreter, a fake timer), the record's schema, the
loader chapter 4 uses, and the README's generated table.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flashtrade_lib.measure import plots_gpu
from flashtrade_lib.measure.record_quality import Series, assess

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_stage_budgets_fit_seven_minutes_and_the_headers_say_so():
    check = _module("gpu_check")
    assert sum(check.BUDGETS.values()) <= 7 * 60
    assert check.BUDGETS.keys() == check.ESTIMATES.keys()
    assert all(check.ESTIMATES[s] <= check.BUDGETS[s] for s in check.BUDGETS)
    assert check.BENCHMARK_MARGIN_S < check.BUDGETS["benchmark"]
    shell = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    for stage, budget in check.BUDGETS.items():  # both headers state the numbers BUDGETS holds
        assert re.search(rf"{stage} {check.ESTIMATES[stage]} / {budget}\b", shell), stage
        assert re.search(rf"^{stage}\s+{check.ESTIMATES[stage]} s\s+{budget} s", check.__doc__, re.M), stage
    assert f"= {sum(check.BUDGETS.values())} s budget" in shell


def test_a_stage_that_overruns_is_stopped_and_recorded(tmp_path):
    check = _module("gpu_check")
    r = check._run_stage("sleepy", [sys.executable, "-c", "import time; print('started', flush=True); "
                                    "time.sleep(60)"], tmp_path, {}, budget_s=1.5, cwd=tmp_path)
    assert r.status == "timeout" and r.returncode is None and r.elapsed_s < 15
    log = (tmp_path / "sleepy.log").read_text()
    assert "started" in log and "ran past its budget of 1.5 s" in log


def test_the_check_refuses_a_folder_with_an_older_run(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not empty" in proc.stderr


@pytest.mark.slow
def test_dry_run_runs_every_stage_and_writes_records_the_chapter_loads(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = json.loads((out / "stages.json").read_text())
    assert [s["name"] for s in stages["stages"]] == ["preflight", "install", "tests", "benchmark"]
    assert all(s["status"] == "ok" for s in stages["stages"]) and stages["dry_run"] is True
    assert stages["tests"]["tests"] > 0 and stages["tests"]["failures"] == stages["tests"]["errors"] == 0
    assert "installed" in (out / "install.log").read_text() and not (out / "site").exists()
    assert not (ROOT / "build").exists(), "the install must not write into the checkout"

    # the chapter's loader accepts the record (asked for dry runs) and never shows it by default
    assert plots_gpu.load_gpu_results(out) == []
    (record,) = plots_gpu.load_gpu_results(out, include_dry_runs=True)
    assert record["dry_run"] is True and record["environment"]["versions"]["triton"]
    rows = {(r["backend"], r["pass"]): r for r in record["rows"] if r["seqlen"] == 128 and not r["causal"]}
    assert rows["triton", "fwd"]["status"] == rows["triton", "bwd"]["status"] == "ok"  # the interpreter ran it
    assert rows["sdpa:cudnn", "fwd"]["status"] == "unavailable" and rows["sdpa:cudnn", "fwd"]["reason"]
    # the record-quality check accepts its series: re-assessed from the JSON, the verdict is reproduced
    series = [Series.from_json(s) for s in record["series"]]
    assert series and all(s.order == 1 for s in series)
    assert assess(series, record["load"])["verdict"] == record["quality"]["verdict"]
    assert record["gpu_tests"]["skipped"] == stages["tests"]["skipped"] > 0  # the tests' counts reach the record
    assert "tests/test_gpu.py on the same machine: 0 passed" in plots_gpu.gpu_status([record])
    summary = (out / "summary.txt").read_text()
    assert "DRY RUN" in summary and "dry run (fake timer): no verdict" in summary
    assert re.search(r"tests\s+ok", summary) and re.search(r"benchmark\s+ok", summary)


# ------------------------------------------------------------------ the record's arithmetic and schema


def test_flop_count_follows_the_papers():
    fwd = plots_gpu.attention_flops(2, 16, 4096, 128, causal=False, mode="fwd")
    assert fwd == 4 * 2 * 16 * 4096**2 * 128
    assert plots_gpu.attention_flops(2, 16, 4096, 128, causal=True, mode="fwd") == fwd / 2
    assert plots_gpu.attention_flops(2, 16, 4096, 128, causal=False, mode="bwd") == 2.5 * fwd
    with pytest.raises(ValueError, match="mode"):
        plots_gpu.attention_flops(1, 1, 16, 16, causal=False, mode="fwd_bwd")


def _rows(tflops: dict[str, float | None]) -> list[dict]:
    return [{"backend": b, "batch": 2, "heads": 16, "seqlen": 8192, "head_dim": 128, "causal": c, "pass": p,
             "status": "ok" if t else "oom", **({"tflops": t, "ms": 1.0, "times_ms": [1.0]} if t else {})}
            for b, t in tflops.items() for c in (False, True) for p in ("fwd", "bwd")]


def test_targets_compare_triton_with_the_fastest_sdpa_kernel_of_the_same_run():
    rows = _rows({"triton": 300.0, "sdpa:flash": 250.0, "sdpa:efficient": 200.0, "sdpa:math": None})
    t = plots_gpu.targets(rows, seqlen=8192, head_dim=128, peak_tflops=1000.0)
    assert set(t) == {"fwd_full", "bwd_full", "fwd_causal", "bwd_causal"}
    assert all(v["ratio"] == 300.0 / 250.0 and v["best_sdpa"] == "sdpa:flash" and v["met"] for v in t.values())
    assert t["fwd_full"]["fraction_of_peak"] == 0.3
    missing = plots_gpu.targets(rows, seqlen=1024, head_dim=128, peak_tflops=None)["fwd_full"]
    assert missing["ratio"] is None and missing["met"] is None and missing["fraction_of_peak"] is None


def _record(**over) -> dict:
    rows = _rows({"triton": 300.0, "sdpa:flash": 400.0})
    rec = {"benchmark": "gpu_attention", "dry_run": False, "dtype": "bfloat16", "rows": rows,
           "target_shape": plots_gpu.TARGET, "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
           "environment": {"date_utc": "2027-01-01T00:00:00Z"}, "quality": {"verdict": "ok", "flags": [],
                                                                            "bounds": {"spread": 0.5}},
           "peak_bf16_tflops": 989.4, "stopped_early": None,
           "targets": plots_gpu.targets(rows, peak_tflops=989.4, **plots_gpu.TARGET)}
    return {**rec, **over}


def test_check_record_names_what_is_wrong():
    plots_gpu.check_record(_record())
    with pytest.raises(ValueError, match=r"missing \['targets'\]"):
        plots_gpu.check_record({k: v for k, v in _record().items() if k != "targets"})
    bad = _record()
    bad["rows"][0]["status"] = "fine"
    with pytest.raises(ValueError, match="row 0"):
        plots_gpu.check_record(bad)
    with pytest.raises(ValueError, match="without its GPU"):
        plots_gpu.check_record(_record(gpu=None))


def test_target_rows_say_met_only_for_a_trusted_gpu_record():
    verdicts = {r["target"]: r["verdict"] for r in plots_gpu.target_rows(_record())}
    assert verdicts["fwd full, d=128, N=8192"] == "not met"  # 300 / 400 = 0.75 < 1.0
    assert verdicts["bwd full, d=128, N=8192"] == "not met"  # 0.75 < 0.8
    flagged = _record(quality={"verdict": "flagged", "flags": ["busy"], "bounds": {}})
    assert {r["verdict"] for r in plots_gpu.target_rows(flagged)} == {"record flagged: not evidence"}
    row = plots_gpu.target_rows(_record())[0]
    assert row["Triton / fastest SDPA"] == "0.75×" and row["Triton / bf16 peak"] == "30%"


def test_status_and_readme_say_plainly_when_nothing_ran_on_a_gpu():
    assert "Not yet run on a GPU: the GPU tests" in plots_gpu.gpu_status([])
    assert "No GPU record exists yet" in plots_gpu.readme_block([])
    block = plots_gpu.readme_block([{**_record(), "_file": "gpu_attention_x.json"}])
    assert "| fwd full, d=128, N=8192 | ≥ 1.0× | 0.75× |" in block and "H100" in block
    with pytest.raises(ValueError, match="no generated GPU block"):
        plots_gpu.replace_readme_block("no markers here", block)


def test_readme_gpu_block_is_generated_from_the_records_that_exist():
    """README's table is what ``gpu_attention.py --update-readme`` makes of benchmarks/results now."""
    readme = (ROOT / "README.md").read_text()
    expected = plots_gpu.readme_block(plots_gpu.load_gpu_results(ROOT / "benchmarks" / "results"))
    assert expected in readme, "README's GPU block is stale: run python benchmarks/gpu_attention.py --update-readme"


def test_results_dir_is_the_checkouts_benchmarks_results(monkeypatch):
    from flashtrade_lib.measure.bench import RESULTS_ENV, results_dir

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    assert results_dir() == ROOT / "benchmarks" / "results"


def test_catalogue_peaks_and_ridge_points():
    from flashtrade_lib.measure import gpus

    h100 = gpus.catalogue_entry("NVIDIA H100 80GB HBM3")
    assert h100["bf16 TFLOP/s (dense)"] == 989.4 and round(gpus.ridge_point(h100)) == 295
    assert gpus.catalogue_entry("NVIDIA H100 PCIe")["bf16 TFLOP/s (dense)"] == 756
    assert gpus.catalogue_entry("NVIDIA H200")["bandwidth TB/s"] == 4.8
    assert gpus.catalogue_entry("NVIDIA H100 NVL") is None  # not the SXM part: no borrowed peak
    assert gpus.ridge_point(gpus.catalogue_entry("Tesla T4")) is None  # no bf16 tensor cores
    frame = gpus.common_gpus_frame()
    assert frame.loc["H100 SXM5 (Hopper, sm90)", "ridge FLOP/byte (bf16)"] == 295


def test_sdpa_priority_is_read_from_torch():
    from flashtrade_lib.measure.gpus import sdpa_priority_order

    order = sdpa_priority_order()
    assert order is None or {"flash_attention", "efficient_attention", "math"} <= set(order)


_COLLECT = """
import json, sys, pytest
class Grab:
    def __init__(self): self.ids = []
    def pytest_collection_finish(self, session): self.ids = [i.nodeid for i in session.items]
out = {}
for expr in [None, *json.loads(sys.argv[1])]:
    grab = Grab()
    args = ["--collect-only", "-q", "--noconftest", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_gpu.py"]
    pytest.main(args + (["-k", expr] if expr else []), plugins=[grab])
    out[expr or "all"] = grab.ids
print(json.dumps(out))
"""


@pytest.mark.slow
def test_the_test_shards_split_the_gpu_tests_exactly():
    """Every GPU test runs in exactly one shard (so the parallel run neither skips nor repeats one)."""
    check = _module("gpu_check")
    proc = subprocess.run([sys.executable, "-c", _COLLECT, json.dumps(list(check.SHARDS))], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    every = ids.pop("all")
    shards = [set(v) for v in ids.values()]
    assert len(every) > 50 and sum(map(len, shards)) == len(every) and set().union(*shards) == set(every)


def test_the_chapters_gpu_section_reads_a_record(tmp_path):
    """What chapter 4 does with a GPU record once one exists: load it, state it, tabulate and plot it."""
    (tmp_path / "gpu_attention_h100_2027-01-01.json").write_text(json.dumps(_record()))
    (record,) = plots_gpu.load_gpu_results(tmp_path)
    status = plots_gpu.gpu_status([record])
    assert "NVIDIA H100 80GB HBM3 (sm9.0)" in status and "the GPU tests were not run with it" in status
    fig = plots_gpu.plot_tflops(record, head_dim=128)
    assert {t.name for t in fig.data} == {"triton", "sdpa:flash"} and "H100" in fig.layout.title.text
    (tmp_path / "gpu_attention_broken.json").write_text(json.dumps({"benchmark": "gpu_attention"}))
    with pytest.raises(ValueError, match="gpu_attention_broken.json: not a gpu_attention record"):
        plots_gpu.load_gpu_results(tmp_path)
