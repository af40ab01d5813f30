"""The store and the ingest pipeline: dedupe, reconciliation, crash safety, locking, exports."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chatlens import Project, ProjectError, ProjectLockedError
from chatlens.schema import MESSAGE_DOCS, MESSAGE_SCHEMA
from chatlens.textsafe import FORMULA_PREFIXES, csv_unsafe
from tests.helpers import telegram_export

TG = Path(__file__).parent / "fixtures" / "telegram_json"


def big_export(path: Path, n: int, start_id: int = 1) -> None:
    msgs = [
        {"id": i, "type": "message", "date": "2022-09-21T10:00:00",
         "date_unixtime": str(1663754400 + i), "from": f"U{i % 50}", "from_id": f"user{i % 50}",
         "text": f"сообщение номер {i}", "text_entities": []}
        for i in range(start_id, start_id + n)
    ]
    doc = {"name": "Большой чат", "type": "private_supergroup", "id": 77, "messages": msgs}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def test_schema_is_documented_column_by_column() -> None:
    assert set(MESSAGE_DOCS) == set(MESSAGE_SCHEMA.names)
    assert MESSAGE_SCHEMA.field("ts").type.tz == "UTC"


def test_init_twice_and_open_missing_give_clear_errors(tmp_path: Path) -> None:
    Project.init(tmp_path / "p").close()
    with pytest.raises(ProjectError, match="already a chatlens project"):
        Project.init(tmp_path / "p")
    with pytest.raises(ProjectError, match="chatlens init"):
        Project.open(tmp_path / "nothing")


def test_overlapping_exports_add_nothing_twice(project: Project, tmp_path: Path) -> None:
    big_export(tmp_path / "a.json", 300, start_id=1)
    big_export(tmp_path / "b.json", 300, start_id=201)  # ids 201..500: 100 shared
    a, b = project.ingest([tmp_path / "a.json", tmp_path / "b.json"]).sources
    assert (a.stored, a.duplicate) == (300, 0)
    assert (b.read, b.stored, b.duplicate) == (300, 200, 100)
    assert project.status()["messages"] == 500
    again = project.ingest([tmp_path / "b.json"]).sources[0]
    assert again.status == "unchanged" and "already ingested" in (again.error or "")


def test_one_bad_input_does_not_stop_the_others(project: Project, tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "garbage.bin").write_bytes(os.urandom(3000))
    report = project.ingest([tmp_path / "empty.json", tmp_path / "garbage.bin",
                             tmp_path / "missing.json", TG / "single_chat.json"])
    by_path = {Path(s.path).name: s for s in report.sources}
    assert "empty" in (by_path["empty.json"].error or "")
    assert "not a format chatlens recognises" in (by_path["garbage.bin"].error or "")
    assert "no such file" in (by_path["missing.json"].error or "")
    assert by_path["single_chat.json"].status == "complete"
    assert project.status()["messages"] == 12


def test_zip_with_path_traversal_is_refused(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../etc/passwd.txt", "x")
    (src,) = project.ingest([bad]).sources
    assert src.status == "failed" and "outside the archive" in (src.error or "")


def test_zip_bomb_is_refused_before_reading(project: Project, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("_chat.txt", b"\0" * (64 * 1024 * 1024))
    (src,) = project.ingest([bomb]).sources
    assert src.status == "failed" and "zip bomb" in (src.error or "")


def test_zip_holding_a_telegram_export(project: Project, tmp_path: Path) -> None:
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(TG / "single_chat.json", "ChatExport_2022/result.json")
        zf.writestr("ChatExport_2022/photos/photo_1.jpg", b"\xff\xd8")
    (src,) = project.ingest([z]).sources
    assert src.status == "complete" and src.stored == 12


KILLER = textwrap.dedent("""
    import sys
    import chatlens.ingest.pipeline as pipeline
    from chatlens import Project
    pipeline.BATCH = 500
    with Project.open(sys.argv[1]) as p:
        p.ingest([sys.argv[2]], progress=lambda path, n: print(n, flush=True))
