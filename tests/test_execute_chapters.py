"""`make execute`: chapters executed into the jupyter-cache, where the book build must find them.

If the key ever differed from the one myst-nb looks up, the build would silently execute every
chapter a second time; if a failing chapter were cached, the book would show its traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "execute_chapters.py"


def _notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_the_book_build_reads_what_was_executed_and_a_failure_is_not_cached(tmp_path: Path) -> None:
    from jupyter_cache import get_cache
    from myst_nb.core.read import standard_nb_read

    cache_dir = tmp_path / "cache"
    good = _notebook(tmp_path / "good.ipynb", "import os\nprint('threads', os.environ.get('OMP_NUM_THREADS'))")
    other = _notebook(tmp_path / "other.ipynb", "print(6 * 7)")
    done = _run("--cache", str(cache_dir), "--jobs", "2", "--threads", "1", str(good), str(other))
    assert done.returncode == 0, done.stdout + done.stderr
    cache = get_cache(cache_dir)
    for path, printed in ((good, "threads 1"), (other, "42")):
        _, merged = cache.merge_match_into_notebook(standard_nb_read(path.read_text()))  # as myst-nb reads it
        assert printed in merged.cells[0].outputs[0]["text"], merged.cells[0].outputs
        assert cache.match_cache_notebook(standard_nb_read(path.read_text())).data["execution_seconds"] > 0

    again = _run("--cache", str(cache_dir), str(good), str(other))
    assert again.returncode == 0 and "executing 0 of" in again.stdout, again.stdout  # cached: not run twice

    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('a broken chapter')")
    failed = _run("--cache", str(cache_dir), str(bad))
    assert failed.returncode == 1 and "a broken chapter" in failed.stdout, failed.stdout + failed.stderr
    try:
        get_cache(cache_dir).match_cache_notebook(standard_nb_read(bad.read_text()))
    except KeyError:
        pass
    else:
        raise AssertionError("a chapter that failed was cached: the book would show its traceback")
