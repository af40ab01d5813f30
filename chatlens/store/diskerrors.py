"""A full disk, a project folder that cannot be written or DuckDB's memory limit reached, as a
chatlens error.

DuckDB and SQLite report these as their own errors (``IOException``, ``FatalException``,
``TransactionException``, ``sqlite3.OperationalError``) with the operating system's words in the
message, Python as ``OSError`` with an errno. :func:`storage_errors` turns any of them, wherever in
the chain of causes, into a :class:`~chatlens.errors.ProjectError` whose message says what
happened and what to do; every other error passes through unchanged. Each stage writes in
transactions, so what a failed command had not committed is rolled back with it.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chatlens.errors import ChatlensError, ProjectError

_FULL = "full"
_READ_ONLY = "read-only"
_MEMORY = "memory"
#: the operating system's words, as DuckDB and SQLite quote them
_WORDS = (("No space left on device", _FULL), ("Disk quota exceeded", _FULL),
          ("File too large", _FULL), ("database or disk is full", _FULL),
          ("Read-only file system", _READ_ONLY), ("Permission denied", _READ_ONLY),
          ("attempt to write a readonly database", _READ_ONLY),
          ("Operation not permitted", _READ_ONLY),
          ("Out of Memory Error", _MEMORY), ("could not allocate block", _MEMORY))
_ERRNOS = {errno.ENOSPC: _FULL, errno.EDQUOT: _FULL, errno.EFBIG: _FULL,
           errno.EROFS: _READ_ONLY, errno.EACCES: _READ_ONLY, errno.EPERM: _READ_ONLY}


def storage_problem(exc: BaseException) -> tuple[str, str] | None:
    """("full" | "read-only", the system's words) when ``exc`` or one of its causes is a full
    disk or a folder that cannot be written; else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _ERRNOS:
            return _ERRNOS[cur.errno], cur.strerror or str(cur)
        if not isinstance(cur, ChatlensError):
            text = str(cur)
            for words, kind in _WORDS:
                if words in text:
                    return kind, words
        cur = cur.__cause__ or cur.__context__
    return None


def storage_message(root: str | Path, kind: str, words: str) -> str:
    if kind == _MEMORY:
        return (f"The project store {root} ran out of the memory it may use ({words}). Raise "
                "CHATLENS_LOAD_MEMORY (ingest, 256MB by default) or CHATLENS_MEMORY_LIMIT (other "
                "commands, 1GB by default), e.g. CHATLENS_LOAD_MEMORY=1GB, and run the command "
                "again: what it had committed is kept and an ingest resumes where it stopped.")
    if kind == _FULL:
        return (f"The disk that holds the project {root} is full ({words}). The command stopped "
                "and what it had not finished was rolled back; free some space and run it "
                "again.")
    return (f"The project {root} cannot be written ({words}): its folder is read-only or "
            "belongs to another user. Commands that only read it still work; to change it, make "
            "it writable or copy it somewhere that is.")


@contextmanager
def storage_errors(root: str | Path) -> Iterator[None]:
    """Raise a :class:`ProjectError` for a full disk or an unwritable project (see above)."""
    try:
        yield
    except ChatlensError:
        raise
    except Exception as exc:  # DuckDB's errors derive from Exception only
        found = storage_problem(exc)
        if found is None:
            raise
        raise ProjectError(storage_message(root, *found)) from exc
