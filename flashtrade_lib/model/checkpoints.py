"""Checkpoints: a trained model, its config and where its data came from, in one safe file.

A checkpoint holds plain types only — weights, the model config as a dict, metadata
(data range, feature names, run id, ...), versions — so it loads with
``torch.load(weights_only=True)``, which cannot execute code hidden in a file.
Writes are atomic (temp file + rename): a crash half-way leaves the previous file.

Reading is defensive, because a checkpoint is a file someone hands you:

* a truncated or corrupt file gives one line naming it (:class:`CheckpointError`);
* the saved config is validated — field types and sizes, and the parameter count
  it implies (counted on PyTorch's ``meta`` device, which allocates nothing) — *before*
  any model tensor is allocated, so a tiny crafted file cannot exhaust memory; the
  file's own tensors are memory-mapped, not read, until the config has passed.

:func:`check_output_dir` is the check to run before training into a directory: it
refuses (or, asked to, removes) a checkpoint an earlier run left there, so an older
run's file can never look like the new run's.

A checkpoint is also checked against the data it is applied to: its data metadata is
validated — types and sizes, so a small file cannot ask for a 10⁹-bar market — before
any data is built (:func:`check_data_request`), and the rebuilt data must be the data it
was trained on — source, symbol, features, lookback, horizon, split dates, data range and
fingerprint (:func:`check_data_matches`) — or it is refused with a one-line reason.
Temporary files of writers killed mid-save are removed by the next save
(:mod:`flashtrade_lib.atomic`).
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flashtrade_lib.atomic import atomic_path
from flashtrade_lib.errors import FlashTradeError
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig

__all__ = [
    "CHECKPOINT_NAME",
    "MAX_PARAMETERS",
    "Checkpoint",
    "CheckpointError",
    "MAX_DATA_VALUES",
    "OutputDirError",
    "check_data_matches",
    "check_data_request",
    "check_output_dir",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
#: The most parameters :func:`load_checkpoint` builds a model for (4 GB of float32 weights).
MAX_PARAMETERS = 1_000_000_000
_FORMAT = "flashtrade-checkpoint"
_FORMAT_VERSION = 1
#: The most bars × assets a checkpoint's metadata may ask to build (10⁷: ~80 MB a column).
MAX_DATA_VALUES = 10_000_000
#: What the data a checkpoint is applied to must share with the data it was trained on.
DATA_IDENTITY = ("source", "symbol", "features", "lookback", "horizon", "interval", "data_start",
                 "data_end", "splits", "data_fingerprint")
# Fields that may differ between a checkpoint and the model it is loaded into: they
# do not change the weights (the attention backend is a run-time choice).
_RUNTIME_FIELDS = ("backend", "dropout")


class CheckpointError(FlashTradeError, ValueError):
    """A checkpoint file that cannot be used: truncated, corrupt, foreign, or with an invalid config."""


class OutputDirError(FlashTradeError, ValueError):
    """An output directory that training must not write into as it is (see :func:`check_output_dir`)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its config, metadata and saved versions."""

    model: FlashAttentionTrader
    config: ModelConfig
    metadata: dict[str, Any]
    versions: dict[str, Any]
    path: Path

    @property
    def run_id(self) -> str | None:
        """The id of the training run that wrote it (``None`` for files saved outside :func:`~flashtrade_lib.train.train`)."""
        return self.metadata.get("run_id")


def _versions() -> dict[str, Any]:
    from flashtrade_lib import __version__
    from flashtrade_lib.measure.env import package_version

    return {
        "flashtrade_lib": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "pandas": package_version("pandas"),
        "python": platform.python_version(),
    }


_PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, where: str) -> None:
    """Checkpoint metadata must be plain Python so ``weights_only=True`` can load it."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}; use str keys")
            check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return
    raise ValueError(
        f"{where} is a {type(value).__name__}; checkpoint metadata may only hold str, int, "
        "float, bool, None, lists and dicts (convert timestamps with str(), arrays with .tolist())"
    )


