"""Execute notebooks and keep only the outputs nbval compares.

    .venv/bin/python scripts/refresh_notebooks.py notebooks/02_online_softmax.ipynb [...]
    .venv/bin/python scripts/refresh_notebooks.py --strip-only notebooks/*.ipynb

Each notebook is executed top to bottom in a fresh kernel with the same IPython
start-up the book build and nbval use (offline guard, book plotly renderer). Then
every output and execution count is dropped except in cells tagged
``nbval-check-output`` (whose stored output nbval compares), and the file is
written back. Run it after editing a notebook, before committing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHECK_TAG = "nbval-check-output"


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # nbval skips (and fails) a checked cell with outputs but no execution count,
        # so checked cells keep theirs; every other cell is stripped.
        if CHECK_TAG not in cell.metadata.get("tags", []):
            cell.execution_count = None
            cell.outputs = []
        else:
            cell.outputs = _merge_streams(cell.outputs)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def _merge_streams(outputs: list) -> list:
    """One stdout block per run of prints: how they were flushed is noise in a diff."""
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.output_type == "stream" and prev is not None and prev.output_type == "stream"
                and prev.name == out.name):
            prev.text += out.text
        else:
            merged.append(out)
    return merged


def execute(nb: nbformat.NotebookNode, path: Path, timeout: int) -> None:
    os.environ["IPYTHONDIR"] = str(ROOT / "book" / "ipython")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--strip-only", action="store_true", help="do not execute, only strip outputs")
    parser.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if not args.strip_only:
            print(f"executing {path} ...", flush=True)
            execute(nb, path, args.timeout)
        nbformat.write(strip(nb), path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
