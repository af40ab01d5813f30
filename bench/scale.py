"""End to end at scale: ingest → enrich → index → code (built-in codebook, then a trained
model) → estimate by month, per size; then Spark ``local[2]`` against the local engine.

Input: the real news-channel corpus in ``../shared/data/corpora/ru_news_channels_2023_2024``
(24 channels, 22,099 posts) replicated to each size: copy k gets ids prefixed ``k-``, its
channels renamed ``<channel> #<k // 10>`` and its dates shifted back by ``(k % 10) × 728`` days
(whole weeks), so the corpus spans more chats and months as it grows (the output says so).
Coding: ``builtin:exodus-2022``, then a codebook whose ``hostility`` measure is scored by the
trained model that ships with chatlens (``hostility-ru``). Estimating: an audit sample of 400
per measure is drawn through ``Project.sample`` and labelled by a simulated coder (the coded
value, flipped for 10% of messages), then each measure is estimated by month (``auto``:
prediction-powered). Every stage runs in its own process; its peak memory is the largest sum
of resident memory over that process and its workers (sampled every 0.1 s). Enrich and code
also report ``write_s``, the time spent appending their rows to the store, and enrich
``index_s``, the time building the search index after the last batch.

The Spark part ingests ``--spark-messages`` once, then enriches and codes two copies: one on
the local engine (``--workers``), one on Spark ``local[2]``; it prints the wall-time ratio and
whether the enrichment and codes tables are identical.

Usage:
  nice -n 10 python bench/scale.py                        # 1M, 3M, 10M; Spark at 1M
  python bench/scale.py --sizes 100000,300000 --spark-messages 100000
Targets (issue 16): 10M under 15 minutes on 2 cores with peak RSS under 4 GiB; time and
memory grow linearly or better; Spark gives identical results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from news_corpus import replicate, require_corpus  # noqa: E402

GIB = 1 << 30
MODEL_CODEBOOK = """
name: scale-model
version: "1"
languages: [ru]
measures:
  - id: hostility
    question: Is the message hostile or abusive?
    instructions: Hostile, abusive or toxic language toward anyone.
    labels: [yes, no]
    population: {languages: [ru]}
    scorers:
      - {type: model, model: hostility-ru, threshold: 0.3}
"""

CHILD = r"""
import json, sys, time, zlib
from chatlens import Project
from chatlens.store import stages
stage, root, arg, workers, engine = sys.argv[1:6]
kw = {"engine": engine, "master": "local[2]"} if engine == "spark" else {}
out = {}
def timed(name):  # time spent in a store write function, apart from the rest of the stage
    func = getattr(stages, name)
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return func(*a, **k)
        finally:
            out["write_s"] = round(out.get("write_s", 0) + time.perf_counter() - t0, 1)
    setattr(stages, name, wrapper)
timed("write_enrichment")
timed("write_codes")
t = time.perf_counter()
with Project.open(root) as p:
    if stage == "ingest":
        (rep,) = p.ingest([arg], format="jsonl").sources
        assert rep.status == "complete", rep.error
        out["messages"] = rep.stored
    elif stage == "enrich":
        enriched = [t]
        def progress(name, done, total):  # the index is built after the last enrich batch
            if name == "enrich":
                enriched[0] = time.perf_counter()
        r = p.enrich(workers=int(workers), progress=progress, **kw)
        out["messages"] = r.enriched
        out["index_s"] = round(time.perf_counter() - enriched[0], 1)
    elif stage == "code":
        r = p.code(arg, workers=int(workers), **kw)
        out["messages"], out["rows"] = r.messages, r.rows
    elif stage == "estimate":
        from chatlens.store.labels import NewLabel
        rows = 0
        for ref, name, measure in json.loads(arg):
            p.codebook_ref = ref  # the codebook sample and estimate use
            s = p.sample(measure, "audit", 400, seed=1)
            uids = [i["uid"] for i in p.labels().sample_items(s["sample_id"])]
            coded = {r["uid"]: r["value"] for r in p.store.query_arrow(
                "SELECT uid, value FROM codes WHERE codebook = ? AND measure = ? "
                "AND uid IN (SELECT unnest(?))", [name, measure, uids]).to_pylist()}
            def simulated(u):  # the coded value, flipped for 1 in 10 messages
                v = coded.get(u) or "no"
                return ("no" if v == "yes" else "yes") if zlib.crc32(u.encode()) % 10 == 0 else v
            p.labels().add_labels(
                NewLabel(u, name, measure, simulated(u), "simulated", sample_id=s["sample_id"],
                         sample_kind="audit") for u in uids)
            rows += len(p.estimate(measure, by="month"))
        out["estimates"] = rows
out["wall_s"] = time.perf_counter() - t
print(json.dumps(out))
"""




def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker that just ended
            total += p.memory_info().rss
    return total


def stage(name: str, root: Path, arg: str = "", workers: int = 1,
          engine: str = "local") -> dict[str, Any]:
    """Run one stage in a child process; its result, wall time and peak tree RSS."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, name, str(root), arg, str(workers),
                             engine], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    ps = psutil.Process(proc.pid)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(ps))
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"stage {name} failed:\n{err[-4000:]}")
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res["peak_rss_gib"] = round(peak[0] / GIB, 2)
    n = res.get("messages")
    if n:
        res["msgs_per_s"] = round(n / res["wall_s"])
    res["wall_s"] = round(res["wall_s"], 1)
    return res


