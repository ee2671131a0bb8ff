"""FlashAttention forward and backward in Triton — the NumPy reference of chapters 2–3, on a GPU.

Read this file next to :mod:`flashtrade_lib.attention.reference`: the names are the same.

* ``m`` — running row maximum of the scores, ``l`` — running softmax denominator,
  ``acc`` — un-normalised output (``tiled_attention``);
* ``L`` — the row log-sum-exp ``m + log(l)`` the forward saves (``lse`` in the reference);
* ``D`` — ``rowsum(dO ∘ O)``, which turns the softmax Jacobian into one subtraction
  (``delta`` in ``tiled_attention_backward``).

What changes on a GPU: one *program* (a thread block) handles one tile of queries for
one (batch, head); the grid is ``(number of query tiles, batch × heads)``, so all of
them run in parallel. Tiles live in registers / shared memory (SRAM); only Q, K, V, O,
L and D touch slow HBM. Three more changes, each marked ``GPU:`` below:

1. ``exp`` becomes ``exp2`` — ``exp(x) = 2^(x·log2 e)`` and the hardware has a fast
   ``2^x`` instruction, so the scores are kept in base-2 units (``qk_scale`` folds
   ``log2 e`` into the softmax scale);
2. the matrix products run on tensor cores in fp16/bf16 while ``m``, ``l``, ``acc``
   stay in fp32;
3. loads are masked so any ``N`` works (the last tile is partly outside the tensor)
   and the head dim is padded to a power of two (``BLOCK_D``).

On a machine without CUDA the same kernels run on CPU tensors through Triton's
interpreter: set ``os.environ["TRITON_INTERPRET"] = "1"`` *before* this module is first
imported (``@triton.jit`` decides at import time). That checks correctness only — the
interpreter executes every program instance in NumPy, one after another, and is slow.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

__all__ = [
    "INTERPRETED",
    "MATMULS_PER_TILE",
    "FlashAttentionFunction",
    "flash_attention",
    "flash_attention_backward",
    "flash_attention_forward",
    "gpu_configs",
    "tile_budget",
]

LOG2E = 1.4426950408889634  # log2(e): exp(x) == exp2(x * LOG2E)


# =============================================================================
# Forward
# =============================================================================


@triton.jit
def _attn_fwd_inner(
    acc, l_i, m_i, q,
    K_block_ptr_base, V_block_ptr_base, stride_kn, stride_vn,
    offs_m, offs_d, start, stop, N_K, qk_scale,
    CAUSAL: tl.constexpr, MASKED: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """The inner loop of ``tiled_attention``: visit key tiles ``start..stop`` for one query tile.

    ``MASKED=False`` is the fast path for tiles that are entirely valid (inside ``N_K`` and,
    when causal, entirely below the diagonal); ``MASKED=True`` handles the diagonal tile
    and the last, partial tile.
    """
    d_ok = offs_d < HEAD_DIM  # padding of the head dim up to BLOCK_D
    for start_n in range(start, stop, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        # K tile loaded transposed, (BLOCK_D, BLOCK_N), so that q @ kT is a plain tl.dot
        kT_ptrs = K_block_ptr_base + offs_n[None, :] * stride_kn + offs_d[:, None]
        v_ptrs = V_block_ptr_base + offs_n[:, None] * stride_vn + offs_d[None, :]
        if MASKED:
            n_ok = offs_n < N_K
            kT = tl.load(kT_ptrs, mask=d_ok[:, None] & n_ok[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)
        else:
            kT = tl.load(kT_ptrs, mask=d_ok[:, None], other=0.0)
            v = tl.load(v_ptrs, mask=d_ok[None, :], other=0.0)

        # s = q_tile @ kt * scale   (reference), in base-2 units here (GPU: 1.)
        s = tl.dot(q, kT) * qk_scale
        if MASKED:
            allowed = n_ok[None, :]  # keys past the end of the sequence do not exist
            if CAUSAL:
                allowed = allowed & (offs_m[:, None] >= offs_n[None, :])  # key j <= query i
            s = tl.where(allowed, s, float("-inf"))

        # The online softmax update, exactly as in tiled_attention:
        #   m_new = max(m, rowmax(s));  alpha = exp(m - m_new);  p = exp(s - m_new)
        #   l = alpha * l + rowsum(p);  acc = alpha * acc + p @ v_tile
        # Every row sees at least one valid key in its first tile (key 0 is never masked),
        # so m_new is finite and -inf - m_new never produces a NaN.
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        # GPU (2.): p is cast to the input dtype so p @ v runs on tensor cores; acc stays fp32
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(
    Q, K, V, O, L,  # noqa: E741 — the paper's names
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_on,
    H, N_Q, N_K, sm_scale,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program = one query tile (``BLOCK_M`` rows) of one (batch, head): the outer loop of ``tiled_attention``."""
    start_m = tl.program_id(0)  # which query tile
    off_bh = tl.program_id(1)  # which (batch, head): batch × heads live in the grid
    off_b = off_bh // H
    off_h = off_bh % H

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < N_Q
    d_ok = offs_d < HEAD_DIM

    # The last dimension is contiguous (the wrapper makes sure), so offs_d needs no stride.
    q_ptrs = Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :]
    q = tl.load(q_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    K_base = K + off_b * stride_kb + off_h * stride_kh
    V_base = V + off_b * stride_vb + off_h * stride_vh

    # m = -inf, l = 0, acc = 0 — the reference's initial state, in fp32 registers
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # scale * log2(e)   (GPU: 1.)

    # Which key tiles need a mask? causal_block_skipped() in the reference skips tiles above
    # the diagonal; here we also split off the tiles *below* it, which need no mask at all.
    if CAUSAL:
        # keys < start_m * BLOCK_M are visible to every row of this tile
        full_stop = (start_m * BLOCK_M) // BLOCK_N * BLOCK_N
        # the diagonal tile(s); keys >= the last query of the tile are never visible
        masked_stop = tl.minimum((start_m + 1) * BLOCK_M, N_K)
    else:
        full_stop = N_K // BLOCK_N * BLOCK_N  # whole tiles
        masked_stop = N_K  # and one partial tile when BLOCK_N does not divide N_K

    acc, l_i, m_i = _attn_fwd_inner(
        acc, l_i, m_i, q, K_base, V_base, stride_kn, stride_vn, offs_m, offs_d,
        0, full_stop, N_K, qk_scale,
        CAUSAL=CAUSAL, MASKED=False, HEAD_DIM=HEAD_DIM, BLOCK_N=BLOCK_N,
    )
    acc, l_i, m_i = _attn_fwd_inner(
        acc, l_i, m_i, q, K_base, V_base, stride_kn, stride_vn, offs_m, offs_d,
        full_stop, masked_stop, N_K, qk_scale,
        CAUSAL=CAUSAL, MASKED=True, HEAD_DIM=HEAD_DIM, BLOCK_N=BLOCK_N,
    )

    # o = acc / l, and L = m + log(l) (in natural-log units, like the reference's lse)
    acc = acc / l_i[:, None]
    L_i = (m_i + tl.math.log2(l_i)) / 1.4426950408889634
    tl.store(L + off_bh * N_Q + offs_m, L_i, mask=m_ok)
    o_ptrs = O + off_b * stride_ob + off_h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :]
    tl.store(o_ptrs, acc.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])


