"""The NumPy reference: tiled forward/backward equal naive NumPy and PyTorch autograd.

Property-based over shapes, leading dims, block sizes (not dividing N), Nq != Nk,
causal, padding/random masks, fully masked rows, logits of ±1e4, float32/float64 —
plus the explicit edge cases and the error messages.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashtrade_lib.attention.reference import (
    causal_block_skipped,
    causal_mask,
    naive_attention,
    tile_schedule,
    tiled_attention,
    tiled_attention_backward,
)

TOL = {np.float64: 1e-10, np.float32: 1e-4}


@dataclass
class Case:
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None
    causal: bool
    scale: float | None
    block_q: int
    block_k: int
    huge: bool

    @property
    def dtype(self) -> type:
        return self.q.dtype.type

    def allowed(self) -> np.ndarray:
        """Dense (..., Nq, Nk) boolean 'may attend' — for the test's own references only."""
        nq, nk = self.q.shape[-2], self.k.shape[-2]
        allowed = np.ones(self.q.shape[:-2] + (nq, nk), dtype=bool)
        if self.causal:
            allowed &= causal_mask(nq, nk)
        if self.mask is not None:
            allowed &= self.mask
        return allowed


@st.composite
def cases(draw: st.DrawFn) -> Case:
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    nq, nk = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    d, dv = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    block_q, block_k = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    causal = draw(st.booleans())
    mask_kind = draw(st.sampled_from(["none", "padding", "random", "full"]))
    huge = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if huge:
        # Entries in {-1, 0, 1} and scale 1e4: logits are exact multiples of 1e4 (even in
        # float32), so a naive exp would overflow and ties are exact, not rounding noise.
        q = rng.integers(-1, 2, lead + (nq, d)).astype(dtype)
        k = rng.integers(-1, 2, lead + (nk, d)).astype(dtype)
        scale = 1e4
    else:
        q = rng.standard_normal(lead + (nq, d)).astype(dtype)
        k = rng.standard_normal(lead + (nk, d)).astype(dtype)
        scale = draw(st.sampled_from([None, 0.3, 2.0]))
    v = rng.standard_normal(lead + (nk, dv)).astype(dtype)
    mask = None
    if mask_kind == "padding":  # per batch element, keys >= length are padding (length 0: all)
        lengths = rng.integers(0, nk + 1, lead + (1, 1))
        mask = np.arange(nk) < lengths  # shape lead + (1, Nk): broadcasts over queries
    elif mask_kind == "random":  # one (Nq, Nk) mask broadcast over batch/heads
        mask = rng.random((nq, nk)) < draw(st.sampled_from([0.2, 0.6, 0.95]))
        mask[rng.integers(nq)] = False  # at least one fully masked row
    elif mask_kind == "full":
        mask = rng.random(lead + (nq, nk)) < 0.5
    return Case(q, k, v, mask, causal, scale, block_q, block_k, huge)


def _naive64(c: Case, **kw: object) -> np.ndarray:
    f64 = [x.astype(np.float64) for x in (c.q, c.k, c.v)]
    return naive_attention(*f64, causal=c.causal, mask=c.mask, scale=c.scale, **kw)


def _close(actual: np.ndarray, expected: np.ndarray, tol: float, what: str) -> None:
    assert actual.shape == expected.shape, what
    assert np.isfinite(actual).all(), f"{what}: non-finite values"
    err = np.abs(actual.astype(np.float64) - expected).max(initial=0.0)
    bound = tol * (1.0 + np.abs(expected).max(initial=0.0))
    assert err <= bound, f"{what}: max error {err:.3g} > {bound:.3g}"


def _backward_tol(c: Case) -> float:
    # In float32 the saved L = m + log(ell) has |m| ≈ 1e4 for huge logits, so it is
    # rounded to ~1e-3 (ulp of 1e4); the recomputed P inherits that relative error.
    # This is float32's limit (FlashAttention keeps L in fp32 too), not a bug.
    return 5e-3 if (c.huge and c.dtype is np.float32) else TOL[c.dtype]


