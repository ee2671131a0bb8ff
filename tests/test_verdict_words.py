"""No typed verdicts: a chapter's "beats", "helps", "significant" is printed by code from a test.

The rule (issue 16): every verdict word in a chapter is chosen by code from a statistical
result the page prints — e.g. ``print(stats.verdict(result, "the transformer beats ridge"))``
in a code cell, so the sentence lives in a cell *output*, never in a markdown cell. This test
scans the **markdown cells** of every notebook for verdict words. Not verdicts, and so not
scanned: code (fenced blocks, inline code), math, text in quotation marks (a word mentioned,
not used: a decision rule for "significant"), questions (a sentence ending in "?", such as
an exercise that asks "Is the difference significant?") and directive syntax (fences, options,
labels; a directive's title is prose and is scanned). Anything
else needs an entry in ``ALLOWED`` below, with its reason — keep that list tiny.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

VERDICT_WORDS = re.compile(
    r"\b(beats?|beaten|beating|outperform\w*|underperform\w*|helps|helped|"
    r"significant(?:ly)?|insignificant|recovers? most|(?:inside|within|outside) the noise band)\b",
    re.IGNORECASE,
)

# (notebook, exact text containing the word, why it is not a typed verdict).
ALLOWED: list[tuple[str, str, str]] = []

# Typed verdicts still waiting for their chapter's owner to compute them (issue 16, item 3).
# Each entry is (notebook, exact text). An entry whose text has gone must be deleted: this
# list only shrinks. Owner of 06, 07, 09, 10: helper h3b (issue 16 items 1, 5, 6).
PENDING: list[tuple[str, str]] = []

# Code blocks only: a MyST directive fence (```{exercise}, ````{solution}) keeps its prose scanned.
_FENCE = re.compile(r"(?<![`~])(`{3,}|~{3,})(?![`~{])[^\n]*\n.*?\n\1(?![`~])", re.DOTALL)
# Directive syntax is not prose: the fence and {name}, option lines (:label: ...) and the label a
# {solution} refers to. A directive's *title* (an exercise's name) stays scanned.
_DIRECTIVE_LINE = re.compile(
    r"^\s*(?:(?:`{3,}|~{3,})\{solution\}.*|(?:`{3,}|~{3,})(?:\{[\w-]+\})?|:[\w-]+:.*)$"
    r"|^\s*(?:`{3,}|~{3,})\{[\w-]+\}",
    re.MULTILINE,
)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.DOTALL)
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
# A sentence runs across single line breaks, but not into a new paragraph or list item.
_SENTENCE = re.compile(r"(?:[^.!?\n]|\n(?!\s*\n|\s*[*+-] |\s*\d+\. ))+[.!?]?")


def _prose(source: str) -> str:
    """The markdown with code, math, quotations and directive lines blanked out."""
    text = source
    for pattern in (_FENCE, _DIRECTIVE_LINE, _INLINE_CODE, _MATH, _QUOTED):
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return text


def typed_verdicts(path) -> list[tuple[int, str, str]]:
    """(cell index, word, sentence) for every verdict word in a markdown cell's prose."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        prose = _prose(cell.source)
        for sentence in _SENTENCE.finditer(prose):
            s = sentence.group(0)
            if s.rstrip().endswith("?"):
                continue  # a question is not a verdict
            for word in VERDICT_WORDS.finditer(s):
                start = sentence.start() + word.start()
                context = cell.source[max(0, start - 60) : start + 60].replace("\n", " ")
                found.append((i, word.group(0), context))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_typed_verdicts_in_markdown(path) -> None:
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    excused = [text for name, text, *_ in ALLOWED + PENDING if name == path.name]
    offenders = []
    for i, word, context in typed_verdicts(path):
        cell = nb.cells[i].source
        if any(text in cell and word.lower() in text.lower() for text in excused):
            continue
        offenders.append(f"  cell {i}: {word!r} in …{context}…")
    assert not offenders, (
        f"{path.name} types verdicts in markdown instead of printing them from a test:\n"
        + "\n".join(offenders)
        + "\nPrint the sentence from code, e.g. print(stats.verdict(result, 'the model beats ridge')), "
        "so the words follow the test the page prints (flashtrade_lib/trading/stats.py). "
        "A question, a quoted word or code is not a verdict."
    )
    stale = [text for name, text in PENDING if name == path.name and not any(text in m for m in markdown)]
    assert not stale, f"{path.name}: PENDING entries {stale} no longer match any markdown: delete them"


def test_the_scan_sees_a_typed_verdict(tmp_path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("The transformer beats ridge after costs."),
        nbformat.v4.new_markdown_cell('Does a long context help? A rule for "significant": `p < 0.05`.'),
        nbformat.v4.new_markdown_cell("```python\nprint('x beats y')\n```\n$\\text{significant}$"),
        nbformat.v4.new_markdown_cell("````{solution} ex-1\n```python\nx = 1\n```\nSo it helps.\n````"),
        nbformat.v4.new_markdown_cell("````{exercise} Why momentum beats ridge\n:label: ex-beats\nWork.\n````"),
        nbformat.v4.new_markdown_cell("````{solution} ex-ch09-significant\n:class: dropdown\nDone.\n````"),
    ]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    assert [(i, w) for i, w, _ in typed_verdicts(path)] == [(0, "beats"), (3, "helps"), (4, "beats")]