def save_checkpoint(
    model: FlashAttentionTrader,
    directory: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    name: str = CHECKPOINT_NAME,
) -> Path:
    """Write ``directory/name`` atomically (temp file + rename); returns its path.

    A crash half-way leaves the previous checkpoint intact, never a truncated file.
    ``metadata`` — data range, feature names, target, anything the predictions
    depend on — must be plain types (checked, with a clear error).
    """
    if not isinstance(model, FlashAttentionTrader):
        raise TypeError(f"save_checkpoint needs a FlashAttentionTrader, got {type(model).__name__}")
    meta = dict(metadata or {})
    check_plain(meta, "metadata")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": meta,
        "versions": _versions(),
    }
    target = directory / name
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:  # also removes what killed writers left
        torch.save(payload, fh)
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The payload of ``path``, tensors memory-mapped (not read); one-line errors for bad files."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 — every way a file can be unreadable gets one line
        raise CheckpointError(
            f"corrupt or truncated checkpoint file {path} ({_first_line(exc)}); it cannot be "
            "loaded — retrain, or restore the file from where it was copied"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a flashtrade checkpoint (no 'format': {_FORMAT!r} entry)")
    if payload.get("format_version") != _FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {payload.get('format_version')}, this "
            f"library reads version {_FORMAT_VERSION}"
        )
    for key, kind in (("model_config", dict), ("state_dict", dict), ("metadata", dict), ("versions", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"checkpoint file {path} has no valid {key!r} entry; it is damaged")
    return payload


def _config(path: Path, saved: Mapping[str, Any], max_parameters: int) -> ModelConfig:
    """The saved config, validated, and within ``max_parameters`` — all without allocating a tensor."""
    try:
        config = ModelConfig.from_dict(saved)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint file {path} has an invalid model config: {_first_line(exc)}") from None
    with torch.device("meta"):  # shapes only: nothing is allocated
        n = FlashAttentionTrader(config).n_parameters()
    if n > max_parameters:
        raise CheckpointError(
            f"checkpoint file {path} describes a model of {n:,} parameters, more than the limit of "
            f"{max_parameters:,}; if you trust the file, pass max_parameters={n} to load_checkpoint"
        )
    return config


def load_checkpoint(
    path: str | os.PathLike[str],
    model: FlashAttentionTrader | None = None,
    *,
    backend: str | None = None,
    map_location: str | torch.device = "cpu",
    max_parameters: int = MAX_PARAMETERS,
) -> Checkpoint:
    """Load a checkpoint file (or ``directory/checkpoint.pt``) with ``weights_only=True``.

    With ``model`` given, its config must match the saved one (except the run-time
    fields ``backend`` and ``dropout``), otherwise a ``ValueError`` lists the
    differences; the weights are loaded into it. Without ``model`` one is built
    from the saved config, with ``backend`` overriding the saved backend. A damaged
    file, an invalid config or one above ``max_parameters`` raises :class:`CheckpointError`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first or pass the right path")
    payload = _read(path, map_location)
    saved = _config(path, payload["model_config"], max_parameters)
    if model is None:
        config = saved.replace(backend=backend) if backend else saved
        model = FlashAttentionTrader(config)
    else:
        ours, theirs = model.config.to_dict(), saved.to_dict()
        diff = {
            k: (theirs[k], ours[k]) for k in ours if k not in _RUNTIME_FIELDS and ours[k] != theirs[k]
        }
        if diff:
            detail = "; ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diff.items())
            raise ValueError(
                f"checkpoint {path} does not match the model config ({detail}); build the model "
                "from the checkpoint with load_checkpoint(path) instead"
            )
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint file {path}: its weights do not fit its own config ({_first_line(exc)}); it is damaged"
        ) from None
    model.eval()
    return Checkpoint(model, model.config, dict(payload["metadata"]), dict(payload["versions"]), path)


def check_output_dir(directory: str | os.PathLike[str], *, overwrite: bool = False) -> str | None:
    """Check, before training starts, that ``directory`` can receive this run's checkpoint.

    * a path that is a file, or a directory that cannot be created or written, is an
      :class:`OutputDirError` saying so (the OS's reason included);
    * a checkpoint an earlier run left there is **refused** (the error names its run id),
      unless ``overwrite=True``: then it is **removed now**, before training, so that if
      this run fails before its first checkpoint nothing older remains looking like its
      output. The return value says what was replaced (``None`` when nothing was).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputDirError(f"output directory {directory} is a file; choose a directory (it is created if missing)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputDirError(f"cannot write into output directory {directory}: {exc.strerror or exc}") from None
    existing = directory / CHECKPOINT_NAME
    if not existing.exists():
        return None
    try:
        run = _read(existing, "cpu")["metadata"].get("run_id") or "without a run id"
        what = f"a checkpoint of run {run}"
    except CheckpointError:
        what = "an unreadable checkpoint file"
    if not overwrite:
        raise OutputDirError(
            f"{existing} already holds {what} from an earlier training; refusing to mix runs. "
            "Choose another output directory, or overwrite it (overwrite=True; the CLI's --overwrite)"
        )
    existing.unlink()
    return f"removed {what} from {directory} before training (overwrite requested)"


def _bad(path: Any, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {what}; it cannot be applied to data — retrain, or restore the file")


def _count(meta: Mapping[str, Any], key: str, path: Any, *, optional: bool = False) -> int | None:
    value = meta.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DATA_VALUES:
        raise _bad(path, f"its {key} is {value!r}, not a whole number between 1 and {MAX_DATA_VALUES:,}")
    return value


def check_data_request(metadata: Mapping[str, Any], path: Any = "") -> None:
    """Check a checkpoint's data metadata *before* any data is built from it: names, types, sizes.

    A file is something someone hands you: its ``lookback``, ``horizon``, ``last_bars``,
    scaler and source options (a synthetic market's ``n_bars × n_assets`` at most
    :data:`MAX_DATA_VALUES`) must be sane, so a 22 KB file cannot make a 7 GiB market.
    """
    from flashtrade_lib.data.tasks import SOURCES

    source = metadata.get("source")
    spec = isinstance(source, str) and (":" in source or source.endswith((".csv", ".parquet")))  # cached or file bars
    if not spec and source not in SOURCES:
        raise _bad(path, f"its data source {source!r} is not one of {', '.join(SOURCES)} (or a bars spec)")
    if not isinstance(metadata.get("symbol"), str):
        raise _bad(path, f"its symbol {metadata.get('symbol')!r} is not a name")
    for key in ("lookback", "horizon"):
        _count(metadata, key, path)
    _count(metadata, "last_bars", path, optional=True)
    scaler = metadata.get("scaler")
    sizes = [len(scaler.get(k, ())) if isinstance(scaler, Mapping) and isinstance(scaler.get(k), list) else -1
             for k in ("mean", "std")]
    if (sizes[0] < 1 or sizes[0] != sizes[1] or sizes[0] > 100_000
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in scaler["mean"] + scaler["std"])
            or not all(v > 0 for v in scaler["std"])):
        raise _bad(path, "its scaler is not two equally long lists of finite numbers (mean, and std > 0)")
    options = metadata.get(source, {}) if isinstance(source, str) else {}
    if not isinstance(options, Mapping):
        raise _bad(path, f"its {source!r} options are {options!r}, not a mapping")
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, type(None))) or (
                isinstance(value, float) and not np.isfinite(value)):
            raise _bad(path, f"its {source} option {key}={value!r} is not a finite number")
    n_bars, n_assets = options.get("n_bars", 1), options.get("n_assets", 1)
    if any(isinstance(v, float) or v is None or v < 1 for v in (n_bars, n_assets)) or \
            n_bars * n_assets > MAX_DATA_VALUES:
        raise _bad(path, f"it asks for a {source} market of n_bars={n_bars!r} × n_assets={n_assets!r}; "
                         f"at most {MAX_DATA_VALUES:,} bars × assets, whole numbers >= 1")


def check_data_matches(checkpoint: Checkpoint, data_metadata: Mapping[str, Any]) -> None:
    """Refuse data that is not the data ``checkpoint`` was trained on, with a one-line reason.

    Compares every field of :data:`DATA_IDENTITY` the checkpoint records (a checkpoint
    saved before fingerprints existed is compared on the rest) and the model's feature count.
    """
    meta = checkpoint.metadata
    missing = [k for k in ("features", "data_start", "data_end", "splits") if k not in meta]
    if missing:
        raise _bad(checkpoint.path, f"it records no {', '.join(missing)}, so the data cannot be checked")
    for key in DATA_IDENTITY:
        if key in meta and meta[key] != data_metadata.get(key):
            where, ours, theirs = _first_difference(key, meta[key], data_metadata.get(key))
            raise CheckpointError(
                f"checkpoint {checkpoint.path} was trained on other data: its {where} is {ours!r} but the "
                f"data rebuilt from its metadata has {theirs!r} (edited metadata, or changed data); "
                "use the data it was trained on, or retrain"
            )
    if checkpoint.config.n_features != len(data_metadata["features"]):
        raise CheckpointError(
            f"checkpoint {checkpoint.path} has a model of {checkpoint.config.n_features} input features but "
            f"the data has {len(data_metadata['features'])}; use the data it was trained on, or retrain"
        )


def _first_difference(where: str, ours: Any, theirs: Any) -> tuple[str, Any, Any]:
    """The first place two metadata values differ: ``("splits.test[0]", a, b)``, so one line can name it."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping) and set(ours) == set(theirs):
        key = next(k for k in ours if ours[k] != theirs[k])
        return _first_difference(f"{where}.{key}", ours[key], theirs[key])
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        i = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
        return _first_difference(f"{where}[{i}]", ours[i], theirs[i])
    if isinstance(ours, list) and isinstance(theirs, list):
        return f"{where} count", len(ours), len(theirs)
    return where, ours, theirs
