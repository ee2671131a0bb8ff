"""Chronological train/validation/test splits and walk-forward folds, purged and embargoed.

Why: with overlapping labels (the ``h``-bar forward return of bar ``t`` spans bars
``[t, t+h]``), the last training samples' labels reach into the validation period:
the model is trained on the answers it is then tested on. Purging (López de Prado,
*Advances in Financial Machine Learning*, ch. 7) drops every earlier-split sample
whose label span reaches the first sample of the next split; the embargo drops
``embargo`` more bars on top, because features are serially correlated too.

Samples are described by their label spans ``(start, end)`` in bar indices, sorted
by ``start`` — e.g. ``WindowDataset.label_intervals`` — and splits are arrays of
sample positions (use them with ``torch.utils.data.Subset``). After purging, for
any sample ``i`` in an earlier split and ``j`` in a later one,
``end_i + embargo < start_j``: no label interval is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "Split", "purge", "purged_splits", "walk_forward_folds"]


@dataclass(frozen=True)
class Split:
    """Positions of the samples in each split (chronological: train < val < test)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: train (and optional val) strictly before test, purged."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _intervals(label_intervals: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    iv = np.asarray(label_intervals, dtype=np.int64)
    if iv.ndim != 2 or iv.shape[1] != 2:
        raise ValueError(f"label_intervals must have shape (n, 2) = (start, end) per sample, got {iv.shape}")
    start, end = iv[:, 0], iv[:, 1]
    if (end < start).any():
        raise ValueError("every label interval needs end >= start")
    if (np.diff(start) < 0).any():
        raise ValueError("samples must be sorted by label start (chronological order)")
    return start, end


def _embargo(end: np.ndarray, start: np.ndarray, embargo: int | None) -> int:
    if embargo is None:  # default: one label length, i.e. a gap of at least 2h bars between splits
        return int((end - start).max()) if len(end) else 0
    if int(embargo) != embargo or embargo < 0:
        raise ValueError(f"embargo must be a whole number of bars >= 0, got {embargo}")
    return int(embargo)


def purge(earlier: np.ndarray, later_first_start: int, end: np.ndarray, embargo: int) -> np.ndarray:
    """Keep the samples of ``earlier`` whose label ends more than ``embargo`` bars before ``later_first_start``."""
    return earlier[end[earlier] + embargo < later_first_start]


def purged_splits(
    label_intervals: np.ndarray | Sequence,
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    embargo: int | None = None,
) -> Split:
    """Chronological split by sample count, then purge + embargo at both boundaries.

    ``embargo=None`` uses the longest label span (``h`` for ``h``-bar labels).
    """
    start, end = _intervals(label_intervals)
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    n = len(start)
    emb = _embargo(end, start, embargo)
    n_train, n_val = int(fractions[0] * n), int(fractions[1] * n)
    idx = np.arange(n)
    train, val, test = idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]
    if len(test) == 0 or len(train) == 0:
        raise ValueError(f"{n} samples are too few for fractions {fractions}")
    if len(val):
        val = purge(val, int(start[test[0]]), end, emb)
        train = purge(train, int(start[n_train]), end, emb)
    else:
        train = purge(train, int(start[test[0]]), end, emb)
    if len(train) == 0:
        raise ValueError("purging removed every training sample: use more data or a shorter horizon")
    return Split(train, val, test)


def walk_forward_folds(
    label_intervals: np.ndarray | Sequence,
    *,
    n_folds: int = 5,
    test_size: int | None = None,
    train_size: int | None = None,
    val_size: int = 0,
    embargo: int | None = None,
) -> list[Fold]:
    """Walk-forward evaluation: ``n_folds`` consecutive test blocks at the end of the data.

    Fold ``k`` trains on samples before its test block — all of them (expanding
    window) or the last ``train_size`` (rolling) — with the last ``val_size`` of those
    held out for validation; every boundary is purged and embargoed. ``test_size``
    defaults to ``n // (n_folds + 1)``, leaving at least one block for the first
    fold's training.
    """
    start, end = _intervals(label_intervals)
    n = len(start)
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    emb = _embargo(end, start, embargo)
    size = n // (n_folds + 1) if test_size is None else int(test_size)
    if size < 1 or size * n_folds >= n:
        raise ValueError(f"test_size={size} × n_folds={n_folds} leaves no training data among {n} samples")
    if val_size < 0 or (train_size is not None and train_size < 1):
        raise ValueError("val_size must be >= 0 and train_size >= 1 (or None for an expanding window)")
    folds = []
    first_test = n - size * n_folds
    for k in range(n_folds):
        lo = first_test + k * size
        test = np.arange(lo, lo + size)
        before = np.arange(0, lo)
        if train_size is not None:
            before = before[-(train_size + val_size) :]
        if val_size:
            val = purge(before[-val_size:], int(start[lo]), end, emb)
            train = purge(before[:-val_size], int(start[before[-val_size]]), end, emb)
        else:
            val = np.arange(0)
            train = purge(before, int(start[lo]), end, emb)
        if len(train) == 0:
            raise ValueError(f"fold {k}: purging left no training samples; use fewer folds or more data")
        folds.append(Fold(train, val, test))
    return folds
