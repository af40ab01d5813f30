"""Hostile inputs from issue 14: each crash, hang or loss found by fuzzing, as a small generated
reproducer. Files are written in ``tmp_path``; sizes are scaled down so each test takes seconds,
and the property checked is the one that failed (no traceback, bounded time or memory, nothing
lost: ``read = stored + duplicate + quarantined``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from chatlens import Project
from chatlens.ingest.pipeline import SourceReport


def _export(messages: list[Any], **header: Any) -> dict[str, Any]:
    return {"name": "Chat", "type": "public_channel", "id": 7, **header, "messages": messages}


def _msg(i: int, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"id": i, "type": "message", "date": "2022-09-21T10:00:00",
            "date_unixtime": str(1663754400 + i), "from": "A", "from_id": "user1",
            "text": text, **extra}


def ingest_one(project: Project, path: Path, fmt: str | None = None, **kw: Any) -> SourceReport:
    report = project.ingest([path], format=fmt, **kw)
    (src,) = report.sources
    assert src.read == src.stored + src.duplicate + src.quarantined, src
    if src.status == "failed":
        assert src.error and "Traceback" not in src.error
        assert "could not be read (" not in src.error, src.error  # an unforeseen exception
    return src


def quarantine(project: Project) -> list[tuple[str, str]]:
    return project.store.con.execute(
        "SELECT source_loc, reason FROM quarantine ORDER BY source_pos").fetchall()


# --- Telegram JSON ------------------------------------------------------------------------------

@pytest.mark.parametrize("pretty", [True, False])
def test_telegram_json_odd_value_types_are_records_or_quarantined(
        project: Project, tmp_path: Path, pretty: bool) -> None:
    msgs = [_msg(1, media_type=5), _msg(2, date_unixtime="9999999999999"),
            _msg(3, date_unixtime=[1]), _msg(4), _msg(5, date_unixtime=True)]
    p = tmp_path / "result.json"
    doc = _export(msgs, name=5)
    p.write_text(json.dumps(doc, indent=1) if pretty else json.dumps(doc, separators=(",", ":")))
    src = ingest_one(project, p, "telegram-json")
    assert src.status == "complete", src.error
    assert (src.read, src.stored, src.quarantined) == (5, 2, 3)
    media = project.store.con.execute(
        "SELECT media FROM messages WHERE message_id = '1'").fetchone()
    assert media == ("other",)


def test_minified_telegram_json_with_one_bad_string_loses_only_that_message(
        project: Project, tmp_path: Path) -> None:
    data = orjson.dumps(_export([_msg(i, f"text {i}") for i in range(1, 6)]))
    data = data.replace(b'"text 3"', b'"bad \xff\xfe string"')
    p = tmp_path / "result.json"
    p.write_bytes(data)
    src = ingest_one(project, p)
    assert src.status == "complete", src.error
    assert (src.read, src.stored, src.quarantined) == (5, 4, 1)
    assert "message 3" in quarantine(project)[0][0]


def test_minified_telegram_json_nested_deeply_is_quarantined_in_bounded_memory(
        project: Project, tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    data = orjson.dumps(_export([_msg(1), {"id": 2, "text": "PLACEHOLDER"}, _msg(3)]))
    p = tmp_path / "result.json"
    p.write_bytes(data.replace(b'"PLACEHOLDER"', deep))
    t0 = time.monotonic()
    src = ingest_one(project, p)
    assert time.monotonic() - t0 < 20
    assert (src.read, src.stored, src.quarantined) == (3, 2, 1)
    assert "nested" in quarantine(project)[0][1]


def test_telegram_json_that_is_not_json_at_all_fails_fast(project: Project, tmp_path: Path) -> None:
    p = tmp_path / "result.json"
    with p.open("wb") as fh:  # a sparse file: 64 MB of zero bytes
        fh.truncate(64 << 20)
    t0 = time.monotonic()
    src = ingest_one(project, p, "telegram-json")
    assert src.status == "failed" and "does not start with" in (src.error or "")
    assert time.monotonic() - t0 < 10


def test_pretty_telegram_json_with_a_giant_line_is_a_clear_error(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chatlens.ingest.telegram_json as tj

    monkeypatch.setattr(tj, "MAX_RECORD", 1 << 16)
    monkeypatch.setattr(tj, "CHUNK", 1 << 12)
    p = tmp_path / "result.json"
    p.write_bytes(b'{\n "name": "x",\n "type": "public_channel",\n "id": 1,\n "messages": [\n'
                  + b" " * (1 << 18))
    src = ingest_one(project, p, "telegram-json")
    assert src.status == "failed" and "longer than" in (src.error or "")


# --- zip archives -------------------------------------------------------------------------------

WA_LINES = "".join(f"21/09/2022, 10:{i:02d} - Member {i}: message {i}\n" for i in range(30))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_with_a_zeroed_local_header_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    p = _zip(tmp_path / "chat.zip", {"_chat.txt": WA_LINES.encode()})
    data = bytearray(p.read_bytes())
    data[0:30] = bytes(30)  # the first member's local file header
    p.write_bytes(bytes(data))
    src = ingest_one(project, p)
    assert src.status == "failed" and "cannot be read" in (src.error or "")


def test_zip_with_a_nameless_member_reads_its_other_members(project: Project,
                                                            tmp_path: Path) -> None:
    # found by bench/fuzz.py (1M inputs): zipfile's is_dir() raised IndexError on a name of ""
    p = _zip(tmp_path / "chat.zip", {"_chat.txt": WA_LINES.encode(), "x": b"junk"})
    data = bytearray(p.read_bytes())
    cd = data.rfind(b"PK\x01\x02")  # the last member's central directory entry
    data[cd + 28:cd + 30] = (0).to_bytes(2, "little")  # file name length 0
    del data[cd + 46:cd + 47]  # its one-byte name
    end = data.rfind(b"PK\x05\x06")
    size = int.from_bytes(data[end + 12:end + 16], "little") - 1
    data[end + 12:end + 16] = size.to_bytes(4, "little")  # the central directory is shorter
    p.write_bytes(bytes(data))
    import zipfile
    assert "" in [i.filename for i in zipfile.ZipFile(p).infolist()]
    (src,) = project.ingest([p]).sources
    assert src.status == "complete" and src.stored > 0


def test_zip_needing_an_unknown_zip_version_is_a_clear_error(
        project: Project, tmp_path: Path) -> None:
    p = _zip(tmp_path / "chat.zip", {"_chat.txt": WA_LINES.encode()})
    data = bytearray(p.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 6] = 148  # "version needed to extract": 14.8
    p.write_bytes(bytes(data))
    (src,) = project.ingest([p]).sources
    assert src.status == "failed" and "zip file version 14.8" in (src.error or "")


def test_zip_members_are_listed_and_opened_in_linear_time(project: Project, tmp_path: Path) -> None:
    from chatlens.ingest.discover import discover
    from chatlens.ingest.registry import detect

    def cost(n: int) -> float:
        p = _zip(tmp_path / f"many{n}.zip", {f"c{i}.txt": WA_LINES.encode() for i in range(n)})
        t0 = time.monotonic()
        for src in discover([p]):
            assert not isinstance(src, Exception)
            detect(src)
            src.members[0].read_bytes()
        return time.monotonic() - t0

    small, big = cost(200), cost(1600)
    assert big < 8 * small * 2.5 + 0.5, (small, big)  # 8x the members: ~8x the time, not 64x


# --- Telegram HTML ------------------------------------------------------------------------------

def _html_page(bodies: list[str]) -> str:
    msgs = "".join(
        f'<div class="message default clearfix" id="message{i}"><div class="body">'
        f'<div class="pull_right date details" title="21.09.2022 10:{i:02d}:00 UTC+03:00">10:00'
        f'</div><div class="from_name">Автор</div><div class="text">{b}</div></div></div>\n'
        for i, b in enumerate(bodies, start=1))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"/></head><body>'
            '<div class="page_wrap"><div class="page_header"><div class="content"><div '
            'class="text bold">Канал</div></div></div><div class="page_body chat_page">'
            f'<div class="history">{msgs}</div></div></div></body></html>')


def test_cp1251_html_page_is_read_exactly_never_stored_as_mojibake(
        project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    page = folder / "messages.html"
    page.write_bytes(_html_page([f"Привет номер {i}" for i in range(32)]).encode("cp1251"))
    (src,) = project.ingest([folder]).sources  # detected: cp1251 (the page says utf-8)
    assert src.status == "complete" and src.stored == 32, src.error
    texts = [t for (t,) in project.store.con.execute(
        "SELECT text FROM messages ORDER BY source_pos").fetchall()]
    assert texts == [f"Привет номер {i}" for i in range(32)]
    # asked to read it again in an encoding: the answer says how (forget, then ingest)
    (src,) = project.ingest([folder], encoding="cp1251").sources
    assert src.status == "unchanged" and "chatlens forget --source" in (src.error or "")


def test_deeply_nested_html_text_is_quarantined_not_stored_empty(
        project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    deep = "<b>" * 5000 + "глубоко" + "</b>" * 5000
    (folder / "messages.html").write_text(_html_page(["ok", deep, "<b>" * 300 + "ok3"]), "utf-8")
    (src,) = project.ingest([folder]).sources
    assert (src.read, src.stored, src.quarantined) == (3, 2, 1)
    assert "nested" in quarantine(project)[0][1]
    texts = {t for (t,) in project.store.con.execute("SELECT text FROM messages").fetchall()}
    assert texts == {"ok", "ok3"}


# --- bounded whole-file readers -----------------------------------------------------------------

def test_whatsapp_file_beyond_the_size_bound_is_a_clear_error(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chatlens.ingest.whatsapp as wa

    monkeypatch.setattr(wa, "MAX_FILE", 1 << 16)
    p = tmp_path / "WhatsApp Chat with X.txt"
    with p.open("wb") as fh:
        fh.write(WA_LINES.encode())
        fh.truncate(1 << 20)  # sparse
    src = ingest_one(project, p, "whatsapp")
    assert src.status == "failed" and "larger than" in (src.error or "")


# --- generic tables -----------------------------------------------------------------------------

def test_csv_delimiter_detection_is_linear_on_a_quote_comma_run(
        project: Project, tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text('"a,' * 21_000, encoding="utf-8")  # 63 KB: took 255 s in csv.Sniffer
    t0 = time.monotonic()
    ingest_one(project, p, "csv")
    assert time.monotonic() - t0 < 10


def test_json_array_table_with_a_deep_item_loses_only_that_item(
        project: Project, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    items = [{"text": "one"}, "DEEP", {"text": "three"}]
    p.write_bytes(orjson.dumps(items).replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000))
    src = ingest_one(project, p, "jsonl")
    assert (src.read, src.stored, src.quarantined) == (3, 2, 1)


def test_jsonl_line_beyond_the_record_bound_is_quarantined(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chatlens.ingest.generic as generic

    monkeypatch.setattr(generic, "MAX_RECORD", 1 << 14)
    monkeypatch.setattr(generic, "CHUNK", 1 << 12)
    p = tmp_path / "t.jsonl"
    p.write_bytes(b'{"text": "a"}\n{"text": "' + b"x" * (1 << 16) + b'"}\n{"text": "c"}\n')
    src = ingest_one(project, p)
    assert (src.read, src.stored, src.quarantined) == (3, 2, 1)


# --- label files --------------------------------------------------------------------------------

def _ls_task(i: int, **ann: Any) -> dict[str, Any]:
    result = [{"from_name": "m", "to_name": "text", "type": "choices",
               "value": {"choices": ["yes"]}}]
    return {"id": i, "data": {"uid": f"u{i}"},
            "annotations": [{"completed_by": {"email": "a@x"}, "created_at":
                             "2024-01-01T00:00:00Z", "result": result, **ann}]}


def test_label_studio_bad_tasks_are_per_task_problems_not_a_rejected_file(tmp_path: Path) -> None:
    from chatlens.annotate import read_labels

    span = {"from_name": "m", "to_name": "text", "type": "labels"}
    tasks: list[Any] = [
        _ls_task(1),
        {"id": 2, "data": {"uid": "u2"}, "annotations": True},
        _ls_task(3, created_at=5),
        _ls_task(4, result=[{"type": "textarea", "from_name": "comment",
                             "value": ["a", "list"]}, _ls_task(0)["annotations"][0]["result"][0]]),
        _ls_task(5, result=[{**span, "value": {"start": 0, "end": 10**30, "labels": ["yes"]}}]),
        _ls_task(6, created_at="0001-01-01T00:00:00+05:00"),
        _ls_task(7, completed_by={"email": "SURROGATE"}),
        "DEEP",
        _ls_task(9, result=[{**span, "value": {"start": 0, "end": "INF", "labels": ["yes"]}}]),
        _ls_task(10),
    ]
    text = json.dumps(tasks).replace('"SURROGATE"', '"\\ud800"')
    text = text.replace('"DEEP"', "[" * 100_000 + "]" * 100_000)
    text = text.replace('"INF"', "Infinity")
    p = tmp_path / "ls.json"
    p.write_text(text, encoding="utf-8")
    records, problems = read_labels(p, "x", "m")
    assert {r.uid for r in records} == {"u1", "u4", "u10"}
    assert len(problems) == 7, [str(q) for q in problems]
    assert all(str(q) for q in problems)


def test_jsonl_and_csv_label_rows_with_odd_values_are_row_problems(tmp_path: Path) -> None:
    from chatlens.annotate import read_labels

    good = {"uid": "u1", "measure": "m", "value": "yes"}
    lines = [json.dumps(good), json.dumps({**good, "created": 5}),
             json.dumps({**good, "span": [0, "x" * 30]}), '{"uid": "\\ud800", "value": "yes"}',
             json.dumps({**good, "span": [0, 1e300]}),
             json.dumps({**good, "created": "9999-12-31T23:59:59-05:00"}),
             "[" * 100_000 + "]" * 100_000, json.dumps({**good, "uid": "u2"})]
    p = tmp_path / "l.jsonl"
    p.write_text("\n".join(lines), encoding="utf-8")
    records, problems = read_labels(p, "x")
    assert [r.uid for r in records] == ["u1", "u2"]
    assert len(problems) == 6, [str(q) for q in problems]
    c = tmp_path / "l.csv"
    c.write_text("uid,measure,value,created,span\nu1,m,yes,9999-12-31T23:59:59-05:00,\n"
                 "u2,m,yes,,0:99999999999999999999999\nu3,m,yes,,1:2\n", encoding="utf-8")
    records, problems = read_labels(c, "x")
    assert [r.uid for r in records] == ["u3"] and len(problems) == 2


def test_label_import_run_twice_stores_each_row_once(project: Project, tmp_path: Path) -> None:
    from tests.helpers import telegram_export

    project.ingest([telegram_export(tmp_path / "a.json", [f"text {i}" for i in range(20)])])
    project.code("builtin:exodus-2022")
    uids = [u for (u,) in project.store.con.execute("SELECT uid FROM messages").fetchall()]
    p = tmp_path / "l.csv"
    p.write_text("uid,measure,value\n" + "".join(f"{u},border_crossing,yes\n" for u in uids),
                 encoding="utf-8")  # no created column: each run would stamp a new time
    first = project.import_labels(p, "ann")
    again = project.import_labels(p, "ann")  # e.g. rerun after a kill that followed the commit
    assert (first.stored, again.stored, again.already) == (20, 0, 20)
    n = project.labels().con.execute("SELECT count(*) FROM labels").fetchone()
    assert n == (20,)
    other = project.import_labels(p, "other-annotator")  # another coder: a different import
    assert other.stored == 20


# --- report --pdf ---------------------------------------------------------------------------------

def test_pdf_printing_launches_chromium_with_networking_disabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from chatlens.report import build

    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        Path(next(a for a in cmd if a.startswith("--print-to-pdf="))
             .split("=", 1)[1]).write_bytes(b"%PDF")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(build, "find_chromium", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(build.subprocess, "run", fake_run)
    html = tmp_path / "r.html"
    html.write_text("<p>x</p>", encoding="utf-8")
    build.print_pdf(html, tmp_path / "r.pdf")
    (cmd,) = seen
    assert "--host-resolver-rules=MAP * ~NOTFOUND" in cmd
    assert any(a.startswith("--proxy-server=") for a in cmd)
    assert "--proxy-bypass-list=<-loopback>" in cmd
    assert "--disable-background-networking" in cmd and "--dns-prefetch-disable" in cmd
    assert cmd[-1].startswith("file://")


# --- fuzzing (small budget; bench/fuzz.py runs the big one) ---------------------------------------

_SEEDS: dict[str, bytes] = {
    "telegram-json": json.dumps(_export([_msg(1), _msg(2, [{"type": "bold", "text": "b"}])]),
                                indent=1).encode(),
    "detect": orjson.dumps(_export([_msg(1), _msg(2)])),
    "telegram-html": _html_page(["один", "<b>два</b>"]).encode(),
    "whatsapp": WA_LINES.encode(),
    "zip": WA_LINES.encode(),
    "csv": "text,date,author\nПривет,2022-09-21T10:00:00,a\n\"x, \"\"y\"\"\",5,b\n".encode(),
    "jsonl": b'{"text": "a", "ts": 1663754400}\n{"text": "b", "author": "x"}\n',
    "labels-jsonl": b'{"uid": "u1", "measure": "m", "value": "yes", "span": [0, 2]}\n',
    "labels-labelstudio": json.dumps([_ls_task(1), _ls_task(2)]).encode(),
    "codebook": b"name: x\nversion: 1\nlanguages: [ru]\nmeasures:\n  - id: m\n    question: q?\n"
                b"    labels: [yes, no]\n    lexicon: {ru: [a]}\n",
}


@pytest.mark.parametrize("target", sorted(_SEEDS))
def test_mutated_inputs_give_records_or_chatlens_errors(target: str, tmp_path: Path) -> None:
    import random

    from tests.fuzzing import check, mutate

    rng = random.Random(target)
    pool = list(_SEEDS.values())
    for i in range(40):
        data = _SEEDS[target] if i == 0 else mutate(_SEEDS[target], rng, pool)
        res = check(target, data, tmp_path)
        assert res.kind != "crash", (res.detail, data[:300])
        assert res.seconds < 5, (res.seconds, data[:300])
