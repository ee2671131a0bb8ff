"""An honest, vectorised backtest: signals → target weights → t+1 positions → P&L net of costs.

The rules, one line each (``t`` indexes bars; bar ``t`` ends at its close):

1. **Inputs say what they are.** ``market_is`` must be ``"prices"``, ``"simple_returns"``
   or ``"log_returns"``; nothing is guessed. Log returns are converted with
   ``expm1`` — summing weighted log returns across assets is wrong.
2. **Signal → target weight** ``w_t`` (fraction of equity per asset) uses only the
   signal of bar ``t``: sign, tanh-scaled or given weights, optionally
   volatility-targeted with a trailing window that ends at ``t``, then clipped per
   asset (``max_weight``) and scaled down to a gross-leverage cap (``max_gross``).
3. **t+1 execution.** A weight decided at the close of bar ``t`` is held during bar
   ``t+1``: ``h_{t+1} = w_t`` and ``h_0 = 0`` (we start flat).
4. **P&L from one-bar simple returns**, never from overlapping ``h``-bar targets:
   ``gross_t = sum_a h_{t,a} r_{t,a}``.
5. **Costs in bps of traded value.** During bar ``t`` the weights drift to
   ``h_{t,a} (1 + r_{t,a}) / (1 + gross_t)``; rebalancing back to ``h_{t+1}`` trades
   ``|h_{t+1,a} - drifted_{t,a}|`` of equity (``account_drift=False`` uses
   ``|h_{t+1,a} - h_{t,a}|`` instead). The cost of that trade,
   ``(cost_bps + spread_bps / 2 + slippage_bps) / 1e4`` per unit traded, is charged in
   bar ``t+1``, the first bar the new weight is held.
6. **Funding** (perpetual futures): a per-bar rate ``f_{t,a}`` (positive = longs pay)
   costs ``h_{t,a} f_{t,a}`` in bar ``t``.
7. ``net_t = gross_t - costs_t - funding_t`` and ``equity_t = capital * prod(1 + net)``.

How it is fast: every rule is a whole-array NumPy operation on ``(assets, bars)``
arrays (each asset's bars contiguous, as a float DataFrame already stores them),
applied to blocks of 8,192 bars at a time so the work arrays stay in the CPU cache;
held weights are a shifted *view* of the targets (no copy); the two steps that look across bars (the
trailing volatility window, a callable position rule) run on the full arrays first.

:func:`backtest_loop` implements the same rules one bar at a time in plain Python:
the tests and ``benchmarks/backtest.py`` check the two agree. The seed chapter's
mistakes, reproduced **on purpose** for chapter 8, live apart in
:mod:`flashtrade_lib.trading.seed_mistakes`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from flashtrade_lib.data.calendar import clock_of
from flashtrade_lib.errors import FlashTradeError
from flashtrade_lib.trading import metrics as _metrics
from flashtrade_lib.trading.costs import DEFAULT_COST_BPS, MAX_COST_BPS

__all__ = [
    "BacktestResult",
    "DEFAULT_COST_BPS",
    "MAX_COST_BPS",
    "RuinError",
    "backtest",
    "backtest_loop",
    "market_returns",
    "sign_weights",
    "tanh_weights",
    "vol_target_scale",
    "apply_caps",
    "align_signals",
    "time_frame",
]

MarketKind = Literal["prices", "simple_returns", "log_returns"]
PositionRule = Literal["sign", "tanh", "weights"]
CostArg = float | Mapping[str, float] | pd.Series


# --------------------------------------------------------------------------- validation


def _as_frame(x: pd.DataFrame | pd.Series, what: str) -> pd.DataFrame:
    if isinstance(x, pd.Series):
        x = x.to_frame(name=x.name if x.name is not None else "asset")
    if not isinstance(x, pd.DataFrame):
        raise TypeError(
            f"{what} must be a pandas DataFrame (one column per asset) or Series indexed "
            f"by time, got {type(x).__name__}"
        )
    return x


def _check_time_index(index: pd.Index, what: str) -> None:
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            f"{what} must be indexed by time (a DatetimeIndex), got {type(index).__name__}; "
            "set the timestamp column as the index, e.g. df.set_index('timestamp')"
        )
    if index.hasnans:
        raise ValueError(f"{what} has missing (NaT) timestamps; drop those rows first")
    if not index.is_unique:
        dup = index[index.duplicated()][:3].tolist()
        raise ValueError(
            f"{what} has duplicated timestamps (e.g. {dup}); drop or aggregate them first"
        )
    if not index.is_monotonic_increasing:
        raise ValueError(f"{what} time index is not increasing; call .sort_index() first")


def _numeric(frame: pd.DataFrame, what: str) -> np.ndarray:
    try:
        arr = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric: {exc}") from exc
    return arr


def _all_finite(arr: np.ndarray) -> bool:
    """One pass, no temporary: a sum is finite iff every term is (overflow aside)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def _where_nan(arr: np.ndarray, index: pd.Index, columns: pd.Index) -> str:
    t, a = np.argwhere(np.isnan(arr))[0]
    return f"first at {index[t]} in column {columns[a]!r}, {int(np.isnan(arr).sum())} in all"


