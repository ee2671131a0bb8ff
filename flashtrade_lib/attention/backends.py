"""One attention call for torch tensors, over every implementation the book uses.

``attention(q, k, v, *, causal=False, dropout_p=0.0, scale=None, backend="auto")``
takes tensors shaped ``(batch, heads, N, d)`` and runs one of

* ``"flash_attn"`` — the ``flash-attn`` package (FlashAttention-2/3, Dao et al.);
* ``"sdpa"`` — PyTorch's ``scaled_dot_product_attention``, letting torch pick its
  fused kernel, or ``"sdpa:flash"``, ``"sdpa:efficient"``, ``"sdpa:cudnn"``,
  ``"sdpa:math"`` to pin one sub-backend (for benchmarks and debugging);
* ``"triton"`` — this book's Triton kernel (:mod:`flashtrade_lib.kernels.flash_attention`);
* ``"naive"`` — plain matmul → softmax → matmul, which materialises the N×N matrix.

Why one entry point: the model (chapter 5 onwards) chooses its backend once, from a
config string, and every backend must give the same answer up to rounding. Why the
decision is a *pure function* of a :class:`Capabilities` description: GPU cases
(an fp32 tensor on an Ampere card, flash-attn missing, a Turing GPU) can then be tested
on a CPU-only machine, and ``"auto"`` can say *why* it chose what it chose.

Each backend is **one record** (:class:`Backend`: why it cannot run, how to run it, why
it is chosen, whether it materialises the N×N scores) in one table; the names, the
``"auto"`` ladder, dispatch, the capability report and the benchmarks' candidate lists
are all derived from it, so a new backend is one :func:`register` call.

Nothing here falls back silently: asking for a backend that cannot run raises
:class:`BackendUnavailable` (a ``ValueError``) saying why and what to do.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flashtrade_lib.attention.arguments import (
    NonFiniteInputError,
    ScoreOverflowError,
    check_causal,
    check_scale,
    non_finite_message,
    overflow_message,
)
from flashtrade_lib.errors import FlashTradeError

__all__ = [
    "BACKENDS",
    "SDPA_SUBBACKENDS",
    "Backend",
    "BackendUnavailable",
    "Capabilities",
    "Choice",
    "attention",
    "backend",
    "capability_report",
    "choose_backend",
    "decide",
    "default_capabilities",
    "describe",
    "materialises_scores",
    "naive_attention_torch",
    "preference_order",
    "register",
    "registered",
    "unregister",
    "usable_backends",
    "why_not",
]

#: Sub-backends of ``torch.nn.functional.scaled_dot_product_attention`` that can be pinned.
SDPA_SUBBACKENDS: tuple[str, ...] = ("flash", "efficient", "cudnn", "math")

_HALF = ("float16", "bfloat16")
_CAST = "cast the inputs with `.to(torch.bfloat16)` (or float16) first"
_INSTALL_FLASH_ATTN = (
    "install it on a CUDA machine with `pip install flash-attn --no-build-isolation` "
    "(in this repository: `pip install -c constraints.txt '.[gpu]' --no-build-isolation`); "
    "it compiles CUDA code, which takes a while, and needs an Ampere (sm80) or newer GPU"
)


class BackendUnavailable(FlashTradeError, ValueError):
    """A requested attention backend cannot run these inputs here; the message says why and what to do."""


@dataclass(frozen=True)
class Capabilities:
    """Everything the choice of backend depends on — and nothing else.

    Build one from real tensors with :func:`describe`, or by hand to ask
    "what would happen on an A100 with fp32 inputs?" on a machine without a GPU.
    """

    device: str  # "cpu" or "cuda"
    dtype: str  # "float32", "float16", "bfloat16", "float64"
    head_dim: int
    causal: bool = False
    dropout_p: float = 0.0
    compute_capability: tuple[int, int] | None = None  # (8, 0) on an A100, None on CPU
    flash_attn_installed: bool = False
    triton_installed: bool = False
    triton_interpret: bool = False  # Triton kernels compiled for the CPU interpreter


@dataclass(frozen=True)
class Choice:
    """What ``"auto"`` picked, why, and why each backend before it in the preference order was skipped."""

    name: str
    reason: str
    skipped: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


#: ``run(q, k, v, *, causal, dropout_p, scale)`` on validated ``(batch, heads, N, d)`` tensors.
Runner = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Backend:
    """One attention implementation: the single place that says everything about it.

    * ``why_not(caps)`` — why it cannot run inputs described by ``caps`` (``None``: it can).
      These are the documented requirements; torch's own dispatcher has the last word
      for pinned SDPA sub-backends, and :func:`attention` raises with its reasons;
    * ``run`` — how to run it on validated tensors (``scale`` already a float);
    * ``why_chosen(caps)`` — why it fits, for the ``"auto"`` reason and the capability report;
    * ``materialises_scores`` — whether it builds the ``N × N`` score matrix (its memory
      grows as N²: step-cost sweeps predict that memory before running it);
    * ``auto_on`` — the devices on which ``"auto"`` considers it; table order is
      preference order (fastest first by reputation);
    * ``own_kernel`` — ``False`` for a dispatcher over other entries (plain ``"sdpa"``),
      which kernel benchmarks leave out because they time each kernel it may pick.

    Everything else — :data:`BACKENDS`, :func:`why_not`, :func:`preference_order`,
    :func:`decide`, dispatch, the capability report, the benchmarks' candidate lists —
    is derived from the table of these records (:func:`register` adds one).
    """

    name: str
    why_not: Callable[[Capabilities], str | None]
    run: Runner
    why_chosen: Callable[[Capabilities], str]
    materialises_scores: bool
    auto_on: tuple[str, ...] = ()
    own_kernel: bool = True


_REGISTRY: dict[str, Backend] = {}


class _Names(Sequence[str]):
    """The registered backend names, in table order — a live view, so a registered backend appears."""

    def __getitem__(self, i):  # type: ignore[override]
        return tuple(_REGISTRY)[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_REGISTRY))

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __repr__(self) -> str:
        return repr(tuple(_REGISTRY))


#: Every name ``attention(..., backend=...)`` accepts besides ``"auto"`` (derived from the table).
BACKENDS: Sequence[str] = _Names()


def register(entry: Backend, *, before: str | None = None) -> Backend:
    """Add ``entry`` to the table (at the end, or before the backend named ``before``).

    Table order is preference order for ``"auto"``; a name may be registered once.
    """
    if not isinstance(entry, Backend):
        raise TypeError(f"register needs a Backend record, got {type(entry).__name__}")
    if entry.name == "auto" or entry.name in _REGISTRY:
        raise ValueError(f"attention backend {entry.name!r} is already registered (or reserved)")
    if before is not None and before not in _REGISTRY:
        raise ValueError(f"cannot register before {before!r}: no such backend; choose one of {tuple(_REGISTRY)}")
    items = list(_REGISTRY.items())
    at = len(items) if before is None else [n for n, _ in items].index(before)
    items.insert(at, (entry.name, entry))
    _REGISTRY.clear()
    _REGISTRY.update(items)
    return entry


def unregister(name: str) -> Backend:
    """Remove the backend called ``name`` from the table and return its record."""
    return _REGISTRY.pop(_known(name))


@contextmanager
def registered(entry: Backend, *, before: str | None = None) -> Iterator[Backend]:
    """``with registered(toy): ...`` — the backend exists inside the block only (tests, experiments)."""
    register(entry, before=before)
    try:
        yield entry
    finally:
        _REGISTRY.pop(entry.name, None)


def _known(name: str) -> str:
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {('auto', *_REGISTRY)}")
    return name


def backend(name: str) -> Backend:
    """The record of the backend called ``name``."""
    return _REGISTRY[_known(name)]


def materialises_scores(name: str) -> bool:
    """Whether backend ``name`` builds the ``N × N`` score matrix (its memory grows as N²)."""
    return backend(name).materialises_scores


# ---------------------------------------------------------------------------
# The pure decision logic
# ---------------------------------------------------------------------------


def _cc(caps: Capabilities) -> str:
    if caps.compute_capability is None:
        return "unknown"
    return f"sm{caps.compute_capability[0]}{caps.compute_capability[1]}"


def _pre_ampere(caps: Capabilities) -> bool:
    return caps.compute_capability is not None and caps.compute_capability < (8, 0)


def why_not(name: str, caps: Capabilities) -> str | None:
    """Why backend ``name`` cannot run inputs described by ``caps`` (``None`` when it can)."""
    return backend(name).why_not(caps)


def preference_order(caps: Capabilities) -> tuple[str, ...]:
    """The order ``"auto"`` tries backends in, fastest first by reputation (not measured per call).

    On a GPU: the flash-attn package (the authors' tuned FlashAttention-2/3) before SDPA
    (which dispatches to its own FlashAttention-2 port, memory-efficient or cuDNN kernel),
    before this book's teaching Triton kernel, before naive. ``benchmarks/gpu_attention.py``
    measures the real ordering on a given GPU. On CPU: SDPA (it has a fused CPU flash
    kernel) before naive; the Triton interpreter is never chosen automatically — it is
    for correctness checks only and is very slow. (The table's ``auto_on`` fields.)
    """
    return tuple(name for name, entry in _REGISTRY.items() if caps.device in entry.auto_on)


def usable_backends(caps: Capabilities, *, kernels_only: bool = False, auto_only: bool = False) -> list[str]:
    """Every backend that can run inputs described by ``caps``, in table order.

    What benchmarks and tests iterate instead of lists of their own. ``kernels_only``
    leaves out dispatchers (plain ``"sdpa"``) whose kernels are listed on their own —
    what a kernel benchmark times; ``auto_only`` keeps those ``"auto"`` considers on
    this device (:func:`preference_order`) — what a model-level sweep compares.
    """
    auto = preference_order(caps)
    return [
        name for name, entry in _REGISTRY.items()
        if entry.why_not(caps) is None
        and (entry.own_kernel or not kernels_only)
        and (name in auto or not auto_only)
    ]


def decide(caps: Capabilities) -> Choice:
    """The backend ``"auto"`` uses for inputs described by ``caps``, with the reason. Pure function."""
    skipped: list[tuple[str, str]] = []
    order = preference_order(caps)
    for name in order:
        why = why_not(name, caps)
        if why is None:
            reason = f"{backend(name).why_chosen(caps)} (first usable of {' > '.join(order)} on {caps.device})"
            if skipped:
                reason += "; skipped " + "; ".join(f"{n} because {w}" for n, w in skipped)
            return Choice(name, reason, tuple(skipped))
        skipped.append((name, why))
    raise BackendUnavailable(
        f"no attention backend that 'auto' considers on {caps.device} can run these inputs: "
        + "; ".join(f"{n}: {w}" for n, w in skipped)
    )


# ---------------------------------------------------------------------------
# From tensors to a description
# ---------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _triton_interpret_active() -> bool:
    """Whether the Triton kernels are (or will be, when first imported) built for the interpreter."""
    mod = sys.modules.get("flashtrade_lib.kernels.flash_attention")
    if mod is not None:
        return bool(mod.INTERPRETED)
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def describe(
    q: torch.Tensor, k: torch.Tensor | None = None, v: torch.Tensor | None = None, *,
    causal: bool = False, dropout_p: float = 0.0,
) -> Capabilities:
    """The :class:`Capabilities` of real inputs on this machine (validates them first)."""
    if k is not None and v is not None:
        _validate(q, k, v, causal=causal, dropout_p=dropout_p)
    cc = None
    if q.device.type == "cuda":
        cc = tuple(torch.cuda.get_device_capability(q.device))
    return Capabilities(
        device=q.device.type,
        dtype=_dtype_name(q.dtype),
        head_dim=int(q.shape[-1]),
        causal=bool(causal),
        dropout_p=float(dropout_p),
        compute_capability=cc,  # type: ignore[arg-type]
        flash_attn_installed=_installed("flash_attn"),
        triton_installed=_installed("triton"),
        triton_interpret=_triton_interpret_active(),
    )


def choose_backend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False, dropout_p: float = 0.0
) -> Choice:
    """What ``attention(q, k, v, backend="auto")`` would run, and why."""
    return decide(describe(q, k, v, causal=causal, dropout_p=dropout_p))


def _check_dropout(dropout_p: object) -> float:
    if isinstance(dropout_p, (bool, np.bool_)) or not isinstance(dropout_p, (Real, np.floating)):
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r} (a {type(dropout_p).__name__})")
    if not 0.0 <= float(dropout_p) < 1.0:  # NaN fails this too
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    return float(dropout_p)


def _check_finite(t: torch.Tensor, name: str) -> None:
    """Refuse NaN or inf in ``t``, exactly as the NumPy reference does (see :mod:`.arguments`)."""
    bad = ~torch.isfinite(t.detach())
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise NonFiniteInputError(
            non_finite_message(name, int(bad.sum()), t.numel(), first, float(t.detach()[first]))
        )


def _check_no_overflow(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                       out: torch.Tensor | None = None) -> None:
    """As the NumPy reference: scores that can overflow, or a non-finite output of finite inputs, are refused."""
    def largest_norm(t: torch.Tensor) -> float:  # float32 (no copy of fp32 inputs); inf when it overflows
        return float(torch.linalg.vector_norm(t.detach(), dim=-1, dtype=torch.float32).amax())

    bound = largest_norm(q) * largest_norm(k) * scale
    largest = float(torch.finfo(q.dtype).max)
    if bound > largest or (out is not None and not bool(torch.isfinite(out.detach()).all())):
        raise ScoreOverflowError(overflow_message(bound, float(v.detach().float().abs().amax()),
                                                  str(q.dtype).removeprefix("torch."), largest))


def _validate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: object, dropout_p: object) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(
                f"{name} must have shape (batch, heads, N, d), got {tuple(t.shape)}; "
                "add missing axes with .unsqueeze(0)"
            )
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if q.shape[:2] != k.shape[:2] or k.shape != v.shape:
        raise ValueError(
            f"k and v must have the same shape, and the same (batch, heads) as q; got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same head dim, got {q.shape[-1]} and {k.shape[-1]}")
    if check_causal(causal) and q.shape[2] != k.shape[2]:
        raise ValueError(
            f"causal attention here needs as many queries as keys (got {q.shape[2]} and "
            f"{k.shape[2]}): libraries disagree on how to align a causal mask otherwise"
        )
    _check_dropout(dropout_p)


# ---------------------------------------------------------------------------
# The implementations and what each needs
# ---------------------------------------------------------------------------


def naive_attention_torch(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
    causal: bool = False, dropout_p: float = 0.0, scale: float | None = None,
) -> torch.Tensor:
    """softmax(q kᵀ · scale) v, materialising the (N, N) scores — the chapter 1 algorithm in torch.

    The softmax runs in float32 even for half inputs (as every fused kernel does), so
    this is also the reference the GPU tests compare against.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = torch.matmul(q, k.transpose(-2, -1)) * scale
    if causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        keep = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).tril()
        s = s.masked_fill(~keep, float("-inf"))
    p = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype)
    if dropout_p > 0:
        p = F.dropout(p, p=dropout_p, training=True)
    return torch.matmul(p, v)


