"""scripts/draw_figures.py: `make pdf` draws each cached plotly figure as a PNG, in place."""

from __future__ import annotations

import base64
import importlib.util
import shutil
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "draw_figures.py"


def _draw_figures():
    spec = importlib.util.spec_from_file_location("draw_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cached_notebook(tmp_path: Path, figure: dict) -> Path:
    """A jupyter-cache holding one executed notebook whose one output is a figure, as the book caches it."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig.show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": "<div>figure</div>", "application/vnd.plotly.v1+json": figure})]
    nb.cells = [cell, nbformat.v4.new_code_cell("x = 1")]
    source = tmp_path / "chapter.ipynb"
    nbformat.write(nb, source)
    cache_dir = tmp_path / "cache"
    get_cache(str(cache_dir)).cache_notebook_bundle(CacheBundleIn(nb, str(source), data={"execution_seconds": 1.0}),
                                                    check_validity=False, overwrite=True)
    return cache_dir


def test_a_missing_cache_is_refused_with_what_to_do(tmp_path, capsys) -> None:
    assert _draw_figures().main(["--cache", str(tmp_path / "nothing")]) == 2
    assert "build the book first" in capsys.readouterr().err


@pytest.mark.skipif(not any(map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
                    reason="needs a Chromium (Debian: sudo apt-get install chromium)")
def test_each_figure_gets_a_png_in_the_cache_and_a_second_run_draws_nothing(tmp_path, capsys) -> None:
    figure = {"data": [{"type": "scatter", "x": [1, 2, 3], "y": [3, 1, 2]}],
              "layout": {"width": 300, "height": 200}}
    cache_dir = _cached_notebook(tmp_path, figure)
    draw = _draw_figures()
    assert draw.main(["--cache", str(cache_dir)]) == 0
    cache = get_cache(str(cache_dir))
    [record] = cache.list_cache_records()
    data = cache.get_cache_bundle(record.pk).nb.cells[0].outputs[0]["data"]
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG"), "the stored image is not a PNG"
    assert int.from_bytes(png[16:20], "big") == 600, "drawn at twice the figure's width, for print"
    assert data["text/html"] == "<div>figure</div>", "the web book's output is left as it was"
    assert record.data == {"execution_seconds": 1.0}, "the record's execution data is kept"
    # the notebook still matches its cache entry (the LaTeX build must find it, not execute again)
    assert cache.match_cache_notebook(nbformat.read(tmp_path / "chapter.ipynb", as_version=4)).pk == record.pk
    capsys.readouterr()
    assert draw.main(["--cache", str(cache_dir)]) == 0
    assert "0 figure(s) drawn" in capsys.readouterr().out


def test_the_web_build_shows_the_html_and_warns_of_nothing(tmp_path) -> None:
    """myst-nb reads every form of an output and warns about one it does not know: the plotly
    JSON each figure carries for the PDF renders as nothing (flashtrade_lib.pdf_figures)."""
    from sphinx.cmd.build import build_main

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A figure"), nbformat.v4.new_code_cell("fig.show()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": '<div class="the-figure">figure</div>',
        "application/vnd.plotly.v1+json": {"data": [{"type": "scatter", "y": [1, 2]}], "layout": {}}})]
    nbformat.write(nb, tmp_path / "index.ipynb")
    (tmp_path / "conf.py").write_text('extensions = ["myst_nb"]\nnb_execution_mode = "off"\n')
    out = tmp_path / "_build"
    status = build_main(["-W", "-q", "-b", "html", str(tmp_path), str(out)])
    assert status == 0, "the build warned (see the captured stderr)"
    page = (out / "index.html").read_text()
    assert '<div class="the-figure">figure</div>' in page and '"scatter"' not in page
