"""Every attention backend on a real GPU, forward and backward, against an fp32 reference.

Skipped, with the reason, on machines without CUDA. The tolerance follows the
FlashAttention test-suite's rule: a fused kernel in fp16/bf16 may be at most a few times
further from the fp32 answer than the plain fp16/bf16 computation (``naive`` in the same
dtype) is — so the check adapts to the rounding of each dtype and size instead of using
one magic constant.
"""

from __future__ import annotations

import math

import pytest
import torch

from flashtrade_lib.attention.backends import (
    BACKENDS,
    attention,
    choose_backend,
    describe,
    naive_attention_torch,
    why_not,
)
from flashtrade_lib.attention.numerics import attention_error_bounds

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

GPU_BACKENDS = [b for b in BACKENDS if b != "naive"]
SHAPES = [  # (batch, heads, N, d): odd lengths on purpose
    (2, 3, 257, 64),
    (1, 2, 1000, 128),
    (1, 1, 77, 40),
]


def _inputs(shape, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, device="cuda", dtype=dtype).requires_grad_() for _ in range(3))


def _derived_tolerance(q, k, v, do=None, *, causal=False) -> dict[str, float]:
    """The rounding bound of a kernel in q's dtype vs an fp32 reference (chapter 3's numerics lab)."""
    arrays = [t.detach().double().cpu().numpy() for t in (q, k, v)]
    do_ = None if do is None else do.detach().double().cpu().numpy()
    return attention_error_bounds(*arrays, do_, dtype=str(q.dtype), causal=causal, reference="float32")


def _fwd_bwd(backend, q, k, v, do, causal):
    out = attention(q, k, v, causal=causal, backend=backend)
    grads = torch.autograd.grad(out, (q, k, v), do)
    return (out, *grads)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_backend_matches_reference(backend, dtype, causal, shape):
    q, k, v = _inputs(shape, dtype)
    why = why_not(backend, describe(q, k, v, causal=causal))
    if why is not None:
        pytest.skip(f"{backend} cannot run here: {why}")
    do = torch.randn_like(q)
    # reference: the same inputs in fp32; baseline: naive in the low-precision dtype
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = _fwd_bwd("naive", q32, k32, v32, do.float(), causal)
    base = _fwd_bwd("naive", q, k, v, do, causal)
    try:
        got = _fwd_bwd(backend, q, k, v, do, causal)
    except ValueError as exc:  # torch refused a pinned SDPA kernel (e.g. an alignment rule)
        if backend.startswith("sdpa:"):
            pytest.skip(str(exc))
        raise
    for name, g, b, r in zip(("out", "dq", "dk", "dv"), got, base, ref, strict=True):
        assert g.dtype == dtype and g.shape == r.shape
        err = (g.float() - r).abs().max().item()
        base_err = (b.float() - r).abs().max().item()
        assert math.isfinite(err), f"{backend} {name}: non-finite values"
        assert err <= 3 * base_err + 1e-3, (
            f"{backend} {name}: max error {err:.3e} vs fp32, but plain {dtype} attention is "
            f"within {base_err:.3e}"
        )


@pytest.mark.parametrize("blocks", [None, (64, 64), (128, 32), (32, 64)])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_triton_kernel_block_sizes(blocks, causal):
    """The autotuned kernel and every pinned tiling give the same answer as naive."""
    from flashtrade_lib.kernels.flash_attention import flash_attention

    q, k, v = _inputs((1, 4, 515, 64), torch.bfloat16, seed=1)
    do = torch.randn_like(q)
    out = flash_attention(q, k, v, causal=causal, blocks=blocks)
    grads = torch.autograd.grad(out, (q, k, v), do)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = naive_attention_torch(q32, k32, v32, causal=causal)
    ref_grads = torch.autograd.grad(ref, (q32, k32, v32), do.float())
    tol = _derived_tolerance(q, k, v, do, causal=causal)
    torch.testing.assert_close(out.float(), ref, atol=tol["o"], rtol=0)
    for name, g, r in zip(("dq", "dk", "dv"), grads, ref_grads, strict=True):
        torch.testing.assert_close(g.float(), r, atol=tol[name], rtol=0)


def test_triton_cross_attention():
    from flashtrade_lib.kernels.flash_attention import flash_attention

    g = torch.Generator(device="cuda").manual_seed(2)
    q = torch.randn(2, 2, 100, 64, generator=g, device="cuda", dtype=torch.float16)
    k = torch.randn(2, 2, 333, 64, generator=g, device="cuda", dtype=torch.float16)
    v = torch.randn(2, 2, 333, 64, generator=g, device="cuda", dtype=torch.float16)
    out = flash_attention(q, k, v)
    ref = naive_attention_torch(q.float(), k.float(), v.float())
    torch.testing.assert_close(out.float(), ref, atol=_derived_tolerance(q, k, v)["o"], rtol=0)


def test_triton_refuses_fp32_on_gpu():
    from flashtrade_lib.kernels.flash_attention import flash_attention

    q = torch.randn(1, 1, 64, 64, device="cuda")
    with pytest.raises(TypeError, match="bfloat16"):
        flash_attention(q, q, q)
    with pytest.raises(ValueError, match="cast the inputs"):
        attention(q, q, q, backend="triton")


def test_auto_on_this_gpu():
    q = torch.randn(1, 2, 128, 64, device="cuda", dtype=torch.bfloat16)
    choice = choose_backend(q, q, q, causal=True)
    fa = why_not("flash_attn", describe(q, q, q)) is None
    assert choice.name == ("flash_attn" if fa else "sdpa"), choice.reason
    out = attention(q, q, q, causal=True)
    torch.testing.assert_close(out.float(), naive_attention_torch(q.float(), q.float(), q.float(), causal=True),
                               atol=_derived_tolerance(q, q, q, causal=True)["o"], rtol=0)


def test_cuda_cpp_forward_kernel():
    """The teaching CUDA C++ forward (compiled on first use with load_inline)."""
    from torch.utils.cpp_extension import CUDA_HOME

    pytest.importorskip("ninja", reason="torch.utils.cpp_extension.load_inline needs ninja")
    if CUDA_HOME is None:
        pytest.skip("no CUDA toolkit (nvcc) found: load_inline cannot compile the kernel")
    from flashtrade_lib.kernels.cuda_forward import cuda_flash_forward

    g = torch.Generator(device="cuda").manual_seed(3)
    q, k, v = (torch.randn(2, 3, 203, 64, generator=g, device="cuda") for _ in range(3))
    for causal in (False, True):
        out = cuda_flash_forward(q, k, v, causal=causal)
        torch.testing.assert_close(out, naive_attention_torch(q, k, v, causal=causal), atol=1e-4, rtol=1e-4)
