"""Check the chapters' checked outputs against an execution — nbval's comparison, without nbval's run.

Why: ``make test`` builds the book, and the build executes every chapter (myst-nb, into
``_build/.jupyter_cache``). Executing them a second time under nbval only to compare the cells
tagged ``nbval-check-output`` doubled the notebooks' share of the suite. This script compares
those cells — with nbval's own stream handling, skipped keys and the sanitize patterns of
``tests/nbval_sanitize.cfg`` — against the outputs the build produced, and fails on any cell
that raised without a ``raises-exception`` tag.

It also executes the chapters itself, for the portability check: a checked output must state a
fact that holds on any x86 CPU and thread count, so ``--execute`` runs every chapter with a
different CPU capability and thread count (``make portability``) and compares the same cells::

    python scripts/check_outputs.py --cache _build/.jupyter_cache      # after the book build
    python scripts/check_outputs.py --execute --capability default --threads 1
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml
from nbval.plugin import coalesce_streams, get_sanitize_patterns, transform_streams_for_comparison

ROOT = Path(__file__).resolve().parents[1]
SANITIZE_FILE = ROOT / "tests" / "nbval_sanitize.cfg"
CHECK_TAG = "nbval-check-output"
# The keys nbval leaves out of a comparison (its defaults without --nbdime).
SKIP_KEYS = frozenset({
    "metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
    "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg",
})


@dataclass(frozen=True)
class Mismatch:
    """One checked cell whose fresh output is not its stored output (or a cell that raised)."""

    notebook: str
    cell: int
    what: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell}: {self.what}"


def chapters() -> list[Path]:
    """Every notebook of the book, in table-of-contents order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def use_threads(n: int) -> None:
    """Kernels started from here on use ``n`` CPU threads (torch, MKL and OpenBLAS read these at import)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


def sanitize_patterns(path: Path = SANITIZE_FILE) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of the sanitize file, read by nbval's own reader."""
    return get_sanitize_patterns(path.read_text())


def _flatten(outputs: list, patterns: list[tuple[str, str]]) -> dict[str, list]:
    """nbval's view of a cell's outputs: every key (data flattened by MIME type) -> its values."""

    def clean(value: object) -> object:
        if isinstance(value, str):
            for regex, replace in patterns:
                value = re.sub(regex, replace, value)
        return value

    flat: dict[str, list] = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(outputs)):
        for key, value in output.items():
            if key in SKIP_KEYS:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIP_KEYS:
                        flat[mime].append(clean(data))
            else:
                flat[key].append(clean(value))
    return flat


def compare_cell(stored: list, fresh: list, patterns: list[tuple[str, str]]) -> str | None:
    """None when nbval would accept ``fresh`` for a cell that stores ``stored``; else why not."""
    ref, test = _flatten(stored, patterns), _flatten(fresh, patterns)
    if set(ref) != set(test):
        return f"output fields differ: stored {sorted(ref)}, fresh {sorted(test)}"
    for key, ref_values in ref.items():
        if ref_values != test[key]:
            return (f"{key} differs\n--- stored\n{''.join(map(str, ref_values))}\n"
                    f"+++ fresh\n{''.join(map(str, test[key]))}")
    return None


def compare_notebook(stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode, name: str,
                     patterns: list[tuple[str, str]]) -> list[Mismatch]:
    """Every checked cell compared, and every cell that raised without leave to."""
    if len(stored.cells) != len(fresh.cells):
        return [Mismatch(name, -1, f"{len(stored.cells)} cells stored, {len(fresh.cells)} executed")]
    problems = []
    for index, (cell, ran) in enumerate(zip(stored.cells, fresh.cells, strict=True)):
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        errors = [o for o in ran.get("outputs", []) if o.get("output_type") == "error"]
        if errors and "raises-exception" not in tags:
            problems.append(Mismatch(name, index, f"raised {errors[0].get('ename')}: {errors[0].get('evalue')}"))
        if CHECK_TAG in tags:
            why = compare_cell(cell.get("outputs", []), ran.get("outputs", []), patterns)
            if why:
                problems.append(Mismatch(name, index, why))
    return problems


def executed_from_cache(path: Path, cache_dir: Path) -> nbformat.NotebookNode:
    """The execution of ``path`` that the book build stored in its jupyter-cache."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir)
    try:
        _, merged = cache.merge_match_into_notebook(nbformat.read(path, nbformat.NO_CONVERT))
    except KeyError:
        raise SystemExit(f"{path.relative_to(ROOT)} has no execution in {cache_dir} that matches "
                         "its code: build the book first (make book)") from None
    return merged


def execute(path: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in a fresh kernel, as the book build does (book/ipython profile)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, nbformat.NO_CONVERT)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cache", type=Path, help="the book build's jupyter-cache folder")
    source.add_argument("--execute", action="store_true", help="execute every chapter here")
    parser.add_argument("--capability", help="ATEN_CPU_CAPABILITY for --execute (e.g. default, avx2)")
    parser.add_argument("--threads", type=int, help="CPU threads for --execute (OMP/MKL/torch)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args(argv)
    if args.capability:
        os.environ["ATEN_CPU_CAPABILITY"] = args.capability
    if args.threads:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        use_threads(args.threads)
    os.environ.setdefault("IPYTHONDIR", str(ROOT / "book" / "ipython"))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    patterns = sanitize_patterns()
    notebooks = [p.resolve() for p in args.notebooks] or chapters()
    problems: list[Mismatch] = []
    checked = 0
    for path in notebooks:
        start = time.perf_counter()
        stored = nbformat.read(path, nbformat.NO_CONVERT)
        name = str(path.relative_to(ROOT))
        try:
            fresh = executed_from_cache(path, args.cache) if args.cache else execute(path)
        except Exception as exc:  # noqa: BLE001 — a dead kernel or a timeout is reported per notebook
            found = [Mismatch(name, -1, f"could not be executed: {type(exc).__name__}: {exc}")]
        else:
            found = compare_notebook(stored, fresh, name, patterns)
        cells = sum(CHECK_TAG in c.metadata.get("tags", []) for c in stored.cells)
        checked += cells
        problems += found
        print(f"{path.relative_to(ROOT)}: {cells} checked cells, "
              f"{'ok' if not found else f'{len(found)} problems'} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    for problem in problems:
        print(f"\nFAILED {problem}", file=sys.stderr)
    where = (f"executed with ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'native')}, "
             f"threads={os.environ.get('OMP_NUM_THREADS', 'default')}" if args.execute
             else f"from {args.cache}")
    print(f"\n{checked} checked cells in {len(notebooks)} notebooks ({where}): "
          f"{'all hold' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
