"""Original records in compressed blocks: verbatim on real exports, newest version read,
erasure rewrites the blocks, older projects' rows move into blocks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from chatlens import Project
from chatlens.schema import ORIGINAL_SCHEMA
from chatlens.store import Store
from chatlens.store import originals as blocks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_JSON = SHARED / "telegram" / "json_ru_channel" / "result.json"


def _rows(source: str, positions: list[int], tag: str) -> pa.Table:
    return pa.table({"source_id": [source] * len(positions), "source_pos": positions,
                     "uid": [f"u-{source}{p}" for p in positions],
                     "raw": [f"{tag}{p}" for p in positions]}, schema=ORIGINAL_SCHEMA)


def _pairs(table: pa.Table) -> list[tuple[str, int, str]]:
    """(source_id, source_pos, raw) of each record."""
    return sorted(zip(*(table.column(c).to_pylist() for c in ("source_id", "source_pos", "raw")),
                      strict=True))


def test_blocks_give_the_newest_record_of_each_position_and_erase_every_copy(
        tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as store, store.transaction() as con:
        blocks.append(con, pa.concat_tables([_rows("a", [0, 1, 2, 5], "v1-"),
                                             _rows("b", [0, 1], "b-")]))
        blocks.append(con, _rows("a", [1, 5], "v2-"))  # two positions written again
        assert con.execute("SELECT count(*) FROM original_blocks").fetchall() == [(3,)]
        assert _pairs(blocks.read(con)) == [
            ("a", 0, "v1-0"), ("a", 1, "v2-1"), ("a", 2, "v1-2"), ("a", 5, "v2-5"),
            ("b", 0, "b-0"), ("b", 1, "b-1")]
        assert _pairs(blocks.read(con, [("a", 5), ("b", 1), ("b", 9)])) == [
            ("a", 5, "v2-5"), ("b", 1, "b-1")]
        assert _pairs(blocks.read(con, source_id="b")) == [("b", 0, "b-0"), ("b", 1, "b-1")]
        assert blocks.read(con, []).num_rows == 0
        con.execute("CREATE TEMP TABLE _gone AS SELECT * FROM (VALUES ('u-a5', 'a', 5), "
                    "('u-a2', 'a', 2), ('u-b0', 'c', 0)) t(uid, source_id, source_pos)")
        assert blocks.erase(con, "_gone") == 4  # both versions of 5, 2, and b0 by its uid
        assert _pairs(blocks.read(con, source_id="a")) == [("a", 0, "v1-0"), ("a", 1, "v2-1")]
        assert blocks.erase(con, "_gone") == 0
        assert blocks.erase_sources(con, ["b"]) == 1
        assert {r[0] for r in con.execute("SELECT source_id FROM original_blocks").fetchall()} \
            == {"a"}


@pytest.mark.skipif(not REAL_JSON.exists(), reason="needs ../shared/data (real exports)")
def test_a_real_export_keeps_every_record_verbatim_in_far_fewer_bytes(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as p:
        (src,) = p.ingest([str(REAL_JSON)]).sources
        kept = p.store.originals(source_id=src.source_id)
        assert kept.num_rows == src.read - src.quarantined
        doc = orjson.loads(REAL_JSON.read_bytes())["messages"]
        raws = kept.column("raw").to_pylist()
        assert [orjson.loads(r) for r in raws] == doc  # every record, as the file has it
        stored = p.store.con.execute("SELECT sum(octet_length(data)) FROM original_blocks"
                                     ).fetchall()[0][0]
        assert stored < 0.3 * sum(len(r.encode()) for r in raws)


def test_forgetting_an_author_removes_their_originals_only(tmp_path: Path) -> None:
    from chatlens.project.forget import forget
    from tests.helpers import ingest_border_chats

    with Project.init(tmp_path / "p") as p:
        ingest_border_chats(p, tmp_path)
        before = p.store.originals().num_rows
        author, n = p.store.con.execute(
            "SELECT author_key, count(*) FROM messages WHERE author_key IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1").fetchall()[0]
        theirs = p.store.con.execute("SELECT source_id, source_pos FROM messages "
                                     "WHERE author_key = ?", [author]).fetchall()
        assert forget(p, author=author).deleted["originals"] == n
        assert p.store.originals(theirs).num_rows == 0
        assert p.store.originals().num_rows == before - n


def test_forgetting_erases_the_originals_of_duplicates_too(tmp_path: Path) -> None:
    """A message read again (an overlapping export, a repeat within a file) is stored once,
    but each record read is kept: erasing the message erases them all."""
    from chatlens.project.forget import forget
    from tests.helpers import telegram_export

    texts = [f"сообщение {i}" for i in range(30)]
    with Project.init(tmp_path / "p") as p:
        p.ingest([telegram_export(tmp_path / "a.json", texts[:20]),
                  telegram_export(tmp_path / "b.json", texts)])  # 20 of 30 again
        assert p.store.originals().num_rows == 50
        author = p.store.con.execute("SELECT author_key FROM messages m JOIN identities i "
                                     "USING (author_key) WHERE i.raw_id = 'user1'"
                                     ).fetchall()[0][0]
        ids = p.store.con.execute("SELECT uid FROM messages WHERE author_key = ?",
                                  [author]).fetchall()
        copies = sum(u in {r[0] for r in ids} for u in p.store.originals().column(
            "uid").to_pylist())
        assert copies == 10  # 6 messages, 4 of them read twice
        assert forget(p, author=author).deleted["originals"] == copies
        left = p.store.originals()
        assert left.num_rows == 50 - copies
        assert not any('"user1"' in r for r in left.column("raw").to_pylist())


def test_a_version_3_project_is_read_as_it_is_then_its_originals_move_into_blocks(
        tmp_path: Path) -> None:
    from tests.helpers import ingest_border_chats

    with Project.init(tmp_path / "p") as p:
        ingest_border_chats(p, tmp_path)
        whole = _pairs(p.store.originals())
        con = p.store.con
        con.register("_all", p.store.originals())
        con.execute("CREATE TABLE originals AS SELECT source_id, source_pos, raw FROM _all")
        con.execute("DROP TABLE original_blocks")
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        key = whole[3][:2]
    with Store.open(tmp_path / "p", read_only=True) as old:
        assert _pairs(old.originals()) == whole
        assert _pairs(old.originals([key])) == [whole[3]]
    with Store.open(tmp_path / "p") as store:
        assert store.con.execute("SELECT count(*) FROM duckdb_tables() "
                                 "WHERE table_name = 'originals'").fetchall() == [(0,)]
        assert _pairs(store.originals()) == whole
        assert store.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                 ).fetchall() == [("4",)]
