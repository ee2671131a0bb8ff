"""The trials this book runs: one ledger of every search it makes on the real market.

Why: the best of many noisy trials looks good by luck, so a multiple-testing statistic
(the Deflated Sharpe Ratio of chapter 8, SPA, a Bonferroni level) is only as honest as the
count of trials it is given. The book keeps searching after chapter 8 — chapter 9 sweeps
lookbacks, chapter 10 compares token layouts — on the same bundled Bitfinex hourly bars, so
chapter 8's own count understates what the book has tried. This module is the one place
that says what each chapter searches and how many **distinct configurations** (trials)
that is. The counts are derived from the grids below, which the chapters import (their
parameters cells read them), so a grid cannot change without its count changing too.

What counts as a trial: one configuration a reader could pick as "the strategy" — a
forecaster with a position rule, a value of ``k``, a lookback, a token layout. What does
not: seeds and walk-forward folds (replicas of one configuration, averaged or joined into one
result), the cost levels of a sensitivity curve (a condition of the market, not a choice),
and searches on *simulated* markets (chapter 9's planted echo, chapter 10's lead–lag market
and order book): their answer is known by construction and they pick nothing on the real
bars. Chapter 10's optional Yahoo equities run is another market and is not counted either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from flashtrade_lib.measure.bench import load_record
from flashtrade_lib.model.cross_asset import LAYOUTS

__all__ = [
    "FORECASTERS",
    "K_GRID",
    "FILL_LAG",
    "REAL_LOOKBACKS",
    "REAL_LOOKBACKS_GPU",
    "FULL_LENGTH_LOOKBACKS",
    "SWEEP_RECORD",
    "Search",
    "Ledger",
    "position_rules",
    "live_sweep_lookbacks",
    "recorded_sweep_lookbacks",
    "book_ledger",
]

# chapter 8 (08_backtesting): the strategies traded on the walk-forward test folds
FORECASTERS: tuple[str, ...] = ("momentum", "mean reversion", "ridge", "transformer")
K_GRID: tuple[float, ...] = (0, 0.1, 0.25, 0.5, 1, 2, 4)  #: cost-aware rule: trade when |forecast| > k × cost
FILL_LAG = 1  #: the latency check: fills this many bars later than t+1
# chapter 9 (09_long_context): the live real-data lookback sweep, and the recorded full-length one
REAL_LOOKBACKS: tuple[int, ...] = (8, 32, 96)
REAL_LOOKBACKS_GPU: tuple[int, ...] = (8, 32, 128, 512, 2048)
FULL_LENGTH_LOOKBACKS: tuple[int, ...] = (8, 32, 128, 512, 1024)  #: benchmarks/lookback_sweep.py's default
SWEEP_RECORD = "lookback_sweep_cpu"  #: the record that sweep writes
# chapter 10 (10_beyond_one_series): the token layouts, flashtrade_lib.model.cross_asset.LAYOUTS


def position_rules(fill_lag: int = FILL_LAG) -> tuple[str, ...]:
    """Chapter 8's position rules, each traded with every forecaster (their names in its tables)."""
    return ("sign rule", "cost-aware", f"cost-aware, +{fill_lag} bar")


def live_sweep_lookbacks(device: str = "cpu") -> tuple[int, ...]:
    """The lookbacks chapter 9's live sweep tries on this device (its parameters cell uses the same)."""
    return REAL_LOOKBACKS_GPU if device == "cuda" else REAL_LOOKBACKS


def recorded_sweep_lookbacks(record: Mapping[str, Any] | None = None) -> tuple[int, ...]:
    """Lookbacks of the recorded full-length sweep, read from its record; ``()`` when none is recorded.

    Why from the record: the script's default grid is only what it *would* try; the record
    says what it did (``--lookbacks`` may have changed it), and no record means no trials.
    """
    record = load_record(SWEEP_RECORD) if record is None else record
    if record is None:
        return ()
    return tuple(int(n) for n in record["settings"]["lookbacks"])


@dataclass(frozen=True)
class Search:
    """One search of one chapter: every combination of its axes' values is one trial."""

    chapter: int
    key: str  #: a short stable name, e.g. "ch09-live"
    what: str  #: what is searched, in words for the reader
    axes: Mapping[str, Sequence[Any]] = field(default_factory=dict)  #: no axes: a single trial
    replicas: str = ""  #: what repeats each trial without making it another (seeds, folds)

    @property
    def trials(self) -> int:
        """Distinct configurations: the product of each axis's number of *distinct* values."""
        return math.prod(len(dict.fromkeys(values)) for values in self.axes.values())

    @property
    def grid(self) -> str:
        """The count as a product of axis sizes, e.g. ``"4 forecasters × 7 k"``."""
        return " × ".join(f"{len(dict.fromkeys(v))} {name}" for name, v in self.axes.items()) or "1"


