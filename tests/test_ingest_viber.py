"""Viber Desktop viber.db: a small database built here with the schema of FORMATS.md §4.1."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatlens import ChatlensError, Project
from chatlens.errors import InputError
from chatlens.ingest.base import Member, ParseOptions, SourceInput
from chatlens.ingest.viber import ViberDesktop, ts_us

SCHEMA = """
CREATE TABLE Events (EventID INTEGER PRIMARY KEY, TimeStamp INTEGER, ContactID INTEGER,
                     ChatID INTEGER, Direction INTEGER);
CREATE TABLE Messages (EventID INTEGER PRIMARY KEY, Type INTEGER, Subject TEXT, Body TEXT,
                       Info TEXT, Duration INTEGER, StickerID INTEGER, ClientFlag INTEGER);
CREATE TABLE Contact (ContactID INTEGER PRIMARY KEY, Name TEXT, ClientName TEXT, Number TEXT);
CREATE TABLE ChatInfo (ChatID INTEGER PRIMARY KEY, Name TEXT, PGTags TEXT);
CREATE TABLE ChatRelation (ChatID INTEGER, ContactID INTEGER, PGRole INTEGER);
"""
T0 = 1_700_000_000_000  # ms: 2023-11-14 22:13:20 UTC
CONTACTS = [(1, "Me Owner", None, "+100"), (2, "Alice", None, "+200"),
            (3, None, "Bob C", "+300"), (4, None, None, "+380501112233")]
CHATS = [(10, "Family", None), (20, None, None), (30, None, None)]
RELATIONS = [(10, 1, 0), (10, 2, 2), (10, 3, 0), (10, 4, 0), (20, 1, 0), (20, 2, 0),
             (30, 1, 0), (30, 3, 0)]
# EventID, TimeStamp, ContactID, ChatID, Direction, Type, Body, Info, ClientFlag
ROWS: list[tuple[Any, ...]] = [
    (1, T0, 2, 10, 0, 1, "Hello family", None, 0),
    (2, T0 + 1000, 1, 10, 1, 1, "Hi all", None, 0),
    (3, T0 + 2000, 3, 10, 0, 2, None, '{"fileInfo": {"FileName": "a.jpg"}}', 0),
    (4, T0 + 3000, 4, 10, 0, 6, None, '{"fileInfo": {"Duration": 3000}}', 0),
    (5, T0 + 4000, 2, 20, 0, 4, None, None, 0),
    (6, T0 + 5000, 2, 20, 1, 9, "https://example.org", '{"Title": "Example"}', 0),
    (7, T0 + 6000, 3, 30, 0, 15, "edited text", None, 64),
    (8, T0 + 7000, 3, 30, 0, 7, None, "not json", 0),
    (9, 1_700_000_500, 3, 30, 0, 11, None, None, 0),  # seconds, not ms
    (10, "garbage", 3, 30, 0, 1, "broken time", None, 0),
    (12, T0 + 9000, 2, 10, 0, 3, "a video", None, 0),
]


def make_db(path: Path, rows: list[tuple[Any, ...]] = ROWS) -> Path:
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.executemany("INSERT INTO Contact VALUES (?, ?, ?, ?)", CONTACTS)
    con.executemany("INSERT INTO ChatInfo VALUES (?, ?, ?)", CHATS)
    con.executemany("INSERT INTO ChatRelation VALUES (?, ?, ?)", RELATIONS)
    for eid, ts, contact, chat, direction, mtype, body, info, flag in rows:
        con.execute("INSERT INTO Events VALUES (?, ?, ?, ?, ?)",
                    [eid, ts, contact, chat, direction])
        con.execute("INSERT INTO Messages VALUES (?, ?, NULL, ?, ?, NULL, NULL, ?)",
                    [eid, mtype, body, info, flag])
    con.execute("INSERT INTO Messages VALUES (11, 1, NULL, 'orphan', NULL, NULL, NULL, 0)")
    con.execute("INSERT INTO Events VALUES (13, ?, 2, 20, 0)", [T0 + 10_000])  # a call
    con.commit()
    con.close()
    return path


@pytest.fixture
def viber_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "viber.db")


def _messages(project: Project) -> dict[str, dict[str, Any]]:
    cur = project.store.con.execute(
        "SELECT message_id, chat_key, epoch_us(ts) AS ts_us, ts_naive, author_key, text, kind, "
        "media, edited, source_loc FROM messages")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_ingest_viber_db(project: Project, viber_db: Path) -> None:
    report = project.ingest([viber_db])
    src = report.sources[0]
    assert src.status == "complete", src.error
    assert src.format == "viber"
    assert "sniffed as viber" in (src.detection or "")
    assert (src.read, src.stored, src.duplicate, src.quarantined) == (12, 10, 0, 2)
    assert src.read == src.stored + src.duplicate + src.quarantined

    msgs = _messages(project)
    assert set(msgs) == {"1", "2", "3", "4", "5", "6", "7", "8", "9", "12"}
    assert msgs["1"]["ts_us"] == T0 * 1000
    assert msgs["9"]["ts_us"] == 1_700_000_500 * 1_000_000  # seconds detected
    assert not msgs["1"]["ts_naive"]
    kinds = {k: (m["kind"], m["media"]) for k, m in msgs.items()}
    assert kinds == {
        "1": ("message", None), "2": ("message", None), "3": ("media", "image"),
        "4": ("media", "voice"), "5": ("media", "sticker"), "6": ("message", None),
        "7": ("message", None), "8": ("media", "instant_video"), "9": ("media", "audio"),
        "12": ("media", "video"),
    }
    assert msgs["6"]["text"] == "https://example.org"
    assert msgs["12"]["text"] == "a video"
    assert msgs["7"]["edited"] is True and msgs["1"]["edited"] is False
    # the owner: outgoing messages and ContactID 1 are one author, whatever ContactID says
    assert msgs["2"]["author_key"] == msgs["6"]["author_key"]
    assert msgs["1"]["author_key"] == msgs["5"]["author_key"] == msgs["12"]["author_key"]
    assert msgs["1"]["author_key"] != msgs["2"]["author_key"]
    assert msgs["3"]["source_loc"] == "viber.db: EventID 3"

    chats = dict(((k, (t, ty)) for k, t, ty in project.store.con.execute(
        "SELECT chat_key, title, chat_type FROM chats").fetchall()))
    assert chats == {"viber:10": ("Family", "group"), "viber:20": ("Alice", "personal"),
                     "viber:30": ("Bob C", "personal")}
    ids = dict(project.store.con.execute("SELECT raw_id, display_name FROM identities").fetchall())
    assert ids == {"contact:1": "Me Owner", "contact:2": "Alice", "contact:3": "Bob C",
                   "contact:4": "+380501112233"}

    bad = dict(project.store.con.execute(
        "SELECT source_loc, reason FROM quarantine ORDER BY source_pos").fetchall())
    assert set(bad) == {"viber.db: EventID 10", "viber.db: EventID 11"}
    assert "TimeStamp" in bad["viber.db: EventID 10"]
    assert "Events" in bad["viber.db: EventID 11"]
    con = project.store.con.cursor()
    con.register("originals", project.store.originals())
    raw = con.execute(
        "SELECT raw FROM originals o JOIN messages m USING (source_id, source_pos) "
        "WHERE m.message_id = '3'").fetchall()[0][0]
    assert '"FileName":"a.jpg"' in raw and '"ContactName"' in raw


def test_reingest_is_unchanged_and_zip_member_reads_the_same(project: Project, viber_db: Path,
                                                             tmp_path: Path) -> None:
    assert project.ingest([viber_db]).sources[0].status == "complete"
    assert project.ingest([viber_db]).sources[0].status == "unchanged"
    archive = tmp_path / "backup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(viber_db, "ViberPC/123/viber.db")
    with Project.init(tmp_path / "other") as other:
        src = other.ingest([archive]).sources[0]
        assert src.status == "complete", src.error
        assert src.format == "viber"
        assert (src.read, src.stored, src.quarantined) == (12, 10, 2)


def test_missing_tables_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE Events (EventID INTEGER, TimeStamp INTEGER, ChatID INTEGER)")
    con.commit()
    con.close()
    assert ViberDesktop().sniff(_source(db)) == pytest.approx(0.3)
    with pytest.raises(InputError, match="Messages missing"):
        list(ViberDesktop().parse(_source(db), ParseOptions()))
    src = project.ingest([db], format="viber").sources[0]
    assert src.status == "failed" and "Messages" in (src.error or "")
    assert project.ingest([db]).sources[0].status == "failed"  # not sniffed as viber


def test_timestamp_units() -> None:
    assert ts_us(1_700_000_000_000) == 1_700_000_000_000_000
    assert ts_us(1_700_000_000) == 1_700_000_000_000_000
    assert ts_us(1_700_000_000_000_000) == 1_700_000_000_000_000
    assert ts_us("1700000000000") == 1_700_000_000_000_000
    for bad in (None, "x", -5, 0, 10**20, float("nan")):
        with pytest.raises(ValueError):
            ts_us(bad)


def _source(path: Path) -> SourceInput:
    return SourceInput(path=str(path), members=[Member(
        path.name, path.stat().st_size, lambda: path.open("rb"))])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096), st.booleans())
def test_arbitrary_bytes_raise_only_chatlens_errors(data: bytes, magic: bool) -> None:
    if magic:
        data = b"SQLite format 3\0" + data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "viber.db"
        path.write_bytes(data)
        imp = ViberDesktop()
        assert 0.0 <= imp.sniff(_source(path)) <= 1.0
        with contextlib.suppress(ChatlensError):
            list(imp.parse(_source(path), ParseOptions()))


def test_damaged_database_pages(tmp_path: Path) -> None:
    """A database with a corrupted tail: only chatlens errors or Bad records, never a crash."""
    db = make_db(tmp_path / "viber.db", ROWS + [
        (100 + i, T0 + i, 2, 10, 0, 1, "x" * 500, None, 0) for i in range(200)])
    data = bytearray(db.read_bytes())
    data[len(data) // 2:] = b"\xff" * (len(data) - len(data) // 2)
    db.write_bytes(bytes(data))
    try:
        items = list(ViberDesktop().parse(_source(db), ParseOptions()))
    except ChatlensError:
        return
    assert items
