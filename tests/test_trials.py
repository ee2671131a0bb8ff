"""The ledger of the book's trials: counts follow the grids the chapters use, and only those.

Issue 16: a multiple-testing statistic must count every strategy or lookback actually tried.
``flashtrade_lib.trading.trials`` derives each chapter's count from its grid; these tests check that the
counts move with the grids, that seeds and folds are not trials, and that the chapters (and the
recorded sweep's script) take their grids from the library instead of typing them again.
"""

from __future__ import annotations

import importlib.util
import re

import nbformat
import pytest
from conftest import ROOT

from flashtrade_lib.measure import env
from flashtrade_lib.measure.bench import load_record
from flashtrade_lib.model.cross_asset import LAYOUTS
from flashtrade_lib.trading import trials

NO_RECORD: tuple[int, ...] = ()


def ledger(**grids) -> trials.Ledger:
    return trials.book_ledger(**{"recorded_lookbacks": NO_RECORD, **grids})


def test_chapter8_count_is_its_grid() -> None:
    f, k, r = len(trials.FORECASTERS), len(trials.K_GRID), len(trials.position_rules())
    # the seed's rule (section 3) + buy-and-hold + forecaster × rule + forecaster × k
    assert ledger().count(8) == 1 + 1 + f * r + f * k == 42


def test_book_total_is_the_sum_of_its_chapters() -> None:
    book = ledger()
    assert book.total == book.count(8) + book.count(9) + book.count(10)
    assert book.count(9) == len(trials.REAL_LOOKBACKS)
    assert book.count(10) == len(LAYOUTS)
    assert list(book.table()["book so far"])[-1] == book.total


def test_adding_a_grid_value_adds_its_trials() -> None:
    base = ledger()
    more_k = ledger(k_grid=(*trials.K_GRID, 8))
    assert more_k.count(8) == base.count(8) + len(trials.FORECASTERS)
    more_lookbacks = ledger(live_lookbacks=(*trials.REAL_LOOKBACKS, 256))
    assert more_lookbacks.total == base.total + 1
    fewer_models = ledger(forecasters=trials.FORECASTERS[:2])
    assert fewer_models.count(8) == 2 + 2 * (len(trials.position_rules()) + len(trials.K_GRID))


def test_a_repeated_value_is_not_another_trial() -> None:
    assert ledger(k_grid=(*trials.K_GRID, trials.K_GRID[-1])).total == ledger().total
    assert trials.Search(9, "x", "lookbacks", {"lookbacks": (8, 8, 32)}).trials == 2


def test_seeds_and_folds_are_replicas_not_trials() -> None:
    """The recorded sweep counts its lookbacks, however many seeds and folds ran each."""
    small = {"settings": {"lookbacks": [8, 32, 128], "seeds": [0], "folds": 2}}
    large = {"settings": {"lookbacks": [8, 32, 128], "seeds": [0, 1, 2, 3], "folds": 6}}
    counts = {trials.book_ledger(recorded_lookbacks=trials.recorded_sweep_lookbacks(rec)).count(9)
              for rec in (small, large)}
    assert counts == {len(trials.REAL_LOOKBACKS) + 3}


def test_no_recorded_sweep_adds_no_trials() -> None:
    search = ledger().search("ch09-recorded")
    assert search.trials == 0
    assert "not recorded" in search.what


def test_the_recorded_sweep_counts_what_its_record_says() -> None:
    record = load_record(trials.SWEEP_RECORD)
    expected = len(set(record["settings"]["lookbacks"])) if record is not None else 0
    assert trials.book_ledger().search("ch09-recorded").trials == expected


def test_running_total_and_unknown_keys() -> None:
    book = ledger()
    assert book.through("ch08-frontier") == book.count(8)
    assert book.through("ch09-live") == book.count(8) + len(trials.REAL_LOOKBACKS)
    assert book.through("ch10-layouts") == book.total
    with pytest.raises(KeyError, match="no search"):
        book.through("ch11")
    with pytest.raises(ValueError, match="unique"):
        trials.Ledger((trials.Search(8, "a", "x"), trials.Search(9, "a", "y")))


def test_gpu_sweeps_count_the_gpu_grid() -> None:
    assert ledger(device="cuda").count(9) == len(trials.REAL_LOOKBACKS_GPU)
    assert ledger(device="cpu").count(9) == len(trials.REAL_LOOKBACKS)


def _parameters(name: str, device: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """What a notebook's ``parameters`` cell sets on ``device``."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    monkeypatch.setattr(env, "pick_device", lambda *a, **k: device)
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - the repository's own notebook
    return namespace


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_chapters_run_the_grids_the_ledger_counts(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ch8 = _parameters("08_backtesting.ipynb", device, monkeypatch)
    assert tuple(ch8["K_GRID"]) == trials.K_GRID and ch8["FILL_LAG"] == trials.FILL_LAG
    ch9 = _parameters("09_long_context.ipynb", device, monkeypatch)
    assert tuple(ch9["REAL_LOOKBACKS"]) == trials.live_sweep_lookbacks(device)


TYPED_GRIDS = re.compile(r"^\s*(K_GRID|FILL_LAG|REAL_LOOKBACKS|MODELS|LAYOUTS)\s*=\s*[\[({\d]", re.MULTILINE)


@pytest.mark.parametrize("name", ["08_backtesting.ipynb", "09_long_context.ipynb", "10_beyond_one_series.ipynb"])
def test_no_chapter_types_a_counted_grid_again(name: str) -> None:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    typed = [m.group(0).strip() for c in nb.cells if c.cell_type == "code" for m in TYPED_GRIDS.finditer(c.source)]
    assert not typed, f"{name} types a grid that flashtrade_lib.trading.trials counts: {typed}; import it instead"


def test_recorded_sweep_script_defaults_to_the_library_grid() -> None:
    spec = importlib.util.spec_from_file_location("lookback_sweep_benchmark", ROOT / "benchmarks" / "lookback_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert tuple(module.parse([]).lookbacks) == trials.FULL_LENGTH_LOOKBACKS
    assert module.parse([]).out == trials.SWEEP_RECORD
