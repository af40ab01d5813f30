"""Stream the rows a stage still has to do in bounded batches, by row id.

A stage's work set ("messages not enriched yet", "enriched messages not fully coded") is a
join of wide tables. Run as one streaming query, DuckDB builds a hash table over one side's
payload (every text, norm and lemma list of the corpus) before the first row comes out, which
outgrows its memory limit at a few hundred thousand messages. Instead, the work set is first
found on keys only (row ids, from a join over uids), into a temporary table; each batch then
reads the wide columns of one run of consecutive row ids, which DuckDB's zone maps on ``rowid``
serve by reading only the row groups of that run. Memory is bounded by the batch, not the
corpus.

The enrich stage writes enrichment in message order (it reads its work in ``messages`` row id
order), so a run of consecutive enrichment row ids maps to a narrow range of message row ids:
the code stage's batches read both tables by range. Enrichment in another order (attached from
a Spark job) gives the same batches, read from wider ranges (slower, not larger: only the
batch's own rows are kept).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from chatlens.store.core import arrow_table

_counter = itertools.count()


def keyed_batches(con: duckdb.DuckDBPyConnection, keys_sql: str, keys_params: list[Any],
                  batch_sql: str, batch_rows: int, also: str | None = None,
                  ) -> pa.RecordBatchReader:
    """Batches of ``batch_sql`` over the keys ``keys_sql`` selects, ``batch_rows`` keys each.

    ``keys_sql`` selects a column ``rid`` (a row id of the table batches are read from; more
    columns may follow, e.g. values the batch should carry) and, with ``also``, a second row id
    column of that name. ``batch_sql`` reads one batch from ``{keys}`` (the key table, its name
    filled in) with parameters ``$1``/``$2``: the first and last ``rid`` of the batch, and with
    ``also`` ``$3``/``$4``: the smallest and largest ``also`` in it. Reads run on their own
    cursor, so the caller can write between batches; the key table goes when the reader is
    exhausted or closed.
    """
    cur = con.cursor()
    keys = f"_keys_{next(_counter)}"
    cur.execute(f"CREATE TEMP TABLE {keys} AS {keys_sql}", keys_params)
    extra = f", min({also}), max({also})" if also else ""
    ranges = cur.execute(
        f"SELECT min(rid), max(rid){extra} FROM (SELECT *, (row_number() OVER (ORDER BY rid) - 1)"
        f" // {int(batch_rows)} AS g FROM {keys}) GROUP BY g ORDER BY g").fetchall()
    sql = batch_sql.format(keys=keys)
    empty = [0, -1] + ([0, -1] if also else [])
    schema = arrow_table(cur.sql(sql, params=empty)).schema

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for bounds in ranges:
                table = arrow_table(cur.sql(sql, params=list(bounds)))
                if table.num_rows:
                    yield from table.combine_chunks().to_batches()
        finally:
            cur.close()  # drops the key table with it

    return pa.RecordBatchReader.from_batches(schema, batches())