def _sdpa_runner(sub: str | None) -> Runner:
    """Run ``scaled_dot_product_attention``, letting torch choose (``sub=None``) or pinning a kernel."""

    def run(q, k, v, *, causal, dropout_p, scale) -> torch.Tensor:
        kwargs: dict[str, Any] = {"is_causal": causal, "dropout_p": dropout_p, "scale": scale}
        if sub is None:
            return F.scaled_dot_product_attention(q, k, v, **kwargs)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernel = {
            "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION,
            "math": SDPBackend.MATH,
        }[sub]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with sdpa_kernel(kernel):
                    return F.scaled_dot_product_attention(q, k, v, **kwargs)
            except RuntimeError as exc:
                reasons = " ".join(str(w.message).split(" (Triggered internally")[0] for w in caught)
                raise BackendUnavailable(
                    f"torch refused to run SDPA's {sub} kernel for these inputs "
                    f"({_dtype_name(q.dtype)}, head dim {q.shape[-1]}, {q.device.type}): "
                    f"{reasons or exc}. Use backend='sdpa' to let torch choose."
                ) from exc

    return run


def _flash_attn(q, k, v, *, causal, dropout_p, scale) -> torch.Tensor:
    from flash_attn import flash_attn_func

    # flash-attn wants (batch, N, heads, d); a transpose is a view, no copy
    out = flash_attn_func(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
        dropout_p=dropout_p, softmax_scale=scale, causal=causal,
    )
    return out.transpose(1, 2)


