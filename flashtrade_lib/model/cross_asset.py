"""Cross-asset attention: every (asset, time) pair is a token.

A window of a panel has shape ``(batch, lookback, assets, features)``. The seed
chapter concatenated the assets' features per time step ("channel mixing") — one
token per bar, so attention can relate *bars* but not "ETH two days ago" to "BTC
now" as separate things. Here each (asset, bar) is its own token, with

* an **asset embedding** (learned, one vector per asset) added to the projected features;
* a **time embedding** by rotary position (:class:`flashtrade_lib.model.trader.RotaryEmbedding`)
  over the *bar index* of the token — every token of bar ``t`` has position ``t``, so a
  query–key score depends on "how many bars apart", as in the one-series model, and a
  model trained at one lookback runs at another.

**How causality is expressed with ``attention(q, k, v, causal=True)`` only.** The
attention API, like the fused kernels behind it (SDPA, Triton, flash-attn), takes a
causal flag and no arbitrary mask. A strictly block-causal mask (a token sees its
own bar and earlier bars of every asset) would need a custom mask — i.e. the naive
or SDPA-math path, giving up exactly the memory savings this chapter is about. So
the tokens are laid out **time-major**::

    [x(asset 0, bar 0), ..., x(asset A-1, bar 0), S(bar 0), x(asset 0, bar 1), ..., S(bar T-1)]

and plain causal attention is used. Consequences, exactly:

* a token of bar ``t`` never sees any token of a bar ``> t`` (of any asset): no look-ahead;
* the token of asset ``a`` at bar ``t`` also sees the bar-``t`` tokens of assets ordered
  before it. That is legitimate information — every bar of the panel closes at the same
  timestamp, and the decision at bar ``t`` is made after the close — but it is
  asymmetric (asset 0 sees least);
* so each bar ends with a **summary token** ``S(t)`` (a learned vector with its own
  "asset" embedding) that sees every asset of bars ``<= t``. The prediction for asset
  ``a`` is read from ``h(a, T-1) + h(S, T-1)``: its own token plus the full summary of
  the last bar, which treats all assets alike.

The sequence has ``lookback * (assets + 1)`` tokens — 100 assets × 2048 bars is
206,848 tokens, where the ``N × N`` score matrix of the naive backend (160 GiB in
fp32 per head) is impossible and the flash backends' ``O(N)`` memory is what makes the
model exist at all.

Baselines, thin wrappers over :class:`~flashtrade_lib.model.trader.FlashAttentionTrader`:
:class:`ChannelMixingTrader` (features of all assets concatenated per bar) and
:class:`PerAssetTrader` (one shared single-series model applied to each asset).

**Order books** are the same layout with price levels in place of assets: each
(snapshot, level) pair is a token, so :class:`OrderBookTrader` *is* the cross-asset
model (same blocks, bar-rotary time positions, level embeddings, one summary token
per snapshot, plain ``causal=True`` attention); only the read-out differs — one
prediction per window, the sign of the next mid-price move, read from the summary
token of the last snapshot, which has seen every level of every snapshot. Its
per-token features are :func:`flashtrade_lib.data.lob_sim.lob_features`; windows of
``(snapshots, levels, features)`` are cut by :class:`flashtrade_lib.data.WindowDataset`,
the same lazy views as for one series.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flashtrade_lib.model.trader import (
    FlashAttentionTrader,
    ModelConfig,
    OutputHeads,
    RotaryEmbedding,
    TransformerBlock,
    init_weights,
)

__all__ = [
    "CrossAssetTrader",
    "ChannelMixingTrader",
    "PerAssetTrader",
    "OrderBookTrader",
    "BarRotaryEmbedding",
    "LAYOUTS",
    "n_tokens",
]


def n_tokens(lookback: int, n_assets: int) -> int:
    """Sequence length of :class:`CrossAssetTrader`: one token per (asset, bar) plus one summary per bar."""
    return int(lookback) * (int(n_assets) + 1)


def _check_window(x: Tensor, n_assets: int, n_features: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[2] != n_assets or x.shape[3] != n_features:
        raise ValueError(
            f"x must have shape (batch, lookback, n_assets={n_assets}, n_features={n_features}), "
            f"got {tuple(x.shape)}"
        )
    if x.shape[1] < 1:
        raise ValueError("x must hold at least one bar (lookback >= 1)")


class BarRotaryEmbedding(RotaryEmbedding):
    """RoPE whose position is the *bar* of a token: token ``i`` of a time-major layout is at bar ``i // tokens_per_bar``."""

    def __init__(self, head_dim: int, tokens_per_bar: int, base: float = 10_000.0) -> None:
        super().__init__(head_dim, base)
        self.tokens_per_bar = int(tokens_per_bar)

    def positions(self, n: int, device: torch.device) -> Tensor:
        return torch.div(torch.arange(n, device=device), self.tokens_per_bar, rounding_mode="floor").float()


