"""Recognise an untouched stub: the function a released chapter gives the learner (or its
``answer = None``), not yet changed.

A check that fails on the stub should say so ("you have not written anything yet") rather than
report its first failing case as if it were a mistake. The fingerprints of the stubs come from
the chapters' notebooks: read from the checkout (instructors), or frozen into the student wheel
as ``_stub_fingerprints.py`` by :func:`flashtrade_lib.course.release.build_student_wheel`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECK_CALL = re.compile(r"""check\((["'])(?P<id>[a-z0-9-]+)\1,\s*(?P<answer>[A-Za-z_]\w*)\)""")


def fingerprint(source: str) -> str:
    """A hash of a function's code that ignores decorators, blank lines and indentation changes."""
    lines = [line.rstrip() for line in textwrap.dedent(source).splitlines()]
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith("@")]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]


def whole_lines(source: str, node: ast.FunctionDef) -> str:
    """A function's source as ``inspect.getsource`` gives it: whole lines, a comment on the last one included."""
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(source.splitlines()[start - 1:node.end_lineno]) + "\n"


UNSET = "None"  # the fingerprint of a value stub, ``answer = None``: recognised when the answer is still None
EMPTY_CLASS = "class: pass"  # a class stub whose body is only ``pass``: recognised while it defines nothing of its own


@dataclass(frozen=True)
class Stub:
    """What a released chapter gives the learner for one exercise, before they write anything."""

    notebook: Path
    exercise_id: str
    answer: str  # the name the check cell checks
    source: str  # the stub's code: a function's (or class's) whole lines, or the line ``answer = None``
    kind: str  # "function", "class" or "value"

    @property
    def fingerprint(self) -> str:
        return {"function": fingerprint(self.source), "class": EMPTY_CLASS, "value": UNSET}[self.kind]


def stubs_of(notebooks: list[Path]) -> list[Stub]:
    """The stub of every check cell that defines its answer as a function, an empty class or ``answer = None``."""
    import nbformat

    found = []
    for path in notebooks:
        for cell in nbformat.read(path, 4).cells:
            matches = list(CHECK_CALL.finditer(cell.source)) if cell.cell_type == "code" else []
            try:
                tree = ast.parse(cell.source) if matches else None
            except SyntaxError:
                continue
            for match in matches:
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef) and node.name == match["answer"]:
                        found.append(Stub(path, match["id"], node.name, whole_lines(cell.source, node), "function"))
                    elif (isinstance(node, ast.ClassDef) and node.name == match["answer"]
                          and all(isinstance(n, ast.Pass | ast.Expr) for n in node.body)):
                        found.append(Stub(path, match["id"], node.name, whole_lines(cell.source, node), "class"))
                    elif (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [match["answer"]]
                          and isinstance(node.value, ast.Constant) and node.value.value is None):
                        found.append(Stub(path, match["id"], match["answer"], f"{match['answer']} = None\n", "value"))
    return found


def fingerprints_of(notebooks: list[Path]) -> dict[str, str]:
    """``{exercise id: fingerprint of its stub}`` (:data:`UNSET` for a value stub, :data:`EMPTY_CLASS` for a class)."""
    return {stub.exercise_id: stub.fingerprint for stub in stubs_of(notebooks)}


@functools.cache
def _fingerprints() -> dict[str, str]:
    try:
        from flashtrade_lib.exercises._stub_fingerprints import FINGERPRINTS  # the student wheel
    except ImportError:
        notebooks = Path(__file__).resolve().parents[2] / "notebooks"  # an instructor's checkout
        return fingerprints_of(sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))) if notebooks.is_dir() else {}
    return dict(FINGERPRINTS)


def is_untouched_stub(exercise_id: str, answer: Any) -> bool:
    """Is ``answer`` the released stub of ``exercise_id``, unchanged?"""
    expected = _fingerprints().get(exercise_id)
    if expected == UNSET:
        return answer is None
    if expected == EMPTY_CLASS:  # (a class defined in a notebook has no source to read on Python 3.11)
        return inspect.isclass(answer) and not [k for k in vars(answer) if not k.startswith("__")]
    fn = getattr(answer, "fn", answer)  # a Triton kernel keeps its Python function in .fn
    if expected is None or not inspect.isfunction(fn):
        return False
    try:
        return fingerprint(inspect.getsource(fn)) == expected
    except (OSError, TypeError):  # no source to read (defined by exec)
        return False