def _triton(q, k, v, *, causal, dropout_p, scale) -> torch.Tensor:
    from flashtrade_lib.kernels.flash_attention import flash_attention

    return flash_attention(q, k, v, causal=causal, scale=scale)


def _always(caps: Capabilities) -> str | None:
    return None  # plain tensor ops (or torch choosing down to its math kernel): any input runs


def _flash_attn_why_not(caps: Capabilities) -> str | None:
    if not caps.flash_attn_installed:
        return f"the flash-attn package is not installed; {_INSTALL_FLASH_ATTN}"
    if caps.device != "cuda":
        return (
            f"flash-attn runs only on CUDA GPUs, and these tensors are on {caps.device}; "
            "move them with `.cuda()` or use backend='sdpa'"
        )
    if _pre_ampere(caps):
        return (
            f"flash-attn 2 needs an Ampere (sm80) or newer GPU and this one is {_cc(caps)}; "
            "use backend='sdpa' (its memory-efficient kernel runs on older GPUs)"
        )
    if caps.dtype not in _HALF:
        return f"flash-attn needs float16 or bfloat16 inputs, got {caps.dtype}; {_CAST}"
    if caps.head_dim > 256:
        return f"flash-attn supports head dims up to 256, got {caps.head_dim}; use backend='sdpa'"
    return None


