"""Times as the data layer speaks them: integer milliseconds since 1970-01-01 UTC.

Why one helper: every venue (Bybit, Yahoo) and the on-disk bar cache take bounds as
ints, strings, datetimes or Timestamps, and all must read them the same way —
naive times and strings without a zone are UTC, as exchange timestamps are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_time_order", "fmt_ms", "to_ms"]


def to_ms(when: Any, name: str = "time") -> int:
    """Milliseconds since the epoch (UTC) from an int (already ms), str, datetime or Timestamp.

    Naive datetimes and strings without a zone are taken as UTC.
    """
    if isinstance(when, bool):
        raise TypeError(f"{name} must be a time, got a bool")
    if isinstance(when, (int, np.integer)):
        if when < 0:
            raise ValueError(f"{name}={when} is negative; pass milliseconds since 1970-01-01 UTC")
        return int(when)
    if isinstance(when, (str, dt.datetime, dt.date, pd.Timestamp, np.datetime64)):
        try:
            ts = pd.Timestamp(when)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"could not read {name}={when!r} as a time: {exc}") from exc
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)
    raise TypeError(
        f"{name} must be milliseconds (int), a date string, a datetime or a pandas Timestamp; "
        f"got {type(when).__name__}"
    )


def fmt_ms(ms: int) -> str:
    """A millisecond time as a readable UTC timestamp, for messages."""
    return str(pd.Timestamp(ms, unit="ms", tz="UTC"))


def check_time_order(index: pd.Index, what: str) -> None:
    """Refuse an index that is not strictly increasing: computing in file order would leak.

    A trailing window over unsorted rows mixes future bars into the past; a duplicated
    timestamp counts one bar twice. Both are refused, never silently sorted.
    """
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise ValueError(
            f"{what}: {int(index.duplicated().sum())} duplicated timestamps (first: {first}); drop them first"
        )
    if not index.is_monotonic_increasing:
        raise ValueError(f"{what}: timestamps are not sorted; call .sort_index() first")
