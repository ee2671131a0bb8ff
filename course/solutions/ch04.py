"""Chapter 4 (04_gpu_kernels) — instructor's solutions and typical wrong answers.

Not installed with flashtrade_lib: the book's solution blocks are rendered from here.
Without CUDA the kernels below are defined for Triton's interpreter, as the chapter does.
"""

import importlib.util
import tempfile
from pathlib import Path

import triton
import triton.language as tl

from flashtrade_lib.course.solutions import shown_source, solution, wrong


@solution("ch04-flops")
def fwd_flops(batch, heads, n, d, causal):
    return 4.0 * batch * heads * n * n * d / (2 if causal else 1)  # two matmuls, 2 FLOPs per multiply-add


@wrong("ch04-flops", expect="only the lower triangle")
def fwd_flops_ignoring_causal(batch, heads, n, d, causal):
    return 4.0 * batch * heads * n * n * d


@solution("ch04-grid")
def grid(batch, heads, n, block_m):
    return ((n + block_m - 1) // block_m, batch * heads)  # = (triton.cdiv(n, block_m), batch * heads)


@wrong("ch04-grid", expect="ceil division")
def grid_rounding_down(batch, heads, n, block_m):
    return (n // block_m, batch * heads)


@solution("ch04-kernel-inner-loop")
@triton.jit
def my_attn_fwd(Q, K, V, O, L, N_Q, N_K, qk_scale,  # noqa: E741 — the paper's names
                CAUSAL: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m = tl.program_id(0)  # which query tile
    bh = tl.program_id(1)  # which (batch, head)
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    m_ok = offs_m < N_Q
    q = tl.load(Q + bh * N_Q * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :],
                mask=m_ok[:, None], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    stop = N_K
    if CAUSAL:
        stop = tl.minimum((start_m + 1) * BLOCK_M, N_K)  # later key tiles lie above the diagonal
    for start_n in range(0, stop, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        n_ok = offs_n < N_K
        kT = tl.load(K + bh * N_K * HEAD_DIM + offs_n[None, :] * HEAD_DIM + offs_d[:, None],
                     mask=n_ok[None, :], other=0.0)
        v = tl.load(V + bh * N_K * HEAD_DIM + offs_n[:, None] * HEAD_DIM + offs_d[None, :],
                    mask=n_ok[:, None], other=0.0)
        s = tl.dot(q, kT) * qk_scale  # scores in base-2 units
        allowed = n_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_m[:, None] >= offs_n[None, :])
        s = tl.where(allowed, s, float("-inf"))
        # the online-softmax update (chapter 2), one key tile at a time
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p, v)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(O + bh * N_Q * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :], acc, mask=m_ok[:, None])
    tl.store(L + bh * N_Q + offs_m, (m_i + tl.math.log2(l_i)) / 1.4426950408889634, mask=m_ok)


def _variant(kernel, old, new, name):
    """The solution kernel with `old` text replaced by `new`, defined from a file as Triton needs (it reads the source)."""
    source = shown_source(kernel)
    if old not in source:
        raise ValueError(f"{old!r} is not in {kernel.fn.__name__}")
    source = source.replace(old, new).replace(f"def {kernel.fn.__name__}(", f"def {name}(")
    path = Path(tempfile.mkdtemp(prefix="flashtrade-wrong-")) / f"{name}.py"
    path.write_text("import triton\nimport triton.language as tl\n\n\n" + source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


_SOURCE = shown_source(my_attn_fwd)
_UPDATE = _SOURCE[_SOURCE.index("        m_new = "):_SOURCE.index("    acc = acc / l_i")]  # the six lines
# the learner's starting point: the update lines not written yet
wrong("ch04-kernel-inner-loop", expect="Every value is NaN")(
    _variant(my_attn_fwd, _UPDATE, "        pass\n", "my_attn_fwd_unfinished")
)
# acc not rescaled when the max grows: ℓ is right (so L is), O is not
wrong("ch04-kernel-inner-loop", expect="acc must be multiplied by alpha too")(
    _variant(my_attn_fwd, "acc = acc * alpha[:, None] + tl.dot(p, v)", "acc = acc + tl.dot(p, v)",
             "my_attn_fwd_forgetting_to_rescale_acc")
)
# natural exp on base-2 scores
wrong("ch04-kernel-inner-loop", expect="use tl.math.exp2 for alpha and p")(
    _variant(my_attn_fwd, _UPDATE, _UPDATE.replace("tl.math.exp2(", "tl.exp("), "my_attn_fwd_with_exp")
)
# the max is never carried into the next tile
wrong("ch04-kernel-inner-loop", expect="carry the max into the next tile with m_i = m_new")(
    _variant(my_attn_fwd, "        m_i = m_new\n", "", "my_attn_fwd_with_a_stale_max")
)


@solution("ch04-bwd-preprocess")
@triton.jit
def my_bwd_preprocess(O, DO, D, N_Q, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr):  # noqa: E741
    start_m = tl.program_id(0)  # which tile of query rows
    bh = tl.program_id(1)  # which (batch, head)
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    m_ok = offs_m < N_Q
    rows = bh * N_Q * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :]
    o = tl.load(O + rows, mask=m_ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + rows, mask=m_ok[:, None], other=0.0).to(tl.float32)
    tl.store(D + bh * N_Q + offs_m, tl.sum(o * do, 1), mask=m_ok)


# the store without its mask: the last, partial tile writes past N_Q
wrong("ch04-bwd-preprocess", expect="mask the store with offs_m < N_Q")(
    _variant(my_bwd_preprocess, "tl.sum(o * do, 1), mask=m_ok)", "tl.sum(o * do, 1))",
             "my_bwd_preprocess_without_the_store_mask")
)
# every program reads the first tile of rows
wrong("ch04-bwd-preprocess", expect="offset the rows by start_m * BLOCK_M")(
    _variant(my_bwd_preprocess, "offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)", "offs_m = tl.arange(0, BLOCK_M)",
             "my_bwd_preprocess_without_the_tile_offset")
)
# every (batch, head) reads head 0
wrong("ch04-bwd-preprocess", expect="offset O and dO by bh * N_Q * HEAD_DIM")(
    _variant(my_bwd_preprocess, "rows = bh * N_Q * HEAD_DIM + ", "rows = ", "my_bwd_preprocess_without_the_head_offset")
)
# the row sum over the wrong axis: a column's sum over the tile's rows
wrong("ch04-bwd-preprocess", expect="Each D holds a column's sum over the tile's rows")(
    _variant(my_bwd_preprocess, "tl.sum(o * do, 1)", "tl.sum(o * do, 0)", "my_bwd_preprocess_summing_columns")
)
