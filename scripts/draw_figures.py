"""Draw every plotly figure of the executed chapters as a PNG, for the PDF.

The book build executes each chapter once into the jupyter-cache (``_build/.jupyter_cache``),
and every figure output there carries its plotly JSON beside the HTML the web book shows
(book/ipython's renderer). The PDF (LaTeX) cannot show HTML, so ``make pdf`` runs this script
after the book build: it draws each figure that has no PNG yet with kaleido and the local
Chromium (one browser for the whole book), and stores the PNG in the same cached output.
The LaTeX build then reads the cache like the web build — no chapter executes a second time,
and ``make test`` never pays for drawing images only the PDF uses.

    .venv/bin/python scripts/draw_figures.py [--cache _build/.jupyter_cache]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import warnings
from pathlib import Path

from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from flashtrade_lib.pdf_figures import PLOTLY_JSON as PLOTLY

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def figures_without_png(nb) -> list[dict]:
    """The output data dicts of ``nb`` that hold a plotly figure but no PNG of it."""
    return [out["data"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", [])
            if PLOTLY in out.get("data", {}) and "image/png" not in out["data"]]


def png_of(figure: dict) -> str:
    """One figure drawn by kaleido at its own size (twice the pixels, for print), base64."""
    import plotly.io as pio

    layout = figure.get("layout", {})
    with warnings.catch_warnings():  # "kopts ignored with a server": the server's own defaults
        warnings.simplefilter("ignore", UserWarning)
        png = pio.to_image(figure, format="png", width=layout.get("width", 820),
                           height=layout.get("height", 460), scale=2, validate=False)
    return base64.b64encode(png).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="_build/.jupyter_cache", help="the book build's jupyter-cache")
    args = parser.parse_args(argv)
    if not Path(args.cache, "global.db").is_file():
        print(f"no jupyter-cache at {args.cache}: build the book first (make book)", file=sys.stderr)
        return 2
    if not os.environ.get("BROWSER_PATH"):
        found = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
        if found is None:
            print("drawing the figures needs a Chromium (Debian: sudo apt-get install chromium), "
                  "or BROWSER_PATH set to one", file=sys.stderr)
            return 2
        os.environ["BROWSER_PATH"] = found
    import kaleido

    cache = get_cache(args.cache)
    started = False
    drawn = 0
    for record in cache.list_cache_records():
        nb = cache.get_cache_bundle(record.pk).nb
        todo = figures_without_png(nb)
        if not todo:
            continue
        if not started:
            kaleido.start_sync_server(silence_warnings=True)
            started = True
        for data in todo:
            data["image/png"] = png_of(data[PLOTLY])
        cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data=record.data),
                                    check_validity=False, overwrite=True)
        drawn += len(todo)
        print(f"{Path(record.uri).name}: {len(todo)} figure(s) drawn", flush=True)
    if started:
        kaleido.stop_sync_server(silence_warnings=True)
    print(f"{drawn} figure(s) drawn into {args.cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