def _triton_why_not(caps: Capabilities) -> str | None:
    d = caps.head_dim
    if not caps.triton_installed:
        return "triton is not installed; `pip install triton` (it ships with CUDA builds of torch)"
    if caps.dropout_p > 0:
        return "this book's Triton kernel does not implement dropout; use backend='sdpa' or 'flash_attn'"
    if not 16 <= d <= 128:
        return f"this book's Triton kernel supports head dims 16 to 128, got {d}; use backend='sdpa'"
    if caps.device == "cpu":
        if not caps.triton_interpret:
            return (
                "Triton kernels need a CUDA GPU; on CPU tensors they run only under the Triton "
                "interpreter (correctness only, slow): set os.environ['TRITON_INTERPRET'] = '1' "
                "before flashtrade_lib.kernels is first imported (restart the kernel), or use "
                "backend='sdpa'"
            )
        if caps.dtype not in ("float32", "float16"):
            return (
                f"under the CPU interpreter the Triton kernel takes float32 or float16, got "
                f"{caps.dtype} (the interpreter mis-computes bfloat16 matrix products)"
            )
        return None
    if caps.device != "cuda":
        return f"Triton needs CUDA tensors, these are on {caps.device}"
    if _pre_ampere(caps):
        return (
            f"this book's Triton kernel is written and tested for Ampere (sm80) or newer GPUs "
            f"and this one is {_cc(caps)}; use backend='sdpa'"
        )
    if caps.dtype not in _HALF:
        return (
            f"the Triton kernel on a GPU takes float16 or bfloat16 (tensor cores), got "
            f"{caps.dtype}; {_CAST} (float32 is accepted only by the CPU interpreter, for tests)"
        )
    return None


