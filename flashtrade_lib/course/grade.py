"""Autograding: a folder of submitted notebooks → a gradebook, a CSV and one feedback file per student.

Submissions are untrusted code. Each notebook runs in the student's world
(:mod:`flashtrade_lib.course.sandbox`): a virtualenv made from the release's student wheel, a
fresh copy of that one notebook, no course sources, gradebook or classmates in sight, an
unprivileged user, real limits and no network. Only this process — never the kernel — reads
the release and writes grades:

1. everything is checked before anything runs (limits, folders, student names, the release);
2. each notebook is *prepared* here: read (a malformed file is reported with its JSON error),
   its locked autograder cells restored from the release (a notebook whose autograder cells
   were removed cannot be graded), outputs and stray nbgrader metadata dropped;
3. the sandbox executes it and reports one status per code cell; the parent turns those into
   points and into feedback that names what happened ("timed out after 30 s in the cell
   defining `merge`");
4. each graded notebook's result is kept in ``out/.graded/`` (keyed by the submission, the
   release and the limits), so a run that is stopped resumes where it was;
5. at the end a new gradebook is written beside the old one and swapped in at once, then the
   CSV, the feedback files and ``grading.json`` (the isolation this machine gave, the limits,
   what could not be graded).

:func:`grade` returns every student's result; :attr:`StudentResult.ungraded` lists the notebooks
that could not be graded, and ``flashtrade course grade`` exits 1 when there is any.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from flashtrade_lib.course.release import exercises_in
from flashtrade_lib.course.sandbox import Limits, Outcome, Sandbox

STUDENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_NOTEBOOK_BYTES = 2**25  # a submitted notebook larger than this is refused unread
REMOVED = "the autograder cells were removed from this notebook — it cannot be graded; re-download the release"


@dataclass
class StudentResult:
    student: str
    scores: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_by_notebook: dict[str, float] = field(default_factory=dict)  #: wall time of each graded notebook
    ungraded: dict[str, str] = field(default_factory=dict)  #: notebook -> why it could not be graded

    @property
    def total(self) -> float:
        return sum(self.scores.values())


@dataclass(frozen=True)
class Released:
    """One released notebook, read once by the grader (the sandbox never sees the release)."""

    path: Path
    nb: nbformat.NotebookNode
    digest: str

    @property
    def assignment(self) -> str:
        return self.path.parent.name

    @property
    def locked(self) -> dict[str, nbformat.NotebookNode]:
        return {c.metadata["nbgrader"]["grade_id"]: c for c in self.nb.cells
                if c.metadata.get("nbgrader", {}).get("locked") and c.metadata["nbgrader"].get("grade_id")}

    @property
    def graded(self) -> list[tuple[str, str]]:
        """(exercise id, answer name) of each autograder cell."""
        locked = self.locked
        return [(eid, answer) for eid, answer in dict(exercises_in(self.nb)).items() if eid in locked]


class NotGradable(Exception):
    """This notebook cannot be graded (the reason is the message)."""


# ------------------------------------------------------------------ checks before anything runs


def check_inputs(course_dir: Path, submissions: Path, out: Path) -> list[Path]:
    """Refuse bad folders and student names before any notebook runs; return the student folders."""
    if not (course_dir / "release").is_dir():
        raise ValueError(f"{course_dir} has no release/ folder: run `flashtrade course release` first")
    if not (course_dir / "gradebook.db").is_file():
        raise ValueError(f"{course_dir} has no gradebook.db: run `flashtrade course release` first")
    if not submissions.is_dir():
        raise ValueError(f"--submissions {submissions} is not a folder (one folder per student, holding notebooks)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a folder for gradebook.csv and feedback/")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    bad = [p.name for p in students if not STUDENT_NAME.fullmatch(p.name)]
    if bad:
        raise ValueError(f"student folder names must be letters, digits, '.', '_' or '-' (at most 64): {bad!r}")
    if not students:
        raise ValueError(f"{submissions} holds no student folders")
    return students


def student_wheel(course_dir: Path, scratch: Path) -> Path:
    """The release's student install; a release made with ``--no-wheel`` gets one built now."""
    found = sorted((course_dir / "student_install").glob("flashtrade_lib-*.whl"))
    if found:
        return found[-1]
    from flashtrade_lib.course.release import build_student_wheel

    return build_student_wheel(scratch / "student_install")


