"""Chapter 2 opened in a real JupyterLab (with jupyterlab-myst) reads like the book.

Starts JupyterLab on loopback with a token, in a temporary folder holding a copy of the
chapter, opens it in headless Chromium (Debian's, through Playwright, as
tests/test_browser.py does) and asserts that the exercise boxes render — no raw MyST
directive text is visible — and that the solutions stay collapsed until asked for.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

pytestmark = pytest.mark.browser

CHAPTER = "02_online_softmax.ipynb"
RAW_MYST = ("{exercise}", "{solution}", ":label: ex-", ":class: dropdown", "{footcite}")
# a line of the (collapsed) solution of the first code exercise: it must not be visible
SOLUTION_LINE = "alpha = np.exp(m - shift)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chromium = shutil.which("chromium") or os.environ.get("FLASHTRADE_CHROMIUM")
    if chromium is None:
        if os.environ.get("FLASHTRADE_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium not found (sudo apt-get install chromium)", pytrace=False)
        pytest.skip("Chromium not found: install it (sudo apt-get install chromium)")
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / CHAPTER, root / CHAPTER)
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (JupyterLab otherwise draws only the cells on screen)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={root / '.settings'}",
               f"--LabApp.workspaces_dir={root / '.workspaces'}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {server.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            yield browser, f"{url}/lab/tree/{CHAPTER}?token={token}"
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_chapter_2_exercises_render_and_solutions_stay_collapsed(lab) -> None:
    browser, url = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    notebook = page.locator(".jp-Notebook")
    notebook.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-MarkdownCell').length > 5 && "
        "[...document.querySelectorAll('.jp-MarkdownCell')].every(c => c.querySelector('.jp-RenderedMarkdown, .myst'))",
        timeout=60_000,
    )
    page.wait_for_timeout(2000)  # let the MyST renderer finish every cell
    text = notebook.inner_text()
    visible_raw = [raw for raw in RAW_MYST if raw in text]
    assert not visible_raw, f"raw MyST visible in JupyterLab: {visible_raw}"
    assert "The whole tiled forward" in text, "the exercise boxes did not render"
    solution = page.get_by_text(SOLUTION_LINE)
    assert solution.count() >= 1, "the solution is not in the page at all"
    assert not solution.first.is_visible(), "the solution is shown in plain sight; it should be collapsed"


def test_chapter_2_numbers_exercises_and_algorithms_as_the_book_does(lab) -> None:
    """The numbers come from the notebooks' ``:enumerator:`` options (scripts/number_lab.py)."""
    import re

    browser, url = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-MarkdownCell').length > 5 && "
        "[...document.querySelectorAll('.jp-MarkdownCell')].every(c => c.querySelector('.jp-RenderedMarkdown, .myst'))",
        timeout=60_000,
    )
    page.wait_for_timeout(2000)
    text = page.locator(".jp-Notebook").inner_text()
    import importlib.util

    spec = importlib.util.spec_from_file_location("flashtrade_offline", ROOT / "book" / "_ext" / "flashtrade_offline.py")
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    titles = [f"{n.kind.removeprefix('prf:').title()} {n.book} (" for n in book.lab_numbers(ROOT / "notebooks" / CHAPTER)
              if n.book]
    assert {"Theorem 2.1 (", "Algorithm 2.1 (", "Exercise 2.1 ("} <= set(titles)
    missing = [t for t in titles if t not in text]
    assert not missing, f"JupyterLab does not show the book's numbers {missing}"
    # Lab's own count would read "Exercise 1 (…)" and "Proof 1" (the book's proofs have no number)
    counted = re.findall(r"\b(?:Exercise|Algorithm|Theorem|Proposition) \d+ \(|\bProof \d", text)
    assert not counted, f"numbers JupyterLab counted itself: {counted}"
