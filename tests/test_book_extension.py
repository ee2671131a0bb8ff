"""The book's Sphinx extension (book/_ext/flashtrade_offline.py), without building the book."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from conftest import ROOT

SPEC = importlib.util.spec_from_file_location("flashtrade_offline", ROOT / "book" / "_ext" / "flashtrade_offline.py")
ext = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ext)


def test_chapter_items_are_numbered_within_their_chapter() -> None:
    env = SimpleNamespace(toc_fignumbers={
        "notebooks/02_online_softmax": {"exercise": {"ex-a": (3,), "ex-b": (4,)}, "theorem": {"thm": (1,)}},
        "notebooks/08_backtesting": {"exercise": {"ex-z": (19,), "ex-y": (18,), "ex-x": (20,)}},
        "book/course_guide": {"exercise": {"ex-guide": (21,)}},
    })
    ext.number_per_chapter(None, env)
    numbers = env.toc_fignumbers
    assert numbers["notebooks/02_online_softmax"] == {"exercise": {"ex-a": (2, 1), "ex-b": (2, 2)},
                                                       "theorem": {"thm": (2, 1)}}
    assert numbers["notebooks/08_backtesting"]["exercise"] == {"ex-y": (8, 1), "ex-z": (8, 2), "ex-x": (8, 3)}
    assert numbers["book/course_guide"]["exercise"] == {"ex-guide": (21,)}  # not a chapter: left alone
