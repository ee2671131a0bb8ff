"""nbval really compares the stored output of checked cells (stripped notebooks would compare nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT


def _notebook(path: Path, stored: str, tagged: bool = True) -> Path:
    cell = nbformat.v4.new_code_cell("print(round(2 / 3, 4))")
    cell.metadata["tags"] = ["nbval-check-output"] if tagged else []
    cell.execution_count = 1  # nbval refuses a checked cell with outputs but no count
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _nbval(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, IPYTHONDIR=str(ROOT / "book" / "ipython"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(path)],
        capture_output=True, text=True, env=env, cwd=path.parent, timeout=300,
    )


@pytest.mark.slow
def test_matching_checked_output_passes(tmp_path: Path) -> None:
    result = _nbval(_notebook(tmp_path / "good.ipynb", "0.6667\n"))
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.slow
def test_changed_checked_output_fails(tmp_path: Path) -> None:
    result = _nbval(_notebook(tmp_path / "bad.ipynb", "0.6666\n"))
    assert result.returncode != 0, "nbval accepted a wrong stored output: it compares nothing"
    assert "0.6666" in result.stdout and "0.6667" in result.stdout
