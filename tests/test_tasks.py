"""market_datasets: one call from bars to leak-free, reproducible train/val/test windows."""

from __future__ import annotations

import numpy as np
import pytest

from flashtrade_lib.data.tasks import market_datasets, market_datasets_from_metadata

KW = {"n_bars": 600, "n_assets": 2, "lookback": 32, "horizon": 4, "seed": 3}


def test_splits_are_chronological_purged_and_scaled_on_train_only() -> None:
    data = market_datasets("synthetic", **KW)
    ds, split = data.dataset, data.split
    labels = ds.label_intervals
    # every training label ends before the first validation window's label starts
    assert labels[split.train, 1].max() < labels[split.val, 0].min()
    assert labels[split.val, 1].max() < labels[split.test, 0].min()
    x, y = ds[int(split.train[0])]
    assert tuple(x.shape) == (32, len(data.metadata["features"]))
    # standardised with training statistics: training rows have mean ~0 and std ~1
    # (the first rows are NaN: rolling features need a warm-up)
    last_train_bar = int(ds.times[split.train[-1]])
    train_rows = ds.x[: last_train_bar + 1].double().numpy()
    np.testing.assert_allclose(np.nanmean(train_rows, axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(train_rows, axis=0), 1.0, atol=1e-2)


def test_rebuilt_from_metadata_gives_the_same_windows() -> None:
    data = market_datasets("synthetic", **KW)
    again = market_datasets_from_metadata(data.metadata)
    i = int(data.split.test[-1])
    np.testing.assert_array_equal(again.dataset[i][0], data.dataset[i][0])
    assert again.metadata["splits"] == data.metadata["splits"]


def test_bad_requests_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown data source"):
        market_datasets("nasdaq")
    with pytest.raises(ValueError, match="is not in synthetic"):
        market_datasets("synthetic", symbol="DOGE", **KW)
    with pytest.raises(ValueError, match="too few"):
        market_datasets("synthetic", last_bars=20, **KW)
