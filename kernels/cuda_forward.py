"""A minimal FlashAttention forward in CUDA C++, for reading next to the Triton kernel.

GPU only, fp32, head dim up to 128, self-attention (as many queries as keys). It is a
teaching kernel, deliberately unoptimised: one thread owns one query row and keeps that
row's ``m``, ``l`` and ``acc`` in registers; the 32 threads of a block share tiles of K
and V in shared memory; keys are consumed one at a time with the online-softmax update
of chapter 2. No tensor cores, no pipelining — compare it with the Triton kernel to see
what Triton does for you (tiling into tensor-core matmuls, shared-memory staging, masks).

Compiled on first use with ``torch.utils.cpp_extension.load_inline`` (needs ``nvcc``
and ``ninja``; the first call takes a minute).
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["CUDA_SOURCE", "cuda_flash_forward"]

TILE = 32  # queries per block = keys per shared-memory tile = threads per block
MAX_D = 128

CUDA_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

constexpr int TILE = 32;    // threads per block: one query row each; also keys per tile
constexpr int MAX_D = 128;  // registers for q and acc are sized for the largest head dim

__global__ void flash_forward_kernel(const float* __restrict__ Q, const float* __restrict__ K,
                                     const float* __restrict__ V, float* __restrict__ O,
                                     int N, int d, float scale, bool causal) {
    const int bh = blockIdx.y;                           // which (batch, head)
    const int row = blockIdx.x * TILE + threadIdx.x;     // which query this thread owns
    const float* q = Q + (size_t)bh * N * d;
    const float* k = K + (size_t)bh * N * d;
    const float* v = V + (size_t)bh * N * d;

    extern __shared__ float smem[];                      // SRAM: one K tile and one V tile
    float* Ks = smem;
    float* Vs = smem + TILE * d;

    float qi[MAX_D], acc[MAX_D];
    for (int c = 0; c < d; ++c) {
        qi[c] = row < N ? q[(size_t)row * d + c] : 0.f;
        acc[c] = 0.f;
    }
    float m = -INFINITY, l = 0.f;                        // running max and denominator

    // causal: keys after the last query of this block are never visible
    const int kv_end = causal ? min(N, (int)(blockIdx.x + 1) * TILE) : N;
    for (int start = 0; start < kv_end; start += TILE) {
        const int kr = start + threadIdx.x;              // each thread loads one key row
        for (int c = 0; c < d; ++c) {
            Ks[threadIdx.x * d + c] = kr < N ? k[(size_t)kr * d + c] : 0.f;
            Vs[threadIdx.x * d + c] = kr < N ? v[(size_t)kr * d + c] : 0.f;
        }
        __syncthreads();                                 // the tile is in shared memory
        if (row < N) {
            for (int j = 0; j < TILE; ++j) {
                const int key = start + j;
                if (key >= N || (causal && key > row)) break;
                float s = 0.f;
                for (int c = 0; c < d; ++c) s += qi[c] * Ks[j * d + c];
                s *= scale;
                // online softmax, one key at a time (chapter 2)
                const float m_new = fmaxf(m, s);
                const float alpha = __expf(m - m_new);
                const float p = __expf(s - m_new);
                l = l * alpha + p;
                for (int c = 0; c < d; ++c) acc[c] = acc[c] * alpha + p * Vs[j * d + c];
                m = m_new;
            }
        }
        __syncthreads();                                 // before the next tile overwrites it
    }
    if (row < N) {
        for (int c = 0; c < d; ++c) O[((size_t)bh * N + row) * d + c] = acc[c] / l;
    }
}

torch::Tensor flash_forward(torch::Tensor q, torch::Tensor k, torch::Tensor v, double scale, bool causal) {
    auto o = torch::empty_like(q);
    const int N = q.size(2), d = q.size(3);
    const int bh = q.size(0) * q.size(1);
    const dim3 grid((N + TILE - 1) / TILE, bh);
    const size_t smem = 2 * TILE * d * sizeof(float);
    flash_forward_kernel<<<grid, TILE, smem, at::cuda::getCurrentCUDAStream()>>>(
        q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), o.data_ptr<float>(),
        N, d, (float)scale, causal);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return o;
}
"""

_CPP_DECLARATION = (
    "torch::Tensor flash_forward(torch::Tensor q, torch::Tensor k, torch::Tensor v, double scale, bool causal);"
)


@functools.cache
def _module():
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name="flashtrade_cuda_forward",
        cpp_sources=_CPP_DECLARATION,
        cuda_sources=CUDA_SOURCE,
        functions=["flash_forward"],
        extra_cuda_cflags=["-O3"],
        verbose=False,
    )


def cuda_flash_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """Forward only (no autograd) on CUDA fp32 tensors of shape (batch, heads, N, d), d <= 128."""
    if not torch.cuda.is_available() or q.device.type != "cuda":
        raise ValueError("the CUDA C++ kernel needs CUDA tensors on a GPU; on CPU read CUDA_SOURCE instead")
    if not (q.shape == k.shape == v.shape) or q.dim() != 4:
        raise ValueError(f"q, k, v must share one (batch, heads, N, d) shape, got {q.shape}, {k.shape}, {v.shape}")
    if q.dtype != torch.float32 or k.dtype != torch.float32 or v.dtype != torch.float32:
        raise TypeError(f"this teaching kernel takes float32, got {q.dtype}; use .float()")
    if q.shape[-1] > MAX_D:
        raise ValueError(f"head dim must be at most {MAX_D}, got {q.shape[-1]}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    q, k, v = (t.contiguous() for t in (q, k, v))
    return _module().flash_forward(q, k, v, scale, bool(causal))
