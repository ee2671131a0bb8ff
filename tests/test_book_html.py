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


def test_plotly_js_is_loaded_where_a_figure_is_drawn_and_nowhere_else(built_book) -> None:
    """plotly.min.js (3.5 MB to parse on every load) is in the head of each page with a figure, and only there."""
    script = re.compile(r'<script src="(?:\.\./)*_static/plotly\.min\.js"></script>')
    drawn = 0
    for page in _pages(built_book):
        html = page.read_text(encoding="utf-8")
        head, _, body = html.partition("</head>")
        has_figure = "Plotly.newPlot" in body
        drawn += has_figure
        assert bool(script.search(head)) == has_figure, (
            f"{page.relative_to(built_book)}: {'a figure but no' if has_figure else 'no figure but'} plotly.min.js")
    assert drawn >= 5, f"only {drawn} pages draw a plotly figure"


def _chapters(built_book):
    return sorted((built_book / "notebooks").glob("[0-9][0-9]_*.html"))


def test_exercises_are_numbered_per_chapter(built_book) -> None:
    """A course cites "Exercise 8.2": every exercise of chapter N is numbered N.1, N.2, ..."""
    numbered = 0
    for page in _chapters(built_book):
        chapter = int(page.name[:2])
        found = re.findall(r"Exercise (\d+(?:\.\d+)*)", _titles_of(page, "exercise"))
        expected = [f"{chapter}.{k}" for k in range(1, len(found) + 1)]
        assert found == expected, f"{page.name}: exercises numbered {found}, expected {expected}"
        numbered += len(found)
    assert numbered, "no numbered exercise anywhere in the book"


def _titles_of(page, kind: str) -> str:
    """The title lines of every `kind` admonition (exercise, solution, ...) on a page."""
    html = page.read_text(encoding="utf-8")
    blocks = re.findall(rf'<div class="{kind} admonition"[^>]*>\s*<p class="admonition-title">(.*?)</p>', html, re.S)
    return "\n".join(re.sub(r"<[^>]+>", "", b) for b in blocks)


def test_the_readers_path_runs_through_the_chapters_in_order(built_book) -> None:
    """Previous/Next: 0 -> 1 -> ... -> 10, each aside (01a, ...) after its chapter; instructors'
    material is not in between."""
    chapters = sorted((built_book / "notebooks").glob("[0-9][0-9]*_*.html"))  # "01_…" < "01a_…" < "02_…"
    for prev, page in zip(chapters, chapters[1:], strict=False):
        html = page.read_text(encoding="utf-8")
        link = re.search(r'<a class="left-prev"\s+href="([^"]+)"', html)
        assert link and link.group(1) == prev.name, f"{page.name}: 'Previous' is {link and link.group(1)}"


def test_pages_use_no_emoji(built_book) -> None:
    """Glyphs that render everywhere: an emoji is a missing-glyph box without an emoji font.

    (Characters with emoji presentation by default; text dingbats such as ✔ are in
    ordinary fonts and fine.)
    """
    emoji = re.compile("[\U0001F000-\U0001FAFF\u2705\u274C\u274E\u2753-\u2755\u2757\u2B50\u2B55"
                       "\u231A\u231B\u23E9-\u23F3\u2614\u2615]")
    offenders = {}
    for page in _pages(built_book):
        text = re.sub(r"<(script|style)\b.*?</\1>", "", page.read_text(encoding="utf-8"), flags=re.S)
        hits = sorted(set(emoji.findall(re.sub(r"<[^>]+>", "", text))))
        if hits:
            offenders[str(page.relative_to(built_book))] = hits
    assert not offenders, f"pages with emoji: {offenders}"


def test_each_chapter_links_a_glossary_term_at_its_first_use_only(built_book) -> None:
    """A reader meeting "HBM" or "embargo" in a chapter can click through to its definition, once."""
    linked_somewhere = 0
    for page in _chapters(built_book):
        html = page.read_text(encoding="utf-8")
        article = html[html.find("<article"):html.find("</article>")]
        terms = re.findall(r'href="[^"]*glossary\.html#(term-[^"]+)"', article)
        twice = sorted({t for t in terms if terms.count(t) > 1})
        assert not twice, f"{page.name} links these glossary terms more than once: {twice}"
        linked_somewhere += bool(terms)
    assert linked_somewhere >= len(_chapters(built_book)) // 2, "most chapters link no glossary term"


def test_long_listings_and_figure_code_are_folded(built_book) -> None:
    """Library listings over FOLD_LINES lines and the code that draws a figure start folded."""
    from flashtrade_lib.show import FOLD_LINES

    unfolded = re.compile(r'<p><em>Source of</em>(.*?)</p>\s*<div class="highlight-python[^"]*">'
                          r'<div class="highlight"><pre>(.*?)</pre>', re.S)
    too_long, folded = [], 0
    for page in _chapters(built_book):
        html = page.read_text(encoding="utf-8")
        folded += html.count('<details class="ft-source">')
        for name, code in unfolded.findall(html):
            lines = code.rstrip("\n").count("\n") + 1
            if lines > FOLD_LINES:
                too_long.append(f"{page.name}: {re.sub(r'<[^>]+>', '', name).strip()} ({lines} lines)")
    assert not too_long, f"long listings shown unfolded: {too_long}"
    assert folded, "no long listing is folded anywhere"
    assert any("hide above-input" in p.read_text(encoding="utf-8") for p in _chapters(built_book)), \
        "no figure code is folded anywhere"
