"""The market calendars: trading time in one year, the single source of the annualisation
conventions used by the whole book (:func:`flashtrade_lib.trading.metrics.periods_per_year`).

Why a module with no imports: the data registry checks the calendar of every source it
registers, and the command line's ``--help`` must not import pandas to do so.
"""

from __future__ import annotations

__all__ = ["CALENDARS", "CALENDAR_NAMES"]

CALENDARS: dict[str, dict[str, float]] = {
    # 24 hours a day, 365 days a year: hourly = 8760, daily = 365.
    "crypto": {"days": 365.0, "hours_per_day": 24.0},
    # 24 hours a day, 5 days a week, 52 weeks: hourly = 6240, daily = 260.
    "fx": {"days": 260.0, "hours_per_day": 24.0},
    # 252 sessions of 6.5 hours (NYSE 9:30-16:00): hourly = 1638, daily = 252.
    "equity": {"days": 252.0, "hours_per_day": 6.5},
}

CALENDAR_NAMES = tuple(CALENDARS)
"""The calendars a data source may carry."""
