"""Ingest: sources → detected importer → normalised, pseudonymised rows → store, batch by batch.

Counts reconcile for every source: ``read = stored + duplicate + quarantined``. Each batch is one
transaction together with the source's resume position, so a killed run resumes exactly.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from chatlens.errors import ChatlensError, InputError, UnknownFormatError, UsageError
from chatlens.ingest.base import (
    Bad,
    Item,
    ParseOptions,
    Record,
    Run,
    SourceInput,
)
from chatlens.ingest.discover import discover
from chatlens.ingest.registry import Detection, detect
from chatlens.ingest.rows import (
    Batch,
    LocalTime,
    Pseudonymiser,
    batch_tables,
    originals_table,
)
from chatlens.ingest.worker import Built, TableWorker
from chatlens.store import BatchResult, Store

BATCH = 20_000
#: Sources at least this large are read with a worker process (two cores) by default.
WORKER_MIN_BYTES = 64 << 20

Progress = Callable[[str, int], None]  # (source path, records read so far)


@dataclass(slots=True)
class SourceReport:
    """The outcome for one source; ``read == stored + duplicate + quarantined`` always."""

    path: str
    status: str  # complete | unchanged | skipped | failed
    format: str | None = None
    detection: str | None = None
    source_id: str | None = None
    read: int = 0
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0
    service: int = 0
    error: str | None = None
    resumed_from: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class IngestReport:
    run_id: str
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "sources": [s.as_dict() for s in self.sources],
            "totals": {k: self.total(k) for k in
                       ("read", "stored", "duplicate", "quarantined", "service")},
            "failed": len(self.failed),
        }


def hash_source(source: SourceInput) -> str:
    """sha256 over the source's files in order (names included for multi-file sources)."""
    digest = hashlib.sha256()
    for member in source.members:
        if len(source.members) > 1:
            digest.update(member.name.encode() + b"\0")
        with member.open() as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _normalise(
    items: Iterator[Item | Run],
    resume_pos: int,
) -> Iterator[tuple[int, Batch]]:
    """Yield (next position, batch) pairs; items before ``resume_pos`` are skipped, and a run
    is cut where a batch ends.

    A record without a platform id gets one derived from its content here, before skipping, so
    the ids of a resumed ingest match those of an uninterrupted one (a run's records have ids).
    """
    occurrences: dict[tuple[str, int | None, str | None, str], int] = {}
    batch = Batch()
    pos = 0  # of the next item
    for item in items:
        if isinstance(item, Run):
            start, pos = pos, pos + len(item)
            at = max(start, resume_pos)
            while at < pos:
                stop = min(pos, at + BATCH - batch.read)
                batch.pieces.append((at, item.cut(at - start, stop - start)))
                batch.read += stop - at
                at = stop
                if batch.read >= BATCH:
                    yield stop, batch
                    batch = Batch()
            continue
        if isinstance(item, Record) and item.message_id is None:  # derive one from the content
            sig = (item.chat.chat_id, item.ts_us, item.author_id, item.text)
            n = occurrences.get(sig, 0)
            occurrences[sig] = n + 1
            digest = hashlib.blake2b(
                f"{item.ts_us}\x1f{item.author_id}\x1f{item.text}\x1f{n}".encode(),
                digest_size=8,
            ).hexdigest()
            item.message_id = f"h{digest}"
        pos += 1
        if pos <= resume_pos:
            continue
        batch.pieces.append((pos - 1, item))
        batch.read += 1
        if batch.read >= BATCH:
            yield pos, batch
            batch = Batch()
    if batch.read:
        yield pos, batch