@settings(max_examples=300, deadline=None)
@given(cases())
def test_tiled_forward_matches_naive(c: Case) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings, ever
        o, lse = tiled_attention(
            c.q, c.k, c.v, block_q=c.block_q, block_k=c.block_k, causal=c.causal,
            mask=c.mask, scale=c.scale, return_lse=True,
        )
        o_same_dtype = naive_attention(c.q, c.k, c.v, causal=c.causal, mask=c.mask, scale=c.scale)
    assert o.dtype == lse.dtype == o_same_dtype.dtype == c.q.dtype
    ref, p = _naive64(c, return_weights=True)
    _close(o, ref, TOL[c.dtype], "tiled output")
    _close(o_same_dtype, ref, TOL[c.dtype], "naive output in the input dtype")

    allowed = c.allowed()
    dead = ~allowed.any(axis=-1)  # fully masked rows
    assert (o[dead] == 0).all() and (p[dead] == 0).all()
    assert np.isneginf(lse[dead]).all()
    np.testing.assert_allclose(p.sum(axis=-1)[~dead], 1.0, rtol=1e-12)
    assert (p[~allowed] == 0).all()

    # L = log sum_j exp(s_ij): the float64 reference, computed stably here.
    s = c.q.astype(np.float64) @ np.swapaxes(c.k, -1, -2).astype(np.float64)
    s = np.where(allowed, s * (c.scale or 1 / np.sqrt(c.q.shape[-1])), -np.inf)
    smax = np.where(dead, 0.0, s.max(axis=-1))
    with np.errstate(divide="ignore"):
        lse_ref = smax + np.log(np.exp(s - smax[..., None]).sum(axis=-1))
    tol = 1e-6 if c.dtype is np.float32 else 1e-12
    np.testing.assert_allclose(lse[~dead], lse_ref[~dead], rtol=tol, atol=tol)


def _naive_backward64(c: Case, do: np.ndarray) -> tuple[np.ndarray, ...]:
    """The dense textbook backward (stores P), with the softmax Jacobian written out."""
    q, k, v = (x.astype(np.float64) for x in (c.q, c.k, c.v))
    scale = c.scale or 1 / np.sqrt(q.shape[-1])
    _, p = naive_attention(q, k, v, causal=c.causal, mask=c.mask, scale=c.scale, return_weights=True)
    do = do.astype(np.float64)
    dv = np.swapaxes(p, -1, -2) @ do
    dp = do @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True))
    return ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, dv


def _torch_backward64(c: Case, do: np.ndarray) -> tuple[np.ndarray, ...]:
    torch = pytest.importorskip("torch")
    q, k, v = (torch.tensor(x.astype(np.float64), requires_grad=True) for x in (c.q, c.k, c.v))
    allowed = torch.tensor(c.allowed())
    live = allowed.any(dim=-1, keepdim=True)
    scale = c.scale or 1 / np.sqrt(c.q.shape[-1])
    s = (q @ k.transpose(-1, -2)) * scale
    # Fully masked rows: let them attend everything, then zero their output, so torch
    # never sees a softmax of all -inf (NaN) and their gradients are exactly zero.
    s = s.masked_fill(~(allowed | ~live), float("-inf"))
    o = (torch.softmax(s, dim=-1) @ v) * live
    o.backward(torch.tensor(do.astype(np.float64)))
    return q.grad.numpy(), k.grad.numpy(), v.grad.numpy()


@settings(max_examples=200, deadline=None)
@given(cases())
def test_tiled_backward_matches_naive_and_torch(c: Case) -> None:
    kw = dict(causal=c.causal, mask=c.mask, scale=c.scale)
    o, lse = tiled_attention(c.q, c.k, c.v, block_q=c.block_q, block_k=c.block_k, return_lse=True, **kw)
    do = np.random.default_rng(1).standard_normal(o.shape).astype(c.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grads = tiled_attention_backward(
            c.q, c.k, c.v, o, lse, do, block_q=c.block_q, block_k=c.block_k, **kw
        )
    tol = _backward_tol(c)
    for name, g, ref_np, ref_torch in zip(
        ("dq", "dk", "dv"), grads, _naive_backward64(c, do), _torch_backward64(c, do), strict=True
    ):
        assert g.dtype == c.q.dtype
        _close(g, ref_np, tol, f"{name} vs naive NumPy")
        _close(g, ref_torch, tol, f"{name} vs torch autograd")


# ------------------------------------------------------------------ explicit edges
def _qkv(nq: int, nk: int, d: int = 4, dtype: type = np.float64, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d)).astype(dtype) for n in (nq, nk, nk))


