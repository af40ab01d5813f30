"""The store's bulk parts at scale, each measured on its own: reading the enrich and code work
sets, appending enrichment and codes (small appends against row-group appends), and building
the search index.

Input: the real news-channel corpus (``../shared/data/corpora/ru_news_channels_2023_2024``,
22,099 posts) ingested and enriched once; each size then copies those messages and their
enrichment in SQL: copy k gets ``-k`` appended to its uids and message ids, its chats renamed
``<chat> #<k // 10>`` and its dates shifted back ``(k % 10) × 728`` days (enrichment is a
function of the text, so a copy's enrichment is the original's). This skips enriching millions
of messages (bench/scale.py does that) to measure what the store does with them. Peak RSS is
this process's (DuckDB included), sampled every 0.05 s, per part. The write parts run one after
the other on the same project (each deletes its rows after), so the later ones also pay for
cleaning up the earlier ones' deletes: bench/store_appends.py compares append sizes on fresh
copies.

Usage: nice -n 10 python bench/store_bulk.py --sizes 300000,1000000
Targets (issue 16): every part linear or better in time, memory flat as the corpus grows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from news_corpus import replicate, require_corpus  # noqa: E402

from chatlens import Project  # noqa: E402
from chatlens.code.stage import CODE_SCHEMA  # noqa: E402
from chatlens.engines.local import appends  # noqa: E402
from chatlens.store import Store  # noqa: E402
from chatlens.store import stages as db  # noqa: E402
from chatlens.store.core import arrow_reader, uid_hash_sql  # noqa: E402

GIB = 1 << 30
BATCH = 20_000  # the stages' batch size (chatlens.project.process.BATCH_ROWS)


class Peak:
    """Peak resident memory of this process while the block runs."""

    def __enter__(self) -> Peak:
        self.peak, self._on = 0, True
        proc = psutil.Process()

        def sample() -> None:
            while self._on:
                self.peak = max(self.peak, proc.memory_info().rss)
                time.sleep(0.05)

        self._t = threading.Thread(target=sample, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._on = False
        self._t.join()


def part(n: int, func: Callable[[], Any]) -> dict[str, Any]:
    with Peak() as pk:
        t = time.perf_counter()
        extra = func()
        wall = time.perf_counter() - t
    out = {"s": round(wall, 2), "msgs_per_s": round(n / wall), "peak_rss_gib":
           round(pk.peak / GIB, 2)}
    return {**out, **(extra or {})}


def base_project(work: Path) -> Path:
    base = work / "store_base"
    if (base / "enriched").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    src = work / "news_base.jsonl"
    replicate(src, 22_099)
    with Project.init(base) as p:
        (rep,) = p.ingest([str(src)], format="jsonl").sources
        assert rep.status == "complete", rep.error
        p.enrich(workers=2)
    (base / "enriched").touch()
    src.unlink()
    return base


def build(base: Path, root: Path, n: int) -> str:
    """A project of ``n`` copied messages with their enrichment; returns the fingerprint."""
    shutil.rmtree(root, ignore_errors=True)
    Project.init(root).close()
    with Store.open(root) as store, store.bulk_load():
        con = store.con
        con.execute(f"ATTACH '{base / 'chatlens.duckdb'}' AS base (READ_ONLY)")
        con.execute("SET preserve_insertion_order = true")  # copy by copy, in message order
        copies = -(-n // 22_099)
        con.execute(f"""
            INSERT INTO messages SELECT m.uid || '-' || k AS u, platform,
                chat_key || ' #' || (k // 10), message_id || '-' || k,
                ts - to_days(CAST(728 * (k % 10) AS INTEGER)), ts_naive, author_key, text, kind,
                media, reply_to, forwarded_from, entities, edited, source_id, source_pos,
                source_loc, {uid_hash_sql('u')}
            FROM range({copies}) r(k), base.messages m ORDER BY k, m.rowid LIMIT {n}""")
        con.execute(f"""
            INSERT INTO enrichment SELECT e.uid || '-' || k, fingerprint, lang, lang_score, norm,
                lemmas, urls, mentions, hashtags, emoji, places
            FROM range({copies}) r(k), base.enrichment e
            SEMI JOIN messages ON messages.uid = e.uid || '-' || k ORDER BY k, e.rowid""")
        fp = str(con.execute("SELECT any_value(fingerprint) FROM enrichment").fetchone()[0])
        con.execute("SET preserve_insertion_order = false")
        con.execute("DETACH base")
    return fp


def drain(reader: pa.RecordBatchReader) -> dict[str, Any]:
    rows = batches = 0
    for b in reader:
        rows, batches = rows + b.num_rows, batches + 1
    return {"rows": rows, "batches": batches}


def codes_for(batch: pa.RecordBatch) -> pa.Table:
    """One code row per message (a one-measure codebook, as a trained model writes)."""
    n = batch.num_rows
    return pa.table({"uid": batch.column("uid"), "codebook": pa.array(["bench"] * n),
                     "measure": pa.array(["m"] * n), "in_population": pa.array([True] * n),
                     "value": pa.array(["no"] * n), "score": pa.array([0.1] * n),
                     "scorer": pa.array(["model"] * n),
                     "matched": pa.array([None] * n, pa.list_(pa.string()))},
                    schema=CODE_SCHEMA)


def writes(store: Store, fp: str, rows: int, what: str) -> dict[str, Any]:
    """Append every message's enrichment (or one code) again, ``rows`` per append; only the
    appends (and the checkpoint that ends them) are timed."""
    cols = db.ENRICH_COLUMNS.replace("fingerprint, ", "") if what == "enrichment" else "uid"
    reader = arrow_reader(store.con.cursor().sql(
        f"SELECT {cols} FROM enrichment WHERE fingerprint = ?", params=[fp]), BATCH)
    results = (((pa.Table.from_batches([b]) if what == "enrichment" else codes_for(b),), True)
               for b in reader)
    spent = 0.0
    with store.bulk_load():
        for (table,), _ in appends(results, rows):
            t = time.perf_counter()
            if what == "enrichment":
                db.write_enrichment(store, table, "bench")
            else:
                db.write_codes(store, table, "bench", fresh=True)
            spent += time.perf_counter() - t
        t = time.perf_counter()
    spent += time.perf_counter() - t  # bulk_load's checkpoint
    with store.transaction() as con:  # put the project back as it was (not timed)
        con.execute("DELETE FROM enrichment WHERE fingerprint = 'bench'")
        con.execute("DELETE FROM codes WHERE codebook = 'bench'")
    store.con.execute("CHECKPOINT")
    return {"write_s": round(spent, 2)}


def run(base: Path, work: Path, n: int) -> dict[str, Any]:
    root = work / f"store_{n}"
    t = time.perf_counter()
    fp = build(base, root, n)
    out: dict[str, Any] = {"messages": n, "built_s": round(time.perf_counter() - t, 1)}
    with Store.open(root) as store:
        parts = out["parts"] = {}
        parts["enrich work set read"] = part(n, lambda: drain(db.enrich_todo(store, "x", BATCH)))
        parts["search index build"] = part(n, lambda: {"indexed": db.index_lemmas(store)})
        parts["code work set read"] = part(n, lambda: drain(db.code_todo(store, "cb", fp, 7,
                                                                         BATCH)))
        for what in ("codes", "enrichment"):
            for rows in (BATCH, 131_072):
                parts[f"{what} writes, appends of {rows:,}"] = part(
                    n, lambda w=what, r=rows: writes(store, fp, r, w))
        print(json.dumps(out, indent=2), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="300000,1000000")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    require_corpus()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("input: the 22,099 real posts of 24 news channels and their enrichment, copied in SQL "
          "to each size (copy k: uids and ids suffixed -k, chats '<chat> #<k//10>', dates "
          "shifted back (k % 10) x 728 days)", flush=True)
    base = base_project(args.workdir)
    runs = [run(base, args.workdir, int(s)) for s in args.sizes.split(",") if s]
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        x = last["messages"] / first["messages"]
        growth = {name: {"time_x": round(last["parts"][name]["s"] / max(p["s"], 1e-3), 2),
                         "memory_x": round(last["parts"][name]["peak_rss_gib"]
                                           / max(p["peak_rss_gib"], 0.01), 2)}
                  for name, p in first["parts"].items()}
        print(json.dumps({"messages_x": round(x, 2), "growth": growth}, indent=2))


if __name__ == "__main__":
    main()
