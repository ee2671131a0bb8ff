"""Leakage tests: features, labels and windows are causal; purged splits share no label interval;
windows are views, never copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flashtrade_lib.data.features import Standardizer, make_features, rsi
from flashtrade_lib.data.labels import forward_log_return, label_intervals
from flashtrade_lib.data.leakage import lookahead_violations, perturb_after
from flashtrade_lib.data.splits import purged_splits, walk_forward_folds
from flashtrade_lib.data.synthetic import simulate_market
from flashtrade_lib.data.windows import WindowDataset

H = 6
LOOKBACK = 32


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    p = simulate_market(400, 2, seed=3, planted_lag=100).panel.copy()
    p.iloc[150:153, p.columns.get_loc(("close", "SYN1"))] = np.nan  # an unfilled hole
    return p


def _features(p: pd.DataFrame) -> np.ndarray:
    return make_features(p, vol_window=8, ma_window=8, rsi_window=5).to_numpy(np.float32)


def _labels(p: pd.DataFrame) -> np.ndarray:
    return forward_log_return(p["close"]["SYN0"], H).to_numpy(np.float32)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(t=st.integers(0, 398), seed=st.integers(0, 2**16))
def test_perturbing_the_future_leaves_the_past_unchanged(panel: pd.DataFrame, t: int, seed: int) -> None:
    moved = perturb_after(panel, t, seed)
    assert not moved.iloc[t + 1 :].equals(panel.iloc[t + 1 :]) or t == len(panel) - 1
    f0, f1 = _features(panel), _features(moved)
    np.testing.assert_array_equal(f0[: t + 1], f1[: t + 1])  # NaNs compare equal here
    y0, y1 = _labels(panel), _labels(moved)
    np.testing.assert_array_equal(y0[: max(t + 1 - H, 0)], y1[: max(t + 1 - H, 0)])  # labels known by t
    ds0 = WindowDataset(f0, y0, LOOKBACK, horizon=H)
    ds1 = WindowDataset(f1, y1, LOOKBACK, horizon=H)
    for i in np.flatnonzero(ds0.label_intervals[:, 1] <= t):  # everything ending by t
        x0, target0 = ds0[int(i)]
        j = int(np.searchsorted(ds1.times, ds0.times[i]))
        assert ds1.times[j] == ds0.times[i]
        x1, target1 = ds1[j]
        assert torch.equal(x0, x1) and torch.equal(target0, target1)


def test_the_check_catches_a_leaky_feature(panel: pd.DataFrame) -> None:
    def centred(p: pd.DataFrame) -> pd.DataFrame:
        return p["close"] / p["close"].rolling(9, center=True).mean()

    def causal(p: pd.DataFrame) -> pd.DataFrame:
        return make_features(p, vol_window=8, ma_window=8, rsi_window=5)

    assert lookahead_violations(centred, panel)
    assert lookahead_violations(lambda p: p["close"].shift(-1), panel)
    assert lookahead_violations(lambda p: (p["close"] - p["close"].mean()) / p["close"].std(), panel)
    assert lookahead_violations(causal, panel) == []


def test_scaler_is_fit_on_the_training_range_only(panel: pd.DataFrame) -> None:
    t = 250
    a = Standardizer().fit(_features(panel)[: t + 1])
    b = Standardizer().fit(_features(perturb_after(panel, t, 1))[: t + 1])
    np.testing.assert_array_equal(a.mean_, b.mean_)
    z = a.transform(_features(panel)[: t + 1])
    np.testing.assert_allclose(np.nanmean(z, axis=0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="call fit"):
        Standardizer().transform(np.zeros((3, 2)))


def test_rsi_reference_values() -> None:
    close = pd.Series([1.0, 2, 3, 4, 5, 6])
    assert rsi(close, 3).iloc[-1] == 100.0  # only gains
    down = pd.Series([6.0, 5, 4, 3, 2, 1])
    assert rsi(down, 3).iloc[-1] == 0.0
    assert rsi(close, 3).iloc[:3].isna().all()


def test_forward_log_return_definition() -> None:
    close = pd.Series([100.0, 110, 121, 133.1])
    y = forward_log_return(close, 2)
    np.testing.assert_allclose(y.iloc[:2], [np.log(1.21), np.log(1.21)])
    assert y.iloc[2:].isna().all()
    np.testing.assert_allclose(forward_log_return(close.to_numpy(), 2)[:2], y.iloc[:2])
    start, end = label_intervals(np.array([5, 9]), 3)
    assert start.tolist() == [5, 9] and end.tolist() == [8, 12]
    with pytest.raises(ValueError, match="positive"):
        forward_log_return(close, 0)


def test_windows_are_views_of_one_float32_tensor(panel: pd.DataFrame) -> None:
    f = np.ascontiguousarray(_features(panel))  # pandas hands out column-major arrays
    ds = WindowDataset(f, _labels(panel), LOOKBACK, horizon=H)
    assert ds.x.dtype == torch.float32 and ds.x.is_contiguous()
    assert ds.x.data_ptr() == f.ctypes.data  # contiguous float32 input: not even one copy
    storage = ds.x.untyped_storage().data_ptr()
    for i in (0, len(ds) // 2, len(ds) - 1):
        x, y = ds[i]
        t = int(ds.times[i])
        assert x.shape == (LOOKBACK, f.shape[1]) and x.dtype == torch.float32
        assert x._is_view() and x.untyped_storage().data_ptr() == storage  # no copy
        np.testing.assert_array_equal(x.numpy(), f[t - LOOKBACK + 1 : t + 1])  # window ends at t
        assert y == torch.tensor(_labels(panel)[t])
    view = ds.strided_view()
    assert view.untyped_storage().data_ptr() == storage
    assert torch.equal(view[int(ds.times[0]) - LOOKBACK + 1], ds[0][0])
    assert ds.nbytes_if_materialised(torch.float64) == len(ds) * LOOKBACK * f.shape[1] * 8
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, LOOKBACK, f.shape[1]) and batch[1].shape == (4,)


def test_windows_skip_nan_and_short_history(panel: pd.DataFrame) -> None:
    f, y = _features(panel), _labels(panel)
    ds = WindowDataset(f, y, LOOKBACK, horizon=H)
    for i in range(len(ds)):
        x, target = ds[i]
        assert torch.isfinite(x).all() and torch.isfinite(target)
    bad_rows = set(np.flatnonzero(~np.isfinite(f).all(axis=1)))
    assert any(150 <= b < 160 for b in bad_rows)  # the hole makes rows NaN ...
    assert not any(t - LOOKBACK < b <= t for t in ds.times for b in bad_rows)  # ... and is skipped
    assert ds.times.max() == len(f) - 1 - H  # the last H bars have no label yet
    with pytest.raises(ValueError, match="NaN in their window"):
        WindowDataset(f, y, LOOKBACK, horizon=H, times=np.array([5]))
    with pytest.raises(ValueError, match="lookback"):
        WindowDataset(f, y, 10_000, horizon=H)


def _assert_disjoint(earlier: np.ndarray, later: np.ndarray, iv: np.ndarray, gap: int) -> None:
    if len(earlier) and len(later):
        assert iv[earlier, 1].max() + gap < iv[later, 0].min()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.integers(60, 400), horizon=st.integers(1, 30), embargo=st.one_of(st.none(), st.integers(0, 10)),
    f_train=st.floats(0.4, 0.8), f_val=st.floats(0.0, 0.2), jitter=st.booleans(),
)
def test_purged_splits_share_no_label_interval(n, horizon, embargo, f_train, f_val, jitter) -> None:
    rng = np.random.default_rng(n)
    start = np.sort(rng.choice(5 * n, n, replace=False)) if jitter else np.arange(n)
    end = start + (rng.integers(1, horizon + 1, n) if jitter else horizon)
    iv = np.stack([start, end], axis=1)
    try:
        split = purged_splits(iv, fractions=(f_train, f_val, 1 - f_train - f_val), embargo=embargo)
    except ValueError as exc:
        assert "purging removed every" in str(exc) or "too few" in str(exc)
        return
    gap = int((end - start).max()) if embargo is None else embargo
    parts = [split.train, split.val, split.test]
    for a in range(3):
        for b in range(a + 1, 3):
            _assert_disjoint(parts[a], parts[b], iv, gap)
            assert not set(parts[a]) & set(parts[b])
    # purging drops only what it must: each dropped sample's label reaches the next split
    n_train, n_val = int(f_train * n), int(f_val * n)
    for d in np.setdiff1d(np.arange(n_train), split.train):
        assert iv[d, 1] + gap >= iv[n_train, 0]
    for d in np.setdiff1d(np.arange(n_train, n_train + n_val), split.val):
        assert iv[d, 1] + gap >= iv[split.test[0], 0]
    assert split.test[0] == n_train + n_val and split.test[-1] == n - 1


def test_walk_forward_folds() -> None:
    iv = np.stack(label_intervals(np.arange(1000), 10), axis=1)
    folds = walk_forward_folds(iv, n_folds=4, val_size=50, embargo=5)
    tests = np.concatenate([f.test for f in folds])
    assert np.array_equal(tests, np.arange(1000 - len(tests), 1000))  # consecutive, disjoint, at the end
    for f in folds:
        _assert_disjoint(f.train, f.val, iv, 5)
        _assert_disjoint(f.val, f.test, iv, 5)
        _assert_disjoint(f.train, f.test, iv, 5)
        assert f.train[0] == 0  # expanding window
    assert len(folds[-1].train) > len(folds[0].train)
    rolling = walk_forward_folds(iv, n_folds=3, train_size=300)
    assert all(len(f.train) <= 300 for f in rolling)
    assert all(f.train[-1] + 2 * 10 < f.test[0] for f in rolling)  # default embargo = horizon
    with pytest.raises(ValueError, match="leaves no training data"):
        walk_forward_folds(iv, n_folds=10, test_size=100)
