"""Human labels and samples, in ``labels.sqlite`` beside the DuckDB store.

Labels are written by people while other commands run: the dashboard saves a label while
``chatlens code`` holds DuckDB's single writer lock. So labels live in a small SQLite database in
WAL mode, which lets one process write while others read, and whose writes take milliseconds.
Stages that need labels read them into Arrow.

Audit and training items are kept apart by construction: a sample has one kind, every label
records the sample it was made for, and estimates read only labels whose sample is an audit
sample. A message drawn into both an audit and a training sample gets one label per sample.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from chatlens.store.core import transaction

LABELS_DB = "labels.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS samples (
    sample_id TEXT PRIMARY KEY, codebook TEXT NOT NULL, measure TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('audit', 'train', 'reference')), design TEXT NOT NULL,
    created TEXT NOT NULL, run_id TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'dropped')));
CREATE TABLE IF NOT EXISTS sample_items (
    sample_id TEXT NOT NULL REFERENCES samples(sample_id), uid TEXT NOT NULL,
    position INTEGER NOT NULL, stratum TEXT, inclusion_prob REAL,
    PRIMARY KEY (sample_id, uid));
CREATE TABLE IF NOT EXISTS labels (
    label_id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL, codebook TEXT NOT NULL,
    measure TEXT NOT NULL, value TEXT, annotator TEXT NOT NULL, created TEXT NOT NULL,
    sample_id TEXT REFERENCES samples(sample_id),
    sample_kind TEXT NOT NULL CHECK (sample_kind IN ('audit', 'train', 'reference', 'none')),
    origin TEXT NOT NULL CHECK (origin IN ('annotate', 'correction', 'import', 'adjudication')),
    span_start INTEGER, span_end INTEGER, comment TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'undone', 'skipped')),
    import_key TEXT);
CREATE INDEX IF NOT EXISTS labels_by_measure ON labels (codebook, measure, uid);
"""
#: Bumped when the tables change; :func:`_upgrade` rebuilds older files in one transaction.
LABELS_VERSION = 2


def _upgrade(con: sqlite3.Connection) -> None:
    """Create the tables, or bring an older file up to :data:`LABELS_VERSION`.

    Version 1 -> 2: samples gain the kind ``reference`` and a ``status`` (dropped samples are
    kept, not deleted), labels the kind ``reference`` and the origin ``adjudication``. SQLite
    cannot alter a CHECK constraint, so both tables are rebuilt, rows kept as they are, in one
    transaction (another process opening the file at the same time waits, then finds it done).
    """
    if con.execute("PRAGMA user_version").fetchone()[0] >= LABELS_VERSION:
        return
    con.execute("PRAGMA foreign_keys=OFF")
    with transaction(con, "BEGIN IMMEDIATE"):
        if con.execute("PRAGMA user_version").fetchone()[0] >= LABELS_VERSION:
            return
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "labels" in tables:
            con.execute("ALTER TABLE samples RENAME TO samples_v1")
            con.execute("ALTER TABLE sample_items RENAME TO sample_items_v1")
            con.execute("ALTER TABLE labels RENAME TO labels_v1")
            con.execute("DROP INDEX IF EXISTS labels_by_measure")
        for stmt in _DDL.split(";"):
            if stmt.strip():
                con.execute(stmt)
        if "labels" in tables:
            con.execute("INSERT INTO samples (sample_id, codebook, measure, kind, design, "
                        "created, run_id) SELECT sample_id, codebook, measure, kind, design, "
                        "created, run_id FROM samples_v1")
            con.execute("INSERT INTO sample_items SELECT * FROM sample_items_v1")
            old = ", ".join(r[1] for r in con.execute("PRAGMA table_info(labels_v1)"))
            con.execute(f"INSERT INTO labels ({old}) SELECT {old} FROM labels_v1")
            for t in ("labels_v1", "sample_items_v1", "samples_v1"):
                con.execute(f"DROP TABLE {t}")
        con.execute(f"PRAGMA user_version = {LABELS_VERSION}")
    con.execute("PRAGMA foreign_keys=ON")


#: Imported labels carry a key (file hash, options, row) so that re-running an import, e.g.
#: after a kill that landed after its commit, stores nothing twice. NULL (labels made in the
#: app) never conflicts.
_IMPORT_KEY_DDL = "CREATE UNIQUE INDEX IF NOT EXISTS labels_import_key ON labels (import_key)"

#: Runs of commands that change only labels (``label import``), recorded here so that they need
#: no writer lock on the main database; :meth:`chatlens.project.Project.runs` lists both logs.
_RUNS_DDL = """CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, command TEXT, started TEXT, finished TEXT, status TEXT,
    version TEXT, params TEXT, manifest TEXT)"""


@dataclass(slots=True)
class NewLabel:
    uid: str
    codebook: str
    measure: str
    value: str | None
    annotator: str
    origin: str = "annotate"
    sample_id: str | None = None
    sample_kind: str = "none"
    span: tuple[int, int] | None = None
    comment: str | None = None
    created: datetime | None = None
    status: str = "active"
    import_key: str | None = None  # set by imports: the same key is stored once