class CrossAssetTrader(nn.Module):
    """Transformer over (asset, time) tokens; predicts one value per asset at the last bar.

    ``config.n_features`` is the number of features *per asset*; ``config.n_outputs``
    must be 1 (one prediction per asset). ``forward(x)`` takes ``(batch, lookback,
    n_assets, n_features)`` and returns ``regression``, ``direction`` (logits) and
    ``allocation`` (``tanh``), each ``(batch, n_assets)`` — the same dict as
    :class:`~flashtrade_lib.model.trader.FlashAttentionTrader` with ``n_outputs = n_assets``,
    so :func:`flashtrade_lib.model.train.compute_loss` applies and :func:`flashtrade_lib.train.train`
    trains it (it has the ``target_scale`` buffer that ``train`` sets). The blocks are the
    single-series model's (:class:`~flashtrade_lib.model.trader.TransformerBlock`), with
    :class:`BarRotaryEmbedding` for time; the attention backend is ``config.backend``.
    See the module docstring for the causal layout.
    """

    def __init__(self, config: ModelConfig, n_assets: int) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"CrossAssetTrader needs a ModelConfig, got {type(config).__name__}")
        if isinstance(n_assets, bool) or not isinstance(n_assets, int) or n_assets < 1:
            raise ValueError(f"n_assets must be a positive int, got {n_assets!r}")
        if config.n_outputs != 1:
            raise ValueError(
                f"CrossAssetTrader predicts one value per asset; set ModelConfig.n_outputs=1 "
                f"(got {config.n_outputs})"
            )
        self.config = config
        self.n_assets = n_assets
        d = config.d_model
        self.input = nn.Linear(config.n_features, d)
        self.asset_embedding = nn.Embedding(n_assets + 1, d)  # index n_assets: the summary token
        self.summary = nn.Parameter(torch.zeros(d))
        rope = BarRotaryEmbedding(config.head_dim, n_assets + 1, config.rope_base)
        self.blocks = nn.ModuleList(TransformerBlock(config, rope) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = OutputHeads(d, 1)
        self.register_buffer("target_scale", torch.ones(()))
        init_weights(self)

    def tokens(self, x: Tensor) -> Tensor:
        """The time-major token sequence ``(batch, lookback * (n_assets + 1), d_model)``."""
        _check_window(x, self.n_assets, self.config.n_features)
        b, t, a, _ = x.shape
        h = self.input(x.to(self.input.weight.dtype))  # (b, t, a, d)
        s = self.summary.to(h.dtype).expand(b, t, 1, -1)
        h = torch.cat([h, s], dim=2) + self.asset_embedding.weight.to(h.dtype)  # (b, t, a+1, d)
        return h.reshape(b, t * (a + 1), -1)

    def encode(self, x: Tensor) -> Tensor:
        """Final hidden state of every token, ``(batch, lookback, n_assets + 1, d_model)``; index ``n_assets`` is the bar summary."""
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h)
        return self.norm(h).view(x.shape[0], x.shape[1], self.n_assets + 1, -1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        last = self.encode(x)[:, -1]  # (b, a+1, d): the bar at which the decision is made
        rep = last[:, : self.n_assets] + last[:, self.n_assets :]
        return {k: v.squeeze(-1) for k, v in self.heads(rep, self.target_scale).items()}

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class ChannelMixingTrader(FlashAttentionTrader):
    """The seed's layout: one token per bar holding every asset's features; ``n_assets`` outputs.

    ``config.n_features`` is per asset; the underlying model sees ``n_assets * n_features``.
    Sequence length: ``lookback``.
    """

    def __init__(self, config: ModelConfig, n_assets: int) -> None:
        if isinstance(n_assets, bool) or not isinstance(n_assets, int) or n_assets < 1:
            raise ValueError(f"n_assets must be a positive int, got {n_assets!r}")
        super().__init__(config.replace(n_features=config.n_features * n_assets, n_outputs=n_assets))
        self.n_assets, self.features_per_asset = n_assets, config.n_features

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        _check_window(x, self.n_assets, self.features_per_asset)
        return super().forward(x.reshape(x.shape[0], x.shape[1], -1))


class PerAssetTrader(FlashAttentionTrader):
    """One single-series model, shared by all assets: no information flows between assets.

    Assets are folded into the batch; sequence length ``lookback``, ``n_assets`` times as
    many sequences. ``config.n_outputs`` must be 1.
    """

    def __init__(self, config: ModelConfig, n_assets: int) -> None:
        if isinstance(n_assets, bool) or not isinstance(n_assets, int) or n_assets < 1:
            raise ValueError(f"n_assets must be a positive int, got {n_assets!r}")
        if config.n_outputs != 1:
            raise ValueError(f"PerAssetTrader predicts one value per asset; set n_outputs=1 (got {config.n_outputs})")
        super().__init__(config)
        self.n_assets = n_assets

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        _check_window(x, self.n_assets, self.config.n_features)
        b, t, a, f = x.shape
        out = super().forward(x.transpose(1, 2).reshape(b * a, t, f))
        return {k: v.view(b, a) for k, v in out.items()}


#: The token layouts chapter 10 compares, by name: one definition, which the chapter trains and
#: :mod:`flashtrade_lib.trading.trials` counts (each layout is one trial on the bundled coins).
LAYOUTS: dict[str, type[nn.Module]] = {
    "per-asset": PerAssetTrader,
    "channel mixing": ChannelMixingTrader,
    "(asset, time) tokens": CrossAssetTrader,
}


class OrderBookTrader(CrossAssetTrader):
    """:class:`~flashtrade_lib.model.cross_asset.CrossAssetTrader` over (snapshot, level) tokens, one prediction per window.

    ``forward(x)`` takes ``(batch, snapshots, n_levels, n_features)`` and returns the
    usual dict (``regression``, ``direction`` logit, ``allocation``), each ``(batch, 1)``,
    read from the summary token of the last snapshot. Train it with the ``direction``
    objective on ``next_move`` (``+1`` up, ``-1`` down).
    """

    def __init__(self, config: ModelConfig, n_levels: int) -> None:
        super().__init__(config, n_levels)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        summary = self.encode(x)[:, -1, self.n_assets]  # (batch, d): sees every level of every snapshot
        return self.heads(summary, self.target_scale)
