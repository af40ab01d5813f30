"""Fuzzing of every importer, the codebook and claims loaders and the label readers.

Seeds are the project's own fixtures plus, when present, the real files in ../shared/data (the
first ``--head`` bytes of each, 16 KB by default, so one input costs about a millisecond and a
million fit in a bench run); each input is a seed with 1-4 random edits (bit flips, hostile tokens
such as 3,000 ``[`` or ``"a,`` runs, deletions, duplications, splices from other seeds). Each input
goes through ``tests.fuzzing.check``, the parse-level entry point of its reader (the importer's
``parse`` over a discovered source, the loader's ``parse_*``, ``read_labels``): the only exceptions
allowed are chatlens errors with a message, records must have storable field types, and an input
that takes longer than ``--slow`` seconds is reported as a hang. Every ``--full-every`` inputs of an
importer target, the same input also goes through a full ``Project.ingest`` into a fresh project,
whose counts must reconcile (read = stored + duplicate + quarantined, and the project holds what
ingest says it stored).

Linear time: after the random inputs, each target gets a growth check. Every hostile token is
repeated k and 8k times inside a seed; the time of the larger input over the smaller one should be
about 8 (linear), and is reported as the worst ratio per target (a quadratic reader gives ~64).

Modes:
  python bench/fuzz.py [--inputs 1000000] [--workers 2] [--targets csv,zip,...] [--seed 1]
  python bench/fuzz.py --atheris [--seconds 60] [--targets ...]    (coverage-guided, libFuzzer)

Prints, per target: inputs, inputs/s, ok, refused (chatlens errors), distinct refusal messages,
crashes, slow, the slowest input with its size, full-ingest checks and failures, the growth ratio;
every distinct crash is saved with the input that caused it under bench/out/fuzz/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "chatlens" / "codebook" / "builtin"
sys.path.insert(0, str(ROOT))

from tests.fuzzing import IMPORTERS, RUNNERS, TOKENS, check, full_ingest, mutate  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FIX = ROOT / "tests" / "fixtures"
HEAD = 16 << 10  # changed by --head


def _heads(paths: list[Path], head: int | None = None) -> list[bytes]:
    head = head or HEAD
    out = []
    for p in paths:
        if p.is_file():
            with p.open("rb") as fh:
                out.append(fh.read(head))
    return out


def seeds() -> dict[str, list[bytes]]:
    tg = DATA / "telegram"
    s = {
        "telegram-json": _heads([*sorted((FIX / "telegram_json").glob("*.json")),
                                 tg / "json_ru_channel" / "result.json"]),
        "telegram-html": _heads([*sorted((FIX / "telegram_html").glob("*.html")),
                                 *sorted(tg.glob("html_*/messages*.html"))[:3]]),
        "whatsapp": _heads([*sorted((FIX / "whatsapp").glob("*.txt")),
                            *sorted((DATA / "whatsapp").glob("*.txt"))]),
        "csv": _heads([FIX / "generic" / "semicolon_bom.csv",
                       *sorted((DATA / "labeled").glob("*/*.csv"))[:4]]),
        "jsonl": _heads([FIX / "generic" / "messages.jsonl", FIX / "generic" / "channels.json",
                         *sorted((DATA / "corpora").glob("*/*.json"))[:2]]),
        "parquet": _heads(sorted((DATA / "labeled").glob("*/*.parquet"))[:1], 1 << 20),
        "zip": _heads(sorted((FIX / "whatsapp").glob("*.zip")), 1 << 20) + _heads(
            sorted((FIX / "whatsapp").glob("*.txt"))[:3]),
        "codebook": _heads(sorted(BUILTIN.glob("*.yaml"))),
        "claims": _heads(sorted(BUILTIN.glob("*.claims.yaml"))),
    }
    s["parquet"] = [*s["parquet"], _parquet_seed()]
    s["csv"] = [*s["csv"], ("text,date,author\nПривет,2022-09-21T10:00:00,a\n"
                            '"x, ""y""",1663754400,b\n').encode()]
    s["detect"] = [x for k in ("telegram-json", "whatsapp", "csv", "jsonl") for x in s[k][:2]]
    s.update(_label_seeds())
    return {k: v for k, v in s.items() if v}


