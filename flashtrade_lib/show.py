"""What a chapter shows: the library's real source, tables laid out for the page, verdicts as prose."""

from __future__ import annotations

import html
import inspect
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from IPython.display import Markdown


def source_of(obj: Any) -> str:
    """The source code of a function, class or module, dedented."""
    # textwrap.dedent, not inspect.cleandoc: cleandoc strips the first line on its own,
    # which shifts the body of an indented method to column 0.
    return textwrap.dedent(inspect.getsource(obj)).strip("\n")


FOLD_LINES = 25  # listings longer than this start folded, as QuantEcon and d2l fold theirs


def show_source(obj: Any, *, fold: bool | None = None) -> Markdown:
    """Render ``obj``'s source as a highlighted code block (in JupyterLab and in the book).

    Chapters call this on the library functions they explain, so the reader sees the
    code the tests check — never a copy that could drift from it. A listing longer than
    ``FOLD_LINES`` lines starts folded (an HTML ``<details>`` that JupyterLab and the
    book both show as a click-to-open line naming the function and its length), so the
    chapter's argument is not lost under a wall of code; ``fold`` forces either way. The
    PDF, which cannot fold, prints the listing in full.
    """
    src = source_of(obj).rstrip()
    fence = "````" if "```" in src else "```"
    where = f"{obj.__module__}.{obj.__qualname__}" if hasattr(obj, "__qualname__") else obj.__name__
    n_lines = src.count("\n") + 1
    code = f"{fence}python\n{src}\n{fence}"
    if not (n_lines > FOLD_LINES if fold is None else fold):
        return Markdown(f"*Source of* `{where}`:\n\n{code}")
    summary = f"Source of <code>{html.escape(where)}</code> ({n_lines} lines)"
    # blank lines around the fence: Markdown inside an HTML block is parsed only after one
    return Markdown(f'<details class="ft-source">\n<summary>{summary}</summary>\n\n{code}\n\n</details>')


def say(text: str) -> Markdown:
    """Show a sentence the code chose (a verdict, a conclusion) as prose that wraps.

    ``print`` puts it in a fixed-width block that scrolls sideways on the page; a verdict
    is the sentence the reader most needs to see whole.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"say() needs a non-empty sentence, got {text!r}")
    return Markdown(text)


def show_table(
    table: Any,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    *,
    digits: int = 3,
    caption: str | None = None,
    index: bool = True,
) -> Markdown:
    """A table laid out for the page: chosen, named columns, rounded numbers, no repetition.

    ``table`` is a DataFrame (or anything ``pandas.DataFrame`` accepts, e.g. a list of
    dicts). ``columns`` picks columns in order — a mapping also renames them for the
    reader (``{"max_drawdown": "max DD"}``). Floats are shown with ``digits`` decimals.
    A column that holds one value on every row is stated once under the table instead of
    repeated. Cells are Markdown, so `code` renders as code; the table itself renders as
    a table in JupyterLab and in the book (which scrolls it if it is still too wide).
    """
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    if index and not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    if columns is not None:
        names = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise KeyError(f"show_table: no column(s) {missing}; the table has {list(frame.columns)}")
        frame = frame[list(names)].rename(columns=names)
    if frame.empty:
        raise ValueError("show_table: the table has no rows (or no columns) to show")

    constant = {}
    if len(frame) > 1:
        for name in frame.columns:
            values = frame[name].map(_cell, digits=digits)
            if values.nunique() == 1 and values.iloc[0]:
                constant[name] = values.iloc[0]
        if len(constant) == frame.shape[1]:
            constant = {}  # nothing would be left: show the one repeated row as it is
        frame = frame.drop(columns=list(constant))
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    lines = [
        "| " + " | ".join(_escape(str(c)) for c in frame.columns) + " |",
        "|" + "|".join("---:" if n else ":---" for n in numeric) + "|",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_escape(_cell(v, digits=digits)) for v in row) + " |")
    notes = [caption] if caption else []
    if constant:
        notes.append("Every row: " + "; ".join(f"{k} {v}" for k, v in constant.items()) + ".")
    return Markdown("\n".join(lines) + ("\n\n" + " ".join(notes) if notes else ""))


def _cell(value: Any, *, digits: int) -> str:
    """One cell as text: floats rounded to ``digits`` decimals, missing values as a dash."""
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        value = float(value)
        if math.isnan(value):
            return "–"
        return f"{value:,.{digits}f}"
    return " ".join(str(value).split())


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def compare_times(name_a: str, seconds_a: float, name_b: str, seconds_b: float, *, same_within: float = 0.1) -> str:
    """Two measured times as a sentence whose verdict follows the numbers: "A is 2.4× faster than B".

    Within ``same_within`` (relative) of each other they are "about as fast"; chapters print
    this instead of typing "faster", so the word stays true on the reader's machine.
    """
    for name, s in ((name_a, seconds_a), (name_b, seconds_b)):
        if not s > 0:
            raise ValueError(f"compare_times: {name}'s time must be a positive number of seconds, got {s!r}")
    ratio = seconds_b / seconds_a
    took = f"{name_a} took {seconds_a:.3g} s and {name_b} {seconds_b:.3g} s"
    if abs(ratio - 1) <= same_within:
        return f"{took}: about as fast"
    if ratio > 1:
        return f"{took}: {name_a} is {ratio:.1f}× faster"
    return f"{took}: {name_a} is {1 / ratio:.1f}× slower"
