"""Instructor-only solutions: registered from ``course/solutions/chNN.py``, never installed.

Each file there decorates the reference answer of an exercise with :func:`solution`
and its typical wrong answers with :func:`wrong` (what the grader's message must then
say)::

    @solution("ch02-online-softmax")
    def online_softmax_stats(x): ...

    @wrong("ch02-online-softmax", expect="rescale")
    def online_softmax_stats_without_rescaling(x): ...

The test suite grades every solution (it must pass) and every wrong answer (it must
fail, with the expected words); the book's ``{solution}`` blocks are rendered from
:attr:`Solution.source` (``flashtrade course sync-solutions``), so they cannot drift;
the student release (:mod:`flashtrade_lib.course.release`) leaves this folder out.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashtrade_lib.exercises import UNTOUCHED_STUB
from flashtrade_lib.exercises.stubs import Stub, stubs_of

# The repository checkout this module was imported from (an editable install); a
# student install has no course/ folder beside it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS_DIR = REPO_ROOT / "course" / "solutions"
NOTEBOOKS = REPO_ROOT / "notebooks"


@dataclass
class Wrong:
    build: Callable[[], Any]
    name: str
    expect: str | tuple[str, ...]  # words the grader's message must contain (each of them, if several)
    source: str = ""  # the mistake as a learner would write it (a value exercise: ``name = value``)

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.expect,) if isinstance(self.expect, str) else tuple(self.expect)

    def missing_from(self, message: str) -> list[str]:
        """The expected phrases that ``message`` does not contain (none: the grader said what it should)."""
        return [phrase for phrase in self.phrases if phrase not in message]


@dataclass
class Solution:
    exercise_id: str
    build: Callable[[], Any]  # returns the answer a learner would pass to check()
    source: str  # the code the book's solution block shows
    wrongs: list[Wrong] = field(default_factory=list)


_SOLUTIONS: dict[str, Solution] = {}
_WRONGS: dict[str, list[Wrong]] = {}


def shown_source(obj: Any) -> str:
    """The decorated object's source without the course decorators (what the book shows)."""
    fn = getattr(obj, "fn", obj)  # a Triton kernel keeps its Python function in .fn
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    kept = [line for line in lines if not line.startswith(("@solution(", "@wrong("))]
    return "\n".join(kept).strip() + "\n"


def statement_source(fn: Callable[[], Any]) -> str:
    """A value exercise's answer as the notebook writes it: the body, ending ``name = value``."""
    lines = shown_source(fn).splitlines()
    body = textwrap.dedent("\n".join(lines[1:])).splitlines()  # drop the def line
    last = body[-1]
    if not last.startswith("return "):
        raise ValueError(f"{fn.__name__}: a call=True solution must end with a return statement")
    body[-1] = f"{fn.__name__} = {last.removeprefix('return ')}"
    return "\n".join(body) + "\n"


def solution(exercise_id: str, *, call: bool = False) -> Callable[[Any], Any]:
    """Register the decorated function as the answer (``call=True``: what calling it returns)."""

    def decorator(obj: Any) -> Any:
        if exercise_id in _SOLUTIONS:
            raise ValueError(f"{exercise_id}: two solutions registered")
        build = obj if call else (lambda: obj)
        source = statement_source(obj) if call else shown_source(obj)
        _SOLUTIONS[exercise_id] = Solution(exercise_id, build, source)
        return obj

    return decorator


def wrong(exercise_id: str, *, expect: str | tuple[str, ...], call: bool = False) -> Callable[[Any], Any]:
    """Register a typical wrong answer; the grader must fail it with a message containing ``expect``
    (every phrase of it, given several: e.g. the failing case *and* the learner's line)."""

    def decorator(obj: Any) -> Any:
        build = obj if call else (lambda: obj)
        name = getattr(getattr(obj, "fn", obj), "__name__", exercise_id)
        source = statement_source(obj) if call else shown_source(obj)
        _WRONGS.setdefault(exercise_id, []).append(Wrong(build, name, expect, source))
        return obj

    return decorator


