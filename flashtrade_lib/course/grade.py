"""Autograding: a folder of submitted notebooks → a gradebook CSV and one feedback file per student.

Each submission is graded by ``nbgrader autograde`` in its own process: nbgrader runs the
notebook in a fresh Jupyter kernel, restores the locked autograder cells from the
gradebook (a student cannot edit them away), interrupts any cell that runs past the
per-cell limit and scores each autograder cell — full points when it runs without error.
The kernel starts from a sandbox IPython profile that blocks the network
(:mod:`flashtrade_lib.netguard`), caps CPU time and file sizes, and has a throw-away
``HOME``; the whole run has a wall-clock limit. A submission that raises, loops, never
defines the function, or kills its kernel gets 0 for the exercises concerned, with the
reason in its feedback file — the grader itself never crashes on a submission.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from flashtrade_lib.course.release import exercises_in, nbgrader

SANDBOX_STARTUP = '''\
# Sandbox for graded submissions (written by flashtrade_lib.course.grade).
import resource as _resource

from flashtrade_lib import netguard as _netguard

_netguard.install()  # no connection leaves the machine
_resource.setrlimit(_resource.RLIMIT_CPU, ({cpu}, {cpu}))  # CPU seconds for the whole kernel
_resource.setrlimit(_resource.RLIMIT_FSIZE, ({fsize}, {fsize}))  # no file larger than this
try:
    import torch as _torch

    if not _torch.cuda.is_available():
        import os as _os

        _os.environ.setdefault("TRITON_INTERPRET", "1")  # Triton kernels run in the interpreter
except ImportError:
    pass
'''


@dataclass
class StudentResult:
    student: str
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_by_notebook: dict[str, float] = field(default_factory=dict)  #: wall time of each graded notebook

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def _reason(cell: nbformat.NotebookNode, cell_timeout_s: int) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") != "error":
            continue
        name, value = output.get("ename", ""), output.get("evalue", "")
        if name == "CellTimeoutError" or name == "KeyboardInterrupt":
            return f"the cell ran past the {cell_timeout_s} s limit and was interrupted (an endless loop?)"
        if name == "NameError":
            return f"never defined: {value} (run the cell that defines your answer)"
        if name == "AssertionError":
            return value or "the check failed"
        return f"your code raised {name}: {value}"
    return "the check failed"


def _reasons_from(autograded: Path, cell_timeout_s: int) -> dict[str, str]:
    nb = nbformat.read(autograded, as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: _reason(cell, cell_timeout_s) for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("grade")}


def _sandbox(root: Path, cpu_s: int, fsize: int) -> dict[str, str]:
    profile = root / "ipython" / "profile_default" / "startup"
    profile.mkdir(parents=True)
    (profile / "00-sandbox.py").write_text(SANDBOX_STARTUP.format(cpu=cpu_s, fsize=fsize))
    home = root / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR")}
    env.update(IPYTHONDIR=str(root / "ipython"), HOME=str(home), FLASHTRADE_ALLOW_NETWORK="0",
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def grade(course_dir: Path, submissions: Path, out: Path, *, cell_timeout_s: int = 120,
          submission_timeout_s: int = 1800, cpu_s: int = 3600, max_file_bytes: int = 2**28) -> list[StudentResult]:
    """Grade ``submissions/<student>/<chapter notebook>.ipynb``; write ``out/gradebook.csv`` and ``out/feedback/``."""
    from nbgrader.api import Gradebook

    from flashtrade_lib.course.release import write_config

    course_dir, submissions, out = Path(course_dir).resolve(), Path(submissions).resolve(), Path(out).resolve()
    write_config(course_dir, cell_timeout_s)
    released = {p.name: p for p in (course_dir / "release").glob("*/*.ipynb")}
    if not released:
        raise FileNotFoundError(f"{course_dir} has no released chapters: run `flashtrade course release` first")
    columns = [eid for name in sorted(released) for eid, _ in exercises_in(nbformat.read(released[name], 4))]
    results = []
    with tempfile.TemporaryDirectory(prefix="flashtrade-grading-") as tmp:
        env = _sandbox(Path(tmp), cpu_s, max_file_bytes)
        for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
            result = StudentResult(student_dir.name, dict.fromkeys(columns, 0.0))
            start = time.perf_counter()
            for name, release_path in sorted(released.items()):
                started = time.perf_counter()
                if _grade_one(course_dir, student_dir, name, release_path, result, env, cell_timeout_s,
                              submission_timeout_s):
                    result.seconds_by_notebook[name] = time.perf_counter() - started
            result.seconds = time.perf_counter() - start
            results.append(result)
    gradebook = Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}")
    try:
        for result in results:
            for release_path in released.values():
                assignment, notebook = release_path.parent.name, release_path.stem
                for eid, _ in exercises_in(nbformat.read(release_path, 4)):
                    if eid in result.reasons and result.reasons[eid].startswith("not graded"):
                        continue
                    try:
                        grade_row = gradebook.find_grade(eid, notebook, assignment, result.student)
                    except Exception:  # no submission for this chapter: nothing recorded
                        continue
                    result.scores[eid] = float(grade_row.score or 0.0)
    finally:
        gradebook.close()
    _write(out, columns, results)
    return results


def _grade_one(course_dir: Path, student_dir: Path, name: str, release_path: Path, result: StudentResult,
               env: dict[str, str], cell_timeout_s: int, submission_timeout_s: int) -> bool:
    """Autograde one notebook of one student; False when there was none to grade."""
    assignment = release_path.parent.name
    ids = [eid for eid, _ in exercises_in(nbformat.read(release_path, 4))]
    submitted = student_dir / name
    if not submitted.is_file():
        result.reasons.update(dict.fromkeys(ids, f"not graded: no {name} in the submission"))
        return False
    target = course_dir / "submitted" / student_dir.name / assignment / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(submitted, target)
    try:
        done = nbgrader(course_dir, "autograde", assignment, "--student", student_dir.name, "--force",
                        env=env, timeout=submission_timeout_s)
        failed = done.returncode != 0
        log = (done.stdout + done.stderr)[-1500:]
    except Exception as exc:  # the wall-clock limit, or nbgrader itself failing to start
        failed, log = True, f"{type(exc).__name__}: {exc}"
    autograded = course_dir / "autograded" / student_dir.name / assignment / name
    if failed or not autograded.is_file():
        why = f"not graded: grading this notebook failed or ran past {submission_timeout_s} s ({log.strip()[-300:]})"
        result.reasons.update(dict.fromkeys(ids, why))
        return True
    result.reasons.update(_reasons_from(autograded, cell_timeout_s))
    return True


def _write(out: Path, columns: list[str], results: list[StudentResult]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "gradebook.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *columns, "total"])
        for r in results:
            writer.writerow([r.student, *(f"{r.scores[c]:g}" for c in columns), f"{r.total:g}"])
    feedback = out / "feedback"
    feedback.mkdir(exist_ok=True)
    for r in results:
        lines = [f"Feedback for {r.student}: {r.total:g} of {len(columns)} points", ""]
        for c in columns:
            mark = "passed" if r.scores[c] > 0 else f"0 points — {r.reasons.get(c, 'the check failed')}"
            lines.append(f"{c}: {mark}")
        (feedback / f"{r.student}.txt").write_text("\n".join(lines) + "\n")
