"""Attention, from the NumPy reference to the GPU backends (chapters 1–4).

* :mod:`~flashtrade_lib.attention.reference` — naive, tiled online-softmax forward and the
  recomputing backward in NumPy (chapters 2–3);
* :mod:`~flashtrade_lib.attention.iomodel` and :mod:`~flashtrade_lib.attention.roofline` —
  slow-memory traffic counted, and turned into seconds on this machine (chapters 1–2);
* :mod:`~flashtrade_lib.attention.numerics` — error bounds of the online softmax (chapter 3);
* :mod:`~flashtrade_lib.attention.backends` — the one torch entry point
  ``attention(q, k, v, *, causal=False, dropout_p=0.0, scale=None, backend="auto")``
  (chapter 4; the Triton kernels themselves are :mod:`flashtrade_lib.kernels`).
"""

from flashtrade_lib._exports import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "naive_attention": "reference",
        "tiled_attention": "reference",
        "tiled_attention_backward": "reference",
        "attention": "backends",
    },
)
