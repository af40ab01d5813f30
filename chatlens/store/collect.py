"""Tables of collected channels: API-only fields, earlier text versions and checkpoints.

A collected batch is one transaction with its checkpoint (the highest message id stored, per
channel and per comment thread), so a killed collection resumes exactly and never duplicates.
Re-collected messages whose text changed keep their earlier version in ``message_versions``;
messages a re-collection no longer finds are marked (``collected.deleted_at``), never removed.
The tables are created on the first collection, so older projects open unchanged.

``collected`` has no primary key (it halved the insert speed): a uid has at most one row because
rows are only inserted for messages the same transaction inserted into ``messages`` (which
:func:`~chatlens.store.core.insert_new_messages` decides), replaced by delete-then-insert, and
erased with their message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.store import originals as originals_store
from chatlens.store.core import Store, arrow_table, first_row, insert_new_messages

COLLECT_DDL = """
CREATE TABLE IF NOT EXISTS collected (
    uid VARCHAR NOT NULL, chat_key VARCHAR NOT NULL, message_id BIGINT NOT NULL,
    views BIGINT, forwards BIGINT, replies BIGINT, replies_max_id BIGINT,
    discussion_chat_key VARCHAR, fwd_kind VARCHAR, fwd_chat_key VARCHAR, fwd_message_id BIGINT,
    fwd_date TIMESTAMPTZ, reply_to_id BIGINT, reply_to_chat_key VARCHAR, thread_id BIGINT,
    post_key VARCHAR, grouped_id BIGINT, reactions JSON, edit_date TIMESTAMPTZ,
    edit_hide BOOLEAN, fact_check VARCHAR, meta JSON, deleted_at TIMESTAMPTZ, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS message_versions (
    uid VARCHAR NOT NULL, chat_key VARCHAR, message_id VARCHAR, text VARCHAR, entities JSON,
    edit_date TIMESTAMPTZ, raw VARCHAR, replaced TIMESTAMPTZ, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS collect_state (
    chat_key VARCHAR NOT NULL, thread BIGINT NOT NULL, target VARCHAR, high_id BIGINT NOT NULL,
    status VARCHAR, updated TIMESTAMPTZ, run_id VARCHAR, PRIMARY KEY (chat_key, thread));
CREATE TABLE IF NOT EXISTS peers (
    chat_key VARCHAR PRIMARY KEY, title VARCHAR, username VARCHAR, kind VARCHAR);
"""


#: Tables keyed by message uid that an erasure clears with the message
COLLECT_BY_UID = ("collected", "message_versions")

#: ``collect_state.thread`` of a channel's comments read through its discussion group
GROUP_THREAD = -1


@dataclass(slots=True)
class Checkpoint:
    """Where a channel (``thread`` 0), its comments read through the discussion group
    (``thread`` -1, the group's highest id) or one comment thread (``thread`` = post id,
    re-collections) stands."""

    chat_key: str
    thread: int
    high_id: int
    status: str


@dataclass(slots=True)
class CollectBatchResult:
    new: int
    unchanged: int
    edited: int


def has_collect_tables(store: Store) -> bool:
    row = first_row(store.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'collected'"))
    return bool(row and row[0])


def ensure_collect_tables(store: Store) -> None:
    """Create the tables; drop ``collected`` rows whose message is gone (an erasure before
    erasures cleared them), so a re-collected message never meets an old row."""
    store.con.execute(COLLECT_DDL)
    store.con.execute("DELETE FROM collected WHERE uid NOT IN (SELECT uid FROM messages)")


def _now() -> datetime:
    return datetime.now(UTC)


def checkpoint(store: Store, chat_key: str, thread: int = 0) -> Checkpoint | None:
    row = first_row(store.con.execute(
        "SELECT chat_key, thread, high_id, status FROM collect_state "
        "WHERE chat_key = ? AND thread = ?", [chat_key, thread]))
    return Checkpoint(row[0], int(row[1]), int(row[2]), row[3]) if row else None


def set_status(store: Store, chat_key: str, thread: int, status: str, run_id: str,
               target: str | None = None) -> None:
    """Set a checkpoint's status (creating it at id 0 if there is none yet)."""
    store.con.execute(
        "INSERT INTO collect_state VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (chat_key, thread) "
        "DO UPDATE SET status = excluded.status, updated = excluded.updated, "
        "run_id = excluded.run_id",
        [chat_key, thread, target, status, _now(), run_id])


def threads_to_collect(store: Store, chat_key: str, since: datetime | None,
                       until: datetime | None, every: bool = False) -> list[tuple[int, int]]:
    """(post id, comment checkpoint) of posts whose thread has comments not collected yet
    (``every``: of all posts with comments, for a re-collection)."""
    sql = (
        "SELECT c.message_id, coalesce(s.high_id, 0) FROM collected c "
        "JOIN messages m USING (uid) LEFT JOIN collect_state s "
        "ON s.chat_key = c.chat_key AND s.thread = c.message_id "
        "WHERE c.chat_key = ? AND c.replies > 0 AND c.discussion_chat_key IS NOT NULL "
    )
    if not every:
        sql += " AND c.replies_max_id > coalesce(s.high_id, 0)"
    params: list[Any] = [chat_key]
    if since is not None:
        sql += " AND m.ts >= ?"
        params.append(since)
    if until is not None:
        sql += " AND m.ts < ?"
        params.append(until)
    rows = store.con.execute(sql + " ORDER BY c.message_id", params).fetchall()
    return [(int(a), int(b)) for a, b in rows]


def comment_roots(store: Store, disc_key: str, channel_key: str
                  ) -> list[tuple[int, int, datetime | None]]:
    """(root id in the discussion group, post id, post date) of the threads whose comments
    were stored before: how a new comment on an old post finds its post."""
    rows = store.con.execute(
        "SELECT DISTINCT k.thread_id, p.message_id, m.ts FROM collected k "
        "JOIN collected p ON p.chat_key = ? AND k.post_key = p.chat_key || '/' || p.message_id "
        "LEFT JOIN messages m ON m.uid = p.uid "
        "WHERE k.chat_key = ? AND k.thread_id IS NOT NULL AND k.post_key IS NOT NULL",
        [channel_key, disc_key]).fetchall()
    return [(int(a), int(b), c) for a, b, c in rows]


def write_collected(
    store: Store,
    source_id: str,
    run_id: str,
    messages: pa.Table,
    originals: pa.Table,
    identities: pa.Table,
    chats: pa.Table,
    collected: pa.Table,
    peers: pa.Table,
    point: Checkpoint,
    target: str,
) -> CollectBatchResult:
    """Store one collected batch and its checkpoint atomically.

    New messages are inserted; a message already stored (from an earlier collection or an
    export) whose text changed gets its old text, entities and original record copied to
    ``message_versions`` and is updated; the API-only fields are upserted.
    """
    now = _now()
    with store.transaction() as con:
        for name, table, sql in (
                ("_c_chats", chats, "INSERT OR IGNORE INTO chats SELECT * FROM _c_chats"),
                ("_c_ids", identities, "INSERT OR IGNORE INTO identities SELECT * FROM _c_ids"),
                ("_c_peers", peers, "INSERT OR REPLACE INTO peers SELECT * FROM _c_peers")):
            if table.num_rows:  # most batches add no chat, identity or peer: no statement
                con.register(name, table)
                con.execute(sql)
                con.unregister(name)
        con.register("_c_msgs", messages)
        con.register("_c_orig", originals)
        con.register("_c_api", collected)
        inserted = set(insert_new_messages(con, messages))
        new = len(inserted)
        n_seen = n_edited = 0
        if new == messages.num_rows:  # all new: none has an original or a collected row yet
            originals_store.append(con, originals)
            con.execute("INSERT INTO collected SELECT * FROM _c_api")
        else:  # some were stored before: compare their text
            n_seen, n_edited = _store_seen_before(con, inserted, now, run_id)
        con.execute(
            "INSERT INTO collect_state VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (chat_key, thread) DO UPDATE SET high_id = greatest("
            "collect_state.high_id, excluded.high_id), status = excluded.status, "
            "updated = excluded.updated, run_id = excluded.run_id",
            [point.chat_key, point.thread, target, point.high_id, point.status, now, run_id])
        con.execute(
            "UPDATE sources SET n_read = n_read + ?, n_stored = n_stored + ?, "
            "n_duplicate = n_duplicate + ?, n_service = n_service + ?, "
            "resume_pos = greatest(resume_pos, ?) WHERE source_id = ?",
            [messages.num_rows, new, n_seen, _count_service(messages), point.high_id, source_id])
        for name in ("_c_msgs", "_c_orig", "_c_api"):
            con.unregister(name)
    return CollectBatchResult(new=new, unchanged=n_seen - n_edited, edited=n_edited)


def _store_seen_before(con: Any, inserted: set[str], now: datetime, run_id: str,
                       ) -> tuple[int, int]:
    """A batch with messages stored before (``_c_msgs`` less ``inserted``): keep the earlier
    version of each changed text (with its original record) and update it, store the originals
    of new and changed ones,
    replace their ``collected`` rows; (messages seen before, of which changed)."""
    con.register("_c_new", pa.table({"uid": pa.array(list(inserted), pa.string())}))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _c_seen AS SELECT b.uid, "
        "(m.text IS DISTINCT FROM b.text) AS changed FROM _c_msgs b "
        "JOIN messages m ON m.uid = b.uid AND m.chat_key = b.chat_key "
        "WHERE b.uid NOT IN (SELECT uid FROM _c_new)")
    con.unregister("_c_new")
    seen = first_row(con.execute("SELECT count(*), count(*) FILTER (changed) FROM _c_seen"))
    n_seen, n_edited = (int(seen[0]), int(seen[1])) if seen else (0, 0)
    if n_edited:
        earlier = con.execute("SELECT m.source_id, m.source_pos FROM messages m "
                              "JOIN _c_seen s ON s.uid = m.uid AND s.changed").fetchall()
        con.register("_c_earlier", originals_store.read(con, earlier))
        con.execute(
            "INSERT INTO message_versions SELECT m.uid, m.chat_key, m.message_id, m.text, "
            "m.entities, c.edit_date, o.raw, ?, ? FROM messages m "
            "JOIN _c_seen s ON s.uid = m.uid AND s.changed "
            "LEFT JOIN collected c ON c.uid = m.uid "
            "LEFT JOIN _c_earlier o ON o.source_id = m.source_id "
            "AND o.source_pos = m.source_pos", [now, run_id])
        con.unregister("_c_earlier")
        con.execute(
            "UPDATE messages SET text = b.text, entities = b.entities, kind = b.kind, "
            "media = b.media, edited = b.edited, source_id = b.source_id, "
            "source_pos = b.source_pos, source_loc = b.source_loc FROM _c_msgs b, _c_seen s "
            "WHERE messages.uid = b.uid AND s.uid = b.uid AND s.changed")
    # the originals of new and changed messages (a changed one's newer block is the one read)
    originals_store.append(con, arrow_table(con.sql(
        "SELECT o.* FROM _c_orig o JOIN _c_msgs b "
        "ON b.source_id = o.source_id AND b.source_pos = o.source_pos "
        "WHERE b.uid NOT IN (SELECT uid FROM _c_seen WHERE NOT changed)")))
    con.execute("DROP TABLE _c_seen")
    # the API-only fields of every message of the batch, refreshed (views, reactions, ...)
    con.execute("DELETE FROM collected WHERE uid IN (SELECT uid FROM _c_api)")
    con.execute("INSERT INTO collected SELECT * FROM _c_api")
    return n_seen, n_edited


def _count_service(messages: pa.Table) -> int:
    return int(pc.sum(pc.equal(messages.column("kind"), "service")).as_py() or 0)


def mark_deleted(store: Store, chat_key: str, seen_ids: list[int], high_id: int,
                 since: datetime | None, until: datetime | None, thread: int | None,
                 run_id: str) -> int:
    """Mark stored messages of a fully re-read range that the server no longer returns.

    ``thread`` None: the chat itself (every stored message up to ``high_id`` in the date range);
    otherwise only the comments of that thread. Returns how many were newly marked.
    """
    now = _now()
    with store.transaction() as con:
        con.register("_c_ids_seen", pa.table({"id": pa.array(seen_ids, pa.int64())}))
        where = ["m.chat_key = ?", "TRY_CAST(m.message_id AS BIGINT) <= ?",
                 "TRY_CAST(m.message_id AS BIGINT) NOT IN (SELECT id FROM _c_ids_seen)",
                 "c.deleted_at IS NULL"]
        params: list[Any] = [chat_key, high_id]
        if thread is not None:
            where.append("c.thread_id = ?")
            params.append(thread)
        if since is not None:
            where.append("m.ts >= ?")
            params.append(since)
        if until is not None:
            where.append("m.ts < ?")
            params.append(until)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _c_gone AS SELECT m.uid, m.chat_key, "
            "TRY_CAST(m.message_id AS BIGINT) AS message_id, c.uid IS NOT NULL AS known "
            "FROM messages m LEFT JOIN collected c USING (uid) WHERE " + " AND ".join(where),
            params)
        con.execute("UPDATE collected SET deleted_at = ?, run_id = ? FROM _c_gone g "
                    "WHERE g.known AND collected.uid = g.uid", [now, run_id])
        con.execute(  # stored from an export, never collected: a row that says it is gone
            "INSERT INTO collected (uid, chat_key, message_id, deleted_at, run_id) "
            "SELECT uid, chat_key, message_id, ?, ? FROM _c_gone WHERE NOT known", [now, run_id])
        row = first_row(con.execute("SELECT count(*) FROM _c_gone"))
        con.execute("DROP TABLE _c_gone")
        con.unregister("_c_ids_seen")
    return int(row[0]) if row else 0


def versions(store: Store, uid: str) -> list[dict[str, Any]]:
    """Earlier text versions of a message, oldest first."""
    cur = store.con.execute(
        "SELECT text, edit_date, replaced, run_id FROM message_versions WHERE uid = ? "
        "ORDER BY replaced", [uid])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
