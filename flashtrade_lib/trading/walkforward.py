"""Walk-forward evaluation: re-fit on each fold's past, trade its future, join the futures.

Why: one train/test split gives one number that depends on where the split fell.
Walk-forward re-fits the model on each training window and backtests only on the
bars after it, so every reported return is *out of sample* and the per-fold table
shows how stable the result is.

Folds are any iterable of ``(train, test)`` pairs — for example
``flashtrade_lib.data.walk_forward_folds`` (chapter 5) — where each side is a slice,
a boolean mask, integer positions or timestamps of the market index (objects with
``.train`` / ``.test`` attributes work too). Each test period must be contiguous,
start after its training period ends, and not overlap another test period.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flashtrade_lib.data.calendar import clock_of
from flashtrade_lib.trading import metrics as _metrics
from flashtrade_lib.trading.backtest import BacktestResult, backtest, market_returns

__all__ = ["FoldResult", "WalkForwardResult", "fold_positions", "walk_forward"]


def fold_positions(part: Any, index: pd.DatetimeIndex, what: str = "fold") -> np.ndarray:
    """Integer positions into ``index`` of one side of a fold, in increasing order."""
    if isinstance(part, slice):
        pos = np.arange(len(index))[part]
    elif isinstance(part, pd.Index):
        pos = index.get_indexer(part)
        if (pos < 0).any():
            raise ValueError(f"{what} has {int((pos < 0).sum())} timestamps not in the market index")
    else:
        arr = np.asarray(part)
        if arr.dtype == bool:
            if arr.shape != (len(index),):
                raise ValueError(f"{what} mask has length {arr.size}, the market has {len(index)} bars")
            pos = np.flatnonzero(arr)
        elif np.issubdtype(arr.dtype, np.integer):
            pos = arr.astype(np.int64)
            if pos.size and (pos.min() < 0 or pos.max() >= len(index)):
                raise ValueError(f"{what} has positions outside 0..{len(index) - 1}")
        elif np.issubdtype(arr.dtype, np.datetime64):
            return fold_positions(pd.DatetimeIndex(arr), index, what)
        else:
            raise TypeError(
                f"cannot read {what} of type {type(part).__name__}; use a slice, boolean mask, "
                "integer positions or a DatetimeIndex"
            )
    pos = np.unique(pos)
    if pos.size == 0:
        raise ValueError(f"{what} is empty")
    return pos


@dataclass
class FoldResult:
    """One fold: where it trained and traded, and its out-of-sample backtest slice."""

    fold: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    n_train: int
    returns: pd.Series
    turnover: pd.Series
    positions: pd.DataFrame
    signals: pd.DataFrame
    model: Any
    backtest: BacktestResult
    gross_returns: pd.Series | None = None


@dataclass
class WalkForwardResult:
    """All folds plus their joined out-of-sample returns, turnover and positions."""

    folds: list[FoldResult]
    returns: pd.Series
    turnover: pd.Series
    positions: pd.DataFrame
    signals: pd.DataFrame
    periods_per_year: float
    gross_returns: pd.Series | None = None  #: before costs: with ``turnover``, what any cost would leave
    fill_lag: int = 0

    @property
    def equity(self) -> pd.Series:
        """Growth of 1 over the joined out-of-sample bars."""
        return (1.0 + self.returns).cumprod().rename("equity")

    #: Metrics of the joined out-of-sample returns: the same definition as one backtest's.
    metrics = BacktestResult.metrics

    def fold_table(self) -> pd.DataFrame:
        """One row per fold: its period, training size and main metrics."""
        rows = []
        for f in self.folds:
            m = _metrics.summary(f.returns, self.periods_per_year, turnover=f.turnover)
            rows.append(
                {
                    "fold": f.fold,
                    "train_end": f.train_end,
                    "test_start": f.test_start,
                    "test_end": f.test_end,
                    "n_train": f.n_train,
                    "n_test": len(f.returns),
                    "total_return": m["total_return"],
                    "sharpe": m["sharpe"],
                    "max_drawdown": m["max_drawdown"],
                    "annual_turnover": m["annual_turnover"],
                }
            )
        return pd.DataFrame(rows).set_index("fold")


def _split(fold: Any) -> tuple[Any, Any]:
    if hasattr(fold, "train") and hasattr(fold, "test"):
        return fold.train, fold.test
    try:
        train, test = fold
    except (TypeError, ValueError) as exc:
        raise TypeError("each fold must be a (train, test) pair or have .train and .test") from exc
    return train, test


def walk_forward(
    folds: Iterable[Any],
    fit: Callable[[pd.DatetimeIndex], Any],
    signal: Callable[[Any, pd.DatetimeIndex], pd.DataFrame | pd.Series],
    *,
    market: pd.DataFrame | pd.Series,
    market_is: str,
    history: int = 0,
    fill_lag: int = 0,
    **backtest_kwargs: Any,
) -> WalkForwardResult:
    """Re-fit per fold and backtest each test period; join the out-of-sample results.

    ``fit(train_index)`` returns a model fitted on those bars only (its labels must
    not reach past the training period — purge them, e.g. ``ridge_signals(purge=...)``).
    ``signal(model, test_index)`` returns signals for exactly the test bars.
    Each fold is backtested on its test bars (starting flat; the weight decided at
    the last test bar is not traded), preceded by ``history`` bars with zero signal
    so that volatility targeting has a trailing window. ``fill_lag`` delays every fill by
    that many more bars (latency: a decision at the close of ``t`` is held from ``t + 1 +
    fill_lag``), within each fold. ``backtest_kwargs`` (costs, position rule, caps, funding
    rates on ``market``'s bars — each fold gets its own bars of them —, ...) are passed to
    :func:`~flashtrade_lib.trading.backtest.backtest`, identically for every fold — and for every strategy you compare. ``market`` carries its
    clock (:func:`flashtrade_lib.data.calendar.clock_of`), which annualises the metrics.
    """
    frame = market.to_frame() if isinstance(market, pd.Series) else market
    # validates the index and the data once, for a clear error before any fitting
    market_returns(frame, market_is=market_is)
    index = frame.index
    if history < 0:
        raise ValueError(f"history must be >= 0 bars, got {history}")
    if fill_lag < 0 or int(fill_lag) != fill_lag:
        raise ValueError(f"fill_lag must be a whole number of bars >= 0, got {fill_lag}")
    periods = clock_of(frame).periods_per_year
    results: list[FoldResult] = []
    used = np.zeros(len(index), dtype=bool)
    for k, fold in enumerate(folds):
        train_part, test_part = _split(fold)
        train = fold_positions(train_part, index, f"fold {k} train")
        test = fold_positions(test_part, index, f"fold {k} test")
        if train.max() >= test.min():
            raise ValueError(
                f"fold {k}: training ends at {index[train.max()]} but testing starts at "
                f"{index[test.min()]}; the test period must come after the training period"
            )
        if test[-1] - test[0] + 1 != test.size:
            raise ValueError(f"fold {k}: the test period must be contiguous bars")
        if used[test].any():
            raise ValueError(f"fold {k}: its test period overlaps an earlier fold's test period")
        used[test] = True
        test_index = index[test]
        model = fit(index[train])
        sig = signal(model, test_index)
        sig = sig.to_frame() if isinstance(sig, pd.Series) else sig
        if not sig.index.equals(test_index):
            raise ValueError(
                f"fold {k}: signal() returned {len(sig)} rows, expected exactly the "
                f"{len(test_index)} test bars ({test_index[0]} … {test_index[-1]})"
            )
        if isinstance(market, pd.Series) and frame.shape[1] == 1:
            sig.columns = frame.columns
        start = max(0, test[0] - history)
        window = frame.iloc[start : test[-1] + 1]
        full_sig = pd.DataFrame(0.0, index=window.index, columns=frame.columns)
        full_sig.loc[test_index] = sig.reindex(columns=frame.columns).to_numpy(dtype=float)
        if fill_lag:
            # a signal of bar t acts as if decided at t + fill_lag; the fold still starts flat
            full_sig = full_sig.shift(int(fill_lag)).fillna(0.0)
        kwargs = dict(backtest_kwargs)
        if isinstance(kwargs.get("funding"), (pd.DataFrame, pd.Series)):  # per-bar rates: this fold's bars
            kwargs["funding"] = kwargs["funding"].loc[window.index]
        res = backtest(window, full_sig, market_is=market_is, **kwargs)
        results.append(
            FoldResult(
                fold=k,
                train_start=index[train[0]],
                train_end=index[train[-1]],
                test_start=test_index[0],
                test_end=test_index[-1],
                n_train=int(train.size),
                returns=res.returns.loc[test_index],
                turnover=res.turnover.loc[test_index],
                positions=res.positions.loc[test_index],
                signals=full_sig.loc[test_index],
                model=model,
                backtest=res,
                gross_returns=res.gross_returns.loc[test_index],
            )
        )
    if not results:
        raise ValueError("no folds were given")
    results.sort(key=lambda f: f.test_start)
    return WalkForwardResult(
        folds=results,
        returns=pd.concat([f.returns for f in results]),
        turnover=pd.concat([f.turnover for f in results]),
        positions=pd.concat([f.positions for f in results]),
        signals=pd.concat([f.signals for f in results]),
        periods_per_year=float(periods),
        gross_returns=pd.concat([f.gross_returns for f in results]),
        fill_lag=int(fill_lag),
    )
