"""Chapter 6's flagship model learns the planted echo at the defaults a reader runs.

The configuration is read from the chapter's own ``parameters`` cell (with the CPU
device, as the book build and a laptop run it), so the defaults the page shows are the
defaults this test trains — they cannot drift apart. Chapter 7 retrains "the model of
chapter 6": its parameters cell must agree on every setting the two share.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
import torch
from conftest import ROOT

from flashtrade_lib.data.tasks import market_datasets
from flashtrade_lib.measure import env
from flashtrade_lib.model.trader import FlashAttentionTrader, ModelConfig
from flashtrade_lib.model.train import TrainConfig, predict, train
from flashtrade_lib.trading import stats
from flashtrade_lib.trading.heldout import SAME_INFORMATION, baseline_forecasts, oracle_forecast
from flashtrade_lib.trading.metrics import forecast_skill

SHARED = ("SEED", "SYN_BARS", "SYN_LAG", "SYN_ECHO", "SYN_LOOKBACK", "D_MODEL", "N_HEADS", "N_LAYERS",
          "EPOCHS", "BATCH", "LR")


def notebook_parameters(name: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The values a notebook's ``parameters`` cell sets on a CPU-only machine."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} must have exactly one cell tagged 'parameters'"
    monkeypatch.setattr(env, "pick_device", lambda *a, **k: "cpu")
    namespace: dict = {}
    exec(cells[0].source, namespace)  # noqa: S102 - the repository's own notebook
    return {k: v for k, v in namespace.items() if k.isupper()}


def test_chapter7_trains_the_model_of_chapter6(monkeypatch: pytest.MonkeyPatch) -> None:
    ch6 = notebook_parameters("06_training.ipynb", monkeypatch)
    ch7 = notebook_parameters("07_prediction.ipynb", monkeypatch)
    differ = {k: (ch6.get(k), ch7.get(k)) for k in SHARED if ch6.get(k) != ch7.get(k)}
    assert not differ, f"chapter 7 must retrain chapter 6's model; (ch6, ch7) differ: {differ}"


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning threads slow training many-fold."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_chapter6_defaults_learn_the_planted_echo(monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    p = notebook_parameters("06_training.ipynb", monkeypatch)
    syn = market_datasets("synthetic", n_bars=p["SYN_BARS"], n_assets=1, planted_lag=p["SYN_LAG"],
                          echo_coef=p["SYN_ECHO"], lookback=p["SYN_LOOKBACK"], seed=p["SEED"])
    torch.manual_seed(p["SEED"])
    model = FlashAttentionTrader(ModelConfig(n_features=len(syn.metadata["features"]), d_model=p["D_MODEL"],
                                             n_heads=p["N_HEADS"], n_layers=p["N_LAYERS"]))
    train(model, {"train": syn.train, "val": syn.val},
          TrainConfig(epochs=p["EPOCHS"], batch_size=p["BATCH"], lr=p["LR"], seed=p["SEED"], patience=None,
                      progress=False, device="cpu"))
    out = predict(model, syn.test, batch_size=256, device="cpu")
    y, forecast = out["target"].ravel(), out["regression"].ravel()
    baselines = baseline_forecasts(syn)
    ours, oracle = forecast_skill(forecast, y), forecast_skill(oracle_forecast(syn), y)
    assert ours.ic >= 0.8 * oracle.ic, f"IC {ours.ic:.3f} is below 0.8 × the oracle's {oracle.ic:.3f}"
    # the page compares the model with the same-information baseline: it must stay a strong one
    same = forecast_skill(baselines[SAME_INFORMATION], y)
    assert same.ic >= 0.9 * oracle.ic, f"{SAME_INFORMATION} IC {same.ic:.3f} is below 0.9 × the oracle's"
    diff = stats.paired_difference_test(forecast, baselines["ridge (last bar)"], "ic", outcome=y,
                                        names=("transformer", "ridge (last bar)"))
    se = (diff.high - diff.low) / (2 * 1.959964)  # the bootstrap interval's standard error
    assert diff.estimate > 2 * se, f"the window adds nothing over the last bar: {diff}"
    assert np.isfinite(se) and se > 0
