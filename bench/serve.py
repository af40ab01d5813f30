"""Dashboard latency: p50/p95 of each page on a large project, from a loopback load generator.

The project is seeded with ``--corpus news`` (default: the real news-channel corpus in
../shared/data, 22,099 posts, ingested and coded by the real pipeline; audit samples get
SIMULATED labels, so only the latency of the estimate pages means anything) or ``--corpus demo``
(the synthetic ``chatlens demo`` chats), then replicated in DuckDB to ``--messages`` rows: each
copy gets new uids and is shifted in time by one week, and its enrichment, codes and search
index are copied with it, so every page works as on a real corpus.

    python bench/serve.py --messages 10000000          # the target: p95 < 300 ms per page
    python bench/serve.py --messages 1000000           # a quick run

The server runs in its own process (uvicorn, as ``chatlens serve``); each page is requested
once cold (first computation, recorded separately), then ``--requests`` times by ``--workers``
concurrent clients.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb

TARGET_MS = 300.0
NEWS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpora" / \
    "ru_news_channels_2023_2024"


def seed_demo(root: Path, base: int) -> None:
    from chatlens.demo import run_demo

    run_demo(root, n_messages=base, seed=7)


def seed_news(root: Path) -> None:
    """The real news-channel corpus, ingested and coded; audit samples get SIMULATED labels
    (the coded value, one in ten flipped) so that the estimate pages have something to show:
    the figures on those pages mean nothing, only their latency is measured."""
    import json
    import random

    from chatlens import Project
    from chatlens.store.labels import NewLabel

    root.parent.mkdir(parents=True, exist_ok=True)
    src = root.parent / "news.jsonl"
    with src.open("w", encoding="utf-8") as out:
        for f in sorted(NEWS.glob("*_messages.json")):
            for p in json.loads(f.read_text(encoding="utf-8")):
                out.write(json.dumps({"id": p["message_id"], "chat": p["channel"],
                                      "date": p["date"], "text": p["text"] or "",
                                      "author": str(p["sender_id"])}, ensure_ascii=False))
                out.write("\n")
    rng = random.Random(7)
    with Project.init(root) as proj:
        proj.ingest([src], format="jsonl")
        proj.code("builtin:exodus-2022")
        codes = dict(proj.store.con.execute(
            "SELECT uid || '|' || measure, value FROM codes WHERE in_population").fetchall())
        def simulated(uid: str, measure: str) -> str:
            coded = codes[f"{uid}|{measure}"] == "yes"
            return "yes" if coded != (rng.random() < 0.1) else "no"

        for measure in ("border_crossing", "mobilization", "z_symbol"):
            sample = proj.sample(measure, "audit", 150, seed=7)
            items = proj.labels().sample_items(sample["sample_id"])
            proj.labels().add_labels(
                NewLabel(uid=i["uid"], codebook="exodus-2022", measure=measure,
                         value=simulated(i["uid"], measure),
                         annotator="simulated coder (latency bench only)",
                         sample_id=sample["sample_id"], sample_kind="audit") for i in items)
    src.unlink()


def build(root: Path, messages: int, base: int, corpus: str) -> None:
    """Seed a project from ``corpus`` and replicate it in DuckDB to ``messages`` rows."""
    from chatlens.store import Store, stages
    from chatlens.store.core import uid_hash_sql

    if corpus == "news":
        seed_news(root)
    else:
        seed_demo(root, base)
    con = duckdb.connect(str(root / "chatlens.duckdb"))
    con.execute("SET memory_limit = '6GB'")
    n0 = con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    copies = math.ceil(messages / n0)
    t = time.time()
    suffix = "lpad(CAST(i AS VARCHAR), 5, '0')"
    con.execute("BEGIN")
    con.execute(f"""INSERT INTO messages SELECT m.uid || {suffix} AS u, platform, chat_key,
        message_id || '.' || i, ts + to_days(CAST(7 * i AS INTEGER)), ts_naive, author_key,
        text, kind, media, reply_to, forwarded_from, entities, edited, source_id, source_pos,
        source_loc, {uid_hash_sql('u')} FROM messages m, range(1, {copies}) r(i)""")
    con.execute(f"""INSERT INTO enrichment SELECT e.uid || {suffix}, fingerprint, lang,
        lang_score, norm, lemmas, urls, mentions, hashtags, emoji, places
        FROM (SELECT * FROM enrichment) e, range(1, {copies}) r(i)""")
    con.execute(f"""INSERT INTO codes SELECT c.uid || {suffix}, codebook, measure,
        in_population, value, score, scorer, matched, run_id
        FROM (SELECT * FROM codes) c, range(1, {copies}) r(i)""")
    con.execute("COMMIT")
    # Keep the layout the pipeline writes (zone maps depend on it): ingest appends each chat's
    # export in time order; the stages write enrichment and codes in uid order.
    for table, order in (("messages", "chat_key, ts"), ("enrichment", "uid"), ("codes", "uid")):
        con.execute(f"CREATE TABLE _sorted AS SELECT * FROM {table} ORDER BY {order}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM _sorted")
        con.execute("DROP TABLE _sorted")
    con.execute("DELETE FROM lemma_index")
    con.execute("DELETE FROM lemma_indexed")
    con.execute("CHECKPOINT")
    total = con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    con.close()
    t_index = time.time()
    with Store.open(root) as store:
        store.con.execute("SET memory_limit = '6GB'")
        stages.index_lemmas(store)
        store.con.execute("CHECKPOINT")
    print(f"search index built in {time.time() - t_index:.0f} s", file=sys.stderr)
    print(f"replicated {n0:,} seed messages x {copies} = {total:,} messages "
          f"in {time.time() - t:.0f} s", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, float]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=600) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, 1000 * (time.perf_counter() - t)


def load(url: str, requests: int, workers: int) -> tuple[list[float], list[int]]:
    """``requests`` GETs of ``url`` from ``workers`` concurrent clients."""
    times: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()
    todo = iter(range(requests))

    def worker() -> None:
        for _ in todo:
            s, ms = get(url)
            with lock:
                times.append(ms)
                codes.append(s)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, codes


def pages(root: Path) -> dict[str, str]:
    import sqlite3

    con = duckdb.connect(str(root / "chatlens.duckdb"), read_only=True)
    uid = con.execute("SELECT uid FROM codes WHERE measure = 'border_crossing' AND value = 'yes' "
                      "ORDER BY uid LIMIT 1 OFFSET (SELECT count(*) // 2 FROM codes "
                      "WHERE measure = 'border_crossing' AND value = 'yes')").fetchall()[0][0]
    con.close()
    lab = sqlite3.connect(root / "labels.sqlite")
    sample = lab.execute("SELECT sample_id FROM samples LIMIT 1").fetchone()[0]
    lab.close()
    q = urllib.parse.quote
    return {
        "overview": "/", "measures": "/measures", "measure": "/measures/border_crossing",
        "claims": "/claims", "evidence": "/evidence?measure=border_crossing&value=yes",
        "evidence deep page": f"/evidence?measure=border_crossing&value=yes&after={uid}",
        "context": f"/context/{uid}", "message": f"/message/{uid}",
        "annotate list": "/annotate", "annotate item": f"/annotate/{sample}",
        "topics": "/topics", "search": "/search?q=" + q("граница очередь"),
    }


def run(root: Path, requests: int, workers: int, only: set[str] | None = None) -> bool:
    port = free_port()
    code = ("import sys, uvicorn; from chatlens.web.app import Settings, create_app; "
            "uvicorn.run(create_app(Settings(project=sys.argv[1])), host='127.0.0.1', "
            f"port={port}, log_level='warning')")
    server = subprocess.Popen([sys.executable, "-c", code, str(root)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                get(base + "/static/app.css")
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for name, path in pages(root).items():
            if only and name not in only:
                continue
            status, cold = get(base + path)
            times, codes = load(base + path, requests, workers)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
            ok = all(c == 200 for c in [status, *codes])
            rows.append((name, cold, p50, p95, times[-1], ok))
        print(f"{'page':<20} {'cold ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  status")
        for name, cold, p50, p95, mx, ok in rows:
            print(f"{name:<20} {cold:9.0f} {p50:8.1f} {p95:8.1f} {mx:8.1f}  "
                  f"{'200' if ok else 'ERROR'}")
        worst = max(r[3] for r in rows)
        passed = worst < TARGET_MS and all(r[5] for r in rows)
        print(f"worst p95 {worst:.1f} ms: {'PASS' if passed else 'FAIL'} "
              f"(target p95 < {TARGET_MS:.0f} ms, warm; {requests} requests/page, "
              f"{workers} concurrent clients)")
        return passed
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--corpus", choices=["demo", "news"], default="news",
                    help="news: the real news-channel corpus in ../shared/data (22,099 posts); "
                         "demo: the synthetic `chatlens demo` chats")
    ap.add_argument("--base", type=int, default=2000, help="demo messages per synthetic chat")
    ap.add_argument("--requests", type=int, default=40, help="requests per page")
    ap.add_argument("--workers", type=int, default=4, help="concurrent clients")
    ap.add_argument("--only", default="", help="comma-separated page names to measure")
    ap.add_argument("--project", type=Path, default=None,
                    help="reuse (or create) the bench project here")
    args = ap.parse_args()
    tmp = None
    root = args.project
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="chatlens-bench-")
        root = Path(tmp.name) / "proj"
    if not (root / "chatlens.duckdb").exists():
        build(root, args.messages, args.base, args.corpus)
    print(f"project {root}: {args.messages:,} messages requested; cpu count {os.cpu_count()}")
    ok = run(root, args.requests, args.workers, set(filter(None, args.only.split(","))))
    if tmp is not None:
        tmp.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
