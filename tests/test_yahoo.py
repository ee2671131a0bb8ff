"""The Yahoo loader without the network: yfinance is replaced by fakes with its documented output shape."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest

yf = pytest.importorskip("yfinance")

from flashtrade_lib.data import yahoo  # noqa: E402
from flashtrade_lib.data.cache import CacheMissError  # noqa: E402
from flashtrade_lib.data.yahoo import (  # noqa: E402
    YahooError,
    YahooNetworkError,
    YahooTickerError,
    bars_from_yfinance,
    cached_yahoo,
    fetch_yahoo,
    validate_request,
    yahoo_panel,
)

NOW = pd.Timestamp("2024-06-20 12:00", tz="UTC")


def _daily(n: int = 10, start: str = "2024-03-07", tz: str = "America/New_York", seed: int = 0) -> pd.DataFrame:
    """What ``Ticker.history(interval='1d')`` returns: local-midnight, tz-aware, business days."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, tz=tz, name="Date")  # crosses the 2024-03-10 DST change
    close = 100 + np.cumsum(rng.normal(size=n))
    return pd.DataFrame({"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close,
                         "Volume": rng.integers(1_000, 5_000, n)}, index=idx)


def _multi(df: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """``yf.download`` (>= 0.2.51) shape: columns MultiIndex (Price, Ticker)."""
    out = df.copy()
    out.columns = pd.MultiIndex.from_product([df.columns, [ticker]], names=["Price", "Ticker"])
    return out


class _FakeTicker:
    """Replaces ``yfinance.Ticker``; ``answers`` maps ticker -> DataFrame or exception."""

    answers: dict = {}
    calls: list = []

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker

    def history(self, **kwargs):
        _FakeTicker.calls.append((self.ticker, kwargs))
        answer = _FakeTicker.answers[self.ticker]
        if isinstance(answer, Exception):
            raise answer
        if answer.empty:
            return answer
        s, e = kwargs["start"], kwargs["end"]
        return answer[(answer.index >= s - pd.Timedelta(days=1)) & (answer.index < e)]


@pytest.fixture
def fake_yf(monkeypatch):
    _FakeTicker.answers, _FakeTicker.calls = {}, []
    monkeypatch.setattr(yf, "Ticker", _FakeTicker)
    return _FakeTicker


def test_daily_conversion_single_and_multiindex_columns() -> None:
    raw = _daily()
    a = bars_from_yfinance(raw, "AAPL", "1d")
    b = bars_from_yfinance(_multi(raw, "AAPL"), "AAPL", "1d")
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["open", "high", "low", "close", "volume"]
    assert all(a.dtypes == np.float64) and str(a.index.tz) == "UTC"
    # local dates at 00:00 UTC, even across the daylight-saving change
    assert (a.index == a.index.normalize()).all()
    assert list(a.index.date) == list(raw.index.date)
    np.testing.assert_allclose(a["close"], raw["Close"])


def test_multiindex_with_several_tickers_picks_the_right_one() -> None:
    two = pd.concat([_multi(_daily(seed=1), "AAPL"), _multi(_daily(seed=2), "MSFT")], axis=1)
    swapped = two.swaplevel(axis=1)  # group_by='ticker' order: (Ticker, Price)
    for raw in (two, swapped):
        out = bars_from_yfinance(raw, "MSFT", "1d")
        np.testing.assert_allclose(out["close"], _daily(seed=2)["Close"])
    with pytest.raises(YahooError, match="not 'IBM'"):
        bars_from_yfinance(two, "IBM", "1d")


def test_intraday_index_is_converted_to_utc() -> None:
    idx = pd.date_range("2024-06-18 09:30", periods=7, freq="1h", tz="America/New_York")
    raw = _daily(7).set_axis(idx)
    out = bars_from_yfinance(raw, "AAPL", "1h")
    assert out.index[0] == pd.Timestamp("2024-06-18 13:30", tz="UTC")
    with pytest.raises(YahooError, match="time zone"):
        bars_from_yfinance(raw.tz_localize(None), "AAPL", "1h")


def test_empty_answer_and_missing_columns() -> None:
    with pytest.raises(YahooTickerError, match="unknown or delisted"):
        bars_from_yfinance(pd.DataFrame(), "NOPE", "1d")
    with pytest.raises(YahooError, match=r"lacks columns \['Volume'\]"):
        bars_from_yfinance(_daily().drop(columns="Volume"), "AAPL", "1d")


@pytest.mark.parametrize(("interval", "start", "end", "match"), [
    ("1m", "2024-06-10", "2024-06-19", "at most 7 days"),
    ("1m", "2024-05-01", "2024-05-05", "last 30 days"),
    ("5m", "2024-03-01", "2024-03-05", "last 60 days"),
    ("1h", "2022-01-01", "2022-02-01", "730 days"),
    ("3h", "2024-06-01", None, "not supported"),
    ("1d", None, None, "start is required"),
    ("1d", "2024-06-10", "2024-06-01", "must be before end"),
])
def test_impossible_requests_are_refused_before_calling_yfinance(fake_yf, interval, start, end, match) -> None:
    with pytest.raises(ValueError, match=match):
        fetch_yahoo("AAPL", interval, start, end, now=NOW)
    assert fake_yf.calls == []


def test_allowed_intraday_ranges_pass_validation() -> None:
    validate_request("1m", "2024-06-13", "2024-06-20", now=NOW)
    validate_request("5m", "2024-05-01", now=NOW)
    validate_request("1h", "2023-01-01", now=NOW)
    validate_request("1d", "1990-01-01", now=NOW)


def test_fetch_keeps_closed_bars_in_range(fake_yf) -> None:
    fake_yf.answers["AAPL"] = _daily(80, start="2024-03-01")
    out = fetch_yahoo("AAPL", "1d", "2024-03-05", None, now=NOW)
    assert out.index[0] == pd.Timestamp("2024-03-05", tz="UTC")
    assert out.index[-1] == pd.Timestamp("2024-06-19", tz="UTC")  # the 20th is still trading
    assert out.attrs["covered_end_ms"] == int((NOW - pd.Timedelta(days=1)).value // 1_000_000)
    kwargs = fake_yf.calls[0][1]
    assert kwargs["interval"] == "1d" and kwargs["auto_adjust"] is True and kwargs["raise_errors"] is True


def test_yfinance_errors_become_clear_errors(fake_yf) -> None:
    from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

    fake_yf.answers["NOPE"] = YFPricesMissingError("NOPE", "")
    fake_yf.answers["BUSY"] = YFRateLimitError()
    fake_yf.answers["OFF"] = ConnectionError("Failed to resolve host")
    fake_yf.answers["EMPTY"] = pd.DataFrame()
    with pytest.raises(YahooTickerError, match="no 1d data for 'NOPE'"):
        fetch_yahoo("NOPE", "1d", "2024-06-01", now=NOW)
    with pytest.raises(YahooNetworkError, match="rate-limited"):
        fetch_yahoo("BUSY", "1d", "2024-06-01", now=NOW)
    with pytest.raises(YahooNetworkError, match="ConnectionError.*Check your connection"):
        fetch_yahoo("OFF", "1d", "2024-06-01", now=NOW)
    with pytest.raises(YahooTickerError, match="unknown or delisted"):
        fetch_yahoo("EMPTY", "1d", "2024-06-01", now=NOW)


def test_missing_yfinance_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)
    with pytest.raises(ImportError, match=r'pip install "flashtrade-lib\[yahoo\]"'):
        fetch_yahoo("AAPL", "1d", "2024-06-01", now=NOW)


def test_cache_downloads_once_and_works_offline(fake_yf, tmp_path) -> None:
    fake_yf.answers["^GSPC"] = _daily(80, start="2024-03-01")
    a = cached_yahoo("^GSPC", "1d", "2024-03-04", "2024-04-30", cache_dir=tmp_path, now=NOW)
    b = cached_yahoo("^GSPC", "1d", "2024-03-10", "2024-04-15", cache_dir=tmp_path, now=NOW)
    assert len(fake_yf.calls) == 1  # the second range is inside the cached one
    pd.testing.assert_frame_equal(b, a.loc["2024-03-10":"2024-04-15"])
    assert (tmp_path / "yahoo" / "_5EGSPC_1d.parquet").is_file()  # no made-up category level
    c = cached_yahoo("^GSPC", "1d", "2024-03-04", "2024-04-30", cache_dir=tmp_path, offline=True)
    pd.testing.assert_frame_equal(a, c)
    with pytest.raises(CacheMissError):
        cached_yahoo("^GSPC", "1d", "2024-01-01", "2024-04-30", cache_dir=tmp_path, offline=True)


def test_cache_key_round_trips() -> None:
    for t in ("AAPL", "BRK-B", "^GSPC", "EURUSD=X", "7203.T", "A_B", "ÄX"):
        key = yahoo._cache_key(t)
        assert yahoo._from_key(key) == t and all(ch.isalnum() or ch in "_-" for ch in key)


def test_panel_joins_on_timestamps_and_drops_closed_slots(fake_yf) -> None:
    aapl = _daily(30, start="2024-04-01", seed=1)
    msft = _daily(30, start="2024-04-01", seed=2).drop(index=_daily(30, start="2024-04-01").index[5])
    fake_yf.answers.update({"AAPL": aapl, "MSFT": msft})
    panel = yahoo_panel(["AAPL", "MSFT"], "1d", "2024-04-01", "2024-05-10", cache=False, now=NOW)
    assert list(panel.columns.get_level_values("field").unique()) == ["open", "high", "low", "close",
                                                                     "volume", "gap"]
    assert len(panel) == 30  # weekends (every ticker a gap) dropped, the missing MSFT day kept
    assert panel["gap"]["MSFT"].sum() == 1 and not panel["gap"]["AAPL"].any()
    assert np.isnan(panel["close"]["MSFT"][panel["gap"]["MSFT"]]).all()  # max_ffill=0: not invented
    with pytest.raises(ValueError, match="non-empty list"):
        yahoo_panel("AAPL", "1d", "2024-04-01", now=NOW)


def test_module_imports_without_yfinance_installed() -> None:
    assert isinstance(yahoo, types.ModuleType) and "yfinance" not in yahoo.__dict__
