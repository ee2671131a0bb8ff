"""The whole GPU check in one call: install, GPU tests, GPU benchmark, one summary — within 7 minutes.

    bash benchmarks/gpu_check.sh OUT_DIR              # on a GPU machine (H100/H200, no network;
                                                      # the device tool returns files under $OUT: "$OUT/check")
    bash benchmarks/gpu_check.sh --dry-run OUT_DIR    # every stage on the CPU at tiny sizes (CI)

A lent GPU comes for minutes, each start costing some: this script spends them measuring, not
debugging. Every step that can be checked without a GPU is checked by the dry run in CI
(``tests/test_gpu_check.py``). Stages run one after another, each in its own process with
its own time budget; a stage that overruns is stopped and recorded as ``"timeout"``, and the
next stage still runs. Everything goes under OUT_DIR: one log per stage, ``stages.json``,
the pytest report, the benchmark's JSON record and ``summary.txt``.

=========  ==========  ========  ============================================================
stage      estimate    budget    what
=========  ==========  ========  ============================================================
preflight  5 s         20 s      Python, torch, CUDA, triton; which modules are importable
install    15 s        40 s      ``pip install --no-deps --no-build-isolation --target`` of a
                                 copy of the checkout, onto the machine's own torch/triton
tests      120 s       140 s     ``pytest -m gpu tests/test_gpu.py`` against the installed copy,
                                 as 6 parallel shards (compiling is most of it: one core each)
benchmark  170 s       200 s     ``benchmarks/gpu_attention.py``: fwd/bwd, causal or not,
                                 d 64/128, N 1k–16k, bf16, every backend; its own deadline
                                 stops new measurements 20 s before the budget
summary    < 1 s       —         the targets table (ratio, TFLOP/s, fraction of the bf16 peak)
=========  ==========  ========  ============================================================

Budgets add up to 400 s (6 min 40 s) of GPU time. The estimates are reasoned, not yet measured
(no GPU has run this script): most of both stages is Triton compiling and autotuning — about 160
kernel compilations for the tests (12 specialisations × 12 configurations, plus pinned tilings),
at 1–3 s each spread over 6 shards, and about 50 compilations plus some 240 timed passes of
3 × 50 ms for the benchmark. The first GPU run replaces them with its ``stages.json``.
``BUDGETS`` below is the one source of these numbers (a test adds them up).

The installed copy is what the tests and the benchmark import (``python -P`` keeps the
checkout's own ``flashtrade_lib`` off ``sys.path``), so a packaging mistake shows here.
pytest runs with ``--noconftest``: the GPU tests need neither the hypothesis profile nor the
book fixtures of ``tests/conftest.py``, and the machine has no network for the guard to
block. Needed on the machine: torch, triton, numpy, scipy, pytest (preflight says which are
missing; ``--wheels DIR`` installs missing ones from local wheel files, offline).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUDGETS = {"preflight": 20, "install": 40, "tests": 140, "benchmark": 200}
"""Seconds each stage may run before it is stopped (the table in the module docstring)."""
ESTIMATES = {"preflight": 5, "install": 15, "tests": 120, "benchmark": 170}
"""Seconds each stage is expected to take on an H100."""
BENCHMARK_MARGIN_S = 20
"""The benchmark stops starting measurements this long before its budget, so it writes its record."""
GPU_BUDGET_S = 7 * 60

NEEDED = ("torch", "triton", "numpy", "scipy", "pytest")


@dataclass
class StageResult:
    name: str
    status: str  # "ok", "failed", "timeout", "not run"
    budget_s: float
    elapsed_s: float
    returncode: int | None
    command: list[str]
    log: str
    note: str = ""


def _copy_checkout(dest: Path) -> None:
    """The files a build needs, without venvs, build output or caches (the checkout stays clean)."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "_build", "build", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".ruff_cache", ".hypothesis", "notebooks", "book", "tests")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def _run_stage(name: str, command: list[str], out: Path, env: dict[str, str], *, budget_s: float,
               cwd: Path = ROOT) -> StageResult:
    """Run one stage in its own process group; stop the whole group when it overruns its budget."""
    log = out / f"{name}.log"
    shown = " ".join(c if len(c) < 120 else c[:40] + "…" for c in command)
    print(f"== {name} (budget {budget_s:g} s): {shown}", flush=True)
    start = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=budget_s)
            status = "ok" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code, status = None, "timeout"
            f.write(f"\n[gpu_check] stopped: the stage ran past its budget of {budget_s:g} s\n")
    elapsed = time.monotonic() - start
    tail = log.read_text().strip().splitlines()[-3:]
    print(f"   {status} in {elapsed:.1f} s — {' | '.join(tail)[:400]}", flush=True)
    return StageResult(name, status, budget_s, round(elapsed, 1), code, command, log.name)


