"""Telegram JSON ingest throughput and memory against a plain ``orjson.loads`` baseline.

Builds an export of >= 1 million messages by replicating the real public channel export in
``../shared/data/telegram/json_ru_channel/result.json`` with shifted ids and dates (the output says
so), then, each in a fresh process, measures:

* baseline: ``orjson.loads`` of the whole file (read + parse), messages/s;
* chatlens: ``Project.ingest`` of the same file into a new project, messages/s, peak RSS.

Both also report CPU seconds (all threads): the ratio of those is the steadier figure on a
machine other work shares, where wall time swings with the load. Ingest's CPU is split into the
main thread's (read, parse, map, build the Arrow batches) and the other threads' (the writer
thread and DuckDB's: storing), to tell which side bounds it.

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
print(n, dt, r.ru_utime + r.ru_stime, r.ru_maxrss * 1024, time.thread_time())
"""

CHILD_INGEST = """
import resource, sys, time
from chatlens import Project
r0 = resource.getrusage(resource.RUSAGE_SELF)
m0 = time.thread_time()
t = time.perf_counter()
with Project.init(sys.argv[2]) as p:
    (src,) = p.ingest([sys.argv[1]]).sources
dt = time.perf_counter() - t
main = time.thread_time() - m0
assert src.status == "complete", src.error
assert src.read == src.stored + src.duplicate + src.quarantined
r = resource.getrusage(resource.RUSAGE_SELF)
cpu = r.ru_utime + r.ru_stime - r0.ru_utime - r0.ru_stime
print(src.stored, dt, cpu, r.ru_maxrss * 1024, main)
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


def child(code: str, *args: str) -> tuple[int, float, float, int, float]:
    """Run ``code`` in a fresh process: (messages, wall s, CPU s of all its threads, peak RSS,
    CPU s of its main thread)."""
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    n, dt, cpu, rss, main = res.stdout.strip().splitlines()[-1].split()
    return int(n), float(dt), float(cpu), int(rss), float(main)


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
    n_base, t_base, cpu_base, rss_base, _ = child(CHILD_BASELINE, str(export))
    project = args.workdir / "bench_project"
    shutil.rmtree(project, ignore_errors=True)
    n_ing, t_ing, cpu_ing, rss_ing, main_ing = child(CHILD_INGEST, str(export), str(project))
    assert n_base == n_ing == expected, (n_base, n_ing, expected)
    rate_base, rate_ing = n_base / t_base, n_ing / t_ing
    db_size = sum(f.stat().st_size for f in project.iterdir())
    result = {
        "messages": expected, "export_bytes": size, "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "orjson_loads": {"seconds": round(t_base, 2), "cpu_s": round(cpu_base, 2),
                         "msgs_per_s": round(rate_base), "peak_rss_mb": round(rss_base / 2**20)},
        "chatlens_ingest": {"seconds": round(t_ing, 2), "cpu_s": round(cpu_ing, 2),
                            "main_thread_cpu_s": round(main_ing, 2),
                            "other_threads_cpu_s": round(cpu_ing - main_ing, 2),
                            "msgs_per_s": round(rate_ing),
                            "peak_rss_mb": round(rss_ing / 2**20),
                            "project_mb": round(db_size / 2**20)},
        "ratio_vs_orjson": round(rate_ing / rate_base, 3),
        # on a shared machine wall time swings with other load; CPU seconds much less
        "cpu_ratio_vs_orjson": round(cpu_base / cpu_ing, 3),
        "targets": {"ratio>=0.5": rate_ing / rate_base >= 0.5,
                    "rss<1GiB": rss_ing < 2**30},
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        export.unlink()
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
