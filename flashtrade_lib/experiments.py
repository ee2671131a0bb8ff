"""Does a longer context help? The lookback sweep of chapter 9, and what each lookback costs.

Why a function and not a notebook loop: the answer must not depend on details that
change with the lookback by accident. :func:`lookback_sweep` therefore evaluates
every lookback on the **same decision bars** (those that the longest window can
reach), the same walk-forward folds (purged, embargoed), the same seeds and the
same number of optimiser steps — only the window length changes. Each row of the
result is one ``(lookback, seed, fold)``: out-of-sample IC, R² and directional
accuracy of a freshly trained :class:`~flashtrade_lib.model.FlashAttentionTrader`,
and, when a ground-truth forecast is given (a synthetic market's
:meth:`~flashtrade_lib.data.SyntheticMarket.oracle_forecast`), the oracle's scores
on the same test bars.

The other side of the trade-off — time and peak memory of one training step of the
same model at each lookback, per attention backend — is the book's one step-cost
sweep, :func:`flashtrade_lib.step_cost.measure_train_context`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SweepModel", "lookback_sweep", "summarise"]


@dataclass(frozen=True)
class SweepModel:
    """Sizes of the model and the training run used at every lookback (CPU-sized defaults).

    The defaults (one layer, one head of width 16, 300 AdamW steps at ``lr=3e-3``)
    learn a 16-bar echo in a few seconds on a laptop CPU; longer lags need more
    steps and data (chapter 9 shows what happens when the budget is too small).
    """

    d_model: int = 16
    n_heads: int = 1
    n_layers: int = 1
    train_steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    rope_base: float = 10_000.0
    backend: str = "auto"
    device: str = "cpu"


def _skill_columns(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The sweep's skill columns ``ic, r2, hit`` from the book's one metric (:func:`~flashtrade_lib.metrics.forecast_skill`)."""
    from flashtrade_lib.metrics import forecast_skill

    s = forecast_skill(pred, target)
    return {"ic": s.ic, "r2": s.r2, "hit": s.hit_rate}


def _frame(x: Any, name: str) -> pd.DataFrame:
    if isinstance(x, pd.Series):
        return x.to_frame()
    if isinstance(x, pd.DataFrame):
        return x
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (time, columns), got shape {arr.shape}")
    return pd.DataFrame(arr)


