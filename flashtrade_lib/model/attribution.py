"""Where does a forecast come from? Attention profiles, and occlusion to test them.

Why two tools: an attention weight says how much of a bar's *value vector* the last
bar mixes in — not how much the forecast depends on that bar. A heavily attended bar
whose value barely varies, or information routed through an earlier layer, makes the
two disagree (chapter 7 plants such a case). An intervention answers the causal
question directly: replace one bar and watch the forecast move.

How to replace it matters. Setting a standardised bar to zero (its training mean)
makes windows the model never saw — a flat, perfectly average bar amid noisy ones.
:func:`occlusion_effect` instead gives bar ``j`` of each window the bar ``j`` of
*another* window (a random permutation across windows): every replaced bar is a real
bar from the same position, so each bar *on its own* stays in distribution. The window
as a whole does not: the bar no longer fits its neighbours (a volatility cluster is cut,
and a rolling feature such as a moving average, which already mixes neighbouring bars,
now disagrees with the bars it summarises). The effect is therefore the effect of one
*token* of the window, not of one market bar's information, and it comes with the
spread over permutations (:func:`occlusion_repeats`), not as one number.

Both work on anything with the model's interface: ``model(x)["regression"]`` for
``x`` of shape ``(batch, N, features)``, and ``model.get_attention_maps(x,
last_only=True)`` for the profile (:class:`~flashtrade_lib.model.trader.FlashAttentionTrader`
has both).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["attention_profile", "occlusion_effect", "occlusion_repeats", "occlusion_ratio", "bars_ago", "PlantedSink"]


def bars_ago(n: int) -> np.ndarray:
    """How many bars before the decision bar each position of an ``n``-bar window is."""
    return np.arange(n)[::-1].copy()


def attention_profile(model: Any, windows: Tensor) -> np.ndarray:
    """Mean attention weight of the last bar on each bar of the window, ``(layers, heads, N)``.

    Averaged over the windows given; position ``j`` is the ``j``-th oldest bar
    (:func:`bars_ago` turns it into "bars before the decision bar").
    """
    _check_windows(windows)
    maps = model.get_attention_maps(windows, last_only=True)  # (layers, batch, heads, N)
    return maps.mean(dim=1).float().cpu().numpy()


def occlusion_effect(model: Any, windows: Tensor, *, repeats: int = 1, seed: int = 0) -> np.ndarray:
    """Mean ``|change in forecast|`` when bar ``j`` of every window is resampled, per ``j``.

    Bar ``j`` of window ``i`` is replaced by bar ``j`` of window ``perm[i]`` (a random
    permutation of the windows given, ``repeats`` times with fresh permutations), so the
    replacement is a real bar from the same position. Returns ``(N,)`` in the units of
    the forecast, the mean of :func:`occlusion_repeats`; eval mode, no gradients.
    """
    return occlusion_repeats(model, windows, repeats=repeats, seed=seed).mean(axis=0)


@torch.no_grad()
def occlusion_repeats(model: Any, windows: Tensor, *, repeats: int = 20, seed: int = 0) -> np.ndarray:
    """The occlusion effect of every bar under ``repeats`` independent permutations, ``(repeats, N)``.

    Why repeats: one permutation is one random draw; the spread across draws says how much
    of a ratio such as "13× the next bar" is the draw (:func:`occlusion_ratio`).
    """
    _check_windows(windows)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if windows.shape[0] < 2:
        raise ValueError("occlusion resamples bars from other windows: give at least 2 windows")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        base = model(windows)["regression"].float()
        g = torch.Generator().manual_seed(seed)
        n = windows.shape[1]
        effect = np.zeros((repeats, n))
        for r in range(repeats):
            for j in range(n):
                perm = torch.randperm(windows.shape[0], generator=g).to(windows.device)
                occluded = windows.clone()
                occluded[:, j] = windows[perm, j]
                change = model(occluded)["regression"].float() - base
                effect[r, j] = float(change.abs().mean())
        return effect
    finally:
        model.train(was_training)


def occlusion_ratio(effects: np.ndarray, position: int, *, level: float = 0.95) -> tuple[float, float, float]:
    """Effect of bar ``position`` over the largest other bar's: (ratio of means, low, high).

    The interval is the percentile interval of the per-permutation ratios (rows of
    :func:`occlusion_repeats`): it covers the permutation's randomness, not the choice
    of test windows.
    """
    e = np.asarray(effects, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"effects must be (repeats >= 2, N) from occlusion_repeats, got shape {e.shape}")
    if not 0 <= position < e.shape[1]:
        raise ValueError(f"position must be a bar of the {e.shape[1]}-bar window, got {position}")
    others = np.delete(e, position, axis=1)
    mean = e.mean(axis=0)
    ratio = float(mean[position] / np.delete(mean, position).max())
    per = e[:, position] / others.max(axis=1)
    low, high = np.quantile(per, [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(low), float(high)


def _check_windows(windows: Any) -> None:
    if not isinstance(windows, Tensor) or windows.ndim != 3:
        shape = tuple(windows.shape) if hasattr(windows, "shape") else type(windows).__name__
        raise ValueError(f"windows must be a tensor (batch, N, features), got {shape}")


class PlantedSink(nn.Module):
    """One attention head with set weights, where attention and occlusion must disagree.

    The last bar's scores are fixed by position: ``sink_score`` on the oldest bar of the
    window, ``echo_score`` on the bar ``echo_ago`` bars before the decision bar, 0 on the
    rest. Values are the bars' first feature (the return) — except the oldest bar's, which
    is 0 whatever the bar holds: a *sink* that soaks up attention and passes nothing on.
    The forecast is ``scale`` × the attended value. Trained transformers do grow such
    sinks (Xiao et al. 2024); here it is planted, so the right answer is known: the
    forecast depends on the echo bar (and faintly on the others), never on the sink.
    """

    def __init__(self, echo_ago: int, *, sink_score: float = 4.0, echo_score: float = 2.0,
                 scale: float = 1.0) -> None:
        super().__init__()
        if echo_ago < 0:
            raise ValueError(f"echo_ago must be >= 0 bars, got {echo_ago}")
        self.echo_ago, self.sink_score, self.echo_score, self.scale = echo_ago, sink_score, echo_score, scale

    def _weights(self, n: int) -> Tensor:
        if self.echo_ago >= n - 1:
            raise ValueError(f"a window of {n} bars has no bar {self.echo_ago} bars ago besides the sink")
        scores = torch.zeros(n)
        scores[0] = self.sink_score
        scores[n - 1 - self.echo_ago] = self.echo_score
        return torch.softmax(scores, dim=0)

    def get_attention_maps(self, x: Tensor, *, last_only: bool = True) -> Tensor:
        """The last bar's attention weights, ``(1 layer, batch, 1 head, N)``."""
        if not last_only:
            raise ValueError("PlantedSink defines only the last bar's attention row (last_only=True)")
        w = self._weights(x.shape[1])
        return w.expand(1, x.shape[0], 1, -1).clone()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        values = x[..., 0].float().clone()
        values[:, 0] = 0.0  # the sink's value carries nothing
        out = self.scale * (values * self._weights(x.shape[1])).sum(dim=1, keepdim=True)
        return {"regression": out}
