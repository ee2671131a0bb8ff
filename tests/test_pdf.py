"""The whole book as one PDF (`make pdf`): built, complete, and laid out within the page.

Read from the LaTeX build's own record (_build/latex): the log that XeLaTeX wrote (pages,
overfull boxes, missing files) and the .tex (figures, exercises, solutions), so no PDF
library is needed. Run by `make pdf` after it builds the PDF.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT

pytestmark = pytest.mark.pdf

LATEX = ROOT / "_build" / "latex"
NAME = "flashtrade"
# An overfull box sticks out of the text block. A few points is a hyphenation blemish a reader
# does not see; more is a table, listing or equation cut at the margin.
OVERFULL_PT = 12.0
MIN_PAGES = 100


@pytest.fixture(scope="module")
def built_pdf():
    pdf, log = LATEX / f"{NAME}.pdf", LATEX / f"{NAME}.log"
    if not pdf.is_file() or not log.is_file():
        pytest.fail(f"{pdf} does not exist: build it first (make pdf)", pytrace=False)
    return pdf, log.read_text(encoding="utf-8", errors="replace"), (LATEX / f"{NAME}.tex").read_text(encoding="utf-8")


def test_the_pdf_has_every_chapter_and_a_table_of_contents(built_pdf) -> None:
    pdf, log, tex = built_pdf
    pages = re.findall(r"Output written on \S*?\.(?:pdf|xdv) \((\d+) pages?", log)
    assert pages and int(pages[-1]) >= MIN_PAGES, f"the PDF has {pages} pages, expected at least {MIN_PAGES}"
    assert r"\sphinxmaketitle" in tex and r"\sphinxtableofcontents" in tex, "no title page or no table of contents"
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        title = next(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "markdown")
        heading = title.splitlines()[0].lstrip("# ").strip()
        words = [w for w in re.findall(r"[A-Za-z]{4,}", heading)][:3]
        assert all(w in tex for w in words), f"chapter {nb.name} ({heading!r}) is not in the PDF"


def test_every_figure_is_in_the_pdf(built_pdf) -> None:
    """Each plotly figure of the web book is an image in the PDF, and every image file exists."""
    pdf, log, tex = built_pdf
    images = re.findall(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{?([^}]+?)\}?(\.\w+)?\}", tex)
    missing = [f"{stem}{ext or ''}" for stem, ext in images
               if not any((LATEX / f"{stem}{e}").is_file() for e in ((ext,) if ext else (".png", ".pdf", ".jpg")))]
    assert not missing, f"images the PDF includes but the build lacks: {missing[:5]}"
    not_found = re.findall(r"(?m)^! LaTeX Error: File `([^']+)' not found", log)
    assert not not_found, f"files LaTeX could not find: {not_found}"
    html = ROOT / "_build" / "html" / "notebooks"
    if not html.is_dir():
        pytest.fail("the web book (_build/html) is missing: make pdf runs after make book", pytrace=False)
    figures = sum(page.read_text(encoding="utf-8").count("Plotly.newPlot(") for page in html.glob("*.html"))
    assert len(images) >= figures, f"{len(images)} images in the PDF, {figures} plotly figures in the web book"


def test_exercises_and_solutions_are_numbered_per_chapter(built_pdf) -> None:
    """"Exercise 8.2" as the web book and a course cite it, each with its solution."""
    pdf, log, tex = built_pdf
    exercises = set(re.findall(r"Exercise (\d+\.\d+)", tex))
    solutions = set(re.findall(r"Solution to Exercise (\d+\.\d+)", tex))
    assert exercises, "no numbered exercise in the PDF"
    assert solutions == exercises, f"exercises without a solution: {sorted(exercises - solutions)}"


def test_nothing_sticks_out_of_the_text_block(built_pdf) -> None:
    pdf, log, tex = built_pdf
    overfull = [(float(pt), where) for pt, where in
                re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\) (.*)", log) if float(pt) > OVERFULL_PT]
    assert not overfull, (f"{len(overfull)} boxes wider than the text block by more than {OVERFULL_PT} pt "
                          f"(worst {max(overfull)[0]} pt): " + "; ".join(w for _, w in sorted(overfull)[-5:]))


def test_no_character_is_missing_from_the_fonts(built_pdf) -> None:
    """A glyph the fonts lack is silently dropped from the PDF (XeLaTeX only logs it): map it in _config.yml."""
    _, log, _ = built_pdf
    missing = sorted(set(re.findall(r"Missing character: There is no (\S+ \(U\+[0-9A-F]+\)) in font ([^/!]+)", log)))
    assert not missing, ("characters dropped from the PDF (add a \\newunicodechar to _config.yml's latex preamble): "
                         + "; ".join(f"{char} in {font}" for char, font in missing))
