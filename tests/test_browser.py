"""Open every page of the built book in headless Chromium, fully offline.

Asserts per page: no console errors, no page errors, no request that leaves the
file system, MathJax typeset wherever there is math, a rendered plotly SVG wherever
there is a plotly figure, headings in order, images with alt text.

Uses Debian's Chromium through Playwright (`playwright install` cannot download
browsers here). Without Chromium the test is skipped with instructions — unless
FLASHTRADE_REQUIRE_BROWSER=1 (set by CI), where a missing browser fails.
"""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _chromium() -> str | None:
    explicit = os.environ.get("FLASHTRADE_CHROMIUM")
    if explicit:
        return explicit
    return next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        message = (
            "Chromium not found: install it (Debian/Ubuntu: sudo apt-get install chromium) "
            "or set FLASHTRADE_CHROMIUM=/path/to/chrome to run the browser check"
        )
        if os.environ.get("FLASHTRADE_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def _pages(built_book):
    """Every built page, except redirect stubs (index.html points at the first chapter)."""
    pages = sorted(p for p in built_book.rglob("*.html") if "_static" not in p.parts)
    return [p for p in pages if 'http-equiv="refresh"' not in p.read_text(encoding="utf-8")[:2000].lower()]


def test_every_page_renders_offline(browser, built_book) -> None:
    problems: dict[str, list[str]] = {}
    pages = _pages(built_book)
    assert pages, "the built book has no pages"
    for page_path in pages:
        context = browser.new_context()
        page = context.new_page()
        found: list[str] = []
        page.on("console", lambda m, found=found: found.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e, found=found: found.append(f"page error: {e}"))
        page.on("request", lambda r, found=found: found.append(f"network request: {r.url}")
                if not r.url.startswith(("file:", "data:", "blob:", "about:")) else None)
        page.goto(page_path.as_uri(), wait_until="load")
        if page.locator(".math").count():
            # every math element must end up holding MathJax output (hidden ones included)
            try:
                page.wait_for_function(
                    "() => document.querySelectorAll('.math:not(:has(mjx-container))').length === 0",
                    timeout=20000,
                )
            except Exception:
                left = page.locator(".math:not(:has(mjx-container))").count()
                found.append(f"{left} math element(s) not typeset by MathJax")
        n_plots = page.locator("div.plotly-graph-div").count()
        if n_plots:
            page.wait_for_timeout(500)
            rendered = page.locator("div.plotly-graph-div svg.main-svg").count()
            if rendered == 0:
                found.append(f"{n_plots} plotly figure(s) but no rendered SVG")
        levels = page.eval_on_selector_all(
            "article h1, article h2, article h3, article h4",
            "els => els.map(e => Number(e.tagName[1]))",
        )
        for prev, cur in zip(levels, levels[1:], strict=False):
            if cur > prev + 1:
                found.append(f"heading level jumps from h{prev} to h{cur}")
                break
        no_alt = page.eval_on_selector_all("article img:not([alt]), article img[alt='']", "els => els.length")
        if no_alt:
            found.append(f"{no_alt} image(s) without alt text")
        if found:
            problems[str(page_path.relative_to(built_book))] = found
        context.close()
    assert not problems, "\n".join(f"{p}: {v}" for p, v in problems.items())