# ------------------------------------------------------------------ one notebook


def prepare(submitted: Path, released: Released) -> nbformat.NotebookNode:
    """The notebook the sandbox runs: the student's cells, the release's locked cells, no outputs."""
    size = submitted.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise NotGradable(f"{submitted.name} is {size / 2**20:.0f} MiB: larger than any notebook of this course")
    try:
        text = submitted.read_bytes().decode("utf-8")
        json.loads(text)
        nb = nbformat.reads(text, as_version=4)
    except UnicodeDecodeError as exc:
        raise NotGradable(f"malformed notebook {submitted}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise NotGradable(f"malformed notebook {submitted}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno})") from None
    except Exception as exc:  # nbformat raises JSON errors, NotJSONError, validation errors
        raise NotGradable(f"malformed notebook {submitted}: {type(exc).__name__}: {exc}"[:600]) from None
    locked, seen = released.locked, set()
    cells = []
    for cell in nb.get("cells", []):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in locked and grade_id not in seen:
            seen.add(grade_id)
            cell = nbformat.from_dict(dict(locked[grade_id]))
        else:
            cell.get("metadata", {}).pop("nbgrader", None)  # only the release's cells are autograder cells
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    missing = [g for g in locked if g not in seen]
    if missing:
        raise NotGradable(f"{REMOVED} (missing: {', '.join(missing)})")
    prepared = nbformat.v4.new_notebook(cells=cells)
    prepared.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return prepared


def _defining_cell(nb: nbformat.NotebookNode, grade_index: int, answer: str) -> int:
    """The code cell before the autograder cell that defines ``answer`` (else the one just before it)."""
    defines = re.compile(rf"^(?:def|class)\s+{re.escape(answer)}\b|^{re.escape(answer)}\s*[:=]", re.M)
    before = [i for i in range(grade_index) if nb.cells[i].cell_type == "code"]
    return next((i for i in reversed(before) if defines.search(nb.cells[i].source)), before[-1] if before else -1)


def score(nb: nbformat.NotebookNode, released: Released, outcome: Outcome, limits: Limits) -> tuple[dict, dict]:
    """Points and reasons of each exercise from the sandbox's per-cell report."""
    index = {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
             if c.metadata.get("nbgrader", {}).get("grade")}
    stopped = next((c for c in sorted(outcome.cells.values(), key=lambda c: c.index) if c.status in ("stuck", "died")),
                   None)
    scores, reasons = {}, {}
    for eid, answer in released.graded:
        i = index[eid]
        cell, defining = outcome.cells.get(i), outcome.cells.get(_defining_cell(nb, i, answer))
        where = f"the cell defining `{answer}`"
        if cell is not None and cell.status == "ok":
            scores[eid] = float(released.locked[eid].metadata["nbgrader"].get("points", 1))
            continue
        scores[eid] = 0.0
        if defining is not None and defining.status in ("timeout", "stuck"):
            reasons[eid] = f"timed out after {limits.cell_timeout_s} s in {where} (an endless loop?)"
        elif cell is None and stopped is not None:
            reasons[eid] = (f"not run: cell {stopped.index + 1} ignored two interrupts ({limits.cell_timeout_s} s "
                            "apart), so no later cell could run" if stopped.status == "stuck" else
                            f"not run: the kernel died in cell {stopped.index + 1} (out of memory, or os._exit?)")
        elif cell is None:
            reasons[eid] = f"not reached: {outcome.problem or 'the notebook stopped before this cell'}"
        elif cell.status in ("timeout", "stuck"):
            reasons[eid] = f"timed out after {limits.cell_timeout_s} s while checking `{answer}` (an endless loop?)"
        elif cell.status == "died":
            reasons[eid] = f"the kernel died while checking `{answer}` (out of memory, or os._exit?)"
        elif cell.ename == "NameError":
            reasons[eid] = f"never defined: {cell.evalue} (run the cell that defines your answer)"
        elif cell.ename == "AssertionError":
            reasons[eid] = cell.evalue or "the check failed"
        elif cell.ename == "MemoryError":
            reasons[eid] = (f"your code ran out of memory (the limit is {limits.memory_bytes / 2**30:g} GiB per "
                            f"process): {cell.evalue}")
        else:
            reasons[eid] = f"your code raised {cell.ename}: {cell.evalue}"
    return scores, reasons


