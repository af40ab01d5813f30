"""Mutation fuzzing of every importer, the codebook and claims loaders and the label readers.

Seeds are the project's own fixtures plus, when present, the real files in ../shared/data (the
first 256 KB of each, so single inputs stay small); each input is a seed with 1-4 random edits
(bit flips, hostile tokens such as 3,000 ``[`` or ``"a,`` runs, deletions, duplications, splices
from other seeds). Each input goes through ``tests.fuzzing.check``: the only exceptions allowed
are chatlens errors with a message, records must have storable field types, and an input that
takes longer than ``--slow`` seconds is reported as a hang.

Usage: python bench/fuzz.py [--inputs 20000] [--targets csv,zip,...] [--seed 1] [--slow 2]
Prints, per target: inputs, ok, refused (chatlens errors), crashes, slow, max seconds, and every
distinct crash with the input that caused it saved under bench/out/fuzz/.
(atheris does not install here, so coverage guidance is not used; see the README of bench.)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "chatlens" / "codebook" / "builtin"
sys.path.insert(0, str(ROOT))

from tests.fuzzing import RUNNERS, check, mutate  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FIX = ROOT / "tests" / "fixtures"
HEAD = 256 << 10


def _heads(paths: list[Path]) -> list[bytes]:
    out = []
    for p in paths:
        if p.is_file():
            with p.open("rb") as fh:
                out.append(fh.read(HEAD))
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
        "parquet": _heads(sorted((DATA / "labeled").glob("*/*.parquet"))[:1]),
        "zip": _heads(sorted((FIX / "whatsapp").glob("*.zip"))) + _heads(
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=20_000, help="total inputs (all targets)")
    ap.add_argument("--targets", default=",".join(RUNNERS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slow", type=float, default=2.0, help="seconds that count as a hang")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fuzz")
    args = ap.parse_args()
    pool = seeds()
    targets = [t for t in args.targets.split(",") if t in pool]
    if not (DATA.is_dir()):
        print("note: ../shared/data is absent; seeding from the project's fixtures only")
    rng = random.Random(args.seed)
    every = [x for t in targets for x in pool[t]]
    stats = {t: Counter() for t in targets}
    worst = dict.fromkeys(targets, 0.0)
    crashes: dict[tuple[str, str], int] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    per = max(1, args.inputs // len(targets))
    with tempfile.TemporaryDirectory(prefix="chatlens-fuzz-") as tmp:
        for target in targets:
            for i in range(per):
                data = rng.choice(pool[target])
                if i:  # input 0 of each target is a seed as is
                    data = mutate(data, rng, every)
                res = check(target, data, Path(tmp))
                stats[target][res.kind] += 1
                worst[target] = max(worst[target], res.seconds)
                if res.seconds > args.slow:
                    stats[target]["slow"] += 1
                    (args.out / f"slow-{target}-{i}.bin").write_bytes(data)
                if res.kind == "crash":
                    key = (target, res.detail.split(":")[0] + ":" + res.detail[:80])
                    if key not in crashes:
                        crashes[key] = i
                        (args.out / f"crash-{target}-{i}.bin").write_bytes(data)
    took = time.perf_counter() - t_start
    print(f"{'target':20} {'inputs':>7} {'ok':>7} {'refused':>8} {'crash':>6} {'slow':>5} "
          f"{'max s':>6}")
    for t in targets:
        c = stats[t]
        n = c["ok"] + c["refused"] + c["crash"]
        print(f"{t:20} {n:7} {c['ok']:7} {c['refused']:8} {c['crash']:6} {c['slow']:5} "
              f"{worst[t]:6.2f}")
    total = sum(sum(c[k] for k in ("ok", "refused", "crash")) for c in stats.values())
    print(f"{total} inputs in {took:.0f} s ({total / took:.0f}/s); "
          f"{len(crashes)} distinct crashes")
    for (t, detail), i in sorted(crashes.items()):
        print(f"  CRASH {t} (input {i}, saved as crash-{t}-{i}.bin): {detail}")
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
