"""Give every exercise, theorem and algorithm in JupyterLab the number the book prints.

The book numbers them per chapter ("Exercise 2.1", "Algorithm 2.1"); JupyterLab's MyST
renderer counts from 1 in each notebook ("Exercise 1") unless the directive says its number
with MyST's ``:enumerator:`` option. This script writes that option into every numbered
directive of every chapter, from the book's own rule (``book/_ext/flashtrade_offline.py``:
``lab_numbers``), and ``:nonumber:`` into the proofs (the book prints "Proof", Lab would say
"Proof 1"); only those option lines change, and running it again changes nothing.
Run it after adding, removing or moving an exercise, theorem or algorithm; the book build and
``tests/test_notebooks_meta.py`` fail while a number is stale.

    .venv/bin/python scripts/number_lab.py            # stamp every chapter
    .venv/bin/python scripts/number_lab.py --check    # list stale numbers; exit 1 if any
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("flashtrade_offline", ROOT / "book" / "_ext" / "flashtrade_offline.py")
book = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(book)


def stale(path: Path) -> list[str]:
    """One line per item whose Lab number differs from the book's."""
    return [f"{path.name} cell {n.cell}: {n.kind} {n.label or ''} is {n.lab or 'unnumbered'} in JupyterLab, "
            f"{n.book or 'unnumbered'} in the book" for n in book.lab_numbers(path) if n.lab != n.book]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a number is stale")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.check:
        problems = [line for path in paths for line in stale(path)]
        print("\n".join(problems) or f"{len(paths)} notebooks: every Lab number is the book's")
        return 1 if problems else 0
    for path in paths:
        if book.stamp_lab_numbers(path):
            print(f"numbered {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
