"""``FlashAttentionTrader``: a small pre-norm transformer over a window of past bars.

The model reads a window ``x`` of shape ``(batch, N, n_features)`` — the features of
the last ``N`` bars, oldest first — and predicts from the representation of the
*last* bar (the moment the decision is made) three things:

* ``regression`` — the forward log return (in the units of the target),
* ``direction`` — a logit for "the forward return is positive",
* ``allocation`` — a position in ``[-1, 1]`` (``tanh``).

Every attention call goes through :func:`flashtrade_lib.attention.attention`, so
the same weights run with the naive math, PyTorch SDPA, Triton or flash-attn; the
backend is chosen once, in :class:`ModelConfig`.

Positions are encoded with rotary embeddings (RoPE, Su et al. 2021), see
:class:`RotaryEmbedding` for why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from flashtrade_lib.config import PlainConfig

__all__ = [
    "ModelConfig",
    "RotaryEmbedding",
    "TransformerBlock",
    "FlashAttentionTrader",
    "OutputHeads",
    "init_weights",
    "HEADS",
]

HEADS = ("regression", "direction", "allocation")


@dataclass(frozen=True)
class ModelConfig(PlainConfig):
    """Every size and switch of :class:`FlashAttentionTrader` (saved in checkpoints).

    ``causal=True`` makes each bar attend only to itself and earlier bars (an
    autoregressive encoder; the last bar still sees the whole window).
    ``causal=False`` is a bidirectional encoder over the window — also leak-free,
    because the whole window lies in the past of the prediction time.
    ``n_outputs`` is the number of targets per window (e.g. one per asset).
    ``d_ff`` defaults to ``4 * d_model``.
    """

    n_features: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None
    dropout: float = 0.0
    causal: bool = True
    backend: str = "auto"
    n_outputs: int = 1
    rope_base: float = 10_000.0

    def __post_init__(self) -> None:
        for name in ("n_features", "d_model", "n_heads", "n_layers", "n_outputs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int, got {value!r}")
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"ModelConfig.d_ff must be a positive int or None, got {self.d_ff!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                f"choose d_model as a multiple of n_heads (e.g. {self.n_heads * 16})"
            )
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"head dim d_model/n_heads = {self.d_model // self.n_heads} is odd; rotary "
                "embeddings rotate pairs of channels, so it must be even"
            )
        if not isinstance(self.causal, bool):
            raise ValueError(f"ModelConfig.causal must be True or False, got {self.causal!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        from flashtrade_lib.attention.backends import BACKENDS

        if self.backend != "auto" and self.backend not in BACKENDS:
            raise ValueError(
                f"unknown attention backend {self.backend!r}; choose 'auto' or one of "
                f"{', '.join(BACKENDS)}"
            )
        if not self.rope_base > 1.0:
            raise ValueError(f"ModelConfig.rope_base must be > 1, got {self.rope_base!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ff_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (e.g. another ``backend`` for the same weights)."""
        return ModelConfig.from_dict({**self.to_dict(), **changes})


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE): rotate each (q, k) channel pair by ``pos * freq``.

    Why RoPE here, and not a learned table, sinusoids or ALiBi:

    * A learned table has one row per position and simply has no row for position
      ``max_seq_len + 1``: a model trained at lookback 512 cannot read 2048 bars.
      RoPE is a formula, defined for every position.
    * With RoPE the score ``q_i · k_j`` depends on positions only through the
      *offset* ``i - j`` — "how many bars ago" — which is what matters in a time
      series, and what lets a model trained on short windows run on longer ones.
      (Quality past the training length still degrades for offsets never seen in
      training; chapter 9 measures what a longer context buys.)
    * It acts on ``q`` and ``k`` *before* attention, so it leaves the attention call
      untouched and works with every fused kernel (SDPA, Triton, flash-attn).
      ALiBi also extrapolates, but it adds a bias matrix inside the softmax, which
      our ``attention(q, k, v, causal=...)`` API — like the fast kernels — does not take.
      Sinusoidal embeddings added to the input also extrapolate, but carry
      absolute position and mix it into the features.
    """

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding needs an even head_dim, got {head_dim}")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self._cache: tuple[int, torch.device, Tensor, Tensor] | None = None

    def positions(self, n: int, device: torch.device) -> Tensor:
        """The position of each of ``n`` tokens, float32: token ``i`` is at position ``i``.

        The one thing a variant changes (chapter 10's bar positions:
        :class:`~flashtrade_lib.model.cross_asset.BarRotaryEmbedding`).
        """
        return torch.arange(n, device=device, dtype=torch.float32)

    def cos_sin(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``cos`` and ``sin`` of shape ``(n, head_dim)`` in float32, cached per length."""
        if self._cache is not None and self._cache[0] == n and self._cache[1] == device:
            return self._cache[2], self._cache[3]
        pos = self.positions(n, device)
        angles = torch.outer(pos, self.inv_freq.to(device))  # (n, head_dim / 2)
        angles = torch.cat([angles, angles], dim=-1)  # (n, head_dim)
        cos, sin = angles.cos(), angles.sin()
        self._cache = (n, device, cos, sin)
        return cos, sin

    def forward(self, x: Tensor) -> Tensor:
        """Rotate ``x`` of shape ``(..., n, head_dim)``; position ``i`` is row ``i``."""
        cos, sin = self.cos_sin(x.shape[-2], x.device)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        out = x.float() * cos + rotated.float() * sin
        return out.to(x.dtype)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``.

    Public because every model of the book is built from it (the cross-asset and
    order-book models of chapter 10 too): the positions come from the ``rope``
    passed in, and attention from ``config.backend``.
    """

    def __init__(self, config: ModelConfig, rope: RotaryEmbedding) -> None:
        super().__init__()
        self.config = config
        self.rope = rope
        d = config.d_model
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, config.ff_dim), nn.GELU(), nn.Linear(config.ff_dim, d)
        )
        self.drop = nn.Dropout(config.dropout)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys (both rotated) and values, each ``(batch, heads, N, head_dim)``."""
        b, n, _ = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.config.n_heads, self.config.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return self.rope(q), self.rope(k), v

    def finish(self, x: Tensor, o: Tensor) -> Tensor:
        """Merge the heads of the attention output ``o`` and apply the residual + MLP."""
        b, _, n, _ = o.shape
        x = x + self.drop(self.proj(o.transpose(1, 2).reshape(b, n, self.config.d_model)))
        return x + self.drop(self.mlp(self.norm2(x)))

    def forward(self, x: Tensor) -> Tensor:
        from flashtrade_lib.attention import attention

        q, k, v = self.qkv_heads(x)
        p = self.config.dropout if self.training else 0.0
        o = attention(q, k, v, causal=self.config.causal, dropout_p=p, backend=self.config.backend)
        return self.finish(x, o)


