"""Opening the project from the dashboard: read-only, shared while busy, never holding writers off.

Requests share one read-only DuckDB connection (each gets its own cursor), so DuckDB's cache stays
warm while someone browses. It reads the snapshot the last writer published (see
:mod:`chatlens.store.snapshot`), so pages keep working while a CLI command writes, and show a
"being updated" notice meanwhile. When a newer file is to be read (a writer published, or one
started while the dashboard read the main file), new requests get a new connection and the old
one closes when its last request ends. An unused connection closes after :data:`IDLE_CLOSE_S`.
Only when there is nothing to read yet (a writer is publishing the first snapshot) does a page
wait briefly, then show "being updated" and reload itself. Labels go to ``labels.sqlite`` (SQLite
in WAL mode), which never needs DuckDB's lock. Slow summaries are cached per data version: the
read file's and the label database's size and modification time.
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
from chatlens.store import snapshot
from chatlens.store.core import Store
from chatlens.store.labels import LABELS_DB

T = TypeVar("T")

#: Seconds an unused shared connection stays open.
IDLE_CLOSE_S = 1.0
#: Seconds a page waits for a readable copy before it shows "being updated".
OPEN_WAIT_S = 2.0


class ProjectBusy(ProjectLockedError):
    """The project is being written by another process; try again shortly."""


def _stat(path: Path) -> tuple[int, ...]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(eq=False)
class _Shared:
    store: Store
    key: tuple[Any, ...]
    users: int = 0


@dataclass
class ProjectAccess:
    """How the dashboard reaches one project directory."""

    root: Path
    codebook_ref: str | None = None
    _cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key_locks: dict[tuple[Any, ...], threading.Lock] = field(default_factory=dict)
    _shared: _Shared | None = None
    _retired: list[_Shared] = field(default_factory=list)
    _last_used: float = 0.0

    def _data_key(self) -> tuple[Any, ...]:
        """Which file readers open now, and its version (None: nothing readable yet)."""
        choice = snapshot.read_path(self.root)
        if choice is None:
            return (None,)
        path = choice[0]
        return (path.name, _stat(path), _stat(path.with_name(path.name + ".wal")))

    def version(self, labels: bool = False) -> tuple[Any, ...]:
        v = self._data_key()
        if labels:
            v += (_stat(self.root / LABELS_DB), _stat(self.root / (LABELS_DB + "-wal")))
        return v

    def updating(self) -> dict[str, Any] | None:
        """While another process writes: ``{"pid", "since", "as_of"}`` (``as_of``: when the
        snapshot shown was published); else None."""
        info = snapshot.writer(self.root)
        if info is None:
            return None
        return {**info, "as_of": snapshot.published(self.root)}

    @contextmanager
    def project(self) -> Iterator[Project]:
        shared = self._acquire()
        proj: Project | None = None
        try:
            proj = Project(shared.store.cursor(), self.codebook_ref)
            proj.store.con.execute("SET enable_progress_bar = false")
            yield proj
        except duckdb.IOException as exc:
            raise ProjectBusy(str(exc)) from None
        finally:
            if proj is not None:
                proj.close()  # the request's cursor only
            self._release(shared)

    def _acquire(self) -> _Shared:
        key = self._data_key()
        with self._lock:
            if self._shared is not None and self._shared.key != key:
                self._retire()
            if self._shared is None:
                try:
                    store = Store.open(self.root, read_only=True, wait_s=OPEN_WAIT_S)
                except ProjectLockedError as exc:  # Store.open turns every lock error into this
                    raise ProjectBusy(str(exc)) from None
                self._shared = _Shared(store, self._data_key())
            self._shared.users += 1
            return self._shared

    def _retire(self) -> None:
        """Stop handing out the shared connection; close it once its requests end (the caller
        holds the lock)."""
        assert self._shared is not None
        if self._shared.users == 0:
            self._shared.store.close()
        else:
            self._retired.append(self._shared)
        self._shared = None

    def _release(self, shared: _Shared) -> None:
        with self._lock:
            shared.users -= 1
            self._last_used = time.monotonic()
            if shared in self._retired and shared.users == 0:
                self._retired.remove(shared)
                shared.store.close()
            if shared is self._shared and shared.users == 0:
                timer = threading.Timer(IDLE_CLOSE_S, self._close_if_idle)
                timer.daemon = True
                timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            idle = time.monotonic() - self._last_used >= IDLE_CLOSE_S * 0.99
            if self._shared is not None and self._shared.users == 0 and idle:
                self._retire()

    def close(self) -> None:
        """Close the shared connections (when the server stops)."""
        with self._lock:
            for shared in [*self._retired, *([self._shared] if self._shared else [])]:
                shared.store.close()
            self._retired.clear()
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
