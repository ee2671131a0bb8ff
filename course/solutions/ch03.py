"""Chapter 3 (03_backward_recomputation) — instructor's solutions and typical wrong answers.

Not installed with flashtrade_lib: the book's solution blocks are rendered from here.
"""

import math

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch03-ds-via-d")
def ds_from(p, dp, o, do):
    delta = (do * o).sum(axis=-1, keepdims=True)  # D = rowsum(dO ∘ O) = rowsum(P ∘ dP)
    return p * (dp - delta)


@wrong("ch03-ds-via-d", expect="only the diagonal of the softmax Jacobian")
def ds_from_elementwise(p, dp, o, do):
    return p * dp  # treats softmax as elementwise: forgets its Jacobian's second term


@solution("ch03-stored-elements")
def stored_elements(n, heads):
    return heads * n * n, heads * n  # P: one number per (query, key); L: one per query


@wrong("ch03-stored-elements", expect="Each head has its own")
def stored_elements_of_one_head(n, heads):
    return n * n, n


@solution("ch03-tiled-backward")
def my_tiled_backward(q, k, v, o, lse, do, block_q, block_k, causal=False, mask=None):
    lead, nq, nk = q.shape[:-2], q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    if mask is not None:
        mask = np.broadcast_to(mask, lead + (nq, nk))
    delta = (do * o).sum(axis=-1)  # D = rowsum(dO ∘ O): O(N), before any tile
    shift = np.where(np.isfinite(lse), lse, 0.0)  # a fully masked row keeps P = 0
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    for k0 in range(0, nk, block_k):
        k1 = min(k0 + block_k, nk)
        for q0 in range(0, nq, block_q):
            q1 = min(q0 + block_q, nq)
            if causal and k0 >= q1:
                continue  # above the diagonal
            s = q[..., q0:q1, :] @ np.swapaxes(k[..., k0:k1, :], -1, -2) * scale
            if causal:
                s = np.where(np.arange(k0, k1)[None, :] <= np.arange(q0, q1)[:, None], s, -np.inf)
            if mask is not None:
                s = np.where(mask[..., q0:q1, k0:k1], s, -np.inf)
            p = np.exp(s - shift[..., q0:q1, None])  # P of this tile, recomputed from L
            dv[..., k0:k1, :] += np.swapaxes(p, -1, -2) @ do[..., q0:q1, :]
            dp = do[..., q0:q1, :] @ np.swapaxes(v[..., k0:k1, :], -1, -2)
            ds = p * (dp - delta[..., q0:q1, None]) * scale
            dq[..., q0:q1, :] += ds @ k[..., k0:k1, :]
            dk[..., k0:k1, :] += np.swapaxes(ds, -1, -2) @ q[..., q0:q1, :]
    return dq, dk, dv


@wrong("ch03-tiled-backward", expect="dV is right, so your P is right")
def my_tiled_backward_without_d(q, k, v, o, lse, do, block_q, block_k, causal=False, mask=None):
    # D = 0 turns dS = P ∘ (dP − D) into P ∘ dP, the classic slip
    return my_tiled_backward(q, k, v, np.zeros_like(o), lse, do, block_q, block_k, causal=causal, mask=mask)


@wrong("ch03-tiled-backward", expect="materialises a 512×512 score matrix: that is naive attention")
def dense_backward_in_disguise(q, k, v, o, lse, do, block_q, block_k, causal=False, mask=None):
    nq, nk = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    s = q @ np.swapaxes(k, -1, -2) * scale  # all Nq × Nk scores at once
    allowed = np.ones((nq, nk), dtype=bool)
    if causal:
        allowed = np.arange(nk)[None, :] <= np.arange(nq)[:, None]
    if mask is not None:
        allowed = allowed & mask
    p = np.where(allowed, np.exp(s - np.where(np.isfinite(lse), lse, 0.0)[..., None]), 0.0)
    dp = do @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (do * o).sum(axis=-1, keepdims=True)) * scale
    return ds @ k, np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ do


# An exception inside the answer: the mask sliced without broadcasting it first (the check names the case and line)
from flashtrade_lib.course.solutions import variant  # noqa: E402 — kept beside its one use

wrong("ch03-tiled-backward", expect=("case 7 of 10 (padding mask", "your answer raised ValueError",
                                     "at `s = np.where(mask[..., q0:q1, k0:k1], s, -np.inf)`"))(
    variant(my_tiled_backward, "        mask = np.broadcast_to(mask, lead + (nq, nk))\n",
            "        pass  # the mask is sliced as it comes\n", "my_tiled_backward_slicing_an_unbroadcast_mask")
)
