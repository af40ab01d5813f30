"""Enrich + code, part by part, in one process: where the time of ``bench/code.py`` goes.

Replicates the real news-channel corpus (``../shared/data/corpora/ru_news_channels_2023_2024``,
22,099 posts; copies get shifted ids, said so in the output) to ``--messages``, ingests it,
then runs the stages' own functions in the order ``Project.code`` runs them (new messages are
enriched and coded in one pass), timing each call: reading the work set, ``enrich_table``
(with its steps) and ``code_table`` (builtin:exodus-2022), which the workers run; appending
the enrichment, ``index_run`` (the search index), appending the codes and the checkpoint,
which the main process runs. Prints
seconds and microseconds per message for each part; 20,000 messages/s (issue 16's target) is
50 µs for all of them.

Usage: python bench/code_parts.py [--messages 200000] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from news_corpus import replicate, require_corpus  # noqa: E402

from chatlens import Project  # noqa: E402
from chatlens.code import compile_codebook  # noqa: E402
from chatlens.code.compiled import model_fingerprints  # noqa: E402
from chatlens.enrich import enrich_table  # noqa: E402
from chatlens.project import process  # noqa: E402
from chatlens.store import stages as db  # noqa: E402

CODEBOOK = "builtin:exodus-2022"


class Parts:
    """Seconds per named part, added up over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - self.last
        self.last = now

    def timed(self, part: str, batches: Any) -> Iterator[Any]:
        """The items of ``batches``, the time spent producing them added to ``part``."""
        it = iter(batches)
        while True:
            self.last = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            self(part)
            yield item


def measure(project_dir: Path, n: int) -> dict[str, Any]:
    parts, steps = Parts(), {}  # steps: enrich_table's own (prepare, language, ...)
    with Project.open(project_dir) as p:
        store, settings = p.store, p.enrich_settings()
        fp = settings.fingerprint()
        cb, source = p.codebook(CODEBOOK)
        models = model_fingerprints(cb, store.root / "models")
        compiled = compile_codebook(cb, models_dir=store.root / "models")
        hashes = {m.id: cb.measure_hash(m.id, extras={m.id: f"{fp}|{models.get(m.id, '')}"})
                  for m in cb.measures}
        db.save_codebook(store, cb.name, cb.version, cb.hash(), source, cb.resolved())
        db.sync_measures(store, cb.name, hashes, "bench")
        fresh = db.codes_without_enrichment(store, cb.name, fp) == 0
        done = []  # what the workers hand back: enrichment and codes of each batch
        for batch in parts.timed("read enrich work set", db.enrich_todo(
                store, fp, process.batch_rows(n, 1), for_code=True)):
            table = pa.Table.from_batches([batch])
            parts.last = time.perf_counter()
            enriched = enrich_table(table, settings, steps, with_codes=True).append_column(
                "ts", table.column("ts"))
            parts("enrich_table")
            codes = process.code_enriched(table, enriched, compiled)
            parts("code_table")
            done.append(((enriched, codes), True))
        with store.bulk_load():
            for (enriched, codes), _ in process.appends(done):
                parts.last = time.perf_counter()
                db.write_enrichment(store, enriched, fp)
                parts("append enrichment")
                db.index_run(store, enriched)
                parts("index_run (search index)")
                db.write_codes(store, codes, "bench", fresh)
                parts("append codes")
            parts.last = time.perf_counter()
        parts("checkpoint")
        assert db.code_todo_count(store, cb.name, fp, len(hashes)) == 0
    total = sum(parts.seconds.values())
    return {
        "messages": n, "measures": len(hashes),
        "parts": {k: {"s": round(v, 2), "us_per_msg": round(v / n * 1e6, 1)}
                  for k, v in parts.seconds.items()},
        "enrich_table_steps_s": {k: round(v, 2) for k, v in steps.items()},
        "total_s": round(total, 2), "msgs_per_s": round(n / total),
        "budget_us_per_msg_at_20k": 50.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    require_corpus()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src, proj = args.workdir / "parts_replicated.jsonl", args.workdir / "code_parts"
    n = replicate(src, args.messages)
    print(f"built {src}: {n:,} posts replicated from the 22,099 real news-channel posts "
          f"(ids shifted per copy)")
    shutil.rmtree(proj, ignore_errors=True)
    with Project.init(proj) as p:
        (rep,) = p.ingest([src], format="jsonl").sources
        assert rep.status == "complete", rep.error
    try:
        print(json.dumps(measure(proj, n), indent=2))
    finally:
        shutil.rmtree(proj, ignore_errors=True)
        src.unlink()


if __name__ == "__main__":
    main()