def _sdpa_pinned_why_not(sub: str) -> Callable[[Capabilities], str | None]:
    """The documented requirements of one pinned SDPA kernel (``flash``, ``efficient``, ``cudnn``)."""

    def why(caps: Capabilities) -> str | None:
        if caps.device == "cpu":
            if sub in ("efficient", "cudnn"):
                return (
                    f"SDPA's {sub} kernel exists only on CUDA; on CPU torch has 'sdpa:flash' "
                    "and 'sdpa:math' (or use backend='sdpa' and let torch choose)"
                )
            if caps.dropout_p > 0:  # sub == "flash"
                return "SDPA's CPU flash kernel does not support dropout; use 'sdpa' or 'sdpa:math'"
            if caps.dtype not in ("float32", "float64", *_HALF):
                return f"SDPA's CPU flash kernel takes floating-point inputs, got {caps.dtype}"
            return None
        if caps.device != "cuda":
            return f"SDPA's {sub} kernel needs CUDA (or CPU for 'flash'), these tensors are on {caps.device}"
        if sub == "efficient":
            if caps.dtype == "bfloat16" and _pre_ampere(caps):
                return f"bfloat16 needs an Ampere (sm80) or newer GPU and this one is {_cc(caps)}; use float16"
            if caps.dtype == "float64":
                return f"SDPA's memory-efficient kernel takes float32/float16/bfloat16, got {caps.dtype}"
            return None
        label = {"flash": "flash", "cudnn": "cuDNN"}[sub]
        if _pre_ampere(caps):
            return (
                f"SDPA's {label} kernel needs an Ampere (sm80) or newer GPU and this one is {_cc(caps)}; "
                "use 'sdpa:efficient'"
            )
        if caps.dtype not in _HALF:
            return f"SDPA's {label} kernel needs float16 or bfloat16 inputs, got {caps.dtype}; {_CAST}"
        if sub == "flash" and caps.head_dim > 256:
            return f"SDPA's flash kernel supports head dims up to 256, got {caps.head_dim}; use 'sdpa:efficient'"
        if sub == "cudnn" and caps.dropout_p > 0:
            return "this wrapper does not pin SDPA's cuDNN kernel with dropout; use 'sdpa' or 'sdpa:flash'"
        return None

    return why


