"""Opening the project from the dashboard: read-only, shared while busy, never holding writers off.

Requests share one read-only DuckDB connection (each gets its own cursor), so DuckDB's cache stays
warm while someone browses; it is closed once no request has used it for :data:`IDLE_CLOSE_S`
seconds, which lets a CLI command take the writer lock (writers wait for it a while: see
:meth:`chatlens.store.Store.open`). While another process writes, opening fails and the dashboard
answers "project busy, retry" (HTTP 503) instead of an error. Labels go to ``labels.sqlite``
(SQLite in WAL mode), which never needs DuckDB's lock. Slow summaries are cached per data
version: the store file's and the label database's size and modification time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from chatlens.errors import ProjectLockedError
from chatlens.project import Project
from chatlens.store.core import DB_NAME, Store
from chatlens.store.labels import LABELS_DB

T = TypeVar("T")

#: Seconds an unused shared connection stays open (a writer waiting for the lock gets it then).
IDLE_CLOSE_S = 1.0


class ProjectBusy(ProjectLockedError):
    """The project is being written by another process; try again shortly."""


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


@dataclass
class ProjectAccess:
    """How the dashboard reaches one project directory."""

    root: Path
    codebook_ref: str | None = None
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key_locks: dict[tuple[Any, ...], threading.Lock] = field(default_factory=dict)
    _shared: Store | None = None
    _users: int = 0
    _last_used: float = 0.0

    def version(self, labels: bool = False) -> tuple[Any, ...]:
        v: tuple[Any, ...] = (_stat(self.root / DB_NAME), _stat(self.root / (DB_NAME + ".wal")))
        if labels:
            v += (_stat(self.root / LABELS_DB), _stat(self.root / (LABELS_DB + "-wal")))
        return v

    @contextmanager
    def project(self) -> Iterator[Project]:
        shared = self._acquire()
        proj: Project | None = None
        try:
            proj = Project(shared.cursor(), self.codebook_ref)
            proj.store.con.execute("SET enable_progress_bar = false")
            yield proj
        except duckdb.IOException as exc:
            raise ProjectBusy(str(exc)) from None
        finally:
            if proj is not None:
                proj.close()  # the request's cursor only
            self._release()

    def _acquire(self) -> Store:
        with self._lock:
            if self._shared is None:
                try:
                    self._shared = Store.open(self.root, read_only=True)
                except ProjectLockedError as exc:  # Store.open turns every lock error into this
                    raise ProjectBusy(str(exc)) from None
            self._users += 1
            return self._shared

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            self._last_used = time.monotonic()
            if self._users == 0:
                timer = threading.Timer(IDLE_CLOSE_S, self._close_if_idle)
                timer.daemon = True
                timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            idle = time.monotonic() - self._last_used >= IDLE_CLOSE_S * 0.99
            if self._users == 0 and idle:
                self._drop()

    def close(self) -> None:
        """Close the shared connection (when the server stops)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        """Close the shared connection if open (the caller holds the lock)."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def cached(self, name: str, compute: Callable[[Project], T], labels: bool = False,
               *args: Any) -> T:
        """``compute(project)`` once per data version (and ``args``); concurrent callers of the
        same key wait for one computation."""
        key = (name, args, self.version(labels))
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
            klock = self._key_locks.setdefault((name, args), threading.Lock())
        with klock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]  # type: ignore[no-any-return]
            with self.project() as proj:
                value = compute(proj)
            with self._lock:
                for old in [k for k in self._cache if k[:2] == (name, args)]:
                    del self._cache[old]
                self._cache[key] = value
        return value
