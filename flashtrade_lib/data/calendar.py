"""The clock bars run on: their interval (parsed once, from any spelling) and their market calendar.

Why a module of its own: the length of a bar had three spellings (Bybit ``"60"``/``"D"``,
pandas ``"30min"``, Yahoo ``"1h"``/``"1d"``) and the market's calendar (crypto 24/7, FX
24/5, equities 6.5 h on 252 days) was typed again by every caller that annualised a
metric — an equity or FX source was annualised as crypto wherever someone forgot. Now
the data carries both: every loader :func:`stamp` s its bars (``attrs["interval"]``,
``attrs["calendar"]``, ``attrs["source"]``, ``attrs["symbol"]``), pandas keeps ``attrs``
through slicing and arithmetic, and :func:`clock_of` is the one reader everything else
asks (``backtest``, ``walk_forward``, ``fit_rule``, ``net_returns``, the command line and
the chapters). Bars without a clock get a clear error, never a guessed calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from flashtrade_lib.trading.calendars import CALENDAR_NAMES

__all__ = ["BarInterval", "Clock", "CALENDAR_NAMES", "stamp", "clock_of", "symbol_of"]


_BYBIT_MINUTES = (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)
_YAHOO = re.compile(r"^(\d+)(m|h|d|wk|mo)$")
_YAHOO_UNITS = {"m": 1, "h": 60, "d": 1440, "wk": 10080}
_DAY, _WEEK = 1440, 10080


@dataclass(frozen=True, order=True)
class BarInterval:
    """The length of one bar: ``minutes`` for fixed-length bars, or ``months`` (calendar months).

    Build it with :meth:`parse`, which reads every spelling the book meets::

        BarInterval.parse("60") == BarInterval.parse("1h") == BarInterval.parse("60m")
        BarInterval.parse("D") == BarInterval.parse("1d") == BarInterval.parse("24h")
        BarInterval.parse("30min").bybit == "30"; str(BarInterval.parse("60")) == "1h"
    """

    minutes: int = 0
    months: int = 0

    def __post_init__(self) -> None:
        if (self.minutes > 0) == (self.months > 0) or min(self.minutes, self.months) < 0:
            raise ValueError(f"a bar lasts a positive number of minutes or of months, not {self!r}")

    @classmethod
    def parse(cls, spelling: Any) -> BarInterval:
        """One interval from a Bybit code (``"60"``, ``"D"``, ``"W"``, ``"M"``), a Yahoo
        interval (``"30m"``, ``"1h"``, ``"1d"``, ``"1wk"``, ``"1mo"``), a pandas frequency
        (``"30min"``, ``"h"``, ``"4h"``, ``"D"``, ``"W"``, ``"MS"``), a ``Timedelta`` or
        another :class:`BarInterval`."""
        if isinstance(spelling, BarInterval):
            return spelling
        if isinstance(spelling, pd.Timedelta):
            return cls._of_timedelta(spelling, spelling)
        text = str(spelling).strip() if isinstance(spelling, str) else None
        if not text:
            raise ValueError(f"a bar interval is a string like '60', '1h', '30min' or 'D', got {spelling!r}")
        if text.isdigit():  # Bybit: minutes
            return cls._of_minutes(int(text), spelling)
        months = re.fullmatch(r"(\d*)M", text)  # Bybit "M"; "3M" = quarterly
        if months:
            return cls(months=int(months.group(1) or 1))
        yahoo = _YAHOO.match(text)
        if yahoo:
            n, unit = int(yahoo.group(1)), yahoo.group(2)
            return cls(months=n) if unit == "mo" else cls._of_minutes(n * _YAHOO_UNITS[unit], spelling)
        try:
            offset = pd.tseries.frequencies.to_offset(text if text != "H" else "h")
        except (ValueError, TypeError):
            offset = None
        if isinstance(offset, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
            return cls(months=offset.n)
        if isinstance(offset, pd.offsets.Week):
            return cls._of_minutes(offset.n * _WEEK, spelling)
        if isinstance(offset, pd.offsets.BusinessDay):  # one trading day
            return cls._of_minutes(offset.n * _DAY, spelling)
        if isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)):
            return cls._of_timedelta(pd.Timedelta(days=offset.n) if isinstance(offset, pd.offsets.Day)
                                     else pd.Timedelta(offset), spelling)
        raise ValueError(
            f"cannot read a bar interval from {spelling!r}; use minutes like '60' (Bybit), "
            "'30min', '1h', '4h', 'D', 'W' or 'M'"
        )

    @classmethod
    def of_index(cls, index: pd.DatetimeIndex) -> BarInterval:
        """The median step of a time index (robust to weekend and overnight gaps)."""
        if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
            raise ValueError("need a DatetimeIndex of at least 2 timestamps to read the bar interval from")
        step = pd.Series(index).diff().median()
        return cls.parse(step) if step < pd.Timedelta(days=27) else cls(months=round(step.days / 30.4))

    @classmethod
    def _of_minutes(cls, minutes: int, spelling: Any) -> BarInterval:
        if minutes <= 0:
            raise ValueError(f"a bar interval must be positive, got {spelling!r}")
        return cls(minutes=minutes)

    @classmethod
    def _of_timedelta(cls, length: pd.Timedelta, spelling: Any) -> BarInterval:
        minutes = length / pd.Timedelta(minutes=1)
        if minutes != int(minutes):
            raise ValueError(f"bars shorter than whole minutes are not supported, got {spelling!r}")
        return cls._of_minutes(int(minutes), spelling)

    def __str__(self) -> str:
        """The canonical (pandas) spelling: ``"30min"``, ``"1h"``, ``"1D"``, ``"1W"``, ``"1MS"``."""
        return self._spelled(("MS", "W", "D", "h", "min"))

    def _spelled(self, units: tuple[str, str, str, str, str]) -> str:
        """This interval in the largest whole unit, named by ``units`` (month, week, day, hour, minute)."""
        if self.months:
            return f"{self.months}{units[0]}"
        size, unit = next((n, u) for n, u in zip((_WEEK, _DAY, 60, 1), units[1:], strict=True)
                          if self.minutes % n == 0)
        return f"{self.minutes // size}{unit}"

    @property
    def length(self) -> pd.Timedelta | pd.DateOffset:
        """A ``Timedelta``, or a ``DateOffset`` of calendar months."""
        return pd.DateOffset(months=self.months) if self.months else pd.Timedelta(minutes=self.minutes)

    @property
    def bybit(self) -> str:
        """Bybit's code for this interval (``"60"``, ``"D"``, ``"W"``, ``"M"``)."""
        codes = {_DAY: "D", _WEEK: "W"}
        if self.months == 1:
            return "M"
        if self.minutes in _BYBIT_MINUTES or self.minutes in codes:
            return codes.get(self.minutes, str(self.minutes))
        raise ValueError(
            f"Bybit has no {self} bars; its intervals are {', '.join(map(str, _BYBIT_MINUTES))} minutes, "
            "D, W and M (hourly is 60)"
        )

    @property
    def yahoo(self) -> str:
        """Yahoo's spelling of this interval (``"30m"``, ``"1h"``, ``"1d"``, ``"1wk"``, ``"1mo"``)."""
        return self._spelled(("mo", "wk", "d", "h", "m"))

    def periods_per_year(self, calendar: str) -> float:
        """Bars per year under ``calendar`` (:func:`flashtrade_lib.trading.metrics.periods_per_year`)."""
        from flashtrade_lib.trading.metrics import periods_per_year

        return periods_per_year(f"{self.months}MS" if self.months else self.length, calendar)


