"""FlashAttentionTrader: config validation, shapes, backends agree, causality, RoPE, attention maps."""

from __future__ import annotations

import pytest
import torch

from flashtrade_lib.attention.backends import BACKENDS, describe, why_not
from flashtrade_lib.model.trader import HEADS, FlashAttentionTrader, ModelConfig, RotaryEmbedding

N_FEATURES = 5


def make_model(seed: int = 0, **overrides) -> FlashAttentionTrader:
    torch.manual_seed(seed)
    cfg = {"n_features": N_FEATURES, "d_model": 32, "n_heads": 4, "n_layers": 2, **overrides}
    return FlashAttentionTrader(ModelConfig(**cfg)).eval()


def window(batch: int = 3, n: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, n, N_FEATURES, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d_model": 30, "n_heads": 4}, "not divisible by n_heads"),
        ({"d_model": 12, "n_heads": 4}, "odd"),
        ({"n_heads": 0}, "n_heads must be a positive int"),
        ({"n_features": 0}, "n_features must be a positive int"),
        ({"dropout": 1.0}, "dropout"),
        ({"backend": "cuda-magic"}, "unknown attention backend 'cuda-magic'"),
        ({"d_ff": -3}, "d_ff"),
    ],
)
def test_config_rejects_bad_values_with_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{"n_features": N_FEATURES, **kwargs})


def test_config_round_trips_through_plain_dict():
    cfg = ModelConfig(n_features=7, d_model=48, n_heads=3, causal=False, backend="naive")
    data = cfg.to_dict()
    assert all(isinstance(v, (int, float, str, bool, type(None))) for v in data.values())
    assert ModelConfig.from_dict(data) == cfg
    assert cfg.replace(backend="sdpa").backend == "sdpa"
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({**data, "n_experts": 8})


# ----------------------------------------------------------------- shapes


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_forward_shapes_and_head_ranges(n_outputs):
    model = make_model(n_outputs=n_outputs)
    out = model(window())
    assert set(out) == set(HEADS)
    for name in HEADS:
        assert out[name].shape == (3, n_outputs)
        assert torch.isfinite(out[name]).all()
    assert (out["allocation"].abs() <= 1).all()


def test_forward_rejects_wrong_input_shape():
    model = make_model()
    with pytest.raises(ValueError, match=r"n_features=5"):
        model(torch.randn(2, 10, 4))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(10, N_FEATURES))


def test_target_scale_multiplies_regression_only():
    model = make_model()
    x = window()
    before = model(x)
    model.target_scale.fill_(0.01)
    after = model(x)
    torch.testing.assert_close(after["regression"], before["regression"] * 0.01)
    torch.testing.assert_close(after["direction"], before["direction"])


# ----------------------------------------------------------------- backends


def _usable(backend: str, x: torch.Tensor, causal: bool, head_dim: int) -> str | None:
    q = torch.empty(1, 1, x.shape[1], head_dim, dtype=x.dtype, device=x.device)
    return why_not(backend, describe(q, q, q, causal=causal))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_available_backend_gives_the_same_outputs_and_gradients(backend, causal):
    x = window(n=37)  # not a power of two
    sizes = {"d_model": 64, "n_heads": 4}  # head dim 16: the smallest every kernel takes
    reason = _usable(backend, x, causal, head_dim=16)
    if reason is not None:
        pytest.skip(f"{backend} unavailable here: {reason}")
    ref = make_model(causal=causal, backend="naive", **sizes).train()
    model = make_model(causal=causal, backend=backend, **sizes).train()
    out_ref, out = ref(x), model(x)
    for name in HEADS:
        torch.testing.assert_close(out[name], out_ref[name], rtol=1e-4, atol=1e-5)
    sum(v.sum() for v in out_ref.values()).backward()
    sum(v.sum() for v in out.values()).backward()
    for (name, p_ref), p in zip(ref.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", BACKENDS)
def test_gpu_backends_agree_in_bf16(backend):
    x = window(n=256).cuda()
    ref = make_model(backend="naive", d_model=64).cuda()
    model = make_model(backend=backend, d_model=64).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        q = torch.empty(1, 1, 256, 16, device="cuda", dtype=torch.bfloat16)
        reason = why_not(backend, describe(q, q, q, causal=True))
        if reason is not None:
            pytest.skip(f"{backend} unavailable here: {reason}")
        out_ref, out = ref(x), model(x)
    for name in HEADS:
        torch.testing.assert_close(out[name].float(), out_ref[name].float(), rtol=3e-2, atol=3e-2)


# ----------------------------------------------------------------- causality and position


def test_causal_encoder_never_looks_ahead():
    x = window(n=40)
    model = make_model(causal=True)
    y = x.clone()
    y[:, 25:] += torch.randn_like(y[:, 25:])
    torch.testing.assert_close(model.encode(y)[:, :25], model.encode(x)[:, :25])
    assert not torch.allclose(model.encode(y)[:, 25:], model.encode(x)[:, 25:])


def test_bidirectional_encoder_mixes_the_whole_window():
    x = window(n=40)
    model = make_model(causal=False)
    y = x.clone()
    y[:, 25:] += 1.0
    assert not torch.allclose(model.encode(y)[:, :25], model.encode(x)[:, :25])


def test_rope_scores_depend_only_on_the_offset():
    rope = RotaryEmbedding(head_dim=16)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    n = 3000
    qs = rope(q.expand(n, 16).clone())
    ks = rope(k.expand(n, 16).clone())
    # score between positions (i, i - 7) is the same wherever i is, even far past any training length
    scores = torch.stack([qs[i] @ ks[i - 7] for i in (7, 100, 2999)])
    torch.testing.assert_close(scores, scores[:1].expand(3), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="even head_dim"):
        RotaryEmbedding(head_dim=7)


def test_runs_on_windows_longer_than_any_seen_and_is_shift_consistent():
    model = make_model(causal=True)
    long = window(batch=1, n=700)
    out = model(long)
    assert all(torch.isfinite(v).all() for v in out.values())
    # with causal attention, the representation of bar t does not depend on bars after t,
    # so the prefix of a long window encodes exactly as the short window alone
    torch.testing.assert_close(model.encode(long)[:, :50], model.encode(long[:, :50]), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- attention maps


@pytest.mark.parametrize("causal", [True, False])
def test_attention_maps_are_the_weights_the_model_uses(causal):
    model = make_model(causal=causal, backend="sdpa").train()  # the call must switch to eval itself
    x = window(n=30)
    maps = model.get_attention_maps(x)
    assert model.training, "get_attention_maps must restore the training mode"
    assert maps.shape == (2, 3, 4, 30, 30)
    assert not maps.requires_grad
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 3, 4, 30))
    if causal:
        assert torch.all(maps.triu(1) == 0)
    # propagating the hidden state with these weights reproduces the model's own encoding
    model.eval()
    with torch.no_grad():
        h = model.input(x)
        for layer, block in enumerate(model.blocks):
            _, _, v = block.qkv_heads(h)
            h = block.finish(h, maps[layer] @ v)
        torch.testing.assert_close(model.norm(h), model.encode(x), rtol=1e-4, atol=1e-5)
    last = model.get_attention_maps(x, last_only=True)
    torch.testing.assert_close(last, maps[..., -1, :])
