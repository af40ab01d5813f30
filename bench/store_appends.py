"""Enrichment appends of 20,000 rows (one stage batch) against 131,072 (a row group), each on a
fresh copy of an enriched project: the same rows written again under another fingerprint,
inside ``bulk_load`` as the enrich stage writes them; inserts and the closing checkpoint timed
apart.

Usage: nice -n 10 python bench/store_appends.py PROJECT [--rounds 2]
(PROJECT: an enriched project of well over 131,072 messages, e.g. one bench/store_bulk.py
built: below that no append fills a row group, so both sizes go through the log; it is copied,
never changed.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from chatlens.engines.local import appends  # noqa: E402
from chatlens.store import Store  # noqa: E402
from chatlens.store import stages as db  # noqa: E402


def once(project: Path, rows: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=project.parent) as tmp:
        root = Path(tmp) / "copy"
        shutil.copytree(project, root)
        with Store.open(root) as st:
            src = st.query_arrow(f"SELECT {db.ENRICH_COLUMNS.replace('fingerprint, ', '')} "
                                 "FROM enrichment")
            parts = [((src.slice(i, 20_000),), True) for i in range(0, src.num_rows, 20_000)]
            spent = 0.0
            with st.bulk_load():
                for (table,), _ in appends(parts, rows):
                    t = time.perf_counter()
                    db.write_enrichment(st, table, "bench")
                    spent += time.perf_counter() - t
                t = time.perf_counter()
            return spent, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    for r in range(args.rounds):
        for rows in (20_000, 131_072):
            ins, ck = once(args.project, rows)
            print(f"round {r}: appends of {rows:,}: inserts {ins:.2f} s, checkpoint {ck:.2f} s, "
                  f"total {ins + ck:.2f} s", flush=True)


if __name__ == "__main__":
    main()