@pytest.mark.parametrize("causal", [False, True])
def test_single_query_single_key(causal: bool) -> None:
    q, k, v = _qkv(1, 1)
    o, lse = tiled_attention(q, k, v, causal=causal, return_lse=True)
    np.testing.assert_allclose(o, v, rtol=1e-15)  # softmax over one key is 1
    np.testing.assert_allclose(lse, q @ k.T[:, 0] / 2.0, rtol=1e-15)


def test_block_larger_than_n_and_blocks_of_one_agree() -> None:
    q, k, v = _qkv(5, 7)
    ref = naive_attention(q, k, v, causal=True)
    for bq, bk in [(512, 512), (1, 1), (1, 512), (512, 1), (3, 2)]:
        np.testing.assert_allclose(
            tiled_attention(q, k, v, block_q=bq, block_k=bk, causal=True), ref, atol=1e-15
        )


def test_huge_logits_do_not_overflow() -> None:
    q = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    k = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    v = np.arange(6, dtype=np.float32).reshape(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in (naive_attention, tiled_attention):
            o = fn(q, k, v, scale=1e4)  # logits ±1e4: exp(1e4) is inf without the max shift
            np.testing.assert_array_equal(o, v[:2])  # one-hot: each query picks its key


def test_fully_masked_row_gives_zeros_and_zero_gradients() -> None:
    q, k, v = _qkv(4, 6)
    mask = np.ones((4, 6), dtype=bool)
    mask[2] = False
    o, lse = tiled_attention(q, k, v, mask=mask, block_q=2, block_k=4, return_lse=True)
    assert (o[2] == 0).all() and np.isneginf(lse[2]) and np.isfinite(o).all()
    dq, dk, dv = tiled_attention_backward(q, k, v, o, lse, np.ones_like(o), mask=mask, block_q=2, block_k=4)
    assert (dq[2] == 0).all() and np.isfinite(dk).all() and np.isfinite(dv).all()


def test_float32_stays_float32_even_with_a_numpy_float64_scale() -> None:
    q, k, v = _qkv(8, 8, dtype=np.float32)
    o, lse = tiled_attention(q, k, v, scale=np.float64(0.5), return_lse=True)
    assert o.dtype == lse.dtype == np.float32
    assert naive_attention(q, k, v, scale=np.float64(0.5)).dtype == np.float32
    grads = tiled_attention_backward(q, k, v, o, lse, o, scale=np.float64(0.5))
    assert all(g.dtype == np.float32 for g in grads)


def test_causal_tiles_above_the_diagonal_are_skipped_not_masked(monkeypatch) -> None:
    """Tiles no query may see are never computed (not computed and then masked).

    With Nq=8 < Nk=16 and block_k=4, keys 8..15 fill whole tiles above the diagonal. The
    forward and the backward ask ``causal_block_skipped`` before computing a tile; a spy
    records every tile they computed, and none may lie above the diagonal. (A NaN probe
    in those keys used to show the same; NaN inputs are now refused on every path.)
    """
    from flashtrade_lib.attention import reference

    computed: list[tuple[int, int]] = []

    def spy(q_stop: int, k_start: int) -> bool:
        skipped = causal_block_skipped(q_stop, k_start)
        if not skipped:
            computed.append((q_stop, k_start))
        return skipped

    monkeypatch.setattr(reference, "causal_block_skipped", spy)
    q, k, v = _qkv(8, 16)
    o, lse = tiled_attention(q, k, v, causal=True, block_q=3, block_k=4, return_lse=True)
    np.testing.assert_allclose(o, naive_attention(q, k[:8], v[:8], causal=True), atol=1e-15)
    forward = list(computed)
    assert forward and all(k0 < q1 for q1, k0 in forward)
    assert forward == [(q1, k0) for _, q1, k0, _ in tile_schedule(8, 16, block_q=3, block_k=4, causal=True)]
    computed.clear()
    grads = tiled_attention_backward(q, k, v, o, lse, np.ones_like(o), causal=True, block_q=3, block_k=4)
    assert computed and all(k0 < q1 for q1, k0 in computed)
    assert (grads[1][8:] == 0).all() and (grads[2][8:] == 0).all()  # keys nobody sees get no gradient


def test_tile_schedule_counts_causal_tiles() -> None:
    full = list(tile_schedule(10, 10, block_q=3, block_k=3))
    causal = list(tile_schedule(10, 10, block_q=3, block_k=3, causal=True))
    assert len(full) == 16 and len(causal) == 1 + 2 + 3 + 4  # lower triangle of a 4×4 tile grid
    assert all(not causal_block_skipped(q1, k0) for _, q1, k0, _ in causal)
    assert causal_block_skipped(q_stop=3, k_start=3) and not causal_block_skipped(q_stop=4, k_start=3)


def test_tiled_attention_never_allocates_n_by_n() -> None:
    from flashtrade_lib.measure.bench import peak_memory

    q, k, v = _qkv(4096, 4096, d=16, dtype=np.float32)
    n_by_n = 4096 * 4096 * 4  # 64 MiB
    tiled = peak_memory(lambda: tiled_attention(q, k, v, block_q=128, block_k=128))
    assert tiled < n_by_n / 8, f"tiled peak {tiled} bytes"


# ------------------------------------------------------------------ error messages
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda q, k, v: (q.astype(np.int64), k, v), "dtype int64"),
        (lambda q, k, v: (q.astype(np.float16), k, v), "float32 and float64"),
        (lambda q, k, v: (q.astype(np.float32), k, v), "share one dtype"),
        (lambda q, k, v: (q[None], k, v), "leading"),
        (lambda q, k, v: (q[:, :3], k, v), "same last dimension"),
        (lambda q, k, v: (q, k, v[:-1]), "same number of keys"),
        (lambda q, k, v: (q[0], k, v), r"shape \(\.\.\., N, d\)"),
        (lambda q, k, v: (q[:0], k, v), "empty"),
    ],
)
def test_bad_inputs_are_named(change, message: str) -> None:  # noqa: ANN001
    q, k, v = change(*_qkv(4, 5))
    for fn in (naive_attention, tiled_attention):
        with pytest.raises(ValueError, match=message):
            fn(q, k, v)


