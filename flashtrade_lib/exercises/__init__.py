"""Automatic checks for the exercises of every chapter.

A chapter registers each exercise with a grader and up to three hints::

    @register("ch02-online-softmax", title="Online softmax of one vector",
              hints=("first hint", "second hint", "third hint"))
    def _grade(answer) -> Feedback:
        ...

Learners call ``check("ch02-online-softmax", my_answer)`` in the notebook and get
feedback that names the first failing case and says *what* is wrong; ``hint(...)``
reveals the next hint, one at a time. The graders compute what they expect from the
library's references or by brute force — the installed package holds **no
solutions**: those live in the repository's ``course/solutions/`` (instructors only,
see :mod:`flashtrade_lib.course.solutions`), where the test suite checks that every
grader passes its solution and fails its typical wrong answers.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_HINTS = 3


@dataclass(frozen=True)
class Feedback:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        mark = "**✔ Correct.**" if self.passed else "**✘ Not yet.**"
        return f"{mark} {self.message}"

    def __str__(self) -> str:
        return ("PASS: " if self.passed else "FAIL: ") + self.message


@dataclass(frozen=True)
class Hint:
    """One revealed hint; renders as a short note in a notebook."""

    exercise_id: str
    number: int
    total: int
    text: str

    def _repr_markdown_(self) -> str:
        return f"**Hint {self.number} of {self.total}** ({self.exercise_id}): {self.text}"

    def __str__(self) -> str:
        return f"Hint {self.number} of {self.total} ({self.exercise_id}): {self.text}"


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    grade: Callable[[Any], Feedback]
    hints: tuple[str, ...] = ()


_REGISTRY: dict[str, Exercise] = {}
_HINTS_SHOWN: dict[str, int] = {}


def register(
    exercise_id: str, *, title: str, hints: Sequence[str] = ()
) -> Callable[[Callable[[Any], Feedback]], Callable[[Any], Feedback]]:
    """Register a grader (and its hint ladder: at most three hints, none of them the answer)."""
    if len(hints) > MAX_HINTS:
        raise ValueError(f"{exercise_id}: at most {MAX_HINTS} hints, got {len(hints)}")

    def decorator(grade: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise id {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, grade, tuple(hints))
        return grade

    return decorator


def exercises() -> dict[str, Exercise]:
    """All registered exercises, by id (loads every chapter's checks)."""
    _load_all()
    return dict(_REGISTRY)


def _lookup(exercise_id: str) -> Exercise:
    _load_all()
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"no exercise called {exercise_id!r}; known exercises: {known}")
    return _REGISTRY[exercise_id]


def check(exercise_id: str, answer: Any) -> Feedback:
    """Grade a learner's answer; returns :class:`Feedback` (it renders in notebooks)."""
    exercise = _lookup(exercise_id)
    try:
        feedback = exercise.grade(answer)
    except Exception as exc:  # a learner's code raising is feedback, not a crash
        feedback = Feedback(False, f"your answer raised {type(exc).__name__}: {exc}")
    shown = _HINTS_SHOWN.get(exercise_id, 0)
    if not feedback.passed and shown < len(exercise.hints):
        more = (f" Stuck? `hint({exercise_id!r})` reveals hint {shown + 1} of "
                f"{len(exercise.hints)}.")
        feedback = Feedback(False, feedback.message + more)
    return feedback


def hint(exercise_id: str) -> Hint:
    """Reveal the next hint of an exercise (one per call; the last one repeats)."""
    exercise = _lookup(exercise_id)
    if not exercise.hints:
        return Hint(exercise_id, 0, 0, "this exercise has no hints: the check's message is the hint.")
    number = min(_HINTS_SHOWN.get(exercise_id, 0) + 1, len(exercise.hints))
    _HINTS_SHOWN[exercise_id] = number
    return Hint(exercise_id, number, len(exercise.hints), exercise.hints[number - 1])


_CHAPTER_MODULE = re.compile(r"ch\d\d$")


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if _CHAPTER_MODULE.match(mod.name):
            importlib.import_module(f"{__name__}.{mod.name}")
