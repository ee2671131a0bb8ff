"""Chapter 2 (02_online_softmax) — instructor's solutions and typical wrong answers.

Not installed with flashtrade_lib: the book's solution blocks are rendered from here.
"""

import math

import numpy as np

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch02-online-softmax")
def online_softmax_stats(x):
    m, ell = -math.inf, 0.0
    for xj in x:
        m_new = max(m, float(xj))
        if m_new == -math.inf:  # only masked entries so far
            continue
        ell = ell * math.exp(m - m_new) + math.exp(float(xj) - m_new)
        m = m_new
    return m, ell


@wrong("ch02-online-softmax", expect="exp(m_old − m_new)")
def online_softmax_stats_without_rescaling(x):
    m, ell = -math.inf, 0.0
    for xj in x:
        m = max(m, float(xj))
        ell = ell + math.exp(float(xj) - m)  # forgets to rescale the old terms
    return m, ell


@solution("ch02-merge-stats")
def merge(a, b):
    (m1, l1), (m2, l2) = a, b
    m = max(m1, m2)
    if m == -math.inf:  # both blocks empty
        return m, 0.0
    return m, l1 * math.exp(m1 - m) + l2 * math.exp(m2 - m)


@wrong("ch02-merge-stats", expect="rescale each")
def merge_without_rescaling(a, b):
    return max(a[0], b[0]), a[1] + b[1]


@solution("ch02-tile-update")
def tile_update(m, ell, acc, s, v_tile):
    m_new = np.maximum(m, s.max(axis=-1))
    shift = np.where(np.isfinite(m_new), m_new, 0.0)  # a row with no key yet: shift by 0, not -inf
    alpha = np.exp(m - shift)
    p = np.exp(s - shift[..., None])
    return m_new, alpha * ell + p.sum(axis=-1), alpha[..., None] * acc + p @ v_tile


@wrong("ch02-tile-update", expect="rescale it like ℓ")
def tile_update_forgetting_acc(m, ell, acc, s, v_tile):
    m_new = np.maximum(m, s.max(axis=-1))
    shift = np.where(np.isfinite(m_new), m_new, 0.0)
    alpha = np.exp(m - shift)
    p = np.exp(s - shift[..., None])
    return m_new, alpha * ell + p.sum(axis=-1), acc + p @ v_tile  # acc is not rescaled


@solution("ch02-tiled-forward")
def my_tiled_attention(q, k, v, block_q, block_k, causal=False, mask=None):
    lead, nq, nk, d = q.shape[:-2], q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d)
    if mask is not None:
        mask = np.broadcast_to(mask, lead + (nq, nk))  # a view, no copy
    o = np.zeros(lead + (nq, v.shape[-1]))
    lse = np.full(lead + (nq,), -np.inf)
    for q0 in range(0, nq, block_q):
        q1 = min(q0 + block_q, nq)
        m = np.full(lead + (q1 - q0,), -np.inf)
        ell = np.zeros(lead + (q1 - q0,))
        acc = np.zeros(lead + (q1 - q0, v.shape[-1]))
        for k0 in range(0, nk, block_k):
            if causal and k0 >= q1:
                break  # this tile and the later ones lie above the diagonal
            k1 = min(k0 + block_k, nk)
            s = q[..., q0:q1, :] @ np.swapaxes(k[..., k0:k1, :], -1, -2) * scale
            if causal:
                s = np.where(np.arange(k0, k1)[None, :] <= np.arange(q0, q1)[:, None], s, -np.inf)
            if mask is not None:
                s = np.where(mask[..., q0:q1, k0:k1], s, -np.inf)
            m, ell, acc = tile_update(m, ell, acc, s, v[..., k0:k1, :])
        seen = ell > 0
        o[..., q0:q1, :] = np.where(seen[..., None], acc / np.where(seen, ell, 1.0)[..., None], 0.0)
        lse[..., q0:q1] = np.where(seen, m + np.log(np.where(seen, ell, 1.0)), -np.inf)
    return o, lse


@wrong("ch02-tiled-forward", expect="lse differs")
def my_tiled_attention_forgetting_the_max_in_lse(q, k, v, block_q, block_k, causal=False, mask=None):
    o, lse = my_tiled_attention(q, k, v, block_q, block_k, causal=causal, mask=mask)
    with np.errstate(all="ignore"):
        m = (q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])).max(axis=-1)
    return o, lse - m  # returns log ℓ instead of m + log ℓ


