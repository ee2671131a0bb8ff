"""The book's Sphinx extension (book/_ext/flashtrade_offline.py), without building the book."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

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


def test_build_kernels_run_over_ipc_from_another_folder_without_the_transport_warning(tmp_path) -> None:
    """ipykernel warns on every unencrypted TCP kernel; the build's kernels use IPC and run quietly.

    Each notebook's kernel runs in the notebook's folder while the build runs elsewhere: the
    IPC sockets must be found from both (jupyter_client's default path is relative).
    """
    elsewhere = tmp_path / "notebook_folder"
    elsewhere.mkdir()
    script = tmp_path / "run.py"
    script.write_text(
        "import importlib.util, nbformat\n"
        "from nbclient import NotebookClient\n"
        f"spec = importlib.util.spec_from_file_location('ext', {str(SPEC.origin)!r})\n"
        "ext = importlib.util.module_from_spec(spec); spec.loader.exec_module(ext)\n"
        "ext.kernels_over_ipc()\n"
        "cell = ('import json, os; from ipykernel.connect import get_connection_info; '\n"
        "        'info = json.loads(get_connection_info()); '\n"
        "        'print(\"TRANSPORT\", info[\"transport\"], info[\"ip\"].startswith(\"/\")); print(\"CWD\", os.getcwd())')\n"
        "for _ in range(2):\n"
        "    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])\n"
        "    NotebookClient(nb, timeout=60, startup_timeout=30, kernel_name='python3',\n"
        f"                   resources={{'metadata': {{'path': {str(elsewhere)!r}}}}}).execute()\n"
        "    print(nb.cells[0].outputs[0]['text'].strip())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("TRANSPORT ipc True") == 2, done.stdout
    assert done.stdout.count(f"CWD {elsewhere}") == 2, done.stdout
    assert "without encryption" not in done.stdout + done.stderr


def test_code_folded_in_the_book_is_folded_in_jupyterlab_too() -> None:
    """A cell folded in the book (tag hide-input) starts collapsed in Lab (jupyter.source_hidden)."""
    import nbformat

    mismatched = []
    folded = 0
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            in_book = "hide-input" in cell.metadata.get("tags", [])
            in_lab = bool(cell.metadata.get("jupyter", {}).get("source_hidden"))
            folded += in_book
            if in_book != in_lab:
                mismatched.append(f"{path.name} cell {i}: hide-input {in_book}, source_hidden {in_lab}")
    assert folded, "no notebook folds its figure code"
    assert not mismatched, "\n".join(mismatched)


def test_glossary_terms_are_found_as_written_in_running_text() -> None:
    find = {t: ext._term_pattern(t) for t in ("Basis point (bp)", "HBM", "Lookback", "Attention",
                                              "Walk-forward evaluation", "RoPE (rotary position embedding)")}
    assert find["Basis point (bp)"].search("costs of 5 bp per trade").group(0) == "bp"
    assert find["Basis point (bp)"].search("one Basis point").group(0) == "Basis point"
    assert find["HBM"].search("reads from HBM.") and not find["HBM"].search("hbm")
    assert find["Lookback"].search("longer lookbacks help").group(0) == "lookbacks"
    assert not find["Attention"].search("FlashAttention and attention-free")  # not inside other words
    assert find["Walk-forward evaluation"].search("a walk-forward evaluation of")
    assert find["RoPE (rotary position embedding)"].search("with RoPE,") and not find[
        "RoPE (rotary position embedding)"].search("a rope")
