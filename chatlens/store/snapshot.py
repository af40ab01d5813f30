"""Readers and the one writer: a writer lock and a published read snapshot.

DuckDB lets one process write a file, and no process read it while that one writes. So:

* Every writer first takes ``writer.lock`` (an ``flock``, released by the kernel when the process
  dies, even by ``kill -9``), then opens ``chatlens.duckdb``. Writers queue on it in turn.
* When a writer closes, having changed the database, it publishes a copy, ``snapshot.duckdb``
  (copied, fsynced, then renamed into place, so it is always a whole committed state), still
  under the lock. ``snapshot.json`` records which state of the main file it copies.
* A reader opens the snapshot while it is that of the current main file, or while a writer holds
  the lock (then it shows the project as of the writer's start); otherwise (after a killed writer,
  or a project made before snapshots) it opens the main file read-only. A reader that finds a
  writer waiting never opens the main file: it reads the snapshot, or waits for the one the
  writer publishes first. So browsing cannot keep a writer out; a writer waits at most for the
  readers already inside the main file.

The copy costs one sequential read and write of the file per changing command (in-kernel
``copy_file_range``; a clone on file systems that share blocks); see the report of issue 14.
Commands that only read (``estimate``, ``export``, …) log their runs in the label store, so they
open the project read-only and publish nothing."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatlens.errors import ProjectLockedError
from chatlens.store.diskerrors import storage_errors

DB_NAME = "chatlens.duckdb"
SNAPSHOT_NAME = "snapshot.duckdb"
STAMP_NAME = "snapshot.json"
LOCK_NAME = "writer.lock"


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def writer(root: Path) -> dict[str, Any] | None:
    """The process holding the writer lock (``{"pid", "since"}``), or None when nobody writes."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info: dict[str, Any] = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:  # the holder is writing its details right now
                info = {}
            return info
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


#: Writer locks this process holds: ``{project dir: [fd, holders]}``. Like DuckDB, which lets one
#: process open a file for writing many times, one process may hold the lock many times.
_HELD: dict[Path, list[int]] = {}
_HELD_LOCK = threading.Lock()


@dataclass(slots=True)
class WriterLock:
    """The project's writer lock, held from a writable open until its close."""

    root: Path
    held: bool = True

    @classmethod
    def take(cls, root: Path, wait_s: float) -> WriterLock:
        """Take the lock, waiting up to ``wait_s`` for the writer before us."""
        key = root.resolve()
        with _HELD_LOCK:
            if key in _HELD:
                _HELD[key][1] += 1
                return cls(root)
        with storage_errors(root):  # a read-only or full project: a clear ProjectError
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = writer(root) or {}
                    os.close(fd)
                    pid = f" (process {holder['pid']})" if holder.get("pid") else ""
                    raise ProjectLockedError(
                        f"The project {root} is being written by another chatlens "
                        f"command{pid}. Wait for it to finish, or stop it, then run this "
                        "command again. Reading commands and the dashboard keep working "
                        "meanwhile.") from None
                time.sleep(0.1)
        # who holds it, for the message above; on a full disk the lock holds without it
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(),
                                      "since": datetime.now(UTC).isoformat()}).encode(), 0)
        with _HELD_LOCK:
            _HELD[key] = [fd, 1]
        return cls(root)

    def release(self) -> bool:
        """Let go; True when this process no longer holds the lock (the last holder left)."""
        if not self.held:
            return False
        self.held = False
        key = self.root.resolve()
        with _HELD_LOCK:
            entry = _HELD[key]
            entry[1] -= 1
            if entry[1] > 0:
                return False
            del _HELD[key]
        with contextlib.suppress(OSError):
            os.ftruncate(entry[0], 0)
        os.close(entry[0])  # closing the descriptor drops the flock
        return True

    def last(self) -> bool:
        """Whether this is the process's only hold on the lock."""
        with _HELD_LOCK:
            return _HELD.get(self.root.resolve(), [0, 0])[1] == 1


def is_fresh(root: Path) -> bool:
    """Whether the snapshot holds the main file's current state."""
    if (root / (DB_NAME + ".wal")).exists() or not (root / SNAPSHOT_NAME).exists():
        return False
    try:
        stamp = json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("main") == _stat(root / DB_NAME))


def publish(root: Path) -> None:
    """Copy the closed main file to the snapshot. The caller holds the writer lock and has
    closed its connection (so the file is checkpointed and nothing writes it)."""
    if is_fresh(root):
        return
    main, tmp = root / DB_NAME, root / f".{SNAPSHOT_NAME}.tmp"
    with open(main, "rb") as src, open(tmp, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        done = 0
        while done < size:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - done)
            if n == 0:
                break
            done += n
        os.fsync(dst.fileno())
    os.replace(tmp, root / SNAPSHOT_NAME)
    stamp_tmp = root / f".{STAMP_NAME}.tmp"
    stamp_tmp.write_text(json.dumps({"main": _stat(main),
                                     "published": datetime.now(UTC).isoformat()}))
    os.replace(stamp_tmp, root / STAMP_NAME)


def published(root: Path) -> str | None:
    """When the snapshot was published (ISO time), or None."""
    try:
        return str(json.loads((root / STAMP_NAME).read_text())["published"])
    except (OSError, ValueError, KeyError):
        return None


def read_path(root: Path) -> tuple[Path, bool] | None:
    """The file a reader opens now, and whether it is the snapshot; None while a writer holds
    the lock and there is no snapshot yet (it is publishing one): the reader waits, rather than
    hold the main file the writer is waiting for."""
    snap = root / SNAPSHOT_NAME
    if snap.exists() and is_fresh(root):
        return snap, True
    if writer(root) is not None:
        return (snap, True) if snap.exists() else None
    return root / DB_NAME, False


def drop(root: Path) -> None:
    """Delete the snapshot (``forget`` removes data from every copy)."""
    for name in (STAMP_NAME, SNAPSHOT_NAME, SNAPSHOT_NAME + ".wal"):
        (root / name).unlink(missing_ok=True)