def _grade_key(submitted: Path, released: Released, limits: Limits) -> str:
    h = hashlib.sha256(submitted.read_bytes())
    h.update(released.digest.encode())
    h.update(json.dumps(asdict(limits), sort_keys=True).encode())
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the run


def grade(course_dir: Path, submissions: Path, out: Path, *, cell_timeout_s: int = 120,
          submission_timeout_s: int = 1800, memory_bytes: int = Limits.memory_bytes, user: str | int | None = None,
          regrade: bool = False, namespaces: bool | None = None) -> list[StudentResult]:
    """Grade ``submissions/<student>/<chapter notebook>.ipynb``; write the gradebook, ``out/gradebook.csv``,
    ``out/feedback/`` and ``out/grading.json``. ``regrade``: ignore results kept from an earlier run."""
    limits = Limits(cell_timeout_s=cell_timeout_s, submission_timeout_s=submission_timeout_s,
                    memory_bytes=memory_bytes)
    limits.validate()
    course_dir, submissions, out = Path(course_dir).resolve(), Path(submissions).resolve(), Path(out).resolve()
    students = check_inputs(course_dir, submissions, out)
    released = {}
    for path in sorted((course_dir / "release").glob("*/*.ipynb")):
        data = path.read_bytes()
        released[path.name] = Released(path, nbformat.reads(data.decode(), as_version=4),
                                       hashlib.sha256(data).hexdigest())
    if not released:
        raise ValueError(f"{course_dir} has no released chapters: run `flashtrade course release` first")
    columns = [eid for name in sorted(released) for eid, _ in released[name].graded]
    kept = out / ".graded"
    results = []
    with tempfile.TemporaryDirectory(prefix="flashtrade-grading-") as tmp:
        wheel = student_wheel(course_dir, Path(tmp))
        with Sandbox(wheel, limits, user=user, namespaces=namespaces) as sandbox:
            for student_dir in students:
                result = StudentResult(student_dir.name, dict.fromkeys(columns, 0.0))
                for _, rel in sorted(released.items()):
                    _grade_one(sandbox, student_dir, rel, result, kept, regrade)
                result.seconds = sum(result.seconds_by_notebook.values())
                results.append(result)
        isolation = sandbox.isolation.describe()
    _record(course_dir, released, results)
    _write(out, columns, results, isolation, limits)
    return results


