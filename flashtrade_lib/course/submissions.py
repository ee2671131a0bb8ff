"""Submissions written by code: a released chapter with its answer cells filled in.

An instructor trying the kit, the test suite and the grading-time benchmark all need
notebooks as a student would hand them in — right, wrong, or with an answer missing.
``plan`` maps an exercise id to the code of its answer cell; an id not in it gets the
reference solution (from ``course/solutions/``), ``None`` deletes the answer cell (the
function is never defined). ``lean`` keeps only what grading needs, as a student who
deleted the rest of the chapter would hand it in (the grading tests run many of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nbformat

from flashtrade_lib.course.release import exercises_in
from flashtrade_lib.course.solutions import Solution, Wrong, load
from flashtrade_lib.exercises import UNTOUCHED_STUB


def answer_cell(exercise_id: str, answer: str, code: str, preamble: str = "") -> str:
    """The learner's cell: the stub's own preamble (imports), their code, then the chapter's check of it."""
    head = f"{preamble.rstrip()}\n\n\n" if preamble.strip() else ""
    return f"{head}{code.rstrip()}\n\n\ncheck({exercise_id!r}, {answer})"


def stub_preamble(source: str, answer: str) -> str:
    """The lines of a stub cell before its answer's definition (its decorators included): imports a learner keeps."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.startswith((f"def {answer}(", f"{answer} =", f"{answer}=", f"class {answer}"))), 0)
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1
    return "\n".join(lines[:start])


def wrong_answer(exercise_id: str, answer: str, which: str, solutions: Mapping[str, Solution] | None = None) -> str:
    """The source of the typical mistake ``which`` (a ``@wrong`` in course/solutions), renamed to ``answer``."""
    solutions = solutions if solutions is not None else load()
    found = {w.name: w for w in solutions[exercise_id].wrongs}
    if which not in found:
        raise KeyError(f"{exercise_id} has no wrong answer {which!r}; it has {sorted(found)}")
    lines = found[which].source.splitlines()
    heads = {f"def {which}(": f"def {answer}(", f"class {which}(": f"class {answer}(", f"class {which}:": f"class {answer}:"}
    renamed = [next((line.replace(old, new, 1) for old, new in heads.items() if line.startswith(old)),
                    f"{answer} = {line.removeprefix(f'{which} = ')}" if line.startswith(f"{which} = ") else line)
               for line in lines]
    return "\n".join(renamed) + "\n"


def typical_mistakes(released: Path, solutions: Mapping[str, Solution] | None = None) -> dict[str, Wrong]:
    """For each exercise of a released chapter, its first registered mistake a learner could hand in as it is.

    Not the untouched stub (a submission of its own), and not a mistake that calls an answer of the
    chapter: one that calls the right answer and spoils its result (``o, lse = my_tiled_attention(...)``)
    would call itself once renamed, and one that calls another exercise's answer is told by that answer.
    An exercise without such a mistake is left out.
    """
    solutions = solutions if solutions is not None else load()
    asked = exercises_in(nbformat.read(released, as_version=4))
    names = [answer for _, answer in asked]
    chosen = {}
    for eid, _ in asked:
        for w in solutions[eid].wrongs:
            body = w.source.split("\n", 1)[-1]
            if w.expect != UNTOUCHED_STUB and not any(f"{name}(" in body for name in names):
                chosen[eid] = w
                break
    return chosen


def mistake_plan(released: Path, solutions: Mapping[str, Solution] | None = None) -> dict[str, str]:
    """A ``plan`` for :func:`fill`: one typical mistake (:func:`typical_mistakes`) in every exercise that has one."""
    solutions = solutions if solutions is not None else load()
    answers = dict(exercises_in(nbformat.read(released, as_version=4)))
    return {eid: wrong_answer(eid, answers[eid], w.name, solutions)
            for eid, w in typical_mistakes(released, solutions).items()}


def fill(released: Path, plan: Mapping[str, str | None] | None = None,
         solutions: Mapping[str, Solution] | None = None) -> nbformat.NotebookNode:
    """The released notebook ``released`` with each answer cell replaced as ``plan`` says."""
    plan = plan or {}
    solutions = solutions if solutions is not None else load()
    nb = nbformat.read(released, as_version=4)
    cells = []
    for cell in nb.cells:
        found = exercises_in(nbformat.v4.new_notebook(cells=[cell])) if cell.cell_type == "code" else []
        if found and not cell.metadata.get("nbgrader", {}).get("grade"):
            (eid, answer), = found
            code = plan[eid] if eid in plan else solutions[eid].source
            if code is None:
                continue  # never defines the function
            cell.source = answer_cell(eid, answer, code, stub_preamble(cell.source, answer))
        cells.append(cell)
    nb.cells = cells
    return nb


def lean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` cut to the chapter's opening code (parameters, then imports), its exercise cells and its
    autograder cells: what a student who deleted the rest hands in, and what grading needs."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    n_opening = next(i for i, c in enumerate(code) if "import " in c.source) + 1
    nb.cells = code[:n_opening] + [c for c in code[n_opening:] if exercises_in(nbformat.v4.new_notebook(cells=[c]))
                                   or c.metadata.get("nbgrader", {}).get("grade")]
    return nb