def _parquet_seed() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"text": ["a", "б", None], "ts": [1663754400, None, 5],
                             "author": ["x", "y", "z"]}), buf)
    return buf.getvalue()


def _label_seeds() -> dict[str, list[bytes]]:
    from datetime import UTC, datetime

    from chatlens.annotate import write_labels
    from chatlens.annotate.records import LabelRecord

    recs = [LabelRecord(f"u{i}", "m", "yes" if i % 2 else "no", "ann",
                        datetime(2024, 1, 1, tzinfo=UTC), span=(0, i) if i % 3 else None,
                        comment="c" if i % 4 == 0 else None) for i in range(6)]
    out: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, name in (("csv", "l.csv"), ("jsonl", "l.jsonl"), ("labelstudio", "l.json")):
            p = Path(tmp) / name
            write_labels(recs, p)
            out[f"labels-{fmt}"] = [p.read_bytes()]
    return out


def _work(job: tuple[str, int, int, int, float, int, str]) -> dict:
    """Fuzz one target with ``n`` inputs (one worker's share); returns its figures."""
    target, n, seed, full_every, slow, head, out = job
    global HEAD
    HEAD = head
    pool = seeds()
    every = [x for t in pool for x in pool[t]]
    rng = random.Random(f"{seed}-{target}")
    c: Counter[str] = Counter()
    refusals: set[str] = set()
    crashes: dict[str, int] = {}
    full_bad: dict[str, int] = {}
    slowest = (0.0, 0)
    outdir = Path(out)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatlens-fuzz-", dir=_scratch()) as tmp:
        for i in range(n):
            data = rng.choice(pool[target])
            if i:  # input 0 of each share is a seed as is
                data = mutate(data, rng, every)
            res = check(target, data, Path(tmp))
            c[res.kind] += 1
            if res.seconds > slowest[0]:
                slowest = (res.seconds, len(data))
            if res.seconds > slow:
                c["slow"] += 1
                (outdir / f"slow-{target}-{seed}-{i}.bin").write_bytes(data)
            if res.kind == "refused":
                refusals.add(_shape(res.detail))
            elif res.kind == "crash":
                key = res.detail[:100]
                if key not in crashes:
                    crashes[key] = i
                    (outdir / f"crash-{target}-{seed}-{i}.bin").write_bytes(data)
            if full_every and target in IMPORTERS and i % full_every == 0:
                c["full"] += 1
                bad = full_ingest(target, data, Path(tmp))
                if bad:
                    c["full_bad"] += 1
                    if bad[:100] not in full_bad:
                        full_bad[bad[:100]] = i
                        (outdir / f"full-{target}-{seed}-{i}.bin").write_bytes(data)
    result = {"target": target, "counts": dict(c), "refusals": sorted(refusals),
              "crashes": crashes, "full_bad": full_bad, "slowest": slowest,
              "seconds": time.perf_counter() - t0}
    # each finished share is kept, so a long run stopped part-way still has its figures
    (outdir / f"share-{target}-{seed}.json").write_text(json.dumps(result))
    return result


def _scratch() -> str | None:
    """A RAM-backed folder for the one-input files when there is one."""
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def _shape(message: str) -> str:
    """A refusal message without its numbers and quoted parts: one entry per kind of error."""
    import re

    message = message.split(": ", 1)[-1] if message.startswith("/") else message
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    return re.sub(r"\d+", "N", message)[:120]


