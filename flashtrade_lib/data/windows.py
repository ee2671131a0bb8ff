"""A lazy windowed dataset: every sample is a *view* into one contiguous float32 array.

Why: the seed chapter built a ``(samples, 2048, features)`` float64 array up front
— 35k bars × 25 features at lookback 2048 is 35k × 2048 × 25 × 8 bytes ≈ 14 GB,
while the bars themselves are 3.5 MB in float32. Overlapping windows share almost
all their rows, so there is no reason to copy them: sample ``i`` is the slice
``x[t - lookback + 1 : t + 1]`` of one ``(time, features)`` tensor (a view, no copy),
and only the DataLoader's batch of ``B`` windows is ever materialised.

The same mechanism cuts windows of several tokens per bar: ``features`` of shape
``(time, tokens, F)`` — the assets of a panel, or the levels of an order book — give
windows ``(lookback, tokens, F)`` for the models of chapter 10.

Sample ``i`` is the decision bar ``t = times[i]``: the window holds bars up to and
including ``t`` (everything known when deciding), the target is the label of bar
``t`` (e.g. the forward ``h``-bar log return), whose span ``[t, t + horizon]`` is in
:attr:`WindowDataset.label_intervals` for purged splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["WindowDataset", "valid_decision_times"]


def valid_decision_times(finite_rows: np.ndarray, finite_targets: np.ndarray, lookback: int) -> np.ndarray:
    """Bars ``t`` whose whole window ``[t-lookback+1, t]`` is finite and whose target is finite.

    One cumulative sum over the rows that contain NaN answers it for every ``t`` at once.
    """
    bad = np.concatenate([[0], np.cumsum(~np.asarray(finite_rows, dtype=bool))])
    t = np.arange(lookback - 1, len(finite_rows))
    clean = bad[t + 1] - bad[t + 1 - lookback] == 0
    return t[clean & np.asarray(finite_targets, dtype=bool)[t]]


def _as_float32_tensor(a: Any, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(a), dtype=np.float32))
    t = t.to(torch.float32)
    return t.contiguous()


class WindowDataset(Dataset):
    """``(window, target)`` pairs cut lazily from ``features`` ``(T, F)`` (or ``(T, tokens, F)``) and ``targets`` ``(T,)``/``(T, k)``.

    ``lookback`` bars per window; ``horizon`` is the number of bars the target spans
    (for :attr:`label_intervals`). ``times`` restricts the decision bars (default: all
    bars whose window and target contain no NaN). Windows are views of one float32
    tensor (``features`` is copied once only if it is not already contiguous float32).
    """

    def __init__(
        self,
        features: Any,
        targets: Any,
        lookback: int,
        *,
        horizon: int,
        times: np.ndarray | None = None,
    ) -> None:
        self.x = _as_float32_tensor(features, "features")
        self.y = _as_float32_tensor(targets, "targets")
        if self.x.ndim not in (2, 3):
            raise ValueError(
                f"features must be 2-D (time, features) or 3-D (time, tokens, features), got shape "
                f"{tuple(self.x.shape)}"
            )
        if self.y.shape[0] != self.x.shape[0] or self.y.ndim not in (1, 2):
            raise ValueError(
                f"targets must have shape (T,) or (T, k) with T = {self.x.shape[0]} rows like the "
                f"features, got {tuple(self.y.shape)}"
            )
        if int(lookback) != lookback or not 1 <= lookback <= self.x.shape[0]:
            raise ValueError(f"lookback must be between 1 and the {self.x.shape[0]} bars, got {lookback}")
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a positive whole number of bars, got {horizon}")
        self.lookback, self.horizon = int(lookback), int(horizon)
        finite_rows = torch.isfinite(self.x).flatten(1).all(dim=1).cpu().numpy()
        yf = torch.isfinite(self.y)
        finite_y = (yf if yf.ndim == 1 else yf.all(dim=1)).cpu().numpy()
        valid = valid_decision_times(finite_rows, finite_y, self.lookback)
        if times is None:
            self.times = valid
        else:
            times = np.asarray(times, dtype=np.int64)
            bad = np.setdiff1d(times, valid)
            if len(bad):
                raise ValueError(
                    f"{len(bad)} requested decision bars (first: {bad[0]}) have a window shorter than "
                    f"lookback={self.lookback} or NaN in their window/target"
                )
            self.times = times
        if len(self.times) == 0:
            raise ValueError("no valid samples: every window or target contains NaN, or lookback is too long")

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = int(self.times[i])
        return self.x[t - self.lookback + 1 : t + 1], self.y[t]

    @property
    def label_intervals(self) -> np.ndarray:
        """``(n, 2)`` int array: the bars ``[t, t + horizon]`` each sample's label spans."""
        return np.stack([self.times, self.times + self.horizon], axis=1)

    def strided_view(self) -> torch.Tensor:
        """All ``T - lookback + 1`` windows as one ``(n, lookback, ...)`` tensor that *shares memory*
        with the features (``as_strided``): vectorised access without materialising anything.
        Row ``j`` is the window ending at bar ``j + lookback - 1``; indexing it with an array
        of rows (fancy indexing) copies, so keep batches small.
        """
        n = self.x.shape[0] - self.lookback + 1
        row = self.x.stride(0)
        return self.x.as_strided((n, self.lookback, *self.x.shape[1:]), (row, *self.x.stride()))

    def nbytes_if_materialised(self, dtype: torch.dtype = torch.float32) -> int:
        """What ``(samples, lookback, F)`` would cost as one array: the seed chapter's mistake."""
        itemsize = torch.empty((), dtype=dtype).element_size()
        return len(self) * self.lookback * self.x[0].numel() * itemsize
