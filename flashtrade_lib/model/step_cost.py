"""What one training step costs: time, peak memory, and the N×N formula — for any model.

Why apart from the training loop: this measures a step instead of training a model.

* :func:`train_step` is *the* training step the book measures — forward, loss, backward
  and an AdamW update of any model with the :class:`~flashtrade_lib.model.train.TrainableModel`
  interface, on a fixed batch (chapters 6, 9 and 10, ``benchmarks/train_context.py`` and
  ``benchmarks/cross_asset.py`` all time it);
* :func:`naive_step_bytes` is the memory that naive attention needs for it;
* :func:`sweep_step_costs` is *the* sweep: time and peak memory per (grid point,
  backend), backends timed interleaved, a step whose predicted N×N memory is too large
  never run. :func:`measure_train_context` is that sweep over context lengths of the
  single-series model (what chapters 6 and 9 plot).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from flashtrade_lib.attention.backends import materialises_scores
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
from flashtrade_lib.model.train import OBJECTIVES, compute_loss

__all__ = ["train_step", "naive_step_bytes", "sweep_step_costs", "measure_train_context", "random_batch_step"]

GiB = 2**30
Step = Callable[[], float]


def train_step(model: nn.Module, x: Tensor, y: Tensor, objective: str = "regression", *,
               amp: bool = False, lr: float = 1e-4) -> Step:
    """A zero-argument callable running one forward + loss + backward + AdamW step of ``model`` on ``(x, y)``.

    The unit that :func:`flashtrade_lib.measure.bench.time_calls` and
    :func:`~flashtrade_lib.measure.bench.peak_memory` measure: the optimizer state is created
    here, once, so only the step itself is measured — call it once before measuring
    (the first step allocates gradients and optimizer state). ``amp`` runs the forward
    under bf16 autocast (GPU only). On a GPU the step waits for the device, so a timer
    around it measures the work, not the launch.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    device = next(model.parameters()).device
    if amp and device.type != "cuda":
        raise ValueError("amp=True needs device='cuda'; CPU steps run in float32")
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()

    def step() -> float:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = compute_loss(out, y, objective)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return float(loss.detach())

    return step


def naive_step_bytes(context: int, *, batch: int = 8, n_heads: int = 4, n_layers: int = 2,
                     n_live: float = 3.0, itemsize: int = 4) -> float:
    """The N×N memory of a training step with naive attention: ``(n_layers + n_live)·B·H·N²·itemsize``.

    Why this shape: for the backward pass autograd keeps every layer's softmax
    probabilities (``n_layers`` matrices of ``B·H·N²``); at the peak a few more are
    alive at once (scores, the mask fill, the gradient of the probabilities) —
    ``n_live``, which :mod:`benchmarks.train_context` fits to measured peaks rather
    than assuming. Everything else in the step is O(N), negligible at long context.
    """
    return (n_layers + n_live) * batch * n_heads * float(context) ** 2 * itemsize