def lookback_sweep(
    features: pd.DataFrame | np.ndarray,
    target: pd.Series | np.ndarray,
    lookbacks: Sequence[int],
    *,
    horizon: int = 1,
    seeds: Sequence[int] = (0,),
    n_folds: int = 2,
    test_size: int | None = None,
    train_size: int | None = None,
    model: SweepModel | None = None,
    oracle: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Train and score one model per ``(lookback, seed, fold)``; a tidy DataFrame, one row each.

    ``features`` ``(T, F)`` are the causal inputs of bar ``t`` (standardised per fold on
    its training bars only); ``target`` ``(T,)`` is the label of decision bar ``t``,
    spanning bars ``[t, t + horizon]`` (e.g. :func:`~flashtrade_lib.data.forward_log_return`).
    Decision bars are those every lookback can reach, so all lookbacks are scored on
    identical test bars; ``walk_forward_folds`` (purged, embargo = ``horizon``) cuts them.
    ``oracle`` (optional, ``(T,)``) is a ground-truth forecast scored on the same bars.

    Columns: ``lookback, seed, fold, n_train, n_test, ic, r2, hit`` (+ ``oracle_ic,
    oracle_r2, oracle_hit``), ``train_loss`` (last 20 steps' mean) and ``seconds``.
    Deterministic on CPU for given seeds.
    """
    import time

    import torch
    from torch.utils.data import Subset

    from flashtrade_lib.data import Standardizer, WindowDataset, walk_forward_folds
    from flashtrade_lib.model import FlashAttentionTrader, ModelConfig
    from flashtrade_lib.train import TrainConfig, predict, train

    spec = model or SweepModel()
    x = _frame(features, "features")
    y = np.array(target, dtype=np.float64).ravel()  # a writable copy (pandas hands out read-only views)
    if len(y) != len(x):
        raise ValueError(f"target has {len(y)} rows but features have {len(x)}; align them on the same bars")
    lbs = sorted({int(lb) for lb in lookbacks})
    if not lbs or lbs[0] < 1:
        raise ValueError(f"lookbacks must be positive whole numbers of bars, got {list(lookbacks)}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    orc = None
    if oracle is not None:
        orc = np.asarray(oracle, dtype=np.float64).ravel()
        if len(orc) != len(y):
            raise ValueError(f"oracle has {len(orc)} rows but target has {len(y)}")

    # decision bars that the *longest* window reaches with finite inputs and label
    raw = np.array(x.to_numpy(dtype=np.float64))
    probe = WindowDataset(raw, y, lbs[-1], horizon=horizon)
    times = np.asarray(probe.times)
    folds = walk_forward_folds(
        np.stack([times, times + horizon], axis=1), n_folds=n_folds, test_size=test_size,
        train_size=train_size, embargo=horizon,
    )
    rows: list[dict[str, Any]] = []
    for k, fold in enumerate(folds):
        last_train_bar = int(times[fold.train[-1]])
        scaled = np.array(Standardizer().fit(x.iloc[: last_train_bar + 1]).transform(x), dtype=np.float32)
        test_bars = times[fold.test]
        oracle_scores = {}
        if orc is not None:
            oracle_scores = {f"oracle_{m}": v for m, v in _skill_columns(orc[test_bars], y[test_bars]).items()}
        for lb in lbs:
            ds = WindowDataset(scaled, y.astype(np.float32), lb, horizon=horizon, times=times)
            for seed in seeds:
                start = time.perf_counter()
                torch.manual_seed(seed)
                net = FlashAttentionTrader(ModelConfig(
                    n_features=x.shape[1], d_model=spec.d_model, n_heads=spec.n_heads,
                    n_layers=spec.n_layers, backend=spec.backend, rope_base=spec.rope_base,
                ))
                steps_per_epoch = max(1, len(fold.train) // spec.batch_size)
                epochs = math.ceil(spec.train_steps / steps_per_epoch)
                result = train(net, (Subset(ds, fold.train), None), TrainConfig(
                    epochs=epochs, batch_size=spec.batch_size, lr=spec.lr, patience=None,
                    max_steps_per_epoch=min(steps_per_epoch, spec.train_steps), progress=False,
                    seed=seed, device=spec.device, warmup_frac=0.1,
                ))
                out = predict(net, Subset(ds, fold.test), batch_size=256, device=spec.device)
                rows.append({
                    "lookback": lb, "seed": int(seed), "fold": k,
                    "n_train": len(fold.train), "n_test": len(fold.test),
                    **_skill_columns(out["regression"][:, 0], out["target"][:, 0]),
                    **oracle_scores,
                    "train_loss": float(np.mean(result.step_losses[-20:])),
                    "seconds": time.perf_counter() - start,
                })
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame, metric: str = "ic", *, z: float = 1.96) -> pd.DataFrame:
    """Mean of ``metric`` per lookback across folds and seeds, with a normal 95 % interval.

    The interval is ``mean ± z · sd / sqrt(n)`` over the ``n`` (fold, seed) runs — it
    captures how much the answer moves between periods and initialisations, not the
    sampling noise inside one test period (runs of one fold share their test bars, so
    with few folds it is optimistic: read it as a floor on the uncertainty).
    """
    if metric not in results:
        raise ValueError(f"results has no column {metric!r}; columns: {list(results.columns)}")
    g = results.groupby("lookback")[metric]
    out = pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.size()})
    half = z * out["sd"].fillna(0.0) / np.sqrt(out["n"])
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out
