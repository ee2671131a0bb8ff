"""The plotly JSON that each figure of the executed book carries, for the PDF.

The book's IPython renderer (book/ipython) gives every figure output two forms: the HTML the
web book shows, and the figure's plotly JSON, from which ``make pdf`` draws a PNG into the same
cached output (scripts/draw_figures.py) — so the PDF needs no second execution and the web
build draws no images. myst-nb renders every form of an output when it reads a notebook and
warns about a form it does not know (a failed ``-W`` build), so this plugin (the
``myst_nb.mime_renderers`` entry point in pyproject.toml) renders the plotly JSON as nothing:
the web page picks the HTML, the PDF the PNG.
"""

from __future__ import annotations

from typing import Any

PLOTLY_JSON = "application/vnd.plotly.v1+json"


class PlotlyJsonForThePdf:
    """myst-nb mime renderer: the plotly JSON is there to be drawn, not shown."""

    mime_priority_overrides: tuple = ()

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        return [] if data.mime_type == PLOTLY_JSON else None