def init_weights(model: nn.Module) -> None:
    """The one weight initialisation of every model of the book (GPT-2 style).

    Small normal weights (std 0.02) for every linear layer and embedding, zero biases;
    the residual projections of each :class:`TransformerBlock` (attention output and the
    MLP's last layer) scaled by ``1/sqrt(2 * n_layers)``, so the residual stream's
    variance does not grow with depth.
    """
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    for block in blocks:
        for layer in (block.proj, block.mlp[-1]):
            nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * len(blocks)))


class OutputHeads(nn.ModuleDict):
    """The three read-outs every model of the book ends with, from one representation ``h``.

    ``regression`` (scaled by the model's ``target_scale``, so the network works at unit
    scale while predictions come out in the target's units), ``direction`` (a logit) and
    ``allocation`` (``tanh``, a position in ``[-1, 1]``) — the dict
    :func:`flashtrade_lib.model.train.compute_loss` reads. A ``ModuleDict``, so the weights are
    saved as ``heads.<name>.*``.
    """

    def __init__(self, d_model: int, n_outputs: int) -> None:
        super().__init__({name: nn.Linear(d_model, n_outputs) for name in HEADS})

    def forward(self, h: Tensor, target_scale: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        return {
            "regression": self["regression"](h) * target_scale,
            "direction": self["direction"](h),
            "allocation": torch.tanh(self["allocation"](h)),
        }


class FlashAttentionTrader(nn.Module):
    """Input projection → ``n_layers`` pre-norm blocks with RoPE → final norm → three heads.

    ``forward(x)`` takes ``(batch, N, n_features)`` and returns a dict of tensors of
    shape ``(batch, n_outputs)``: ``regression``, ``direction`` (logits) and
    ``allocation`` (``tanh``, in ``[-1, 1]``). ``N`` may be any length, including
    longer than the windows seen in training.

    ``target_scale`` (a saved buffer, set by :func:`flashtrade_lib.train.train` from
    the training targets) multiplies the regression head, so the network works at
    unit scale while its predictions come out in the units of the target.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"FlashAttentionTrader needs a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.input = nn.Linear(config.n_features, config.d_model)
        rope = RotaryEmbedding(config.head_dim, config.rope_base)
        self.blocks = nn.ModuleList(TransformerBlock(config, rope) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.heads = OutputHeads(config.d_model, config.n_outputs)
        self.register_buffer("target_scale", torch.ones(()))
        init_weights(self)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[-1] != self.config.n_features:
            raise ValueError(
                f"x must have shape (batch, N, n_features={self.config.n_features}), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[1] < 1:
            raise ValueError("x must hold at least one bar (N >= 1)")

    def encode(self, x: Tensor) -> Tensor:
        """The final normalised hidden state of every bar, ``(batch, N, d_model)``."""
        self._check_input(x)
        h = self.input(x.to(self.input.weight.dtype))
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        last = self.encode(x)[:, -1]  # the bar at which the decision is made
        return self.heads(last, self.target_scale)

    @torch.no_grad()
    def get_attention_maps(self, x: Tensor, *, last_only: bool = False) -> Tensor:
        """Attention weights ``softmax(q kᵀ / sqrt(d))`` of every layer and head.

        Returns ``(n_layers, batch, n_heads, N, N)``, or ``(n_layers, batch, n_heads, N)``
        with ``last_only=True`` — the row of the last bar: how much each past bar
        contributes to the position the prediction is read from.

        The fused backends never form these weights (that is the point of
        FlashAttention), so this recomputes them with the naive math, layer by
        layer, and propagates the hidden state with the same weights. It runs in
        eval mode (no dropout) without gradients and costs O(N²) memory per head:
        use it on the windows you want to look at, not at training scale.
        """
        self._check_input(x)
        was_training = self.training
        self.eval()
        try:
            h = self.input(x.to(self.input.weight.dtype))
            maps = []
            for block in self.blocks:
                q, k, v = block.qkv_heads(h)
                scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(self.config.head_dim)
                if self.config.causal:
                    n = scores.shape[-1]
                    future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
                    scores = scores.masked_fill(future, float("-inf"))
                weights = torch.softmax(scores, dim=-1)
                maps.append(weights[..., -1, :] if last_only else weights)
                h = block.finish(h, (weights @ v.float()).to(v.dtype))
            return torch.stack(maps)
        finally:
            self.train(was_training)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