def _text(text: str) -> Callable[[Capabilities], str]:
    return lambda caps: text


def _triton_why_chosen(caps: Capabilities) -> str:
    if caps.device == "cpu":
        return "the Triton interpreter runs the kernel on CPU tensors (correctness only, very slow)"
    return "this book's Triton FlashAttention kernel fits (fp16/bf16 on an Ampere or newer GPU, head dim 16-128)"


def _sdpa_flash_why_chosen(caps: Capabilities) -> str:
    if caps.device == "cpu":
        return "torch's fused CPU flash kernel fits (no dropout)"
    return "torch's fused FlashAttention-2 kernel fits"


# The table, in preference order (fastest first by reputation). Adding a backend is one
# entry here (or one register() call): every list, report and benchmark derives from it.
for _entry in (
    Backend(
        "flash_attn", _flash_attn_why_not, _flash_attn,
        _text("the flash-attn package's fused FlashAttention kernel fits these inputs"),
        materialises_scores=False, auto_on=("cuda",),
    ),
    Backend(
        "sdpa", _always, _sdpa_runner(None),
        _text("torch's scaled_dot_product_attention picks its best fused kernel for these inputs, "
              "down to its math kernel, so it always runs"),
        materialises_scores=False, auto_on=("cuda", "cpu"), own_kernel=False,
    ),
    Backend("sdpa:flash", _sdpa_pinned_why_not("flash"), _sdpa_runner("flash"), _sdpa_flash_why_chosen,
            materialises_scores=False),
    Backend("sdpa:efficient", _sdpa_pinned_why_not("efficient"), _sdpa_runner("efficient"),
            _text("torch's memory-efficient (xFormers-style) kernel fits"), materialises_scores=False),
    Backend("sdpa:cudnn", _sdpa_pinned_why_not("cudnn"), _sdpa_runner("cudnn"),
            _text("torch's cuDNN attention kernel fits (torch checks the cuDNN version when it runs)"),
            materialises_scores=False),
    Backend("sdpa:math", _always, _sdpa_runner("math"),
            _text("torch's reference math kernel runs anywhere (materialises the N×N scores)"),
            materialises_scores=True),
    Backend("triton", _triton_why_not, _triton, _triton_why_chosen, materialises_scores=False,
            auto_on=("cuda",)),
    Backend("naive", _always, naive_attention_torch,
            _text("plain matmul-softmax-matmul runs anywhere (materialises the N×N scores)"),
            materialises_scores=True, auto_on=("cuda", "cpu")),
):
    register(_entry)
