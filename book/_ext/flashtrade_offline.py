"""Sphinx extension: serve plotly.js from the installed plotly package, not a CDN.

Notebooks emit plotly figures as ``text/html`` that expects a global ``Plotly``
(see tests/ipython/…/00-flashtrade-build.py). This adds ``plotly.min.js`` — the copy
shipped inside the plotly wheel, so its version always matches the Python side — as
a normal (synchronous) script in every page's head, and copies the file into
``_static`` when the build finishes. MathJax is served by ``sphinx-mathjax-offline``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

PLOTLY_JS = "plotly.min.js"


def _plotly_js_path() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def _copy_plotly(app: Sphinx, exc: Exception | None) -> None:
    if exc is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_path(), static / PLOTLY_JS)


def setup(app: Sphinx) -> dict[str, object]:
    _plotly_js_path()  # fail early, with a clear message
    app.add_js_file(PLOTLY_JS, priority=100)
    app.connect("build-finished", _copy_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
