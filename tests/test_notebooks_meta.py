"""Every chapter notebook follows the book's conventions (see CONTRIBUTING.md)."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ASIDE = re.compile(r"^\d\d[a-z]_")
CHECK_TAG = "nbval-check-output"
# the opening of every chapter, in this order (d2l/QuantEcon-style: the same first screen everywhere)
OPENING = ("**What you will learn**", "**Prerequisites**: ", "**Estimated time**: ")
# "## k. Title" numbers a chapter's sections 1, 2, …; these headings frame a chapter and carry no number
UNNUMBERED = {"Parameters", "Exercise", "Exercises", "Summary", "Next", "References"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_checked_cells_keep_outputs(path) -> None:
    nb = nbformat.read(path, as_version=4)
    offenders = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.outputs and CHECK_TAG not in cell.metadata.get("tags", [])
    ]
    assert not offenders, (
        f"{path.name}: cells {offenders} keep outputs but are not tagged {CHECK_TAG}; "
        "run scripts/refresh_notebooks.py on it"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_cells_have_stored_output(path) -> None:
    """A checked cell with no stored output would make nbval compare nothing."""
    nb = nbformat.read(path, as_version=4)
    empty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []) and not cell.outputs
    ]
    assert not empty, f"{path.name}: checked cells {empty} have no stored output to compare"
    uncounted = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", []) and cell.execution_count is None
    ]
    assert not uncounted, f"{path.name}: checked cells {uncounted} lack an execution count (nbval then fails them)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_front_matter(path) -> None:
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), f"{path.name}: start with a # title"
    title = first.source.splitlines()[0]
    assert "$" not in title, (
        f"{path.name}: no math in the title — it appears in the navigation of every page, "
        "and pages without math don't load MathJax (use Unicode, e.g. N²)"
    )
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## References" in text, f"{path.name}: missing a '## References' section"
    assert CHECK_TAG in "".join(str(c.metadata.get("tags", [])) for c in nb.cells), (
        f"{path.name}: no cell is tagged {CHECK_TAG}, so nbval would check nothing in it"
    )


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if not p.name.startswith("00_")], ids=lambda p: p.name)
def test_chapters_have_parameters_and_exercises(path) -> None:
    nb = nbformat.read(path, as_version=4)
    tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
    assert "parameters" in tags, f"{path.name}: needs a cell tagged 'parameters' with the run sizes"
    if ASIDE.match(path.name):  # an aside (01a_first_touch) is optional reading a chapter links to: no exercises
        assert nb.cells[0].source.startswith("# Aside"), f"{path.name}: an aside's title starts with 'Aside'"
        return
    text = "\n".join(c.source for c in nb.cells)
    assert "{exercise}" in text and "{solution}" in text, f"{path.name}: needs exercises with solutions"
    assert "check(" in text, f"{path.name}: exercises need automatic checks (flashtrade_lib.exercises.check)"


def _headings(cells) -> list[str]:
    """The ``## `` headings of markdown cells, outside fenced blocks (directives, code)."""
    found = []
    for cell in cells:
        if cell.cell_type != "markdown":
            continue
        fence = None
        for line in cell.source.splitlines():
            mark = re.match(r"^(`{3,}|:{3,})", line)
            if mark:
                fence = None if fence and mark.group(1).startswith(fence) else (fence or mark.group(1))
            elif fence is None and line.startswith("## "):
                found.append(line[3:])
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_opens_the_same_way(path) -> None:
    """Title and what you will learn; a Parameters heading; the parameters cell; the imports (folded).

    So a reader finds the same first screen in every chapter, and the knobs of a run before
    anything else. The parameters cell runs first, on its own (tests exec it alone): it imports
    what it uses.
    """
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) > 4, f"{path.name}: too short for the chapter opening"
    title, heading, params, imports = nb.cells[:4]
    where = [title.source.find(label) for label in OPENING]
    assert title.cell_type == "markdown" and -1 not in where and where == sorted(where), (
        f"{path.name}: the first cell is '# Title', an introduction, then '**What you will learn**' (a list), "
        "'**Prerequisites**: …' and '**Estimated time**: …', in that order")
    learn = title.source[where[0] + len(OPENING[0]):where[1]].strip().splitlines()
    assert learn and learn[0].startswith("- "), f"{path.name}: 'What you will learn' is a '- ' list"
    assert heading.cell_type == "markdown" and heading.source.splitlines()[0] == "## Parameters", (
        f"{path.name}: cell 1 is the '## Parameters' heading (cell 2 the parameters, cell 3 the imports)")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [2], f"{path.name}: exactly one cell is tagged 'parameters', cell 2 (found {tagged})"
    assert params.cell_type == "code" and imports.cell_type == "code", f"{path.name}: cells 2 and 3 are code"
    first = ast.parse(imports.source).body
    assert first and isinstance(first[0], ast.Import | ast.ImportFrom), f"{path.name}: cell 3 starts with the imports"
    folded = ("hide-input" in imports.metadata.get("tags", []), imports.metadata.get("jupyter", {}).get("source_hidden"),
              imports.metadata.get("mystnb", {}).get("code_prompt_show"))
    assert folded == (True, True, "Show the imports"), (
        f"{path.name}: the imports are folded, in the book (tag hide-input, mystnb.code_prompt_show "
        f"'Show the imports') and in Lab (jupyter.source_hidden); found {folded}")
    numbered = [h for h in _headings(nb.cells[4:]) if h not in UNNUMBERED]
    expected = [f"{k}. " for k in range(1, len(numbered) + 1)]
    wrong = [h for h, k in zip(numbered, expected, strict=True) if not h.startswith(k)]
    assert not wrong, f"{path.name}: sections are numbered '## 1. …', '## 2. …' in order; not so: {wrong}"
    assert _headings([heading]) == ["Parameters"], f"{path.name}: the Parameters cell has one heading"


def _book_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("flashtrade_offline", ROOT / "book" / "_ext" / "flashtrade_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lab_shows_the_books_numbers(path) -> None:
    """JupyterLab says "Exercise 2.1" / "Algorithm 2.1" where the book does (MyST's ``:enumerator:``)."""
    items = _book_extension().lab_numbers(path)
    unlabelled = [n.cell for n in items if n.book and not n.label]
    assert not unlabelled, f"{path.name}: numbered items in cells {unlabelled} need a :label:"
    stale = [f"{n.kind} {n.label or ''}: Lab {n.lab or 'unnumbered'}, book {n.book or 'unnumbered'}"
             for n in items if n.lab != n.book]
    assert not stale, f"{path.name}: {stale}; run .venv/bin/python scripts/number_lab.py"