@dataclass(frozen=True)
class Clock:
    """What a series' bars mean in time: their :class:`BarInterval` and market calendar."""

    interval: BarInterval
    calendar: str

    @property
    def market_closes(self) -> bool:
        """Whether the market closes (FX at weekends, equities at night): holes in the bar grid
        are then closed hours, not missing data."""
        return self.calendar != "crypto"

    @property
    def periods_per_year(self) -> float:
        """Bars per year: the annualisation of every metric of these bars."""
        return self.interval.periods_per_year(self.calendar)

    def bars(self, window: str | pd.Timedelta) -> int:
        """How many of these bars a time window holds, in the market's trading time.

        ``"30D"`` is 720 hourly crypto bars but about 135 hourly equity bars: the window is
        the share ``window / 365 days`` of a year, times the bars per year.
        """
        span = pd.Timedelta(window)
        if span <= pd.Timedelta(0):
            raise ValueError(f"a time window must be positive, got {window!r}")
        return max(1, round(self.periods_per_year * (span / pd.Timedelta(days=365))))


def stamp(bars: Any, source: str, interval: Any, *, symbol: str | None = None,
          calendar: str | None = None) -> Any:
    """Mark ``bars`` (a DataFrame or Series) with their clock and origin, in ``attrs``; returns ``bars``.

    ``source`` is a registered data source (:mod:`flashtrade_lib.data.sources`) whose
    calendar the bars take — or, for bars of no registered source (a test's frame), pass
    ``calendar`` too. ``interval`` may be any spelling :meth:`BarInterval.parse` reads.
    """
    if calendar is None:
        from flashtrade_lib.data.sources import get_source

        calendar = get_source(source).calendar
    if calendar not in CALENDAR_NAMES:
        raise ValueError(f"unknown calendar {calendar!r}; use one of {', '.join(CALENDAR_NAMES)}")
    bars.attrs.update(source=source, interval=str(BarInterval.parse(interval)), calendar=calendar)
    if symbol is not None:
        bars.attrs["symbol"] = symbol
    return bars


def clock_of(data: Any) -> Clock:
    """The clock ``data`` (bars, a panel, returns, signals: anything whose ``attrs`` were
    :func:`stamp` ed) carries — the one reader of the calendar in the library."""
    attrs = getattr(data, "attrs", None) or {}
    if "calendar" not in attrs or "interval" not in attrs:
        raise ValueError(
            f"these {type(data).__name__} carry no calendar (attrs {sorted(attrs)}): load bars through "
            "flashtrade_lib.data (a registered source, cached_klines, cached_yahoo, read_bars), or mark "
            "your own with flashtrade_lib.data.stamp(bars, source, interval, calendar=...)"
        )
    return Clock(BarInterval.parse(attrs["interval"]), attrs["calendar"])


def symbol_of(bars: Any, default: str | None = None) -> str:
    """The one symbol attribute of single-asset bars (``attrs["symbol"]``)."""
    symbol = (getattr(bars, "attrs", None) or {}).get("symbol", default)
    if symbol is None:
        raise ValueError("these bars name no symbol (attrs['symbol']); stamp them with symbol=...")
    return str(symbol)
