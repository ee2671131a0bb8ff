"""The data carries its calendar: one bar interval from any spelling, stamped bars, and no caller
that types a calendar or a number of bars per year by hand."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data.barfile import read_bars, write_bars
from flashtrade_lib.data.calendar import BarInterval, clock_of, stamp
from flashtrade_lib.data.sources import DataSource, Loaded, load_data, register
from flashtrade_lib.trading.backtest import backtest
from flashtrade_lib.trading.walkforward import walk_forward

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("spellings", "canonical", "bybit"),
    [
        (["60", "1h", "h", "60m", "60min", pd.Timedelta(hours=1)], "1h", "60"),
        (["30", "30min", "30m"], "30min", "30"),
        (["D", "1d", "24h", "1D", "B"], "1D", "D"),
        (["W", "1wk", "1W", "7D"], "1W", "W"),
        (["M", "1mo", "MS", "ME"], "1MS", "M"),
    ],
)
def test_one_interval_from_every_spelling(spellings, canonical: str, bybit: str) -> None:
    parsed = {BarInterval.parse(s) for s in spellings}
    assert len(parsed) == 1
    (interval,) = parsed
    assert str(interval) == canonical and interval.bybit == bybit
    assert BarInterval.parse(str(interval)) == interval


@pytest.mark.parametrize("bad", ["", "soon", "0", "-5min", "1.5s", None])
def test_a_bad_interval_is_named(bad) -> None:
    with pytest.raises(ValueError, match="interval|positive|minutes"):
        BarInterval.parse(bad)
    with pytest.raises(ValueError, match="Bybit has no 45min bars"):
        _ = BarInterval.parse("45min").bybit


def test_time_windows_count_trading_time() -> None:
    idx = pd.date_range("2024-01-01", periods=3, freq="h")
    crypto = clock_of(stamp(pd.Series(1.0, idx), "test", "1h", calendar="crypto"))
    equity = clock_of(stamp(pd.Series(1.0, idx), "test", "1h", calendar="equity"))
    assert crypto.bars("30D") == 720 and crypto.bars("1D") == 24
    assert equity.bars("30D") == round(1638 * 30 / 365)  # 6.5-hour sessions on 252 days
    assert clock_of(stamp(pd.Series(1.0, idx), "test", "30min", calendar="crypto")).bars("30D") == 1440


def _bars(n: int, freq: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-01", periods=n, tz="UTC") if freq == "B" else \
        pd.date_range("2020-01-01", periods=n, freq=freq, tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0},
                        idx.rename("open_time"))


@pytest.fixture
def markets():
    """An equity source of daily bars and an FX source of hourly bars, registered for one test."""
    from flashtrade_lib.data import sources

    equity = register(DataSource("toy-equity-1d", "bundled", "daily equity bars",
                                 lambda: Loaded(_bars(600, "B")), calendar="equity"))
    fx = register(DataSource("toy-fx-1h", "bundled", "hourly FX bars",
                             lambda: Loaded(_bars(3000, "h", 1)), calendar="fx"))
    yield equity, fx
    for name in ("toy-equity-1d", "toy-fx-1h"):
        del sources._REGISTRY[name]


def test_equity_and_fx_sources_are_annualised_by_their_own_calendar(markets) -> None:
    expected = {"toy-equity-1d": 252.0, "toy-fx-1h": 6240.0}
    for name, periods in expected.items():
        close = load_data(name).bars[["close"]]
        sig = np.sign(close.pct_change().fillna(0.0))
        res = backtest(close, sig, market_is="prices", cost_bps=0.0)
        assert res.periods_per_year == periods, name
        m = res.metrics()
        r = res.returns
        assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(periods), rel=1e-12)
        wf = walk_forward([(slice(0, 300), slice(300, 500))], lambda t: None,
                          lambda _, t, s=sig: s.loc[t], market=close, market_is="prices")
        assert wf.periods_per_year == periods, name


def test_bars_without_a_clock_are_refused_not_guessed() -> None:
    prices = _bars(50, "h")[["close"]]  # a plain frame: no interval, no calendar
    with pytest.raises(ValueError, match="carry no calendar"):
        backtest(prices, prices * 0 + 1, market_is="prices")
    with pytest.raises(TypeError, match="time window like '30D'"):
        backtest(stamp(prices, "test", "1h", calendar="crypto"), prices * 0 + 1, market_is="prices",
                 target_vol=0.2, vol_lookback=720)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_bars_file_keeps_its_clock(tmp_path: Path, suffix: str) -> None:
    bars = stamp(_bars(40, "h"), "bybit", "60", symbol="BTCUSDT")
    path = write_bars(bars, tmp_path / f"btc{suffix}")
    back = read_bars(path)
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    assert {k: back.attrs[k] for k in ("source", "symbol", "interval", "calendar")} == {
        "source": "bybit", "symbol": "BTCUSDT", "interval": "1h", "calendar": "crypto"}


def test_a_csv_without_the_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    _bars(5, "h").to_csv(path, index_label="open_time")
    with pytest.raises(ValueError, match="bars header line"):
        read_bars(path)


# -------------------------------------------------------------- nobody types the calendar

# A calendar name or a number of bars per year typed at a call: as a keyword, a calendar-name
# argument, or periods_per_year applied to some data's index (the data carries its clock).
_BY_HAND = [
    re.compile(r"""\bcalendar\s*=\s*["']"""),
    re.compile(r"""\w\([^()]*,\s*["'](crypto|fx|equity)["']\s*\)"""),
    re.compile(r"periods_per_year\([^)]*\.index"),
    re.compile(r"\b(periods_per_year|periods)\s*=\s*\d"),
]
# The one reader and the registry set it; the metrics module defines it; exercises and their
# solutions teach the calendar table itself (a learner writes periods_per_year(index, calendar)).
_ALLOWED = {"flashtrade_lib/data/calendar.py", "flashtrade_lib/data/sources.py",
            "flashtrade_lib/data/barfile.py", "flashtrade_lib/trading/metrics.py"}


def _callers() -> list[tuple[str, str]]:
    files = [*ROOT.glob("flashtrade_lib/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    out = [(str(p.relative_to(ROOT)), p.read_text()) for p in files
           if str(p.relative_to(ROOT)) not in _ALLOWED and "/exercises/" not in str(p)]
    for nb_path in sorted(ROOT.glob("notebooks/*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        code = [c.source for c in nb.cells if c.cell_type == "code"
                and not {"exercise", "solution"} & set(c.metadata.get("tags", []))
                and "check(" not in c.source]
        out.append((str(nb_path.relative_to(ROOT)), "\n".join(code)))
    return out


def test_no_caller_types_a_calendar_or_periods_per_year() -> None:
    found = []
    for name, text in _callers():
        for line in text.splitlines():
            code = line.split("#")[0]
            if '"""' in line or code.strip().startswith(("``", ":")):
                continue
            if any(p.search(code) for p in _BY_HAND):
                found.append(f"{name}: {line.strip()}")
    assert not found, "calendars typed by hand (read them from the data: clock_of(bars)):\n" + "\n".join(found)


def test_the_guard_would_catch_the_old_calls() -> None:
    old = ['PPY = metrics.periods_per_year(close.index, "crypto")', 'backtest(p, s, calendar="fx")',
           "backtest(p, s, periods_per_year=8760)", "backtest_loop(r, s, periods=8760)"]
    assert all(any(p.search(line) for p in _BY_HAND) for line in old)