""")


def test_kill_9_mid_ingest_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    export = tmp_path / "big.json"
    big_export(export, 20_000)
    Project.init(tmp_path / "p").close()
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path / "p"), str(export)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # three batches committed, then kill -9 in the middle of the next
        assert proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Project.open(tmp_path / "p") as p:
        (src,) = p.store.sources()
        assert src["status"] == "partial"
        assert src["n_read"] == src["n_stored"] + src["n_duplicate"] + src["n_quarantined"]
        assert 1500 <= src["n_stored"] < 20_000
        assert p.status()["messages"] == src["n_stored"]
        (rep,) = p.ingest([export]).sources
        assert rep.status == "complete" and rep.resumed_from == src["n_read"]
        assert (rep.read, rep.stored, rep.duplicate) == (20_000, 20_000, 0)
        (n, distinct), = p.store.con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM messages").fetchall()
        assert n == distinct == 20_000
        assert p.store.originals().num_rows == 20_000


def test_second_writer_gets_a_clear_lock_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATLENS_LOCK_WAIT", "0.5")  # writers wait for the lock this long
    Project.init(tmp_path / "p").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from chatlens import Project; "
         "p = Project.open(sys.argv[1]); print('ok', flush=True); time.sleep(30)",
         str(tmp_path / "p")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(ProjectLockedError, match=f"process {holder.pid}"):
            Project.open(tmp_path / "p")
    finally:
        holder.kill()
        holder.wait()


def test_exports_are_pseudonymised_and_csv_formulas_neutralised(
        project: Project, tmp_path: Path) -> None:
    doc = {"name": "x", "type": "private_group", "id": 5, "messages": [
        {"id": i, "type": "message", "date_unixtime": "1663754400", "from": "Иван Петров",
         "from_id": "user1", "text": t, "text_entities": []}
        for i, t in enumerate(["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "обычный"])]}
    doc["messages"][4]["forwarded_from"] = "=cmd|' /C calc'!A0"  # stored pseudonymised
    doc["messages"].append({"id": 9, "type": "message", "date_unixtime": "1663754400",
                            "from": "x", "from_id": "user2", "text": "'=x", "text_entities": []})
    (tmp_path / "f.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    project.ingest([tmp_path / "f.json"])
    assert project.export(tmp_path / "m.parquet") == 6
    table = pq.read_table(tmp_path / "m.parquet")
    assert table.schema.field("ts").type.tz == "UTC"
    assert "Иван" not in json.dumps(table.to_pylist(), default=str, ensure_ascii=False)
    project.export(tmp_path / "m.csv")
    with open(tmp_path / "m.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["text"] for r in rows) == sorted([
        "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "обычный", "''=x"])
    assert not [v for r in rows for v in r.values() if v.startswith(FORMULA_PREFIXES)]
    by_uid = {r["uid"]: r for r in table.to_pylist()}
    for r in rows:  # csv_unsafe gives back every original text cell
        for k in ("text", "forwarded_from", "chat_key", "author_key"):
            assert csv_unsafe(r[k]) == (by_uid[csv_unsafe(r["uid"])][k] or "")
    project.export(tmp_path / "m.jsonl")
    lines = (tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["author_key"].startswith("a")


def test_every_run_writes_a_manifest(project: Project) -> None:
    report = project.ingest([TG / "single_chat.json"])
    (run,) = [r for r in project.store.runs() if r["run_id"] == report.run_id]
    manifest = json.loads(run["manifest"])
    assert run["status"] == "complete" and manifest["version"]
    assert manifest["sources"][0]["source_id"] and manifest["totals"]["stored"] == 12


def test_folder_search_skips_files_that_are_not_exports(project: Project, tmp_path: Path) -> None:
    export = tmp_path / "ChatExport"
    export.mkdir()
    (export / "result.json").write_bytes((TG / "single_chat.json").read_bytes())
    (export / "notes.txt").write_text("just some notes\nnothing more\n")
    report = project.ingest([export])
    by_name = {Path(s.path).name: s for s in report.sources}
    assert by_name["result.json"].status == "complete"
    assert by_name["notes.txt"].status == "skipped" and not report.failed
    (named,) = project.ingest([export / "notes.txt"]).sources  # named explicitly: an error
    assert named.status == "failed"


def test_context_finds_neighbours_across_gaps_of_any_length(project: Project,
                                                            tmp_path: Path) -> None:
    from chatlens.store.stages import context
    # minutes apart, then a two-year gap, then hours apart; another chat interleaved in time
    times = [0, 60, 120, 180, 2 * 365 * 86400, 2 * 365 * 86400 + 7200]
    path = tmp_path / "gaps.json"
    msgs = [{"id": i, "type": "message", "date": "2022-01-01T00:00:00",
             "date_unixtime": str(1640995200 + t), "from": "A", "from_id": "user1",
             "text": f"m{i}"} for i, t in enumerate(times)]
    path.write_text(json.dumps({"name": "gaps", "type": "private_group", "id": 7,
                                "messages": msgs}), encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "other", "type": "private_group", "id": 8, "messages": [
        {**m, "text": "x" + m["text"]} for m in msgs]}), encoding="utf-8")
    project.ingest([path, other])
    con = project.store.con
    uid = {t: u for u, t in con.execute(
        "SELECT uid, text FROM messages WHERE chat_key LIKE '%7'").fetchall()}

    def texts(rows: list[dict[str, object]]) -> list[object]:
        return [r["text"] for r in rows]

    ctx = context(project.store, uid["m3"], k=2)
    assert ctx is not None
    assert texts(ctx["before"]) == ["m1", "m2"] and texts(ctx["after"]) == ["m4", "m5"]
    ctx = context(project.store, uid["m4"], k=3)
    assert ctx is not None
    assert texts(ctx["before"]) == ["m1", "m2", "m3"] and texts(ctx["after"]) == ["m5"]
    ctx = context(project.store, uid["m0"], k=1)
    assert ctx is not None and ctx["before"] == [] and texts(ctx["after"]) == ["m1"]
    assert context(project.store, "no-such-uid") is None


def test_sql_formula_rule_equals_csv_safe() -> None:
    import duckdb

    from chatlens.textsafe import csv_safe, csv_safe_sql

    cases = ["", "=1+1", "+a", "-", "@u", "\tx", "\rx", "'", "''", "'=x", "''=x", "'a", "a=b",
             "'@", "x", "'\t", "—", "'-1"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (text VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[c] for c in [*cases, None]])
    got = [r[0] for r in con.execute(f"SELECT {csv_safe_sql('text')} FROM t").fetchall()]
    assert got == [csv_safe(c) for c in cases] + [None]


def test_every_connection_reads_times_in_utc(tmp_path: Path) -> None:
    """Cursors do not inherit a session time zone: on a machine east of UTC a message at
    22:30 UTC on 31 January would land in February in month buckets."""
    code = textwrap.dedent(f"""
        from chatlens import Project
        from tests.helpers import telegram_export
        p = Project.init({str(tmp_path / "p")!r})
        p.ingest([telegram_export(__import__("pathlib").Path({str(tmp_path / "t.json")!r}),
                                  ["x"], start_ts=1706740200 - 60)])
        for con in (p.store.con, p.store.con.cursor(), p.store.cursor().con):
            print(con.execute("SELECT strftime(max(ts), '%Y-%m %H:%M') FROM messages")
                  .fetchall()[0][0])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TZ": "Asia/Tbilisi"},
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.split("\n")[:3] == ["2024-01 22:30"] * 3


def test_a_damaged_archive_member_fails_alone(project: Project, tmp_path: Path) -> None:
    good = telegram_export(tmp_path / "good.json", ["привет", "пока"])
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("WhatsApp Chat with X.txt", "01/02/2022, 10:00 - A: hello\n" * 50)
    data = bytearray(bad.read_bytes())
    data[200] ^= 0xFF  # corrupt the stored member's bytes: CRC check fails on read
    bad.write_bytes(bytes(data))
    report = project.ingest([bad, good])
    by = {Path(s.path).name: s for s in report.sources}
    assert by["good.json"].status == "complete"
    failed = [s for s in report.sources if s.status == "failed"]
    assert failed and "damaged" in (failed[0].error or "")


def test_a_killed_run_is_marked_interrupted(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as p:
        p.store.start_run("r1", "ingest", "0", {})
    with Project.open(tmp_path / "p") as p:
        (status,), = p.store.con.execute("SELECT status FROM runs WHERE run_id = 'r1'").fetchall()
    assert status == "interrupted"