def test_bad_masks_blocks_and_scale_are_named() -> None:
    q, k, v = _qkv(4, 5)
    with pytest.raises(ValueError, match="boolean"):
        tiled_attention(q, k, v, mask=np.ones((4, 5)))
    with pytest.raises(ValueError, match="does not broadcast"):
        tiled_attention(q, k, v, mask=np.ones((5, 4), dtype=bool))
    with pytest.raises(ValueError, match="block_q must be a positive integer"):
        tiled_attention(q, k, v, block_q=0)
    with pytest.raises(ValueError, match="block_k must be a positive integer"):
        tiled_attention(q, k, v, block_k=2.5)
    with pytest.raises(ValueError, match="scale must be finite"):
        tiled_attention(q, k, v, scale=float("inf"))


def test_bad_backward_inputs_are_named() -> None:
    q, k, v = _qkv(4, 5)
    o, lse = tiled_attention(q, k, v, return_lse=True)
    with pytest.raises(ValueError, match="lse must have shape"):
        tiled_attention_backward(q, k, v, o, lse[:-1], o)
    with pytest.raises(ValueError, match="do must have shape"):
        tiled_attention_backward(q, k, v, o, lse, o[:-1])
    with pytest.raises(ValueError, match="do has dtype float32"):
        tiled_attention_backward(q, k, v, o, lse, o.astype(np.float32))


def test_torch_tensors_get_a_pointer_to_numpy() -> None:
    torch = pytest.importorskip("torch")
    q, k, v = _qkv(4, 5)
    with pytest.raises(ValueError, match=r"\.numpy\(\)"):
        tiled_attention(torch.tensor(q), k, v)
