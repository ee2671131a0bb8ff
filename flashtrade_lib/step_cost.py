"""What one training step costs at a context length: time, peak memory, and the N×N formula.

Why apart from the training loop: this measures a step instead of training a model.
:func:`train_step` is the unit that chapters 6 and 10, ``benchmarks/train_context.py``
and :func:`flashtrade_lib.experiments.step_costs` time; :func:`naive_step_bytes` is
the memory that naive attention needs for it, and :func:`measure_train_context`
sweeps context lengths and backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from flashtrade_lib.model import FlashAttentionTrader, ModelConfig
from flashtrade_lib.train import compute_loss

__all__ = ["train_step", "naive_step_bytes", "measure_train_context"]


def train_step(
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
) -> Any:
    """A zero-argument callable that runs one full training step at this context length.

    Forward, loss, backward and an AdamW update of a :class:`FlashAttentionTrader`
    on random inputs of shape ``(batch, context, n_features)`` — the unit that
    :mod:`flashtrade_lib.bench` times and measures for memory. The model, data
    and optimizer state are created here, once, so only the step itself is measured
    (call it once before measuring: the first step allocates gradients and
    optimizer state). ``amp`` runs the step under bf16 autocast (GPU only).
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    config = ModelConfig(
        n_features=n_features, d_model=d_model, n_heads=n_heads, n_layers=n_layers,
        causal=causal, backend=backend,
    )
    model = FlashAttentionTrader(config).to(dev)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, context, n_features, generator=g).to(dev)
    y = torch.randn(batch, generator=g).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = torch.bfloat16 if amp else None
    if amp and dev.type != "cuda":
        raise ValueError("amp=True needs device='cuda'; CPU steps run in float32")

    def step() -> float:
        with torch.autocast(device_type=dev.type, dtype=dtype, enabled=amp):
            out = model(x)
        loss = compute_loss(out, y, "regression")
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
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


def measure_train_context(
    contexts: Sequence[int],
    backends: Sequence[str] = ("naive", "sdpa"),
    *,
    batch: int = 8,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 2,
    repeat: int = 3,
    warmup: int = 0,
    max_bytes: float = 16 * 2**30,
    device: str = "cpu",
    amp: bool = False,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Time and peak memory of one training step, per context length and backend.

    Backends are timed *interleaved* at each context (:func:`flashtrade_lib.bench.time_calls`),
    so their ratio is meaningful on a busy machine; each step has already run once
    (allocating gradients and optimizer state) before timing, which is the warm-up,
    so ``warmup`` extra rounds default to 0. A naive step whose predicted N×N
    memory (:func:`naive_step_bytes`, ``n_live=3``) exceeds ``max_bytes`` is not run:
    its row says ``"skipped"`` with the prediction, instead of exhausting the machine.
    Memory is the peak extra resident memory on CPU (:func:`~flashtrade_lib.bench.peak_memory`)
    or the peak extra CUDA allocation on a GPU.
    """
    import gc

    from flashtrade_lib.bench import peak_memory, peak_memory_cuda, time_calls

    rows: list[dict[str, Any]] = []
    sizes = {"batch": batch, "d_model": d_model, "n_heads": n_heads, "n_layers": n_layers}
    itemsize = 2 if amp else 4
    from tqdm.auto import tqdm

    for n in tqdm(list(contexts), disable=not progress, desc="contexts", unit="context"):
        steps: dict[str, Any] = {}
        for b in backends:
            predicted = naive_step_bytes(n, batch=batch, n_heads=n_heads, n_layers=n_layers, itemsize=itemsize)
            base = {"context": int(n), "backend": b, **sizes}
            if b.startswith("naive") or b == "sdpa:math":
                base["predicted_nxn_bytes"] = predicted
                if predicted > max_bytes:
                    rows.append({**base, "status": "skipped", "reason": (
                        f"predicted {predicted / 2**30:.1f} GiB of N×N buffers > limit "
                        f"{max_bytes / 2**30:.1f} GiB")})
                    continue
            try:
                steps[b] = train_step(b, n, device=device, amp=amp, **sizes)
                steps[b]()  # allocate gradients and optimizer state before measuring
            except (RuntimeError, MemoryError) as exc:  # a real out-of-memory is a result too
                steps.pop(b, None)
                rows.append({**base, "status": "oom", "reason": str(exc).splitlines()[0][:200]})
                gc.collect()
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
        if not steps:
            continue
        timings = time_calls(steps, repeat=repeat, warmup=warmup)
        for b, fn in steps.items():
            mem = peak_memory_cuda(fn) if device.startswith("cuda") else peak_memory(fn)
            row = {"context": int(n), "backend": b, **sizes, "status": "ok",
                   "step_s": timings[b].median_s, "step_times_s": list(timings[b].times_s),
                   "peak_bytes": int(mem)}
            if b.startswith("naive") or b == "sdpa:math":
                row["predicted_nxn_bytes"] = naive_step_bytes(
                    n, batch=batch, n_heads=n_heads, n_layers=n_layers, itemsize=itemsize)
            rows.append(row)
        steps.clear()
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows
