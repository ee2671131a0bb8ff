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


@solution("ch03-backward-cost")
def backward_cost(n, d, block_q, block_k, causal=False):
    flops = 0
    reads, writes = 2 * n * d, n  # the preprocess: read dO and O, write D
    for k0 in range(0, n, block_k):
        c = min(k0 + block_k, n) - k0
        reads += 2 * c * d  # K_j, V_j once
        writes += 2 * c * d  # dK_j, dV_j once
        for q0 in range(0, n, block_q):
            q1 = min(q0 + block_q, n)
            if causal and k0 >= q1:
                continue  # above the diagonal: nothing loaded, nothing computed
            r = q1 - q0
            flops += 5 * 2 * r * c * d  # S = QKᵀ, dV += PᵀdO, dP = dO Vᵀ, dQ += dS K, dK += dSᵀQ
            reads += r * (d + d + 1 + 1 + d)  # Q_i, dO_i, L_i, D_i, dQ_i
            writes += r * d  # dQ_i written back
    return flops, reads, writes


@wrong("ch03-backward-cost", expect="the backward that keeps P")
def backward_cost_with_four_products(n, d, block_q, block_k, causal=False):
    flops, reads, writes = backward_cost(n, d, block_q, block_k, causal)
    return flops * 4 // 5, reads, writes


@wrong("ch03-backward-cost", expect="That counts every tile")
def backward_cost_without_causal_skipping(n, d, block_q, block_k, causal=False):
    return backward_cost(n, d, block_q, block_k, causal=False)  # causal ignored: every tile counted


@wrong("ch03-backward-cost", expect="read, updated and written back once per visited tile")
def backward_cost_with_dq_written_once(n, d, block_q, block_k, causal=False):
    flops = 0
    reads, writes = 2 * n * d + n * d, n + n * d  # dQ read and written once only
    for k0 in range(0, n, block_k):
        c = min(k0 + block_k, n) - k0
        reads, writes = reads + 2 * c * d, writes + 2 * c * d
        for q0 in range(0, n, block_q):
            q1 = min(q0 + block_q, n)
            if causal and k0 >= q1:
                continue
            flops += 10 * (q1 - q0) * c * d
            reads += (q1 - q0) * (2 * d + 2)
    return flops, reads, writes


@wrong("ch03-backward-cost", expect="the preprocess D = rowsum(dO ∘ O)")
def backward_cost_without_the_preprocess(n, d, block_q, block_k, causal=False):
    flops, reads, writes = backward_cost(n, d, block_q, block_k, causal)
    return flops, reads - 2 * n * d, writes - n


@wrong("ch03-backward-cost", expect="Half of N² is the masked count, not the computed one")
def backward_cost_halving_for_causal(n, d, block_q, block_k, causal=False):
    flops, reads, writes = backward_cost(n, d, block_q, block_k, causal)
    return 10 * n * n * d // (2 if causal else 1), reads, writes


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
