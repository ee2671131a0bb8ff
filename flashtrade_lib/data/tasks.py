"""Market data -> train/val/test datasets: the prediction task a model is trained on.

Why a module of its own: the same task is built by the notebooks of chapters 6 and 7,
by ``flashtrade train`` and — from a checkpoint's metadata — by ``flashtrade predict``,
and all of them must get exactly the same features, windows, scaler and purged
splits. :func:`market_datasets` builds them in one call and records how in plain
metadata; :func:`market_datasets_from_metadata` rebuilds them from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from flashtrade_lib.data.calendar import clock_of, symbol_of
from flashtrade_lib.data.panel import bars_fingerprint
from flashtrade_lib.data.sources import get_source, load_data, source_names

__all__ = ["SOURCES", "MarketData", "market_datasets", "market_datasets_from_metadata"]

SOURCES = source_names(offline=True)
"""Every registered source a model can be trained on offline (:mod:`flashtrade_lib.data.sources`)."""


@dataclass
class MarketData:
    """Leak-free train/val/test datasets for one target asset, and what they were built from.

    ``dataset`` is the full (standardised) :class:`~flashtrade_lib.data.WindowDataset`;
    ``train``/``val``/``test`` are ``Subset`` views of it from purged chronological
    splits. ``bar_times`` are the timestamps of the feature rows, so
    ``bar_times[dataset.times[i]]`` is sample ``i``'s decision bar. ``close`` holds
    every asset's close prices (for backtests); ``metadata`` (plain types) records
    source, symbol, features, data range and the fitted scaler, and goes into
    checkpoints so ``predict`` can rebuild exactly these inputs.
    """

    dataset: Any
    split: Any
    train: Dataset
    val: Dataset
    test: Dataset
    bar_times: Any
    close: Any
    metadata: dict[str, Any]
    market: Any = None

    def decision_times(self, part: str) -> Any:
        """Timestamps of the decision bars of ``part`` (``"train"``, ``"val"`` or ``"test"``)."""
        positions = getattr(self.split, part)
        return self.bar_times[self.dataset.times[positions]]


def market_datasets(
    source: str = "crypto-30m",
    *,
    interval: str | None = None,
    symbol: str | None = None,
    lookback: int = 128,
    horizon: int = 1,
    last_bars: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    n_bars: int = 6000,
    n_assets: int = 2,
    planted_lag: int | None = 48,
    echo_coef: float = 0.3,
    seed: int = 0,
    scaler: Mapping[str, Sequence[float]] | None = None,
    span: Sequence[str] | None = None,
) -> MarketData:
    """Bars → causal features → standardised lazy windows → purged splits, in one call.

    ``source`` is anything :func:`~flashtrade_lib.data.sources.load_data` reads: a
    registered offline source (:data:`SOURCES`) — a bundled set (``crypto-30m``: five
    coins, 30-minute bars; ``eurusd-1h``) or ``synthetic``
    (:func:`~flashtrade_lib.data.simulate_market` with ``n_bars``, ``n_assets``,
    ``planted_lag``, ``echo_coef``, ``seed`` — the options its entry names) —, bars that
    ``flashtrade fetch`` cached (``bybit:BTCUSDT,ETHUSDT`` with ``interval``,
    ``yahoo:SPY``), or a bars file (``.csv``/``.parquet``). ``span`` (first, last bar)
    cuts the bars to a recorded range, so a checkpoint's data is rebuilt even after the
    cache grew. The
    features of *every* asset feed the model; the target is ``symbol``'s forward
    ``horizon``-bar log return (default symbol: the first asset). ``last_bars``
    keeps only the most recent bars (CPU-sized runs). The scaler is fitted on the
    bars up to the last training decision bar — or taken from ``scaler``
    (``{"mean": [...], "std": [...]}``, e.g. a checkpoint's metadata) to reproduce a
    trained model's inputs.
    """
    import pandas as pd

    from flashtrade_lib import data as fd

    registered = source in source_names(offline=True)
    task_options = {"n_bars": n_bars, "n_assets": n_assets, "seed": seed,
                    "planted_lag": planted_lag, "echo_coef": echo_coef}
    entry_options = get_source(source).options if registered else ()
    options = {k: v for k, v in task_options.items() if k in entry_options}
    loaded = load_data(source, interval=interval, **options)
    bars, market = loaded.bars, loaded.truth
    clock = clock_of(bars)
    if span is not None:
        bars = bars.loc[pd.Timestamp(span[0]) : pd.Timestamp(span[1])]
    if last_bars is not None:
        if last_bars < lookback + horizon + 10:
            raise ValueError(
                f"last_bars={last_bars} is too few for lookback={lookback} and horizon={horizon}"
            )
        bars = bars.iloc[-last_bars:]
    feats = fd.make_features(bars, allow_gaps=clock.market_closes)
    close = bars["close"]
    if isinstance(close, pd.Series):  # one asset (EURUSD, a bars file): flat columns
        name = symbol_of(bars)
        close = close.to_frame(name)
        feats.columns = [f"{c}/{name}" for c in feats.columns]
    else:
        feats.columns = [f"{f}/{s}" for f, s in feats.columns]
    symbols = [str(s) for s in close.columns]
    symbol = symbols[0] if symbol is None else symbol
    if symbol not in symbols:
        raise ValueError(f"symbol {symbol!r} is not in {source}; available: {', '.join(symbols)}")
    target = fd.forward_log_return(close[symbol], horizon=horizon)

    raw = fd.WindowDataset(feats.to_numpy(np.float32), target.to_numpy(np.float32), lookback, horizon=horizon)
    split = fd.purged_splits(raw.label_intervals, fractions=fractions)
    if scaler is None:
        last_train_bar = int(raw.times[split.train[-1]])
        fitted = fd.Standardizer().fit(feats.iloc[: last_train_bar + 1])
        mean, std = fitted.mean_, fitted.std_
    else:
        mean, std = np.asarray(scaler["mean"], float), np.asarray(scaler["std"], float)
        if mean.shape != (feats.shape[1],) or std.shape != (feats.shape[1],):
            raise ValueError(
                f"the scaler has {mean.shape[0]} features but {source} gives {feats.shape[1]}; "
                "use the data the model was trained on"
            )
    scaled = ((feats.to_numpy(np.float64) - mean) / std).astype(np.float32)
    ds = fd.WindowDataset(scaled, target.to_numpy(np.float32), lookback, horizon=horizon, times=raw.times)
    index = bars.index

    def span(part: np.ndarray) -> list[str]:
        if len(part) == 0:
            return []
        return [str(index[ds.times[part[0]]]), str(index[ds.times[part[-1]]])]

    metadata = {
        "source": source,
        "symbol": symbol,
        "symbols": symbols,
        "features": [str(c) for c in feats.columns],
        "lookback": int(lookback),
        "horizon": int(horizon),
        "target": f"forward {horizon}-bar log return of {symbol}",
        "interval": str(clock.interval),
        "calendar": clock.calendar,
        "periods_per_year": clock.periods_per_year,
        "data_start": str(index[0]),
        "data_end": str(index[-1]),
        "data_fingerprint": bars_fingerprint(bars),  # checked when a checkpoint is applied to data
        "last_bars": last_bars,
        "fractions": [float(f) for f in fractions],
        "splits": {"train": span(split.train), "val": span(split.val), "test": span(split.test)},
        "scaler": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]},
    }
    if options:  # the source's own options, so predict can rebuild the same bars
        metadata[source] = options
    return MarketData(
        dataset=ds,
        split=split,
        train=Subset(ds, split.train),
        val=Subset(ds, split.val),
        test=Subset(ds, split.test),
        bar_times=index,
        close=close,
        metadata=metadata,
        market=market,
    )


def market_datasets_from_metadata(metadata: Mapping[str, Any]) -> MarketData:
    """Rebuild the datasets a checkpoint was trained on (same source, windows, scaler)."""
    kwargs: dict[str, Any] = {
        "symbol": metadata["symbol"],
        "lookback": metadata["lookback"],
        "horizon": metadata["horizon"],
        "last_bars": metadata.get("last_bars"),
        "fractions": tuple(metadata.get("fractions", (0.7, 0.15, 0.15))),
        "scaler": metadata["scaler"],
    }
    if metadata["source"] not in source_names(offline=True):  # cached or file bars: the same range again
        kwargs["span"] = (metadata["data_start"], metadata["data_end"])
        if ":" in metadata["source"]:
            kwargs["interval"] = metadata["interval"]
    kwargs.update(metadata.get(metadata["source"], {}))
    data = market_datasets(metadata["source"], **kwargs)
    if data.metadata["data_start"] != metadata["data_start"] or data.metadata["data_end"] != metadata["data_end"]:
        raise ValueError(
            f"the bars of {metadata['source']} now run {data.metadata['data_start']} .. {data.metadata['data_end']}, "
            f"not {metadata['data_start']} .. {metadata['data_end']} as when the model was trained; "
            "fetch that range again (or use the bars file it was trained on)"
        )
    return data
