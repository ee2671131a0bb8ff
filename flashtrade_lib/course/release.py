"""The student release: chapters without their solutions, as an nbgrader assignment, and a
student install of the library.

For each chapter the release writes an nbgrader *source* notebook — the chapter with its
``{solution}`` blocks removed, the learner's stubs in place, and after every
``check("id", answer)`` cell a locked, hidden-from-editing autograder cell worth one
point — then lets ``nbgrader generate_assignment`` produce the student version
(checksummed, so a student cannot rewrite a test cell) and record the exercises in the
course's gradebook. The student install is a wheel of ``flashtrade_lib`` built from a
copy of the package alone: ``course/solutions/`` is not part of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from flashtrade_lib.course.blocks import strip_solutions
from flashtrade_lib.course.solutions import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
_CHECK = re.compile(r"""^check\((["'])(?P<id>[a-z0-9-]+)\1,\s*(?P<answer>[A-Za-z_][A-Za-z_0-9]*)\)\s*$""", re.M)
DEFAULT_CELL_TIMEOUT_S = 120


@dataclass(frozen=True)
class Release:
    course_dir: Path  # the nbgrader course folder (source/, release/, gradebook.db, nbgrader_config.py)
    notebooks: list[Path]  # the student notebooks, release/<chapter>/<notebook>.ipynb
    wheel: Path | None  # the student install of flashtrade_lib


def chapter_notebook(chapter: str) -> Path:
    """``"02"`` or ``"02_online_softmax"`` → the chapter's notebook."""
    matches = sorted(NOTEBOOKS.glob(f"{chapter[:2]}_*.ipynb"))
    if not matches or not matches[0].stem.startswith(chapter):
        known = ", ".join(p.stem for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
        raise ValueError(f"no chapter {chapter!r}; chapters: {known}")
    return matches[0]


def exercises_in(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """``(exercise id, answer name)`` of every check cell, in order."""
    return [(m["id"], m["answer"]) for cell in nb.cells if cell.cell_type == "code"
            for m in _CHECK.finditer(cell.source)]


def _grade_cell(exercise_id: str, answer: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(
        f"# autograder: {exercise_id} (1 point) — leave this cell as it is\n"
        f"_feedback = check({exercise_id!r}, {answer})\n"
        "assert _feedback.passed, _feedback.message"
    )
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": exercise_id, "schema_version": 3}
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def source_notebook(path: Path) -> nbformat.NotebookNode:
    """The nbgrader source of a chapter: no solution blocks, no outputs, an autograder cell per check."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{solution}" in cell.source:
            cell.source = strip_solutions(cell.source)
            if not cell.source.strip():
                continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        if cell.cell_type == "code":
            cells.extend(_grade_cell(eid, answer) for eid, answer in exercises_in(nbformat.v4.new_notebook(cells=[cell])))
    nb.cells = cells
    return nb


def nbgrader(course_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float | None = None,
             preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an nbgrader command in the course folder (with this environment's tools, e.g. alembic, on PATH)."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, capture_output=True,
                          text=True, timeout=timeout, check=False, env=env, preexec_fn=preexec_fn)


def write_config(course_dir: Path, cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S) -> None:
    (course_dir / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821 — nbgrader's config loader defines it\n"
        f"c.CourseDirectory.root = {str(course_dir)!r}\n"
        "c.CourseDirectory.course_id = 'flashtrade'\n"
        f"c.Execute.timeout = {int(cell_timeout_s)}  # seconds per cell; a looping cell is interrupted\n"
        "c.Execute.interrupt_on_timeout = True\n"
        "c.Execute.allow_errors = True\n"
    )


def build_student_wheel(out: Path) -> Path:
    """A wheel of flashtrade_lib built from a copy of the package alone (no course/ folder in it)."""
    import tomllib  # Python 3.11+: instructors build the release with the project's pinned 3.11

    with tempfile.TemporaryDirectory(prefix="flashtrade-student-") as tmp:
        src = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO_ROOT / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        # exactly the folders pyproject's package-dir installs (flashtrade_lib, kernels, ...)
        package_dirs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
        for folder in sorted(set(package_dirs.values())):
            shutil.copytree(REPO_ROOT / folder, src / folder, ignore=ignore)
        out.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--quiet", "-w", str(out), str(src)], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"building the student wheel failed:\n{done.stderr[-3000:]}")
    return next(out.glob("flashtrade_lib-*.whl"))


def release(chapters: list[str], course_dir: Path, *, wheel: bool = True,
            cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S) -> Release:
    """Write the student notebooks of ``chapters`` (and a student wheel) under ``course_dir``."""
    course_dir = Path(course_dir).resolve()
    course_dir.mkdir(parents=True, exist_ok=True)
    write_config(course_dir, cell_timeout_s)
    released = []
    for chapter in chapters:
        path = chapter_notebook(chapter)
        assignment = path.stem
        target = course_dir / "source" / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(path), target)
        done = nbgrader(course_dir, "generate_assignment", assignment, "--force", "--create")
        out = course_dir / "release" / assignment / path.name
        if done.returncode or not out.is_file():
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{(done.stdout + done.stderr)[-3000:]}")
        released.append(out)
    student_wheel = build_student_wheel(course_dir / "student_install") if wheel else None
    return Release(course_dir, released, student_wheel)
