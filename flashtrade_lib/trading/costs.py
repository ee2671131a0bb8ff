"""The book's trading-cost constants, in basis points of traded value (1 bp = 0.01 %).

Why a module with no imports: the chapters, the benchmarks, the backtest engine and the
command line (whose ``--help`` must not import pandas) all read the same numbers.
"""

from __future__ import annotations

__all__ = ["DEFAULT_COST_BPS", "MAX_COST_BPS"]

DEFAULT_COST_BPS = 10.0
"""The default cost per unit traded: a taker fee plus half a spread on a liquid crypto
perpetual. Chapter 8 and 9, ``benchmarks/lookback_sweep.py``, :func:`~flashtrade_lib.trading.backtest.backtest`,
:func:`~flashtrade_lib.trading.lookback.net_returns` and ``flashtrade backtest`` charge it unless told otherwise."""

MAX_COST_BPS = 1000.0
"""The largest cost per unit traded (fees + half spread + slippage) a backtest accepts: 10 %.
No venue charges that much; a larger number is a unit mistake, and would ruin any strategy."""
