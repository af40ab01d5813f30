"""Telegram Desktop HTML importer: hand-written pages, properties, and the real public exports."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatlens import Project
from chatlens.errors import ChatlensError, InputError
from chatlens.ingest.base import Bad, Member, ParseOptions, Record, SourceInput
from chatlens.ingest.telegram_html import TelegramHtml, parse_date, split_messages

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "telegram_html"


def us(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    """Microseconds since the epoch of a UTC wall-clock time."""
    return (datetime(y, mo, d, h, mi, s, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // (
        timedelta(microseconds=1))


def member(name: str, data: bytes) -> Member:
    return Member(name=name, size=len(data), opener=lambda: io.BytesIO(data))


def parse_pages(*pages: tuple[str, bytes], options: ParseOptions | None = None) -> list[Any]:
    source = SourceInput(path="mem", members=[member(n, d) for n, d in pages],
                         hint="telegram-html")
    return list(TelegramHtml().parse(source, options or ParseOptions()))


def fixture_pages() -> list[tuple[str, bytes]]:
    return [(n, (FIXTURE_DIR / n).read_bytes()) for n in ("messages.html", "messages2.html")]


def rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    con = project.store.con.cursor()
    con.register("originals", project.store.originals())
    return con.execute(sql).fetchall()


MESSAGES_SQL = """
    SELECT m.message_id, i.display_name, m.text, m.kind, m.media, epoch_us(m.ts), m.ts_naive,
           m.reply_to, f.display_name, m.entities, m.source_loc, m.chat_key
    FROM messages m
    LEFT JOIN identities i ON i.author_key = m.author_key
    LEFT JOIN identities f ON f.author_key = m.forwarded_from
    ORDER BY m.source_pos
