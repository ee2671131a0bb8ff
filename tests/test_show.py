"""show_source renders the library's real code, correctly indented (a listing must be valid Python)."""

from __future__ import annotations

import ast

from flashtrade_lib.env import pick_device
from flashtrade_lib.exercises import Feedback
from flashtrade_lib.show import show_source, source_of


def test_method_source_is_valid_python() -> None:
    src = source_of(Feedback.__bool__)  # an indented method with a one-line signature
    ast.parse(src)
    assert src.startswith("def __bool__") and "\n        return" not in src and "\n    return" in src


def test_function_source_is_shown_in_a_python_fence() -> None:
    md = show_source(pick_device).data
    code = md.split("```python\n", 1)[1].rsplit("\n```", 1)[0]
    ast.parse(code)
    assert "def pick_device" in code
