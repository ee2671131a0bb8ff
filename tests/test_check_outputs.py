"""`make test`'s notebook check: nbval's comparison of checked cells, against the book build's execution."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_outputs", ROOT / "scripts" / "check_outputs.py")
check_outputs = importlib.util.module_from_spec(spec)
sys.modules["check_outputs"] = check_outputs  # dataclasses look their module up
spec.loader.exec_module(check_outputs)

PATTERNS = check_outputs.sanitize_patterns()


def _nb(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells))


def _checked(*outputs: nbformat.NotebookNode, tags: tuple[str, ...] = ("nbval-check-output",)) -> nbformat.NotebookNode:
    cell = new_code_cell("x", metadata={"tags": list(tags)})
    cell.outputs = list(outputs)
    return cell


def _stream(text: str) -> nbformat.NotebookNode:
    return new_output("stream", name="stdout", text=text)


def test_equal_outputs_pass_and_a_changed_digit_fails() -> None:
    stored = _nb(_checked(_stream("IC 0.44\n")))
    assert check_outputs.compare_notebook(stored, _nb(_checked(_stream("IC 0.44\n"))), "nb", PATTERNS) == []
    [problem] = check_outputs.compare_notebook(stored, _nb(_checked(_stream("IC 0.45\n"))), "nb", PATTERNS)
    assert problem.cell == 0 and "0.44" in problem.what and "0.45" in problem.what


def test_streams_are_coalesced_and_volatile_text_sanitised_as_nbval_does() -> None:
    stored = _nb(_checked(_stream("took 1.5 s\nok\n")))
    fresh = _nb(_checked(_stream("took 9.25 s\n"), _stream("ok\n")))
    assert check_outputs.compare_notebook(stored, fresh, "nb", PATTERNS) == []


def test_images_are_not_compared_but_missing_fields_are() -> None:
    png = new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})
    other_png = new_output("display_data", data={"image/png": "BBBB", "text/plain": "<Figure>"})
    assert check_outputs.compare_notebook(_nb(_checked(png)), _nb(_checked(other_png)), "nb", PATTERNS) == []
    [problem] = check_outputs.compare_notebook(_nb(_checked(png)), _nb(_checked(_stream("x\n"))), "nb", PATTERNS)
    assert "output fields differ" in problem.what


def test_unchecked_cells_may_differ_but_may_not_raise() -> None:
    error = new_output("error", ename="ValueError", evalue="bad", traceback=[])
    stored = _nb(_checked(_stream("a\n"), tags=()), _checked(tags=("raises-exception",)))
    fresh = _nb(_checked(_stream("b\n"), tags=()), _checked(error, tags=("raises-exception",)))
    assert check_outputs.compare_notebook(stored, fresh, "nb", PATTERNS) == []
    [problem] = check_outputs.compare_notebook(stored, _nb(_checked(error, tags=()), fresh.cells[1]), "nb", PATTERNS)
    assert problem.cell == 0 and "ValueError: bad" in problem.what


def test_every_chapter_is_found_in_toc_order() -> None:
    found = [p.name for p in check_outputs.chapters()]
    assert found == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
