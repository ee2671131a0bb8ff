"""NumPy reference attention: the naive formula, and FlashAttention's tiled online softmax.

Chapters 1–3 explain these functions line by line (they are shown with
``show_source``), the tests prove them equal to each other and to PyTorch autograd,
and the GPU kernels of chapter 4 are checked against them. They favour clarity
over speed, but the tiled versions already show FlashAttention's point on a CPU:
they never hold anything of size ``Nq × Nk``, only ``block_q × block_k`` tiles.

Conventions (the same everywhere in the book):

* shapes ``q: (..., Nq, d)``, ``k: (..., Nk, d)``, ``v: (..., Nk, dv)`` with identical
  leading (batch, head) dimensions; ``Nq != Nk`` is allowed;
* ``mask`` is boolean, **True = may attend**, broadcastable to ``(..., Nq, Nk)``;
* ``causal=True`` lets query ``i`` attend keys ``j <= i`` (top-left aligned, like
  ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``);
* a query row that may attend **no** key returns zeros (not NaN), its weights are
  zeros and its log-sum-exp is ``-inf``;
* float32 and float64 inputs keep their dtype (the scale is a Python float, so
  NumPy 2 never promotes float32 to float64);
* inputs holding NaN or inf, a ``scale`` that is not a finite positive number and a
  ``causal`` that is not a bool are refused, exactly as the torch backends refuse them
  (:mod:`flashtrade_lib.attention.arguments` says why).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from flashtrade_lib.attention.arguments import (
    ScoreOverflowError,
    check_causal,
    check_finite_array,
    check_scale,
    overflow_message,
)

__all__ = [
    "naive_attention",
    "tiled_attention",
    "tiled_attention_backward",
    "causal_mask",
    "causal_block_skipped",
    "tile_schedule",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------- checks
def _as_float_array(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor: be explicit about it
        raise ValueError(
            f"{name} is a torch tensor; the NumPy reference needs a NumPy array "
            f"(use {name}.detach().cpu().numpy()) — or use flashtrade_lib.attention.attention"
        )
    a = np.asarray(x)
    if a.dtype not in _FLOATS:
        raise ValueError(
            f"{name} has dtype {a.dtype}; the reference supports float32 and float64 "
            f"(cast with {name}.astype(np.float32))"
        )
    if a.ndim < 2:
        raise ValueError(f"{name} must have shape (..., N, d), got shape {a.shape}")
    return a


def _check_inputs(
    q: object, k: object, v: object, mask: object, scale: float | None, causal: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float, bool]:
    q = _as_float_array(q, "q")
    k = _as_float_array(k, "k")
    v = _as_float_array(v, "v")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(
            f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}; cast them to one"
        )
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            "q, k, v must have the same leading (batch, head) dimensions, got "
            f"q{q.shape}, k{k.shape}, v{v.shape}"
        )
    nq, d = q.shape[-2:]
    nk, dk = k.shape[-2:]
    if dk != d:
        raise ValueError(f"q and k must have the same last dimension d, got q{q.shape} and k{k.shape}")
    if v.shape[-2] != nk:
        raise ValueError(
            f"k and v must have the same number of keys (axis -2), got k{k.shape} and v{v.shape}"
        )
    if nq == 0 or nk == 0 or d == 0 or v.shape[-1] == 0:
        raise ValueError(
            f"empty input: need at least one query, one key and d >= 1, got q{q.shape}, "
            f"k{k.shape}, v{v.shape}"
        )
    scale = check_scale(scale, d)  # a Python float: float32 stays float32 under NumPy 2 promotion
    causal = check_causal(causal)
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_finite_array(x, name)
    _check_no_overflow(q, k, v, scale)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(
                f"mask must be boolean (True = may attend), got dtype {mask.dtype}; "
                "convert a 0/1 mask with mask.astype(bool) — additive -inf masks are not accepted"
            )
        target = q.shape[:-2] + (nq, nk)
        try:
            mask = np.broadcast_to(mask, target)  # a view: nothing is allocated
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to (..., Nq, Nk) = {target}"
            ) from None
    return q, k, v, mask, scale, causal


def _largest_norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.square(x, dtype=np.float64).sum(axis=-1)).max())


def _check_no_overflow(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, o: np.ndarray | None = None) -> None:
    """Refuse inputs whose scores can overflow (``|q_i·k_j|·scale <= ‖q_i‖‖k_j‖·scale``), and, given
    ``o``, a non-finite output of finite inputs (weighted values that overflowed): never NaN, never a wrong number."""
    bound = _largest_norm(q) * _largest_norm(k) * scale
    largest = float(np.finfo(q.dtype).max)
    if bound > largest or (o is not None and not np.isfinite(o).all()):
        raise ScoreOverflowError(overflow_message(bound, float(np.abs(v).max()), str(q.dtype), largest))


def _check_block(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------ helpers
def causal_mask(nq: int, nk: int) -> np.ndarray:
    """Boolean ``(nq, nk)`` mask with ``True`` where key ``j <= i`` (query ``i`` may attend)."""
    return np.arange(nk)[None, :] <= np.arange(nq)[:, None]


def causal_block_skipped(q_stop: int, k_start: int) -> bool:
    """True when a tile lies entirely above the causal diagonal, so it can be skipped.

    The tile holds queries ``< q_stop`` and keys ``>= k_start``; every query in it
    sees only keys ``j <= i <= q_stop - 1``, so if ``k_start >= q_stop`` no entry of
    the tile is ever attended.
    """
    return k_start >= q_stop


def tile_schedule(
    nq: int, nk: int, *, block_q: int, block_k: int, causal: bool = False
) -> Iterator[tuple[int, int, int, int]]:
    """The tiles the tiled forward visits, in order: ``(q_start, q_stop, k_start, k_stop)``.

    FlashAttention-2 order: query blocks outside, key blocks inside. With
    ``causal=True`` the key loop stops at the first tile above the diagonal (all
    later tiles of that row of tiles are above it too).
    """
    block_q = _check_block(block_q, "block_q")
    block_k = _check_block(block_k, "block_k")
    for q0 in range(0, nq, block_q):
        q1 = min(q0 + block_q, nq)
        for k0 in range(0, nk, block_k):
            if causal and causal_block_skipped(q1, k0):
                break
            yield q0, q1, k0, min(k0 + block_k, nk)


def _tile_allowed(
    mask: np.ndarray | None, causal: bool, q0: int, q1: int, k0: int, k1: int
) -> np.ndarray | None:
    """Boolean mask of one tile, or ``None`` when every entry is allowed (the fast path)."""
    allowed = None
    if causal and k1 - 1 > q0:  # the tile straddles the diagonal
        allowed = np.arange(k0, k1)[None, :] <= np.arange(q0, q1)[:, None]
    if mask is not None:
        tile = mask[..., q0:q1, k0:k1]
        allowed = tile if allowed is None else (tile & allowed)
    return allowed


# ---------------------------------------------------------------------- naive
@np.errstate(over="ignore", invalid="ignore")  # an overflow is refused at the end, not warned
def naive_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    mask: np.ndarray | None = None,
    scale: float | None = None,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``softmax(q kᵀ · scale) v``, materialising the full ``(..., Nq, Nk)`` score matrix.

    This is the textbook formula (with the max subtracted so ``exp`` never overflows)
    and the ground truth for everything else. Its memory is ``O(Nq·Nk)`` per head —
    the bottleneck chapter 1 measures. ``return_weights=True`` also returns the
    attention weights ``P``.
    """
    q, k, v, mask, scale, causal = _check_inputs(q, k, v, mask, scale, causal)
    nq, nk = q.shape[-2], k.shape[-2]
    s = q @ np.swapaxes(k, -1, -2)
    s *= scale
    allowed = None
    if causal:
        allowed = causal_mask(nq, nk)
    if mask is not None:
        allowed = mask if allowed is None else (mask & allowed)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # fully masked row: every score is -inf, exp gives 0 below
    p = np.exp(s - m)
    denom = p.sum(axis=-1, keepdims=True)
    np.divide(p, denom, out=p, where=denom > 0)  # fully masked rows stay all-zero
    o = p @ v
    _check_no_overflow(q, k, v, scale, o)
    return (o, p) if return_weights else o