def _free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def sweep_step_costs(
    points: Sequence[Mapping[str, Any]],
    backends: Sequence[str],
    make_step: Callable[[str, Mapping[str, Any]], Step],
    *,
    nxn_bytes: Callable[[Mapping[str, Any]], float] | None = None,
    nxn_limits: Sequence[tuple[float, str]] = (),
    skip: Callable[[str, Mapping[str, Any]], tuple[str, str] | None] | None = None,
    repeat: int = 3,
    warmup: int = 0,
    device: str = "cpu",
    progress: bool = False,
    on_point: Callable[[Mapping[str, Any]], None] | None = None,
    prefaulted: bool = False,
) -> list[dict[str, Any]]:
    """Time and peak memory of one training step per grid point and backend; one row each.

    ``points`` are the grid (e.g. ``{"context": 512}`` or ``{"assets": 8, "lookback": 128,
    "tokens": 1161}``); every row starts with its point and ``backend``. ``make_step(backend,
    point)`` returns the zero-argument step (:func:`train_step`). Backends are timed
    *interleaved* at each point (:func:`flashtrade_lib.measure.bench.time_calls`), so their ratio is
    meaningful on a busy machine; each step has already run once (allocating gradients
    and optimizer state) before timing, which is the warm-up, so ``warmup`` extra rounds
    default to 0. Memory is the peak extra resident memory on CPU
    (:func:`~flashtrade_lib.measure.bench.peak_memory`) or the peak extra CUDA allocation on a GPU.

    For a backend that materialises the N×N scores (the backend table says which),
    ``nxn_bytes(point)`` predicts that memory *before* anything runs: the row records it as
    ``predicted_nxn_bytes`` (and ``measured_over_predicted`` once measured), and the first
    ``(limit_bytes, status)`` of ``nxn_limits`` it exceeds gives the row that status instead
    of exhausting the machine. ``skip(backend, point)`` may refuse other runs with
    ``(status, reason)``. A real out-of-memory error is a result too: status ``"oom"``.

    ``prefaulted=True`` (CPU) times the steps on memory already faulted in
    (:func:`~flashtrade_lib.measure.bench.reuse_freed_memory`, after two untimed rounds inside it):
    a step that allocates N×N buffers afresh otherwise pays the machine's first touch of
    every page, which on some VMs costs seconds per GiB and varies run to run. Memory is
    measured afterwards, on fresh memory, either way. Rows say which (``timed_on``).
    """
    from tqdm.auto import tqdm

    from flashtrade_lib.measure.bench import (
        peak_memory,
        peak_memory_cuda,
        reuse_freed_memory,
        time_calls,
    )

    cuda = device.startswith("cuda")
    reuse = prefaulted and not cuda
    rows: list[dict[str, Any]] = []
    for point in tqdm(list(points), disable=not progress, desc="grid points", unit="point"):
        steps: dict[str, Step] = {}
        predicted: dict[str, float] = {}
        for b in backends:
            base = {**point, "backend": b}
            if nxn_bytes is not None and materialises_scores(b):
                predicted[b] = base["predicted_nxn_bytes"] = nxn_bytes(point)
                over = next(((lim, status) for lim, status in nxn_limits if predicted[b] > lim), None)
                if over is not None:
                    rows.append({**base, "status": over[1], "reason": (
                        f"predicted {predicted[b] / GiB:.1f} GiB of N×N buffers > limit {over[0] / GiB:g} GiB")})
                    continue
            refused = skip(b, point) if skip is not None else None
            if refused is not None:
                rows.append({**base, "status": refused[0], "reason": refused[1]})
                continue
            try:
                steps[b] = make_step(b, point)
                steps[b]()  # allocate gradients and optimizer state before measuring
            except (RuntimeError, MemoryError) as exc:
                steps.pop(b, None)
                rows.append({**base, "status": "oom", "reason": str(exc).splitlines()[0][:200]})
                _free(device)
        if steps:
            with reuse_freed_memory() if reuse else contextlib.nullcontext(False) as reused:
                # two rounds: the first grows the heap around the other backends' blocks, the second
                # finds every block it needs already faulted in
                timings = time_calls(steps, repeat=repeat, warmup=max(warmup, 2 if reuse else 0))
            for b, fn in steps.items():
                mem = peak_memory_cuda(fn) if cuda else peak_memory(fn)
                row = {**point, "backend": b, "status": "ok", "step_s": timings[b].median_s,
                       "step_times_s": list(timings[b].times_s), "peak_bytes": int(mem),
                       "timed_on": "pre-faulted memory" if reused else "fresh memory"}
                if b in predicted:
                    row["predicted_nxn_bytes"] = predicted[b]
                    row["measured_over_predicted"] = mem / predicted[b]
                rows.append(row)
            steps.clear()
            _free(device)
        if on_point is not None:
            on_point(point)
    return rows


def random_batch_step(
    backend: str,
    context: int,
    *,
    batch: int = 8,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    n_features: int = 8,
    causal: bool = True,
    device: str = "cpu",
    amp: bool = False,
    seed: int = 0,
) -> Step:
    """:func:`train_step` of a fresh :class:`FlashAttentionTrader` on random ``(batch, context, n_features)`` inputs."""
    if amp and not device.startswith("cuda"):
        raise ValueError("amp=True needs device='cuda'; CPU steps run in float32")
    torch.manual_seed(seed)
    config = ModelConfig(n_features=n_features, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
                         causal=causal, backend=backend)
    model = FlashAttentionTrader(config).to(device)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, context, n_features, generator=g).to(device)
    y = torch.randn(batch, generator=g).to(device)
    return train_step(model, x, y, "regression", amp=amp)


def measure_train_context(
    contexts: Sequence[int],
    backends: Sequence[str] = ("naive", "sdpa"),
    *,
    batch: int = 8,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    n_features: int = 8,
    repeat: int = 3,
    warmup: int = 0,
    max_bytes: float = 16 * GiB,
    device: str = "cpu",
    amp: bool = False,
    progress: bool = False,
    prefaulted: bool = False,
) -> list[dict[str, Any]]:
    """:func:`sweep_step_costs` over context lengths of the single-series model (:func:`random_batch_step`).

    Rows: ``context, backend``, the model sizes, ``status`` and (when ``"ok"``) ``step_s``,
    ``step_times_s``, ``peak_bytes``. A naive step whose predicted N×N memory
    (:func:`naive_step_bytes`, ``n_live=3``) exceeds ``max_bytes`` is not run: its row says
    ``"skipped"`` with the prediction. ``prefaulted``: see :func:`sweep_step_costs`.
    """
    sizes = {"batch": batch, "d_model": d_model, "n_heads": n_heads, "n_layers": n_layers}
    itemsize = 2 if amp else 4

    def make(b: str, point: Mapping[str, Any]) -> Step:
        return random_batch_step(b, point["context"], n_features=n_features, device=device, amp=amp, **sizes)

    return sweep_step_costs(
        [{"context": int(n), **sizes} for n in contexts], backends, make,
        nxn_bytes=lambda p: naive_step_bytes(p["context"], batch=batch, n_heads=n_heads, n_layers=n_layers,
                                             itemsize=itemsize),
        nxn_limits=[(max_bytes, "skipped")], repeat=repeat, warmup=warmup, device=device, progress=progress,
        prefaulted=prefaulted,
    )
