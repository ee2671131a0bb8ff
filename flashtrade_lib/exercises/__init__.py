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

import html
import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

MAX_HINTS = 3
UNTOUCHED_STUB = "this is still the stub the chapter gave you — nothing written yet"
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # flashtrade_lib/, where graders and references live


class Withheld(NotImplementedError):
    """Raised by a library function that the student edition withholds: it is an exercise's answer."""


@dataclass(frozen=True)
class Feedback:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def _repr_markdown_(self) -> str:
        mark = "**✔ Correct.**" if self.passed else "**✘ Not yet.**"
        return f"{mark} {self.message}"

    def _repr_html_(self) -> str:
        """A coloured box, so a failing check stands out in a notebook that goes on running."""
        colour, mark = ("#1a7f37", "✔ Correct.") if self.passed else ("#cf222e", "✘ Not yet.")
        return (f'<div class="flashtrade-feedback" style="border-left: 4px solid {colour}; padding: 0.3em 0.8em">'
                f'<strong style="color: {colour}">{mark}</strong> {html.escape(self.message)}</div>')

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
    references: tuple[str, ...] = ()  # "module:function" an answer must not call (the library's own answer)


_REGISTRY: dict[str, Exercise] = {}
_HINTS_SHOWN: dict[str, int] = {}


def register(
    exercise_id: str, *, title: str, hints: Sequence[str] = (), references: Sequence[str] = ()
) -> Callable[[Callable[[Any], Feedback]], Callable[[Any], Feedback]]:
    """Register a grader (and its hint ladder: at most three hints, none of them the answer).

    ``references`` names the library functions (``"module:function"``) that compute this
    exercise's answer: an answer that calls one of them scores 0, with that reason.
    """
    if len(hints) > MAX_HINTS:
        raise ValueError(f"{exercise_id}: at most {MAX_HINTS} hints, got {len(hints)}")

    def decorator(grade: Callable[[Any], Feedback]) -> Callable[[Any], Feedback]:
        if exercise_id in _REGISTRY:
            raise ValueError(f"exercise id {exercise_id!r} is registered twice")
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, grade, tuple(hints), tuple(references))
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


def _code_of(reference: str) -> tuple[str, CodeType | None]:
    """``"module:function"`` → (its name, the code object its calls run; None unless its module is imported)."""
    module, name = reference.split(":")
    loaded = sys.modules.get(module)  # not imported: the answer cannot have called it (and the kernels
    obj = getattr(loaded, name, None)  # module must not be imported before TRITON_INTERPRET is decided)
    fn = getattr(obj, "fn", obj)  # a Triton kernel keeps its Python function in .fn
    return f"{name} ({module})", getattr(fn, "__code__", None)


@contextmanager
def _watch_calls(references: Sequence[str]) -> Iterator[list[str]]:
    """Record calls *from code outside flashtrade_lib* (the learner's) into the ``references``."""
    codes = {code: name for name, code in map(_code_of, references) if code is not None}
    called: list[str] = []
    if not codes:
        yield called
        return

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code in codes and frame.f_back is not None \
                and not frame.f_back.f_code.co_filename.startswith(_PACKAGE_DIR):
            called.append(codes[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


def _kernel_calls_reference(exercise: Exercise, answer: Any) -> str | None:
    """The reference a Triton kernel answer names (a kernel's calls are compiled, out of the profiler's view)."""
    code = getattr(getattr(answer, "fn", None), "__code__", None)
    if code is None:
        return None
    for reference in exercise.references:
        module, name = reference.split(":")
        if name in code.co_names:
            return f"{name} ({module})"
    return None


def _raised(exc: BaseException, answer: Any) -> str:
    """``your answer raised …``, with the line of the learner's code where it happened."""
    where = ""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    own = [t for t in frames if not t.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR)
           and "site-packages" not in t.tb_frame.f_code.co_filename
           and "/lib/python" not in t.tb_frame.f_code.co_filename]
    if own:
        import linecache

        last = own[-1]
        line = linecache.getline(last.tb_frame.f_code.co_filename, last.tb_lineno).strip()
        where = f" in {last.tb_frame.f_code.co_name}, at `{line}`" if line else f" in {last.tb_frame.f_code.co_name}"
    case = getattr(exc, "flashtrade_case", "")
    return f"{case + ': ' if case else ''}your answer raised {type(exc).__name__}{where}: {exc}"


def check(exercise_id: str, answer: Any) -> Feedback:
    """Grade a learner's answer; returns :class:`Feedback` (it renders in notebooks)."""
    exercise = _lookup(exercise_id)
    with _watch_calls(exercise.references) as called:
        try:
            feedback = exercise.grade(answer)
        except Withheld as exc:
            feedback = Feedback(False, f"your answer calls the library's own answer, which the student edition "
                                       f"withholds: {exc}")
        except Exception as exc:  # a learner's code raising is feedback, not a crash
            feedback = Feedback(False, _raised(exc, answer))
    reference = called[0] if called else _kernel_calls_reference(exercise, answer)
    if reference is not None and not feedback.message.startswith("your answer calls"):
        feedback = Feedback(False, f"your answer calls the library's {reference}, which computes this exercise's "
                                   "answer: write it yourself (an answer that calls the reference scores 0).")
    if not feedback.passed:
        from flashtrade_lib.exercises.stubs import is_untouched_stub

        if is_untouched_stub(exercise_id, answer):
            feedback = Feedback(False, f"{UNTOUCHED_STUB}. What the check found: {feedback.message}")
    shown = _HINTS_SHOWN.get(exercise_id, 0)
    if not feedback.passed and shown < len(exercise.hints):
        more = (f" Stuck? `hint({exercise_id!r})` reveals hint {shown + 1} of "
                f"{len(exercise.hints)}.")
        feedback = Feedback(False, feedback.message + more)
    return feedback


def autograde(exercise_id: str, answer: str, namespace: dict[str, Any]) -> Feedback:
    """The locked autograder cell of a released chapter.

    In a learner's notebook it only reports (the chapter goes on running); under nbgrader
    (which sets ``NBGRADER_EXECUTION``) a failure raises, so the cell scores 0 with the
    check's message. ``answer`` is the name the learner's cell defines.
    """
    grading = bool(os.environ.get("NBGRADER_EXECUTION"))
    if answer not in namespace:
        if grading:
            raise NameError(f"name {answer!r} is not defined")
        return Feedback(False, f"autograder ({exercise_id}): {answer} is not defined — run the cell that defines it.")
    feedback = check(exercise_id, namespace[answer])
    if grading and not feedback.passed:
        raise AssertionError(feedback.message)
    verdict = "1 of 1 point" if feedback.passed else "0 of 1 point so far (the chapter goes on)"
    reason = feedback.message[:1].upper() + feedback.message[1:]  # a sentence of its own after the verdict
    return Feedback(feedback.passed, f"autograder ({exercise_id}): {verdict}. {reason}")


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
