"""JupyterLab opens every chapter without flagging it unsaved: each notebook is stored exactly as Lab would save it.

Lab marks a notebook unsaved ("dirty") on open when what it would write differs from the file:
the JSON layout (jupyter_server saves ``nbformat.write(nb, f)``: 1-space indent, sorted keys,
a final newline) and the metadata Lab sets once the kernel has started — the ``kernelspec`` of
that kernel (ipykernel installs ``"Python 3 (ipykernel)"``) and the kernel's ``language_info``.
Every chapter stored ``"display_name": "Python 3"``, so every one was flagged unsaved a few
seconds after opening; found in JupyterLab 4 driven by headless Chromium (the tab turned dirty
once the kernel started, and saving changed that one line, nothing else), fixed in the notebooks.
A reader on another Python version than the pinned one still sees it once: Lab records the
kernel's ``language_info.version``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def lab_metadata() -> dict[str, dict]:
    """The notebook metadata Lab writes once an ipykernel Python kernel has started (version aside)."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = get_kernel_dict()
    language = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    return {"kernelspec": {"display_name": spec["display_name"], "language": spec["language"], "name": KERNEL_NAME},
            "language_info": language}


def unsaved_on_open(path: Path) -> list[str]:
    """What JupyterLab would change in ``path`` by opening it, starting its kernel and saving it."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    found = []
    expected = lab_metadata()
    if dict(nb.metadata.get("kernelspec", {})) != expected["kernelspec"]:
        found.append(f"kernelspec {dict(nb.metadata.get('kernelspec', {}))} (Lab writes {expected['kernelspec']})")
    stored = {k: v for k, v in nb.metadata.get("language_info", {}).items() if k != "version"}
    if stored != expected["language_info"]:
        found.append(f"language_info {stored} (Lab writes {expected['language_info']})")
    rewritten = nbformat.writes(nb)
    if not rewritten.endswith("\n"):
        rewritten += "\n"  # nbformat.write ends the file with a newline
    if rewritten != text:
        pairs = enumerate(zip(text.splitlines(), rewritten.splitlines(), strict=False), 1)
        line = next((i for i, (a, b) in pairs if a != b), min(len(text.splitlines()), len(rewritten.splitlines())) + 1)
        found.append(f"its JSON is not as nbformat writes it (first difference at line {line})")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_as_jupyterlab_saves_it(path: Path) -> None:
    changes = unsaved_on_open(path)
    assert not changes, f"{path.name} opens as unsaved in JupyterLab: {'; '.join(changes)}"


def test_the_check_sees_the_display_name_that_made_chapters_unsaved(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.metadata.kernelspec["display_name"] = "Python 3"
    nbformat.write(nb, tmp_path / "old.ipynb")
    assert any("kernelspec" in change for change in unsaved_on_open(tmp_path / "old.ipynb"))
