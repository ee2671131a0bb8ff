"""Training: one loop for a laptop CPU, a GPU, or many processes, and for every model of the book.

``train(model, datasets, config)`` trains any model with the small interface of
:class:`TrainableModel` — the single-series ``FlashAttentionTrader`` and the
cross-asset and order-book models of chapter 10 alike. It runs AdamW with linear
warm-up and cosine decay, gradient clipping, early stopping on the validation loss
and — on a GPU only — mixed precision. Started with ``torchrun --nproc_per_node P ...`` it runs
unchanged under DistributedDataParallel (gloo on CPU, nccl on GPU): every process
sees a disjoint shard of each *global* batch through a ``DistributedSampler``, and
gradients are averaged, so P processes take exactly the steps one process would
take with the same ``batch_size`` and ``seed`` (up to floating-point summation
order). That is what makes the 2-process test able to compare against a
single-process run.

Training that fails, fails: a non-finite loss (or attention inputs gone NaN) stops
the run with :class:`TrainingDiverged` before the bad step is applied. Every run has
a ``run_id``, written into its checkpoints; before the first step the checkpoint
directory is checked (:func:`flashtrade_lib.model.checkpoints.check_output_dir`), so an older
run's checkpoint there is refused — or, with ``TrainConfig(overwrite=True)``, removed
and reported in :attr:`TrainResult.replaced`. Checkpoints themselves (safe, atomic,
validated on load) live in :mod:`flashtrade_lib.model.checkpoints`.
:func:`predict` runs a trained model over a dataset.

Building datasets from market data lives in :mod:`flashtrade_lib.data.tasks`; timing and
measuring the memory of one training step lives in :mod:`flashtrade_lib.model.step_cost`.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from flashtrade_lib.attention.arguments import NonFiniteInputError
from flashtrade_lib.config import PlainConfig
from flashtrade_lib.errors import FlashTradeError
from flashtrade_lib.model.checkpoints import check_output_dir, check_plain, save_checkpoint
from flashtrade_lib.model.trader import HEADS, FlashAttentionTrader
from flashtrade_lib.options import OBJECTIVES

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainableModel",
    "TrainingDiverged",
    "train",
    "compute_loss",
    "lr_at",
    "predict",
]



class TrainingDiverged(FlashTradeError, RuntimeError):
    """The loss (or what the model computes from its inputs) became NaN or inf: the run is stopped, not continued."""


@dataclass(frozen=True)
class TrainConfig(PlainConfig):
    """Everything about *how* to train (the model's shape lives in ``ModelConfig``).

    ``batch_size`` is the **global** batch: under ``torchrun`` with P processes each
    one takes ``batch_size / P`` samples per step. ``objective`` picks the loss:

    * ``regression`` — mean squared error divided by the training targets' variance
      (so 1.0 means "no better than predicting the mean"),
    * ``direction`` — binary cross-entropy of the ``direction`` logit vs ``target > 0``,
    * ``allocation`` — minus the mean P&L ``allocation * target`` (in units of the
      target's standard deviation): the position head learns to trade directly,
    * ``multi`` — ``regression + direction``.

    ``amp`` is ``"auto"`` (bf16 where the GPU supports it, else fp16; nothing on
    CPU), ``"bf16"``, ``"fp16"`` or ``"off"``; mixed precision is GPU-only.
    ``patience`` epochs without a better validation loss stop training (``None``
    never stops early); the best weights are restored at the end.
    ``checkpoint_dir`` (``None``: nothing is written) receives the best checkpoint; a
    checkpoint an earlier run left there is refused before training starts, unless
    ``overwrite=True`` (then it is removed first, and :attr:`TrainResult.replaced` says so).
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    objective: str = "regression"
    patience: int | None = 3
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    max_steps_per_epoch: int | None = None
    eval_batch_size: int | None = None
    num_workers: int = 0
    progress: bool = True
    checkpoint_dir: str | None = None
    standardize_target: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("max_steps_per_epoch", "eval_batch_size", "patience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainConfig.{name} must be a positive int or None, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 <= self.warmup_frac < 1:
            raise ValueError(f"TrainConfig.warmup_frac must be in [0, 1), got {self.warmup_frac!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}"
            )
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"TrainConfig.amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"TrainConfig.device must be auto, cpu or cuda[:i], got {self.device!r}")
        if not isinstance(self.overwrite, bool):
            raise ValueError(f"TrainConfig.overwrite must be True or False, got {self.overwrite!r}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers!r}")


@dataclass
class TrainResult:
    """What a run did: one row per epoch in ``history``, where the best model is, and the run's id."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float | None
    stopped_early: bool
    steps: int
    seconds: float
    world_size: int
    checkpoint: str | None = None
    step_losses: list[float] = field(default_factory=list)
    run_id: str = ""
    replaced: str | None = None  #: what an ``overwrite=True`` run removed from its checkpoint directory

    @property
    def train_losses(self) -> list[float]:
        return [row["train_loss"] for row in self.history]

    @property
    def val_losses(self) -> list[float]:
        return [row["val_loss"] for row in self.history if "val_loss" in row]


# --------------------------------------------------------------------------- models


class TrainableModel(Protocol):
    """What :func:`train` and :func:`predict` need from a model — and nothing more.

    * It is a ``torch.nn.Module`` (``train`` uses its parameters, ``state_dict``,
      ``train()``/``eval()`` and ``to()``).
    * ``target_scale`` is a scalar tensor buffer. ``train`` sets it to the training
      targets' standard deviation; the model multiplies its ``regression`` output by
      it, so the network works at unit scale while predictions come out in the
      target's units.
    * ``model(x)`` returns a dict of tensors ``regression``, ``direction`` (a logit)
      and ``allocation``, each shaped like a batch of targets; an objective reads only
      some of them (see :func:`compute_loss`).

    :class:`~flashtrade_lib.model.trader.FlashAttentionTrader` has it, and so do the models of
    chapter 10 (:class:`~flashtrade_lib.model.cross_asset.CrossAssetTrader`, its baselines and
    :class:`~flashtrade_lib.model.cross_asset.OrderBookTrader`). Checkpoints are narrower: they
    rebuild a ``FlashAttentionTrader`` from its config, so ``checkpoint_dir`` needs one.
    """

    target_scale: Tensor

    def __call__(self, x: Tensor) -> Mapping[str, Tensor]: ...


def _check_trainable(model: Any, caller: str) -> None:
    """A ``TypeError`` naming what is missing, before any data is read."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{caller} needs a torch.nn.Module with the TrainableModel interface "
            f"(a target_scale buffer, forward returning {', '.join(HEADS)}); got {type(model).__name__}"
        )
    scale = getattr(model, "target_scale", None)
    if not isinstance(scale, Tensor) or scale.numel() != 1:
        found = "none" if scale is None else f"a {type(scale).__name__}"
        raise TypeError(
            f"{caller} needs model.target_scale, a scalar tensor buffer it sets to the training "
            f"targets' standard deviation; {type(model).__name__} has {found}. Add "
            "self.register_buffer('target_scale', torch.ones(())) in __init__ and multiply the "
            "regression output by it"
        )


# --------------------------------------------------------------------------- losses


def compute_loss(
    outputs: Mapping[str, Tensor], target: Tensor, objective: str, target_std: float = 1.0
) -> Tensor:
    """Mean loss of one batch (see :class:`TrainConfig` for the objectives).

    A *mean* over the samples of the batch, so that averaging it over processes
    (what DDP does to gradients) equals the loss of the whole global batch.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    needed = {"regression", *(("allocation",) if objective == "allocation" else ()),
              *(("direction",) if objective in ("direction", "multi") else ())}
    if not isinstance(outputs, Mapping) or not needed <= set(outputs):
        got = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
        raise TypeError(
            f"objective {objective!r} needs the model to return a dict with {sorted(needed)} "
            f"(see TrainableModel); got {got}"
        )
    pred = outputs["regression"]
    target = target.to(pred.device, torch.float32).reshape(pred.shape)
    if objective == "allocation":
        return -(outputs["allocation"].float() * target).mean() / target_std
    loss = torch.zeros((), device=pred.device)
    if objective in ("regression", "multi"):
        loss = loss + F.mse_loss(pred.float(), target) / target_std**2
    if objective in ("direction", "multi"):
        loss = loss + F.binary_cross_entropy_with_logits(
            outputs["direction"].float(), (target > 0).float()
        )
    return loss


def lr_at(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------- data


def _split(batch: Any) -> tuple[Tensor, Tensor]:
    """``(x, y)`` from a batch given as a tuple/list ``(x, y, ...)`` or a dict with ``x``/``y``."""
    if isinstance(batch, Mapping):
        if "x" not in batch or "y" not in batch:
            raise ValueError(f"a dict batch needs keys 'x' and 'y', got {sorted(batch)}")
        return batch["x"], batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(
        "a dataset item must be (x, y) or {'x': ..., 'y': ...}; got "
        f"{type(batch).__name__}"
    )


def _datasets(datasets: Any) -> tuple[Dataset, Dataset | None]:
    if isinstance(datasets, Mapping):
        if "train" not in datasets:
            raise ValueError(f"datasets needs a 'train' entry, got keys {sorted(datasets)}")
        return datasets["train"], datasets.get("val")
    if isinstance(datasets, Sequence) and not isinstance(datasets, Dataset) and len(datasets) in (1, 2):
        return datasets[0], (datasets[1] if len(datasets) == 2 else None)
    if isinstance(datasets, Dataset):
        return datasets, None
    raise ValueError(
        "datasets must be a Dataset, a (train, val) pair or a dict with 'train' and "
        f"optionally 'val'; got {type(datasets).__name__}"
    )


def _item_targets(dataset: Dataset) -> np.ndarray | None:
    """Every item's target, when the dataset can say so without reading items (else ``None``)."""
    if isinstance(dataset, Subset):
        inner = _item_targets(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, torch.utils.data.TensorDataset):
        return dataset.tensors[1].double().numpy()
    times, y = getattr(dataset, "times", None), getattr(dataset, "y", None)
    if times is not None and isinstance(y, Tensor):  # WindowDataset: item i's target is y[times[i]]
        return y[torch.as_tensor(np.asarray(times), dtype=torch.long)].double().numpy()
    return None


def _targets(dataset: Dataset, limit: int = 8192) -> np.ndarray:
    """The training targets, for their scale: all of them, or ``limit`` evenly spaced ones.

    Reads them directly from a ``TensorDataset``, a windowed dataset or a ``Subset`` of
    one, and otherwise reads items; the spacing is deterministic, so every process
    gets the same value.
    """
    known = _item_targets(dataset)
    if known is not None:
        return known.ravel()
    n = len(dataset)  # type: ignore[arg-type]
    idx = np.unique(np.linspace(0, n - 1, min(n, limit)).astype(int))
    return np.concatenate([np.asarray(_split(dataset[int(i)])[1], dtype=np.float64).ravel() for i in idx])


# --------------------------------------------------------------------------- distributed


def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (1 process without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _setup_distributed(device: torch.device) -> bool:
    """Initialise the process group under ``torchrun``; returns True if we created it."""
    import torch.distributed as dist

    _, _, world = _dist_env()
    if world == 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def _resolve_device(name: str, local_rank: int, world: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} but no CUDA GPU is available; use device='cpu' or 'auto'"
            )
        if name == "cuda" and world > 1:
            name = f"cuda:{local_rank}"
    return torch.device(name)


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        if amp in ("bf16", "fp16"):
            raise ValueError(
                f"amp={amp!r} needs a CUDA GPU; on CPU train in float32 (amp='off' or 'auto')"
            )
        return None
    if amp == "off":
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _autocast(dtype: torch.dtype | None, device: torch.device) -> AbstractContextManager[Any]:
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype else nullcontext()


# --------------------------------------------------------------------------- training


def _progress(iterable: Any, *, enabled: bool, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, **kwargs)


def _evaluate(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    device: torch.device,
    amp: torch.dtype | None,
    target_std: float,
    rank: int,
    world: int,
) -> float:
    """Mean validation loss over the whole set, sharded over processes and all-reduced."""
    n = len(dataset)  # type: ignore[arg-type]
    shard = Subset(dataset, range(rank, n, world)) if world > 1 else dataset
    loader = DataLoader(shard, batch_size=config.eval_batch_size or config.batch_size, shuffle=False)
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of losses, count)
    model.eval()
    with torch.no_grad():
        for batch in loader:
            x, y = _split(batch)
            with _autocast(amp, device):
                out = model(x.to(device, non_blocking=True))
            total[0] += compute_loss(out, y, config.objective, target_std).double() * len(y)
            total[1] += len(y)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(total)
    return float(total[0] / total[1])


def train(
    model: TrainableModel,
    datasets: Any,
    config: TrainConfig | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``datasets`` (``{"train": ds, "val": ds}`` or ``(train, val)``).

    ``model`` is any :class:`TrainableModel` (a ``TypeError`` says what is missing).
    Each dataset item is ``(x, y)``: ``x`` whatever the model reads (``(N, n_features)``
    for the single-series model) and ``y`` the target(s). Returns a :class:`TrainResult`;
    the model ends with the weights of the best epoch — lowest validation loss, or
    lowest mean training loss when there is no validation set.
    ``metadata`` (plain types: data range, feature names, ...) goes into checkpoints.

    Deterministic on CPU for a given ``config.seed``: the shuffling order comes
    from the seed and the epoch, and dropout from a generator seeded here. The
    model's own initialisation is the caller's (seed before building it).
    """
    config = config or TrainConfig()
    _check_trainable(model, "train")
    if config.checkpoint_dir and not isinstance(model, FlashAttentionTrader):
        raise TypeError(
            f"checkpoints rebuild a FlashAttentionTrader from its config, so a {type(model).__name__} "
            "cannot be checkpointed by train: set checkpoint_dir=None and save "
            "model.state_dict() yourself"
        )
    train_set, val_set = _datasets(datasets)
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise ValueError("the training dataset is empty")
    rank, local_rank, world = _dist_env()
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    if config.batch_size % world:
        raise ValueError(
            f"batch_size={config.batch_size} (the global batch) is not divisible by the "
            f"{world} processes; choose a multiple of {world}"
        )
    if len(train_set) < config.batch_size:  # type: ignore[arg-type]
        raise ValueError(
            f"the training set has {len(train_set)} samples, fewer than one batch of "  # type: ignore[arg-type]
            f"{config.batch_size}; lower batch_size"
        )
    device = _resolve_device(config.device, local_rank, world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    created_group = _setup_distributed(device)
    amp = _amp_dtype(config.amp, device)
    torch.manual_seed(config.seed + rank)  # dropout differs per process, as it should
    start = time.perf_counter()

    targets = _targets(train_set)
    target_std = float(targets.std()) if config.standardize_target else 1.0
    if not np.isfinite(target_std) or target_std <= 0:
        raise ValueError(
            f"training targets have standard deviation {target_std}; they must vary "
            "(check the dataset) or pass standardize_target=False"
        )
    replaced = None  # after every other check (an overwrite removes the old file), before any step
    if config.checkpoint_dir and (rank == 0 or not config.overwrite):
        replaced = check_output_dir(config.checkpoint_dir, overwrite=config.overwrite)
    model.target_scale.fill_(target_std)
    model.to(device)
    net: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # each objective trains only some of the three heads: tell DDP not to wait for the others
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    # rank r of P takes samples r, r+P, ... of each epoch's permutation, batch_size/P at a
    # time: the union over ranks of step i is exactly one process's batch i.
    sampler = DistributedSampler(
        train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True
    )
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size // world,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    steps_per_epoch = len(loader)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total_steps = steps_per_epoch * config.epochs
    warmup = int(config.warmup_frac * total_steps)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "heads" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "heads" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_at(s, total_steps, warmup, config.min_lr_ratio)
    )
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None

    show = config.progress and rank == 0
    history: list[dict[str, float]] = []
    step_losses: list[float] = []
    best_val, best_epoch, best_state, bad_epochs = math.inf, -1, None, 0
    stopped_early, checkpoint_path, step = False, None, 0
    base_meta = {**(metadata or {}), "run_id": run_id}
    check_plain(base_meta, "metadata")

    epochs = _progress(range(config.epochs), enabled=show, desc="epochs", unit="epoch")
    for epoch in epochs:
        sampler.set_epoch(epoch)
        net.train()
        running = 0.0
        bar = _progress(
            _take(loader, steps_per_epoch), enabled=show, total=steps_per_epoch,
            desc=f"epoch {epoch + 1}", unit="batch", leave=False,
        )
        for batch in bar:
            x, y = _split(batch)
            try:
                with _autocast(amp, device):
                    out = net(x.to(device, non_blocking=True))
            except NonFiniteInputError as exc:
                raise _diverged(f"attention received non-finite values ({exc})", step, epoch, config,
                                checkpoint_path) from exc
            loss = compute_loss(out, y, config.objective, target_std)
            value = _global_mean(loss.detach(), world)  # every process sees the same value
            if not math.isfinite(value):
                raise _diverged(f"the {config.objective} loss is {value}", step, epoch, config, checkpoint_path)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step += 1
            step_losses.append(value)
            running += value
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        row = {"epoch": epoch + 1, "train_loss": running / steps_per_epoch, "lr": scheduler.get_last_lr()[0]}
        if val_set is not None and len(val_set) > 0:  # type: ignore[arg-type]
            row["val_loss"] = _evaluate(model, val_set, config, device, amp, target_std, rank, world)
            if not math.isfinite(row["val_loss"]):
                raise _diverged(f"the validation loss is {row['val_loss']}", step - 1, epoch, config,
                                checkpoint_path)
        history.append(row)
        epochs.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith("loss")})

        current = row.get("val_loss", row["train_loss"])
        if current < best_val:
            best_val, best_epoch, bad_epochs = current, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if config.checkpoint_dir and rank == 0:
                meta = {
                    **base_meta,
                    "train_config": config.to_dict(),
                    "history": [dict(r) for r in history],
                    "best_epoch": best_epoch,
                    "world_size": world,
                }
                checkpoint_path = str(save_checkpoint(model, config.checkpoint_dir, metadata=meta))
        else:
            bad_epochs += 1
            if config.patience is not None and bad_epochs >= config.patience:
                stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    if created_group:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val if val_set is not None and len(val_set) > 0 else None,  # type: ignore[arg-type]
        stopped_early=stopped_early,
        steps=step,
        seconds=time.perf_counter() - start,
        world_size=world,
        checkpoint=checkpoint_path,
        step_losses=step_losses,
        run_id=run_id,
        replaced=replaced,
    )


def _diverged(what: str, step: int, epoch: int, config: TrainConfig, checkpoint: str | None) -> TrainingDiverged:
    """The one message for a run that must stop: what went non-finite, where, what is kept, what to try."""
    kept = (f"the last good checkpoint is {checkpoint}" if checkpoint
            else "no checkpoint of this run was written")
    return TrainingDiverged(
        f"training diverged: {what} at step {step + 1} (epoch {epoch + 1}); the run is stopped and "
        f"{kept}. Lower the learning rate (lr={config.lr:g}), keep gradient clipping on, and check "
        "the inputs and targets for NaN or inf"
    )


def _take(loader: DataLoader, n: int) -> Iterator[Any]:
    for i, batch in enumerate(loader):
        if i >= n:
            return
        yield batch


def _global_mean(value: Tensor, world: int) -> float:
    """The loss of the global batch: the mean of the processes' batch means."""
    if world > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return float(value)


# --------------------------------------------------------------------------- inference


@torch.no_grad()
def predict(
    model: TrainableModel,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``model`` (any :class:`TrainableModel`) over ``dataset`` in order; returns NumPy arrays.

    Keys: ``regression`` (predicted target), ``direction`` (probability that the
    target is positive), ``allocation`` (position in [-1, 1]), and ``target``.
    Each has shape ``(len(dataset), n_outputs)``.
    """
    _check_trainable(model, "predict")
    dev = _resolve_device(device, 0, 1)
    model.to(dev).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("regression", "direction", "allocation", "target")}
    for batch in _progress(loader, enabled=progress, desc="predict", unit="batch"):
        x, y = _split(batch)
        out = model(x.to(dev))
        parts["regression"].append(out["regression"].float().cpu().numpy())
        parts["direction"].append(torch.sigmoid(out["direction"].float()).cpu().numpy())
        parts["allocation"].append(out["allocation"].float().cpu().numpy())
        parts["target"].append(np.asarray(y, dtype=np.float32).reshape(out["regression"].shape))
    if not parts["target"]:
        raise ValueError("predict got an empty dataset")
    return {k: np.concatenate(v) for k, v in parts.items()}
