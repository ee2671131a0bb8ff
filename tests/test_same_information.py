"""Every model verdict of chapters 6-10 names a same-information baseline (issue #28).

A transformer "beats" a baseline that cannot see its window only in the sense that more
information beats less. So wherever a chapter prints a verdict about a model against
something else, the same cell or the next code cell must also judge it against a baseline
that sees the same inputs: ridge on the same window (``SAME_INFORMATION``, ``LINEAR``,
``column_b="linear"``) or a VAR on all assets' lagged returns (``VAR_BASELINE``). Chapters
with a planted market must also print the oracle.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ROOT

CHAPTERS = ["06_training", "07_prediction", "08_backtesting", "09_long_context", "10_beyond_one_series"]
PLANTED = ["06_training", "07_prediction", "09_long_context", "10_beyond_one_series"]
VERDICT = re.compile(r"\b(?:stats\.)?(?:traded_)?verdict\(|layout_verdicts\(")
MODEL_CLAIM = re.compile(r"(transformer|layout|tokens|model's)[^\"\n]{0,80}?\b(than|beats|over)\b", re.IGNORECASE)
SAME_INFO = re.compile(
    r"SAME_INFORMATION|\bLINEAR\b|VAR_BASELINE|column_b=\"linear\"|best_layout_vs_var|same-information baseline"
)


def _code_cells(name: str) -> list[str]:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


def model_verdicts_without_baseline(cells: list[str]) -> list[str]:
    """Verdict cells about a model against something, with no same-information baseline in reach."""
    missing = []
    for i, src in enumerate(cells):
        if VERDICT.search(src) and MODEL_CLAIM.search(src):
            reach = src + (cells[i + 1] if i + 1 < len(cells) else "")
            if not SAME_INFO.search(reach):
                missing.append(src.splitlines()[0][:80])
    return missing


@pytest.mark.parametrize("name", CHAPTERS)
def test_model_verdicts_name_a_same_information_baseline(name: str) -> None:
    missing = model_verdicts_without_baseline(_code_cells(name))
    assert not missing, f"{name}: model verdicts without a same-information baseline near them: {missing}"


@pytest.mark.parametrize("name", PLANTED)
def test_chapters_with_a_planted_market_print_the_oracle(name: str) -> None:
    assert any("oracle" in src and ("print(" in src or "Markdown(" in src) for src in _code_cells(name))


def test_the_scan_catches_a_verdict_against_a_weaker_baseline_only() -> None:
    bad = ['res = stats.paired_difference_test(tf, ridge_last, "ic", outcome=y)\n'
           'display(Markdown(str(stats.verdict(res, "the transformer\'s IC is higher than the last-bar ridge\'s"))))']
    good = bad + ['vs = stats.paired_difference_test(tf, same, "ic", outcome=y, names=("transformer", SAME_INFORMATION))']
    assert model_verdicts_without_baseline(bad) and not model_verdicts_without_baseline(good)
