"""Ingest's memory does not grow with the project: ``messages`` has no key index; ``uid_hash``
deduplicates (issue 14)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from chatlens import Project
from chatlens.ingest.rows import CHAT_SCHEMA, IDENTITY_SCHEMA, QUARANTINE_SCHEMA
from chatlens.schema import MESSAGE_SCHEMA, ORIGINAL_SCHEMA
from chatlens.store import stages
from chatlens.store.core import Store, first_row, insert_new_messages, uid_hash, uid_hash_sql
from tests.helpers import telegram_export

#: ``messages`` as schema version 2 declared it (keyed by uid), to make a project of that version
V2_MESSAGES = """CREATE TABLE messages (
    uid VARCHAR PRIMARY KEY, platform VARCHAR NOT NULL, chat_key VARCHAR NOT NULL,
    message_id VARCHAR NOT NULL, ts TIMESTAMPTZ, ts_naive BOOLEAN NOT NULL, author_key VARCHAR,
    text VARCHAR NOT NULL, kind VARCHAR NOT NULL, media VARCHAR, reply_to VARCHAR,
    forwarded_from VARCHAR, entities JSON, edited BOOLEAN, source_id VARCHAR NOT NULL,
    source_pos BIGINT NOT NULL, source_loc VARCHAR NOT NULL)"""


def _messages(store: Store, lo: int, hi: int, text: str = "") -> pa.Table:
    """Rows ``lo``..``hi`` of one chat as the importers give them (uid ``u<i>``)."""
    return store.con.sql(
        "SELECT 'u' || i AS uid, 'telegram' AS platform, 'telegram:1' AS chat_key, "
        "i::VARCHAR AS message_id, NULL::TIMESTAMPTZ AS ts, false AS ts_naive, "
        f"NULL AS author_key, '{text}' || i AS text, 'message' AS kind, NULL AS media, "
        "NULL AS reply_to, NULL AS forwarded_from, NULL AS entities, NULL::BOOLEAN AS edited, "
        "'s' AS source_id, i AS source_pos, 'line ' || i AS source_loc "
        f"FROM range({lo}, {hi}) r(i)").to_arrow_table().cast(MESSAGE_SCHEMA)


def _write(store: Store, messages: pa.Table) -> tuple[int, int]:
    """(stored, duplicate) of ``messages`` written as an ingest batch of source ``s``."""
    empty = [t.empty_table() for t in (ORIGINAL_SCHEMA, QUARANTINE_SCHEMA, IDENTITY_SCHEMA,
                                        CHAT_SCHEMA)]
    got = store.write_batch("s", messages, *empty, n_read=messages.num_rows, n_service=0,
                            resume_pos=0)
    return got.stored, got.duplicate


def _setting(store: Store) -> str:
    row = first_row(store.con.execute("SELECT current_setting('memory_limit')"))
    assert row is not None
    return str(row[0])


def _index_bytes(store: Store) -> int:
    row = first_row(store.con.execute(
        "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'ART_INDEX'"))
    return int(row[0] or 0) if row else 0


def test_uid_hash_is_the_same_in_python_and_sql() -> None:
    uids = ["", "a", "0f3c9e6d1b2a4c5d6e7f8091", "сообщение", "x" * 300]
    got = duckdb.connect().execute(
        f"SELECT {uid_hash_sql('u')} FROM unnest(?) WITH ORDINALITY t(u, i) ORDER BY i",
        [uids]).fetchall()
    assert [r[0] for r in got] == [uid_hash(u) for u in uids]
    assert uid_hash("a") == 0x0CC175B9C0F1B6A8  # md5('a') = 0cc175b9c0f1b6a8...: stays fixed


def test_a_large_ingest_holds_no_key_index_and_keeps_the_load_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """300k messages in 20k batches: DuckDB holds no index of them (a primary key held ~20 MB
    that it could not evict, and ingest's limit grew with it); the limit stays the budget."""
    monkeypatch.setenv("CHATLENS_LOAD_MEMORY", "64MB")
    with Store.create(tmp_path / "p") as store, store.bulk_load(lean=True):
        assert _setting(store) == "61.0 MiB"  # 64 * 10^6 bytes, as DuckDB shows it
        for lo in range(0, 300_000, 20_000):
            assert _write(store, _messages(store, lo, lo + 20_000)) == (20_000, 0)
        assert _index_bytes(store) < 1 << 20  # the small tables' keys (a uid key: > 20 MB)
        assert _setting(store) == "61.0 MiB"
        assert _write(store, _messages(store, 150_000, 170_000)) == (0, 20_000)


def test_duplicates_within_a_batch_and_against_the_table(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as store:
        assert _write(store, _messages(store, 0, 10)) == (10, 0)
        batch = pa.concat_tables([_messages(store, 8, 12, "first "),
                                  _messages(store, 10, 14, "second ")])
        assert _write(store, batch) == (4, 4)  # 8, 9 stored before; 10, 11 twice in the batch
        texts = dict(store.con.execute("SELECT uid, text FROM messages").fetchall())
        assert len(texts) == 14
        assert texts["u8"] == "8" and texts["u10"] == "first 10" and texts["u13"] == "second 13"


def test_a_hash_collision_never_drops_a_message(tmp_path: Path) -> None:
    """Stored ``u1`` made to carry the hash of ``u2``: ``u2`` still is new (compared in full),
    and a real duplicate of ``u1``'s hash partner is still found."""
    with Store.create(tmp_path / "p") as store:
        _write(store, _messages(store, 1, 2))
        store.con.execute("UPDATE messages SET uid_hash = ? WHERE uid = 'u1'", [uid_hash("u2")])
        with store.transaction() as con:
            assert insert_new_messages(con, _messages(store, 2, 3)) == ["u2"]
        with store.transaction() as con:
            assert insert_new_messages(con, _messages(store, 2, 3)) == []
        assert store.con.execute("SELECT count(*) FROM messages").fetchall() == [(2,)]


def _make_version_2(root: Path) -> list[tuple[object, ...]]:
    """Turn the project at ``root`` into one of schema version 2; its messages in rowid order."""
    con = Store.open(root)
    try:
        cols = "uid, platform, chat_key, message_id, ts, ts_naive, author_key, text, kind, " \
               "media, reply_to, forwarded_from, entities, edited, source_id, source_pos, " \
               "source_loc"
        rows = con.con.execute(f"SELECT {cols} FROM messages ORDER BY rowid").fetchall()
        con.con.execute(f"CREATE TABLE _old AS SELECT {cols} FROM messages ORDER BY rowid")
        con.con.execute("DROP TABLE messages")
        con.con.execute(V2_MESSAGES)
        con.con.execute("INSERT INTO messages SELECT * FROM _old")
        con.con.execute("DROP TABLE _old")
        con.con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    finally:
        con.close()
    return rows


def test_a_version_2_project_is_read_as_it_is_then_rebuilt_without_the_key(
        tmp_path: Path) -> None:
    export = telegram_export(tmp_path / "r.json", [f"сообщение {i}" for i in range(300)])
    with Project.init(tmp_path / "p") as p:
        p.ingest([export])
    rows = _make_version_2(tmp_path / "p")
    uid = next(str(r[0]) for r in rows if r[7] == "сообщение 7")
    with Store.open(tmp_path / "p", read_only=True) as old:  # no uid_hash: found by uid alone
        assert stages.messages_by_uid(old, [uid])[uid]["text"] == "сообщение 7"
    with Project.open(tmp_path / "p") as p:
        con = p.store.con
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                           ).fetchall() == [("4",)]
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
                           "'messages' AND constraint_type = 'PRIMARY KEY'").fetchall() == [(0,)]
        got = con.execute("SELECT * EXCLUDE (uid_hash) FROM messages ORDER BY rowid").fetchall()
        assert got == rows  # the same rows in the same order
        hashes = con.execute("SELECT uid, uid_hash FROM messages").fetchall()
        assert all(h == uid_hash(u) for u, h in hashes)
        assert stages.messages_by_uid(p.store, [uid])[uid]["text"] == "сообщение 7"
        again = telegram_export(tmp_path / "r2.json", [f"сообщение {i}" for i in range(310)])
        p.ingest([again])
        counts = con.execute("SELECT n_read, n_stored, n_duplicate FROM sources "
                             "ORDER BY started").fetchall()
        assert counts[-1] == (310, 10, 300)  # the old rows deduplicate against the new ones
