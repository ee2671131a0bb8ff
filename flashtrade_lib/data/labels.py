"""Targets: the forward ``h``-bar log return, with the bars each label spans made explicit.

Why explicit intervals: the label of decision bar ``t`` is ``log(close_{t+h} / close_t)``
— it is only known at bar ``t + h``. Two samples whose label spans overlap share
information, so a training sample whose span reaches into the test period leaks
the test answer. Purged splits (:mod:`flashtrade_lib.data.splits`) need each
label's span ``[t, t + h]`` (bar indices, inclusive), which :func:`label_intervals`
returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flashtrade_lib.data.times import check_time_order

__all__ = ["forward_log_return", "label_intervals"]


def forward_log_return(close: pd.Series | pd.DataFrame | np.ndarray, horizon: int = 1):
    """``log(close_{t+h}) - log(close_t)`` aligned to the decision bar ``t``; the last ``h`` rows are NaN.

    Log returns add over time (the ``h``-bar return is the sum of the one-bar ones),
    which is why labels, P&L and the oracle all use them. A Series/DataFrame must have
    sorted, unique timestamps: "h rows later" is "h bars later" only then.
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive whole number of bars, got {horizon}")
    horizon = int(horizon)
    if isinstance(close, (pd.Series, pd.DataFrame)):
        check_time_order(close.index, "close")
        if (close <= 0).to_numpy().any():
            raise ValueError("close prices must be positive to take logs")
        logp = np.log(close)
        return logp.shift(-horizon) - logp
    arr = np.asarray(close, dtype=np.float64)
    if (arr <= 0).any():
        raise ValueError("close prices must be positive to take logs")
    logp = np.log(arr)
    out = np.full_like(logp, np.nan)
    out[:-horizon] = logp[horizon:] - logp[:-horizon]
    return out


def label_intervals(times: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """``(start, end)`` bar indices of each label: decision bar ``t`` spans ``[t, t + horizon]``."""
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive whole number of bars, got {horizon}")
    t = np.asarray(times, dtype=np.int64)
    return t, t + int(horizon)