def pipeline(work: Path, n: int, workers: int) -> dict[str, Any]:
    src = work / f"news_{n}.jsonl"
    t = time.perf_counter()
    written = replicate(src, n, spread=True)
    built_s = time.perf_counter() - t
    proj = work / f"scale_{n}"
    shutil.rmtree(proj, ignore_errors=True)
    from chatlens import Project

    Project.init(proj).close()
    model_cb = work / "scale-model.yaml"
    model_cb.write_text(MODEL_CODEBOOK, encoding="utf-8")
    plan = [("ingest", "ingest", str(src), 1),
            ("enrich+index", "enrich", "", workers),
            ("code builtin", "code", "builtin:exodus-2022", workers),
            ("code model", "code", str(model_cb), workers),
            ("estimate by month", "estimate", json.dumps(
                [["builtin:exodus-2022", "exodus-2022", "border_crossing"],
                 [str(model_cb), "scale-model", "hostility"]]), 1)]
    stages: dict[str, dict[str, Any]] = {}
    for label, name, arg, w in plan:
        stages[label] = stage(name, proj, arg, w)
        print(json.dumps({"messages": written, label: stages[label]}), flush=True)  # as it goes
    total = sum(s["wall_s"] for s in stages.values())
    shutil.rmtree(proj, ignore_errors=True)
    src.unlink()
    return {"messages": written, "input_built_s": round(built_s, 1), "stages": stages,
            "total_s": round(total, 1), "peak_rss_gib": max(s["peak_rss_gib"]
                                                            for s in stages.values())}


def _digest(root: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(root / "chatlens.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*), sum(hash({cols})) FROM {t}").fetchone()
                for t, cols in (
                    ("enrichment", "uid, fingerprint, lang, lang_score, norm, lemmas, urls, "
                                   "mentions, hashtags, emoji, places"),
                    ("codes", "uid, codebook, measure, in_population, value, score, scorer, "
                              "matched"))}
    finally:
        con.close()


def spark_vs_local(work: Path, n: int, workers: int) -> dict[str, Any]:
    from chatlens import Project

    src = work / f"news_{n}.jsonl"
    replicate(src, n, spread=True)
    base = work / "spark_base"
    shutil.rmtree(base, ignore_errors=True)
    Project.init(base).close()
    stage("ingest", base, str(src))
    out: dict[str, Any] = {"messages": n}
    digests = {}
    for engine in ("local", "spark"):
        root = work / f"spark_{engine}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        res = stage("code", root, "builtin:exodus-2022", workers, engine)  # enriches first
        out[engine] = {"enrich+code_s": res["wall_s"], "peak_rss_gib": res["peak_rss_gib"]}
        digests[engine] = _digest(root)
        shutil.rmtree(root, ignore_errors=True)
    out["spark_over_local_wall"] = round(out["spark"]["enrich+code_s"]
                                         / out["local"]["enrich+code_s"], 2)
    out["identical_enrichment_and_codes"] = digests["spark"] == digests["local"]
    out["rows"] = {t: v[0] for t, v in digests["local"].items()}
    shutil.rmtree(base, ignore_errors=True)
    src.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000000,3000000,10000000")
    ap.add_argument("--spark-messages", type=int, default=1_000_000,
                    help="0 skips the Spark comparison")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    require_corpus()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]  # --sizes '': the Spark part only
    print(f"input: the 22,099 real posts of 24 news channels replicated to each size; copy k has "
          f"ids prefixed k-, channels renamed '<channel> #<k//10>', dates shifted back "
          f"(k % 10) x 728 days. cpu_count={os.cpu_count()}, workers={args.workers}", flush=True)
    runs = []
    for n in sizes:
        r = pipeline(args.workdir, n, args.workers)
        runs.append(r)
        print(json.dumps(r, indent=2), flush=True)
    report: dict[str, Any] = {"sizes": [r["messages"] for r in runs]}
    if runs:
        big = runs[-1]
        report["targets"] = {f"{big['messages']:,} under 15 min": big["total_s"] < 900,
                             "peak RSS under 4 GiB": big["peak_rss_gib"] < 4}
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        scale = last["messages"] / first["messages"]
        report["growth"] = {
            "time_x": round(last["total_s"] / first["total_s"], 2),
            "memory_x": round(last["peak_rss_gib"] / max(first["peak_rss_gib"], 0.01), 2),
            "messages_x": round(scale, 2),
            "linear_or_better": last["total_s"] / first["total_s"] <= 1.1 * scale,
        }
    if args.spark_messages:
        report["spark_local2_vs_local"] = spark_vs_local(args.workdir, args.spark_messages,
                                                         args.workers)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"bench wall time {time.perf_counter() - t:.0f}s")