def _grade_one(sandbox: Sandbox, student_dir: Path, rel: Released, result: StudentResult, kept: Path,
               regrade: bool) -> None:
    ids = [eid for eid, _ in rel.graded]
    submitted = student_dir / rel.path.name
    if not submitted.is_file():
        result.reasons.update(dict.fromkeys(ids, f"not graded: no {rel.path.name} in the submission"))
        return
    key, record = _grade_key(submitted, rel, sandbox.limits), kept / student_dir.name / f"{rel.path.stem}.json"
    if not regrade and record.is_file():
        try:
            saved = json.loads(record.read_text())
        except ValueError:
            saved = {}
        if saved.get("key") == key:  # graded before, same notebook, same release, same limits
            result.scores.update(saved["scores"])
            result.reasons.update(saved["reasons"])
            result.seconds_by_notebook[rel.path.name] = saved["seconds"]
            return
    try:
        nb = prepare(submitted, rel)
    except NotGradable as exc:
        why = str(exc)
        result.ungraded[rel.path.name] = why
        result.reasons.update(dict.fromkeys(ids, f"not graded: {why}"))
        return
    outcome = sandbox.run(nb, rel.path.name)
    if not outcome.finished and not outcome.cells:  # nothing ran: the sandbox or the kernel could not start
        why = outcome.problem or "the notebook did not run"
        result.ungraded[rel.path.name] = why
        result.reasons.update(dict.fromkeys(ids, f"not graded: {why}"))
        return
    scores, reasons = score(nb, rel, outcome, sandbox.limits)
    result.scores.update(scores)
    result.reasons.update(reasons)
    result.seconds_by_notebook[rel.path.name] = outcome.seconds
    if not outcome.finished:  # cut by the whole-notebook limit: graded as far as it got, and said so
        result.ungraded[rel.path.name] = outcome.problem
        return
    _write_atomic(record, json.dumps({"key": key, "scores": scores, "reasons": reasons, "seconds": outcome.seconds}))


def _record(course_dir: Path, released: dict[str, Released], results: list[StudentResult]) -> None:
    """Write the grades into a copy of the gradebook and swap it in: the old one stays whole until then."""
    from nbgrader.api import Gradebook

    live = course_dir / "gradebook.db"
    new = course_dir / f".gradebook-{os.getpid()}.db"
    with sqlite3.connect(live) as src, sqlite3.connect(new) as dst:
        src.backup(dst)  # a consistent copy even if something else holds the file open
    gradebook = Gradebook(f"sqlite:///{new}")
    try:
        for result in results:
            graded = [rel for rel in released.values() if rel.path.name in result.seconds_by_notebook
                      and rel.path.name not in result.ungraded]
            if not graded:
                continue
            gradebook.update_or_create_student(result.student)
            for rel in graded:
                with warnings.catch_warnings():  # nbgrader's own add_submission trips SQLAlchemy's autoflush warning
                    warnings.simplefilter("ignore")
                    gradebook.update_or_create_submission(rel.assignment, result.student)
                for eid, _ in rel.graded:
                    row = gradebook.find_grade(eid, rel.path.stem, rel.assignment, result.student)
                    row.auto_score = result.scores[eid]
            gradebook.db.commit()
    except BaseException:
        gradebook.close()
        new.unlink(missing_ok=True)
        raise
    gradebook.close()
    os.replace(new, live)


def _write(out: Path, columns: list[str], results: list[StudentResult], isolation: str, limits: Limits) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = [["student", *columns, "total"]]
    rows += [[r.student, *(f"{r.scores[c]:g}" for c in columns), f"{r.total:g}"] for r in results]
    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, newline="", suffix=".csv") as f:
        csv.writer(f).writerows(rows)
    os.replace(f.name, out / "gradebook.csv")
    feedback = out / "feedback"
    staged = Path(tempfile.mkdtemp(dir=out, prefix=".feedback-"))
    for r in results:
        lines = [f"Feedback for {r.student}: {r.total:g} of {len(columns)} points", ""]
        for c in columns:
            mark = "passed" if r.scores[c] > 0 else f"0 points — {r.reasons.get(c, 'the check failed')}"
            lines.append(f"{c}: {mark}")
        (staged / f"{r.student}.txt").write_text("\n".join(lines) + "\n")
    old = out / f".feedback-old-{os.getpid()}"
    if feedback.exists():
        feedback.rename(old)
    staged.rename(feedback)
    shutil.rmtree(old, ignore_errors=True)
    _write_atomic(out / "grading.json", json.dumps({
        "isolation": isolation, "limits": asdict(limits), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ungraded": {r.student: r.ungraded for r in results if r.ungraded}}, indent=1, ensure_ascii=False))
