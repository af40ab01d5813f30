"""Enrich + code throughput with builtin:exodus-2022, on one worker and on two.

Replicates the real news-channel corpus in ``../shared/data/corpora/ru_news_channels_2023_2024``
(24 channels, 22,099 posts) with shifted ids and dates to the requested size (the output says
so), ingests it once, then for each worker count enriches and codes a fresh copy of that project.

Usage: python bench/code.py [--messages 1000000] [--workdir bench/out] [--baseline-tree DIR]
Targets (issues 3, 16): >= 20k messages/s per worker; >= 1.7x with two workers.

``Project.code`` enriches the new messages and codes them in one pass (the workers do both), so
the time is one figure. Prints it with the CPU seconds of the whole run (the process, its
workers and, where there is one, the workers' fork server): on a shared machine wall-clock
figures follow the load, CPU seconds much less. ``--baseline-tree`` runs the same projects with
another checkout of chatlens (e.g. ``git worktree add /tmp/base main``) right after this one, so the
ratio between the two is measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from news_corpus import replicate, require_corpus  # noqa: E402

CHILD = """
import json, sys, time
from chatlens import Project
with Project.open(sys.argv[1]) as p:
    t = time.perf_counter()
    rep = p.code("builtin:exodus-2022", workers=int(sys.argv[2]))  # enriches in the same pass
    total = time.perf_counter() - t
import multiprocessing.forkserver as fs, resource
if getattr(fs._forkserver, "_forkserver_pid", None):
    fs._forkserver._stop()  # reaped, so its workers' CPU time counts below
cpu = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                           resource.getrusage(resource.RUSAGE_CHILDREN)))
print(json.dumps({"messages": rep.enriched, "coded": rep.messages, "total_s": total,
                  "cpu_s": round(cpu, 2)}))
"""


def _run(base: Path, workdir: Path, tree: Path, workers: int) -> dict[str, Any]:
    proj = workdir / f"code_w{workers}"
    shutil.rmtree(proj, ignore_errors=True)
    shutil.copytree(base, proj)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", CHILD, str(proj), str(workers)],
                         capture_output=True, text=True, env=env, cwd=tree)
    shutil.rmtree(proj, ignore_errors=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    r: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    r["msgs_per_s"] = round(r["messages"] / r["total_s"])
    r["msgs_per_cpu_s"] = round(r["messages"] / r["cpu_s"])
    r["load"] = round(os.getloadavg()[0], 1)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--baseline-tree", type=Path, default=None,
                    help="another chatlens checkout to time on the same projects")
    args = ap.parse_args()
    require_corpus()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / "news_replicated.jsonl"
    n = replicate(src, args.messages)
    print(f"built {src}: {n:,} posts replicated from the 22,099 real news-channel posts "
          f"(ids shifted per copy)")
    base = args.workdir / "code_base"
    shutil.rmtree(base, ignore_errors=True)
    from chatlens import Project

    with Project.init(base) as p:
        (rep,) = p.ingest([src], format="jsonl").sources
        assert rep.status == "complete", rep.error
    trees = {"this": ROOT, **({"baseline": args.baseline_tree} if args.baseline_tree else {})}
    report: dict[str, Any] = {"messages": n, "cpu_count": os.cpu_count()}
    for name, tree in trees.items():
        results = {workers: _run(base, args.workdir, tree, workers) for workers in (1, 2)}
        speedup = results[2]["msgs_per_s"] / results[1]["msgs_per_s"]
        report[name] = {
            "tree": str(tree), "one_worker": results[1], "two_workers": results[2],
            "speedup_2_vs_1": round(speedup, 2),
            "targets": {">=20k msg/s per worker": results[1]["msgs_per_s"] >= 20_000,
                        ">=1.7x with two": speedup >= 1.7}}
    if args.baseline_tree:
        this, other = report["this"], report["baseline"]
        report["this_vs_baseline"] = {
            k: round(this[k]["msgs_per_s"] / other[k]["msgs_per_s"], 2)
            for k in ("one_worker", "two_workers")}
        report["this_vs_baseline_cpu"] = {
            k: round(other[k]["cpu_s"] / this[k]["cpu_s"], 2)
            for k in ("one_worker", "two_workers")}
    print(json.dumps(report, indent=2))
    shutil.rmtree(base, ignore_errors=True)
    src.unlink()


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"bench wall time {time.perf_counter() - t:.0f}s")
