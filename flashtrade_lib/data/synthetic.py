"""A seeded multi-asset market with a *known* long-range signal, for checking models against an oracle.

Why a simulator: on real bars nobody knows how much is predictable, so a model that
finds nothing may be bad or may be right. Here every bar's predictable part is
constructed, so a model can be compared with the best possible forecast.

The model, per asset ``i`` and bar ``t`` (log returns)::

    z_t   ~ multivariate Student-t(df), unit variance, correlation ``correlation`` between assets
    h_t   = omega + alpha * e_{t-1}**2 + beta * h_{t-1}            GARCH(1,1) variance
    e_t   = sqrt(h_t) * z_t                                          volatility clustering
    u_t   = s_t * e_t                                                s_t: daily / weekend seasonality
    r_t   = echo_coef * r_{t-L}  [+ lead_coef * u^{(0)}_{t-K} for i >= 1]  + u_t

* Student-t shocks give fat tails; GARCH gives volatility clustering (|r| is
  autocorrelated for hundreds of bars while r is not); ``s_t`` makes the hour of
  day and the weekend matter, as in crypto.
* The planted **echo** at lag ``L = planted_lag``: each return repeats a fraction
  ``echo_coef`` of the return ``L`` bars earlier. It is invisible to any model
  whose context is shorter than ``L`` bars — with the defaults (hourly bars,
  ``L = 1008`` = six weeks) a 512-bar window sees nothing, a 1024-bar window can
  see all of it. Optional **lead–lag** (``lead_lag=(K, c)``): assets 1.. follow
  asset 0's innovation ``K`` bars later (used in the multi-asset chapter).

The conditional mean ``signal_t = E[r_t | everything up to t-1]`` is exactly the
bracketed part above (the shock ``u_t`` is independent of the past), so no forecast
can have a lower expected squared error. For the echo alone the population R² of a
one-bar forecast is ``echo_coef**2`` (``Var(r) = echo_coef**2 Var(r) + Var(u)``;
exact when ``L`` is a multiple of the seasonal periods, as with the defaults).
:attr:`SyntheticMarket.oracle_r2` is the R² the oracle actually achieves on the
simulated sample, which is what a model should be compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flashtrade_lib.data.calendar import stamp

__all__ = ["SyntheticMarket", "simulate_market"]


@dataclass(frozen=True)
class SyntheticMarket:
    """Simulated bars plus the ground truth a model can be compared with."""

    panel: pd.DataFrame
    """OHLCV panel with the same layout as :func:`~flashtrade_lib.data.bundled.load_crypto`."""
    log_returns: pd.DataFrame
    """``log(close_t / close_{t-1})`` per asset (bar 0 relative to the start price)."""
    signal: pd.DataFrame
    """``E[r_t | information up to bar t-1]``: the predictable part of each bar's return."""
    volatility: pd.DataFrame
    """Conditional standard deviation of each bar's unpredictable shock ``u_t``."""
    planted_lag: int | None
    theoretical_r2: float | None
    """``echo_coef**2`` when only the echo is planted (``None`` with lead–lag or no echo)."""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def oracle_r2(self) -> pd.Series:
        """R² of the one-bar oracle forecast on this sample, per asset."""
        return self.oracle_r2_at(1)

    def max_oracle_horizon(self) -> int:
        """Largest horizon ``h`` whose oracle forecast uses only information up to the decision bar."""
        lags = [lag for lag in (self.planted_lag, self.params.get("lead_lag_bars")) if lag]
        return min(lags) if lags else 10**9

    def oracle_forecast(self, horizon: int = 1) -> pd.DataFrame:
        """Best forecast, made at bar ``t``, of the forward log return ``log(close_{t+h}/close_t)``.

        It is ``sum_{k=1..h} signal_{t+k}``; each term depends only on returns at or
        before ``t`` while ``h`` <= :meth:`max_oracle_horizon`. (Its *construction* looks
        ahead in the table; its *information* does not — it is ground truth, not a feature.)
        The last ``h`` rows are NaN, like the label.
        """
        if not 1 <= horizon <= self.max_oracle_horizon():
            raise ValueError(
                f"horizon must be between 1 and {self.max_oracle_horizon()} (the planted lag): "
                f"beyond it the best forecast needs information after the decision bar; got {horizon}"
            )
        total = sum(self.signal.shift(-k) for k in range(1, horizon + 1))
        return total

    def oracle_r2_at(self, horizon: int = 1) -> pd.Series:
        """R² that :meth:`oracle_forecast` achieves for ``h``-bar forward log returns, per asset."""
        forecast = self.oracle_forecast(horizon)
        cum = self.log_returns.cumsum()
        target = cum.shift(-horizon) - cum
        ok = forecast.notna().all(axis=1) & target.notna().all(axis=1)
        f, y = forecast[ok], target[ok]
        sse = ((y - f) ** 2).sum()
        sst = ((y - y.mean()) ** 2).sum()
        return (1.0 - sse / sst).rename(f"oracle R² (h={horizon})")


