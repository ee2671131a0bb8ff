"""(asset, time) tokens: shapes, strict causality in time, backend agreement, and training with train.train."""

from __future__ import annotations

import pytest
import torch

from flashtrade_lib.model.cross_asset import (
    ChannelMixingTrader,
    CrossAssetTrader,
    PerAssetTrader,
    n_tokens,
)
from flashtrade_lib.model.trader import ModelConfig, TransformerBlock
from flashtrade_lib.model.train import TrainConfig, train

A, F, T = 3, 4, 6


def _model(backend: str = "naive", seed: int = 0) -> CrossAssetTrader:
    torch.manual_seed(seed)
    cfg = ModelConfig(n_features=F, d_model=32, n_heads=2, n_layers=2, backend=backend)
    return CrossAssetTrader(cfg, A).eval()


def test_shapes_and_token_count() -> None:
    model = _model()
    x = torch.randn(2, T, A, F)
    assert model.tokens(x).shape == (2, n_tokens(T, A), 32) and n_tokens(T, A) == T * (A + 1)
    assert model.encode(x).shape == (2, T, A + 1, 32)
    out = model(x)
    assert set(out) == {"regression", "direction", "allocation"}
    assert all(v.shape == (2, A) for v in out.values())
    assert out["allocation"].abs().max() <= 1
    model(torch.randn(1, 2 * T, A, F))  # any lookback (rotary time positions)
    assert all(type(block) is TransformerBlock for block in model.blocks)  # the single-series blocks


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
@pytest.mark.parametrize("t", [0, 2, T - 2])
def test_no_token_sees_a_later_bar_of_any_asset(backend: str, t: int) -> None:
    model = _model(backend)
    x = torch.randn(2, T, A, F)
    with torch.no_grad():
        base = model.encode(x)
        for asset in range(A):
            y = x.clone()
            y[:, t + 1 :, asset] += 10 * torch.randn_like(y[:, t + 1 :, asset])
            out = model.encode(y)
            torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
            assert (out[:, t + 1 :] - base[:, t + 1 :]).abs().max() > 1e-3  # later bars do react


def test_same_bar_visibility_is_exactly_as_documented() -> None:
    """Asset a at bar t sees assets < a of bar t, not assets > a; the bar summary sees all."""
    model = _model()
    x = torch.randn(1, T, A, F)
    t = 3
    with torch.no_grad():
        base = model.encode(x)
        y = x.clone()
        y[:, t, 1] += 5.0  # change asset 1 at bar t
        out = model.encode(y)
    diff = (out - base).abs().amax(dim=(0, 3))  # (T, A + 1)
    assert diff[t, 0] < 1e-6  # asset 0 comes before asset 1: unchanged
    assert diff[t, 1] > 1e-3 and diff[t, 2] > 1e-3 and diff[t, A] > 1e-3  # itself, later asset, summary


def test_naive_and_sdpa_agree() -> None:
    naive, sdpa = _model("naive"), _model("sdpa")
    sdpa.load_state_dict(naive.state_dict())
    x = torch.randn(2, T, A, F)
    with torch.no_grad():
        a, b = naive(x), sdpa(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_gradients_flow_to_every_parameter() -> None:
    model = _model().train()
    sum(v.sum() for v in model(torch.randn(2, T, A, F)).values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_baselines_are_wrappers_with_the_same_outputs() -> None:
    cfg = ModelConfig(n_features=F, d_model=32, n_heads=2, n_layers=1, backend="naive")
    x = torch.randn(2, T, A, F)
    mix, per = ChannelMixingTrader(cfg, A).eval(), PerAssetTrader(cfg, A).eval()
    assert mix.config.n_features == A * F and mix.config.n_outputs == A
    with torch.no_grad():
        assert all(v.shape == (2, A) for v in mix(x).values())
        out = per(x)
        assert all(v.shape == (2, A) for v in out.values())
        # per-asset: asset 1's prediction is the single-series model applied to asset 1 alone
        single = super(PerAssetTrader, per).forward(x[:, :, 1])
    torch.testing.assert_close(out["regression"][:, 1], single["regression"][:, 0])


def test_bad_inputs_raise_clear_errors() -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"\(batch, lookback, n_assets=3, n_features=4\)"):
        model(torch.randn(2, T, A * F))
    with pytest.raises(ValueError, match="n_outputs=1"):
        CrossAssetTrader(ModelConfig(n_features=F, n_outputs=3), A)
    with pytest.raises(ValueError, match="n_assets must be a positive int"):
        CrossAssetTrader(ModelConfig(n_features=F), 0)


def test_train_trains_the_cross_asset_model_on_a_cross_asset_task() -> None:
    """The book's one training loop takes this model too; it learns a signal that crosses assets."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(640, T, A, F, generator=g)
    # asset a's target is feature 0 of the *next* asset, two bars before the decision bar
    y = 0.01 * torch.stack([x[:, -3, (a + 1) % A, 0] for a in range(A)], dim=1)
    data = torch.utils.data.TensorDataset(x, y)
    splits = {"train": torch.utils.data.Subset(data, range(512)), "val": torch.utils.data.Subset(data, range(512, 640))}
    cfg = TrainConfig(epochs=15, batch_size=32, lr=5e-3, warmup_frac=0.1, patience=None, progress=False, device="cpu")
    val_loss = {}
    for cls in (CrossAssetTrader, PerAssetTrader):
        torch.manual_seed(0)
        model = cls(ModelConfig(n_features=F, d_model=32, n_heads=2, n_layers=1, backend="sdpa"), A)
        result = train(model, splits, cfg)
        assert result.step_losses[0] > 0.5  # normalised MSE: ~1 is "no better than the mean"
        val_loss[cls.__name__] = result.best_val_loss
    assert model.target_scale.item() == pytest.approx(float(y[:512].double().std(correction=0)), rel=1e-5)
    assert val_loss["CrossAssetTrader"] < 0.3, val_loss
    assert val_loss["PerAssetTrader"] > 0.9, val_loss  # it never sees the other asset: the control
