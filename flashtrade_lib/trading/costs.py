"""The book's trading costs: what a taker on a Bybit USDT perpetual pays, each part sourced.

A strategy that fills at the bar's close with a market order is a **taker**: it pays

1. the exchange's **taker fee** on the traded value (:data:`TAKER_FEE_BPS`, Bybit's fee schedule);
2. **half the bid–ask spread** (:data:`HALF_SPREAD_BPS`), estimated from the bundled bars
   themselves with Roll's (1984) estimator (:func:`roll_spread`);
3. **funding** while it holds the perpetual (:data:`FUNDING_PER_8H`, Bybit's documented
   baseline rate — the bundled data have no funding history): longs pay it, shorts receive it.

Items 1 and 2 are charged per unit traded (:data:`DEFAULT_COST_BPS`, the engine's ``cost_bps``);
item 3 per bar held (:func:`funding_rates`, the engine's ``funding=``). :data:`DEFAULT_COSTS`
holds all three. Why the constants carry no heavy imports: the command line's ``--help``
reads them without importing pandas; the estimator imports NumPy when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CostModel",
    "DEFAULT_COSTS",
    "DEFAULT_COST_BPS",
    "FUNDING_PER_8H",
    "HALF_SPREAD_BPS",
    "MAX_COST_BPS",
    "SPREAD_SOURCE",
    "TAKER_FEE_BPS",
    "funding_rates",
    "roll_spread",
]

TAKER_FEE_BPS = 5.5
"""Bybit's taker fee on USDT perpetuals for a non-VIP account: 0.055 % of the traded value
(maker 0.02 %). Source: Bybit, *Trading Fee Structure*,
https://www.bybit.com/en/help-center/article/Trading-Fee-Structure (the same 0.055 % / 0.02 % is
listed for Bybit by the loweef Crypto Futures Fee Index, checked 2026-10-16). A fill at the
close is a market order, hence the taker fee, not the maker's."""

FUNDING_PER_8H = 1e-4
"""Bybit's baseline funding rate per 8-hour interval: the interest-rate component, 0.01 %
(0.03 % a day over three intervals). Funding = premium index + clamp(interest − premium,
±0.05 %), so with no premium this is the rate; positive means longs pay shorts. Source: Bybit
help centre, *What is funding rate and predicted rate?*
(https://help.bybit.com/hc/en-us/articles/360039261114). The bundled bars carry no funding
history, so this is the baseline, not a measured rate."""

HALF_SPREAD_BPS = 12.2
"""Half of Roll's (1984) effective spread of the bundled BTC bars at their finest sampling
(Bitfinex 30-minute bars, Oct 2017 – Oct 2019): ``roll_spread`` of their log returns gives
24.3 bps (``tests/test_costs.py`` recomputes it from the data). An **upper bound** on the
bounce: any other negative lag-1 dependence (short-term reversal) inflates it — on hourly
bars the same estimator gives ~43 bps."""

SPREAD_SOURCE = "Roll (1984) on the bundled BTC 30-minute bars"
"""Where :data:`HALF_SPREAD_BPS` comes from, for printouts."""


@dataclass(frozen=True)
class CostModel:
    """A taker's costs: fee and half-spread per unit traded (bps), funding per 8 h held (a rate)."""

    taker_fee_bps: float = TAKER_FEE_BPS
    half_spread_bps: float = HALF_SPREAD_BPS
    funding_per_8h: float = FUNDING_PER_8H

    @property
    def per_trade_bps(self) -> float:
        """What one unit of traded value costs, in bps: taker fee + half-spread."""
        return self.taker_fee_bps + self.half_spread_bps

    def describe(self) -> str:
        """One line per component, with its unit and source."""
        return (f"taker fee     {self.taker_fee_bps:5.2f} bps per unit traded (Bybit fee schedule, USDT perpetual)\n"
                f"half-spread   {self.half_spread_bps:5.2f} bps per unit traded ({SPREAD_SOURCE})\n"
                f"= per trade   {self.per_trade_bps:5.2f} bps per unit traded\n"
                f"funding       {1e4 * self.funding_per_8h:5.2f} bps per 8 h held, longs pay "
                f"(Bybit's baseline rate; no funding history is bundled)")


