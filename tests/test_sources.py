"""The data-source registry: a new source is one register() call, and every consumer sees it."""

from __future__ import annotations

import pytest

from flashtrade_lib.cli import build_parser
from flashtrade_lib.data import sources
from flashtrade_lib.data.sources import DataSource, Loaded, get_source, register, source_names
from flashtrade_lib.data.synthetic import simulate_market
from flashtrade_lib.data.tasks import market_datasets


@pytest.fixture
def toy():
    """A bundled-style toy source, registered for one test and removed after it."""

    def load(n_bars: int = 600) -> Loaded:
        return Loaded(simulate_market(n_bars, 1, 7, planted_lag=None).panel)

    entry = register(DataSource("toy-1h", "bundled", "a toy", load, options=("n_bars",), calendar="equity"))
    yield entry
    del sources._REGISTRY["toy-1h"]


def test_one_entry_reaches_every_consumer(toy):
    assert "toy-1h" in source_names(kind="bundled") and "toy-1h" in source_names(offline=True)
    assert len(sources.load_bundled("toy-1h", n_bars=300)) == 300
    data = market_datasets("toy-1h", lookback=16, n_bars=500)
    assert data.metadata["source"] == "toy-1h" and data.metadata["toy-1h"] == {"n_bars": 500}
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    assert "toy-1h" in next(a for a in train._actions if a.dest == "data").help
    assert get_source("toy-1h").calendar == "equity"
    # the bars carry the entry's calendar into the task, whatever the loader stamped
    assert data.metadata["calendar"] == "equity" and data.metadata["periods_per_year"] == 1638


def test_the_registry_knows_the_shipped_sources():
    assert source_names(offline=True) == ("crypto-30m", "eurusd-1h", "synthetic")
    assert source_names(kind="live") == ("bybit", "yahoo")
    assert get_source("eurusd-1h").calendar == "fx"


def test_bad_names_and_entries_are_refused(toy):
    with pytest.raises(ValueError, match="unknown data source 'nope'; available offline sources: 'crypto-30m'"):
        get_source("nope", offline=True)
    with pytest.raises(ValueError, match="already registered"):
        register(toy)
    with pytest.raises(ValueError, match="a live source is read from the cache"):
        register(DataSource("half", "live", "x", load=toy.load, calendar="crypto"))
    with pytest.raises(ValueError, match="calendar must be one of"):
        register(DataSource("odd", "bundled", "x", load=toy.load, calendar="lunar"))
    with pytest.raises(TypeError, match="takes no options \\['symbols'\\]"):
        sources.load_bundled("toy-1h", symbols=["A"])
