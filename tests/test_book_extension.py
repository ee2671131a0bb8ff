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


def _chapter(tmp_path, name: str, *markdown: str):
    import nbformat

    path = tmp_path / name
    cells = [nbformat.v4.new_markdown_cell("# 2. A chapter")] + [nbformat.v4.new_markdown_cell(m) for m in markdown]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


ITEMS = (
    "```{prf:theorem} A theorem\n:label: thm-a\n\nText.\n```\n\n```{prf:proof}\nProof.\n```",
    "```{prf:algorithm} An algorithm\n:label: alg-a\n:enumerator: 7.7\n\nSteps.\n```",
    "````{exercise} First\n:label: ex-ch02-first\n:class: full\n\nDo it.\n````\n\n"
    "```{exercise} Unnumbered\n:label: ex-ch02-free\n:nonumber:\n\nOptional.\n```",
    "```{exercise} Second\n:label: ex-ch02-second\n\nAgain.\n```",
)


def test_lab_numbers_are_stamped_as_the_book_numbers_them_and_stamping_twice_changes_nothing(tmp_path) -> None:
    import nbformat

    path = _chapter(tmp_path, "02_chapter.ipynb", *ITEMS)
    before = [(n.kind, n.label, n.book, n.lab) for n in ext.lab_numbers(path)]
    counted = ext.LAB_COUNTS
    assert before == [("prf:theorem", "thm-a", "2.1", counted), ("prf:proof", None, None, counted),
                      ("prf:algorithm", "alg-a", "2.1", "7.7"), ("exercise", "ex-ch02-first", "2.1", counted),
                      ("exercise", "ex-ch02-free", None, None), ("exercise", "ex-ch02-second", "2.2", counted)]
    assert ext.stamp_lab_numbers(path)
    assert all(n.lab == n.book for n in ext.lab_numbers(path))
    text = nbformat.read(path, as_version=4).cells[3].source
    # the option goes last: the label stays right under the title (flashtrade_lib.course.withhold reads it there)
    assert text.startswith("````{exercise} First\n:label: ex-ch02-first\n:class: full\n:enumerator: 2.1\n\nDo it.")
    assert ":nonumber:\n\nOptional." in text  # an unnumbered exercise gets no number
    assert "```{prf:proof}\n:nonumber:\nProof." in nbformat.read(path, as_version=4).cells[1].source
    stamped = path.read_bytes()
    assert not ext.stamp_lab_numbers(path) and path.read_bytes() == stamped


def test_an_aside_has_no_numbered_items(tmp_path) -> None:
    path = _chapter(tmp_path, "01a_aside.ipynb", ITEMS[3])
    with pytest.raises(ValueError, match="only chapters"):
        ext.lab_numbers(path)


@pytest.mark.slow  # a small Sphinx build: about 10 s on a quiet 2-core machine
def test_the_book_build_prints_the_stamped_numbers_and_fails_on_a_stale_one(tmp_path) -> None:
    """A two-chapter Sphinx project with the book's extensions: what the book prints is what Lab shows."""
    import nbformat

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    good = _chapter(notebooks, "02_good.ipynb", *ITEMS)
    ext.stamp_lab_numbers(good)
    stale = _chapter(notebooks, "03_stale.ipynb", ITEMS[3].replace("ex-ch02-second", "ex-ch03-first"))
    ext.stamp_lab_numbers(stale)
    nb = nbformat.read(stale, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace(":enumerator: 3.1", ":enumerator: 3.9")
    nbformat.write(nb, stale)
    (tmp_path / "index.md").write_text("# Book\n\n```{toctree}\nnotebooks/02_good\nnotebooks/03_stale\n```\n")
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['myst_nb', 'sphinx_exercise', 'sphinx_proof', 'flashtrade_offline']\n"
        "nb_execution_mode = 'off'\nexclude_patterns = ['_build']\n")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", str(tmp_path), str(tmp_path / "_build")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    html = (tmp_path / "_build" / "notebooks" / "02_good.html").read_text()
    for printed in ("Theorem 2.1", "Algorithm 2.1", "Exercise 2.1", "Exercise 2.2"):
        assert printed in html, f"the book does not print {printed}"
    # the one warning (an error with -W, as the book builds): nothing else, e.g. no "unknown option"
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert len(warnings) == 1 and "03_stale" in warnings[0] and "3.9 in JupyterLab but 3.1 in the book" in warnings[0], \
        done.stderr[-3000:]