def market_returns(
    market: pd.DataFrame | pd.Series, *, market_is: MarketKind
) -> pd.DataFrame:
    """Validated one-bar simple returns ``r_t`` (the return of bar ``t``) from ``market``.

    With ``market_is="prices"`` the first bar has no return: it is set to 0 (no
    position is held in bar 0 anyway, so nothing is earned or lost there).
    """
    frame = time_frame(market, "market data")
    if len(frame) < 2:
        raise ValueError(f"market data needs at least 2 bars, got {len(frame)}")
    values = _numeric(frame, "market data")
    finite = _all_finite(values)
    if not finite and np.isnan(values).any():
        raise ValueError(
            "market data has NaN values (" + _where_nan(values, frame.index, frame.columns)
            + "); fill or drop gaps explicitly before backtesting — a silent fill would "
            "invent prices"
        )
    if market_is == "prices":
        if values.min() <= 0:
            raise ValueError("prices must be positive; did you pass returns? use market_is=")
        r = np.empty_like(values)
        r[0] = 0.0
        np.divide(values[1:], values[:-1], out=r[1:])
        r[1:] -= 1.0
    elif market_is == "simple_returns":
        if values.min() <= -1:
            raise ValueError("simple returns must be > -1 (a price cannot go below zero)")
        if finite and (frame.dtypes == np.float64).all():
            # a copy-on-write view: the caller's frame is never aliased nor copied
            return frame.copy(deep=False)
        r = values.copy()
    elif market_is == "log_returns":
        r = np.expm1(values)
    else:
        raise ValueError(
            f"market_is must be 'prices', 'simple_returns' or 'log_returns', got {market_is!r}"
        )
    if not _all_finite(r):
        raise ValueError("market data gives non-finite returns (inf); check for zeros or infs")
    return pd.DataFrame(r, index=frame.index, columns=frame.columns, copy=False)


def time_frame(x: pd.DataFrame | pd.Series, what: str) -> pd.DataFrame:
    """``x`` as a DataFrame on a valid time index (a DatetimeIndex, increasing, no duplicates or
    NaT), or a clear error naming ``what`` — the check every input of a backtest passes."""
    frame = _as_frame(x, what)
    _check_time_index(frame.index, what)
    return frame


