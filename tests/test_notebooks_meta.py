"""Every chapter notebook follows the book's conventions (see CONTRIBUTING.md)."""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ASIDE = re.compile(r"^\d\d[a-z]_")
CHECK_TAG = "nbval-check-output"


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
    for needed in ("Learning objectives", "Prerequisites", "Estimated time", "References"):
        assert needed in text, f"{path.name}: missing a '{needed}' section"
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
