"""How long `make test` takes from a fresh clone, stage by stage — the number the README states.

Why a benchmark and not a sentence: "the suite takes N minutes" is a speed claim like any
other, so it is measured (a fresh clone of HEAD, each stage of ``make test`` timed on its own)
and recorded with the machine, versions, date and the others' load during the run. The
README's line about the suite's time is generated from this record (``readme_line``) and a
test holds the README to it.

    .venv/bin/python benchmarks/test_suite_time.py      # make install + make test in a fresh clone
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flashtrade_lib.measure import bench

ROOT = Path(__file__).resolve().parents[1]
RECORD = "test_suite_time"
# The stages of `make test` (scripts/stage.sh names each), after `make install`. The unit
# tests run beside execute → book → outputs → browser, so the stages' times overlap and the
# suite's time is the wall time of `make install` plus `make test`, not their sum.
STAGES = ("install", "lint", "unit", "execute", "book", "outputs", "browser")
TARGET_S = 15 * 60  # the goal for the whole suite on a 2-core machine
CEILING_S = 45 * 60
STAGE_LINE = re.compile(r"^== stage (?P<name>\w+) (?P<verdict>passed|FAILED \(exit (?P<code>\d+)\)) "
                        r"in (?P<seconds>[\d.]+) s$")


def stage_times(output: str) -> dict[str, dict[str, Any]]:
    """The stages' own lines in `make test`'s output (scripts/stage.sh): seconds and exit status."""
    found: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        m = STAGE_LINE.match(line.strip())
        if m:
            found[m["name"]] = {"seconds": float(m["seconds"]), "returncode": int(m["code"] or 0)}
    return found


def run_suite(clone: Path, log: Path, make: str = "make") -> tuple[dict[str, dict[str, Any]], float]:
    """``make install`` then ``make test`` in ``clone``: each stage's time, and the whole wall time."""
    stages: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run([make, "--no-print-directory", "install"], cwd=clone, stdout=out,
                              stderr=subprocess.STDOUT, check=False)
        stages["install"] = {"seconds": round(time.perf_counter() - start, 1), "returncode": proc.returncode}
        print(f"install  {stages['install']['seconds']:8.1f} s  exit {proc.returncode}", flush=True)
        if proc.returncode == 0:
            test = subprocess.Popen([make, "--no-print-directory", "test"], cwd=clone, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            lines = []
            for line in test.stdout:  # the log is written as it runs; the stage lines are echoed here
                out.write(line)
                lines.append(line)
                if line.startswith("== stage"):
                    print(line.rstrip(), flush=True)
            test.wait()
            stages.update(stage_times("".join(lines)))
            if test.returncode and all(s["returncode"] == 0 for s in stages.values()):
                stages["test"] = {"seconds": 0.0, "returncode": test.returncode}  # failed outside a stage
    return stages, round(time.perf_counter() - start, 1)


def readme_line(record: dict[str, Any]) -> str:
    """The README's sentence about the suite's time, from the record."""
    env = record["environment"]
    minutes = {name: f"{s['seconds'] / 60:.1f}" for name, s in record["stages"].items()}
    stages = (f"install {minutes['install']}, lint {minutes['lint']}, unit tests {minutes['unit']} beside "
              f"execute {minutes['execute']} → book {minutes['book']} → outputs {minutes['outputs']} → "
              f"browser {minutes['browser']}")
    return (f"From a fresh clone, `make test` (with its install) took {record['total_s'] / 60:.1f} minutes on "
            f"{env.get('cpu_count', '?')} cores ({stages} minutes; recorded "
            f"{env.get('date_utc', '?')[:10]}, quality: {record['quality']['verdict']}).")


README_MARKERS = ("<!-- suite-time -->", "<!-- /suite-time -->")


def readme_with(readme: str, line: str) -> str:
    """``readme`` with the text between the suite-time markers replaced by ``line``."""
    start, end = README_MARKERS
    if start not in readme or end not in readme:
        raise ValueError(f"README.md has lost its {start} … {end} markers")
    head, rest = readme.split(start, 1)
    return head + start + line + end + rest.split(end, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    parser.add_argument("--out", help="record path (default: benchmarks/results/test_suite_time.json)")
    parser.add_argument("--make", default="make", help=argparse.SUPPRESS)  # the smoke test's stand-in
    bench.add_max_wait_option(parser)
    args = parser.parse_args(argv)

    clone = Path(tempfile.mkdtemp(prefix="flashtrade-suite-")) / "book"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()  # what was tested, whatever HEAD becomes meanwhile
    log = clone.parent / "make-test.log"
    print(f"fresh clone of HEAD in {clone}; log in {log}", flush=True)
    with bench.watch_machine(args.max_wait) as watch:
        stages, total = run_suite(clone, log, args.make)
    passed = all(s["returncode"] == 0 for s in stages.values()) and set(STAGES) <= set(stages)
    record: dict[str, Any] = {
        "benchmark": RECORD,
        "commit": commit,
        "stages": stages,
        "total_s": round(total, 1),
        "passed": passed,
    }
    if passed:
        record["targets"] = {
            "suite_s": {"value": total, "target": TARGET_S, "at_most": True,
                        "met": passed and total <= TARGET_S},
            "suite_ceiling_s": {"value": total, "target": CEILING_S, "at_most": True,
                                "met": passed and total <= CEILING_S},
        }
    path = bench.write_record(args.out or RECORD, record, load=watch.report)
    print(f"\ntotal {total / 60:.1f} min, {'passed' if passed else 'FAILED'}; record: {path}")
    if passed and not args.out:
        readme = ROOT / "README.md"
        readme.write_text(readme_with(readme.read_text(), readme_line(bench.load_record(path))))
        print(f"README.md updated: {readme_line(bench.load_record(path))}")
    if not args.keep:
        shutil.rmtree(clone.parent, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
