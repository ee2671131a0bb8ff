"""What the student edition withholds: the library functions that *are* an exercise's answer.

The library's NumPy tiled forward and backward, the Triton kernel's inner loop and the
backward's preprocess kernel are the answers of chapters 2–4's central exercises. The
instructor's install keeps them (the book shows them right after each exercise); the student
wheel replaces each with a stub of the same signature that raises
:class:`~flashtrade_lib.exercises.Withheld` naming the exercise, and the released notebooks show
a note instead of their source (:mod:`flashtrade_lib.course.release`). One table, :data:`TARGETS`, drives the wheel, the
notebooks, the checks (an answer that calls a target scores 0) and the tests.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Target:
    exercise_id: str  # the exercise whose answer this function is
    module: str  # the installed module that defines it
    name: str  # the function's name in that module
    source_path: str  # the file in the repository (a key of pyproject's package-dir + the rest)

    @property
    def chapter(self) -> str:
        return self.exercise_id[2:4]


TARGETS: tuple[Target, ...] = (
    Target("ch02-tiled-forward", "flashtrade_lib.attention.reference", "tiled_attention",
           "flashtrade_lib/attention/reference.py"),
    Target("ch03-tiled-backward", "flashtrade_lib.attention.reference", "tiled_attention_backward",
           "flashtrade_lib/attention/reference.py"),
    Target("ch04-kernel-inner-loop", "flashtrade_lib.kernels.flash_attention", "_attn_fwd_inner",
           "kernels/flash_attention.py"),
    Target("ch04-bwd-preprocess", "flashtrade_lib.kernels.flash_attention", "_attn_bwd_preprocess",
           "kernels/flash_attention.py"),
)


def withheld_message(target: Target, number: str) -> str:
    """The stub's error: which exercise this is and what to use instead."""
    return (f"{target.name} is withheld in the student edition: this is {number} ({target.exercise_id}). "
            "Write it yourself in the chapter's notebook; its check tells you when it is right.")


_EXERCISE = re.compile(r"`{3,}\{exercise\}[^\n]*\n:label: ex-(?P<id>[a-z0-9-]+)")


def exercise_numbers(notebooks: dict[str, Path]) -> dict[str, str]:
    """``{"ch02-tiled-forward": "Exercise 2.2", ...}``: the order of ``{exercise}`` blocks in each chapter."""
    numbers = {}
    for chapter, path in notebooks.items():
        text = "\n".join(c.source for c in nbformat.read(path, 4).cells if c.cell_type == "markdown")
        for index, match in enumerate(_EXERCISE.finditer(text), start=1):
            numbers[match["id"]] = f"Exercise {int(chapter)}.{index}"
    return numbers


def stub_source(source: str, name: str, message: str) -> str:
    """``source`` with the body of the top-level function ``name`` replaced by ``raise Withheld(message)``.

    The decorators and signature stay, with the docstring's first line (the function is still
    there, documented, and fails loudly); every line of its implementation is gone.
    """
    tree = ast.parse(source)
    fn = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name), None)
    if fn is None:
        raise ValueError(f"no top-level function {name!r} to withhold")
    lines = source.splitlines(keepends=True)
    indent = " " * fn.body[0].col_offset
    summary = (ast.get_docstring(fn) or name).splitlines()[0]
    doc = repr(f"{summary} (Withheld in the student edition.)")
    stub = (f"{indent}{doc}\n"
            f"{indent}from flashtrade_lib.exercises import Withheld\n\n"
            f"{indent}raise Withheld({message!r})\n")
    return "".join(lines[:fn.body[0].lineno - 1]) + stub + "".join(lines[fn.end_lineno:])


def withhold_tree(root: Path, numbers: dict[str, str]) -> list[Target]:
    """Replace every target in the package copy at ``root`` (laid out as the repository) by its stub."""
    done = []
    for target in TARGETS:
        path = root / target.source_path
        number = numbers.get(target.exercise_id, f"exercise {target.exercise_id}")
        path.write_text(stub_source(path.read_text(), target.name, withheld_message(target, number)))
        done.append(target)
    return done
