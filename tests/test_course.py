"""The course kit end to end: release chapters 2–4, fill chapter 2 as two fake students, autograde.

One student is right; the other makes the typical mistakes, writes an endless loop and
never defines one function; the gradebook and the feedback texts must say so. Also: the
student release of chapters 2–4 holds no solution text, in its notebooks or its install.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import nbformat
import pytest

from flashtrade_lib.course.grade import grade
from flashtrade_lib.course.release import release
from flashtrade_lib.course.solutions import load
from flashtrade_lib.course.submissions import fill, wrong_answer

SOLUTIONS = load()
CHAPTER = "02_online_softmax.ipynb"
IDS = ["ch02-tile-update", "ch02-tiled-forward", "ch02-online-softmax", "ch02-merge-stats", "ch02-causal-tiles"]
CELL_TIMEOUT_S = 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    return release(["02", "03", "04"], root / "course", cell_timeout_s=CELL_TIMEOUT_S)


def test_student_release_holds_no_solution_text(course) -> None:
    """No solution's code is in the released notebooks or the student wheel.

    A solution line that the book shows openly anyway does not count: the code the chapters
    reveal right after the exercise (the library's NumPy reference and Triton kernels: "try
    it, then read ours") and the chapters' own cells outside their solution blocks (stubs,
    demos). Every other line of a solution must be absent.
    """
    import flashtrade_lib.attention.reference as reference
    import flashtrade_lib.kernels.flash_attention as kernels
    from flashtrade_lib.course.blocks import strip_solutions
    from flashtrade_lib.course.release import chapter_notebook

    released = "\n".join(p.read_text() for p in course.notebooks)
    assert "{solution}" not in released
    names = zipfile.ZipFile(course.wheel).namelist()
    assert not [n for n in names if n.startswith("course/")]
    with zipfile.ZipFile(course.wheel) as wheel:
        installed = "\n".join(wheel.read(n).decode() for n in names if n.endswith(".py"))
    shown = [Path(module.__file__).read_text() for module in (reference, kernels)]
    shown += [strip_solutions(cell.source) for chapter in ("02", "03", "04")
              for cell in nbformat.read(chapter_notebook(chapter), 4).cells]
    revealed = {line.strip() for text in shown for line in text.splitlines()}
    released_lines = {line.strip() for line in nbformat_text(course.notebooks).splitlines()}
    installed_lines = {line.strip() for line in installed.splitlines()}
    for eid, sol in SOLUTIONS.items():
        if not eid.startswith(("ch02", "ch03", "ch04")):
            continue
        own = [line.strip() for line in sol.source.splitlines()[1:]
               if len(line.strip()) >= 12 and line.strip() not in revealed and not line.strip().startswith("#")]
        assert own, f"{eid}: nothing of its solution is its own"
        for where, lines in (("released notebooks", released_lines), ("student install", installed_lines)):
            leaked = [line for line in own if line in lines]
            assert not leaked, f"{eid}: the {where} contain lines of its solution: {leaked}"


def nbformat_text(paths: list[Path]) -> str:
    return "\n".join(cell.source for p in paths for cell in nbformat.read(p, 4).cells)


def test_autograde_two_students(course, tmp_path: Path) -> None:
    released = next(p for p in course.notebooks if p.name == CHAPTER)
    submissions = tmp_path / "submissions"
    plans = {
        "ada": {},  # everything right
        "bob": {  # the typical mistakes, an endless loop, and one function never defined
            "ch02-online-softmax": wrong_answer("ch02-online-softmax", "online_softmax_stats",
                                                "online_softmax_stats_without_rescaling"),
            "ch02-tile-update": wrong_answer("ch02-tile-update", "tile_update", "tile_update_forgetting_acc"),
            "ch02-tiled-forward": "def my_tiled_attention(q, k, v, block_q, block_k, causal=False, mask=None):\n"
                                  "    while True:\n        pass\n",
            "ch02-causal-tiles": None,
        },
    }
    for student, plan in plans.items():
        (submissions / student).mkdir(parents=True)
        nbformat.write(fill(released, plan, SOLUTIONS), submissions / student / CHAPTER)
    out = tmp_path / "grades"
    results = grade(course.course_dir, submissions, out, cell_timeout_s=CELL_TIMEOUT_S)
    rows = {row["student"]: row for row in csv.DictReader((out / "gradebook.csv").open())}
    assert set(rows) == {"ada", "bob"}
    assert [rows["ada"][eid] for eid in IDS] == ["1"] * len(IDS) and rows["ada"]["total"] == str(len(IDS)), rows["ada"]
    assert [rows["bob"][eid] for eid in IDS] == ["0", "0", "0", "1", "0"] and rows["bob"]["total"] == "1", rows["bob"]
    bob = (out / "feedback" / "bob.txt").read_text()
    assert "ch02-online-softmax: 0 points — " in bob and "exp(m_old − m_new)" in bob
    assert "ch02-tile-update: 0 points — " in bob and "rescale it like ℓ" in bob
    assert f"ch02-tiled-forward: 0 points — timed out after {CELL_TIMEOUT_S} s in the cell defining `my_tiled_attention`" in bob
    assert "ch02-causal-tiles: 0 points — never defined: name 'causal_tiles' is not defined" in bob
    assert "ch02-merge-stats: passed" in bob
    ada = (out / "feedback" / "ada.txt").read_text()  # chapters 3 and 4 were released but not handed in
    assert ada.startswith(f"Feedback for ada: {len(IDS)} of 11 points")
    assert "ch03-tiled-backward: 0 points — not graded: no 03_backward_recomputation.ipynb in the submission" in ada
    print({r.student: round(r.seconds, 1) for r in results})
