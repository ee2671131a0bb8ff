"""What chapters show: real library code (valid Python), tables laid out for the page, verdicts as prose."""

from __future__ import annotations

import ast

import pandas as pd
import pytest

from flashtrade_lib.exercises import Feedback
from flashtrade_lib.measure.env import pick_device
from flashtrade_lib.show import say, show_source, show_table, source_of


def test_method_source_is_valid_python() -> None:
    src = source_of(Feedback.__bool__)  # an indented method with a one-line signature
    ast.parse(src)
    assert src.startswith("def __bool__") and "\n        return" not in src and "\n    return" in src


def test_function_source_is_shown_in_a_python_fence() -> None:
    md = show_source(pick_device).data
    code = md.split("```python\n", 1)[1].rsplit("\n```", 1)[0]
    ast.parse(code)
    assert "def pick_device" in code


def test_long_listings_start_folded_with_their_name_and_length() -> None:
    """Over FOLD_LINES lines, a listing is a <details> (the book and JupyterLab fold it)."""
    from flashtrade_lib import show
    from flashtrade_lib.trading.backtest import backtest

    n_lines = source_of(backtest).count("\n") + 1
    assert n_lines > show.FOLD_LINES, "pick a longer function for this test"
    md = show_source(backtest).data
    assert md.startswith('<details class="ft-source">') and md.rstrip().endswith("</details>")
    assert f"({n_lines} lines)" in md and "<code>flashtrade_lib.trading.backtest.backtest</code>" in md
    code = md.split("```python\n", 1)[1].rsplit("\n```", 1)[0]
    ast.parse(code)
    short = show_source(pick_device).data
    assert "<details" not in short and "<details" in show_source(pick_device, fold=True).data
    assert "<details" not in show_source(backtest, fold=False).data


def test_show_table_names_rounds_and_states_a_repeated_value_once() -> None:
    frame = pd.DataFrame({"sharpe": [0.123456, -1.5], "max_drawdown": [0.2, 0.35],
                          "inputs": ["float32, d 64", "float32, d 64"], "note": ["`sdpa` | fast", "x"]},
                         index=pd.Index(["ridge", "model"], name="strategy"))
    md = show_table(frame, {"strategy": "strategy", "sharpe": "Sharpe", "inputs": "inputs", "note": "note"},
                    digits=2).data
    head, rule, *rows = md.split("\n\n")[0].splitlines()
    assert head == "| strategy | Sharpe | note |"
    assert rule == "|:---|---:|:---|"
    assert rows == ["| ridge | 0.12 | `sdpa` \\| fast |", "| model | -1.50 | x |"]
    assert md.endswith("Every row: inputs float32, d 64.")
    assert "max_drawdown" not in md


def test_show_table_says_what_is_wrong() -> None:
    with pytest.raises(KeyError, match="no column"):
        show_table(pd.DataFrame({"a": [1]}), ["b"])
    with pytest.raises(ValueError, match="no rows"):
        show_table(pd.DataFrame({"a": []}))
    with pytest.raises(ValueError, match="non-empty"):
        say("  ")
    assert say("The interval contains 0: no evidence of skill.").data.startswith("The interval")


def test_compare_times_words_follow_the_numbers() -> None:
    from flashtrade_lib.show import compare_times

    assert compare_times("SDPA", 0.1, "NumPy", 0.25).endswith("SDPA is 2.5× faster")
    assert compare_times("SDPA", 0.5, "NumPy", 0.25).endswith("SDPA is 2.0× slower")
    assert compare_times("SDPA", 0.26, "NumPy", 0.25).endswith("about as fast")
    with pytest.raises(ValueError, match="positive"):
        compare_times("SDPA", 0.0, "NumPy", 0.25)