"""


# -- the hand-written export, through the real pipeline ------------------------------------------

@pytest.fixture
def ingested(project: Project) -> tuple[Project, Any]:
    report = project.ingest([FIXTURE_DIR])
    return project, report


def test_fixture_counts_reconcile(ingested: tuple[Project, Any]) -> None:
    project, report = ingested
    assert len(report.sources) == 1
    src = report.sources[0]
    assert src.status == "complete", src.error
    assert src.format == "telegram-html"
    assert src.read == src.stored + src.duplicate + src.quarantined
    assert (src.read, src.stored, src.duplicate, src.quarantined, src.service) == (18, 16, 0, 2, 2)
    ids = [r[0] for r in rows(project, "SELECT message_id FROM messages ORDER BY source_pos")]
    assert ids == [str(i) for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17)]


def test_fixture_fields(ingested: tuple[Project, Any]) -> None:
    project, _ = ingested
    got = {r[0]: r for r in rows(project, MESSAGES_SQL)}
    sender = {k: v[1] for k, v in got.items()}
    assert sender == {
        "1": None, "2": "Alice", "3": "Alice", "4": "Bob", "5": "Carol", "6": "Carol",
        "7": "Bob", "8": "Bob", "9": "Bob", "10": None, "11": "Eve", "13": "Frank",
        "14": "Grace", "15": "Alice", "16": "Alice", "17": "Alice",
    }
    kinds = {k: (v[3], v[4]) for k, v in got.items()}
    assert kinds["1"] == kinds["10"] == ("service", None)
    assert kinds["2"] == ("message", None)
    assert kinds["7"] == ("media", "photo")
    assert kinds["8"] == ("media", "voice_message")
    assert kinds["11"] == ("media", "sticker")
    assert kinds["14"] == ("media", "poll")
    assert kinds["15"] == ("media", "location")
    assert got["1"][2] == "Alice created group «Test Group»"
    assert got["10"][2] == "Bob pinned this message"
    assert got["2"][2] == "Hello world\nsecond line"
    assert got["3"][2] == ("See our site, ask @bob_user #news https://t.me/x really "
                           "<b>not bold</b> & x = 1")
    assert got["7"][2] == "Look at this"
    assert got["8"][2] == ""
    assert got["9"][2] == "Still Bob on page two"
    # UTC timestamps: aware dates are converted, naive ones are stored as local in --tz (UTC)
    assert got["2"][5:7] == (us(2021, 3, 1, 8, 0, 0), False)
    assert got["3"][5] == us(2021, 3, 1, 8, 1, 30)
    assert got["11"][5] == us(2021, 3, 2, 17, 0, 0)  # UTC-05:00
    assert got["9"][5:7] == (us(2021, 3, 2, 9, 30, 0), True)
    assert got["1"][5] is None  # service messages carry no date in HTML
    # replies: same page, other page of the same export, another chat
    assert got["4"][7] == "2"
    assert got["17"][7] == "4"
    assert got["16"][7] == "other_chat"
    assert got["2"][7] is None
    # forwards: the origin's name (without its date span), inherited by a joined forward
    assert got["5"][8] == got["6"][8] == "Dave Smith"
    assert got["5"][2] == "Forwarded words"
    assert got["6"][2] == "More forwarded words"
    assert got["4"][8] is None
    assert got["14"][10] == "messages2.html #message14"
    assert got["2"][11] == "telegram:html:Test Group & Friends"


def test_fixture_entities(ingested: tuple[Project, Any]) -> None:
    project, _ = ingested
    got = {r[0]: r for r in rows(project, MESSAGES_SQL)}
    assert json.loads(got["2"][9]) == [{"type": "bold", "text": "world"}]
    assert json.loads(got["3"][9]) == [
        {"type": "text_link", "text": "our site", "href": "https://example.org/page"},
        {"type": "mention", "text": "@bob_user"},
        {"type": "hashtag", "text": "#news"},
        {"type": "link", "text": "https://t.me/x"},
        {"type": "italic", "text": "really"},
        {"type": "code", "text": "x = 1"},
    ]
    assert got["4"][9] is None


def test_fixture_raw_is_verbatim_and_chat(ingested: tuple[Project, Any]) -> None:
    project, _ = ingested
    page2 = (FIXTURE_DIR / "messages2.html").read_text("utf-8")
    raw = rows(project, """SELECT o.raw FROM originals o JOIN messages m
                           ON o.source_id = m.source_id AND o.source_pos = m.source_pos
                           WHERE m.message_id = '14'""")[0][0]
    assert raw.startswith('<div class="message default clearfix" id="message14">')
    assert raw.endswith("</div>")
    assert raw in page2
    assert '<div class="signature details">\nGrace S.' in raw
    chats = rows(project, "SELECT chat_key, chat_id, title FROM chats")
    assert chats == [("telegram:html:Test Group & Friends", "html:Test Group & Friends",
                      "Test Group & Friends")]
    authors = rows(project, "SELECT raw_id FROM identities WHERE display_name = 'Alice'")
    assert authors == [("name:Alice",)]


def test_fixture_quarantine(ingested: tuple[Project, Any]) -> None:
    project, _ = ingested
    q = rows(project, "SELECT source_loc, reason, excerpt FROM quarantine ORDER BY source_pos")
    assert len(q) == 2
    assert q[0][0] == "messages2.html #message12"
    assert "unreadable date" in q[0][1]
    assert q[0][2].startswith('<div class="message default clearfix" id="message12">')
    assert q[1][0].startswith("messages2.html: line ")
    assert "without id" in q[1][1]


def test_reingest_adds_nothing(ingested: tuple[Project, Any]) -> None:
    project, _ = ingested
    before = rows(project, "SELECT count(*) FROM messages")[0][0]
    again = project.ingest([FIXTURE_DIR])
    assert again.sources[0].status == "unchanged"
    assert rows(project, "SELECT count(*) FROM messages")[0][0] == before
    assert rows(project, "SELECT count(*) FROM quarantine")[0][0] == 2


def test_naive_dates_use_tz_and_chat_override(project: Project) -> None:
    report = project.ingest([FIXTURE_DIR], tz="Europe/Kyiv", chat="my-chat")
    assert report.sources[0].status == "complete"
    got = {r[0]: r for r in rows(project, MESSAGES_SQL)}
    assert got["9"][5:7] == (us(2021, 3, 2, 7, 30, 0), True)  # 09:30 in Kyiv (UTC+2)
    assert got["2"][5] == us(2021, 3, 1, 8, 0, 0)  # aware dates ignore --tz
    assert got["2"][11] == "telegram:my-chat"


# -- direct parsing: pages, truncation, garbage ----------------------------------------------------

def test_joined_crosses_page_break() -> None:
    items = parse_pages(*fixture_pages())
    recs = {i.message_id: i for i in items if isinstance(i, Record)}
    assert recs["9"].loc == "messages2.html #message9"
    assert recs["9"].author_id == "name:Bob" and recs["9"].author_name == "Bob"
    # page 2 alone: the joined message has no sender to inherit
    alone = [i for i in parse_pages(fixture_pages()[1]) if isinstance(i, Record)]
    assert alone[0].message_id == "9" and alone[0].author_id is None


def test_truncated_page_yields_what_is_readable() -> None:
    name, data = fixture_pages()[1]
    cut = data.index(b"Lunch?")  # inside message 14
    items = parse_pages(fixture_pages()[0], (name, data[:cut]))
    recs = [i.message_id for i in items if isinstance(i, Record)]
    assert recs[-1] == "13"
    assert "14" not in recs
    last = items[-1]
    assert isinstance(last, Bad) and last.loc == "messages2.html #message14"
    assert "cut off" in last.reason


def test_unclosed_element_does_not_swallow_the_next() -> None:
    _, data = fixture_pages()[1]
    broken = data.replace(b"Still Bob on page two\n       </div>", b"Still Bob", 1)
    items = parse_pages(("messages.html", broken))
    assert isinstance(items[0], Bad) and items[0].loc == "messages.html #message9"
    assert [i.message_id for i in items[1:3]] == ["10", "11"]


def test_not_a_telegram_page() -> None:
    with pytest.raises(InputError):
        parse_pages(("messages.html", b"<html><body><p>hello</p></body></html>"))
    with pytest.raises(InputError):
        parse_pages(("messages.html", b""))
    items = parse_pages(("messages.html", b"garbage"), fixture_pages()[1])
    assert isinstance(items[0], Bad) and items[0].loc == "messages.html"
    assert isinstance(items[1], Record)


def test_sniff() -> None:
    imp = TelegramHtml()
    for name, data in fixture_pages():
        assert imp.sniff(SourceInput(path=name, members=[member(name, data)])) >= 0.9
    for data in (b'{"name": "x", "messages": []}', b"<html><body>hi</body></html>",
                 b'<div class="page_wrap"><div class="page_body list_page">', b""):
        assert imp.sniff(SourceInput(path="x", members=[member("x.html", data)])) == 0.0


def test_parse_date() -> None:
    assert parse_date("01.03.2021 10:00:00 UTC+02:00") == (us(2021, 3, 1, 8, 0, 0), False)
    assert parse_date("01.03.2021 10:00:00 UTC-03:30") == (us(2021, 3, 1, 13, 30, 0), False)
    assert parse_date("01.03.2021 10:00:00") == (us(2021, 3, 1, 10, 0, 0), True)
    for bad in ("", "2021-03-01 10:00:00", "31.02.2021 10:00:00", "01.03.2021 10:00:00 UTC+99"):
        with pytest.raises(ValueError):
            parse_date(bad)


# -- properties ---------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@st.composite
def mutated_page(draw: st.DrawFn) -> bytes:
    """A fixture page with a random stretch replaced by random bytes (or cut off)."""
    data = fixture_pages()[draw(st.integers(0, 1))][1]
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, len(data)))
    return data[:start] + draw(st.binary(max_size=50)) + data[end:]


@given(st.one_of(
    st.binary(max_size=2000),
    mutated_page(),
    st.text(alphabet='<>/div clas="mesgdefultjonir0123-4" ', max_size=400).map(str.encode),
))
def test_arbitrary_bytes_raise_only_chatlens_errors(data: bytes) -> None:
    try:
        items = parse_pages(("messages.html", data))
    except ChatlensError:
        return
    assert all(isinstance(i, Record | Bad) for i in items)


NAMES = ["Alice", "Bob & Co", "<Eve>", "Олена", "⟨ Simon | Schürrle ⟩", "\"Q\" O'Neil"]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                             whitelist_characters="\n"), max_size=60)


@st.composite
def chats(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 25))
    out: list[dict[str, Any]] = []
    mid = 0
    for _ in range(n):
        mid += draw(st.integers(1, 5))
        offset = draw(st.one_of(st.none(), st.integers(-12 * 4, 14 * 4).map(lambda q: q * 15)))
        out.append({
            "id": mid,
            "sender": draw(st.sampled_from(NAMES)),
            "text": draw(TEXT),
            "local": draw(st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1))).replace(
                microsecond=0),
            "offset": offset,
            "reply": draw(st.one_of(st.none(), st.sampled_from([m["id"] for m in out] or [1]))),
            "fwd": draw(st.one_of(st.none(), st.sampled_from(NAMES))),
            "join": draw(st.booleans()),
        })
    return out


def render(messages: list[dict[str, Any]], split: int) -> list[tuple[str, bytes]]:
    """A minimal exporter: header, messages (joined where allowed), split into two pages."""
    bodies: list[str] = []
    prev: dict[str, Any] | None = None
    for m in messages:
        joined = bool(m["join"] and prev and prev["sender"] == m["sender"]
                      and prev["fwd"] == m["fwd"])
        date = m["local"].strftime("%d.%m.%Y %H:%M:%S")
        if m["offset"] is not None:
            sign = "+" if m["offset"] >= 0 else "-"
            date += f" UTC{sign}{abs(m['offset']) // 60:02d}:{abs(m['offset']) % 60:02d}"
        parts = [f'<div class="message default clearfix{" joined" if joined else ""}" '
                 f'id="message{m["id"]}">\n<div class="body">\n'
                 f'<div class="pull_right date details" title="{date}">\n00:00\n</div>\n']
        if not joined:
            parts.append(f'<div class="from_name">\n{html.escape(m["sender"])} \n</div>\n')
        if m["fwd"] is not None:
            parts.append('<div class="forwarded body">\n')
            if not joined:
                parts.append(f'<div class="from_name">\n{html.escape(m["fwd"])}'
                             '<span class="details"> 01.01.2020 00:00:00</span>\n</div>\n')
        if m["reply"] is not None:
            parts.append(f'<div class="reply_to details">\nIn reply to <a href="#go_to_message'
                         f'{m["reply"]}" onclick="return GoToMessage(1)">this message</a>'
                         '\n</div>\n')
        if m["text"].strip():
            parts.append('<div class="text">\n' + html.escape(m["text"]).replace("\n", "<br>")
                         + "\n</div>\n")
        if m["fwd"] is not None:
            parts.append("</div>\n")
        parts.append("</div>\n</div>\n")
        bodies.append("".join(parts))
        prev = m
    head = ('<!DOCTYPE html>\n<html>\n<body>\n<div class="page_wrap">\n<div class="page_header">'
            '\n<div class="content">\n<div class="text bold">\nRound &amp; Trip\n</div>\n</div>'
            '\n</div>\n<div class="page_body chat_page">\n<div class="history">\n'
            '<div class="message service" id="message-1">\n<div class="body details">\n'
            '1 January 2000\n</div>\n</div>\n')
    tail = "</div>\n</div>\n</div>\n</body>\n</html>\n"
    pages = [bodies[:split], bodies[split:]]
    return [(f"messages{'' if i == 0 else i + 1}.html", (head + "".join(p) + tail).encode())
            for i, p in enumerate(pages)]


@settings(max_examples=150, deadline=None)
@given(chats(), st.integers(0, 25))
def test_round_trip(messages: list[dict[str, Any]], split: int) -> None:
    items = parse_pages(*render(messages, min(split, len(messages))))
    assert all(isinstance(i, Record) for i in items)
    assert len(items) == len(messages)
    for rec, m in zip(items, messages, strict=True):
        assert rec.message_id == str(m["id"])
        assert rec.author_name == m["sender"] and rec.author_id == f"name:{m['sender']}"
        assert rec.text == m["text"].strip()
        assert rec.kind == "message"
        assert rec.forwarded_from == m["fwd"]
        assert rec.reply_to == (str(m["reply"]) if m["reply"] is not None else None)
        assert rec.chat.chat_id == "html:Round & Trip"
        local_us = int((m["local"] - datetime(1970, 1, 1)) / timedelta(microseconds=1))
        if m["offset"] is None:
            assert (rec.ts_us, rec.ts_naive) == (local_us, True)
        else:
            assert (rec.ts_us, rec.ts_naive) == (local_us - m["offset"] * 60_000_000, False)


def test_split_messages_finds_every_element() -> None:
    text = "".join(d.decode() for _, d in fixture_pages())
    found = list(split_messages(text))
    assert len(found) == len(re.findall(r'<div class="message ', text))
    assert all(e.closed for e in found)


# -- the real public exports (never copied into the repository) ----------------------------------

def independent_counts(folder: Path) -> tuple[int, int]:
    """(div.message.default, service messages with a positive id), counted with lxml XPath."""
    def has(cls: str) -> str:
        return f"contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')"

    default = service = 0
    for page in sorted(folder.glob("messages*.html")):
        root = lxml.html.fromstring(page.read_bytes())
        default += len(root.xpath(f"//div[{has('message')} and {has('default')}]"))
        service += len(root.xpath(f"//div[{has('message')} and {has('service')} "
                                  "and not(starts-with(@id, 'message-'))]"))
    return default, service


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["html_uk_channel", "html_en_group"])
def test_real_export_counts(project: Project, shared_data: Path, name: str) -> None:
    folder = shared_data / "telegram" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    report = project.ingest([folder])
    # the folder's SOURCE.txt (provenance notes, not an export) is reported as unrecognised
    pages = [s for s in report.sources if s.path == str(folder)]
    assert len(pages) == 1
    assert all(Path(s.path).name == "SOURCE.txt" for s in report.sources if s not in pages)
    src = pages[0]
    assert src.status == "complete", src.error
    assert src.format == "telegram-html"
    assert src.read == src.stored + src.duplicate + src.quarantined
    default, service = independent_counts(folder)
    assert src.duplicate == 0
    assert src.service == service
    assert src.stored - src.service + src.quarantined == default
    stored = rows(project, "SELECT count(*) FROM messages WHERE kind <> 'service'")[0][0]
    assert stored + src.quarantined == default


@pytest.mark.shared_data
def test_real_en_group(project: Project, shared_data: Path) -> None:
    folder = shared_data / "telegram" / "html_en_group"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    project.ingest([folder])
    assert rows(project, "SELECT count(*) FROM messages WHERE kind <> 'service' "
                         "AND author_key IS NULL")[0][0] == 0
    got = {r[0]: r for r in rows(project, MESSAGES_SQL)}
    assert got["6"][1:3] == ("⟨ Simon | Schürrle ⟩", "so empty")
    assert got["6"][5:7] == (us(2017, 8, 25, 2, 51, 2), True)
    assert got["7"][2] == "That's how things start.."
    assert got["8"][2].startswith("Part of @thedevs.\n\nEverything related to developers")
    assert got["11"][7] == "10"
    assert got["1"][3] == "service"
    assert got["2"][11] == "telegram:html:Devs Chat"


@pytest.mark.shared_data
def test_real_uk_channel(project: Project, shared_data: Path) -> None:
    folder = shared_data / "telegram" / "html_uk_channel"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    project.ingest([folder])
    got = {r[0]: r for r in rows(project, MESSAGES_SQL)}
    assert got["1"][2:4] == ("Channel «Phylosophy» created", "service")
    assert got["93"][1] == got["94"][1] == "Cognition"
    assert got["93"][8] == got["94"][8] == "Lubomyr Ivanitskiy"
    assert got["94"][5:7] == (us(2018, 9, 26, 18, 3, 15), False)
    assert got["94"][2].startswith("і ще. По статистиці")
    assert got["95"][2] == "https://youtu.be/itgQRal2od0"
