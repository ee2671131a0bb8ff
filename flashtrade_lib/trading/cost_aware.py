"""A cost-aware position rule: trade only when the forecast clears k × the cost of trading.

Why: trading the *sign* of an hourly forecast flips the book whenever the forecast wobbles
around zero, and a flip from long to short trades twice the equity, so it costs twice the cost per
unit traded (see :mod:`flashtrade_lib.trading.costs`) — far more than any one-bar forecast is worth.
That verdict is about the position rule, not the forecast. A fair test trades a forecast the
way a careful trader would: change the position only when the expected return is worth
the trade, and hold it otherwise. The one free parameter, ``k``, is chosen on validation
bars only, so the test bars judge a rule fixed before they were seen.

Steps, each fitted on the validation bars of a fold and then frozen for its test bars:

1. :func:`calibrate` turns any signal into a next-bar return forecast (a through-origin
   slope, never negative: a signal that did not predict on validation is not traded);
2. :func:`hold_until_confident` holds ±1 by the forecast's sign, changing only when
   ``|forecast| > k × cost``; ``k = 0`` is the sign rule;
3. :func:`fit_rule` picks ``k`` from a grid by the validation net Sharpe ratio.

:func:`breakeven_cost` then asks what cost a fixed set of trades can bear, with an interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flashtrade_lib.trading import stats
from flashtrade_lib.trading.backtest import backtest, market_returns
from flashtrade_lib.trading.metrics import sharpe

__all__ = ["CostAwareRule", "calibrate", "hold_until_confident", "fit_rule", "breakeven_cost"]


def calibrate(signal: pd.DataFrame, next_return: pd.DataFrame) -> np.ndarray:
    """Per-asset slope ``β = max(0, Σ s·y / Σ s²)``: the forecast of ``y = r_{t+1}`` is ``β s_t``.

    Through the origin, so a calibrated forecast has the signal's sign (no drift term sneaks
    in a long bias); clipped at 0, so a signal that was anti-predictive on these bars is not
    traded rather than silently flipped. Rows with a NaN label are ignored.
    """
    s = signal.to_numpy(dtype=float)
    y = next_return.reindex(index=signal.index, columns=signal.columns).to_numpy(dtype=float)
    ok = np.isfinite(s) & np.isfinite(y)
    sxy = np.where(ok, s * y, 0.0).sum(axis=0)
    sxx = np.where(ok, s * s, 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(sxx > 0, sxy / sxx, 0.0)
    return np.maximum(beta, 0.0)


def hold_until_confident(forecast: np.ndarray | pd.DataFrame, threshold: float) -> np.ndarray:
    """Target weights ±1 that change only when ``|forecast| > threshold``; flat until the first.

    Between confident forecasts the position is *held*, not closed: closing and reopening
    would pay the cost twice for no view. With ``threshold = 0`` this is the sign rule.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 (a return), got {threshold}")
    f = np.asarray(forecast, dtype=float)
    f = f[:, None] if f.ndim == 1 else f
    if not np.isfinite(f).all():
        raise ValueError("forecasts have NaN/inf values; use 0 for 'no forecast'")
    decided = np.where(f > threshold, 1.0, np.where(f < -threshold, -1.0, np.nan))
    return pd.DataFrame(decided).ffill().fillna(0.0).to_numpy()


@dataclass(frozen=True)
class CostAwareRule:
    """A rule fitted on validation bars: calibration slopes, the chosen k, what each k scored."""

    beta: np.ndarray  #: per-asset calibration slope (0: not traded)
    k: float  #: chosen multiple of the cost
    cost_bps: float
    validation_sharpe: pd.Series  #: net Sharpe on the validation bars, per k tried

    @property
    def threshold(self) -> float:
        """The return the forecast must exceed to trade: ``k × cost``."""
        return self.k * self.cost_bps / 1e4

    def weights(self, signal: pd.DataFrame) -> pd.DataFrame:
        """Target weights for ``signal`` (any bars, e.g. a test fold), with this frozen rule."""
        w = hold_until_confident(signal.to_numpy(dtype=float) * self.beta, self.threshold)
        return pd.DataFrame(w, index=signal.index, columns=signal.columns)


def fit_rule(
    signal: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    cost_bps: float,
    k_grid: Sequence[float],
) -> CostAwareRule:
    """Calibrate ``signal`` and choose ``k`` by net Sharpe on these (validation) bars only.

    ``prices`` are the validation bars' prices (same index and columns; they carry their
    clock, which annualises the Sharpe ratios). Ties go to the
    larger ``k``: with equal evidence, trade less.
    """
    if not len(k_grid) or min(k_grid) < 0:
        raise ValueError(f"k_grid must hold one or more multiples of the cost >= 0, got {list(k_grid)}")
    if not signal.index.equals(prices.index):
        raise ValueError("signal and prices must cover the same validation bars")
    nxt = market_returns(prices, market_is="prices").shift(-1)
    beta = calibrate(signal, nxt)
    scores = {}
    for k in sorted(float(v) for v in k_grid):
        rule = CostAwareRule(beta, k, float(cost_bps), pd.Series(dtype=float))
        res = backtest(prices, rule.weights(signal), market_is="prices", position="weights",
                       cost_bps=cost_bps)
        scores[k] = sharpe(res.returns, res.periods_per_year)  # never trading scores 0, not NaN
    table = pd.Series(scores, name="validation net Sharpe").rename_axis("k")
    best = max(table.index, key=lambda k: (round(table[k], 12), k))
    return CostAwareRule(beta, float(best), float(cost_bps), table)


def breakeven_cost(
    gross_returns: pd.Series | np.ndarray,
    turnover: pd.Series | np.ndarray,
    *,
    level: float = 0.95,
    reps: int = 1000,
    seed: int = 0,
    name: str = "break-even cost (bps)",
) -> stats.TestResult:
    """The cost per unit traded at which these trades' mean net return is 0, with an interval.

    With positions fixed, net = gross − c × turnover, so the break-even cost is
    ``c* = mean(gross) / mean(turnover)`` (bps). Its interval comes from a stationary block
    bootstrap of the (gross, turnover) rows, which keeps each trade with its P&L. A
    strategy's positions must not depend on the cost for this to hold — for the cost-aware
    rule, it is the break-even of the rule as fitted.
    """
    g = np.asarray(gross_returns, dtype=float)
    t = np.asarray(turnover, dtype=float)
    if g.shape != t.shape or g.ndim != 1:
        raise ValueError(f"gross returns and turnover must be 1-D and equally long, got {g.shape}, {t.shape}")
    if t.sum() <= 0:
        raise ValueError("the strategy never trades: its break-even cost is undefined")

    def ratio(rows: np.ndarray) -> float:
        traded = rows[:, 1].mean()
        return float(rows[:, 0].mean() / traded * 1e4) if traded > 0 else float("nan")

    ratio.__name__ = name
    return stats.block_bootstrap_ci(np.column_stack([g, t]), ratio, level=level, reps=reps, seed=seed, name=name)
