"""Command line of the course kit: ``flashtrade course sync-solutions | sync-guide | release | grade``.

    flashtrade course release 02 03 04 --out course      # student notebooks + student wheel
    flashtrade course grade --course course --submissions submitted --out grades
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from flashtrade_lib.course.solutions import REPO_ROOT


def _sync(args: argparse.Namespace) -> int:
    from flashtrade_lib.course.blocks import render_notebook
    from flashtrade_lib.course.solutions import load

    solutions = load()
    for path in sorted(Path(args.notebooks).glob("[0-9][0-9]_*.ipynb")):
        if render_notebook(path, solutions):
            print(f"rendered the solution blocks of {path}")
    return 0


def _sync_guide(args: argparse.Namespace) -> int:
    from flashtrade_lib.course.guide import sync_guide

    if sync_guide(Path(args.guide)):
        print(f"rewrote the exercise table of {args.guide}")
    return 0


def _release(args: argparse.Namespace) -> int:
    from flashtrade_lib.course.release import release

    done = release(args.chapters, Path(args.out), wheel=not args.no_wheel, cell_timeout_s=args.cell_timeout)
    print(f"student notebooks (hand these out): {done.course_dir / 'release'}")
    for path in done.notebooks:
        print(f"  {path.relative_to(done.course_dir)}")
    if done.wheel is not None:
        print(f"student install (no solutions in it; see its README.txt): {done.wheel.parent}")
    if args.no_smoke_test or done.wheel is None:
        return 0
    from flashtrade_lib.course.smoke import smoke_test

    print("smoke test: a clean virtualenv from the student install, then every released notebook, stubs unfilled…")
    report = smoke_test(done.course_dir, done.notebooks, cell_timeout_s=args.cell_timeout * 5)
    print(report.summary())
    if not report.ok:
        print("smoke test FAILED: the cells above do not run in the student install")
        return 1
    return 0


def _positive(kind: type) -> Callable[[str], float]:
    """An argparse type that refuses zero and negative values up front (0 once meant "no limit")."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _grade(args: argparse.Namespace) -> int:
    import signal

    from flashtrade_lib.course.grade import grade

    # A grader stopped by `kill` or a job scheduler (SIGTERM) unwinds as Ctrl-C does: the running
    # submission's sandbox is killed and removed (by default SIGTERM ends Python without cleanup,
    # leaving the notebook running in its namespace until its own limits end it).
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    out = Path(args.out)
    results = grade(Path(args.course), Path(args.submissions), out, cell_timeout_s=args.cell_timeout,
                    submission_timeout_s=args.submission_timeout, memory_bytes=int(args.memory_gb * 2**30),
                    user=args.grading_user, regrade=args.regrade)
    for r in results:
        print(f"{r.student}: {r.total:g} points ({r.seconds:.0f} s)")
    print(f"gradebook: {out / 'gradebook.csv'}; feedback: {out / 'feedback'}; how it ran: {out / 'grading.json'}")
    ungraded = [(r.student, name, why) for r in results for name, why in r.ungraded.items()]
    for student, name, why in ungraded:
        print(f"NOT GRADED: {student}/{name}: {why}", file=sys.stderr)
    return 1 if ungraded else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the course subcommands on ``parser`` (``flashtrade course`` uses this too)."""
    sub = parser.add_subparsers(dest="course_command", metavar="COURSE_COMMAND", required=True)
    p = sub.add_parser("sync-solutions", help="render the notebooks' {solution} blocks from course/solutions/")
    p.add_argument("--notebooks", default=str(REPO_ROOT / "notebooks"))
    p.set_defaults(func=_sync)
    p = sub.add_parser("sync-guide", help="write the course guide's exercise table from the exercise registry")
    p.add_argument("--guide", default=str(REPO_ROOT / "book" / "course_guide.md"))
    p.set_defaults(func=_sync_guide)
    p = sub.add_parser("release", help="student notebooks (solutions removed) and a student wheel")
    p.add_argument("chapters", nargs="+", help="chapter numbers or notebook names, e.g. 02 03 04")
    p.add_argument("--out", default="course_release", help="the nbgrader course folder to write")
    p.add_argument("--no-wheel", action="store_true", help="skip building the student install")
    p.add_argument("--no-smoke-test", action="store_true",
                   help="skip running the released notebooks in a clean student install (minutes)")
    p.add_argument("--cell-timeout", type=int, default=120, help="seconds a graded cell may run")
    p.set_defaults(func=_release)
    p = sub.add_parser("grade", help="autograde submissions/<student>/<chapter>.ipynb into a gradebook CSV")
    p.add_argument("--course", default="course_release", help="the folder `release` wrote")
    p.add_argument("--submissions", required=True, help="one folder per student holding their notebooks")
    p.add_argument("--out", default="grades", help="where gradebook.csv and feedback/ go")
    p.add_argument("--cell-timeout", type=_positive(int), default=120, help="seconds a cell may run (> 0)")
    p.add_argument("--submission-timeout", type=_positive(int), default=1800,
                   help="seconds one notebook may take in all (> 0)")
    p.add_argument("--memory-gb", type=_positive(float), default=6.0,
                   help="address space each process of a submission may use, GiB (>= 1)")
    p.add_argument("--grading-user", default=None,
                   help="user or uid the notebooks run as (root only; default: nobody)")
    p.add_argument("--regrade", action="store_true",
                   help="grade every notebook again (default: keep results of unchanged notebooks from out/.graded)")
    p.set_defaults(func=_grade)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flashtrade_lib.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:  # bad input, refused before anything ran: one line, as `flashtrade` prints it
        print(f"error: {exc}", file=sys.stderr)
        return 2