def align_signals(
    signals: pd.DataFrame | pd.Series, returns: pd.DataFrame, what: str = "signals"
) -> np.ndarray:
    """``signals`` as a float array on exactly the bars and assets of ``returns`` (a clear error
    otherwise: a different index, missing columns, NaN)."""
    sig = _as_frame(signals, what)
    if isinstance(signals, pd.Series) and returns.shape[1] == 1:
        sig.columns = returns.columns
    _check_time_index(sig.index, what)
    if not sig.index.equals(returns.index):
        missing = returns.index.difference(sig.index)
        extra = sig.index.difference(returns.index)
        raise ValueError(
            f"{what} and market data have different time indexes ({len(missing)} market bars "
            f"without a signal, {len(extra)} signal bars without market data); align them "
            f"explicitly, e.g. {what}.reindex(market.index) and decide how to fill"
        )
    if not sig.columns.equals(returns.columns):
        raise ValueError(
            f"{what} columns {list(sig.columns)} do not match the market columns "
            f"{list(returns.columns)}; select or reorder them to match"
        )
    arr = _numeric(sig, what)
    if not _all_finite(arr):
        if np.isnan(arr).any():
            raise ValueError(
                f"{what} have NaN values (" + _where_nan(arr, sig.index, sig.columns)
                + "); decide what a missing signal means, e.g. .fillna(0) for 'stay flat'"
            )
        raise ValueError(f"{what} have infinite values")
    return arr


def _per_asset(value: CostArg, columns: pd.Index, what: str) -> np.ndarray:
    if isinstance(value, (int, float, np.floating, np.integer)):
        out = np.full(len(columns), float(value))
    else:
        series = pd.Series(value, dtype=float)
        missing = [c for c in columns if c not in series.index]
        if missing:
            raise ValueError(f"{what} has no value for assets {missing}")
        out = series.reindex(columns).to_numpy()
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError(f"{what} must be finite and >= 0 bps, got {out}")
    return out


# --------------------------------------------------------------- signal → target weight


