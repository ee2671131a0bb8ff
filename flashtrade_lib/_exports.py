"""Lazy exports for the library's parts: ``from flashtrade_lib.trading import backtest`` works
without importing every module of the part (and torch, arch, statsmodels with them).

Why lazy: the command line's ``--help`` and the NumPy-only chapters must not pay for imports
they never use, and a part's ``__init__`` that imported all its modules eagerly would tie
them into import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """``__getattr__`` and ``__all__`` for a package whose names live in its modules.

    ``exports`` maps a public name to the module (relative to ``package``) defining it.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, list(exports)
