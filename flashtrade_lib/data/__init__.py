"""Market data, from bars to leakage-safe training windows (chapter 5; used by chapters 6–10).

Data flows one way::

    bars  ->  panel  ->  features  ->  windows + labels  ->  purged splits  ->  model

**Bars** (one asset: ``DataFrame`` with a UTC ``DatetimeIndex`` of bar *open* times and
float columns ``open, high, low, close, volume``)

* :func:`fetch_klines` ``(symbol, interval="60", start=None, end=None, *, category="linear",
  base_url=..., session=None, timeout=10, max_retries=5, backoff_factor=0.5, max_wait=60,
  retry_budget=None)`` — live Bybit v5 klines, paginated, closed candles only, retried within
  bounded time (``timeout`` is each request's overall deadline) (module :mod:`~flashtrade_lib.data.bybit`).
* :func:`cached_klines` — the same through an on-disk parquet cache (:class:`BarCache`,
  validated on read, ``refresh=True`` refetches) that downloads only what is missing, with
  an offline mode (:mod:`~flashtrade_lib.data.cache`; cache folder
  ``$FLASHTRADE_CACHE_DIR`` or ``~/.cache/flashtrade``).
* :func:`load_eurusd` — hourly EURUSD 2017 (bundled, offline).
* :func:`resample_ohlcv` ``(bars, "1h")`` — correct OHLCV aggregation to a coarser bar.

**Their clock**: every loader :func:`stamp` s its bars with their interval and market
calendar (``attrs``; :mod:`~flashtrade_lib.data.calendar`); :func:`clock_of` ``(bars)`` reads
them back (``.periods_per_year``, ``.bars("30D")``), :class:`BarInterval` parses any spelling
of a bar length. :func:`load_data` loads any source by spec (a registered name,
``bybit:BTCUSDT``, ``yahoo:SPY``, a bars file); :func:`read_bars`/:func:`write_bars` are the
bars file (:mod:`~flashtrade_lib.data.barfile`).

**Panels** (several assets on one clock: columns ``(field, symbol)``, fields
``open, high, low, close, volume`` and a boolean ``gap``; ``panel["close"]`` is time × symbol)

* :func:`load_crypto` ``(symbols=None, *, max_ffill=12, freq=None)`` — bundled 30-minute
  Bitfinex bars of BTC, ETH, LTC, XRP, EOS (2017-10 → 2019-10); ``load_bundled("crypto-30m")``
  and ``load_bundled("eurusd-1h")`` name the bundled sets (:mod:`~flashtrade_lib.data.sources`);
  every source — bundled, synthetic, live — is one entry of :mod:`~flashtrade_lib.data.sources`.
* :func:`align_panel` ``(frames, *, freq=None, max_ffill=12)`` — timestamp join of per-asset
  bars, gaps flagged and forward-filled for at most ``max_ffill`` bars (:mod:`~flashtrade_lib.data.panel`);
  :func:`align_bars` does the same for one asset (a ``gap`` column).
* :func:`simulate_market` ``(n_bars, n_assets, seed, *, planted_lag=1008, echo_coef=0.3,
  lead_lag=None, ...)`` -> :class:`SyntheticMarket` with ``.panel``, ``.log_returns``,
  ``.signal`` (the true conditional mean), ``.oracle_r2``, ``.oracle_forecast(h)``
  (:mod:`~flashtrade_lib.data.synthetic`).

**Features and labels** (causal: the value at bar ``t`` uses bars ``<= t`` only)

* :func:`make_features` ``(bars_or_panel)`` — log return, volatility, volume/MA, price/MA,
  RSI; columns ``(feature, symbol)`` for a panel. :class:`Standardizer` fits on the training
  range only (:mod:`~flashtrade_lib.data.features`).
* :func:`lookahead_violations` ``(feature_fn, bars)`` — the causality test: perturb the bars
  after ``t`` and list the ``t`` at which the feature's past changed (:mod:`~flashtrade_lib.data.leakage`).
* :func:`acf` ``(x, max_lag)`` — FFT autocorrelation to thousands of lags (:mod:`~flashtrade_lib.data.stylized`).
* :func:`forward_log_return` ``(close, horizon)`` — the label of decision bar ``t`` is
  ``log(close_{t+h}/close_t)``, spanning bars ``[t, t+h]`` (:mod:`~flashtrade_lib.data.labels`).

**Windows and splits**

* :class:`WindowDataset` ``(features (T,F), targets (T,), lookback, *, horizon)`` — a torch
  ``Dataset`` whose item ``i`` is ``(x[t-lookback+1 : t+1], y[t])`` for decision bar
  ``t = ds.times[i]``: float32 views, never materialised; ``ds.label_intervals`` gives the
  label spans (:mod:`~flashtrade_lib.data.windows`).
* :func:`purged_splits` ``(label_intervals, *, fractions=(0.7, 0.15, 0.15), embargo=None)`` and
  :func:`walk_forward_folds` ``(label_intervals, *, n_folds=5, ...)`` — chronological splits
  with purge and embargo (default embargo: one horizon) (:mod:`~flashtrade_lib.data.splits`).

Typical use (the scaler is fitted on bars up to the last training decision bar only)::

    from flashtrade_lib.data import (load_crypto, make_features, forward_log_return,
                                     WindowDataset, purged_splits, Standardizer)
    panel = load_crypto()
    feats = make_features(panel)                                  # (T, 25), causal
    y = forward_log_return(panel["close"]["BTC"], horizon=24)     # label of bar t
    ds = WindowDataset(feats, y, 512, horizon=24)
    split = purged_splits(ds.label_intervals)                     # positions into ds
    last_train_bar = int(ds.times[split.train[-1]])
    scaler = Standardizer().fit(feats.iloc[: last_train_bar + 1])
    ds = WindowDataset(scaler.transform(feats), y, 512, horizon=24)  # same samples, scaled
    train_set = torch.utils.data.Subset(ds, split.train)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fetch_klines": "bybit",
    "BybitError": "bybit",
    "BybitAPIError": "bybit",
    "BybitBannedError": "bybit",
    "BarInterval": "calendar",
    "clock_of": "calendar",
    "stamp": "calendar",
    "read_bars": "barfile",
    "write_bars": "barfile",
    "load_data": "sources",
    "BarCache": "cache",
    "CorruptCacheError": "cache",
    "CacheMissError": "cache",
    "cached_klines": "cache",
    "default_cache_dir": "cache",
    "CRYPTO_SYMBOLS": "bundled",
    "load_bundled": "sources",
    "load_crypto": "bundled",
    "load_crypto_bars": "bundled",
    "load_eurusd": "bundled",
    "resample_ohlcv": "bundled",
    "align_panel": "panel",
    "align_bars": "panel",
    "DataSource": "sources",
    "get_source": "sources",
    "source_names": "sources",
    "SyntheticMarket": "synthetic",
    "simulate_market": "synthetic",
    "FEATURES": "features",
    "Standardizer": "features",
    "make_features": "features",
    "forward_log_return": "labels",
    "label_intervals": "labels",
    "WindowDataset": "windows",
    "lookahead_violations": "leakage",
    "perturb_after": "leakage",
    "acf": "stylized",
    "Split": "splits",
    "Fold": "splits",
    "purged_splits": "splits",
    "walk_forward_folds": "splits",
    "fetch_orderbook": "orderbook",
    "record_orderbook": "orderbook",
    "load_orderbook_recording": "orderbook",
    "simulate_lob": "lob_sim",
    "order_imbalance": "lob_sim",
    "fetch_yahoo": "yahoo",
    "cached_yahoo": "yahoo",
    "yahoo_panel": "yahoo",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: loading bars never imports torch or requests
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