@contextmanager
def _young_gc_only() -> Iterator[None]:
    """Pause automatic garbage collection; the loop runs :func:`gc.collect` on the young
    generations once per batch instead.

    Parsing allocates millions of short-lived containers and no cycles; the automatic collector
    would otherwise walk the live batches over and over (a third of ingest time).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Workers:
    """An ingest's worker process (``CHATLENS_INGEST_WORKER``), started for the first source
    that uses one."""

    def __init__(self) -> None:
        self.mode = os.environ.get("CHATLENS_INGEST_WORKER", "auto").strip().lower()
        if self.mode not in ("auto", "on", "off"):
            raise UsageError(f"CHATLENS_INGEST_WORKER is {self.mode!r}; use auto, on or off.")
        self._worker: TableWorker | None = None

    def wants(self, source: SourceInput) -> bool:
        if self.mode == "auto":
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
            return cores > 1 and source.size >= WORKER_MIN_BYTES
        return self.mode == "on"

    def get(self) -> TableWorker:
        if self._worker is None or not self._worker.alive:
            self._worker = TableWorker()
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


def _guarded(items: Iterator[Item | Run]) -> Iterator[Item | Run]:
    """Turn an importer giving up mid-file into one quarantined record for the rest."""
    yielded = False
    try:
        for item in items:
            yielded = True
            yield item
    except InputError as exc:
        if not yielded:
            raise
        yield Bad(loc=exc.position or "rest of file", excerpt="",
                  reason=f"the rest of the file could not be read: {exc}")


def ingest_source(
    store: Store,
    source: SourceInput,
    run_id: str,
    fmt: str | None = None,
    options: ParseOptions | None = None,
    progress: Progress | None = None,
    workers: _Workers | None = None,
) -> SourceReport:
    """Ingest one source; input problems come back in the report, never as exceptions."""
    options = options or ParseOptions()
    report = SourceReport(path=source.path, status="failed")
    try:
        if source.size == 0:
            raise InputError(source.path, "the file is empty; nothing to ingest.")
        try:
            detection: Detection = detect(source, fmt)
        except UnknownFormatError as exc:
            if source.explicit:
                raise
            report.status = "skipped"  # found while searching a folder: not an export
            report.error = f"{exc} Skipped (found in a folder)."
            return report
        report.format = detection.importer.format
        report.detection = detection.reason
        parse_runs = getattr(detection.importer, "parse_runs", None)
        # started now, the worker process imports chatlens while this one hashes the file
        worker = workers.get() if workers and parse_runs and workers.wants(source) else None
        sha = hash_source(source)
        source_id = sha[:16]
        report.source_id = source_id
        state = store.source_state(source_id)
        if state is not None and state.status == "complete":
            report.status = "unchanged"
            report.error = f"already ingested from {state.path} (sha256 {sha[:12]}…); skipped."
            if options.encoding:  # the user may want it read again in another encoding
                report.error += (f" To read it again with --encoding {options.encoding}, first "
                                 f"erase it: chatlens forget --source {source_id}")
            return report
        if state is not None and state.importer != detection.importer.name:
            raise InputError(source.path, f"an interrupted ingest of this file was reading it "
                             f"as {state.importer}; rerun with --format {state.format} to "
                             "finish it the same way.")
        resume_pos = state.resume_pos if state else 0
        report.resumed_from = resume_pos
        if state is not None:  # resumed: report the whole source, not only the rest
            report.read, report.stored = state.n_read, state.n_stored
            report.duplicate, report.quarantined = state.n_duplicate, state.n_quarantined
            report.service = state.n_service
        clock = LocalTime(options.tz)
        options = replace(options, decided=[])  # this source's own decisions
        secret = store.secret()
        pseudo = Pseudonymiser(secret)
        importer = detection.importer
        items = _guarded(parse_runs(source, options) if parse_runs else importer.parse(
            source, options))
        if worker:
            worker.begin(secret, options.tz, source_id, run_id)
        started = False
        pending: Future[BatchResult] | None = None
        pending_counts = (0, 0, 0)  # read, quarantined, service of the batch being written

        def settle() -> None:
            """Wait for the batch being written and account for it."""
            nonlocal pending
            if pending is None:
                return
            result = pending.result()
            report.read += pending_counts[0]
            report.stored += result.stored
            report.duplicate += result.duplicate
            report.quarantined += pending_counts[1]
            report.service += pending_counts[2]
            pending = None
            if progress:
                progress(source.path, report.read)

        def write(batch: Batch, built: Built, next_pos: int) -> None:
            """Hand a batch's tables to the writer once the one before is stored."""
            nonlocal pending, pending_counts, started
            tables, counts = built
            tables["originals"] = originals_table(batch, tables["messages"])
            settle()
            gc.collect(1)
            if not started:
                report.detection = "; ".join([detection.reason, *options.decided])
            if not started and state is None:
                store.begin_source({
                    "source_id": source_id, "path": source.path,
                    "files": [m.name for m in source.members], "sha256": sha,
                    "format": importer.format, "importer": importer.name,
                    "detection": report.detection, "size_bytes": source.size,
                    "file_mtime": None, "run_id": run_id,
                })
            started = True
            pending_counts = counts
            pending = writer.submit(store.write_batch, source_id, **tables, n_read=counts[0],
                                    n_service=counts[2], resume_pos=next_pos)

        # DuckDB releases the GIL while it inserts and commits, so one writer thread overlaps
        # storing batch k with reading batch k+1 (here, or in the worker process while this
        # one reads the file for batch k+2); at most three batches are in memory.
        with _young_gc_only(), store.bulk_load(lean=True), ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="chatlens-writer") as writer:
            try:
                before: tuple[Batch, int] | None = None  # the worker's batch, next position
                for next_pos, batch in _normalise(items, resume_pos):
                    if worker is None:
                        write(batch, batch_tables(source_id, run_id, batch, pseudo, clock),
                              next_pos)
                        continue
                    built = worker.result() if before is not None else None
                    worker.submit(batch)  # read there while the one before is stored here
                    if before is not None and built is not None:  # (both or neither)
                        write(before[0], built, before[1])
                    before = batch, next_pos
                if worker is not None and before is not None:
                    write(before[0], worker.result(), before[1])
            finally:
                settle()
        if not started and state is None:
            raise InputError(source.path, "no messages found in this export.")
        store.finish_source(source_id)
        report.status = "complete"
    except ChatlensError as exc:
        report.error = str(exc)
    except (OSError, ValueError, UnicodeError, EOFError) as exc:
        # a file that breaks a reader in a way it did not foresee: report it, go on with the
        # other files (what was committed stays; rerunning resumes)
        report.error = f"{source.path}: could not be read ({type(exc).__name__}: {exc})."
    return report


def ingest(
    store: Store,
    paths: list[str],
    run_id: str,
    fmt: str | None = None,
    options: ParseOptions | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every source found under ``paths``; one bad file never stops the others."""
    report = IngestReport(run_id=run_id)
    workers = _Workers()
    try:
        for found in discover(list(paths)):
            if isinstance(found, InputError):
                report.sources.append(SourceReport(path=found.path, status="failed",
                                                   error=str(found)))
                continue
            report.sources.append(ingest_source(store, found, run_id, fmt, options, progress,
                                                workers))
    finally:
        workers.close()
    return report
