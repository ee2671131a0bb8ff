"""Static checks of the built HTML book (run after `make book`)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

pytestmark = pytest.mark.book

REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)


def _pages(built_book):
    return sorted(p for p in built_book.rglob("*.html") if "_static" not in p.parts)


def test_no_page_loads_anything_from_the_network(built_book) -> None:
    offenders = {}
    for page in _pages(built_book):
        hits = REMOTE.findall(page.read_text(encoding="utf-8"))
        if hits:
            offenders[str(page.relative_to(built_book))] = hits[:3]
    assert not offenders, f"pages load remote resources: {offenders}"


def test_local_assets_are_present(built_book) -> None:
    assert (built_book / "_static" / "plotly.min.js").is_file()
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_every_notebook_has_a_page(built_book) -> None:
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (built_book / "notebooks" / f"{nb.stem}.html").is_file(), f"no page for {nb.name}"


def test_plotly_figures_survived_into_the_pages(built_book) -> None:
    """Jupyter Book silently drops plotly's default output: every plotly notebook must show a figure."""
    import nbformat

    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        uses_plotly = any("plotly" in c.source for c in nb.cells if c.cell_type == "code")
        html = (built_book / "notebooks" / f"{nb_path.stem}.html").read_text(encoding="utf-8")
        if uses_plotly:
            assert "Plotly.newPlot" in html, f"{nb_path.name} uses plotly but its page has no figure"
        assert "unknown output mime type" not in html.lower()
