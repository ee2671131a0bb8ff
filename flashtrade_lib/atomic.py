"""Every file the library or the CLI writes appears whole or not at all.

Why: a write interrupted half-way — a kill, a full disk, a Ctrl-C — must never leave a
truncated file where a reader (the next chapter, the cache, a checkpoint loader) would
take it for a good one, and must never destroy the previous good file. So a file is
written to a temporary name beside it (``.<name>.<pid>.<random>.tmp``, same folder, so
same file system), flushed to disk, then renamed over the target with :func:`os.replace`
(atomic on POSIX and Windows). On any failure the temporary file is removed and a failure
of the disk (``ENOSPC``, a read-only folder, ...) is one :class:`WriteError` naming the
file. What a *killed* writer leaves behind is removed by the next writer of that file
(:func:`remove_orphans`): its process id is in the name, so a live writer's file is kept.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from flashtrade_lib.errors import FlashTradeError

__all__ = ["WriteError", "atomic_path", "remove_orphans", "write_text_atomic"]


class WriteError(FlashTradeError, OSError):
    """A file could not be written (disk full, no permission...); nothing partial was left."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def remove_orphans(path: str | os.PathLike[str], *, all_of_them: bool = False) -> list[Path]:
    """Remove the temporary files killed writers of ``path`` left beside it; returns what was removed.

    A temporary file whose writer process is still alive is kept, unless
    ``all_of_them=True`` (for callers that hold a lock every writer takes, like the bar cache).
    """
    path = Path(path)
    removed = []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)\.)?[^.]+\.tmp$")
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.match(orphan.name)
        if match is None:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if all_of_them or pid is None or (pid != os.getpid() and not _pid_alive(pid)):
            orphan.unlink(missing_ok=True)
            removed.append(orphan)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it replaces ``path`` atomically.

    ``with atomic_path("out.csv") as tmp: frame.to_csv(tmp)``. If the block raises, the
    temporary file is removed and ``path`` is untouched; an ``OSError`` (a full disk, ...)
    becomes a :class:`WriteError` that names ``path`` and says nothing was written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(path)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_error(path: Path, exc: OSError) -> WriteError:
    if isinstance(exc, WriteError):
        return exc
    why = exc.strerror or str(exc) or type(exc).__name__
    err = WriteError(f"cannot write {path}: {why}; nothing was written (a previous {path.name}, if any, "
                     "is unchanged)")
    err.errno = exc.errno
    return err


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