def _sum_assets(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Sum over assets of an ``(assets, bars)`` array, one contiguous row at a time:
    faster than ``x.sum(axis=0)`` for a few assets, and the same left-to-right order
    as the per-bar loop."""
    if x.shape[0] == 1:
        if out is None:
            return x[0].copy()
        out[:] = x[0]
        return out
    out = np.add(x[0], x[1], out=out)
    for a in range(2, x.shape[0]):
        out += x[a]
    return out


def sign_weights(
    signals: np.ndarray, threshold: float = 0.0, out: np.ndarray | None = None
) -> np.ndarray:
    """+1 / -1 / 0: long when the signal is above ``threshold``, short below ``-threshold``."""
    return np.subtract(signals > threshold, signals < -threshold, out=out, dtype=float)


def tanh_weights(
    signals: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None
) -> np.ndarray:
    """``tanh(scale * signal)``: proportional for small signals, bounded by ±1."""
    out = np.multiply(signals, scale, out=out)
    return np.tanh(out, out=out)


def vol_target_scale(
    returns: np.ndarray, *, target_vol: float, periods: float, lookback: int
) -> np.ndarray:
    """Per bar and asset, the factor that scales a unit weight to ``target_vol`` a year.

    The volatility estimate at bar ``t`` is the sample std (ddof=1) of that asset's
    last ``lookback`` one-bar returns *ending at t* — known at the close of ``t``,
    when the weight is decided. Before ``lookback`` bars exist, and where the
    estimate is 0, the factor is 0 (no estimate, no position).
    """
    if lookback < 2:
        raise ValueError(f"vol_lookback must be >= 2 bars, got {lookback}")
    if target_vol <= 0:
        raise ValueError(f"target_vol must be a positive annual volatility, got {target_vol}")
    sigma = (
        pd.DataFrame(returns).rolling(lookback, min_periods=lookback).std(ddof=1).to_numpy()
    )
    per_bar = target_vol / math.sqrt(periods)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(sigma) & (sigma > 0), per_bar / sigma, 0.0)


def apply_caps(
    weights: np.ndarray,
    *,
    max_weight: float | None = None,
    max_gross: float | None = None,
) -> np.ndarray:
    """Clip each weight to ``±max_weight``, then scale rows with ``sum|w| > max_gross`` down.

    ``weights`` is ``(bars, assets)``; works in place (and returns it).
    """
    _check_caps(max_weight, max_gross)
    _cap_assets_by_bars(weights.T, max_weight, max_gross, np.empty(weights.shape[::-1]))
    return weights


def _check_caps(max_weight: float | None, max_gross: float | None) -> None:
    for name, cap in (("max_weight", max_weight), ("max_gross", max_gross)):
        if cap is not None and not cap > 0:
            raise ValueError(f"{name} must be > 0, got {cap}")


def _check_rule(scale: float, threshold: float) -> None:
    """A negative scale would invert every tanh position (and NaN void them): refused, never run."""
    for name, value, low in (("scale", scale, "> 0"), ("threshold", threshold, ">= 0")):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and (value > 0 if low == "> 0" else value >= 0)
        if not ok:
            raise ValueError(f"{name} must be a finite number {low}, got {value!r}"
                             + (" (a negative scale inverts every position)" if name == "scale" else ""))


def _cap_assets_by_bars(
    w: np.ndarray, max_weight: float | None, max_gross: float | None, scratch: np.ndarray
) -> None:
    """:func:`apply_caps` in place on an ``(assets, bars)`` array; ``scratch`` like ``w``."""
    if max_weight is not None:
        np.clip(w, -max_weight, max_weight, out=w)
    if max_gross is not None:
        gross = _sum_assets(np.abs(w, out=scratch))
        over = gross > max_gross
        if over.any():
            factor = np.ones_like(gross)
            np.divide(max_gross, gross, out=factor, where=over)
            w *= factor


def _map_signals(
    signals: np.ndarray, position: str, threshold: float, scale: float, out: np.ndarray
) -> np.ndarray:
    if position == "sign":
        return sign_weights(signals, threshold, out=out)
    if position == "tanh":
        return tanh_weights(signals, scale, out=out)
    if position == "weights":
        np.copyto(out, signals)  # never alias the caller's frame
        return out
    raise ValueError(f"position must be 'sign', 'tanh', 'weights' or a callable, got {position!r}")


def _call_position(position: Callable[[np.ndarray], np.ndarray], signals: np.ndarray) -> np.ndarray:
    w = np.array(position(signals), dtype=float)  # a copy: never alias the caller's data
    if w.shape != signals.shape:
        raise ValueError(f"position callable returned shape {w.shape}, expected {signals.shape}")
    if not _all_finite(w):
        raise ValueError("position callable returned NaN or infinite weights")
    return w


# ------------------------------------------------------------------------------ result


@dataclass
class BacktestResult:
    """Everything a backtest produced, indexed like the market data.

    ``returns`` are net simple returns per bar; ``positions`` the weights *held*
    during each bar (``h_t``); ``targets`` the weights *decided* at each bar
    (``w_t = h_{t+1}``); ``turnover`` the fraction of equity traded at the start
    of each bar. Per-asset detail is derived on demand: ``asset_pnl`` (each asset's
    contribution to ``returns``; its rows sum to ``returns``) and ``trades``.
    """

    returns: pd.Series
    gross_returns: pd.Series
    costs: pd.Series
    funding: pd.Series
    turnover: pd.Series
    equity: pd.Series
    positions: pd.DataFrame
    targets: pd.DataFrame
    asset_returns: pd.DataFrame
    periods_per_year: float
    settings: dict = field(default_factory=dict)
    funding_rates: pd.DataFrame | None = None

    def metrics(self, rf: float = 0.0) -> dict[str, float]:
        """:func:`flashtrade_lib.trading.metrics.summary` of the net returns, turnover and exposure."""
        return _metrics.summary(
            self.returns,
            self.periods_per_year,
            turnover=self.turnover,
            positions=self.positions,
            rf=rf,
        )

    @cached_property
    def _weights_before_rebalance(self) -> np.ndarray:
        """Rule 5: the weights of bar t-1 drifted with its returns (0 before bar 0)."""
        h = self.positions.to_numpy()
        before = np.zeros_like(h)
        if self.settings.get("account_drift", True):
            r = self.asset_returns.to_numpy()
            growth = 1.0 + self.gross_returns.to_numpy()[:-1, None]
            before[1:] = h[:-1] * (1.0 + r[:-1]) / growth
        else:
            before[1:] = h[:-1]
        return before

    @cached_property
    def asset_pnl(self) -> pd.DataFrame:
        """Each asset's net contribution per bar: ``h r - |trade| bps - h f``."""
        h = self.positions.to_numpy()
        bps = np.asarray(self.settings["bps_per_asset"]) / 1e4
        pnl = h * self.asset_returns.to_numpy()
        pnl -= np.abs(h - self._weights_before_rebalance) * bps
        if self.funding_rates is not None:
            pnl -= h * self.funding_rates.to_numpy()
        return pd.DataFrame(pnl, index=self.positions.index, columns=self.positions.columns)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per (bar, asset) rebalance: decided at the close of ``decided``,
        executed at the start of ``held_from``; weights before/after, size and cost."""
        h = self.positions.to_numpy()
        before = self._weights_before_rebalance
        size = h - before
        t, a = np.nonzero(np.abs(size) > 1e-12)
        bps = np.asarray(self.settings["bps_per_asset"])
        idx = self.positions.index
        return pd.DataFrame(
            {
                "decided": idx[np.maximum(t - 1, 0)],
                "held_from": idx[t],
                "asset": self.positions.columns[a],
                "weight_before": before[t, a],
                "weight_after": h[t, a],
                "size": size[t, a],
                "cost": np.abs(size[t, a]) * bps[a] / 1e4,
            }
        )


# ---------------------------------------------------------------------- the backtest


class RuinError(FlashTradeError, ValueError):
    """Equity reached zero or below: the account is wiped out, and no later bar can be trusted."""


def _check_ruin(net: np.ndarray, gross: np.ndarray, costs: np.ndarray, funding: np.ndarray,
                index: pd.Index) -> None:
    """Refuse a result whose equity reached ``<= 0`` on any bar, the last included.

    Equity is ``capital * prod(1 + net)``: it is ``<= 0`` from the first bar with
    ``net <= -1`` (costs and funding counted) — or ``gross <= -1``, where the
    positions themselves lost everything within the bar.
    """
    if len(net) == 0 or (net.min() > -1.0 and gross.min() > -1.0):
        return
    t = int(np.flatnonzero((net <= -1.0) | (gross <= -1.0))[0])
    raise RuinError(
        f"the portfolio lost 100% or more in one bar (bar {t}, {index[t]}: gross {gross[t]:+.1%}, "
        f"costs {costs[t]:.1%}, funding {funding[t]:+.1%}); equity cannot go below zero — reduce "
        "leverage (max_gross, max_weight) or check the returns and costs"
    )



_BLOCK = 8192  # bars per block: a block's work arrays stay in the CPU cache


def _simulate_block(
    lo: int,
    hi: int,
    r: np.ndarray,
    h: np.ndarray,
    bps: np.ndarray,
    funding: np.ndarray | None,
    account_drift: bool,
    work: np.ndarray,
    out: dict[str, np.ndarray],
) -> None:
    """Rules 3-7 for bars ``lo:hi``, written into the full-length arrays in ``out``.

    All 2-D arrays are ``(assets, bars)``: each asset's bars are contiguous.
    ``work`` holds two ``(assets, block)`` scratch arrays.
    """
    hb, rb = h[:, lo:hi], r[:, lo:hi]
    contribution, pre = work[0, :, : hi - lo], work[1, :, : hi - lo]
    gross = _sum_assets(np.multiply(hb, rb, out=contribution), out=out["gross"][lo:hi])
    # weights just before the rebalance at the start of bar t: those of bar t-1,
    # drifted with its returns, h (1 + r) / (1 + gross); nothing before bar 0
    first = 1 if lo == 0 else 0
    prev = slice(lo - 1 + first, hi - 1)
    if first:
        pre[:, 0] = 0.0
    if account_drift:
        growth = 1.0 + out["gross"][prev]
        if growth.size and growth.min() <= 0:  # ruin: reported by _check_ruin after the loop
            growth[growth <= 0] = 1.0
        np.add(r[:, prev], 1.0, out=pre[:, first:])
        pre[:, first:] *= h[:, prev]
        pre[:, first:] /= growth
    else:
        pre[:, first:] = h[:, prev]
    trade = np.subtract(hb, pre, out=pre)
    np.abs(trade, out=trade)
    turnover = _sum_assets(trade, out=out["turnover"][lo:hi])
    costs = out["costs"][lo:hi]
    if (bps == bps[0]).all():  # one cost for all assets: turnover × bps
        np.multiply(turnover, bps[0] / 1e4, out=costs)
    else:
        trade *= (bps / 1e4)[:, None]
        _sum_assets(trade, out=costs)
    net = np.subtract(gross, costs, out=out["net"][lo:hi])
    if funding is not None:
        fund = np.multiply(hb, funding[:, lo:hi], out=contribution)
        net -= _sum_assets(fund, out=out["funding"][lo:hi])


def backtest(
    market: pd.DataFrame | pd.Series,
    signals: pd.DataFrame | pd.Series,
    *,
    market_is: MarketKind,
    position: PositionRule | Callable[[np.ndarray], np.ndarray] = "sign",
    cost_bps: CostArg = DEFAULT_COST_BPS,
    spread_bps: CostArg = 0.0,
    slippage_bps: CostArg = 0.0,
    funding: pd.DataFrame | pd.Series | None = None,
    threshold: float = 0.0,
    scale: float = 1.0,
    target_vol: float | None = None,
    vol_lookback: str | pd.Timedelta = "30D",
    max_weight: float | None = None,
    max_gross: float | None = None,
    account_drift: bool = True,
    capital: float = 1.0,
) -> BacktestResult:
    """Backtest ``signals`` on ``market`` with t+1 execution and costs (see module docstring).

    ``market``: prices, simple returns or log returns per bar — say which with
    ``market_is``. ``signals``: same index and columns; the value at bar ``t`` may use
    information up to the close of ``t``. ``position`` maps signals to target weights:
    ``"sign"`` (±1, 0 within ``threshold``), ``"tanh"`` (``tanh(scale * s)``),
    ``"weights"`` (signals already are weights) or a callable on the array.
    ``target_vol`` (annual) turns on volatility targeting; ``max_weight`` and
    ``max_gross`` cap per-asset and gross leverage. Costs are bps of traded value:
    fees ``cost_bps`` + half the quoted ``spread_bps`` + ``slippage_bps`` (each a
    number or a per-asset mapping). ``funding``: per-bar funding rates (positive =
    longs pay). ``vol_lookback`` is the volatility window as a time (``"30D"``), whatever
    the bar length. The market carries its clock (bar interval and calendar, see
    :func:`flashtrade_lib.data.calendar.clock_of`), which annualises the metrics; the
    result's series carry it on.
    """
    returns = market_returns(market, market_is=market_is)
    r = returns.to_numpy()
    s = align_signals(signals, returns)
    clock = clock_of(market)
    periods_per_year = clock.periods_per_year
    bps = (
        _per_asset(cost_bps, returns.columns, "cost_bps")
        + _per_asset(spread_bps, returns.columns, "spread_bps") / 2
        + _per_asset(slippage_bps, returns.columns, "slippage_bps")
    )
    if (bps > MAX_COST_BPS).any():
        worst = returns.columns[int(np.argmax(bps))]
        raise ValueError(
            f"trading costs of {bps.max():g} bps per unit traded (asset {worst!r}) are beyond the "
            f"sane bound of {MAX_COST_BPS:g} bps ({MAX_COST_BPS / 100:g} % of the traded value); costs "
            "are in basis points (5 = 0.05 %) — was a percentage or a price given?"
        )
    f, funding_rates = None, None
    if funding is not None:
        f = align_signals(funding, returns, "funding")
        # a copy-on-write view for asset_pnl: never aliases nor copies the caller's frame
        funding_rates = _as_frame(funding, "funding").set_axis(returns.columns, axis=1)
    if capital <= 0:
        raise ValueError(f"capital must be positive, got {capital}")
    _check_caps(max_weight, max_gross)
    _check_rule(scale, threshold)
    n_bars, n_assets = r.shape
    # Steps that need the whole history run first, on full arrays: a callable
    # position rule (it may look across bars) and the trailing volatility window.
    mapped = _call_position(position, s) if callable(position) else None
    vol = None
    if target_vol is not None:
        if not isinstance(vol_lookback, (str, pd.Timedelta)):
            raise TypeError(f"vol_lookback is a time window like '30D' or '12h', got {vol_lookback!r}")
        vol = vol_target_scale(
            r, target_vol=target_vol, periods=periods_per_year, lookback=clock.bars(vol_lookback)
        )
    # The engine works on (assets, bars) arrays, so each asset's bars are contiguous
    # (a float DataFrame already stores its values that way: r.T is a view, no copy).
    rT, sT = np.ascontiguousarray(r.T), np.ascontiguousarray(s.T)
    fT = None if f is None else np.ascontiguousarray(f.T)
    # wbuf = [0, w_0, w_1, ...]: targets are wbuf[:, 1:], held weights h_t = w_{t-1}
    # are the view wbuf[:, :-1] — t+1 execution without a copy, flat in bar 0.
    wbuf = np.empty((n_assets, n_bars + 1))
    wbuf[:, 0] = 0.0
    w, h = wbuf[:, 1:], wbuf[:, :-1]
    out = {k: np.empty(n_bars) for k in ("gross", "costs", "turnover", "net")}
    out["funding"] = np.zeros(n_bars)
    work = np.empty((2, n_assets, min(n_bars, _BLOCK)))
    for lo in range(0, n_bars, _BLOCK):
        hi = min(n_bars, lo + _BLOCK)
        wb = w[:, lo:hi]
        if mapped is not None:
            wb[:] = mapped[lo:hi].T
        else:
            _map_signals(sT[:, lo:hi], position, threshold, scale, out=wb)
        if vol is not None:
            wb *= vol[lo:hi].T
        _cap_assets_by_bars(wb, max_weight, max_gross, work[0, :, : hi - lo])
        _simulate_block(lo, hi, rT, h, bps, fT, account_drift, work, out)
    net, gross, costs, fund, turnover = (
        out[k] for k in ("net", "gross", "costs", "funding", "turnover")
    )
    idx, cols = returns.index, returns.columns
    _check_ruin(net, gross, costs, fund, idx)
    equity = np.add(net, 1.0)
    np.cumprod(equity, out=equity)
    equity *= capital
    result = BacktestResult(
        returns=pd.Series(net, index=idx, name="net_return", copy=False),
        gross_returns=pd.Series(gross, index=idx, name="gross_return", copy=False),
        costs=pd.Series(costs, index=idx, name="costs", copy=False),
        funding=pd.Series(fund, index=idx, name="funding", copy=False),
        turnover=pd.Series(turnover, index=idx, name="turnover", copy=False),
        equity=pd.Series(equity, index=idx, name="equity", copy=False),
        positions=pd.DataFrame(h.T, index=idx, columns=cols, copy=False),
        targets=pd.DataFrame(w.T, index=idx, columns=cols, copy=False),
        asset_returns=returns,
        periods_per_year=float(periods_per_year),
        settings={
            "market_is": market_is,
            "position": position if isinstance(position, str) else repr(position),
            "bps_per_asset": bps.tolist(),
            "account_drift": account_drift,
            "target_vol": target_vol,
            "max_weight": max_weight,
            "max_gross": max_gross,
            "capital": capital,
        },
        funding_rates=funding_rates,
    )
    for series in (result.returns, result.gross_returns, result.costs, result.funding, result.turnover,
                   result.equity, result.positions, result.targets):
        series.attrs.update(market.attrs)
    return result


# ------------------------------------------------------------ the slow reference loop


def backtest_loop(
    returns: pd.DataFrame,
    signals: pd.DataFrame,
    *,
    position: PositionRule = "sign",
    cost_bps: float = 0.0,
    threshold: float = 0.0,
    scale: float = 1.0,
    target_vol: float | None = None,
    vol_lookback: int = 24 * 30,
    periods: float | None = None,
    max_weight: float | None = None,
    max_gross: float | None = None,
    funding: pd.DataFrame | None = None,
    account_drift: bool = True,
    capital: float = 1.0,
) -> dict[str, np.ndarray]:
    """The same rules as :func:`backtest`, written as a plain per-bar Python loop.

    Deliberately naive (no NumPy in the loop) so it is easy to read and to trust;
    it takes **simple returns** and total ``cost_bps``, and ``vol_lookback`` in bars with the
    ``periods`` per year (needed with ``target_vol`` only). Used to cross-check
    :func:`backtest` in the tests and to measure its speed-up in the benchmark.
    """
    r = returns.to_numpy(dtype=float).tolist()
    s = signals.to_numpy(dtype=float).tolist()
    fr = funding.to_numpy(dtype=float).tolist() if funding is not None else None
    n_bars, n_assets = len(r), len(r[0])
    held = [0.0] * n_assets
    drifted = [0.0] * n_assets
    wealth = capital
    out = {k: [] for k in ("net", "gross", "costs", "funding", "turnover", "equity")}
    out_h: list[list[float]] = []
    target = [0.0] * n_assets
    if target_vol is not None and periods is None:
        raise ValueError("target_vol needs the bars per year: pass periods (clock_of(bars).periods_per_year)")
    per_bar_vol = target_vol / math.sqrt(periods) if target_vol is not None else None
    for t in range(n_bars):
        # 1. the position held in bar t was decided at t-1 (t+1 execution)
        new_held = target if t > 0 else [0.0] * n_assets
        turnover = 0.0
        for a in range(n_assets):
            turnover += abs(new_held[a] - drifted[a])
        held = new_held
        cost = turnover * cost_bps / 1e4
        # 2. earn this bar's one-bar simple return
        gross = 0.0
        fund = 0.0
        for a in range(n_assets):
            gross += held[a] * r[t][a]
            if fr is not None:
                fund += held[a] * fr[t][a]
        net = gross - cost - fund
        wealth *= 1.0 + net
        for a in range(n_assets):
            drifted[a] = held[a] * (1.0 + r[t][a]) / (1.0 + gross) if account_drift else held[a]
        # 3. at the close of bar t, decide the weights for bar t+1
        target = []
        for a in range(n_assets):
            x = s[t][a]
            if position == "sign":
                w = 1.0 if x > threshold else (-1.0 if x < -threshold else 0.0)
            elif position == "tanh":
                w = math.tanh(scale * x)
            else:
                w = x
            if per_bar_vol is not None:
                if t + 1 >= vol_lookback:
                    window = [r[u][a] for u in range(t + 1 - vol_lookback, t + 1)]
                    mean = sum(window) / vol_lookback
                    var = sum((v - mean) ** 2 for v in window) / (vol_lookback - 1)
                    sd = math.sqrt(var)
                    w = w * per_bar_vol / sd if sd > 0 else 0.0
                else:
                    w = 0.0
            if max_weight is not None:
                w = max(-max_weight, min(max_weight, w))
            target.append(w)
        if max_gross is not None:
            g = sum(abs(w) for w in target)
            if g > max_gross:
                target = [w * max_gross / g for w in target]
        out_h.append(list(held))
        for k, v in zip(
            ("net", "gross", "costs", "funding", "turnover", "equity"),
            (net, gross, cost, fund, turnover, wealth),
            strict=True,
        ):
            out[k].append(v)
    res = {k: np.asarray(v) for k, v in out.items()}
    res["positions"] = np.asarray(out_h)
    return res
