"""WhatsApp .txt importer: fixtures through the real pipeline, properties, and real exports.

The fixtures in ``fixtures/whatsapp`` are synthetic and hand-written (names and texts invented).
Some hold invisible characters on purpose (U+200E, U+202F, U+00A0, a BOM); view them with
``cat -A`` before editing.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chatlens import Project
from chatlens.errors import ChatlensError, EncodingError, InputError
from chatlens.ingest.base import Bad, Member, ParseOptions, Record, SourceInput
from chatlens.ingest.pipeline import SourceReport
from chatlens.ingest.whatsapp import WhatsAppText, chat_for, clean, infer_date_order, match_header

WA = "whatsapp"


def _ingest(project: Project, path: Path, **kw: Any) -> SourceReport:
    report = project.ingest([path], **kw)
    assert len(report.sources) == 1
    src = report.sources[0]
    assert src.read == src.stored + src.duplicate + src.quarantined
    return src


def _rows(project: Project, where: str = "TRUE") -> list[dict[str, Any]]:
    con = project.store.con.cursor()
    con.register("originals", project.store.originals())
    cur = con.execute(
        "SELECT strftime(m.ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS ts, m.text, m.kind, "
        "m.media, m.edited, m.ts_naive, i.raw_id AS author, m.chat_key, m.source_loc, o.raw "
        "FROM messages m LEFT JOIN identities i USING (author_key) "
        "LEFT JOIN originals o ON o.source_id = m.source_id AND o.source_pos = m.source_pos "
        f"WHERE {where} ORDER BY m.source_id, m.source_pos"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _member(data: bytes, name: str = "chat.txt") -> SourceInput:
    return SourceInput(path=name, members=[Member(name, len(data), lambda: io.BytesIO(data))])


def _parse(data: bytes, name: str = "chat.txt", **kw: Any) -> list[Record | Bad]:
    return list(WhatsAppText().parse(_member(data, name), ParseOptions(**kw)))


# --- fixtures through the pipeline -------------------------------------------------------------


def test_android_24h(project: Project, fixtures: Path) -> None:
    src = _ingest(project, fixtures / WA / "WhatsApp Chat with Anna Smith.txt")
    assert (src.status, src.format, src.read, src.stored, src.quarantined) == (
        "complete", "whatsapp", 11, 11, 0)
    rows = _rows(project)
    assert {r["chat_key"] for r in rows} == {"whatsapp:anna smith"}
    title = project.store.con.execute("SELECT title FROM chats").fetchone()
    assert title == ("Anna Smith",)
    got = [(r["ts"], r["author"], r["kind"], r["media"], r["text"]) for r in rows]
    assert got[0][:3] == ("2019-01-20 11:23:00", None, "service")
    assert got[1] == ("2019-01-20 11:23:00", "Anna Smith", "message", None, "Hi Carl!")
    assert got[2] == ("2019-01-20 11:24:00", "Carl", "message", None, "Hello Anna: how are you?")
    assert got[3][4] == "Fine, thanks.\nHere is the list:\n- milk\n- eggs\n\nsee you"
    assert got[4] == ("2019-01-20 11:30:00", "Anna Smith", "media", "media", "")
    assert got[5] == ("2019-01-20 11:31:00", "Carl", "media", "photo", "Look at this")
    assert [g[2] for g in got[6:8]] == ["service", "service"]  # deleted placeholders
    assert got[8][2:] == ("message", None, "See you at 5") and rows[8]["edited"] is True
    assert rows[7]["edited"] is None
    assert got[9][1:3] == (None, "service")  # a quoted ": " does not make a sender
    assert got[10] == ("2019-01-22 23:59:00", "Dora", "media", "location",
                       "location: https://maps.google.com/?q=52.5,13.4")
    assert all(r["ts_naive"] for r in rows)
    assert rows[3]["raw"].count("\n") == 5 and rows[3]["raw"].startswith("20/01/2019, 11:25 - ")
    assert rows[3]["source_loc"] == "WhatsApp Chat with Anna Smith.txt: line 4"
    assert src.service == 4


def test_android_12h_us_narrow_nbsp(project: Project, fixtures: Path) -> None:
    src = _ingest(project, fixtures / WA / "WhatsApp Chat with Bob.txt")
    assert src.stored == 4
    rows = _rows(project)
    assert [(r["ts"], r["author"]) for r in rows] == [
        ("2018-03-06 13:55:00", "Bob"), ("2018-03-06 14:01:00", "Me"),
        ("2018-12-25 00:05:00", "Bob"), ("2018-12-25 12:30:00", "Me"),
    ]


@pytest.mark.parametrize("name", ["ios_chat.txt", "WhatsApp Chat - Book Club.zip"])
def test_ios_and_zip(project: Project, fixtures: Path, name: str) -> None:
    src = _ingest(project, fixtures / WA / name)
    assert (src.status, src.read, src.stored) == ("complete", 9, 9)
    rows = _rows(project)
    chat = "whatsapp:book club" if name.endswith(".zip") else "whatsapp:ios_chat"
    assert {r["chat_key"] for r in rows} == {chat}
    got = [(r["ts"], r["author"], r["kind"], r["media"], r["text"]) for r in rows]
    assert got[0][1:3] == ("Book Club", "service")  # iOS system note: group name + U+200E
    assert got[1] == ("2017-03-06 00:45:12", "Book Club", "service", None,
                      "Eve created this group")
    assert got[2] == ("2017-03-06 00:46:01", "Eve", "message", None, "Welcome everyone")
    assert got[3] == ("2017-03-06 00:47:30", "Frank", "media", "photo", "")
    assert got[4] == ("2017-03-06 00:48:00", "Frank", "message", None,
                      "Thanks!\nAnd a second line")
    assert got[5][2:4] == ("media", "photo")
    assert got[6][2:4] == ("media", "document")
    assert got[7][2] == "service" and got[7][4] == "This message was deleted."
    assert got[8] == ("2017-03-13 20:00:00", "Eve", "message", None, "Meeting moved to Friday")
    assert rows[8]["edited"] is True
    assert rows[3]["raw"] == "\u200e[06/03/2017, 00:47:30] ~\u202fFrank: \u200eimage omitted"
    if name.endswith(".zip"):
        assert rows[0]["source_loc"] == "WhatsApp Chat - Book Club.zip!_chat.txt: line 1"


@pytest.mark.parametrize(("name", "expected"), [
    ("year_first.txt", ["2019-01-20 11:23:00", "2019-01-20 11:24:00", "2018-06-13 21:25:15"]),
    ("dotted_de.txt", ["2018-06-13 21:25:00", "2018-06-13 21:26:00", "2018-06-14 07:00:00",
                       "2018-06-14 07:01:00"]),
    ("dotted_fi.txt", ["2018-06-13 21:25:15", "2018-06-13 21:26:00"]),
    ("spanish_pm.txt", ["2018-06-23 13:55:00", "2018-06-23 11:05:00"]),
    ("ambiguous_dmy.txt", [f"2021-02-0{d} 09:00:00" for d in range(1, 5)]),
    ("ambiguous_mdy.txt", [f"2021-02-0{d} 09:00:00" for d in range(1, 5)]),
])
def test_date_formats(project: Project, fixtures: Path, name: str, expected: list[str]) -> None:
    src = _ingest(project, fixtures / WA / name)
    assert src.status == "complete" and src.quarantined == 0
    assert [r["ts"] for r in _rows(project)] == expected


def test_german_markers(project: Project, fixtures: Path) -> None:
    _ingest(project, fixtures / WA / "dotted_de.txt")
    rows = _rows(project)
    assert [(r["kind"], r["media"], r["edited"]) for r in rows] == [
        ("message", None, None), ("media", "media", None), ("service", None, None),
        ("message", None, True)]
    assert rows[3]["text"] == "Bis morgen"


def test_date_order_option_only_breaks_ties(project: Project, fixtures: Path) -> None:
    _ingest(project, fixtures / WA / "ambiguous_dmy.txt", date_order="mdy")
    assert [r["ts"] for r in _rows(project)][:2] == ["2021-01-02 09:00:00", "2021-02-02 09:00:00"]
    # a component > 12 is proof and wins over the option
    _ingest(project, fixtures / WA / "dotted_de.txt", date_order="mdy")
    assert _rows(project, "m.text = 'Hallo zusammen'")[0]["ts"] == "2018-06-13 21:25:00"


def test_bom_and_crlf(project: Project, fixtures: Path) -> None:
    src = _ingest(project, fixtures / WA / "bom_crlf.txt")
    assert src.stored == 2
    rows = _rows(project)
    assert rows[0]["text"] == "first line\nsecond line"
    assert rows[0]["author"] == "Quinn"
    assert rows[0]["raw"] == "05/05/2020, 10:00 - Quinn: first line\r\nsecond line\r"


def test_a_file_resaved_in_a_code_page_is_read_exactly_or_refused_with_position(
        project: Project, fixtures: Path) -> None:
    path = fixtures / WA / "bad_utf8.txt"  # "café" in latin-1: one letter decides, cp1252
    src = project.ingest([path], format="whatsapp").sources[0]
    assert src.status == "complete", src.error
    texts = [t for (t,) in project.store.con.execute(
        "SELECT text FROM messages ORDER BY source_pos").fetchall()]
    assert texts == ["café au lait", "ok"]
    # one Cyrillic letter: cp1251 reads "Э", mac-cyrillic "ё": refused, never guessed
    data = "05/05/2020, 10:00 - Quinn: Э\n".encode("cp1251")
    with pytest.raises(EncodingError, match=r"byte 27.*cp1251 reads.*--encoding") as info:
        _parse(data, "bad.txt")
    assert "chatlens forget --source" in str(info.value)
    assert [r.text for r in _parse(data, "bad.txt", encoding="cp1251")] == ["Э"]


def test_preamble_is_quarantined(project: Project, fixtures: Path) -> None:
    src = _ingest(project, fixtures / WA / "preamble.txt", format="whatsapp")
    assert (src.read, src.stored, src.quarantined) == (3, 1, 2)
    reasons = project.store.con.execute("SELECT source_loc, excerpt FROM quarantine "
                                        "ORDER BY source_pos").fetchall()
    assert reasons == [("preamble.txt: line 1", "This line is not a message"),
                       ("preamble.txt: line 2", "Neither is this one")]


def test_not_whatsapp(project: Project, fixtures: Path) -> None:
    path = fixtures / WA / "not_whatsapp.txt"
    assert WhatsAppText().sniff(_member(path.read_bytes())) == 0.0
    src = project.ingest([path], format="whatsapp").sources[0]
    assert src.status == "failed" and "not a WhatsApp export" in (src.error or "")
    with pytest.raises(InputError):
        _parse(path.read_bytes())
    assert _parse(b"") == [] and _parse(b"\xef\xbb\xbf\n\n") == []


def test_names_with_colons(project: Project, fixtures: Path) -> None:
    _ingest(project, fixtures / WA / "colon_names.txt")
    assert [(r["author"], r["text"]) for r in _rows(project)] == [
        ("Dr: Who", "hello"), ("Dr: Who", "bye: for now"),
        ("Sam", "Note: the name is Sam"), ("Sam", "plain")]


def test_overlapping_exports_dedupe(project: Project, fixtures: Path) -> None:
    first = _ingest(project, fixtures / WA / "WhatsApp Chat with Overlap.txt")
    assert (first.stored, first.duplicate) == (5, 0)
    second = _ingest(project, fixtures / WA / "WhatsApp Chat with Overlap (1).txt")
    assert (second.read, second.stored, second.duplicate) == (6, 2, 4)
    texts = [r["text"] for r in _rows(project)]
    assert sorted(texts) == sorted(["one", "two", "two", "three", "four", "five", "six"])
    assert project.store.con.execute("SELECT count(*) FROM chats").fetchone() == (1,)


def test_time_zone_applies_to_naive_times(project: Project, fixtures: Path) -> None:
    _ingest(project, fixtures / WA / "WhatsApp Chat with Bob.txt", tz="Europe/Berlin")
    assert _rows(project)[0]["ts"] == "2018-03-06 12:55:00"


def test_sniff_and_detection(project: Project, fixtures: Path) -> None:
    imp = WhatsAppText()
    for path in (fixtures / WA).glob("*.txt"):
        score = imp.sniff(_member(path.read_bytes(), path.name))
        # bad_utf8.txt is a WhatsApp file re-saved in a code page: its encoding is decided
        # when it is read, not by sniffing
        if path.name in ("not_whatsapp.txt", "preamble.txt"):
            assert score < 0.5, path.name
        else:
            assert score >= 0.5, path.name
    assert imp.sniff(_member(b"\x00\x01\x02PK\x03\x04")) == 0.0
    assert imp.sniff(_member(b'{"messages": []}')) == 0.0


def test_chat_names() -> None:
    opts = ParseOptions()
    assert chat_for("WhatsApp Chat with Anna Smith.txt", opts).chat_id == "anna smith"
    assert chat_for("WhatsApp Chat with Anna  Smith (2).txt", opts).chat_id == "anna smith"
    assert chat_for("WhatsApp Chat - Book Club.zip!_chat.txt", opts).title == "Book Club"
    assert chat_for("export.zip!folder/notes.txt", opts).chat_id == "notes"
    assert chat_for("x.txt", ParseOptions(chat="Family")).chat_id == "family"


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([
        b"20/01/2019, 11:23 - A: x", b"[1/2/3, 4:05:06] B: y", b"\xe2\x80\x8e", b"31/31/31, 9:9 - ",
        b"0/0/0, 99:99 - A: b", b"2019/13/45, 11:23 - C: z", b"\r", b"\n", b"\xff", b"\xef\xbb\xbf",
        b"12.13.14 klo 25.61.61 - D: w", b"<Media omitted>", b"x: y",
        b"\xd9\xa1/\xd9\xa2/20, 1:00 - ",
    ]), max_size=30).map(b"".join),
), st.sampled_from([None, "dmy", "mdy", "ymd"]))
def test_arbitrary_bytes_only_raise_chatlens_errors(data: bytes, order: str | None) -> None:
    imp = WhatsAppText()
    assert 0.0 <= imp.sniff(_member(data)) <= 1.0
    try:
        items = _parse(data, date_order=order)
    except ChatlensError:
        return
    for item in items:
        assert isinstance(item, Record | Bad)


_NAME = st.text(st.characters(categories=["L"]) | st.just(" "), min_size=1, max_size=15).map(
    str.strip).filter(bool)
_LINE = st.text(st.characters(categories=["L", "So"]) | st.sampled_from(list(" ,.!?:;'\"-[]")),
                max_size=30)
_TEXT = st.lists(_LINE, min_size=1, max_size=4).map("\n".join)
_WHEN = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59))


def _render(style: str, author: str, when: datetime, text: str) -> str:
    if style == "android24":
        head = f"{when:%d/%m/%Y, %H:%M} - "
    elif style == "android12":
        hour = when.hour % 12 or 12
        head = f"{when.month}/{when.day}/{when:%y}, {hour}:{when:%M}\u202f{when:%p} - "
    else:
        head = f"[{when:%d/%m/%Y, %H:%M:%S}] "
    return f"{head}{author}: {text}"


def _ambiguous_sender(messages: list[tuple[str, datetime, str]]) -> bool:
    """True where the documented name-with-colon rule would (rightly) read a longer name."""
    by_author: dict[str, list[str]] = {}
    for author, _, text in messages:
        by_author.setdefault(author, []).append(text.split("\n", 1)[0])
    for firsts in by_author.values():
        prefixes = {f.split(": ", 1)[0] if ": " in f else None for f in firsts}
        if len(firsts) >= 2 and None not in prefixes and len(prefixes) == 1:
            return True
    return False


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_NAME, _WHEN, _TEXT), min_size=1, max_size=12),
       st.sampled_from(["android24", "android12", "ios"]))
def test_round_trip(messages: list[tuple[str, datetime, str]], style: str) -> None:
    assume(not _ambiguous_sender(messages))
    assume(all(not t.rstrip().endswith("omitted") and not t.startswith(("This message",
               "You deleted")) for _, _, t in messages))
    seconds = style == "ios"
    messages = [(a, w.replace(microsecond=0, second=w.second if seconds else 0), t)
                for a, w, t in messages]
    data = "".join(_render(style, *m) + "\n" for m in messages).encode()
    order = "mdy" if style == "android12" else "dmy"
    items = _parse(data, date_order=order)
    assert all(isinstance(i, Record) for i in items)
    epoch = datetime(1970, 1, 1)
    got = [(i.author_id, epoch + timedelta(microseconds=i.ts_us or 0), i.text, i.kind)
           for i in items if isinstance(i, Record)]
    assert got == [(a, w, t, "message") for a, w, t in messages]


# --- real exports (../shared/data/whatsapp) ----------------------------------------------------

_SIMPLE_HEADER = re.compile(r"^\u200e?\[?\d{1,2}/\d{1,2}/\d{2,4}, \d{1,2}:\d{2}(:\d{2})?"
                            r"(\s[AP]M)?(\] | - )")
REAL = {
    "ios_en_sw_group__chat.txt": ("dmy", "Member 03", "2023-02-07 12:52:05",
                                  "Hello, does anyone know of a good place i can buy an "
                                  "affordable bike"),
    "android24h_he_family_group.txt": ("dmy", "Member 01", "2020-08-13 08:19:00", None),
    "android12h_en_hrjobs_group.txt": ("mdy", "Member 01", "2019-12-16 14:46:00",
                                       "Looking for prospects in qatar"),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_exports(project: Project, shared_data: Path, name: str) -> None:
    path = shared_data / "whatsapp" / name
    if not path.exists():
        pytest.skip(f"{name} is not in the shared data")
    text = path.read_text(encoding="utf-8")
    expected = sum(1 for line in text.split("\n") if _SIMPLE_HEADER.match(line))
    src = _ingest(project, path)
    assert src.status == "complete" and src.format == "whatsapp", src.error
    assert src.stored + src.duplicate + src.quarantined == expected
    assert src.quarantined == 0
    order, author, ts, body = REAL[name]
    heads = [h for h in (match_header(clean(x)) for x in text.split("\n")) if h]
    assert infer_date_order(heads, None)[0] == order
    rows = _rows(project, f"i.raw_id = '{author}'")
    assert rows and rows[0]["ts"] == ts
    if body is not None:
        assert rows[0]["text"] == body
    else:  # the Hebrew export's first message is a three-line list
        assert rows[0]["text"].count("\n") == 2
    assert not any("\u200e" in (r["author"] or "") for r in _rows(project))