def variant(fn: Any, old: str, new: str, name: str) -> Any:
    """The solution ``fn`` with the text ``old`` replaced by ``new``, renamed ``name``: a typical mistake
    written as a learner would write it, one line changed, without a second copy of the solution.

    It is defined from a file of its own (in ``fn``'s module namespace), so its source can be read —
    Triton reads a kernel's, and a check quotes the learner's line where an answer raises.
    """
    base = getattr(fn, "fn", fn)  # a Triton kernel keeps its Python function in .fn
    source = shown_source(fn)
    if old not in source:
        raise ValueError(f"{old!r} is not in {base.__name__}")
    source = source.replace(old, new).replace(f"def {base.__name__}(", f"def {name}(")
    path = Path(tempfile.mkdtemp(prefix="flashtrade-wrong-")) / f"{name}.py"
    path.write_text(source)
    namespace = dict(base.__globals__)
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 — the instructor's own solution, edited
    return namespace[name]


@contextmanager
def _kernels_defined_as_the_notebook_would() -> Iterator[None]:
    """Without CUDA, chapter 4 defines its kernels for Triton's interpreter; so do we, for that import only."""
    import torch

    from flashtrade_lib.exercises.ch04 import triton_interpreter

    with triton_interpreter(on=not torch.cuda.is_available()):
        yield


def _define_stub(stub: Stub) -> Any:
    """The stub as the chapter defines it: from a file (Triton reads a kernel's source), after the chapter's imports."""
    import nbformat

    imports = []
    for cell in nbformat.read(stub.notebook, 4).cells:
        try:
            tree = ast.parse(cell.source) if cell.cell_type == "code" else None
        except SyntaxError:  # IPython syntax
            continue
        imports += [ast.unparse(node) for node in (tree.body if tree else []) if isinstance(node, ast.Import | ast.ImportFrom)]
    source = "\n".join(dict.fromkeys(imports)) + "\n\n\n" + stub.source
    path = Path(tempfile.mkdtemp(prefix="flashtrade-stub-")) / f"{stub.answer}.py"
    path.write_text(source)
    namespace: dict[str, Any] = {"__name__": f"flashtrade_stub_{stub.answer}"}
    with _kernels_defined_as_the_notebook_would():
        exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 — the chapter's own stub
    return namespace[stub.answer]


def untouched_stub_wrongs(notebooks: list[Path]) -> dict[str, Wrong]:
    """Each check's untouched stub, read from the chapters: a wrong answer it must recognise as such."""
    return {stub.exercise_id: Wrong(functools.cache(functools.partial(_define_stub, stub)) if stub.kind != "value"
                                    else (lambda: None), f"untouched stub of {stub.answer}", UNTOUCHED_STUB, stub.source)
            for stub in stubs_of(notebooks)}


def load(directory: Path | str | None = None) -> dict[str, Solution]:
    """Import every ``chNN.py`` of the solutions folder and return the solutions by exercise id, each with its
    typical wrong answers — the registered ones, then the chapter's untouched stub."""
    directory = Path(directory) if directory is not None else SOLUTIONS_DIR
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no solutions folder at {directory}: solutions ship with the repository's course/ "
            "folder (instructors only), not with an installed flashtrade_lib"
        )
    for path in sorted(directory.glob("ch[0-9][0-9].py")):
        name = f"flashtrade_course_solutions.{path.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        with _kernels_defined_as_the_notebook_would():
            spec.loader.exec_module(module)
    unknown = sorted(set(_WRONGS) - set(_SOLUTIONS))
    if unknown:
        raise ValueError(f"{unknown[0]}: wrong answers registered but no solution")
    stubs = untouched_stub_wrongs(sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
    for exercise_id, sol in _SOLUTIONS.items():
        sol.wrongs = _WRONGS.get(exercise_id, []) + ([stubs[exercise_id]] if exercise_id in stubs else [])
    return dict(_SOLUTIONS)