# ------------------------------------------------------------------- tiled forward
@np.errstate(over="ignore", invalid="ignore")  # an overflow is refused at the end, not warned
def tiled_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int = 128,
    block_k: int = 128,
    causal: bool = False,
    mask: np.ndarray | None = None,
    scale: float | None = None,
    return_lse: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """FlashAttention forward: tiles of Q outside, tiles of K/V inside, online softmax.

    For each query tile we keep, per row, the running maximum ``m``, the running
    softmax denominator ``ell`` (the paper's ℓ) and an un-normalised output ``acc``.
    A new key tile with scores ``s`` updates them exactly (chapter 2 proves it)::

        m_new = max(m, rowmax(s));    alpha = exp(m - m_new);    p = exp(s - m_new)
        ell = alpha * ell + rowsum(p);  acc = alpha * acc + p @ v_tile

    and at the end ``o = acc / ell``. Only ``block_q × block_k`` scores exist at any
    time — never ``Nq × Nk``. ``return_lse=True`` also returns the row log-sum-exp
    ``L = m + log(ell)`` (shape ``(..., Nq)``), all the backward pass needs to rebuild
    ``P`` (chapter 3). Causal tiles above the diagonal are skipped, not computed.
    """
    q, k, v, mask, scale, causal = _check_inputs(q, k, v, mask, scale, causal)
    block_q = _check_block(block_q, "block_q")
    block_k = _check_block(block_k, "block_k")
    lead, nq, nk, dv = q.shape[:-2], q.shape[-2], k.shape[-2], v.shape[-1]
    o = np.zeros(lead + (nq, dv), dtype=q.dtype)
    lse = np.full(lead + (nq,), -np.inf, dtype=q.dtype)
    kt = np.swapaxes(k, -1, -2)

    for q0 in range(0, nq, block_q):
        q1 = min(q0 + block_q, nq)
        q_tile = q[..., q0:q1, :]
        m = np.full(lead + (q1 - q0,), -np.inf, dtype=q.dtype)  # running row max
        ell = np.zeros(lead + (q1 - q0,), dtype=q.dtype)  # running softmax denominator ℓ
        acc = np.zeros(lead + (q1 - q0, dv), dtype=q.dtype)  # un-normalised output
        for k0 in range(0, nk, block_k):
            if causal and causal_block_skipped(q1, k0):
                break  # this tile and all later ones in the row are above the diagonal
            k1 = min(k0 + block_k, nk)
            s = q_tile @ kt[..., :, k0:k1]
            s *= scale
            allowed = _tile_allowed(mask, causal, q0, q1, k0, k1)
            if allowed is not None:
                s = np.where(allowed, s, -np.inf)
            m_new = np.maximum(m, s.max(axis=-1))
            # Rows that have seen no allowed key yet keep m = -inf; shift them by 0
            # instead (exp(-inf - 0) = 0), which avoids the NaN of -inf - (-inf).
            shift = np.where(np.isfinite(m_new), m_new, 0.0).astype(q.dtype, copy=False)
            alpha = np.exp(m - shift)
            s -= shift[..., None]
            p = np.exp(s, out=s)
            ell = alpha * ell + p.sum(axis=-1)
            acc *= alpha[..., None]
            acc += p @ v[..., k0:k1, :]
            m = m_new
        seen = ell > 0
        np.divide(acc, ell[..., None], out=o[..., q0:q1, :], where=seen[..., None])
        np.add(m, np.log(ell, where=seen, out=np.zeros_like(ell)), out=lse[..., q0:q1], where=seen)
    _check_no_overflow(q, k, v, scale, o)
    return (o, lse) if return_lse else o


