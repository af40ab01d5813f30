"""The project store: the only module that knows SQL and file paths.

A project is a directory holding ``chatlens.duckdb`` (all tables) and ``secret.key`` (the key of
the author pseudonyms). Writers take turns on the project's writer lock; readers open the snapshot
the last writer published, so they keep working while a command writes (see :mod:`.snapshot`).
A second writer waits for the first a while, then gets :class:`ProjectLockedError` with the
holder's PID. Every ingest batch is one transaction that also advances its source's resume
position, so a killed ingest leaves the project consistent and a rerun continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.errors import ProjectError, ProjectLockedError, UsageError
from chatlens.schema import ORIGINAL_SCHEMA, SCHEMA_VERSION
from chatlens.store import originals as originals_store
from chatlens.store import snapshot
from chatlens.store.snapshot import DB_NAME as DB_NAME  # the main file; defined with the snapshot
from chatlens.store.snapshot import WriterLock
from chatlens.textsafe import csv_safe_sql

SECRET_NAME = "secret.key"

#: ``messages`` has no primary key: an index of millions of uids stays in memory while rows are
#: inserted, growing with the corpus (~80 bytes a message). ``uid_hash`` (:func:`uid_hash`)
#: stands in for it: :func:`insert_new_messages` deduplicates and point lookups filter on it.
_MESSAGES_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    uid VARCHAR NOT NULL, platform VARCHAR NOT NULL, chat_key VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL, ts TIMESTAMPTZ, ts_naive BOOLEAN NOT NULL, author_key VARCHAR,
    text VARCHAR NOT NULL, kind VARCHAR NOT NULL, media VARCHAR, reply_to VARCHAR,
    forwarded_from VARCHAR, entities JSON, edited BOOLEAN, source_id VARCHAR NOT NULL,
    source_pos BIGINT NOT NULL, source_loc VARCHAR NOT NULL, uid_hash UBIGINT NOT NULL);
"""

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, command VARCHAR, started TIMESTAMPTZ, finished TIMESTAMPTZ,
    status VARCHAR, version VARCHAR, params JSON, manifest JSON);
CREATE TABLE IF NOT EXISTS sources (
    source_id VARCHAR PRIMARY KEY, path VARCHAR, files JSON, sha256 VARCHAR, format VARCHAR,
    importer VARCHAR, detection VARCHAR, size_bytes BIGINT, file_mtime TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, status VARCHAR, run_id VARCHAR,
    n_read BIGINT, n_stored BIGINT, n_duplicate BIGINT, n_quarantined BIGINT, n_service BIGINT,
    resume_pos BIGINT);
CREATE TABLE IF NOT EXISTS chats (
    chat_key VARCHAR PRIMARY KEY, platform VARCHAR, chat_id VARCHAR, title VARCHAR,
    chat_type VARCHAR, first_source VARCHAR);