@dataclass(frozen=True)
class Ledger:
    """The book's searches in reading order, with their trial counts."""

    searches: tuple[Search, ...]

    def __post_init__(self) -> None:
        keys = [s.key for s in self.searches]
        if len(set(keys)) != len(keys):
            raise ValueError(f"search keys must be unique, got {keys}")

    @property
    def total(self) -> int:
        """Every trial the book runs on the real market."""
        return sum(s.trials for s in self.searches)

    def count(self, chapter: int) -> int:
        """The trials of one chapter."""
        return sum(s.trials for s in self.searches if s.chapter == chapter)

    def search(self, key: str) -> Search:
        """The search called ``key``."""
        for s in self.searches:
            if s.key == key:
                return s
        raise KeyError(f"no search {key!r} in the ledger; known: {[s.key for s in self.searches]}")

    def through(self, key: str) -> int:
        """Trials the book has run once the search ``key`` is done (reading order)."""
        self.search(key)  # a clear error for an unknown key
        total = 0
        for s in self.searches:
            total += s.trials
            if s.key == key:
                return total
        raise AssertionError("unreachable")

    def table(self) -> pd.DataFrame:
        """One row per search: chapter, what is searched, its grid, its trials and the running total."""
        rows = [{"chapter": s.chapter, "search": s.what, "grid": s.grid, "trials": s.trials}
                for s in self.searches]
        df = pd.DataFrame(rows, columns=["chapter", "search", "grid", "trials"])
        df["book so far"] = df["trials"].cumsum()
        return df

    def __str__(self) -> str:
        lines = ["chapter  trials  book so far  search (grid)"]
        so_far = 0
        for s in self.searches:
            so_far += s.trials
            grid = f" ({s.grid})" if s.axes and s.trials else ""
            lines.append(f"{s.chapter:7d}  {s.trials:6d}  {so_far:11d}  {s.what}{grid}")
        return "\n".join(lines)


def book_ledger(
    *,
    device: str = "cpu",
    forecasters: Sequence[str] = FORECASTERS,
    k_grid: Sequence[float] = K_GRID,
    fill_lag: int = FILL_LAG,
    live_lookbacks: Sequence[int] | None = None,
    recorded_lookbacks: Sequence[int] | None = None,
    layouts: Sequence[str] = tuple(LAYOUTS),
) -> Ledger:
    """The ledger of the book's searches on the bundled real bars, from the grids the chapters use.

    Every grid defaults to the one its chapter imports; a chapter passes its own values (as
    run, possibly changed by the reader in its parameters cell) so that its line is exact.
    ``live_lookbacks`` defaults to :func:`live_sweep_lookbacks` for ``device``,
    ``recorded_lookbacks`` to :func:`recorded_sweep_lookbacks` (``()`` when the sweep is not recorded).
    """
    live = live_sweep_lookbacks(device) if live_lookbacks is None else tuple(live_lookbacks)
    recorded = recorded_sweep_lookbacks() if recorded_lookbacks is None else tuple(recorded_lookbacks)
    folds = "its walk-forward folds are joined into one return series"
    return Ledger((
        Search(8, "ch08-seed", "section 3: the seed chapter's position rule on a 24-bar ridge forecast, backtested honestly"),
        Search(8, "ch08-buy-and-hold", "buy-and-hold", replicas=folds),
        Search(8, "ch08-rules", "forecaster × position rule on the walk-forward test folds",
               {"forecasters": tuple(forecasters), "rules": position_rules(fill_lag)}, replicas=folds),
        Search(8, "ch08-frontier", "forecaster × k of the cost-aware rule: the frontier",
               {"forecasters": tuple(forecasters), "k": tuple(k_grid)}, replicas=folds),
        Search(9, "ch09-live", "lookback of the transformer: live sweep on hourly BTC",
               {"lookbacks": live}, replicas="its seeds × folds are replicas of each lookback"),
        Search(9, "ch09-recorded",
               "lookback: recorded full-length sweep, on its own bars and budget" if recorded
               else "lookback: recorded full-length sweep (not recorded in this checkout)",
               {"lookbacks": recorded}, replicas="its seeds × folds are replicas of each lookback"),
        Search(10, "ch10-layouts", "token layout on five bundled coins", {"layouts": tuple(layouts)}),
    ))