# =============================================================================
# Backward
# =============================================================================


@triton.jit
def _attn_bwd_preprocess(
    O, DO, Dl,  # noqa: E741 — the paper's names
    stride_ob, stride_oh, stride_on, stride_dob, stride_doh, stride_don,
    H, N_Q,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
):
    """``D = rowsum(dO ∘ O)`` — ``delta`` in ``tiled_attention_backward``; one number per query row."""
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    off_b = off_bh // H
    off_h = off_bh % H
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_m[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM)
    o = tl.load(O + off_b * stride_ob + off_h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :],
                mask=ok, other=0.0).to(tl.float32)
    do = tl.load(DO + off_b * stride_dob + off_h * stride_doh + offs_m[:, None] * stride_don + offs_d[None, :],
                 mask=ok, other=0.0).to(tl.float32)
    tl.store(Dl + off_bh * N_Q + offs_m, tl.sum(o * do, 1), mask=offs_m < N_Q)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, DK, DV, L, Dl,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    H, N_Q, N_K, sm_scale,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """dK and dV of one key tile: key tiles outside, query tiles inside, as in the reference.

    Each program owns its dK/dV tile, so no two programs write the same memory (no atomics).
    ``P`` is rebuilt from ``L`` instead of being stored: ``P = exp(S - L)``.
    """
    start_n = tl.program_id(0) * BLOCK_N
    off_bh = tl.program_id(1)
    off_b = off_bh // H
    off_h = off_bh % H
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < N_K
    d_ok = offs_d < HEAD_DIM
    nd_ok = n_ok[:, None] & d_ok[None, :]

    k = tl.load(K + off_b * stride_kb + off_h * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :],
                mask=nd_ok, other=0.0)
    v = tl.load(V + off_b * stride_vb + off_h * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :],
                mask=nd_ok, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634

    Q_base = Q + off_b * stride_qb + off_h * stride_qh
    DO_base = DO + off_b * stride_dob + off_h * stride_doh
    # first_q in the reference: earlier query tiles lie entirely above the diagonal
    lo = 0
    if CAUSAL:
        lo = (start_n // BLOCK_M) * BLOCK_M
    for start_m in range(lo, N_Q, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        m_ok = offs_m < N_Q
        md_ok = m_ok[:, None] & d_ok[None, :]
        q = tl.load(Q_base + offs_m[:, None] * stride_qn + offs_d[None, :], mask=md_ok, other=0.0)
        do = tl.load(DO_base + offs_m[:, None] * stride_don + offs_d[None, :], mask=md_ok, other=0.0)
        L_i = tl.load(L + off_bh * N_Q + offs_m, mask=m_ok, other=0.0)
        D_i = tl.load(Dl + off_bh * N_Q + offs_m, mask=m_ok, other=0.0)

        # Work with transposed tiles (keys × queries) so the results land in dK/dV's layout.
        # sT = (q @ kᵀ)ᵀ = k @ qᵀ;  pT = exp(sT - L)   ("P of this tile, recomputed")
        sT = tl.dot(k, tl.trans(q))
        pT = tl.math.exp2(sT * qk_scale - L_i[None, :] * 1.4426950408889634)
        allowed = n_ok[:, None] & m_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_m[None, :] >= offs_n[:, None])
        pT = tl.where(allowed, pT, 0.0)
        # dV += Pᵀ dO
        dv += tl.dot(pT.to(do.dtype), do)
        # dP = dO Vᵀ  (transposed: v @ doᵀ);  dS = P ∘ (dP − D)
        dpT = tl.dot(v, tl.trans(do))
        dsT = pT * (dpT - D_i[None, :])
        # dK += dSᵀ Q   (the scale is applied once, at the end)
        dk += tl.dot(dsT.to(q.dtype), q)

    dk = dk * sm_scale
    tl.store(DK + off_b * stride_kb + off_h * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :],
             dk.to(DK.dtype.element_ty), mask=nd_ok)
    tl.store(DV + off_b * stride_vb + off_h * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=nd_ok)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, DQ, L, Dl,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    H, N_Q, N_K, sm_scale,
    CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """dQ of one query tile: ``dQ += dS K`` over key tiles.

    The reference accumulates dQ inside the key loop; on a GPU that makes programs for
    different key tiles add into the same dQ rows. FlashAttention-2 keeps that single
    pass and adds with atomics into an fp32 buffer (``dq_accum`` in flash-attn). Like
    Triton's fused-attention tutorial, this kernel instead gives each dQ tile an owner that
    recomputes ``S``, ``P`` and ``dP`` — three more matrix products per tile pair (seven
    in the whole backward, against FlashAttention-2's five), no atomics, and a
    deterministic result. (The tutorial runs both loops in one kernel — each program
    finishes a key tile's dK/dV, then a query tile's dQ — after a preprocessing kernel:
    two launches. Here they are separate kernels, so each gets its own block shape.)
    """
    start_m = tl.program_id(0) * BLOCK_M
    off_bh = tl.program_id(1)
    off_b = off_bh // H
    off_h = off_bh % H
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < N_Q
    d_ok = offs_d < HEAD_DIM
    md_ok = m_ok[:, None] & d_ok[None, :]

    q = tl.load(Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :],
                mask=md_ok, other=0.0)
    do = tl.load(DO + off_b * stride_dob + off_h * stride_doh + offs_m[:, None] * stride_don + offs_d[None, :],
                 mask=md_ok, other=0.0)
    L_i = tl.load(L + off_bh * N_Q + offs_m, mask=m_ok, other=0.0)
    D_i = tl.load(Dl + off_bh * N_Q + offs_m, mask=m_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634

    K_base = K + off_b * stride_kb + off_h * stride_kh
    V_base = V + off_b * stride_vb + off_h * stride_vh
    hi = N_K
    if CAUSAL:
        hi = tl.minimum(start_m + BLOCK_M, N_K)  # later keys are above the diagonal
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < N_K
        nd_ok = n_ok[:, None] & d_ok[None, :]
        k = tl.load(K_base + offs_n[:, None] * stride_kn + offs_d[None, :], mask=nd_ok, other=0.0)
        v = tl.load(V_base + offs_n[:, None] * stride_vn + offs_d[None, :], mask=nd_ok, other=0.0)
        s = tl.dot(q, tl.trans(k))
        p = tl.math.exp2(s * qk_scale - L_i[:, None] * 1.4426950408889634)  # P = exp(S - L)
        allowed = m_ok[:, None] & n_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_m[:, None] >= offs_n[None, :])
        p = tl.where(allowed, p, 0.0)
        dp = tl.dot(do, tl.trans(v))  # dP = dO Vᵀ
        ds = p * (dp - D_i[:, None])  # dS = P ∘ (dP − D)
        dq += tl.dot(ds.to(k.dtype), k)  # dQ += dS K

    dq = dq * sm_scale
    tl.store(DQ + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :],
             dq.to(DQ.dtype.element_ty), mask=md_ok)