CREATE TABLE IF NOT EXISTS quarantine (
    source_id VARCHAR NOT NULL, source_pos BIGINT NOT NULL, source_loc VARCHAR, reason VARCHAR,
    excerpt VARCHAR, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS identities (
    author_key VARCHAR PRIMARY KEY, platform VARCHAR, raw_id VARCHAR, display_name VARCHAR);
""" + _MESSAGES_DDL.format(table="messages") + originals_store.BLOCKS_DDL

#: Write-ahead log an ingest lets grow before DuckDB checkpoints (see :meth:`Store.bulk_load`).
LOAD_CHECKPOINT = "64MB"

#: Messages read, masked and written per batch by :meth:`Store.export_messages`.
EXPORT_BATCH = 20_000

LEMMA_INDEX_COLUMNS = "lemma_id INTEGER NOT NULL, ts TIMESTAMPTZ, uid VARCHAR NOT NULL"

#: Tables of later stages; created on every writable open so older projects gain them.
_STAGE_DDL = f"""
CREATE TABLE IF NOT EXISTS enrichment (
    uid VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, lang VARCHAR, lang_score FLOAT,
    norm VARCHAR, lemmas VARCHAR[], urls VARCHAR[], mentions VARCHAR[],
    hashtags VARCHAR[], emoji VARCHAR[], places VARCHAR[]);
CREATE TABLE IF NOT EXISTS codebooks (
    name VARCHAR, version VARCHAR, hash VARCHAR, source VARCHAR, resolved JSON,
    added TIMESTAMPTZ, PRIMARY KEY (name, hash));
CREATE TABLE IF NOT EXISTS measure_state (
    codebook VARCHAR, measure VARCHAR, measure_hash VARCHAR, run_id VARCHAR,
    PRIMARY KEY (codebook, measure));
CREATE TABLE IF NOT EXISTS codes (
    uid VARCHAR NOT NULL, codebook VARCHAR NOT NULL, measure VARCHAR NOT NULL,
    in_population BOOLEAN NOT NULL, value VARCHAR, score DOUBLE, scorer VARCHAR,
    matched VARCHAR[], run_id VARCHAR);
CREATE TABLE IF NOT EXISTS lemma_index ({LEMMA_INDEX_COLUMNS});
CREATE TABLE IF NOT EXISTS lemma_indexed (uid VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS lemma_vocab (id INTEGER NOT NULL, lemma VARCHAR NOT NULL);
"""

MESSAGE_SQL_COLUMNS = (
    "uid, platform, chat_key, message_id, ts, ts_naive, author_key, text, kind, media, reply_to, "
    "forwarded_from, entities, edited, source_id, source_pos, source_loc"
)


def uid_hash(uid: str) -> int:
    """``messages.uid_hash`` of a uid: the first 64 bits of its MD5 (stable across versions of
    Python and DuckDB, unlike DuckDB's ``hash``), as :func:`uid_hash_sql` computes it."""
    return int(hashlib.md5(uid.encode()).hexdigest()[:16], 16)


def uid_hash_sql(expr: str) -> str:
    """SQL of :func:`uid_hash` of the VARCHAR ``expr``."""
    return f"('0x' || md5({expr})[:16])::UBIGINT"


def _first_of_each(messages: pa.Table) -> pa.Table:
    """The first row of each uid, in the batch's order (a batch rarely repeats one)."""
    if pc.count_distinct(messages.column("uid")).as_py() == messages.num_rows:
        return messages
    rows = pa.table({"uid": messages.column("uid"),
                     "row": pa.array(range(messages.num_rows), pa.int64())})
    first = rows.group_by("uid", use_threads=False).aggregate([("row", "min")])
    return messages.take(first.sort_by("row_min").column("row_min"))


def insert_new_messages(con: duckdb.DuckDBPyConnection, messages: pa.Table) -> list[str]:
    """Insert the messages (:data:`MESSAGE_SCHEMA` rows) whose uid is not stored yet, the first
    of each uid the batch repeats; returns the uids inserted.

    ``messages`` has no key (see ``_MESSAGES_DDL``): the batch is matched against the table by
    a join on ``uid_hash`` whose hash table holds the batch, while the stored hashes stream past
    it (DuckDB pushes a Bloom filter of the batch's hashes into that scan, so stored uids are
    read only for the few rows it passes); the uids found are then compared in full, so a hash
    collision never drops a message. Memory is the batch's; time is O(stored) per batch, a scan
    of 8 bytes a stored message: a 20k batch costs ~45 ms + ~28 ms per million stored messages
    of CPU (``bench/dedupe.py``: 73 ms at 1M, 186 ms at 5M; version 2's keyed insert took 116
    and 278 ms), beside ~1 s to parse it. Past ~30M messages in one project the scan would cost
    more than the parsing; the next step then is a key table partitioned by hash, so that a
    batch probes only its partitions.
    """
    con.register("_new_msgs", _first_of_each(messages))
    try:
        rows = con.execute(
            "INSERT INTO messages BY NAME "
            f"WITH b AS MATERIALIZED (SELECT *, {uid_hash_sql('uid')} AS uid_hash FROM _new_msgs) "
            "SELECT b.* FROM b ANTI JOIN (SELECT m.uid FROM messages m "
            "SEMI JOIN b ON m.uid_hash = b.uid_hash) stored USING (uid) RETURNING uid").fetchall()
    finally:
        con.unregister("_new_msgs")
    return [r[0] for r in rows]


@dataclass(slots=True)
class SourceState:
    source_id: str
    path: str
    status: str
    n_read: int
    n_stored: int
    n_duplicate: int
    n_quarantined: int
    n_service: int
    resume_pos: int
    importer: str
    format: str


@dataclass(slots=True)
class BatchResult:
    stored: int
    duplicate: int


def arrow_table(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    """A relation as Arrow (``to_arrow_table`` in DuckDB 2, ``arrow`` before)."""
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT])(i?)B", re.IGNORECASE)


def _limit(env: str, default: str) -> str:
    """A DuckDB memory limit from the environment (digits and a unit only)."""
    value = os.environ.get(env, default).strip()
    if not _SIZE.fullmatch(value):
        raise ProjectError(f"{env}={value!r} is not a memory size such as 512MB or 2GiB.")
    return value


def _from_version_1(con: duckdb.DuckDBPyConnection) -> None:
    """Version 1 kept each message's tokens beside its lemmas (half the enrichment table; nothing
    reads them now) and keyed the search index by lemma strings (dropped here; the next enrich
    or search rebuilds it, see ``index_lemmas``)."""
    def columns(table: str) -> set[str]:
        return {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() "
                                          "WHERE table_name = ?", [table]).fetchall()}

    if "tokens" in columns("enrichment"):
        con.execute("ALTER TABLE enrichment DROP COLUMN tokens")
    if "lemma" in columns("lemma_index"):
        con.execute("DROP TABLE lemma_index")
        con.execute("DELETE FROM lemma_indexed")
        con.execute("DELETE FROM meta WHERE key = 'lemma_index_runs'")


def _from_version_2(con: duckdb.DuckDBPyConnection) -> None:
    """Version 2 keyed ``messages`` by a primary key on ``uid``, whose index grew in memory with
    the corpus. DuckDB cannot drop a key, so the table is copied, in its row order and streamed
    (DuckDB spills beyond its limit), into one with ``uid_hash`` and no key."""
    con.execute(_MESSAGES_DDL.format(table="_messages_v3"))
    con.execute("SET preserve_insertion_order = true")  # the same rowids, enrichment's order
    con.execute(f"INSERT INTO _messages_v3 SELECT {MESSAGE_SQL_COLUMNS}, {uid_hash_sql('uid')} "
                "FROM messages")
    con.execute("SET preserve_insertion_order = false")
    con.execute("DROP TABLE messages")
    con.execute("ALTER TABLE _messages_v3 RENAME TO messages")


def _from_version_3(con: duckdb.DuckDBPyConnection) -> None:
    """Version 3 kept each original record in a row of ``originals``; they move into
    compressed blocks (:mod:`.originals`)."""
    con.execute(originals_store.BLOCKS_DDL)
    if first_row(con.execute("SELECT count(*) FROM duckdb_tables() "
                             "WHERE table_name = 'originals'")) != (0,):
        originals_store.from_table(con, "originals")


#: Schema version → the step that brings a project from it to the next (on a writable open).
_UPGRADES = {1: _from_version_1, 2: _from_version_2, 3: _from_version_3}


class _Executes(Protocol):
    def execute(self, sql: str, /) -> Any: ...


C = TypeVar("C", bound=_Executes)


@contextmanager
def transaction(con: C, begin: str) -> Iterator[C]:
    """Run the block in a transaction on ``con`` (DuckDB or SQLite): commit, or roll back and
    re-raise."""
    con.execute(begin)
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def first_row(cur: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, reading it to the end so the connection is free again."""
    rows = cur.fetchall()
    return rows[0] if rows else None


def arrow_reader(rel: duckdb.DuckDBPyRelation, batch_rows: int) -> pa.RecordBatchReader:
    """Stream a relation as Arrow batches (``to_arrow_reader`` in DuckDB 2)."""
    fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    reader: pa.RecordBatchReader = fetch(batch_rows)
    return reader


def is_project(path: Path) -> bool:
    return (path / DB_NAME).exists()


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    """An open project. Use :meth:`create` or :meth:`open`; close it when done."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection, read_only: bool,
                 writer: WriterLock | None = None, from_snapshot: bool = False) -> None:
        self.root = root
        self.con = con
        self.read_only = read_only
        self._writer = writer  # held by the store that opened for writing, not its cursors
        #: True when this read-only store reads the published snapshot, not the main file
        self.from_snapshot = from_snapshot
        self._uid_hashed: bool | None = None  # messages has uid_hash (not a version 2 store)

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path) -> Store:
        root = Path(root)
        if is_project(root):
            raise ProjectError(f"{root} is already a chatlens project; use it as it is.")
        root.mkdir(parents=True, exist_ok=True)
        key = root / SECRET_NAME
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        store = cls._connect(root, read_only=False)
        store.con.execute(_DDL)
        store.con.execute(_STAGE_DDL)
        store.con.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('created', ?)",
            [str(SCHEMA_VERSION), _now().isoformat()],
        )
        return store

    @classmethod
    def open(cls, root: str | Path, read_only: bool = False,
             wait_s: float | None = None) -> Store:
        """Open a project; ``wait_s``: how long to wait for a writer (default
        ``$CHATLENS_LOCK_WAIT``, 10 s)."""
        root = Path(root)
        if not is_project(root):
            raise ProjectError(
                f"{root} is not a chatlens project; run `chatlens init` there first "
                "or pass --project DIR."
            )
        store = cls._connect(root, read_only=read_only, wait_s=wait_s)
        row = first_row(store.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
        if row is None or int(row[0]) not in (SCHEMA_VERSION, *_UPGRADES):
            store.close()
            raise ProjectError(
                f"{root} has store schema version {row[0] if row else '?'}; this chatlens "
                f"reads version {SCHEMA_VERSION}. Upgrade chatlens or re-create the project."
            )
        if not read_only and int(row[0]) < SCHEMA_VERSION:
            with store.transaction() as con:  # all of an upgrade, or none of it
                for version in range(int(row[0]), SCHEMA_VERSION):
                    _UPGRADES[version](con)
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                            [str(SCHEMA_VERSION)])
        if not read_only:
            store.con.execute(_STAGE_DDL)
            # we hold the only writer lock: a run still "running" was killed
            store.con.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        return store

    @classmethod
    def _connect(cls, root: Path, read_only: bool, wait_s: float | None = None) -> Store:
        if wait_s is None:
            wait_s = float(os.environ.get("CHATLENS_LOCK_WAIT", "10"))
        writer = None if read_only else WriterLock.take(root, wait_s)
        try:
            if (writer is not None and writer.last() and (root / DB_NAME).exists()
                    and not snapshot.is_fresh(root)):
                # a killed writer (or an older chatlens) left no snapshot of what it committed:
                # publish one first, so readers see that state while this command writes
                cls._open_duckdb(root, root / DB_NAME, False, wait_s)[0].close()
                snapshot.publish(root)
            return cls._configure(root, read_only, writer, wait_s)
        except BaseException:
            if writer is not None:
                writer.release()
            raise

    @classmethod
    def _open_duckdb(cls, root: Path, path: Path | None, read_only: bool,
                     wait_s: float) -> tuple[duckdb.DuckDBPyConnection, bool]:
        """Connect to ``path`` (readers: the file :func:`snapshot.read_path` picks, asked again
        on each try). Readers of the main file (only after a killed writer) let go within a
        request: a writer waits for them up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            choice = (path, False) if path is not None else snapshot.read_path(root)
            if choice is None:  # a writer is publishing the first snapshot: wait for it
                if time.monotonic() > deadline:
                    raise ProjectLockedError(
                        f"The project {root} is being updated by another chatlens command and "
                        "has no readable copy yet. Try again in a few seconds.")
                time.sleep(0.1)
                continue
            try:
                return duckdb.connect(str(choice[0]), read_only=read_only), choice[1]
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    cls._connect_failed(root, exc)
                time.sleep(0.2)

    @classmethod
    def _configure(cls, root: Path, read_only: bool, writer: WriterLock | None,
                   wait_s: float) -> Store:
        con, snap = cls._open_duckdb(root, None if read_only else root / DB_NAME, read_only,
                                     wait_s)
        # UTC for this connection and every cursor made from it (a cursor does not inherit a
        # session setting: it would format and bucket times in the machine's zone)
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Bounded memory whatever the corpus size; DuckDB spills to disk beyond this.
        con.execute(f"SET memory_limit = '{_limit('CHATLENS_MEMORY_LIMIT', '1GB')}'")
        # stages stream and re-key by uid; row order is never relied on, so let DuckDB spill
        con.execute("SET preserve_insertion_order = false")
        return cls(root, con, read_only, writer, snap)

    @staticmethod
    def _connect_failed(root: Path, exc: duckdb.IOException) -> NoReturn:
        msg = str(exc)
        if "lock" in msg.lower():
            pid = re.search(r"PID (\d+)", msg)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise ProjectLockedError(
                f"The project {root} is being used by another chatlens process{holder} (a "
                "command writing to it, or a dashboard being browsed). Wait for it to finish, "
                "or stop it, then run this command again."
            ) from None
        raise ProjectError(f"Cannot open the project store {root / DB_NAME}: {msg}") from None

    def cursor(self) -> Store:
        """The same store through a new connection to the open database (for another thread;
        it shares DuckDB's cache). Closing it leaves this one open."""
        return Store(self.root, self.con.cursor(), self.read_only,
                     from_snapshot=self.from_snapshot)

    def close(self) -> None:
        """Close; a writer then publishes the snapshot readers open, and lets the next writer
        in."""
        self.con.close()
        if self._writer is None:
            return
        try:
            if self._writer.last():  # the last writable store of this process: the file is
                snapshot.publish(self.root)  # closed and checkpointed
        except OSError:  # e.g. a full disk: readers read the main file until the next publish
            (self.root / f".{snapshot.SNAPSHOT_NAME}.tmp").unlink(missing_ok=True)
        finally:
            self._writer.release()
            self._writer = None

    def writer(self) -> dict[str, Any] | None:
        """The process writing the project now (``{"pid", "since"}``), or None."""
        return snapshot.writer(self.root)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def secret(self) -> bytes:
        try:
            return bytes.fromhex((self.root / SECRET_NAME).read_text().strip())
        except (OSError, ValueError):
            raise ProjectError(
                f"The pseudonym key {self.root / SECRET_NAME} is missing or damaged; authors "
                "cannot be pseudonymised consistently without it. Restore it from a backup."
            ) from None

    def columns(self) -> dict[str, list[tuple[str, str, bool]]]:
        """``{table: [(column, type, nullable)]}`` of the project's database."""
        rows = self.con.cursor().execute(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'main' "
            "ORDER BY table_name, ordinal_position").fetchall()
        out: dict[str, list[tuple[str, str, bool]]] = {}
        for table, column, dtype, nullable in rows:
            out.setdefault(table, []).append((column, dtype, nullable == "YES"))
        return out

    def meta(self, key: str) -> str | None:
        """A project setting from the ``meta`` table (``None`` when unset)."""
        row = first_row(self.con.cursor().execute("SELECT value FROM meta WHERE key = ?", [key]))
        return str(row[0]) if row and row[0] is not None else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def uids_where(self, uids: list[str], alias: str = "") -> tuple[str, list[Any]]:
        """SQL condition and parameters selecting the messages of ``uids`` (``alias``: of the
        messages table in the query): on ``uid_hash`` first, a scan of 8 bytes a row, then on
        the uids themselves (a version 2 project read as it is: on the uids alone)."""
        if self._uid_hashed is None:
            row = first_row(self.con.cursor().execute(
                "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'main' "
                "AND table_name = 'messages' AND column_name = 'uid_hash'"))
            self._uid_hashed = bool(row and row[0])
        marks = ", ".join("?" * len(uids))
        prefix = f"{alias}." if alias else ""
        where = f"{prefix}uid IN ({marks})"
        if not self._uid_hashed:
            return where, list(uids)
        return f"{prefix}uid_hash IN ({marks}) AND {where}", [*map(uid_hash, uids), *uids]

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with transaction(self.con, "BEGIN TRANSACTION") as con:
            yield con

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, run_id: str, command: str, version: str, params: dict[str, Any]) -> None:
        self.con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', ?, ?, NULL)",
            [run_id, command, _now(), version, json.dumps(params, default=str)],
        )

    def finish_run(self, run_id: str, status: str, manifest: dict[str, Any]) -> None:
        self.con.execute(
            "UPDATE runs SET finished = ?, status = ?, manifest = ? WHERE run_id = ?",
            [_now(), status, json.dumps(manifest, default=str), run_id],
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT run_id, command, started, finished, status, version, params, manifest "
            "FROM runs ORDER BY started DESC LIMIT ?",
            [limit],
        )

    # -- sources ---------------------------------------------------------------------------
    def source_state(self, source_id: str) -> SourceState | None:
        row = first_row(self.con.execute(
            "SELECT source_id, path, status, n_read, n_stored, n_duplicate, n_quarantined, "
            "n_service, resume_pos, importer, format FROM sources WHERE source_id = ?",
            [source_id],
        ))
        return SourceState(*row) if row else None

    def begin_source(self, meta: dict[str, Any]) -> None:
        """Record a source as started (status ``partial``) unless it is already known."""
        self.con.execute(
            "INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'partial', "
            "?, 0, 0, 0, 0, 0, 0)",
            [
                meta["source_id"], meta["path"], json.dumps(meta["files"]), meta["sha256"],
                meta["format"], meta["importer"], meta["detection"], meta["size_bytes"],
                meta["file_mtime"], _now(), meta["run_id"],
            ],
        )

    def write_batch(
        self,
        source_id: str,
        messages: pa.Table,
        originals: pa.Table,
        quarantine: pa.Table,
        identities: pa.Table,
        chats: pa.Table,
        n_read: int,
        n_service: int,
        resume_pos: int,
    ) -> BatchResult:
        """Store one batch atomically and advance the source's counts and resume position."""
        with self.transaction() as con:
            con.register("_b_chats", chats)
            con.execute("INSERT OR IGNORE INTO chats SELECT * FROM _b_chats")
            con.register("_b_ids", identities)
            con.execute("INSERT OR IGNORE INTO identities SELECT * FROM _b_ids")
            stored = len(insert_new_messages(con, messages))
            originals_store.append(con, originals)
            con.register("_b_q", quarantine)
            con.execute("INSERT INTO quarantine SELECT * FROM _b_q")
            duplicate = messages.num_rows - stored
            con.execute(
                "UPDATE sources SET n_read = n_read + ?, n_stored = n_stored + ?, "
                "n_duplicate = n_duplicate + ?, n_quarantined = n_quarantined + ?, "
                "n_service = n_service + ?, resume_pos = ? WHERE source_id = ?",
                [n_read, stored, duplicate, quarantine.num_rows, n_service, resume_pos, source_id],
            )
            for name in ("_b_chats", "_b_ids", "_b_q"):
                con.unregister(name)
        return BatchResult(stored=stored, duplicate=duplicate)

    @contextmanager
    def bulk_load(self, lean: bool = False) -> Iterator[None]:
        """Let committed batches accumulate in the write-ahead log, then checkpoint once.

        A checkpoint after every batch rewrites row groups many times over; one at the end
        writes them once. Commits stay durable: a killed process replays the log on reopen.

        ``lean`` (ingest, which appends and joins only its batch): DuckDB's limit is a small
        buffer pool, ``CHATLENS_LOAD_MEMORY``, whatever the size of the project (``messages``
        has no key index to hold in memory, see :func:`insert_new_messages`), and it checkpoints
        every :data:`LOAD_CHECKPOINT` of log instead: committed rows wait in the buffer pool for
        a checkpoint, and a pool that small would spill gigabytes of them to temporary files
        (written twice, then read back at the end).
        """
        self.con.execute(f"SET checkpoint_threshold = '{LOAD_CHECKPOINT if lean else '4GB'}'")
        if lean:
            self.con.execute(
                f"SET memory_limit = '{_limit('CHATLENS_LOAD_MEMORY', '256MB')}'")
        try:
            yield
        finally:
            self.con.execute("RESET checkpoint_threshold")
            self.con.execute("CHECKPOINT")  # under the load limit still
            if lean:
                self.con.execute(f"SET memory_limit = '{_limit('CHATLENS_MEMORY_LIMIT', '1GB')}'")

    def finish_source(self, source_id: str, status: str = "complete") -> None:
        self.con.execute(
            "UPDATE sources SET status = ?, finished = ? WHERE source_id = ?",
            [status, _now(), source_id],
        )

    # -- reading ---------------------------------------------------------------------------
    def _dicts(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params or [])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def originals(self, keys: Iterable[tuple[str, int]] | None = None,
                  source_id: str | None = None) -> pa.Table:
        """Original records (:data:`~chatlens.schema.ORIGINAL_SCHEMA`) at ``keys``
        (``(source_id, source_pos)`` pairs), or all of ``source_id``'s, or all of them."""
        cur = self.con.cursor()
        if first_row(cur.execute("SELECT count(*) FROM duckdb_tables() "
                                 "WHERE table_name = 'original_blocks'")) == (0,):
            return self._originals_v3(cur, keys, source_id)  # an older project read as it is
        return originals_store.read(cur, keys, source_id)

    @staticmethod
    def _originals_v3(cur: duckdb.DuckDBPyConnection, keys: Iterable[tuple[str, int]] | None,
                      source_id: str | None) -> pa.Table:
        sql = "SELECT source_id, source_pos, NULL::VARCHAR AS uid, raw FROM originals"
        if keys is not None:
            pairs = list(keys)
            cur.register("_keys", pa.table({
                "source_id": pa.array([k[0] for k in pairs], pa.string()),
                "source_pos": pa.array([int(k[1]) for k in pairs], pa.int64())}))
            sql += " SEMI JOIN _keys USING (source_id, source_pos)"
        elif source_id is not None:
            sql += " WHERE source_id = $1"
        return arrow_table(cur.sql(sql, params=[source_id] if "$1" in sql else None)).cast(
            ORIGINAL_SCHEMA)

    def sources(self) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT source_id, path, format, importer, sha256, size_bytes, status, n_read, "
            "n_stored, n_duplicate, n_quarantined, n_service, started, finished "
            "FROM sources ORDER BY started"
        )

    def summary(self) -> dict[str, Any]:
        one = first_row(self.con.execute(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM chats), "
            "(SELECT count(*) FROM sources), (SELECT count(*) FROM quarantine), "
            "(SELECT count(DISTINCT author_key) FROM messages), "
            "(SELECT min(ts) FROM messages), (SELECT max(ts) FROM messages)"
        ))
        assert one is not None
        by_platform = self._dicts(
            "SELECT platform, count(*) AS messages, count(DISTINCT chat_key) AS chats, "
            "count(*) FILTER (kind = 'service') AS service FROM messages "
            "GROUP BY platform ORDER BY platform"
        )
        by_kind = dict(self.con.execute(
            "SELECT kind, count(*) FROM messages GROUP BY kind ORDER BY kind").fetchall())
        return {
            "messages": one[0], "chats": one[1], "sources": one[2], "quarantined": one[3],
            "authors": one[4], "first": one[5], "last": one[6],
            "by_platform": by_platform, "by_kind": by_kind,
        }

    def chats(self) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT c.chat_key, c.platform, c.title, c.chat_type, count(m.uid) AS messages, "
            "min(m.ts) AS first, max(m.ts) AS last FROM chats c "
            "LEFT JOIN messages m USING (chat_key) GROUP BY ALL ORDER BY messages DESC"
        )

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT q.source_id, s.path, q.source_pos, q.source_loc, q.reason, q.excerpt "
            "FROM quarantine q LEFT JOIN sources s USING (source_id) "
            "ORDER BY s.path, q.source_pos LIMIT ?",
            [limit],
        )

    def messages_arrow(self, where: str = "", params: list[Any] | None = None) -> pa.Table:
        sql = f"SELECT {MESSAGE_SQL_COLUMNS} FROM messages {where} ORDER BY chat_key, ts, uid"
        return self.query_arrow(sql, params)

    def query_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """A query's result as Arrow, read through a separate cursor (committed data)."""
        return arrow_table(self.con.cursor().sql(sql, params=params or None))

    def export_messages(self, path: Path, fmt: str,
                        transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
                        ) -> int:
        """Write all messages (pseudonymised; no originals, no identities) to ``path``, each
        batch passed through ``transform`` (the masking of :mod:`chatlens.privacy`) first."""
        options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true",
                   "jsonl": "FORMAT json"}.get(fmt)
        if options is None:
            raise UsageError(f"Unknown export format {fmt!r}; use parquet, csv or jsonl.")
        cols = MESSAGE_SQL_COLUMNS
        if fmt == "csv":  # every text column is untrusted: neutralise spreadsheet formulas
            types = dict(self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'messages'").fetchall())
            cols = ", ".join(csv_safe_sql(c) if types.get(c) == "VARCHAR" else c
                             for c in MESSAGE_SQL_COLUMNS.replace(" ", "").split(","))
        source = "messages"
        if transform is not None:  # streamed: read in batches, masked, written by DuckDB
            reader = arrow_reader(self.con.cursor().sql(
                f"SELECT {MESSAGE_SQL_COLUMNS} FROM messages"), EXPORT_BATCH)
            self.con.register("_export_masked", pa.RecordBatchReader.from_batches(
                reader.schema, (transform(b) for b in reader)))
            source = "_export_masked"
        query = f"SELECT {cols} FROM {source} ORDER BY chat_key, ts, uid"
        quoted = str(path).replace("'", "''")
        try:
            self.con.execute(f"COPY ({query}) TO '{quoted}' ({options})")
        finally:
            if transform is not None:
                self.con.unregister("_export_masked")
        row = first_row(self.con.execute("SELECT count(*) FROM messages"))
        return int(row[0]) if row else 0
