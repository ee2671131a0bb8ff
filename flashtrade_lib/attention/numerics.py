"""Rounding in low-precision attention, and the error bounds the kernels' tests use as tolerances.

A FlashAttention kernel on tensor cores keeps its statistics ``m``, ``ℓ`` and its
accumulators in fp32, but rounds the probabilities ``P`` (and, in the backward, ``dS``)
to fp16/bf16 before each matrix product, and stores its outputs in the input dtype.
With ``u`` the unit roundoff of a format (``2⁻¹¹`` fp16, ``2⁻⁸`` bf16, ``2⁻²⁴`` fp32) a
rounded ``p̃ = p(1 + δ)``, ``|δ| ≤ u``, so — to first order, the standard worst-case
analysis (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3) —

* ``|ΔO| ≤ u·(P|V|) + u·|O|`` from rounding ``P`` and storing ``O``, plus the fp32 terms:
  a sum of ``n`` fp32 products errs by at most ``γₙ = n·u₃₂/(1 − n·u₃₂)`` relative to the
  sum of magnitudes, and an error ``ΔS`` in the scores moves ``P`` by at most
  ``2·max|ΔS|·P`` (softmax's Jacobian);
* the backward follows the same rules through ``dV = P̃ᵀdO``, ``dP = dO Vᵀ``,
  ``D = rowsum(dO ∘ O)``, ``dS = P ∘ (dP − D)`` rounded, ``dQ = τ dS̃ K``, ``dK = τ dS̃ᵀ Q``.

:func:`attention_error_bounds` evaluates those bounds element by element from float64
reference values and returns the largest, per output: a tolerance *derived* from how the
kernel rounds, rather than chosen. Chapter 3's numerics lab shows each term measured.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "UNIT_ROUNDOFF",
    "unit_roundoff",
    "exp_overflow_threshold",
    "round_to",
    "gamma",
    "attention_error_bounds",
]

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
"""Half the distance from 1 to the next number: the largest relative error of rounding to nearest."""

_LARGEST = {"float64": float(np.finfo(np.float64).max), "float32": float(np.finfo(np.float32).max),
            "float16": 65504.0, "bfloat16": float.fromhex("0x1.fep127")}


def _name(dtype: Any) -> str:
    name = str(dtype).removeprefix("torch.")
    if name not in UNIT_ROUNDOFF:
        name = np.dtype(dtype).name if name != "bfloat16" else name
    if name not in UNIT_ROUNDOFF:
        raise ValueError(f"dtype must be one of {sorted(UNIT_ROUNDOFF)}, got {dtype!r}")
    return name


def unit_roundoff(dtype: Any) -> float:
    """``u`` of ``dtype`` (a NumPy/torch dtype or its name): ``2⁻¹¹`` for fp16, ``2⁻⁸`` for bf16."""
    return UNIT_ROUNDOFF[_name(dtype)]


def exp_overflow_threshold(dtype: Any) -> float:
    """The ``x`` above which ``exp(x)`` is ``inf`` in ``dtype``: ``log(65504) ≈ 11.09`` for fp16."""
    return math.log(_LARGEST[_name(dtype)])


def round_to(x: np.ndarray, dtype: Any) -> np.ndarray:
    """``x`` rounded to nearest in ``dtype`` and returned as float64 (bf16 emulated on float32 bits)."""
    name = _name(dtype)
    x = np.asarray(x)
    if name == "bfloat16":
        bits = x.astype(np.float32).view(np.uint32)
        bits = (bits + (((bits >> 16) & 1) + 0x7FFF)) & np.uint32(0xFFFF0000)  # round half to even
        return bits.view(np.float32).astype(np.float64)
    return x.astype(name).astype(np.float64)


def gamma(n: int, u: float = UNIT_ROUNDOFF["float32"]) -> float:
    """``γₙ = n·u / (1 − n·u)``: the relative error bound of a sum (or dot product) of ``n`` terms."""
    if n * u >= 1:
        raise ValueError(f"n·u = {n * u:.3g} >= 1: the bound does not apply")
    return n * u / (1 - n * u)


def _reference(q, k, v, do, causal, scale):
    s = scale * q @ np.swapaxes(k, -1, -2)
    if causal:
        nq, nk = s.shape[-2:]
        s = np.where(np.tril(np.ones((nq, nk), dtype=bool)), s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    p = np.exp(s - m)
    ell = p.sum(axis=-1, keepdims=True)
    p /= ell
    lse = (m + np.log(ell))[..., 0]
    o = p @ v
    dp = do @ np.swapaxes(v, -1, -2)
    dd = (do * o).sum(axis=-1, keepdims=True)
    ds = p * (dp - dd)
    return s, lse, p, o, dp, ds


def attention_error_bounds(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, do: np.ndarray | None = None, *,
    dtype: Any, causal: bool = False, scale: float | None = None, reference: str = "float64",
) -> dict[str, float]:
    """Largest first-order rounding error of a FlashAttention kernel in ``dtype``, per output.

    ``q, k, v, do`` are the kernel's inputs (already representable in ``dtype``), shape
    ``(..., N, d)``. The kernel model: score and output products accumulate in fp32;
    ``P`` (forward and backward) and ``dS`` are rounded to ``dtype`` before their
    products; ``O`` and the gradients are stored in ``dtype``; ``L`` in fp32. Returns
    ``{"o", "lse", "dq", "dk", "dv"}`` (the gradients only when ``do`` is given), each
    the maximum over elements of the bound. ``reference="float32"`` adds the error of an
    fp32 reference computed the plain way (the GPU tests compare against one).
    """
    u = unit_roundoff(dtype)
    low = u if _name(dtype) != "float32" else 0.0  # rounding P or dS to fp32 is exact
    u32 = UNIT_ROUNDOFF["float32"]
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    nq, d = q.shape[-2:]
    nk = k.shape[-2]
    scale = 1 / math.sqrt(d) if scale is None else float(scale)
    do_ = np.zeros_like(q[..., :1].repeat(v.shape[-1], -1)) if do is None else np.asarray(do, np.float64)
    _, lse, p, o, dp, ds = _reference(q, k, v, do_, causal, scale)
    copies = 2 if reference == "float32" else 1  # a plain fp32 reference errs by the same fp32 terms
    # scores: a d-term fp32 dot product, the scaling and the exp2 change of base (~4 ulps)
    ds_max = copies * (gamma(d + 4) * scale * (np.abs(q) @ np.abs(np.swapaxes(k, -1, -2)))).max(
        axis=-1, keepdims=True)
    dp_rel = 2 * ds_max  # relative change of P from score errors (softmax Jacobian)
    acc = copies * gamma(nk + 2)  # fp32 accumulation over the keys, and the division by ℓ
    pv = p @ np.abs(v)
    err_o = (low + dp_rel + acc) * pv + u * np.abs(o)
    bounds = {"o": float(err_o.max()),
              "lse": float((ds_max[..., 0] + copies * gamma(nk + 2) + u32 * np.abs(lse)).max())}
    if do is None:
        return bounds
    abs_do = np.abs(do_)
    dv = np.swapaxes(p, -1, -2) @ do_
    err_dv = np.swapaxes((low + dp_rel + copies * gamma(nq)) * p, -1, -2) @ abs_do + u * np.abs(dv)
    err_dp = copies * gamma(d) * (abs_do @ np.abs(np.swapaxes(v, -1, -2)))
    # D = rowsum(dO ∘ O) is computed from the *stored* O, which carries err_o
    err_d = (abs_do * err_o).sum(-1, keepdims=True) + copies * gamma(d) * (abs_do * np.abs(o)).sum(-1, keepdims=True)
    err_ds = dp_rel * p * np.abs(dp - (do_ * o).sum(-1, keepdims=True)) + p * (err_dp + err_d) + low * np.abs(ds)
    dq = scale * ds @ k
    dk = scale * np.swapaxes(ds, -1, -2) @ q
    err_dq = scale * (err_ds + copies * gamma(nk) * np.abs(ds)) @ np.abs(k) + u * np.abs(dq)
    err_dk = scale * np.swapaxes(err_ds + copies * gamma(nq) * np.abs(ds), -1, -2) @ np.abs(q) + u * np.abs(dk)
    bounds.update(dq=float(err_dq.max()), dk=float(err_dk.max()), dv=float(err_dv.max()))
    return bounds