# =============================================================================
# Launch configurations: block sizes, warps and pipeline stages per GPU generation
# =============================================================================

MATMULS_PER_TILE = {"_attn_fwd_inner": 2, "_attn_bwd_dkdv": 4, "_attn_bwd_dq": 3}
"""``tl.dot`` calls per (query tile, key tile) pair in each kernel (a test counts them in the source).

The backward does 4 + 3 = 7 products — ``S`` and ``dP`` are recomputed in both passes —
so 3.5× the forward's arithmetic, while TFLOP/s are reported with the FlashAttention
papers' convention of 2.5× (five products: the forward's ``S`` recomputed once, plus
dV, dP, dS·K and dSᵀ·Q). Reported backward TFLOP/s thus understate this kernel's real
arithmetic rate by 7/5; the convention compares algorithms doing the same job.
"""

INTERPRETED: bool = isinstance(_attn_fwd, InterpretedFunction)
"""True when this module was imported with ``TRITON_INTERPRET=1`` (kernels run on CPU tensors)."""

#: Block sizes used under the interpreter. Its cost grows with the number of program
#: instances, so big tiles keep the CPU tests fast; any value >= 16 is correct.
INTERPRETER_BLOCKS = (64, 64)


def gpu_configs(capability: tuple[int, int], kernel: str) -> list[triton.Config]:
    """A short autotuning list for ``kernel`` ("fwd", "dkdv" or "dq") on a GPU generation.

    Kept modest on purpose (a handful of configs, tried once per shape): bigger tiles
    for Hopper (sm90, 228 KB shared memory per SM), medium ones for A100 (sm80, 164 KB),
    smaller ones for the consumer Ampere/Ada cards (sm86/sm89, ~100 KB). A config that
    does not fit a GPU's shared memory or registers fails to compile and the autotuner
    skips it.
    """
    C = triton.Config
    if kernel == "fwd":
        if capability >= (9, 0):
            shapes = [(128, 128, 8, 3), (128, 64, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3)]
        elif capability == (8, 0):
            shapes = [(128, 64, 4, 3), (128, 64, 8, 3), (128, 32, 4, 3), (64, 64, 4, 2)]
        else:
            shapes = [(128, 32, 4, 2), (64, 64, 4, 2), (64, 32, 4, 2)]
    elif kernel == "dkdv":  # few queries at a time, many keys held: (BLOCK_M, BLOCK_N) = (small, big)
        if capability >= (9, 0):
            shapes = [(32, 128, 8, 3), (64, 128, 8, 2), (32, 64, 4, 3), (64, 64, 4, 2)]
        elif capability == (8, 0):
            shapes = [(32, 128, 8, 2), (32, 64, 4, 3), (64, 64, 4, 2)]
        else:
            shapes = [(32, 64, 4, 2), (64, 64, 4, 2), (32, 32, 4, 2)]
    elif kernel == "dq":  # many queries held, few keys at a time
        if capability >= (9, 0):
            shapes = [(128, 32, 8, 3), (128, 64, 8, 2), (64, 32, 4, 3), (64, 64, 4, 2)]
        elif capability == (8, 0):
            shapes = [(128, 32, 8, 2), (64, 32, 4, 3), (64, 64, 4, 2)]
        else:
            shapes = [(64, 32, 4, 2), (64, 64, 4, 2), (32, 32, 4, 2)]
    else:
        raise ValueError(f"unknown kernel {kernel!r}; use 'fwd', 'dkdv' or 'dq'")
    return [C({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s) for bm, bn, w, s in shapes]


#: The 16-bit tiles each kernel's program keeps in shared memory, by their number of rows (each
#: row is ``BLOCK_D`` wide): *held* tiles are loaded once per program; *streamed* tiles are
#: loaded on every trip of its loop, and Triton's software pipeliner keeps several in flight.
TILES = {
    "fwd": {"held": ("BLOCK_M",), "streamed": ("BLOCK_N", "BLOCK_N")},  # q; k, v
    "dkdv": {"held": ("BLOCK_N", "BLOCK_N"), "streamed": ("BLOCK_M", "BLOCK_M")},  # k, v; q, dO
    "dq": {"held": ("BLOCK_M", "BLOCK_M"), "streamed": ("BLOCK_N", "BLOCK_N")},  # q, dO; k, v
}


def tile_budget(kernel: str, config: triton.Config, head_dim: int, *, capability: tuple[int, int] = (9, 0),
                element_bytes: int = 2) -> dict[str, int]:
    """Shared memory and fp32 accumulator registers one program of ``kernel`` needs with ``config``.

    Shared memory: held tiles once, streamed tiles once per pipeline buffer — ``num_stages``
    buffers on Hopper, ``num_stages - 1`` on older GPUs (what Triton's pipeliner allocates when
    the strides are multiples of 16; ``tests/test_gpu_configs.py`` checks this against the
    compiler's own count). Registers: the fp32 accumulators (``acc``; ``dk`` and ``dv``; ``dq``)
    and the fp32 score tile, spread over the program's ``32 · num_warps`` threads — a GPU thread
    has at most 255 registers, so this is what decides whether a tile shape spills.
    """
    if kernel not in TILES:
        raise ValueError(f"unknown kernel {kernel!r}; use one of {sorted(TILES)}")
    rows = {"BLOCK_M": config.kwargs["BLOCK_M"], "BLOCK_N": config.kwargs["BLOCK_N"]}
    block_d = max(16, triton.next_power_of_2(head_dim))
    buffers = config.num_stages if capability >= (9, 0) else max(1, config.num_stages - 1)
    held = sum(rows[r] for r in TILES[kernel]["held"])
    streamed = sum(rows[r] for r in TILES[kernel]["streamed"])
    accumulators = (2 if kernel == "dkdv" else 1) * rows["BLOCK_N" if kernel == "dkdv" else "BLOCK_M"] * block_d
    scores = rows["BLOCK_M"] * rows["BLOCK_N"]
    return {
        "shared_bytes": (held + buffers * streamed) * block_d * element_bytes,
        "fp32_registers_per_thread": (accumulators + scores) // (32 * config.num_warps),
    }


_KERNELS = {"fwd": _attn_fwd, "dkdv": _attn_bwd_dkdv, "dq": _attn_bwd_dq}


@functools.cache
def _tuned(kernel: str, capability: tuple[int, int]):
    """``kernel`` wrapped in a Triton autotuner with this GPU generation's configs (built once)."""
    return triton.autotune(configs=gpu_configs(capability, kernel), key=["N_Q", "N_K", "HEAD_DIM", "CAUSAL"])(
        _KERNELS[kernel]
    )


def _launch(kernel: str, grid_rows: str, args: tuple, n_q: int, n_k: int, bh: int, consts: dict,
            blocks: tuple[int, int] | None, device: torch.device) -> None:
    """Run ``kernel`` with fixed blocks (interpreter, or when the caller pins them) or autotuned."""
    def grid(meta):  # one program per tile of rows, times batch × heads
        rows = n_q if grid_rows == "M" else n_k
        return (triton.cdiv(rows, meta["BLOCK_M" if grid_rows == "M" else "BLOCK_N"]), bh)

    if INTERPRETED or blocks is not None:
        bm, bn = blocks if blocks is not None else INTERPRETER_BLOCKS
        _KERNELS[kernel][grid({"BLOCK_M": bm, "BLOCK_N": bn})](*args, **consts, BLOCK_M=bm, BLOCK_N=bn)
    else:
        capability = tuple(torch.cuda.get_device_capability(device))
        _tuned(kernel, capability)[grid](*args, **consts)


# =============================================================================
# Python wrappers
# =============================================================================


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must have shape (batch, heads, N, d), got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[:2] != k.shape[:2] or k.shape != v.shape or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"incompatible shapes q{tuple(q.shape)}, k{tuple(k.shape)}, v{tuple(v.shape)}")
    if causal and q.shape[2] != k.shape[2]:
        raise ValueError(f"causal attention needs as many queries as keys, got {q.shape[2]} and {k.shape[2]}")
    d = q.shape[-1]
    if not 16 <= d <= 128:
        raise ValueError(f"the Triton kernel supports head dims 16 to 128, got {d}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.device.type == "cpu" and not INTERPRETED:
        raise ValueError(
            "CPU tensors need the Triton interpreter: set os.environ['TRITON_INTERPRET'] = '1' before "
            "flashtrade_lib.kernels.flash_attention is first imported (restart the Python process), "
            "or move the tensors to a CUDA GPU"
        )
    if INTERPRETED and q.dtype == torch.bfloat16:
        # measured with triton 3.9: the interpreter's tl.dot returns garbage for bfloat16 tiles
        raise TypeError(
            "the Triton interpreter does not compute bfloat16 matrix products correctly; "
            "test on CPU with float32 or float16 (bfloat16 works on a GPU)"
        )
    if q.device.type == "cuda" and q.dtype not in (torch.float16, torch.bfloat16):
        raise TypeError(
            f"on a GPU the Triton kernel takes float16 or bfloat16 (tensor cores), got {q.dtype}; "
            "cast with .to(torch.bfloat16)"
        )


def _strides(t: torch.Tensor) -> tuple[int, int, int]:
    return t.stride(0), t.stride(1), t.stride(2)


def _contiguous_last(t: torch.Tensor) -> torch.Tensor:
    """The kernels assume the head dim is contiguous (stride 1); copy only when it is not."""
    return t if t.stride(-1) == 1 else t.contiguous()


def flash_attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
    scale: float | None = None, blocks: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel: returns ``(o, L)`` with ``L`` the fp32 row log-sum-exp, shape (B, H, N).

    The counterpart of ``tiled_attention(..., return_lse=True)``. ``blocks=(BLOCK_M, BLOCK_N)``
    pins the tile sizes (otherwise: autotuned on a GPU, ``INTERPRETER_BLOCKS`` on CPU).
    """
    _check(q, k, v, causal)
    q, k, v = (_contiguous_last(t) for t in (q, k, v))
    B, H, n_q, d = q.shape
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    o = torch.empty_like(q)
    L = torch.empty((B, H, n_q), device=q.device, dtype=torch.float32)
    args = (q, k, v, o, L, *_strides(q), *_strides(k), *_strides(v), *_strides(o), H, n_q, n_k, scale)
    consts = {"CAUSAL": causal, "HEAD_DIM": d, "BLOCK_D": max(16, triton.next_power_of_2(d))}
    _launch("fwd", "M", args, n_q, n_k, B * H, consts, blocks, q.device)
    return o, L


def backward_delta(o: torch.Tensor, do: torch.Tensor) -> torch.Tensor:
    """``D = rowsum(dO ∘ O)`` as ``(batch, heads, N)`` float32: the backward's first launch."""
    B, H, n_q, d = o.shape
    D = torch.empty((B, H, n_q), dtype=torch.float32, device=o.device)
    pre_m = 64 if INTERPRETED else 128
    _attn_bwd_preprocess[(triton.cdiv(n_q, pre_m), B * H)](
        o, do, D, *_strides(o), *_strides(do), H, n_q,
        HEAD_DIM=d, BLOCK_D=max(16, triton.next_power_of_2(d)), BLOCK_M=pre_m,
    )
    return D


def flash_attention_backward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, L: torch.Tensor,
    do: torch.Tensor, *, causal: bool = False, scale: float | None = None,
    blocks: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(dq, dk, dv)`` — the counterpart of ``tiled_attention_backward``.

    Three launches: ``D = rowsum(dO ∘ O)``; dK, dV per key tile; dQ per query tile.
    """
    _check(q, k, v, causal)
    q, k, v, o, do = (_contiguous_last(t) for t in (q, k, v, o, do))
    B, H, n_q, d = q.shape
    n_k = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    block_d = max(16, triton.next_power_of_2(d))
    D = backward_delta(o, do)
    # dq, dk, dv take q's, k's, v's layout, so the kernels reuse those strides for them
    dq = torch.empty_like(q, memory_format=torch.preserve_format)
    dk = torch.empty_like(k)
    dv = torch.empty_like(v)
    if dq.stride() != q.stride() or dk.stride() != k.stride() or dv.stride() != v.stride():
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    consts = {"CAUSAL": causal, "HEAD_DIM": d, "BLOCK_D": block_d}
    common = (*_strides(q), *_strides(k), *_strides(v), *_strides(do), H, n_q, n_k, scale)
    _launch("dkdv", "N", (q, k, v, do, dk, dv, L, D, *common), n_q, n_k, B * H, consts, blocks, q.device)
    _launch("dq", "M", (q, k, v, do, dq, L, D, *common), n_q, n_k, B * H, consts, blocks, q.device)
    return dq, dk, dv


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd glue: the forward saves ``q, k, v, o`` and ``L`` (O(N) extra), never ``P`` (O(N²))."""

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, blocks):  # type: ignore[override]
        o, L = flash_attention_forward(q, k, v, causal=causal, scale=scale, blocks=blocks)
        ctx.save_for_backward(q, k, v, o, L)
        ctx.causal, ctx.scale, ctx.blocks = causal, scale, blocks
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, o, L = ctx.saved_tensors
        dq, dk, dv = flash_attention_backward(
            q, k, v, o, L, do, causal=ctx.causal, scale=ctx.scale, blocks=ctx.blocks
        )
        return dq, dk, dv, None, None, None


def flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
    scale: float | None = None, blocks: tuple[int, int] | None = None,
) -> torch.Tensor:
    """FlashAttention on ``(batch, heads, N, d)`` tensors with the Triton kernels; differentiable."""
    return FlashAttentionFunction.apply(q, k, v, causal, scale, blocks)
