"""Crash safety: kill -9 at random points of each stage, rerun, compare with an uninterrupted run.

Stages: ingest (a Telegram JSON export cut from the real channel export), enrich, code (the
built-in codebook), label import (a labels file for an audit sample), collect (the in-process
fake Telegram client, :mod:`chatlens.collect.fake`) and forget (one author). For each stage the
project as it stands before the stage is built once; then, per trial, a copy of it gets the stage
in a forked child that the parent kills with SIGKILL after a random delay drawn uniformly from
[0, 1.1 x the stage's uninterrupted time]; the stage is then rerun to the end on the same copy and
the project is compared with the copy that ran the stage uninterrupted. After forget, the raw
bytes of every file of the project are also searched for the erased author's longest texts.

"Equals" means: every table of the DuckDB store and of labels.sqlite has the same rows, compared
as sorted multisets of rows by content, leaving out the columns that name a run or a wall-clock
time (run ids, started/finished/created/added/updated/replaced, label ids, which an aborted
transaction may skip), original records compared by record (a resumed run cuts its blocks
elsewhere) and the ``runs`` table itself (a killed run stays recorded as
interrupted, which is the point); every source reconciles (n_read = n_stored + n_duplicate +
n_quarantined); and the labels (uid, measure, value, annotator, sample) are the same. A trial
where the child finished before the kill is counted apart ("done before kill"), is still
compared, and does not count towards ``--kills``: trials go on until that many kills landed.

Usage: python bench/crash.py [--kills 50] [--messages 400] [--stages ingest,enrich,...] [--seed 1]
Prints per stage: the uninterrupted time, kills that landed, trials done before the kill, reruns
that failed, projects that differ (with the first differing table), and the total time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "telegram" / "json_ru_channel" / "result.json"
FIXTURE = ROOT / "tests" / "fixtures" / "telegram_json"
CODEBOOK = ROOT / "chatlens" / "codebook" / "builtin" / "exodus-2022.yaml"

import duckdb  # noqa: E402  (imported before forking so each child starts warm)

import chatlens.code  # noqa: E402
import chatlens.enrich  # noqa: E402, F401
from chatlens import Project  # noqa: E402
from chatlens.store import originals  # noqa: E402

VOLATILE = re.compile(r"^(run_id|label_id|started|finished|created|added|updated|replaced|"
                      r"deleted_at|file_mtime)$")
SKIP_TABLES = {"runs"}


# --- stage inputs ---------------------------------------------------------------------------------
def export(path: Path, n: int) -> None:
    """The first ``n`` messages of the real channel export (or of the fixtures when absent)."""
    src = REAL if REAL.is_file() else sorted(FIXTURE.glob("*.json"))[0]
    doc = json.loads(src.read_text(encoding="utf-8"))
    doc["messages"] = doc["messages"][:n]
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def fake_client(n: int) -> Any:
    from chatlens.collect import fake as F

    sys.path.insert(0, str(ROOT / "bench"))
    from collect import build  # bench/collect.py's real-shaped messages

    return F.FakeTelegram([F.FakeChannel(F.channel(1001, "Новости", "news"), build(n))])


# --- what a project holds -------------------------------------------------------------------------
def dump(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows by content, without run ids and wall-clock times."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    con = duckdb.connect(str(root / "chatlens.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()]
        for t in sorted(set(tables) - SKIP_TABLES):
            if t == "original_blocks":  # by record: a resumed run cuts its blocks elsewhere
                kept = originals.read(con)
                out[f"duckdb.{t}"] = sorted(tuple(map(repr, r)) for r in zip(
                    *(kept.column(c).to_pylist() for c in kept.column_names), strict=True))
                continue
            cols = [r[0] for r in con.execute(f'DESCRIBE "{t}"').fetchall()
                    if not VOLATILE.match(r[0])]
            rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} '
                               f'FROM "{t}"').fetchall()
            out[f"duckdb.{t}"] = sorted(tuple(map(repr, r)) for r in rows)
        for sid, rd, st, du, qu in con.execute(
                "SELECT source_id, n_read, n_stored, n_duplicate, n_quarantined FROM sources"
                ).fetchall():
            if rd is not None and rd != (st or 0) + (du or 0) + (qu or 0):
                out.setdefault("!reconcile", []).append((sid, rd, st, du, qu))
        out["!runs_status"] = sorted((r[0],) for r in con.execute(
            "SELECT command || ':' || coalesce(status, 'null') FROM runs").fetchall())
    finally:
        con.close()
    lab = root / "labels.sqlite"
    if lab.exists():
        import sqlite3

        scon = sqlite3.connect(lab)
        try:
            for (t,) in scon.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                     "AND name NOT LIKE 'sqlite_%'").fetchall():
                if t in SKIP_TABLES:  # the label store logs runs too (label import, estimate)
                    out["!runs_status"] += sorted((r[0],) for r in scon.execute(
                        "SELECT command || ':' || coalesce(status, 'null') FROM runs"))
                    continue
                cols = [r[1] for r in scon.execute(f'PRAGMA table_info("{t}")')
                        if not VOLATILE.match(r[1])]
                rows = scon.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} '
                                    f'FROM "{t}"').fetchall()
                out[f"labels.{t}"] = sorted(tuple(map(repr, r)) for r in rows)
        finally:
            scon.close()
    return out


def differ(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> str:
    """The first table where two dumps differ ('' when equal), leaving the runs' status out."""
    for k in sorted(set(a) | set(b)):
        if k == "!runs_status":
            continue
        if a.get(k) != b.get(k):
            ra, rb = a.get(k, []), b.get(k, [])
            return f"{k}: {len(ra)} rows vs {len(rb)} in the uninterrupted run"
    return ""


