"""Coverage of what chatlens shows, on the user's real path: a project built from real labelled
posts, estimates read from ``Project.estimate`` exactly as the CLI, dashboard and report read
them.

The UNLP-2025 manipulation posts (../shared/data) are split in two. One half is a "training"
chat whose labels train chatlens's model (``chatlens train``), through the bootstrap path: the
codebook names the model before it exists, ``code`` leaves the measure pending, labels are
imported, the model is trained, and ``code`` runs again. The other half is the population: ten
chats of very unequal size (400 posts down to 1) with different prevalences, spread over twelve
months, 15% of the posts undated. Each repetition draws an audit sample of the population
through ``Project.sample`` (stratified by chat, so some strata are censuses and some get one
message; or simple), has two coders label it (one right, one wrong on 10% of items, so ties
arise), and estimates the share overall, per chat and per month with the default ``auto``
method and the default tie policy. The truth is the share of manipulative posts in each group.

Printed per grouping and status: how many estimates, their coverage of the truth, mean width,
and how many were shown as valid. Goal (issue 12): coverage >= 0.93 wherever chatlens shows
an interval as valid; no zero-width interval without a census; without an audit, nothing is
shown as valid.

Usage: python bench/estimate_project.py [--reps 60] [--n 150] [--design chat|simple]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from chatlens import Project
from chatlens.store.labels import NewLabel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "labeled"
SIZES = (400, 300, 200, 100, 60, 30, 10, 5, 2, 1)
CODEBOOK = """
name: bench
version: "1"
languages: [uk, ru]
measures:
  - id: manipulative
    question: Does the post try to manipulate its reader?
    labels: [yes, no]
    instructions: Label yes for manipulation techniques (loaded language, fear, etc.).
    population: {{chats: [{chats}]}}
    scorers:
      - {{type: model, model: manipulative-v1}}
"""


def build(root: Path, seed: int) -> tuple[Project, dict[str, bool]]:
    df = pd.read_parquet(DATA / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet")
    rng = np.random.default_rng(seed)
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    half = len(df) // 2
    train, pop = df.iloc[:half], df.iloc[half:half + sum(SIZES)]
    # chats of unequal size and prevalence: posts sorted by a noisy label, then cut
    order = np.argsort(pop["manipulative"].to_numpy() + rng.normal(0, 0.7, len(pop)))
    pop = pop.iloc[order].reset_index(drop=True)
    chats = np.repeat([f"chat{i:02d}" for i in range(len(SIZES))], SIZES)
    months = rng.integers(1, 13, len(pop))
    undated = rng.random(len(pop)) < 0.15
    table = root.parent / "posts.csv"
    with table.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "chat", "ts"])
        for r in train.itertuples():
            w.writerow([r.id, r.content, "training", "2023-01-15T12:00:00+00:00"])
        for i, r in enumerate(pop.itertuples()):
            ts = "" if undated[i] else f"2023-{months[i]:02d}-10T12:00:00+00:00"
            w.writerow([r.id, r.content, chats[i], ts])
    p = Project.init(root)
    p.set_languages(["uk", "ru"])
    p.ingest([table], format="csv")
    keys = dict(p.store.con.execute("SELECT title, chat_key FROM chats").fetchall())
    cb = root.parent / "codebook.yaml"
    cb.write_text(CODEBOOK.format(chats=", ".join(keys[c] for c in sorted(set(chats)))),
                  encoding="utf-8")
    report = p.code(cb)
    assert report.pending, "the model is named before it exists: the measure must be pending"
    truth = {}
    uid_of = dict(p.store.con.execute("SELECT message_id, uid FROM messages").fetchall())
    labels = root.parent / "train-labels.csv"
    with labels.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "measure", "value", "annotator"])
        for r in train.itertuples():
            w.writerow([uid_of[r.id], "manipulative", "yes" if r.manipulative else "no", "t"])
    for r in pop.itertuples():
        truth[uid_of[r.id]] = bool(r.manipulative)
    p.import_labels(labels, "t")
    p.train("manipulative", cv=3)
    p.code(cb)
    return p, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--design", choices=["chat", "simple"], default="chat")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        p, truth = build(Path(tmp) / "p", args.seed)
        groups = {name: dict(p.store.con.execute(sql).fetchall()) for name, sql in {
            "chat": "SELECT uid, chat_key FROM messages",
            "month": "SELECT uid, strftime(ts, '%Y-%m') FROM messages WHERE ts IS NOT NULL",
        }.items()}
        print(f"project built in {time.perf_counter() - t0:.0f} s: {len(truth):,} posts in the "
              f"population, true share {np.mean(list(truth.values())):.3f}")
        (none,) = p.estimate("manipulative")
        print(f"before any audit: status {none.status}, shown as valid: {none.valid}")
        stats: dict[tuple[str, str], list[tuple[bool, float]]] = defaultdict(list)
        zero_width = 0
        for rep in range(args.reps):
            s = p.sample("manipulative", "audit", args.n,
                         strata="chat" if args.design == "chat" else None, seed=1000 + rep)
            rng = np.random.default_rng(rep)
            new = []
            for item in p.labels().sample_items(s["sample_id"]):
                y = truth[item["uid"]]
                wrong = y if rng.random() >= 0.1 else not y
                for coder, v in (("a", y), ("b", wrong)):
                    new.append(NewLabel(item["uid"], "bench", "manipulative",
                                        "yes" if v else "no", coder,
                                        sample_id=s["sample_id"], sample_kind="audit"))
            p.labels().add_labels(new)
            for by in (None, "chat", "month"):
                for r in p.estimate("manipulative", by=by):
                    members = ([u for u in truth] if by is None else
                               [u for u in truth if groups[by].get(u) == r.group])
                    share = float(np.mean([truth[u] for u in members]))
                    e = r.estimate
                    covered = e.lower - 1e-9 <= share <= e.upper + 1e-9
                    stats[(by or "overall", r.status)].append((covered, e.width))
                    if e.width <= 0 and e.n_labelled < len(members):
                        zero_width += 1
            p.drop_sample(s["sample_id"])
        p.close()
    print(f"\n{args.reps} audits of {args.n} ({args.design} design), two coders (one wrong on "
          f"10%), auto method, ties bounded; {time.perf_counter() - t0:.0f} s")
    print(f"{'grouping':<9} {'status':<10} {'estimates':>9} {'coverage':>9} {'mean width':>11}")
    valid_cov = []
    for (g, status), rows in sorted(stats.items()):
        cov = np.mean([c for c, _ in rows])
        print(f"{g:<9} {status:<10} {len(rows):>9} {cov:>9.3f} "
              f"{np.mean([w for _, w in rows]):>11.3f}")
        if status in ("valid", "partial"):
            valid_cov.append(cov)
    print(f"zero-width intervals without a census: {zero_width}")
    print(f"lowest coverage among estimates shown as valid: {min(valid_cov):.3f} (goal >= 0.93)")


if __name__ == "__main__":
    main()
