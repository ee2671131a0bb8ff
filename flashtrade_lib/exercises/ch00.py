"""Exercise checks for the setup chapter (00_setup)."""

from __future__ import annotations

import os

from flashtrade_lib.exercises import Feedback, register


@register(
    "ch00-cores",
    title="How many CPU cores does this machine have?",
)
def _grade_cores(answer: object) -> Feedback:
    actual = os.cpu_count()
    if not isinstance(answer, int):
        return Feedback(False, f"expected an int, got {type(answer).__name__}; try os.cpu_count().")
    if answer != actual:
        return Feedback(False, f"you said {answer}, but Python sees {actual} logical cores.")
    return Feedback(True, f"this machine has {actual} logical cores.")
