"""Cost of deduplicating an ingest batch as the project grows, and of a lookup by uid (issue 14).

For each size in ``--millions`` a project's ``messages`` is filled (in SQL) to that many rows,
then a batch of 20k messages (``--dups`` of them already stored) goes through
:func:`chatlens.store.core.insert_new_messages` (rolled back, best of ``--reps``), and one
message is looked up by uid (:meth:`Store.uids_where`; and as the dashboard shows it,
:func:`chatlens.store.stages.messages_by_uid`). Baseline, same
run, same rows: schema version 2's table keyed by ``uid`` (``INSERT OR IGNORE``; its point
lookup uses the key index), with the memory DuckDB's key index holds (``ART_INDEX``).

Usage: python bench/dedupe.py [--millions 1,2.5,5] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.ingest.pipeline import BATCH  # noqa: E402
from chatlens.schema import MESSAGE_SCHEMA  # noqa: E402
from chatlens.store import Store, stages  # noqa: E402
from chatlens.store.core import MESSAGE_SQL_COLUMNS, insert_new_messages, uid_hash_sql  # noqa: E402

_ROWS = ("SELECT md5(i::VARCHAR)[:24] AS uid, 'telegram' AS platform, 'telegram:' || (i % 50) "
         "AS chat_key, i::VARCHAR AS message_id, TIMESTAMPTZ '2022-01-01 00:00:00+00' + "
         "i * INTERVAL 1 SECOND AS ts, false AS ts_naive, 'a' || (i % 999) AS author_key, "
         "'сообщение номер ' || i || ' о границе и очередях' AS text, 'message' AS kind, "
         "NULL AS media, NULL AS reply_to, NULL AS forwarded_from, NULL AS entities, "
         "false AS edited, 's' AS source_id, i AS source_pos, 'line ' || i AS source_loc "
         "FROM range({lo}, {hi}) r(i)")

V2_MESSAGES = ("CREATE TABLE messages_v2 (uid VARCHAR PRIMARY KEY, "
               "platform VARCHAR, chat_key VARCHAR, message_id VARCHAR, ts TIMESTAMPTZ, "
               "ts_naive BOOLEAN, author_key VARCHAR, text VARCHAR, kind VARCHAR, media VARCHAR, "
               "reply_to VARCHAR, forwarded_from VARCHAR, entities JSON, edited BOOLEAN, "
               "source_id VARCHAR, source_pos BIGINT, source_loc VARCHAR)")


def best(reps: int, run: Callable[[], object]) -> tuple[float, float]:
    """The least wall and CPU seconds (all of DuckDB's threads; steadier on a shared machine)
    of ``reps`` runs."""
    wall = cpu = 1e9
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        run()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def runs(store: Store, batch: pa.Table, new: int, uid: str) -> list[Callable[[], object]]:
    """The batch inserted (then rolled back; ``new`` of it is new) and a message looked up,
    each way: this version's, then version 2's (the ``messages_v2`` table); last, the lookup
    the dashboard makes (with the chat's title)."""
    where, params = store.uids_where([uid])

    def rolled_back(insert: Callable[[duckdb.DuckDBPyConnection], int]) -> Callable[[], None]:
        def run() -> None:
            with store.transaction() as con:
                assert insert(con) == new
                con.execute("ROLLBACK")
                con.execute("BEGIN TRANSACTION")  # the block commits an empty one
        return run

    return [
        rolled_back(lambda c: len(insert_new_messages(c, batch))),
        rolled_back(lambda c: int(c.execute(
            f"INSERT OR IGNORE INTO messages_v2 SELECT {MESSAGE_SQL_COLUMNS} FROM _bench_batch"
        ).fetchall()[0][0])),
        lambda: store.con.execute(f"SELECT text FROM messages WHERE {where}", params).fetchall(),
        lambda: store.con.execute("SELECT text FROM messages_v2 WHERE uid = ?",
                                  [uid]).fetchall(),
        lambda: stages.messages_by_uid(store, [uid]),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--millions", default="1,2.5,5")
    ap.add_argument("--dups", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    root = args.workdir / "dedupe_project"
    shutil.rmtree(root, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CHATLENS_MEMORY_LIMIT", "4GB")  # the baseline's index must fit
    store = Store.create(root)
    con = store.con
    con.execute(V2_MESSAGES)
    filled = 0
    for millions in sorted(float(x) for x in args.millions.split(",")):
        n = int(millions * 1e6)
        for lo in range(filled, n, 500_000):
            rows = _ROWS.format(lo=lo, hi=min(n, lo + 500_000))
            con.execute(f"INSERT INTO messages SELECT *, {uid_hash_sql('uid')} FROM ({rows})")
            con.execute(f"INSERT INTO messages_v2 {rows}")
        filled = n
        con.execute("CHECKPOINT")
        batch = con.sql(f"SELECT * FROM ({_ROWS.format(lo=n, hi=n + BATCH - args.dups)}) "
                        f"UNION ALL SELECT * FROM ({_ROWS.format(lo=0, hi=args.dups)})"
                        ).to_arrow_table().cast(MESSAGE_SCHEMA)
        con.register("_bench_batch", batch)
        uid = str(con.execute("SELECT md5('12345')[:24]").fetchall()[0][0])
        names = ("dedupe_batch", "v2_key_batch", "lookup", "v2_key_lookup", "messages_by_uid")
        times = [best(args.reps, run) for run in runs(store, batch, BATCH - args.dups, uid)]
        index = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory() "
                            "WHERE tag = 'ART_INDEX'").fetchall()[0][0]
        print(json.dumps({
            "stored": n, "batch": BATCH,
            **{f"{k}_ms": round(w * 1e3, 1) for k, (w, _) in zip(names, times, strict=True)},
            **{f"{k}_cpu_ms": round(c * 1e3, 1) for k, (_, c) in zip(names, times, strict=True)},
            "v2_key_index_mb": round((index or 0) / 2**20), "load": os.getloadavg()[0]}),
            flush=True)
        con.unregister("_bench_batch")
    store.close()
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