del _entry


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
    causal: bool = False, dropout_p: float = 0.0, scale: float | None = None, backend: str = "auto",
) -> torch.Tensor:
    """Scaled dot-product attention on ``(batch, heads, N, d)`` tensors; differentiable.

    ``scale`` defaults to ``1/sqrt(d)``. ``causal=True`` lets query ``i`` see keys
    ``0..i`` only (no look-ahead: what a trading model needs). ``dropout_p`` is applied
    whenever it is positive (pass 0.0 at evaluation time). ``backend`` is ``"auto"``
    (see :func:`choose_backend`) or one of :data:`BACKENDS`; a backend that cannot run
    these inputs raises :class:`BackendUnavailable` saying why and what to do. Inputs
    holding NaN or inf raise :class:`~flashtrade_lib.attention.arguments.NonFiniteInputError`
    on every backend, as in the NumPy reference (the backends would disagree on them);
    finite inputs whose scores overflow the dtype raise ``ScoreOverflowError``, never NaN.
    """
    if backend != "auto":
        _known(backend)
    caps = describe(q, k, v, causal=causal, dropout_p=dropout_p)
    scale = check_scale(scale, caps.head_dim)
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_finite(t, name)
    if backend == "auto":
        backend = decide(caps).name
    else:
        why = why_not(backend, caps)
        if why is not None:
            raise BackendUnavailable(f"attention backend {backend!r} cannot run here: {why}")
    _check_no_overflow(q, k, v, scale)
    out = _REGISTRY[backend].run(q, k, v, causal=caps.causal, dropout_p=caps.dropout_p, scale=scale)
    _check_no_overflow(q, k, v, scale, out)
    return out


# ---------------------------------------------------------------------------
# The report 00_setup and chapter 4 print
# ---------------------------------------------------------------------------


def default_capabilities(head_dim: int = 64, causal: bool = False) -> Capabilities:
    """This machine's capabilities for typical inputs: bf16 on a GPU, fp32 on CPU."""
    if torch.cuda.is_available():
        device, dtype, cc = "cuda", "bfloat16", tuple(torch.cuda.get_device_capability(0))
    else:
        device, dtype, cc = "cpu", "float32", None
    return Capabilities(
        device=device, dtype=dtype, head_dim=head_dim, causal=causal,
        compute_capability=cc,  # type: ignore[arg-type]
        flash_attn_installed=_installed("flash_attn"),
        triton_installed=_installed("triton"),
        triton_interpret=_triton_interpret_active() if device == "cpu" else False,
    )


def capability_report(caps: Capabilities | None = None) -> list[dict[str, str]]:
    """One row per backend: can it run typical inputs here, and why (or why not).

    ``caps`` defaults to this machine (:func:`default_capabilities`); pass a
    hand-made :class:`Capabilities` to see the report for another machine.
    """
    caps = default_capabilities() if caps is None else caps
    auto = decide(caps).name
    where = caps.device if caps.compute_capability is None else f"{caps.device} {_cc(caps)}"
    rows = []
    for name, entry in _REGISTRY.items():
        why = entry.why_not(caps)
        rows.append({
            "backend": name,
            "usable": "yes" if why is None else "no",
            "because": entry.why_chosen(caps) if why is None else why,
            "auto": "chosen" if name == auto else "",
            "inputs": f"{caps.dtype}, head dim {caps.head_dim}, {where}",
        })
    return rows