class LabelStore:
    """The project's ``labels.sqlite``; safe to use from several processes at once."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LABELS_DB
        self.con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        _upgrade(self.con)
        self.con.execute("PRAGMA foreign_keys=ON")
        self.con.execute(_IMPORT_KEY_DDL)
        self.con.execute(_RUNS_DDL)

    def columns(self) -> dict[str, list[tuple[str, str, bool]]]:
        """``{table: [(column, type, nullable)]}`` of ``labels.sqlite``."""
        names = [r[0] for r in self.con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: [(column, dtype, not notnull and not pk) for _cid, column, dtype, notnull,
                     _default, pk in self.con.execute(f"PRAGMA table_info('{t}')")]
                for t in names}

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.con, "BEGIN IMMEDIATE") as con:  # take the write lock up front
            yield con

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, run_id: str, command: str, version: str, params: dict[str, Any]) -> None:
        with self.transaction() as con:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', ?, ?, NULL)",
                        [run_id, command, datetime.now(UTC).isoformat(), version,
                         json.dumps(params, default=str)])

    def finish_run(self, run_id: str, status: str, manifest: dict[str, Any]) -> None:
        with self.transaction() as con:
            con.execute("UPDATE runs SET finished = ?, status = ?, manifest = ? "
                        "WHERE run_id = ?", [datetime.now(UTC).isoformat(), status,
                                             json.dumps(manifest, default=str), run_id])

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Runs logged here, newest first, with times as datetimes (like the main log)."""
        cur = self.con.execute("SELECT run_id, command, started, finished, status, version, "
                               "params, manifest FROM runs ORDER BY started DESC LIMIT ?",
                               [limit])
        cols = [d[0] for d in cur.description]
        out = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for r in out:
            for k in ("started", "finished"):
                r[k] = datetime.fromisoformat(r[k]) if r[k] else None
        return out

    # -- samples ---------------------------------------------------------------------------
    def add_sample(self, sample_id: str, codebook: str, measure: str, kind: str,
                   design: dict[str, Any], items: list[tuple[str, str | None, float | None]],
                   run_id: str | None) -> None:
        with self.transaction() as con:
            con.execute("INSERT INTO samples (sample_id, codebook, measure, kind, design, "
                        "created, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [sample_id, codebook, measure, kind, json.dumps(design),
                         datetime.now(UTC).isoformat(), run_id])
            con.executemany("INSERT INTO sample_items VALUES (?, ?, ?, ?, ?)",
                            [(sample_id, uid, i, stratum, p)
                             for i, (uid, stratum, p) in enumerate(items)])

    def samples(self, codebook: str | None = None, measure: str | None = None,
                kind: str | None = None, dropped: bool = False) -> list[dict[str, Any]]:
        """Samples (oldest first) with their size and labelled count; dropped ones only when
        ``dropped``."""
        sql = ("SELECT s.sample_id, s.codebook, s.measure, s.kind, s.design, s.created, "
               "(SELECT count(*) FROM sample_items i WHERE i.sample_id = s.sample_id) AS n, "
               "(SELECT count(DISTINCT l.uid) FROM labels l WHERE l.sample_id = s.sample_id "
               " AND l.status = 'active') AS labelled, s.status FROM samples s WHERE 1=1")
        if not dropped:
            sql += " AND s.status = 'active'"
        params: list[Any] = []
        for col, val in (("codebook", codebook), ("measure", measure), ("kind", kind)):
            if val is not None:
                sql += f" AND s.{col} = ?"
                params.append(val)
        rows = self.con.execute(sql + " ORDER BY s.created", params).fetchall()
        keys = ("sample_id", "codebook", "measure", "kind", "design", "created", "n", "labelled",
                "status")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for r in out:
            r["design"] = json.loads(r["design"])
        return out

    def add_reference_items(self, sample_id: str, codebook: str, measure: str,
                            uids: list[str], run_id: str | None) -> None:
        """Create the reference set ``sample_id`` if new, and add ``uids`` to it."""
        with self.transaction() as con:
            con.execute("INSERT OR IGNORE INTO samples (sample_id, codebook, measure, kind, "
                        "design, created, run_id) VALUES (?, ?, ?, 'reference', ?, ?, ?)",
                        [sample_id, codebook, measure,
                         json.dumps({"declared": "labels of another corpus or period"}),
                         datetime.now(UTC).isoformat(), run_id])
            start = con.execute("SELECT count(*) FROM sample_items WHERE sample_id = ?",
                                [sample_id]).fetchone()[0]
            con.executemany("INSERT OR IGNORE INTO sample_items VALUES (?, ?, ?, NULL, NULL)",
                            [(sample_id, u, start + i) for i, u in enumerate(dict.fromkeys(uids))])

    def set_sample_status(self, sample_id: str, status: str) -> bool:
        """Drop a sample (``dropped``: its labels stay stored but no longer count) or restore
        it (``active``); False when there is no such sample."""
        with self.transaction() as con:
            cur = con.execute("UPDATE samples SET status = ? WHERE sample_id = ?",
                              [status, sample_id])
        return cur.rowcount > 0

    def sample_items(self, sample_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT uid, position, stratum, inclusion_prob FROM sample_items WHERE sample_id = ? "
            "ORDER BY position", [sample_id]).fetchall()
        return [{"uid": u, "position": p, "stratum": s, "inclusion_prob": q}
                for u, p, s, q in rows]

    def done_uids(self, sample_id: str, annotator: str) -> set[str]:
        """Items of a sample the annotator labelled or skipped."""
        rows = self.con.execute(
            "SELECT DISTINCT uid FROM labels WHERE sample_id = ? AND annotator = ? "
            "AND status IN ('active', 'skipped')", [sample_id, annotator]).fetchall()
        return {r[0] for r in rows}

    def sampled_uids(self, codebook: str, measure: str, kind: str) -> set[str]:
        """Uids drawn into any sample of this kind, dropped samples included (an audit item
        stays out of training even after its sample is dropped: it could be restored)."""
        rows = self.con.execute(
            "SELECT i.uid FROM sample_items i JOIN samples s USING (sample_id) "
            "WHERE s.codebook = ? AND s.measure = ? AND s.kind = ?", [codebook, measure, kind])
        return {r[0] for r in rows}

    # -- labels ----------------------------------------------------------------------------
    def add_labels(self, labels: Iterable[NewLabel]) -> int:
        """Store labels in one transaction; returns how many were new (a label whose
        ``import_key`` is already stored is skipped)."""
        rows = []
        for lab in labels:
            created = (lab.created or datetime.now(UTC)).astimezone(UTC).isoformat()
            rows.append((lab.uid, lab.codebook, lab.measure, lab.value, lab.annotator, created,
                         lab.sample_id, lab.sample_kind, lab.origin,
                         lab.span[0] if lab.span else None, lab.span[1] if lab.span else None,
                         lab.comment, lab.status, lab.import_key))
        with self.transaction() as con:
            before = con.total_changes
            con.executemany(
                "INSERT INTO labels (uid, codebook, measure, value, annotator, created, "
                "sample_id, sample_kind, origin, span_start, span_end, comment, status, "
                "import_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (import_key) DO NOTHING", rows)
            return con.total_changes - before

    def undo_last(self, annotator: str, sample_id: str) -> dict[str, Any] | None:
        """Mark the annotator's latest active label in the sample as undone; return it."""
        with self.transaction() as con:
            row = con.execute(
                "SELECT label_id, uid, value FROM labels WHERE annotator = ? AND sample_id = ? "
                "AND status IN ('active', 'skipped') ORDER BY label_id DESC LIMIT 1",
                [annotator, sample_id]).fetchone()
            if row is None:
                return None
            con.execute("UPDATE labels SET status = 'undone' WHERE label_id = ?", [row[0]])
        return {"label_id": row[0], "uid": row[1], "value": row[2]}

    def labels_arrow(self, codebook: str | None = None, measure: str | None = None,
                     sample_kind: str | None = None) -> pa.Table:
        """Active labels (the latest per uid, measure, annotator and sample) as Arrow; labels of
        dropped samples are left out."""
        sql = ("SELECT uid, codebook, measure, value, annotator, created, sample_id, "
               "sample_kind, origin, span_start, span_end, comment FROM labels l "
               "WHERE status = 'active' AND (sample_id IS NULL OR sample_id IN "
               "(SELECT sample_id FROM samples WHERE status = 'active')) "
               "AND label_id = (SELECT max(label_id) FROM labels m "
               "WHERE m.uid = l.uid AND m.codebook = l.codebook AND m.measure = l.measure AND "
               "m.annotator = l.annotator AND m.sample_id IS l.sample_id AND m.status = 'active')")
        params: list[Any] = []
        for col, val in (("codebook", codebook), ("measure", measure),
                         ("sample_kind", sample_kind)):
            if val is not None:
                sql += f" AND {col} = ?"
                params.append(val)
        rows = self.con.execute(sql + " ORDER BY label_id", params).fetchall()
        names = ["uid", "codebook", "measure", "value", "annotator", "created", "sample_id",
                 "sample_kind", "origin", "span_start", "span_end", "comment"]
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)},
                        schema=pa.schema([(n, pa.int64() if n.startswith("span") else pa.string())
                                          for n in names]))

    def forget(self, uids: list[str]) -> dict[str, int]:
        """Delete the labels and sample items of ``uids``, then rewrite the file (VACUUM) and
        empty the write-ahead log, so their text (comments) is gone from the disk too."""
        counts = {"labels": 0, "sample_items": 0}
        self.con.execute("PRAGMA secure_delete = ON")
        with self.transaction() as con:
            con.execute("CREATE TEMP TABLE IF NOT EXISTS _forget (uid TEXT PRIMARY KEY)")
            con.execute("DELETE FROM _forget")
            con.executemany("INSERT OR IGNORE INTO _forget VALUES (?)", [(u,) for u in uids])
            for table in counts:
                counts[table] = con.execute(
                    f"DELETE FROM {table} WHERE uid IN (SELECT uid FROM _forget)").rowcount
            con.execute("DROP TABLE _forget")
        self.con.execute("VACUUM")
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return counts
