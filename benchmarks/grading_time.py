"""How long the course kit takes to grade one submission, per chapter: the course guide's "time to grade".

    .venv/bin/python benchmarks/grading_time.py                  # every chapter with a graded exercise
    .venv/bin/python benchmarks/grading_time.py --chapters 03

For each chapter the script releases it as an nbgrader assignment
(:func:`flashtrade_lib.course.release.release`, no student wheel), writes two
submissions (:func:`flashtrade_lib.course.submissions.fill`) — **reference**: every
answer from ``course/solutions/``; **typical-wrong**: for every exercise the first typical
mistake of the solutions file that a learner could hand in as it is — and grades them with
:func:`flashtrade_lib.course.grade.grade`, exactly as ``flashtrade course grade`` does
(sandboxed kernel, per-cell limit). Grading runs the whole chapter once per
submission, so its time is the chapter's run time plus nbgrader's and the kernel's
start-up. The record keeps the seconds of every notebook graded and the points each
submission got — the reference must get them all, or the time is not of a complete
grading run and the script says so and exits 1. The machine's load is watched and the
record carries its verdict (:func:`flashtrade_lib.measure.bench.write_record`). Results go to
``benchmarks/results/grading_time.json`` (the record ``grading_time``); the course guide
shows them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

from flashtrade_lib.course.grade import grade
from flashtrade_lib.course.release import DEFAULT_CELL_TIMEOUT_S, NOTEBOOKS, exercises_in, release
from flashtrade_lib.course.solutions import load
from flashtrade_lib.course.submissions import fill, mistake_plan
from flashtrade_lib.measure.bench import add_max_wait_option, watch_machine, write_record

SUBMISSIONS = ("reference", "typical-wrong")


def graded_chapters() -> list[str]:
    """The notebooks (by name) that have at least one autograded exercise: the course guide's chapters."""
    return [path.stem for path in sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))
            if exercises_in(nbformat.read(path, 4))]


def measure(chapters: list[str], cell_timeout_s: int) -> list[dict]:
    """Grade a reference and a typical-wrong submission of each chapter, each chapter its own course."""
    solutions = load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="flashtrade-grading-time-") as tmp:
        root = Path(tmp)
        for chapter in chapters:
            course = release([chapter], root / chapter / "course", wheel=False, cell_timeout_s=cell_timeout_s)
            released, = course.notebooks
            plans = {"reference": {}, "typical-wrong": mistake_plan(released, solutions)}
            for student, plan in plans.items():
                (root / chapter / "submitted" / student).mkdir(parents=True)
                nbformat.write(fill(released, plan, solutions), root / chapter / "submitted" / student / released.name)
            exercises = [eid for eid, _ in exercises_in(nbformat.read(released, 4))]
            results = grade(course.course_dir, root / chapter / "submitted", root / chapter / "grades",
                            cell_timeout_s=cell_timeout_s)
            for r in results:
                points, seconds = sum(r.scores[e] for e in exercises), r.seconds_by_notebook.get(released.name)
                rows.append({"chapter": released.stem, "submission": r.student, "exercises": len(exercises),
                             "points": points, "seconds": seconds, "typical_mistakes": len(plans[r.student]),
                             "lost": {e: r.reasons.get(e, "the check failed") for e in exercises if not r.scores[e]}})
                print(f"{released.stem:<28} {r.student:<14} {points:g}/{len(exercises)} points in "
                      f"{seconds if seconds is not None else float('nan'):.1f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chapters", nargs="+", default=graded_chapters(),
                   help="chapter numbers or notebook names (default: every chapter with a graded exercise)")
    p.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT_S, help="seconds a graded cell may run")
    add_max_wait_option(p)
    p.add_argument("--out", default="grading_time", help="a record name (bench.results_dir() / NAME.json) or a path")
    args = p.parse_args(argv)
    with watch_machine(args.max_wait) as watch:
        rows = measure(args.chapters, args.cell_timeout)
    complete = all(r["points"] == r["exercises"] for r in rows if r["submission"] == "reference")
    write_record(args.out, {
        "benchmark": "grading_time",
        "description": "wall time of `flashtrade course grade` per submitted notebook (nbgrader autograde)",
        "settings": {"chapters": args.chapters, "cell_timeout_s": args.cell_timeout, "submissions": SUBMISSIONS},
        "rows": rows,
        "reference_gets_every_point": complete,
    }, load=watch.report)
    if not complete:
        print("the reference submission did not get every point: these are not times of a complete grading run")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
