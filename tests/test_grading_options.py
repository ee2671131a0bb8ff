"""`flashtrade course grade` refuses bad options and folders before any notebook runs (issue #26)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flashtrade_lib.course.grade import grade


def _course(tmp_path: Path) -> Path:
    course = tmp_path / "course"
    (course / "release" / "02_online_softmax").mkdir(parents=True)
    (course / "gradebook.db").write_bytes(b"")
    return course


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashtrade_lib.course", "grade", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("flag", "value"), [("--cell-timeout", "0"), ("--cell-timeout", "-1"),
                                             ("--submission-timeout", "0"), ("--memory-gb", "0")])
def test_limits_must_be_positive(tmp_path: Path, flag: str, value: str) -> None:
    done = _cli("--course", str(tmp_path), "--submissions", str(tmp_path), flag, value)
    assert done.returncode == 2 and f"{flag}: must be greater than 0, got {value}" in done.stderr, done.stderr


def test_out_must_be_a_folder_and_names_plain(tmp_path: Path) -> None:
    course, subs = _course(tmp_path), tmp_path / "submitted"
    (subs / "ada").mkdir(parents=True)
    (tmp_path / "grades.txt").write_text("")
    done = _cli("--course", str(course), "--submissions", str(subs), "--out", str(tmp_path / "grades.txt"))
    assert done.returncode == 2 and "grades.txt is a file: give a folder" in done.stderr, done.stderr
    (subs / "bob smith;rm").mkdir()
    with pytest.raises(ValueError, match="student folder names must be"):
        grade(course, subs, tmp_path / "grades")
    assert not (tmp_path / "grades").exists()  # nothing ran, nothing written


def test_a_release_is_needed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run `flashtrade course release` first"):
        grade(tmp_path, tmp_path, tmp_path / "grades")
    with pytest.raises(ValueError, match="cell_timeout_s must be a positive whole number"):
        grade(_course(tmp_path), tmp_path, tmp_path / "grades", cell_timeout_s=0)