def _preflight_code() -> str:
    return (
        "import importlib.util, json, platform, sys\n"
        f"needed = {NEEDED!r}\n"
        "found = {m: importlib.util.find_spec(m) is not None for m in needed}\n"
        "info = {'python': platform.python_version(), 'executable': sys.executable, 'modules': found}\n"
        "if found['torch']:\n"
        "    import torch\n"
        "    info['torch'] = torch.__version__; info['cuda'] = torch.version.cuda\n"
        "    info['cuda_available'] = torch.cuda.is_available()\n"
        "    if info['cuda_available']:\n"
        "        p = torch.cuda.get_device_properties(0)\n"
        "        info['gpu'] = f'{p.name} (sm{p.major}{p.minor}), {p.total_memory / 2**30:.0f} GiB'\n"
        "if found['triton']:\n"
        "    import triton; info['triton'] = triton.__version__\n"
        "print(json.dumps(info, indent=1))\n"
        "missing = [m for m, ok in found.items() if not ok]\n"
        "if missing:\n"
        "    sys.exit(f'missing on this machine: {missing}; install them from wheel files with --wheels DIR')\n"
    )


def _junit_counts(paths: list[Path]) -> dict[str, int] | None:
    """passed / failed / errors / skipped summed over pytest's JUnit reports (``None`` when none was written)."""
    if not paths:
        return None
    import xml.etree.ElementTree as ET

    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for path in paths:
        root = ET.parse(path).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        for k in counts:
            counts[k] += int(suite.get(k, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["reports"] = len(paths)
    return counts


SHARDS = (  # -k expressions that split tests/test_gpu.py by the kernels each part compiles
    "bf16 and full", "bf16 and causal", "fp16 and full", "fp16 and causal",
    "not bf16 and not fp16 and not causal", "not bf16 and not fp16 and causal",
)
"""The GPU tests run as parallel pytest processes, one per shard. Most of their time is Triton
compiling each autotuned configuration (one CPU core per compile), and the machine has 16 cores:
shards split by dtype and mask compile disjoint specialisations side by side."""
DRY_RUN_SHARDS = 2


def run_test_shards(out: Path, pytest_cmd: list[str], shards: list[str]) -> int:
    """The tests stage: one pytest process per ``-k`` shard, all at once; a JUnit report and a log each."""
    procs = []
    for i, expr in enumerate(shards):
        log = open(out / f"tests-{i}.log", "w")
        cmd = [*pytest_cmd, "-k", expr, f"--junitxml={out / f'tests-{i}.xml'}"]
        procs.append((expr, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log))
    worst = 0
    for expr, proc, log in procs:
        code = proc.wait()
        log.close()
        last = (Path(log.name).read_text().strip().splitlines() or [""])[-1]
        print(f"shard {expr!r}: exit {code} — {last}", flush=True)
        worst = max(worst, 0 if code in (0, 5) else code)  # 5: nothing selected in this shard
    return worst


MIN_SETUPTOOLS = 77
"""pyproject's ``license = "MIT"`` (PEP 639) needs setuptools 77 or newer to build."""


def install_into(site: Path, src: Path, wheels: list[Path]) -> str:
    """The install stage (run by the machine's Python): this checkout, and any given wheels, into ``site``.

    ``pip install --no-deps --no-build-isolation --no-index --target`` when the machine's
    setuptools can build the checkout. When it cannot (missing, or older than
    :data:`MIN_SETUPTOOLS`), the package is pure Python, so the same layout is made by copying
    pyproject's ``package-dir`` mapping — and the log says which way was taken.
    """
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), "--quiet"]
    if wheels:  # (needs pip)
        subprocess.run([*pip, *map(str, wheels)], check=True)
    try:
        import setuptools

        version = setuptools.__version__
    except ImportError:
        version = None
    has_pip = importlib.util.find_spec("pip") is not None
    if version and int(version.split(".")[0]) >= MIN_SETUPTOOLS and has_pip:
        subprocess.run([*pip, "--no-build-isolation", str(src)], check=True)
        return f"installed with pip, built by setuptools {version}"
    import tomllib

    mapping = tomllib.loads((src / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in sorted(mapping.items()):  # parents before their sub-packages
        shutil.copytree(src / folder, site / package.replace(".", "/"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    why = "pip is missing" if not has_pip else (
        f"setuptools {version or 'is missing'}: cannot build this pyproject (needs >= {MIN_SETUPTOOLS})")
    return f"{why}; installed by copying its package-dir mapping {mapping}"


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--install-into"]:  # the install stage, in the machine's Python
        site, src, *wheels = map(Path, sys.argv[2:])
        print(install_into(site, src, wheels), flush=True)
        return 0
    if argv is None and sys.argv[1:2] == ["--test-shards"]:  # the tests stage, in the machine's Python
        out, n = Path(sys.argv[2]), int(sys.argv[3])
        return run_test_shards(out, sys.argv[5:], list(SHARDS[:n]) if n < len(SHARDS) else list(SHARDS))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for every log and record (created; must be empty or new)")
    parser.add_argument("--dry-run", action="store_true", help="every stage on the CPU at tiny sizes (fake timer)")
    parser.add_argument("--python", default=sys.executable, help="the machine's Python (default: this one)")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="a folder of wheel files for modules the machine lacks (installed offline)")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} is not empty: give a new folder, so no record is mixed with an older run's")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))  # the build copy and the installed copy: not results
    site = work / "site"
    py = [args.python, "-P"]  # -P: the checkout's own flashtrade_lib must not shadow the installed copy
    env = {**os.environ, "PYTHONPATH": str(site), "FLASHTRADE_RESULTS": str(out), "PYTHONUNBUFFERED": "1",
           "TRITON_DEFAULT_FP_FUSION": os.environ.get("TRITON_DEFAULT_FP_FUSION", "1")}
    if args.dry_run:
        env["TRITON_INTERPRET"] = "1"
    t0 = time.monotonic()
    results: list[StageResult] = []

    def stage(name: str, command: list[str], **kw) -> StageResult:
        r = _run_stage(name, command, out, env, budget_s=BUDGETS[name], **kw)
        results.append(r)
        return r

    stage("preflight", [*py, "-c", _preflight_code()])

    build = work / "src"
    _copy_checkout(build)
    install = [*py, str(Path(__file__).resolve()), "--install-into", str(site), str(build)]
    if args.wheels:
        install += [str(w) for w in sorted(args.wheels.glob("*.whl"))]
    r = stage("install", install)
    shutil.rmtree(build, ignore_errors=True)
    installed = r.status == "ok"

    shards = DRY_RUN_SHARDS if args.dry_run else len(SHARDS)
    tests = [*py, str(Path(__file__).resolve()), "--test-shards", str(out), str(shards), "--",
             *py, "-m", "pytest", "--noconftest", "-p", "no:cacheprovider", "-m", "gpu", "-v", "-rfEs",
             "--durations=5", "tests/test_gpu.py"]
    bench = [*py, "benchmarks/gpu_attention.py", "--max-wait", "0" if args.dry_run else "5",
             "--deadline-s", str(BUDGETS["benchmark"] - BENCHMARK_MARGIN_S)]
    if args.dry_run:  # the tests collect and skip (no CUDA): the run proves they import the installed copy
        bench += ["--dry-run", "--out", str(out / "gpu_attention_cpu-dry-run.json")]
    bench += ["--gpu-tests", str(out / "tests.json")]  # the tests' counts go into the benchmark's record
    for name, command in (("tests", tests), ("benchmark", bench)):
        if installed:
            stage(name, command)
            if name == "tests":
                (out / "tests.json").write_text(json.dumps(_junit_counts(sorted(out.glob("tests-*.xml")))))
        else:
            results.append(StageResult(name, "not run", BUDGETS[name], 0.0, None, command, "",
                                       "the install stage failed: nothing to test"))

    counts = _junit_counts(sorted(out.glob("tests-*.xml")))
    records = sorted(out.glob("gpu_attention*.json"))
    summary = {
        "dry_run": args.dry_run,
        "total_s": round(time.monotonic() - t0, 1),
        "budget_s": sum(BUDGETS.values()),
        "stages": [asdict(r) for r in results],
        "tests": counts,
        "benchmark_records": [p.name for p in records],
    }
    (out / "stages.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = _summary_text(summary, records, site)
    (out / "summary.txt").write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print("\n" + text, flush=True)
    return 0 if all(r.status == "ok" for r in results) else 1


def _summary_text(summary: dict, records: list[Path], site: Path) -> str:
    """One table of stages, the test counts and the benchmark's targets (read back from its record)."""
    lines = [f"GPU check{' (DRY RUN on the CPU: nothing measured)' if summary['dry_run'] else ''} — "
             f"{summary['total_s']:.0f} s of a {summary['budget_s']} s budget",
             f"{'stage':10s} {'status':8s} {'took':>7s} {'budget':>7s}"]
    for s in summary["stages"]:
        lines.append(f"{s['name']:10s} {s['status']:8s} {s['elapsed_s']:6.1f}s {s['budget_s']:6.0f}s {s['note']}")
    c = summary["tests"]
    lines.append("tests: " + ("no report (the stage did not finish)" if c is None else
                              f"{c['passed']} passed, {c['failures']} failed, {c['errors']} errors, "
                              f"{c['skipped']} skipped (from {c['reports']} shard reports)"))
    if not records:
        lines.append("benchmark: no record was written")
        return "\n".join(lines)
    sys.path.insert(0, str(site))  # read the record with the installed copy's own code
    if importlib.util.find_spec("flashtrade_lib") is None:
        return "\n".join([*lines, f"benchmark record(s): {[p.name for p in records]} (flashtrade_lib not importable)"])
    from flashtrade_lib.measure.bench import load_record
    from flashtrade_lib.measure.plots_gpu import check_record, format_targets

    for path in records:
        try:
            record = load_record(path)
            check_record(record, path.name)
            lines += ["", f"benchmark record: {path.name}", format_targets(record)]
        except (ValueError, KeyError, json.JSONDecodeError) as exc:  # say so; the stages table is already out
            lines += ["", f"benchmark record {path.name} cannot be read: {type(exc).__name__}: {exc}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
