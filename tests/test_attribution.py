"""Attention profiles and occlusion: on a planted sink they disagree, and occlusion is right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flashtrade_lib.model.attribution import (
    PlantedSink,
    attention_profile,
    bars_ago,
    occlusion_effect,
)
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig


def windows(n_windows: int = 256, n: int = 16, features: int = 2) -> torch.Tensor:
    return torch.randn(n_windows, n, features, generator=torch.Generator().manual_seed(0))


def test_planted_sink_attention_points_at_the_sink_occlusion_at_the_echo() -> None:
    x, echo = windows(), 11
    sink = PlantedSink(echo)
    profile = attention_profile(sink, x)[0, 0]  # (N,)
    ago = bars_ago(x.shape[1])
    assert ago[profile.argmax()] == x.shape[1] - 1  # the oldest bar takes most of the weight
    assert profile.sum() == pytest.approx(1.0)
    effect = occlusion_effect(sink, x)
    assert ago[effect.argmax()] == echo
    assert effect[0] == 0.0  # resampling the sink cannot move the forecast: its value is constant


def test_occlusion_resamples_real_bars_of_the_same_position() -> None:
    # a model that reads only bar 3 of the window: occluding any other bar changes nothing
    class ReadsBar3(torch.nn.Module):
        def forward(self, x):
            return {"regression": x[:, 3, :1]}

    x = windows(64, 8, 1)
    effect = occlusion_effect(ReadsBar3(), x, repeats=2, seed=1)
    assert np.count_nonzero(effect) == 1 and effect[3] > 0
    # the replacement comes from the same position of other windows: E|x_i - x_j| = 2/sqrt(pi) for N(0,1)
    assert effect[3] == pytest.approx(2 / np.sqrt(np.pi), rel=0.25)


def test_works_on_the_trader_and_leaves_its_mode_alone() -> None:
    torch.manual_seed(0)
    model = FlashAttentionTrader(ModelConfig(n_features=2, d_model=16, n_heads=2, n_layers=2, backend="naive"))
    model.train()
    x = windows(8, 10, 2)
    assert attention_profile(model, x).shape == (2, 2, 10)
    assert occlusion_effect(model, x).shape == (10,)
    assert model.training


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match="batch, N, features"):
        occlusion_effect(PlantedSink(2), torch.zeros(4, 8))
    with pytest.raises(ValueError, match="at least 2 windows"):
        occlusion_effect(PlantedSink(2), torch.zeros(1, 8, 1))
    with pytest.raises(ValueError, match="repeats"):
        occlusion_effect(PlantedSink(2), torch.zeros(4, 8, 1), repeats=0)
    with pytest.raises(ValueError, match="no bar"):
        PlantedSink(7)(torch.zeros(2, 8, 1))


def test_occlusion_repeats_give_an_interval_around_the_ratio() -> None:
    from flashtrade_lib.model.attribution import occlusion_ratio, occlusion_repeats

    sink = PlantedSink(echo_ago=3)
    x = torch.randn(64, 8, 2, generator=torch.Generator().manual_seed(0))
    e = occlusion_repeats(sink, x, repeats=10, seed=1)
    assert e.shape == (10, 8)
    np.testing.assert_allclose(occlusion_effect(sink, x, repeats=10, seed=1), e.mean(axis=0))
    ratio, low, high = occlusion_ratio(e, 8 - 1 - 3)
    assert low <= high and ratio > 1 and low > 1  # the echo bar dominates in every permutation
    with pytest.raises(ValueError, match="repeats >= 2"):
        occlusion_ratio(e[:1], 4)