# --- running a stage in a child -------------------------------------------------------------------
def in_child(fn: Callable[[], Any], kill_after: float | None = None) -> tuple[str, Any]:
    """Run ``fn`` in a forked child; kill it after ``kill_after`` s. Returns (outcome, value):
    ("done", value), ("error", message) or ("killed", None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(r)
        try:
            res: tuple[str, Any] = ("done", fn())
        except BaseException as exc:  # reported to the parent, which decides
            res = ("error", f"{type(exc).__name__}: {exc}")
        with os.fdopen(w, "wb") as fh:
            pickle.dump(res, fh)
        os._exit(0)
    os.close(w)
    if kill_after is not None:
        deadline = time.perf_counter() + kill_after
        while time.perf_counter() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(min(0.002, max(0.0, deadline - time.perf_counter())))
        else:
            os.kill(pid, signal.SIGKILL)
    data = b""
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return pickle.loads(data) if data else ("killed", None)


class Stage:
    def __init__(self, name: str, prepare: Callable[[Path], None], run: Callable[[Path], Any],
                 erases: bool = False):
        self.name, self.prepare, self.run = name, prepare, run
        self.erases = erases  # after a rerun, no file of the project may hold the erased text


def traces(root: Path, probes: list[str]) -> list[str]:
    """The project's files that still hold any of ``probes`` (erased texts) in their bytes."""
    needles = [t.encode() for t in probes]
    return sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()
                  and any(nd in f.read_bytes() for nd in needles))


