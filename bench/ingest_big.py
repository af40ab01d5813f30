"""Ingest of a multi-gigabyte Telegram JSON export with bounded memory (issue 14).

For each size in ``--gb`` the real channel export (``../shared/data/telegram/json_ru_channel/
result.json``) is replicated with shifted ids and dates into one export of about that size,
streamed to disk (bench/ingest.py's generator), and ingested by ``Project.ingest`` into a new
project in a fresh process, which reports its peak RSS. Baseline, measured in the same run:
``orjson.loads`` of the smallest export (read + parse the whole file in memory), messages/s,
compared both by wall time and by CPU seconds (the steadier figure on a shared machine).

Bounded memory means peak RSS does not grow with the export: the figure printed is the RSS at the
largest size over the RSS at the smallest (1.0 = flat), with the target RSS < 1 GiB at every
size (ingest's main process and its worker process together). Each export is deleted after its
run unless ``--keep``.

Usage: python bench/ingest_big.py [--gb 0.25,1,5] [--workdir bench/out]
Needs about 3x the largest size free on the workdir's disk (export + project + DuckDB's spill).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from ingest import CHILD_BASELINE, CHILD_INGEST, REAL, build, child  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--gb", default="0.25,1,5", help="export sizes in GB, comma-separated")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not REAL.exists():
        raise SystemExit(f"real export not found at {REAL}; this benchmark needs ../shared/data")
    sizes = sorted(float(x) for x in args.gb.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.workdir).free
    if free < 3 * sizes[-1] * 1e9:
        raise SystemExit(f"{free / 1e9:.1f} GB free on {args.workdir}; a {sizes[-1]} GB run needs "
                         f"about {3 * sizes[-1]:.0f} GB (export, project and DuckDB's spill)")
    real_n = len(json.loads(REAL.read_bytes())["messages"])
    per_msg = REAL.stat().st_size / real_n
    rows = []
    base_rate = base_cpu_rate = 0.0
    for gb in sizes:
        export = args.workdir / f"big_{gb}gb_result.json"
        project = args.workdir / f"big_{gb}gb_project"
        shutil.rmtree(project, ignore_errors=True)
        t = time.perf_counter()
        expected = build(export, int(gb * 1e9 / per_msg))
        size = export.stat().st_size
        built = time.perf_counter() - t
        if not base_rate:
            base = child(CHILD_BASELINE, str(export))
            n_base, rss_base = base.messages, base.rss
            base_rate, base_cpu_rate = n_base / base.seconds, n_base / base.cpu_s
            print(f"baseline orjson.loads of the {size / 1e9:.2f} GB export: {base_rate:,.0f} "
                  f"messages/s, peak RSS {rss_base / 2**20:,.0f} MB", flush=True)
        ing = child(CHILD_INGEST, str(export), str(project))  # the default: with a worker
        n, took, cpu, rss = ing.messages, ing.seconds, ing.cpu_s, ing.rss
        assert n == expected, (n, expected)
        proj_bytes = sum(f.stat().st_size for f in project.rglob("*") if f.is_file())
        rows.append({"gb": round(size / 1e9, 2), "messages": n, "build_s": round(built, 1),
                     "ingest_s": round(took, 1), "msgs_per_s": round(n / took),
                     "mb_per_s": round(size / took / 1e6, 1),
                     "ratio_vs_orjson": round(n / took / base_rate, 3),
                     "cpu_s": round(cpu, 1),
                     "cpu_ratio_vs_orjson": round(n / cpu / base_cpu_rate, 3),
                     "peak_rss_mb": round(rss / 2**20),
                     "worker_peak_rss_mb": round(ing.worker_rss / 2**20),
                     "project_mb": round(proj_bytes / 2**20)})
        print(json.dumps(rows[-1]), flush=True)
        if not args.keep:
            export.unlink()
            shutil.rmtree(project, ignore_errors=True)
    flat = rows[-1]["peak_rss_mb"] / max(rows[0]["peak_rss_mb"], 1)
    print(json.dumps({"rss_largest_over_smallest": round(flat, 2),
                      "largest_gb": rows[-1]["gb"],
                      "targets": {"rss<1GiB at every size": all(r["peak_rss_mb"] < 1024
                                                                for r in rows),
                                  "rss flat (<= 1.15x from smallest to largest)": flat <= 1.15}},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
