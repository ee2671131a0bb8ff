"""The arguments every attention implementation shares, checked one way everywhere.

The NumPy reference (chapters 1–3) and the torch entry point (chapter 4 onwards)
must agree not only on the answer but on what they refuse: a ``scale`` of ``True``,
``inf`` or ``NaN``, a ``causal`` that is not a bool, or inputs holding NaN or inf.
Why refuse non-finite inputs rather than propagate them: the backends disagree on
what NaN means (a fused kernel's online softmax can turn a NaN row into zeros, as
if it were fully masked, while the naive formula returns NaN, and a masked-out NaN
value can still leak through ``0 · NaN`` in a tiled matrix product), so there is no
single propagated answer to promise. A refusal names the tensor and where the first
bad value is, which is where debugging starts. Finite inputs so large that the scores
``q·kᵀ·scale`` overflow the dtype (``q * 1e20``) are refused the same way
(:class:`ScoreOverflowError`), instead of returning all-NaN attention. (A fully *masked* row — a query that
may attend no key — is a different thing: it is well defined, and returns zeros.)

NumPy only, so that the NumPy chapters never import torch.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from flashtrade_lib.errors import FlashTradeError

__all__ = ["NonFiniteInputError", "ScoreOverflowError", "check_causal", "check_finite_array", "check_scale",
           "non_finite_message", "overflow_message"]


class NonFiniteInputError(FlashTradeError, ValueError):
    """q, k or v holds NaN or inf: attention of such inputs has no agreed value, so it is refused."""


class ScoreOverflowError(FlashTradeError, ValueError):
    """Finite q, k, v whose scores (or weighted values) overflow the dtype: the softmax would be NaN."""


def overflow_message(score_bound: float, v_max: float, dtype: str, largest: float) -> str:
    """The one message for finite inputs whose attention overflowed (shared by NumPy and torch)."""
    return (
        f"attention overflowed {dtype}: the scores q·kᵀ·scale can reach {score_bound:.3g} (largest row "
        f"norms of q and k times scale) and |v| reaches {v_max:.3g}, beyond {dtype}'s largest value "
        f"{largest:.3g}, so the result came out NaN or inf. Scale q and k (or v) down — normalise them — "
        "or compute in float64"
    )


def check_scale(scale: object, head_dim: int) -> float:
    """The softmax scale as a Python float: ``1/sqrt(head_dim)`` for ``None``, else a finite positive real.

    NumPy scalars are accepted (and turned into a Python float, so NumPy 2 never
    promotes float32 inputs to float64); bools, strings, arrays, inf and NaN are refused.
    """
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (Real, np.floating, np.integer)):
        raise ValueError(
            f"scale must be a positive real number or None (meaning 1/sqrt(d)), got {scale!r} "
            f"(a {type(scale).__name__})"
        )
    value = float(scale)
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite (a positive real number, or None for 1/sqrt(d)), got {value}")
    if value <= 0:
        raise ValueError(f"scale must be a positive real number or None (meaning 1/sqrt(d)), got {value}")
    return value


def check_causal(causal: object) -> bool:
    """``causal`` as a bool; anything but ``True``/``False`` (a NumPy bool included) is refused.

    Why strict: ``causal="no"`` or ``causal=0.0`` would otherwise be read as truthy or
    falsy, and an accidentally non-causal trading model sees the future.
    """
    if not isinstance(causal, (bool, np.bool_)):
        raise ValueError(f"causal must be True or False, got {causal!r} (a {type(causal).__name__})")
    return bool(causal)


def non_finite_message(name: str, count: int, total: int, first: tuple[int, ...], value: float) -> str:
    """The one message for a q, k or v holding NaN or inf (shared by NumPy and torch)."""
    return (
        f"{name} holds {count} non-finite value{'s' if count != 1 else ''} (of {total}; the first, "
        f"{value}, at index {first}); attention of NaN or inf inputs has no agreed value, so it is "
        "refused. Find where the NaN or inf entered (features with gaps, a diverging model: "
        "lower the learning rate) and fix or drop it"
    )


def check_finite_array(x: np.ndarray, name: str) -> None:
    """Refuse a NumPy ``x`` holding NaN or inf (see the module docstring for why)."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteInputError(non_finite_message(name, int(bad.sum()), x.size, first, float(x[first])))