def stages(work: Path, n: int) -> list[Stage]:
    tg = work / "result.json"
    export(tg, n)
    labels_file = work / "labels.jsonl"

    def ingest(root: Path) -> Any:
        with Project.open(root) as p:
            r = p.ingest([tg])
            return [(s.status, s.read, s.stored, s.duplicate, s.quarantined) for s in r.sources]

    def enrich(root: Path) -> Any:
        with Project.open(root) as p:
            p.enrich()

    def code(root: Path) -> Any:
        with Project.open(root) as p:
            p.code(CODEBOOK)

    def measure(root: Path) -> str:
        with Project.open(root) as p:
            cb, _ = p.codebook(CODEBOOK)
            return cb.measures[0].id

    def label_import(root: Path) -> Any:
        sid = (root / "sample_id").read_text()
        with Project.open(root) as p:
            r = p.import_labels(labels_file, "coder", sample_id=sid)
            return getattr(r, "stored", None)

    def forget_one(root: Path) -> Any:
        from chatlens.errors import UsageError
        from chatlens.project.forget import forget

        author = (root / "author_key").read_text()
        with Project.open(root) as p:
            try:
                return forget(p, author=author).as_dict().get("deleted")
            except UsageError as exc:  # the killed run had finished: "No author ... in this
                if "No author" not in str(exc):  # project" is the rerun's right answer
                    raise
                return "already forgotten"

    def collect(root: Path) -> Any:
        from chatlens.collect.api import collect_telegram
        from chatlens.collect.runner import CollectOptions

        client = fake_client(n)
        with Project.open(root) as p:
            r = collect_telegram(p, ["news"], CollectOptions(batch=50), client=client)
            return [c.new for c in r.channels]

    def empty(root: Path) -> None:
        Project.init(root).close()

    def ingested(root: Path) -> None:
        empty(root)
        ingest(root)

    def enriched(root: Path) -> None:
        ingested(root)
        enrich(root)

    def coded(root: Path) -> None:
        enriched(root)
        code(root)

    def sampled(root: Path) -> None:
        from chatlens.annotate import write_labels
        from chatlens.annotate.records import LabelRecord

        coded(root)
        m = measure(root)
        with Project.open(root) as p:
            s = p.sample(m, n=40, seed=7)
            sid = s["sample_id"]
            uids = [it["uid"] for it in p.labels().sample_items(sid)]
            cb, _ = p.codebook(CODEBOOK)
            labels = list(cb.measures[0].labels)
        (root / "sample_id").write_text(sid)
        when = datetime(2024, 1, 1, tzinfo=UTC)
        write_labels([LabelRecord(u, m, labels[i % len(labels)], "coder", when)
                      for i, u in enumerate(uids)], labels_file)

    def labelled(root: Path) -> None:
        sampled(root)
        label_import(root)
        with Project.open(root) as p:
            con = p.store.con
            (key,) = con.execute("SELECT author_key FROM messages WHERE author_key IS NOT NULL "
                                 "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
            texts = [r[0] for r in con.execute(
                "SELECT text FROM messages WHERE author_key = ? AND length(text) >= 40 "
                "ORDER BY length(text) DESC, uid LIMIT 5", [key]).fetchall()]
        (root / "author_key").write_text(key)
        # the probes are kept outside the project, so a search of its files cannot find them
        (root.parent / f"{root.name}.probes.json").write_text(json.dumps(texts))

    return [Stage("ingest", empty, ingest), Stage("enrich", ingested, enrich),
            Stage("code", enriched, code), Stage("label import", sampled, label_import),
            Stage("collect", empty, collect), Stage("forget", labelled, forget_one, erases=True)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50,
                    help="kills that must land per stage (trials go on until they have)")
    ap.add_argument("--messages", type=int, default=400, help="messages in the stage inputs")
    ap.add_argument("--stages", default="ingest,enrich,code,label import,collect,forget")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    wanted = args.stages.split(",")
    failed = 0
    t_all = time.perf_counter()
    print(f"{'stage':13} {'run s':>6} {'trials':>6} {'killed':>6} {'done1st':>7} "
          f"{'rerun err':>9} {'differ':>6} {'left running':>12}  first difference")
    with tempfile.TemporaryDirectory(prefix="chatlens-crash-") as tmp:
        work = Path(tmp)
        for st in stages(work, args.messages):
            if st.name not in wanted:
                continue
            base = work / f"base-{st.name.replace(' ', '_')}"
            kind, err = in_child(lambda b=base, s=st: s.prepare(b))
            if kind != "done":
                print(f"{st.name:13} could not prepare: {err}")
                failed += 1
                continue
            ref = work / "ref"
            shutil.rmtree(ref, ignore_errors=True)
            shutil.copytree(base, ref)
            t0 = time.perf_counter()
            kind, val = in_child(lambda s=st, r=ref: s.run(r))
            took = time.perf_counter() - t0
            if kind != "done":
                print(f"{st.name:13} the uninterrupted run failed: {val}")
                failed += 1
                continue
            kind, want = in_child(lambda r=ref: dump(r))
            if kind != "done":
                print(f"{st.name:13} cannot read the uninterrupted project: {want}")
                failed += 1
                continue
            probes: list[str] = []
            if st.erases:
                probes = json.loads((work / f"{base.name}.probes.json").read_text())
                assert probes, "the erased author has no text to look for"
                left = traces(ref, probes)
                assert not left, f"the uninterrupted {st.name} left erased text in {left}"
            killed = early = rerun_err = diff = stale = 0
            first = ""
            trials = 0
            while killed < args.kills and trials < 3 * args.kills:  # until N kills landed
                trials += 1
                trial = work / "trial"
                shutil.rmtree(trial, ignore_errors=True)
                shutil.copytree(base, trial)
                kind, _v = in_child(lambda s=st, t=trial: s.run(t),
                                    kill_after=rng.uniform(0, 1.1 * took))
                killed += kind == "killed"
                early += kind != "killed"
                kind, val = in_child(lambda s=st, t=trial: s.run(t))
                if kind != "done":
                    rerun_err += 1
                    first = first or f"rerun: {str(val)[:150]}"
                    continue
                kind, got = in_child(lambda t=trial: dump(t))
                if kind != "done":
                    rerun_err += 1
                    first = first or f"dump: {str(got)[:150]}"
                    continue
                stale += sum(1 for (r,) in got.get("!runs_status", [])
                             if r.endswith(":running"))
                d = differ(got, want)
                left = traces(trial, probes) if probes else []
                d = d or (f"erased text still in {', '.join(left)}" if left else "")
                if d:
                    diff += 1
                    first = first or d
            failed += rerun_err + diff
            print(f"{st.name:13} {took:6.2f} {trials:6} {killed:6} {early:7} {rerun_err:9} "
                  f"{diff:6} {stale:12}  {first}", flush=True)
    print(f"total {time.perf_counter() - t_all:.0f} s; "
          f"{'all reruns equal the uninterrupted run' if not failed else f'{failed} FAILURES'}")
    print("'left running': runs recorded as running after the kill and the rerun (information)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