def _season(index: pd.DatetimeIndex, daily_amplitude: float, weekend_factor: float) -> np.ndarray:
    hours = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    daily = 1.0 + daily_amplitude * np.cos(2 * np.pi * (hours - 15.0) / 24.0)  # busiest ~15:00 UTC
    weekend = np.where(index.day_of_week.to_numpy() >= 5, weekend_factor, 1.0)
    s = daily * weekend
    return s / np.sqrt(np.mean(s**2))  # keep the average variance at bar_vol**2


def simulate_market(
    n_bars: int = 20_000,
    n_assets: int = 5,
    seed: int = 0,
    *,
    planted_lag: int | None = 1008,
    echo_coef: float = 0.3,
    lead_lag: tuple[int, float] | None = None,
    freq: str = "1h",
    start: str = "2021-01-01",
    df: float = 4.0,
    garch: tuple[float, float] = (0.05, 0.90),
    bar_vol: float = 0.01,
    correlation: float = 0.5,
    daily_amplitude: float = 0.3,
    weekend_factor: float = 0.7,
    symbols: Sequence[str] | None = None,
) -> SyntheticMarket:
    """Simulate ``n_bars`` bars of ``n_assets`` correlated assets (model in the module docstring).

    ``planted_lag=None`` (or ``echo_coef=0``) plants no echo: then nothing is
    predictable and the oracle R² is 0 — the null case. ``df`` is the Student-t
    degrees of freedom (> 2; ``inf`` for Gaussian shocks); ``garch=(alpha, beta)``
    with ``alpha + beta < 1``; ``bar_vol`` is the unconditional per-bar volatility of
    the shocks; ``correlation`` the pairwise correlation of shocks across assets.
    """
    if n_bars < 2:
        raise ValueError(f"n_bars must be >= 2, got {n_bars}")
    if n_assets < 1:
        raise ValueError(f"n_assets must be >= 1, got {n_assets}")
    if planted_lag is not None and not 1 <= planted_lag < n_bars:
        raise ValueError(f"planted_lag must be between 1 and n_bars-1 ({n_bars - 1}) or None, got {planted_lag}")
    if not 0 <= abs(echo_coef) < 1:
        raise ValueError(f"|echo_coef| must be < 1 for a stationary market, got {echo_coef}")
    if not df > 2:
        raise ValueError(f"df must be > 2 (finite variance), got {df}")
    alpha, beta = garch
    if alpha < 0 or beta < 0 or alpha + beta >= 1:
        raise ValueError(f"garch=(alpha, beta) needs alpha, beta >= 0 and alpha + beta < 1, got {garch}")
    if n_assets > 1 and not -1 / (n_assets - 1) < correlation < 1:
        raise ValueError(
            f"correlation {correlation} is not a valid equicorrelation for {n_assets} assets: "
            f"it must lie in ({-1 / (n_assets - 1):.3f}, 1)"
        )
    if lead_lag is not None:
        if n_assets < 2:
            raise ValueError("lead_lag needs at least two assets (asset 0 leads the others)")
        if not 1 <= int(lead_lag[0]) < n_bars:
            raise ValueError(f"lead_lag lag must be between 1 and n_bars-1, got {lead_lag[0]}")
    if symbols is None:
        symbols = [f"SYN{i}" for i in range(n_assets)]
    if len(symbols) != n_assets:
        raise ValueError(f"got {len(symbols)} symbols for {n_assets} assets")

    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n_bars, freq=freq, tz="UTC", name="open_time")
    corr = np.full((n_assets, n_assets), correlation) + (1 - correlation) * np.eye(n_assets)
    z = rng.standard_normal((n_bars, n_assets)) @ np.linalg.cholesky(corr).T
    if np.isfinite(df):  # multivariate t: one chi-square mixing variable per bar, unit variance
        w = rng.chisquare(df, n_bars) / df
        z *= np.sqrt((df - 2) / df) / np.sqrt(w)[:, None]

    omega = bar_vol**2 * (1 - alpha - beta)
    h = np.empty((n_bars, n_assets))
    e = np.empty((n_bars, n_assets))
    h_prev, e_prev = np.full(n_assets, bar_vol**2), np.zeros(n_assets)
    for t in range(n_bars):  # the one sequential recursion; ~n_bars small vector ops
        h_prev = omega + alpha * e_prev**2 + beta * h_prev
        e_prev = np.sqrt(h_prev) * z[t]
        h[t], e[t] = h_prev, e_prev
    season = _season(index, daily_amplitude, weekend_factor)[:, None]
    u = season * e
    vol = season * np.sqrt(h)

    lead_part = np.zeros_like(u)
    if lead_lag is not None:
        k, c = int(lead_lag[0]), float(lead_lag[1])
        lead_part[k:, 1:] = c * u[:-k, :1]
    r = u + lead_part
    if planted_lag is not None and echo_coef != 0:
        lag = planted_lag
        for s in range(lag, n_bars, lag):  # blockwise: r[s:s+L] depends on the finished r[s-L:s]
            r[s : s + lag] += echo_coef * r[s - lag : s][: n_bars - s]
    signal = r - u

    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    open_ = np.vstack([np.full((1, n_assets), 100.0), close[:-1]])
    wick = np.abs(rng.standard_normal((2, n_bars, n_assets))) * 0.5 * vol
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = 1000.0 * (vol / bar_vol) * np.exp(0.3 * rng.standard_normal((n_bars, n_assets)))

    cols = {}
    for name, arr in (("open", open_), ("high", high), ("low", low), ("close", close), ("volume", volume)):
        for j, s in enumerate(symbols):
            cols[(name, s)] = arr[:, j]
    for s in symbols:
        cols[("gap", s)] = np.zeros(n_bars, dtype=bool)
    panel = pd.DataFrame(cols, index=index)
    panel.columns = pd.MultiIndex.from_tuples(list(cols), names=["field", "symbol"])
    panel.attrs["provenance"] = f"simulate_market(seed={seed})"
    stamp(panel, "synthetic", freq)

    def frame(a: np.ndarray) -> pd.DataFrame:
        return stamp(pd.DataFrame(a, index=index, columns=pd.Index(list(symbols), name="symbol")),
                     "synthetic", freq)

    echo_on = planted_lag is not None and echo_coef != 0
    params = dict(
        n_bars=n_bars, n_assets=n_assets, seed=seed, planted_lag=planted_lag, echo_coef=echo_coef,
        lead_lag_bars=None if lead_lag is None else int(lead_lag[0]),
        lead_coef=None if lead_lag is None else float(lead_lag[1]), freq=freq, df=df,
        garch=garch, bar_vol=bar_vol, correlation=correlation,
        daily_amplitude=daily_amplitude, weekend_factor=weekend_factor,
    )
    return SyntheticMarket(
        panel=panel,
        log_returns=frame(r),
        signal=frame(signal),
        volatility=frame(vol),
        planted_lag=planted_lag if echo_on else None,
        theoretical_r2=(echo_coef**2 if echo_on else 0.0) if lead_lag is None else None,
        params=params,
    )
