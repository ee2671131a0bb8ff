"""Command line of the course kit: ``flashtrade course sync-solutions | release | grade``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the course subcommands on ``parser`` (used by ``flashtrade course`` too)."""
    sub = parser.add_subparsers(dest="course_command", required=True)
    sync = sub.add_parser("sync-solutions", help="render the notebooks' {solution} blocks from course/solutions/")
    sync.add_argument("--notebooks", default=str(REPO_ROOT / "notebooks"))
    sync.set_defaults(run=_sync)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flashtrade_lib.course", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return args.run(args)
