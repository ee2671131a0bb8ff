# IPython start-up used only by the book build and by nbval (the Makefile sets
# IPYTHONDIR to book/ipython). Learners running JupyterLab don't get this file.
#
# 1. Offline guard: a notebook that tries to reach the internet fails the build.
# 2. Plotly figures are emitted as text/html that expects plotly.js to be on the
#    page already (the book serves plotly.min.js locally), because Jupyter Book 1
#    silently drops plotly's default JSON output.
# 3. Each figure also carries its plotly JSON (which the HTML build ignores): `make pdf` draws
#    it as a PNG into the same cached output (scripts/draw_figures.py), so the PDF needs no
#    second execution and the web build draws no images (flashtrade_lib/pdf_figures.py).
import json as _json
import os as _os

if _os.environ.get("FLASHTRADE_ALLOW_NETWORK") != "1":
    from flashtrade_lib import netguard as _netguard

    _netguard.install()

try:
    import plotly.io as _pio
    from plotly.io._base_renderers import MimetypeRenderer as _MimetypeRenderer

    from flashtrade_lib.pdf_figures import PLOTLY_JSON as _PLOTLY_JSON

    class _BookRenderer(_MimetypeRenderer):
        """text/html figure that relies on the page's own (locally served) plotly.js."""

        def to_mimebundle(self, fig_dict):  # noqa: ANN001
            html = _pio.to_html(
                fig_dict,
                include_plotlyjs=False,
                include_mathjax=False,
                full_html=False,
                default_width="100%",
                default_height="460px",
                validate=False,
                config={"responsive": True},
            )
            # plain JSON (numpy arrays made lists), as plotly's own notebook renderer stores it
            figure = _json.loads(_pio.to_json(fig_dict, validate=False, remove_uids=False))
            return {"text/html": html, _PLOTLY_JSON: figure}

    _pio.renderers["flashtrade_book"] = _BookRenderer()
    _pio.renderers.default = "flashtrade_book"
except ImportError:  # plotly is a runtime dependency; this only guards odd environments
    pass
