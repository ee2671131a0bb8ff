"""Attention, from the NumPy reference (chapters 1–3) to the GPU backends (chapter 4).

``naive_attention``, ``tiled_attention`` and ``tiled_attention_backward`` live in
:mod:`flashtrade_lib.attention.reference`; the one torch entry point
``attention(q, k, v, *, causal=False, dropout_p=0.0, scale=None, backend="auto")``
lives in :mod:`flashtrade_lib.attention.backends`.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "naive_attention": "reference",
    "tiled_attention": "reference",
    "tiled_attention_backward": "reference",
    "attention": "backends",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy, so NumPy-only chapters never import torch
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