def growth(target: str, k: int = 2_000) -> tuple[float, str]:
    """The worst time ratio of an input with a token repeated 8k times over one with it k times."""
    pool = seeds()
    base = min(pool[target], key=len)
    worst, what = 0.0, ""
    with tempfile.TemporaryDirectory(prefix="chatlens-grow-", dir=_scratch()) as tmp:
        for tok in [t for t in TOKENS if len(t) < 20] + [b"a", b" ", b"\n\n"]:
            mid = len(base) // 2
            times = []
            for reps in (k, 8 * k):
                data = base[:mid] + tok * reps + base[mid:]
                best = min(check(target, data, Path(tmp)).seconds for _ in range(3))
                times.append(best)
            ratio = times[1] / max(times[0], 1e-4)
            if times[1] > 0.01 and ratio > worst:  # below 10 ms the ratio is noise
                worst, what = ratio, f"{tok[:12]!r} x{8 * k} ({times[1]:.3f} s)"
    return worst, what


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=20_000, help="total inputs (all targets)")
    ap.add_argument("--targets", default=",".join(RUNNERS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--head", type=int, default=HEAD, help="bytes of each real file used as seed")
    ap.add_argument("--full-every", type=int, default=500,
                    help="every N inputs of an importer also run a full ingest (0: never)")
    ap.add_argument("--slow", type=float, default=2.0, help="seconds that count as a hang")
    ap.add_argument("--no-growth", action="store_true", help="skip the linear-time check")
    ap.add_argument("--atheris", action="store_true", help="coverage-guided mode (atheris)")
    ap.add_argument("--seconds", type=int, default=60, help="atheris: seconds per target")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fuzz")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pool = seeds()
    targets = [t for t in args.targets.split(",") if t in pool]
    if not DATA.is_dir():
        print("note: ../shared/data is absent; seeding from the project's fixtures only")
    if args.atheris:
        return run_atheris(targets, args)
    per = max(1, -(-args.inputs // len(targets)))  # rounded up: at least --inputs in all
    shares = max(1, args.workers)
    jobs = [(t, per // shares + (1 if w < per % shares else 0), args.seed * 1000 + w,
             args.full_every, args.slow, args.head, str(args.out))
            for t in targets for w in range(shares)]
    t_start = time.perf_counter()
    if args.workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(args.workers) as mp:
            results = mp.map(_work, jobs, chunksize=1)
    else:
        results = [_work(j) for j in jobs]
    took = time.perf_counter() - t_start
    merged: dict[str, dict] = {}
    for r in results:
        m = merged.setdefault(r["target"], {"counts": Counter(), "refusals": set(),
                                            "crashes": {}, "full_bad": {}, "slowest": (0.0, 0),
                                            "seconds": 0.0})
        m["counts"].update(r["counts"])
        m["refusals"].update(r["refusals"])
        for k, v in r["crashes"].items():
            m["crashes"].setdefault(k, v)
        for k, v in r["full_bad"].items():
            m["full_bad"].setdefault(k, v)
        m["slowest"] = max(m["slowest"], tuple(r["slowest"]))
        m["seconds"] += r["seconds"]
    grow = {} if args.no_growth else {t: growth(t) for t in targets if t != "parquet"}
    print(f"{'target':19} {'inputs':>8} {'in/s':>6} {'ok':>8} {'refused':>8} {'kinds':>5} "
          f"{'crash':>5} {'slow':>4} {'max s':>6} {'at bytes':>8} {'full':>5} {'bad':>3} "
          f"{'8x time':>7}")
    for t in targets:
        m = merged[t]
        c = m["counts"]
        n = c["ok"] + c["refused"] + c["crash"]
        g = grow.get(t, (0.0, ""))[0]
        print(f"{t:19} {n:8} {n / max(m['seconds'], 1e-9):6.0f} {c['ok']:8} {c['refused']:8} "
              f"{len(m['refusals']):5} {c['crash']:5} {c['slow']:4} {m['slowest'][0]:6.2f} "
              f"{m['slowest'][1]:8} {c['full']:5} {c['full_bad']:3} "
              f"{(f'{g:.1f}x' if g else '-'):>7}")
    total = sum(sum(m["counts"][k] for k in ("ok", "refused", "crash")) for m in merged.values())
    crashes = [(t, d, i) for t, m in merged.items() for d, i in m["crashes"].items()]
    bad = [(t, d, i) for t, m in merged.items() for d, i in m["full_bad"].items()]
    print(f"{total} inputs in {took:.0f} s ({total / took:.0f}/s with {args.workers} worker(s)); "
          f"{len(crashes)} distinct crashes; {len(bad)} distinct full-ingest failures")
    print("linear time: '8x time' is the worst time ratio of a token repeated 16,000 times over "
          "2,000 times (linear ~8, quadratic ~64)")
    for t, (g, what) in sorted(grow.items()):
        if g > 20:
            print(f"  SUPERLINEAR {t}: {g:.1f}x for {what}")
    for t, d, i in sorted(crashes):
        print(f"  CRASH {t} (input {i}): {d}")
    for t, d, i in sorted(bad):
        print(f"  FULL-INGEST {t} (input {i}): {d}")
    return 1 if crashes or bad or any(g > 20 for g, _ in grow.values()) else 0


def run_atheris(targets: list[str], args: argparse.Namespace) -> int:
    """Coverage-guided fuzzing: one libFuzzer process per target, seeded from the same files."""
    import subprocess

    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install atheris); coverage-guided mode unavailable")
        return 2
    failed = 0
    print(f"{'target':19} {'runs':>9} {'runs/s':>7} {'cov':>6} {'ft':>6} {'result':>8}")
    for t in targets:
        corpus = args.out / "corpus" / t
        corpus.mkdir(parents=True, exist_ok=True)
        for j, seed in enumerate(seeds()[t]):
            (corpus / f"seed-{j}").write_bytes(seed)
        cmd = [sys.executable, "-c", ATHERIS_CHILD, str(ROOT), t,
               f"-max_total_time={args.seconds}", f"-seed={args.seed}", "-max_len=65536",
               "-rss_limit_mb=4096", f"-timeout={max(2, int(args.slow * 5))}",
               f"-artifact_prefix={args.out}/atheris-{t}-", str(corpus)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        took = time.perf_counter() - t0
        log = res.stderr
        runs = cov = ft = "?"
        import re

        for line in log.splitlines():
            m = re.match(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", line)
            if m:
                runs, cov, ft = m.groups()
        done = re.findall(r"Done (\d+) runs", log)
        runs = done[-1] if done else runs
        ok = res.returncode == 0
        failed += not ok
        rate = int(runs) / took if runs.isdigit() else 0
        print(f"{t:19} {runs:>9} {rate:7.0f} {cov:>6} {ft:>6} {'ok' if ok else 'CRASH':>8}")
        if not ok:
            tail = [ln for ln in log.splitlines() if "Error" in ln or "Exception" in ln][-5:]
            print("   " + "\n   ".join(tail or log.splitlines()[-10:]))
    return 1 if failed else 0


#: the libFuzzer process: instruments chatlens's readers before anything imports them
ATHERIS_CHILD = """
import importlib, pkgutil, sys, tempfile
from pathlib import Path
import atheris
sys.path.insert(0, sys.argv[1])
with atheris.instrument_imports(include=["chatlens"]):
    for pkg in ("ingest", "codebook", "annotate"):
        mod = importlib.import_module(f"chatlens.{pkg}")
        for info in pkgutil.iter_modules(mod.__path__, f"chatlens.{pkg}."):
            importlib.import_module(info.name)
    for name in ("jsonscan", "textsafe", "schema", "errors"):
        importlib.import_module(f"chatlens.{name}")
from tests.fuzzing import check
target = sys.argv[2]
tmp = Path(tempfile.mkdtemp(prefix="chatlens-atheris-", dir="/dev/shm"))

def one(data):
    res = check(target, data, tmp)
    if res.kind == "crash":
        raise AssertionError(f"{target}: {res.detail}")

atheris.Setup([sys.argv[0], *sys.argv[3:]], one)
atheris.Fuzz()
"""


if __name__ == "__main__":
    raise SystemExit(main())
