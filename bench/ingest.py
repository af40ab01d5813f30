"""Telegram JSON ingest throughput and memory against a plain ``orjson.loads`` baseline.

Builds an export of >= 1 million messages by replicating the real public channel export in
``../shared/data/telegram/json_ru_channel/result.json`` with shifted ids and dates (the output says
so), then, each in a fresh process, measures:

* baseline: ``orjson.loads`` of the whole file (read + parse), messages/s;
* chatlens: ``Project.ingest`` of the same file into a new project, messages/s, peak RSS, by
  default (a worker process) and in one process (``CHATLENS_INGEST_WORKER=off``).

Both also report CPU seconds (all threads, and ingest's worker process): the ratio of those is
the steadier figure on a machine other work shares, where wall time swings with the load.
Ingest's CPU is split into the main thread's (read the file, find the runs of whole messages,
hand them to the worker, build the originals), the worker process's (parse, map, build the
Arrow batches; ``CHATLENS_INGEST_WORKER``, on by default for an export this large on two or more
cores) and the other threads' (the writer thread and DuckDB's: storing), to tell which side
bounds it. Peak RSS is the main process's plus the worker's (the two together peak at most there).

Usage: python bench/ingest.py [--messages 1000000] [--workdir bench/out] [--keep]
Targets (issues 2, 16): ingest rate >= 0.5x the orjson rate; peak RSS < 1 GiB for a >= 1 GB export.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "telegram" / "json_ru_channel" / "result.json"

CHILD_BASELINE = """
import orjson, resource, sys, time
t = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    doc = orjson.loads(fh.read())
n = len(doc["messages"])
dt = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_SELF)
print(n, dt, r.ru_utime + r.ru_stime, r.ru_maxrss * 1024, time.thread_time(), 0.0, 0)
"""

CHILD_INGEST = """
import resource, sys, time
from chatlens import Project
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
r0, c0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
m0 = time.thread_time()
t = time.perf_counter()
with Project.init(sys.argv[2]) as p:
    (src,) = p.ingest([sys.argv[1]]).sources
dt = time.perf_counter() - t
main = time.thread_time() - m0
assert src.status == "complete", src.error
assert src.read == src.stored + src.duplicate + src.quarantined
own, worker = cpu(resource.RUSAGE_SELF) - r0, cpu(resource.RUSAGE_CHILDREN) - c0
rss, worker_rss = (resource.getrusage(w).ru_maxrss * 1024 for w in (resource.RUSAGE_SELF,
                                                                    resource.RUSAGE_CHILDREN))
print(src.stored, dt, own + worker, rss + worker_rss, main, worker, worker_rss)
"""


def build(target: Path, n_messages: int) -> int:
    """Write an export of about ``n_messages`` by replicating the real one. Returns the count."""
    text = REAL.read_text(encoding="utf-8")
    start = text.index('"messages": [') + len('"messages": [')
    end = text.rindex("]")
    header, body, footer = text[:start], text[start:end].strip("\n ").rstrip(","), text[end:]
    body = "  " + body  # strip() took the first message's indentation
    per_copy = len(re.findall(r'^  \{$', body, flags=re.M))
    copies = max(1, -(-n_messages // per_copy))
    id_re = re.compile(r'^(   "(?:id|reply_to_message_id)": )(-?\d+)', re.M)
    ts_re = re.compile(r'^(   "date_unixtime": ")(\d+)"', re.M)
    with target.open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for k in range(copies):
            shift_id, shift_ts = k * 10_000_000, k * 86_400
            chunk = id_re.sub(lambda m, d=shift_id: f"{m.group(1)}{int(m.group(2)) + d}", body)
            chunk = ts_re.sub(lambda m, d=shift_ts: f'{m.group(1)}{int(m.group(2)) + d}"', chunk)
            out.write(chunk.strip("\n"))
            out.write(",\n" if k < copies - 1 else "\n")
        out.write(" " + footer.lstrip())
    return per_copy * copies


@dataclass
class Run:
    """What a child process reports."""

    messages: int
    seconds: float
    cpu_s: float  # all its threads and its worker process
    rss: int  # its peak RSS plus its worker process's (together they peak at most there)
    main_cpu_s: float  # its main thread
    worker_cpu_s: float
    worker_rss: int


def child(code: str, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run ``code`` in a fresh process and read its report."""
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    n, dt, cpu, rss, main, worker, worker_rss = res.stdout.strip().splitlines()[-1].split()
    return Run(int(n), float(dt), float(cpu), int(rss), float(main), float(worker),
               int(worker_rss))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--keep", action="store_true", help="keep the generated export and project")
    args = ap.parse_args()
    if not REAL.exists():
        raise SystemExit(f"real export not found at {REAL}; this benchmark needs ../shared/data")
    args.workdir.mkdir(parents=True, exist_ok=True)
    export = args.workdir / "replicated_result.json"
    t = time.perf_counter()
    expected = build(export, args.messages)
    size = export.stat().st_size
    print(f"built {export} from {REAL.name} replicated with shifted ids and dates: "
          f"{expected:,} messages, {size / 1e9:.2f} GB in {time.perf_counter() - t:.1f}s")
    base = child(CHILD_BASELINE, str(export))
    rate_base = base.messages / base.seconds
    project = args.workdir / "bench_project"
    result: dict[str, object] = {
        "messages": expected, "export_bytes": size, "cpu_count": os.cpu_count(),
        "orjson_loads": {"seconds": round(base.seconds, 2), "cpu_s": round(base.cpu_s, 2),
                         "msgs_per_s": round(rate_base), "peak_rss_mb": round(base.rss / 2**20)},
    }
    # the default (a worker process on two or more cores), then one process, same run
    for label, mode in (("chatlens_ingest", "auto"), ("chatlens_ingest_one_process", "off")):
        shutil.rmtree(project, ignore_errors=True)
        ing = child(CHILD_INGEST, str(export), str(project), env={"CHATLENS_INGEST_WORKER": mode})
        assert base.messages == ing.messages == expected, (base.messages, ing.messages, expected)
        rate_ing = ing.messages / ing.seconds
        result[label] = {
            "seconds": round(ing.seconds, 2), "cpu_s": round(ing.cpu_s, 2),
            "main_thread_cpu_s": round(ing.main_cpu_s, 2),
            "other_threads_cpu_s": round(ing.cpu_s - ing.main_cpu_s - ing.worker_cpu_s, 2),
            "worker_process_cpu_s": round(ing.worker_cpu_s, 2),
            "msgs_per_s": round(rate_ing), "peak_rss_mb": round(ing.rss / 2**20),
            "worker_peak_rss_mb": round(ing.worker_rss / 2**20),
            "project_mb": round(sum(f.stat().st_size for f in project.iterdir()) / 2**20),
            "ratio_vs_orjson": round(rate_ing / rate_base, 3),
            # on a shared machine wall time swings with other load; CPU seconds much less
            "cpu_ratio_vs_orjson": round(base.cpu_s / ing.cpu_s, 3),
        }
        if label == "chatlens_ingest":
            result["targets"] = {"ratio>=0.5": rate_ing / rate_base >= 0.5,
                                 "rss<1GiB": ing.rss < 2**30}
    result["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    if not args.keep:
        export.unlink()
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
