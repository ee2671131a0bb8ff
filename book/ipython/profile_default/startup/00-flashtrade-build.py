# IPython start-up used only by the book build and by nbval (the Makefile sets
# IPYTHONDIR to book/ipython). Learners running JupyterLab don't get this file.
#
# 1. Offline guard: a notebook that tries to reach the internet fails the build.
# 2. Plotly figures are emitted as text/html that expects plotly.js to be on the
#    page already (the book serves plotly.min.js locally), because Jupyter Book 1
#    silently drops plotly's default JSON output.
# 3. With FLASHTRADE_STATIC_FIGURES=1 (set by `make book` and `make pdf` where a Chromium is
#    installed) each figure also carries a PNG drawn by kaleido with that Chromium: the PDF
#    (LaTeX) build uses it, the HTML build keeps the interactive figure. One browser serves
#    every figure of a notebook (started on the first; ~1 s a figure after that).
import os as _os

if _os.environ.get("FLASHTRADE_ALLOW_NETWORK") != "1":
    from flashtrade_lib import netguard as _netguard

    _netguard.install()

try:
    import plotly.io as _pio
    from plotly.io._base_renderers import MimetypeRenderer as _MimetypeRenderer

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
            bundle = {"text/html": html}
            if _os.environ.get("FLASHTRADE_STATIC_FIGURES") == "1":
                bundle["image/png"] = _static_png(fig_dict)
            return bundle

    def _static_png(fig_dict):  # noqa: ANN001, ANN202
        import base64

        try:
            import kaleido

            if not getattr(_static_png, "server", False):
                kaleido.start_sync_server(silence_warnings=True)
                _static_png.server = True
            import warnings

            layout = fig_dict.get("layout", {})
            with warnings.catch_warnings():  # "kopts ignored with a server": the server's own defaults
                warnings.simplefilter("ignore", UserWarning)
                png = _pio.to_image(fig_dict, format="png", width=layout.get("width", 820),
                                    height=layout.get("height", 460), scale=2, validate=False)
        except Exception as exc:  # a PDF without its figures is not a result: say what to install
            raise RuntimeError(
                "FLASHTRADE_STATIC_FIGURES=1 draws each figure as a PNG for the PDF with kaleido and "
                "a Chromium: pip install kaleido, install chromium and set BROWSER_PATH to it "
                f"(or unset FLASHTRADE_STATIC_FIGURES). Cause: {exc!r}"
            ) from exc
        return base64.b64encode(png).decode("ascii")

    _pio.renderers["flashtrade_book"] = _BookRenderer()
    _pio.renderers.default = "flashtrade_book"
except ImportError:  # plotly is a runtime dependency; this only guards odd environments
    pass
