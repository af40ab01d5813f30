"""Enrichment throughput on the real news corpus (single process).

Usage: python bench/enrich.py [--min-messages N] [--tokenizer fast|razdel] [--batch 10000]
                              [--baseline]

Reads ``<shared>/data/corpora/ru_news_channels_2023_2024/*.json`` (JSON arrays with ``text``);
``<shared>`` is ``$CHATLENS_SHARED_DATA`` or ``../shared/data`` next to the repository. With
``--min-messages`` the corpus is replicated (said so in the output); replicated copies hit a
warm lemma cache, so the first pass is the honest cold figure and is printed separately.
The warm pass prints its steps (seconds and share: prepare, language, chunks, lemmas, places).
``--baseline`` also times the per-message reference path (``enrich_text`` row by row, what
``enrich_table`` must equal) on the same messages, for a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlens.enrich import EnrichSettings, enrich_table  # noqa: E402
from chatlens.enrich.pipeline import _enrich_rows  # noqa: E402


def corpus_dir() -> Path:
    env = os.environ.get("CHATLENS_SHARED_DATA")
    base = Path(env) if env else ROOT.parent / "shared" / "data"
    return base / "corpora" / "ru_news_channels_2023_2024"


def load_texts(d: Path) -> list[str]:
    texts: list[str] = []
    for f in sorted(d.glob("*.json")):
        texts.extend(str(m.get("text") or "") for m in json.loads(f.read_text("utf-8")))
    return texts


def run(texts: list[str], settings: EnrichSettings, batch: int,
        timings: dict[str, float] | None = None) -> tuple[float, Counter[str]]:
    langs: Counter[str] = Counter()
    t0 = time.perf_counter()
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        uids = [str(start + i) for i in range(len(chunk))]
        out = enrich_table(pa.table({"uid": uids, "text": chunk}), settings, timings)
        langs.update(out.column("lang").to_pylist())
    return time.perf_counter() - t0, langs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-messages", type=int, default=0)
    ap.add_argument("--tokenizer", default="fast", choices=["fast", "razdel"])
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--baseline", action="store_true",
                    help="also time the per-message reference path on the same messages")
    args = ap.parse_args()
    d = corpus_dir()
    if not d.is_dir():
        sys.exit(f"corpus not found: {d} (set CHATLENS_SHARED_DATA)")
    texts = load_texts(d)
    chars = sum(map(len, texts))
    settings = EnrichSettings(tokenizer=args.tokenizer)
    print(
        f"corpus: {len(texts):,} real messages, mean {chars / len(texts):.0f} chars; "
        f"tokenizer={args.tokenizer}, settings {settings.fingerprint()}"
    )
    dt, langs = run(texts, settings, args.batch)
    print(
        f"cold pass (models loaded lazily, empty caches): {len(texts) / dt:,.0f} msg/s ({dt:.2f} s)"
    )
    steps: dict[str, float] = {}
    dt, _ = run(texts, settings, args.batch, steps)
    print(f"warm pass (same messages, caches filled):      {len(texts) / dt:,.0f} msg/s")
    if steps:
        print("  warm pass steps: " + ", ".join(
            f"{k} {v:.2f} s ({v / dt:.0%})" for k, v in steps.items()))
    if args.baseline:
        t0 = time.perf_counter()
        for start in range(0, len(texts), args.batch):
            _enrich_rows(texts[start : start + args.batch], settings)
        base = time.perf_counter() - t0
        print(f"baseline, per-message reference path (warm):  {len(texts) / base:,.0f} msg/s; "
              f"enrich_table is {base / dt:.1f}x faster")
    if args.min_messages > len(texts):
        reps = -(-args.min_messages // len(texts))
        big = texts * reps
        dt, _ = run(big, settings, args.batch)
        print(
            f"REPLICATED corpus x{reps} = {len(big):,} messages (duplicates of real ones): "
            f"{len(big) / dt:,.0f} msg/s"
        )
    print("languages:", dict(langs.most_common()))


if __name__ == "__main__":
    main()