# ------------------------------------------------------------------ tiled backward
def tiled_attention_backward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    o: np.ndarray,
    lse: np.ndarray,
    do: np.ndarray,
    *,
    block_q: int = 128,
    block_k: int = 128,
    causal: bool = False,
    mask: np.ndarray | None = None,
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dq, dk, dv)`` of attention, recomputing ``P`` tile by tile from ``L``.

    Storing ``P`` for the backward would cost ``O(Nq·Nk)`` memory; instead each tile
    rebuilds ``P = exp(S - L)`` from the saved row log-sum-exp ``lse`` (from
    ``tiled_attention(..., return_lse=True)``) and uses ``D = rowsum(dO ∘ O)``, which
    equals ``rowsum(P ∘ dP)`` and turns the softmax Jacobian into one subtraction::

        dV += Pᵀ dO;   dP = dO Vᵀ;   dS = P ∘ (dP − D);   dQ += dS K·scale;   dK += dSᵀ Q·scale

    Key tiles are the outer loop (as in FlashAttention-2's backward), so ``dK`` and
    ``dV`` of a tile are finished before moving on; causal tiles above the diagonal
    are skipped. ``mask``, ``causal`` and ``scale`` must be those of the forward.
    """
    q, k, v, mask, scale, causal = _check_inputs(q, k, v, mask, scale, causal)
    block_q = _check_block(block_q, "block_q")
    block_k = _check_block(block_k, "block_k")
    lead, nq, nk, dv_dim = q.shape[:-2], q.shape[-2], k.shape[-2], v.shape[-1]
    o = _as_float_array(o, "o")
    do = _as_float_array(do, "do")
    lse = np.asarray(lse)
    want_o = lead + (nq, dv_dim)
    for name, arr in (("o", o), ("do", do)):
        if arr.shape != want_o:
            raise ValueError(f"{name} must have shape (..., Nq, dv) = {want_o}, got {arr.shape}")
        if arr.dtype != q.dtype:
            raise ValueError(f"{name} has dtype {arr.dtype} but q has {q.dtype}; use one dtype")
    if lse.shape != lead + (nq,):
        raise ValueError(
            f"lse must have shape (..., Nq) = {lead + (nq,)}, got {lse.shape}; "
            "get it from tiled_attention(..., return_lse=True)"
        )
    if lse.dtype not in _FLOATS:
        raise ValueError(f"lse must be float32 or float64, got dtype {lse.dtype}")
    lse = lse.astype(q.dtype, copy=False)

    # D_i = sum_j P_ij dP_ij = dO_i · O_i: one number per query row, O(Nq) memory.
    delta = np.einsum("...id,...id->...i", do, o)
    # Fully masked rows have L = -inf and only -inf scores; shifting by 0 keeps P = 0.
    lse_shift = np.where(np.isfinite(lse), lse, 0.0).astype(q.dtype, copy=False)
    dq = np.zeros_like(q)
    dk = np.zeros_like(k)
    dv = np.zeros_like(v)

    for k0 in range(0, nk, block_k):
        k1 = min(k0 + block_k, nk)
        k_tile, v_tile = k[..., k0:k1, :], v[..., k0:k1, :]
        dk_tile = np.zeros_like(k_tile)
        dv_tile = np.zeros_like(v_tile)
        first_q = (k0 // block_q) * block_q if causal else 0  # earlier q tiles are above the diagonal
        for q0 in range(first_q, nq, block_q):
            q1 = min(q0 + block_q, nq)
            if causal and causal_block_skipped(q1, k0):
                continue
            q_tile, do_tile = q[..., q0:q1, :], do[..., q0:q1, :]
            s = q_tile @ np.swapaxes(k_tile, -1, -2)
            s *= scale
            allowed = _tile_allowed(mask, causal, q0, q1, k0, k1)
            if allowed is not None:
                s = np.where(allowed, s, -np.inf)
            s -= lse_shift[..., q0:q1, None]
            p = np.exp(s, out=s)  # P of this tile, recomputed
            dv_tile += np.swapaxes(p, -1, -2) @ do_tile
            dp = do_tile @ np.swapaxes(v_tile, -1, -2)
            dp -= delta[..., q0:q1, None]
            ds = p * dp
            ds *= scale  # fold the scale of S = scale·QKᵀ into dS once
            dq[..., q0:q1, :] += ds @ k_tile
            dk_tile += np.swapaxes(ds, -1, -2) @ q_tile
        dk[..., k0:k1, :] = dk_tile
        dv[..., k0:k1, :] = dv_tile
    return dq, dk, dv
