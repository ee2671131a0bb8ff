"""Show the library's real source in a notebook instead of pasting a copy of it."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from IPython.display import Markdown


def source_of(obj: Any) -> str:
    """The source code of a function, class or module, dedented."""
    # textwrap.dedent, not inspect.cleandoc: cleandoc strips the first line on its own,
    # which shifts the body of an indented method to column 0.
    return textwrap.dedent(inspect.getsource(obj)).strip("\n")


def show_source(obj: Any) -> Markdown:
    """Render ``obj``'s source as a highlighted code block (in JupyterLab and in the book).

    Chapters call this on the library functions they explain, so the reader sees the
    code the tests check — never a copy that could drift from it.
    """
    src = source_of(obj)
    fence = "````" if "```" in src else "```"
    where = f"{obj.__module__}.{obj.__qualname__}" if hasattr(obj, "__qualname__") else obj.__name__
    return Markdown(f"*Source of* `{where}`:\n\n{fence}python\n{src.rstrip()}\n{fence}")