@wrong("ch02-tiled-forward", expect="matches a causal mask that excludes the diagonal (key j < query i)")
def my_tiled_attention_with_a_strict_causal_mask(q, k, v, block_q, block_k, causal=False, mask=None):
    if causal:  # key j < query i: each query is kept from seeing itself
        below = np.tri(q.shape[-2], k.shape[-2], -1, dtype=bool)
        mask = below if mask is None else (below & mask)
    return my_tiled_attention(q, k, v, block_q, block_k, mask=mask)


@wrong("ch02-tiled-forward", expect="computed 16 score tiles, but only 10 of the 16 tiles touch the diagonal")
def my_tiled_attention_without_block_skipping(q, k, v, block_q, block_k, causal=False, mask=None):
    if causal:  # every tile computed; the mask alone hides the ones above the diagonal
        lower = np.tri(q.shape[-2], k.shape[-2], dtype=bool)
        mask = lower if mask is None else (lower & mask)
    return my_tiled_attention(q, k, v, block_q, block_k, mask=mask)


@wrong("ch02-tiled-forward", expect="materialises a 512×512 score matrix: that is naive attention")
def naive_attention_in_disguise(q, k, v, block_q, block_k, causal=False, mask=None):
    nq, nk = q.shape[-2], k.shape[-2]
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])  # all Nq × Nk scores at once
    if causal:
        s = np.where(np.arange(nk)[None, :] <= np.arange(nq)[:, None], s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    m = s.max(axis=-1)
    shift = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - shift[..., None])
    ell = p.sum(axis=-1)
    seen = ell > 0
    o = np.where(seen[..., None], (p @ v) / np.where(seen, ell, 1.0)[..., None], 0.0)
    return o, np.where(seen, shift + np.log(np.where(seen, ell, 1.0)), -np.inf)


@solution("ch02-causal-tiles")
def causal_tiles(n, block_q, block_k):
    return sum(-(-min(q0 + block_q, n) // block_k) for q0 in range(0, n, block_q))


@wrong("ch02-causal-tiles", expect="key tiles that start below q1")
def causal_tiles_assuming_square_blocks(n, block_q, block_k):
    t = -(-n // block_q)
    return t * (t + 1) // 2  # right only when block_q == block_k


@solution("ch02-memory-for-passes")
def memory_for_passes(n, d, passes):
    block_q = -(-n // passes)  # K, V are read ⌈n/block_q⌉ times: at most `passes` needs block_q ≥ n/passes
    m = block_q * (d + d + d + 2) + d * (d + d)  # per query row: Q, S (B_c = d), O rows, m, ℓ; the K, V tiles
    kv_reads = -(-n // block_q)  # may be fewer than `passes`
    reads = n * d + kv_reads * n * (d + d)  # Q once; K and V once per query tile
    writes = n * d + n  # O and L once
    return m, reads + writes


@wrong("ch02-memory-for-passes", expect="leaves out the K and V tiles")
def memory_for_passes_without_the_kv_tiles(n, d, passes):
    block_q = -(-n // passes)
    m = block_q * (3 * d + 2)  # only what each query row holds
    return m, n * d + -(-n // block_q) * 2 * n * d + n * d + n


@wrong("ch02-memory-for-passes", expect="round N/passes up")
def memory_for_passes_rounding_down(n, d, passes):
    block_q = n // passes
    m = block_q * (3 * d + 2) + 2 * d * d
    return m, n * d + -(-n // block_q) * 2 * n * d + n * d + n


@wrong("ch02-memory-for-passes", expect="count the passes the blocks make, not the ones allowed")
def memory_for_passes_counting_the_allowed_passes(n, d, passes):
    block_q = -(-n // passes)
    m = block_q * (3 * d + 2) + 2 * d * d
    return m, n * d + passes * 2 * n * d + n * d + n  # `passes`, not ⌈n/block_q⌉


@wrong("ch02-memory-for-passes", expect="the log-sum-exp L, one number per query row")
def memory_for_passes_without_lse(n, d, passes):
    block_q = -(-n // passes)
    m = block_q * (3 * d + 2) + 2 * d * d
    return m, n * d + -(-n // block_q) * 2 * n * d + n * d
