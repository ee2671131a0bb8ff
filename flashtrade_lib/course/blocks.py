"""The ``{solution}`` blocks of the chapters' markdown cells: find them, render them, remove them.

A chapter shows each exercise's solution as a hidden (dropdown) ``{solution}`` block. Its
first ``python`` code fence is *rendered* from the registered solution in
``course/solutions/`` (:func:`render_notebook`), so the book cannot show a solution that
differs from the one the tests grade; the student release removes the blocks
altogether (:func:`strip_solutions`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import nbformat

from flashtrade_lib.course.solutions import Solution

# ````{solution} ex-ch02-online-softmax ... ````   (the outer fence is longer when code is nested)
_BLOCK = re.compile(r"(?P<fence>`{3,})\{solution\} (?P<label>\S+)\n(?P<body>.*?)\n(?P=fence)(?!`)[ \t]*\n?",
                    re.S)
_CODE = re.compile(r"(?P<open>```python\n)(?P<code>.*?)(?P<close>\n```)", re.S)


@dataclass(frozen=True)
class SolutionBlock:
    notebook: Path
    cell: int
    exercise_id: str
    code: str | None  # the first python fence, or None when the block shows no code


def exercise_id(label: str) -> str:
    """``ex-ch02-online-softmax`` → ``ch02-online-softmax`` (labels are the ids with ``ex-``)."""
    return label.removeprefix("ex-")


def solution_blocks(path: Path) -> Iterator[SolutionBlock]:
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for block in _BLOCK.finditer(cell.source):
            code = _CODE.search(block["body"])
            yield SolutionBlock(path, index, exercise_id(block["label"]),
                                code["code"] + "\n" if code else None)


def _render_markdown(source: str, solutions: Mapping[str, Solution]) -> str:
    def render_block(block: re.Match[str]) -> str:
        sol = solutions.get(exercise_id(block["label"]))
        if sol is None:
            raise KeyError(f"no registered solution for {{solution}} {block['label']}: add it to course/solutions/")
        body = _CODE.sub(lambda code: code["open"] + sol.source.rstrip("\n") + code["close"], block["body"],
                         count=1)
        return block.group(0).replace(block["body"], body, 1)

    return _BLOCK.sub(render_block, source)


def render_notebook(path: Path, solutions: Mapping[str, Solution]) -> bool:
    """Rewrite the solution blocks' code from the registered solutions; True if anything changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{solution}" in cell.source:
            new = _render_markdown(cell.source, solutions)
            changed |= new != cell.source
            cell.source = new
    if changed:
        nbformat.write(nb, path)
    return changed


def strip_solutions(source: str) -> str:
    """A markdown cell's text without its solution blocks (for the student release)."""
    return _BLOCK.sub("", source).strip("\n")
