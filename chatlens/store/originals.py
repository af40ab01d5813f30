"""Original records, kept verbatim and compressed in blocks: a row of ``original_blocks`` per
batch written.

Every record read is kept so any view traces back to its source (DESIGN), and the records are
most of what a project holds: a Telegram export's pretty-printed JSON is ~1 KB a message beside
~60 bytes of text. Kept a row each, DuckDB compressed them again at every checkpoint, most of
ingest's storing time (``bench/ingest.py``). A block is one batch's ``(source_pos, raw)`` as an
Arrow IPC stream with zstd-compressed buffers (``uid`` too): written as one value, ~6x
smaller.

A position written again (a re-collected message whose text changed) is read from its newest
block (``block`` grows with each write). Each record carries its message's uid, duplicates
included: erasing messages rewrites every block that holds a record of theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.schema import ORIGINAL_SCHEMA

BLOCKS_DDL = """
CREATE TABLE IF NOT EXISTS original_blocks (
    block BIGINT NOT NULL, source_id VARCHAR NOT NULL, first_pos BIGINT NOT NULL,
    last_pos BIGINT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);
"""

_BLOCK_SCHEMA = pa.schema([ORIGINAL_SCHEMA.field(n) for n in ("source_pos", "uid", "raw")])
_CODEC = pa.Codec("zstd", compression_level=1)  # levels 1 and 3 compress alike here; 1 is faster


def encode(block: pa.Table) -> bytes:
    """``(source_pos, uid, raw)`` rows as one compressed Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=_CODEC)
    with pa.ipc.new_stream(sink, _BLOCK_SCHEMA, options=options) as writer:
        writer.write_table(block.select(_BLOCK_SCHEMA.names).cast(_BLOCK_SCHEMA))
    return bytes(sink.getvalue())


def decode(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def append(con: Any, originals: pa.Table) -> int:
    """Store :data:`ORIGINAL_SCHEMA` rows, a block per source; returns the rows stored."""
    if not originals.num_rows:
        return 0
    row = con.execute("SELECT coalesce(max(block), 0) FROM original_blocks").fetchall()
    block = int(row[0][0])
    sources = originals.column("source_id")
    ids = pc.unique(sources).to_pylist()
    for source_id in ids:
        part = originals if len(ids) == 1 else originals.filter(pc.equal(sources, source_id))
        block += 1
        _insert(con, block, source_id, part)
    return int(originals.num_rows)


def _insert(con: Any, block: int, source_id: str, part: pa.Table) -> None:
    pos = part.column("source_pos")
    first, last = pc.min_max(pos).values()
    con.execute("INSERT INTO original_blocks VALUES (?, ?, ?, ?, ?, ?)",
                [block, source_id, first.as_py(), last.as_py(), part.num_rows, encode(part)])


def read(con: Any, keys: Iterable[tuple[str, int]] | None = None,
         source_id: str | None = None) -> pa.Table:
    """The newest record of each ``(source_id, source_pos)`` in ``keys`` (all of ``source_id``'s,
    or every record, when ``keys`` is None), as :data:`ORIGINAL_SCHEMA` rows in that order."""
    wanted: dict[str, list[int]] | None = None
    if keys is not None:
        wanted = {}
        for sid, pos in keys:
            wanted.setdefault(sid, []).append(int(pos))
    sql = "SELECT source_id, data FROM original_blocks"
    params: list[Any] = []
    if wanted is not None:
        if not wanted:
            return ORIGINAL_SCHEMA.empty_table()
        ranges = [(sid, min(p), max(p)) for sid, p in wanted.items()]
        sql += " WHERE " + " OR ".join(
            "(source_id = ? AND last_pos >= ? AND first_pos <= ?)" for _ in ranges)
        params = [v for r in ranges for v in r]
    elif source_id is not None:
        sql += " WHERE source_id = ?"
        params = [source_id]
    pieces = []
    for sid, data in con.execute(sql + " ORDER BY block DESC", params).fetchall():  # newest first
        rows = decode(data)
        if wanted is not None:
            rows = rows.filter(pc.is_in(rows.column("source_pos"),
                                        pa.array(wanted[sid], pa.int64())))
        pieces.append(rows.add_column(0, "source_id", pa.array([sid] * rows.num_rows,
                                                               pa.string())))
    if not pieces:
        return ORIGINAL_SCHEMA.empty_table()
    table = pa.concat_tables(pieces)
    table = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    first = table.group_by(["source_id", "source_pos"], use_threads=False).aggregate(
        [("_i", "min")]).column("_i_min")
    return table.take(first).drop_columns(["_i"]).sort_by(
        [("source_id", "ascending"), ("source_pos", "ascending")]).cast(ORIGINAL_SCHEMA)


def erase(con: Any, forget: str) -> int:
    """Remove the records of the messages in table ``forget`` (``uid``, ``source_id``,
    ``source_pos``): every record with one of their uids (the stored one and any duplicate read
    later), and those at their positions (records kept without a uid); returns how many.

    Every block is read (a duplicate may be in any source); forgetting rewrites the whole
    database file anyway."""
    uids = pa.array([r[0] for r in con.execute(f"SELECT DISTINCT uid FROM {forget}").fetchall()],
                    pa.string())
    at: dict[str, list[int]] = {}
    for source_id, pos in con.execute(f"SELECT source_id, source_pos FROM {forget}").fetchall():
        at.setdefault(source_id, []).append(int(pos))
    removed = 0
    for block, source_id in con.execute("SELECT block, source_id FROM original_blocks "
                                        "ORDER BY block").fetchall():
        (data,), = con.execute("SELECT data FROM original_blocks WHERE block = ? AND "
                               "source_id = ?", [block, source_id]).fetchall()
        rows = decode(data)
        gone = pc.fill_null(pc.is_in(rows.column("uid"), uids), False)
        if source_id in at:
            gone = pc.or_(gone, pc.is_in(rows.column("source_pos"),
                                         pa.array(at[source_id], pa.int64())))
        n_gone = int(pc.sum(gone).as_py() or 0)
        if not n_gone:
            continue
        removed += n_gone
        con.execute("DELETE FROM original_blocks WHERE block = ? AND source_id = ?",
                    [block, source_id])
        kept = rows.filter(pc.invert(gone))
        if kept.num_rows:
            _insert(con, block, source_id, kept)
    return removed


def erase_sources(con: Any, source_ids: list[str]) -> int:
    """Remove every record of these sources; returns how many."""
    row = con.execute("DELETE FROM original_blocks WHERE source_id IN (SELECT unnest(?)) "
                      "RETURNING n", [source_ids]).fetchall()
    return sum(int(r[0]) for r in row)


def from_table(con: Any, table: str, batch_rows: int = 20_000) -> int:
    """Move the rows of an older project's one-row-per-record ``table`` into blocks (in source
    order, ``batch_rows`` a block), then drop it; returns the records moved."""
    from chatlens.store.core import arrow_reader

    reading = con.cursor()  # streams the old rows while ``con`` writes the blocks
    rel = reading.sql(  # the uid of the message stored from each record (none: a duplicate)
        f"SELECT o.source_id, o.source_pos, m.uid, o.raw FROM {table} o "
        "LEFT JOIN messages m USING (source_id, source_pos) ORDER BY o.source_id, o.source_pos")
    moved = 0
    for batch in arrow_reader(rel, batch_rows):
        moved += append(con, pa.Table.from_batches([batch]).cast(ORIGINAL_SCHEMA))
    reading.close()
    con.execute(f"DROP TABLE {table}")
    return moved
