"""The course guide's exercise table, generated from the exercise registry and the chapters.

``book/course_guide.md`` lists every graded exercise — its number in the chapter, its id and
title, its hints, and the typical mistakes whose diagnosis the test suite holds the check to —
between two markers. ``flashtrade course sync-guide`` rewrites that table from
:func:`flashtrade_lib.exercises.exercises`, the chapters and ``course/solutions/``, so an
exercise added to a chapter appears in the guide without anyone typing it;
``tests/test_exercises.py`` fails while the guide differs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from flashtrade_lib.course.release import all_chapters, exercises_in
from flashtrade_lib.course.solutions import REPO_ROOT, Solution, load
from flashtrade_lib.course.withhold import exercise_numbers
from flashtrade_lib.exercises import UNTOUCHED_STUB, exercises

GUIDE = REPO_ROOT / "book" / "course_guide.md"
BEGIN = "<!-- exercise table: written by `flashtrade course sync-guide` from the exercise registry; do not edit -->"
END = "<!-- end of the exercise table -->"
# Column widths for the PDF (Sphinx's LaTeX writer; the web ignores it): chapter, exercise, hints, mistakes.
TABLE_COLUMNS = "```{tabularcolumns} \\X{3}{20}\\X{11}{20}\\X{2}{20}\\X{4}{20}\n```"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def exercise_table(solutions: dict[str, Solution] | None = None) -> str:
    """A Markdown table of every autograded exercise, chapter by chapter, in the order the chapters ask them."""
    solutions = solutions if solutions is not None else load()
    registry = exercises()
    chapters = {path.stem: path for path in sorted(all_chapters().values())}
    numbers = exercise_numbers({stem[:2]: path for stem, path in chapters.items() if stem[2] == "_"})
    # Four columns, the title wrapping in the widest: the PDF's table then fits the text block
    # (an unbreakable notebook name and check id in columns of their own stuck out by 370 pt).
    rows = [TABLE_COLUMNS, "| Chapter | Exercise (checked by) | Hints | Typical mistakes |", "|---|---|---|---|"]
    for stem, path in chapters.items():
        for eid, _ in exercises_in(nbformat.read(path, 4)):
            mistakes = [w for w in solutions[eid].wrongs if w.expect != UNTOUCHED_STUB]
            rows.append(f"| {stem.split('_')[0]} | {numbers.get(eid, '–')}: {_cell(registry[eid].title)} (`{eid}`) "
                        f"| {len(registry[eid].hints)} | {len(mistakes)} |")
    return "\n".join(rows)


def sync_guide(path: Path = GUIDE, solutions: dict[str, Solution] | None = None, *, write: bool = True) -> bool:
    """Rewrite the exercise table between the markers of ``path``; True if it changed (``write=False``: would)."""
    text = path.read_text(encoding="utf-8")
    block = re.compile(rf"{re.escape(BEGIN)}\n.*?{re.escape(END)}", re.S)
    if not block.search(text):
        raise ValueError(f"{path} has no exercise table markers ({BEGIN!r} … {END!r})")
    new = block.sub(lambda _: f"{BEGIN}\n{exercise_table(solutions)}\n{END}", text)
    if new != text and write:
        path.write_text(new, encoding="utf-8")
    return new != text
