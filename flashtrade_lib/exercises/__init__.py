"""Automatic checks for the exercises of every chapter.

A chapter registers each exercise with a grader, a reference solution and a
typical wrong answer::

    @register("ch02-online-softmax", title="Online softmax of one vector",
              solution=lambda: reference_fn, wrong=lambda: buggy_fn)
    def _grade(answer) -> Feedback:
        ...

Learners call ``check("ch02-online-softmax", my_answer)`` in the notebook and get
feedback that says *what* is wrong, not just pass/fail. The test suite checks that
every grader passes its solution and fails its wrong answer.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
class Exercise:
    id: str
    title: str
    grade: Callable[[Any], Feedback]
    solution: Callable[[], Any]
    wrong: Callable[[], Any]


_REGISTRY: dict[str, Exercise] = {}


def register(
    exercise_id: str, *, title: str, solution: Callable[[], Any], wrong: Callable[[], Any]
) -> Callable[[Callable[[Any], Feedback]], Callable[[Any], Feedback]]:
    """Register a grader; ``solution()``/``wrong()`` build a right and a wrong answer for self-tests."""

    def decorator(grade: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise id {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, grade, solution, wrong)
        return grade

    return decorator


def exercises() -> dict[str, Exercise]:
    """All registered exercises, by id (loads every chapter's checks)."""
    _load_all()
    return dict(_REGISTRY)


def check(exercise_id: str, answer: Any) -> Feedback:
    """Grade a learner's answer; returns :class:`Feedback` (it renders in notebooks)."""
    _load_all()
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"no exercise called {exercise_id!r}; known exercises: {known}")
    try:
        return _REGISTRY[exercise_id].grade(answer)
    except Exception as exc:  # a learner's code raising is feedback, not a crash
        return Feedback(False, f"your answer raised {type(exc).__name__}: {exc}")


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
