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

import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The repository checkout this module was imported from (an editable install); a
# student install has no course/ folder beside it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS_DIR = REPO_ROOT / "course" / "solutions"


@dataclass
class Wrong:
    build: Callable[[], Any]
    name: str
    expect: str  # words the grader's message must contain
    source: str = ""  # the mistake as a learner would write it (a value exercise: ``name = value``)


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


def wrong(exercise_id: str, *, expect: str, call: bool = False) -> Callable[[Any], Any]:
    """Register a typical wrong answer; the grader must fail it with a message containing ``expect``."""

    def decorator(obj: Any) -> Any:
        build = obj if call else (lambda: obj)
        name = getattr(getattr(obj, "fn", obj), "__name__", exercise_id)
        source = statement_source(obj) if call else shown_source(obj)
        _WRONGS.setdefault(exercise_id, []).append(Wrong(build, name, expect, source))
        return obj

    return decorator


@contextmanager
def _kernels_defined_as_the_notebook_would() -> Iterator[None]:
    """Without CUDA, chapter 4 defines its kernels for Triton's interpreter; so do we, for that import only."""
    import torch

    from flashtrade_lib.exercises.ch04 import triton_interpreter

    with triton_interpreter(on=not torch.cuda.is_available()):
        yield


def load(directory: Path | str | None = None) -> dict[str, Solution]:
    """Import every ``chNN.py`` of the solutions folder and return the solutions by exercise id."""
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
    for exercise_id, wrongs in _WRONGS.items():
        if exercise_id not in _SOLUTIONS:
            raise ValueError(f"{exercise_id}: wrong answers registered but no solution")
        _SOLUTIONS[exercise_id].wrongs = wrongs
    return dict(_SOLUTIONS)