DEFAULT_COSTS = CostModel()
"""The book's default cost model (chapters 8–9, ``flashtrade backtest``)."""

DEFAULT_COST_BPS = DEFAULT_COSTS.per_trade_bps
"""The default cost per unit traded, in bps: :data:`TAKER_FEE_BPS` + :data:`HALF_SPREAD_BPS`.
:func:`~flashtrade_lib.trading.backtest.backtest`, :func:`~flashtrade_lib.trading.lookback.net_returns`,
``flashtrade backtest`` and chapters 8–9 charge it unless told otherwise (funding comes separately,
through :func:`funding_rates`)."""

MAX_COST_BPS = 1000.0
"""The largest cost per unit traded (fees + half spread + slippage) a backtest accepts: 10 %.
No venue charges that much; a larger number is a unit mistake, and would ruin any strategy."""


def funding_rates(market: Any, per_8h: float = FUNDING_PER_8H) -> Any:
    """The per-bar funding rate for the engine's ``funding=``: ``per_8h`` accrued evenly over each bar.

    ``market`` is the prices (or returns) frame or series the backtest gets; its clock
    (:func:`~flashtrade_lib.data.calendar.clock_of`) gives the bar length. Bybit settles every
    8 hours; spreading the rate evenly charges a position the same on average, not at the
    settlement instants. Same shape and index as ``market``; positive = longs pay.
    """
    from flashtrade_lib.data.calendar import clock_of

    minutes = clock_of(market).interval.minutes
    if not minutes:
        raise ValueError("funding accrues by the hour: give bars of a fixed length (minutes, hours, days), "
                         "not calendar months")
    out = market.astype(float).copy()  # same index, columns and clock
    out.loc[:] = per_8h * minutes / (8 * 60)
    return out


def roll_spread(log_returns: Any, *, reps: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Roll's (1984) effective spread from price changes alone: ``2 sqrt(-cov(r_t, r_{t-1}))``.

    Why it works: a trade at the bid or the ask adds ``±s/2`` to the efficient price, so
    consecutive changes share that bounce with opposite signs and their covariance is
    ``-s²/4``. Returns ``(spread, low, high)`` as fractions of the price (× 1e4 for bps);
    the interval is a stationary block bootstrap of the covariance (percentile, mapped
    through the same formula). Where the covariance is not negative the estimator is
    undefined: a ``ValueError`` says so (a bound ``high`` of 0 would claim "no spread").
    The low end is 0 when the interval of the covariance reaches zero.
    """
    import numpy as np

    from flashtrade_lib.trading.stats import block_bootstrap_ci

    r = np.asarray(log_returns, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    if len(r) < 100:
        raise ValueError(f"Roll's estimator needs at least 100 returns, got {len(r)}")
    pairs = np.column_stack([r[1:], r[:-1]])

    def autocovariance(rows: np.ndarray) -> float:
        a, b = rows[:, 0] - rows[:, 0].mean(), rows[:, 1] - rows[:, 1].mean()
        return float(np.mean(a * b))

    ci = block_bootstrap_ci(pairs, autocovariance, reps=reps, seed=seed, level=level, name="lag-1 autocovariance")
    if ci.estimate >= 0:
        raise ValueError(f"the lag-1 autocovariance is {ci.estimate:.3g} >= 0: no bid–ask bounce is visible, "
                         "so Roll's spread is undefined for these returns (use a high–low estimator instead)")
    return (2 * np.sqrt(-ci.estimate), 2 * np.sqrt(max(-ci.high, 0.0)), 2 * np.sqrt(max(-ci.low, 0.0)))
