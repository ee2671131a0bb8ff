"""The one attention API: every CPU backend against naive, the "auto" choice, and every error.

GPU situations (an A100 with fp32 inputs, a Turing card, flash-attn missing, ...) are
tested through :func:`decide` / :func:`why_not` on hand-made capability descriptions,
so they run here on a CPU; ``tests/test_gpu.py`` runs the real thing on a GPU.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from flashtrade_lib.attention import attention
from flashtrade_lib.attention.backends import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    Capabilities,
    capability_report,
    choose_backend,
    decide,
    describe,
    materialises_scores,
    naive_attention_torch,
    preference_order,
    register,
    registered,
    unregister,
    usable_backends,
    why_not,
)

A100 = Capabilities(device="cuda", dtype="bfloat16", head_dim=64, compute_capability=(8, 0),
                    flash_attn_installed=True, triton_installed=True)
H100 = dataclasses.replace(A100, compute_capability=(9, 0))
T4 = dataclasses.replace(A100, compute_capability=(7, 5), dtype="float16")
LAPTOP = Capabilities(device="cpu", dtype="float32", head_dim=64, triton_installed=True)

# every backend of the table that runs fp32 CPU tensors without the Triton interpreter, and "auto"
CPU_BACKENDS = [*usable_backends(LAPTOP), "auto"]


def _qkv(b=2, h=3, n_q=37, n_k=None, d=24, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_k = n_q if n_k is None else n_k
    q = torch.randn(b, h, n_q, d, generator=g, dtype=dtype)
    k = torch.randn(b, h, n_k, d, generator=g, dtype=dtype)
    v = torch.randn(b, h, n_k, d, generator=g, dtype=dtype)
    return q, k, v


def _softmax_reference(q, k, v, causal, scale=None):
    """An independent float64 reference: explicit loops over nothing, just the definition."""
    q, k, v = (t.double() for t in (q, k, v))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        s = s + torch.full(s.shape[-2:], float("-inf"), dtype=s.dtype).triu(1)
    return torch.softmax(s, -1) @ v


# ------------------------------------------------------------------ real CPU tensors


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_forward_matches_definition(backend, causal):
    q, k, v = _qkv(n_q=37)  # 37: not a multiple of any block size
    out = attention(q, k, v, causal=causal, backend=backend)
    assert out.shape == q.shape and out.dtype == q.dtype
    torch.testing.assert_close(out.double(), _softmax_reference(q, k, v, causal), atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_match_naive(backend, causal):
    q, k, v = (t.requires_grad_() for t in _qkv(n_q=29, d=16, seed=1))
    out = attention(q, k, v, causal=causal, backend=backend)
    do = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), do)
    ref = torch.autograd.grad(naive_attention_torch(q, k, v, causal=causal), (q, k, v), do)
    for name, g, r in zip("qkv", grads, ref, strict=True):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4, msg=f"d{name} differs from naive")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cross_attention_and_custom_scale(backend):
    q, k, v = _qkv(n_q=11, n_k=40, d=32, seed=2)  # more keys than queries, non-causal
    out = attention(q, k, v, scale=0.3, backend=backend)
    torch.testing.assert_close(out.double(), _softmax_reference(q, k, v, False, 0.3), atol=2e-5, rtol=2e-5)


def test_half_precision_on_cpu_matches_float32():
    q, k, v = _qkv(n_q=33, d=32, dtype=torch.bfloat16, seed=3)
    for backend in ("naive", "sdpa"):
        out = attention(q, k, v, causal=True, backend=backend)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.double(), _softmax_reference(q, k, v, True), atol=3e-2, rtol=3e-2)


def test_dropout_changes_the_output_and_zero_dropout_does_not():
    q, k, v = _qkv(n_q=16, d=16)
    torch.manual_seed(0)
    dropped = attention(q, k, v, dropout_p=0.5, backend="naive")
    plain = attention(q, k, v, dropout_p=0.0, backend="naive")
    assert not torch.allclose(dropped, plain)
    # sdpa and naive both keep the expectation: E[dropout(P)] = P, averaged over many draws
    torch.manual_seed(1)
    mean = torch.stack([attention(q, k, v, dropout_p=0.2, backend="sdpa") for _ in range(400)]).mean(0)
    assert (mean - plain).abs().mean() < 0.05


def test_auto_picks_sdpa_on_cpu_and_says_why():
    q, k, v = _qkv()
    choice = choose_backend(q, k, v, causal=True)
    assert choice.name == "sdpa"
    assert "scaled_dot_product_attention" in choice.reason and "cpu" in choice.reason
    # dropout does not change the choice: SDPA handles it (with its math kernel on CPU)
    assert choose_backend(q, k, v, dropout_p=0.1).name == "sdpa"


def test_describe_reads_the_tensors():
    q, k, v = _qkv(d=24, dtype=torch.float16)
    caps = describe(q, k, v, causal=True, dropout_p=0.1)
    assert (caps.device, caps.dtype, caps.head_dim, caps.causal, caps.dropout_p) == (
        "cpu", "float16", 24, True, 0.1)
    assert caps.compute_capability is None


# ------------------------------------------------------------------ errors people see


def test_bad_shapes_and_arguments_raise_clear_errors():
    q, k, v = _qkv(n_q=10)
    with pytest.raises(ValueError, match=r"\(batch, heads, N, d\)"):
        attention(q[0], k[0], v[0])
    q_short, k_long, v_long = _qkv(n_q=10, n_k=12)
    with pytest.raises(ValueError, match="as many queries as keys"):
        attention(q_short, k_long, v_long, causal=True)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="unknown attention backend 'flash'"):
        attention(q, k, v, backend="flash")
    with pytest.raises(ValueError, match="scale must be a positive"):
        attention(q, k, v, scale=-1.0)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        attention(q.numpy(), k, v)


def test_mixed_dtypes_raise():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="share one dtype"):
        attention(q, k.double(), v)
    with pytest.raises(TypeError, match="floating-point"):
        attention(q.long(), k.long(), v.long())


def test_mismatched_shapes_raise():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="same shape"):
        attention(q, k, v[:, :, :-1])
    with pytest.raises(ValueError, match="same head dim"):
        attention(q, k[..., :-1], v[..., :-1])


@pytest.mark.parametrize("backend", ["sdpa:efficient", "sdpa:cudnn"])
def test_cuda_only_sdpa_kernels_refuse_cpu_tensors(backend):
    q, k, v = _qkv()
    with pytest.raises(BackendUnavailable, match="only on CUDA"):
        attention(q, k, v, backend=backend)


def test_sdpa_cpu_flash_refuses_dropout():
    q, k, v = _qkv()
    with pytest.raises(BackendUnavailable, match="does not support dropout"):
        attention(q, k, v, dropout_p=0.1, backend="sdpa:flash")


def test_flash_attn_on_this_machine_says_what_to_do():
    q, k, v = _qkv()
    with pytest.raises(BackendUnavailable) as info:
        attention(q, k, v, backend="flash_attn")
    msg = str(info.value)
    # without the package: how to install it; with it: that it needs a CUDA GPU
    assert ("pip install flash-attn" in msg) or ("CUDA" in msg)


# ------------------------------------------------------------------ GPU cases, on descriptions


def test_gpu_auto_prefers_flash_attn_then_sdpa():
    assert decide(A100).name == "flash_attn"
    assert decide(H100).name == "flash_attn"
    no_fa = dataclasses.replace(A100, flash_attn_installed=False)
    choice = decide(no_fa)
    assert choice.name == "sdpa"
    assert choice.skipped[0][0] == "flash_attn" and "pip install flash-attn" in choice.skipped[0][1]
    assert "skipped flash_attn because" in choice.reason


def test_gpu_fp32_skips_flash_attn_with_cast_advice():
    caps = dataclasses.replace(A100, dtype="float32")
    choice = decide(caps)
    assert choice.name == "sdpa"
    assert "float16 or bfloat16" in why_not("flash_attn", caps)
    assert "torch.bfloat16" in why_not("flash_attn", caps)
    assert "float16 or bfloat16" in why_not("triton", caps)
    assert "float16 or bfloat16" in why_not("sdpa:flash", caps)
    assert why_not("sdpa:efficient", caps) is None  # the memory-efficient kernel takes fp32


def test_pre_ampere_gpu():
    assert decide(T4).name == "sdpa"
    for backend in ("flash_attn", "triton", "sdpa:flash", "sdpa:cudnn"):
        assert "Ampere" in why_not(backend, T4), backend
    assert why_not("sdpa:efficient", T4) is None
    assert "Ampere" in why_not("sdpa:efficient", dataclasses.replace(T4, dtype="bfloat16"))


def test_head_dim_limits():
    big = dataclasses.replace(H100, head_dim=512)
    assert "256" in why_not("flash_attn", big)
    assert "256" in why_not("sdpa:flash", big)
    assert "16 to 128" in why_not("triton", dataclasses.replace(H100, head_dim=256))
    assert "16 to 128" in why_not("triton", dataclasses.replace(H100, head_dim=8))
    assert why_not("triton", dataclasses.replace(H100, head_dim=96)) is None
    assert decide(big).name == "sdpa"


def test_triton_specific_refusals():
    assert "dropout" in why_not("triton", dataclasses.replace(H100, dropout_p=0.1))
    assert "TRITON_INTERPRET" in why_not("triton", LAPTOP)
    interp = dataclasses.replace(LAPTOP, triton_interpret=True)
    assert why_not("triton", interp) is None
    assert "bfloat16" in why_not("triton", dataclasses.replace(interp, dtype="bfloat16"))
    assert "not installed" in why_not("triton", dataclasses.replace(H100, triton_installed=False))


def test_flash_attn_refuses_cpu_tensors():
    caps = dataclasses.replace(LAPTOP, flash_attn_installed=True)
    assert "CUDA" in why_not("flash_attn", caps)


def test_cpu_auto_never_picks_the_interpreter():
    interp = dataclasses.replace(LAPTOP, triton_interpret=True)
    assert decide(interp).name == "sdpa"
    assert "triton" not in preference_order(interp)


def test_unknown_backend_in_why_not():
    with pytest.raises(ValueError, match="unknown attention backend"):
        why_not("cuda", LAPTOP)


_caps = st.builds(
    Capabilities,
    device=st.sampled_from(["cpu", "cuda"]),
    dtype=st.sampled_from(["float32", "float16", "bfloat16", "float64"]),
    head_dim=st.sampled_from([8, 16, 24, 64, 96, 128, 192, 256, 512]),
    causal=st.booleans(),
    dropout_p=st.sampled_from([0.0, 0.1]),
    compute_capability=st.sampled_from([None, (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0)]),
    flash_attn_installed=st.booleans(),
    triton_installed=st.booleans(),
    triton_interpret=st.booleans(),
)


@given(_caps)
def test_decide_returns_the_first_usable_backend(caps):
    choice = decide(caps)
    order = preference_order(caps)
    assert why_not(choice.name, caps) is None
    before = order[: order.index(choice.name)]
    assert [name for name, _ in choice.skipped] == list(before)
    assert all(why_not(name, caps) for name in before)  # each skipped one has a reason


# ------------------------------------------------------------------ the report


def test_capability_report_here():
    rows = capability_report()
    assert [r["backend"] for r in rows] == list(BACKENDS)
    assert sum(r["auto"] == "chosen" for r in rows) == 1
    assert all(r["usable"] in ("yes", "no") and r["because"] for r in rows)
    by_name = {r["backend"]: r for r in rows}
    assert by_name["naive"]["usable"] == "yes" and by_name["sdpa"]["usable"] == "yes"
    if not torch.cuda.is_available():
        assert by_name["sdpa"]["auto"] == "chosen"
        assert by_name["sdpa:efficient"]["usable"] == "no"


def test_capability_report_for_another_machine():
    rows = {r["backend"]: r for r in capability_report(dataclasses.replace(H100, flash_attn_installed=False))}
    assert rows["flash_attn"]["usable"] == "no" and "pip install" in rows["flash_attn"]["because"]
    assert rows["sdpa"]["auto"] == "chosen"
    assert rows["triton"]["usable"] == "yes"
    assert "sm90" in rows["triton"]["inputs"]


# ------------------------------------------------------------------ benchmark and figure helpers


def _benchmark_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_attention.py"
    spec = importlib.util.spec_from_file_location("gpu_attention_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the FLOP count and the targets' arithmetic: tests/test_gpu_check.py


def test_benchmark_skips_cleanly_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the benchmark would run")
    assert _benchmark_module().main([]) == 0
    assert "skipped: no CUDA GPU" in capsys.readouterr().out


# ------------------------------------------------------------------ the table is the one place


def test_cpu_backends_come_from_the_table():
    assert CPU_BACKENDS == ["sdpa", "sdpa:flash", "sdpa:math", "naive", "auto"]
    assert [b for b in BACKENDS if materialises_scores(b)] == ["sdpa:math", "naive"]
    assert usable_backends(H100, kernels_only=True) == [
        "flash_attn", "sdpa:flash", "sdpa:efficient", "sdpa:cudnn", "sdpa:math", "triton", "naive"]
    assert usable_backends(LAPTOP, auto_only=True) == ["sdpa", "naive"]


def _toy_backend(calls: list) -> Backend:
    """A backend registered in one place: float64 softmax attention, CPU only, counting its calls."""

    def run(q, k, v, *, causal, dropout_p, scale):
        calls.append((tuple(q.shape), causal))
        return naive_attention_torch(q.double(), k.double(), v.double(), causal=causal, scale=scale).to(q.dtype)

    def why_not_toy(caps):
        return None if caps.device == "cpu" and caps.dropout_p == 0 else "the toy runs on CPU without dropout"

    return Backend("toy", why_not_toy, run, lambda caps: "the toy fits (float64 softmax on CPU)",
                   materialises_scores=True, auto_on=("cpu",))


def test_a_backend_registered_in_one_place_is_dispatched_reported_and_benchmarked(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig

    calls: list = []
    q, k, v = _qkv(n_q=9, d=16)
    with registered(_toy_backend(calls)):
        # dispatched: by name, by the model's config, never by "auto" ahead of the table's order
        out = attention(q, k, v, causal=True, backend="toy")
        torch.testing.assert_close(out.double(), _softmax_reference(q, k, v, True), atol=1e-6, rtol=1e-6)
        assert calls == [((2, 3, 9, 16), True)]
        model = FlashAttentionTrader(ModelConfig(n_features=3, d_model=16, n_heads=2, n_layers=1, backend="toy"))
        assert model(torch.randn(2, 5, 3))["regression"].shape == (2, 1) and len(calls) == 2
        assert decide(LAPTOP).name == "sdpa" and preference_order(LAPTOP)[-1] == "toy"
        with pytest.raises(BackendUnavailable, match="the toy runs on CPU without dropout"):
            attention(q, k, v, dropout_p=0.1, backend="toy")
        # reported: in the names, the capability report and the N×N flag
        assert "toy" in BACKENDS and BACKENDS[-1] == "toy"
        row = {r["backend"]: r for r in capability_report(LAPTOP)}["toy"]
        assert row["usable"] == "yes" and "float64 softmax" in row["because"]
        assert {r["backend"]: r for r in capability_report(H100)}["toy"]["usable"] == "no"
        assert materialises_scores("toy")
        # benchmarked: a benchmark script's default candidates include it, and it is measured
        path = Path(__file__).resolve().parents[1] / "benchmarks" / "cross_asset.py"
        spec = importlib.util.spec_from_file_location("cross_asset_benchmark_toy", path)
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        assert "toy" in bench.default_backends()
        out_file = tmp_path / "toy.json"
        assert bench.main(["--assets", "1", "--lookbacks", "4", "--repeat", "1", "--d-model", "8",
                           "--n-heads", "1", "--n-layers", "1", "--batch", "1", "--out", str(out_file)]) == 0
        rows = json.loads(out_file.read_text())["rows"]
        toy = [r for r in rows if r["backend"] == "toy"]
        assert len(toy) == 1 and toy[0]["status"] == "ok" and "predicted_nxn_bytes" in toy[0]
        n_calls = len(calls)
        assert n_calls > 2  # the benchmark's steps ran through the toy
    # cleanly unregistered: gone from every derived list, and unknown again
    assert "toy" not in BACKENDS and "toy" not in preference_order(LAPTOP)
    assert "toy" not in {r["backend"] for r in capability_report(LAPTOP)}
    with pytest.raises(ValueError, match="unknown attention backend 'toy'"):
        attention(q, k, v, backend="toy")
    with pytest.raises(ValueError, match="unknown attention backend"):
        ModelConfig(n_features=3, d_model=16, n_heads=2, backend="toy")
    assert len(calls) == n_calls


def test_register_refuses_duplicates_and_keeps_order():
    with pytest.raises(ValueError, match="already registered"):
        register(dataclasses.replace(_toy_backend([]), name="naive"))
    with pytest.raises(ValueError, match="no such backend"):
        register(_toy_backend([]), before="nope")
    register(_toy_backend([]), before="naive")
    try:
        assert list(BACKENDS)[-2:] == ["toy", "naive"]
        assert decide(LAPTOP).name == "sdpa"
    finally:
        assert unregister("toy").name == "toy"
    assert "toy" not in BACKENDS
    with pytest.raises(TypeError, match="Backend record"):
        register("toy")
