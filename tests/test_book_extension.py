"""The book's Sphinx extension (book/_ext/flashtrade_offline.py), without building the book."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT

SPEC = importlib.util.spec_from_file_location("flashtrade_offline", ROOT / "book" / "_ext" / "flashtrade_offline.py")
ext = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ext)


def test_chapter_items_are_numbered_within_their_chapter() -> None:
    env = SimpleNamespace(toc_fignumbers={
        "notebooks/02_online_softmax": {"exercise": {"ex-a": (3,), "ex-b": (4,)}, "theorem": {"thm": (1,)}},
        "notebooks/08_backtesting": {"exercise": {"ex-z": (19,), "ex-y": (18,), "ex-x": (20,)}},
        "book/course_guide": {"exercise": {"ex-guide": (21,)}},
    })
    ext.number_per_chapter(None, env)
    numbers = env.toc_fignumbers
    assert numbers["notebooks/02_online_softmax"] == {"exercise": {"ex-a": (2, 1), "ex-b": (2, 2)},
                                                       "theorem": {"thm": (2, 1)}}
    assert numbers["notebooks/08_backtesting"]["exercise"] == {"ex-y": (8, 1), "ex-z": (8, 2), "ex-x": (8, 3)}
    assert numbers["book/course_guide"]["exercise"] == {"ex-guide": (21,)}  # not a chapter: left alone


def test_build_kernels_start_without_the_unencrypted_transport_warning() -> None:
    """ipykernel warns on every start of a TCP kernel without CurveZMQ keys; the build gives it keys."""
    import zmq

    if not zmq.has("curve"):
        pytest.skip("this pyzmq's libzmq has no CurveZMQ (libsodium): kernels cannot be encrypted here")
    code = (
        "import importlib.util, nbformat\n"
        f"spec = importlib.util.spec_from_file_location('ext', {str(SPEC.origin)!r})\n"
        "ext = importlib.util.module_from_spec(spec); spec.loader.exec_module(ext)\n"
        "ext._encrypt_kernel_transport()\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])\n"
        "NotebookClient(nb, kernel_name='python3', timeout=120).execute()\n"
        "print('kernel said', nb.cells[0].outputs[0]['text'].strip())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "kernel said 42" in run.stdout
    assert "without encryption" not in run.stderr
