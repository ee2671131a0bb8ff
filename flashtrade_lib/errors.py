"""The one base class for errors a person can act on.

Every error the library raises on purpose — bad input, a run that diverged, a
corrupt checkpoint, an output folder that would be overwritten — derives from
:class:`FlashTradeError`. The command line (``flashtrade ...``) catches this base
and prints the message as *one line* (no traceback) before exiting non-zero, so
the message must say what was wrong and what to do. Anything else that escapes
is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["FlashTradeError"]


class FlashTradeError(Exception):
    """A failure the user can fix; the CLI prints it as one line and exits non-zero.

    Subclasses also derive from the builtin that fits (``ValueError``,
    ``RuntimeError``, ...), so callers catching those keep working.
    """
