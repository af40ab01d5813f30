"""Telegram Desktop JSON: single chats, whole-account exports, damaged files, real exports."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatlens import ChatlensError, Project
from chatlens.ingest.base import Member, ParseOptions, SourceInput
from chatlens.ingest.telegram_json import TelegramJson, flatten_text, repair_escapes

TG = Path(__file__).parent / "fixtures" / "telegram_json"


def rows(project: Project, sql: str) -> list[tuple[object, ...]]:
    return project.store.con.execute(sql).fetchall()


def reconciles(project: Project) -> None:
    for s in project.store.sources():
        assert s["n_read"] == s["n_stored"] + s["n_duplicate"] + s["n_quarantined"], s


def test_single_chat_fields(project: Project) -> None:
    report = project.ingest([TG / "single_chat.json"])
    (src,) = report.sources
    assert src.status == "complete" and src.format == "telegram-json"
    assert (src.read, src.stored, src.quarantined) == (12, 12, 0)
    got = dict(rows(project, "SELECT message_id, text FROM messages"))
    assert got["3"] == "Карта КПП: https://example.org/kpp и срочно"
    assert got["4"] == "Стоим\x0712 часов"  # the exporter's \x07 escape repaired, not dropped
    assert got["11"].startswith("\\x41 не экранирование")  # an escaped backslash is left alone
    assert got["-999999990"] == "сообщение из старой группы"  # migrated history, negative id
    kinds = dict(rows(project,
                      "SELECT message_id, kind || ':' || coalesce(media, '') FROM messages"))
    assert kinds["1"] == "service:" and kinds["10"] == "service:"  # unknown action passes through
    assert kinds["6"] == "media:photo" and kinds["7"] == "media:voice_message"
    assert kinds["8"] == "media:unsupported"
    (reply, edited), = rows(project, "SELECT reply_to, edited FROM messages WHERE message_id = '4'")
    assert reply == "2" and edited is True
    (ts,), = rows(project, "SELECT epoch(ts)::BIGINT FROM messages WHERE message_id = '2'")
    assert ts == 1663754400 + 2 * 60
    ents = json.loads(rows(project, "SELECT entities FROM messages WHERE message_id='3'")[0][0])
    assert {"type": "link", "text": "https://example.org/kpp"} in ents
    reconciles(project)


def test_authors_are_pseudonymised_and_names_kept_apart(project: Project) -> None:
    project.ingest([TG / "single_chat.json"])
    keys = {k for (k,) in rows(project, "SELECT DISTINCT author_key FROM messages")}
    assert all(re.fullmatch(r"a[0-9a-f]{15}", k) for k in keys if k)
    names = dict(rows(project, "SELECT raw_id, display_name FROM identities"))
    assert names["user501"] == "Участник 1"
    exported = project.messages().to_pylist()
    assert not any("Участник" in json.dumps(r, default=str) for r in exported)
    fwd = rows(project, "SELECT forwarded_from FROM messages WHERE message_id = '5'")[0][0]
    assert fwd in {k for (k,) in rows(project, "SELECT author_key FROM identities")}


def test_pseudonyms_differ_between_projects(tmp_path: Path) -> None:
    keys = []
    for name in ("a", "b"):
        with Project.init(tmp_path / name) as p:
            p.ingest([TG / "single_chat.json"])
            keys.append(rows(p, "SELECT author_key FROM messages WHERE message_id = '2'")[0][0])
    assert keys[0] != keys[1]


def test_full_account_export_reads_every_chat(project: Project) -> None:
    (src,) = project.ingest([TG / "full_account.json"]).sources
    assert (src.read, src.stored) == (4, 4)
    chats = dict(rows(project, "SELECT chat_key, chat_type FROM chats"))
    assert chats == {
        "telegram:2000001": "public_channel",
        "telegram:1": "saved_messages",
        "telegram:4000004": "private_supergroup (left)",
    }
    (author,), = rows(project, "SELECT author_key FROM messages WHERE message_id = '100'")
    assert author is not None  # deleted account: name null, id kept


def test_minified_export_streams_through_fallback(project: Project) -> None:
    (src,) = project.ingest([TG / "minified.json"]).sources
    assert src.status == "complete" and src.stored == 12
    got = dict(rows(project, "SELECT message_id, text FROM messages"))
    assert got["3"] == "Карта КПП: https://example.org/kpp и срочно"


def test_same_messages_in_other_layout_deduplicate(project: Project) -> None:
    project.ingest([TG / "single_chat.json"])
    (src,) = project.ingest([TG / "minified.json"]).sources
    assert (src.read, src.stored, src.duplicate) == (12, 0, 12)
    reconciles(project)


def test_old_export_without_unixtime_is_flagged_naive(project: Project) -> None:
    project.ingest([TG / "old_no_unixtime.json"], tz="Europe/Moscow")
    (naive, hour), = rows(project, "SELECT ts_naive, hour(ts) FROM messages WHERE message_id='1'")
    assert naive is True and hour == 9  # 12:30 Moscow (UTC+3) is 09:30 UTC


def test_broken_record_is_quarantined_and_the_rest_kept(project: Project) -> None:
    (src,) = project.ingest([TG / "broken_record.json"]).sources
    assert src.status == "complete"
    assert (src.read, src.stored, src.quarantined) == (12, 11, 1)
    (loc, reason, excerpt), = rows(project, "SELECT source_loc, reason, excerpt FROM quarantine")
    assert re.fullmatch(r"broken_record\.json: line \d+", loc)
    assert "invalid JSON" in reason and "oops" in excerpt


def test_truncated_export_keeps_what_precedes_the_cut(project: Project) -> None:
    (src,) = project.ingest([TG / "truncated.json"]).sources
    assert src.status == "complete"
    assert src.stored == 4 and src.quarantined == 1
    assert "truncated" in rows(project, "SELECT reason FROM quarantine")[0][0]


def test_repair_escapes_respects_escaped_backslashes() -> None:
    assert repair_escapes(rb'"a\x07b"') == rb'"a\u0007b"'
    assert repair_escapes(rb'"a\\x07b"') == rb'"a\\x07b"'
    assert repair_escapes(rb'"a\\\x07b"') == rb'"a\\\u0007b"'


def test_flatten_text_joins_parts_and_drops_empty() -> None:
    assert flatten_text(["a", {"type": "bold", "text": "b"}, "", {"type": "x"}]) == "ab"
    assert flatten_text(None) == ""


def _source(data: bytes) -> SourceInput:
    return SourceInput(path="mem.json", members=[
        Member(name="mem.json", size=len(data), opener=lambda: io.BytesIO(data))])


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_chatlens_errors(data: bytes) -> None:
    with contextlib.suppress(ChatlensError):
        list(TelegramJson().parse(_source(data), ParseOptions()))


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts, st.integers(0, 2**31), st.booleans()), min_size=1, max_size=20),
       st.booleans())
def test_round_trip_of_generated_exports(items: list[tuple[str, int, bool]], pretty: bool) -> None:
    messages = []
    for i, (text, ts, as_list) in enumerate(items, start=1):
        body: object = [text[:3], {"type": "bold", "text": text[3:]}] if as_list else text
        messages.append({"id": i, "type": "message", "date": "2022-01-01T00:00:00",
                         "date_unixtime": str(ts), "from": "X", "from_id": "user1",
                         "text": body, "text_entities": []})
    doc = {"name": "c", "type": "private_group", "id": 9, "messages": messages}
    data = json.dumps(doc, ensure_ascii=False, indent=1 if pretty else None).encode()
    got = list(TelegramJson().parse(_source(data), ParseOptions()))
    assert [(r.message_id, r.text, r.ts_us) for r in got] == [  # type: ignore[union-attr]
        (str(i), t, ts * 1_000_000) for i, (t, ts, _) in enumerate(items, start=1)]


@pytest.mark.shared_data
def test_real_channel_export_matches_an_independent_count(shared_data: Path,
                                                          project: Project) -> None:
    path = shared_data / "telegram" / "json_ru_channel" / "result.json"
    expected = json.loads(path.read_bytes())["messages"]
    (src,) = project.ingest([path]).sources
    assert src.status == "complete" and src.quarantined == 0
    assert src.read == src.stored == len(expected)
    n_list = sum(isinstance(m.get("text"), list) for m in expected)
    assert n_list > 1000
    got = dict(rows(project, "SELECT message_id, text FROM messages"))
    for m in expected[:300]:
        assert got[str(m["id"])] == flatten_text(m.get("text"))
    reconciles(project)


def test_minified_export_with_invalid_escapes_is_repaired_while_streaming(
        project: Project, tmp_path: Path) -> None:
    doc = {"name": "c", "type": "private_group", "id": 9, "messages": [
        {"id": i, "type": "message", "date_unixtime": "1", "from_id": "user1",
         "text": f"m{i}XX\\x41", "text_entities": []} for i in range(5000)]}
    raw = json.dumps(doc, separators=(",", ":")).replace("XX", "\\x07")
    (tmp_path / "min.json").write_text(raw, encoding="utf-8")
    (src,) = project.ingest([tmp_path / "min.json"]).sources
    assert (src.read, src.stored, src.quarantined) == (5000, 5000, 0)
    (text,), = rows(project, "SELECT text FROM messages WHERE message_id = '4321'")
    assert text == "m4321\x07\\x41"


def _items(data: bytes, bulk: bool, monkeypatch: pytest.MonkeyPatch, least: int = 0,
           ) -> list[tuple[object, ...]]:
    from chatlens.ingest import telegram_json as tj

    in_bulk = []
    split = tj._Lines.elements

    def elements(self: tj._Lines, opener: bytes, close: bytes) -> tuple[list[bytes], list[int]]:
        got = split(self, opener, close) if bulk else ([], [])
        in_bulk.extend(got[0])
        return got

    with monkeypatch.context() as m:
        m.setattr(tj._Lines, "elements", elements)
        got = list(TelegramJson().parse(_source(data), ParseOptions()))
    assert len(in_bulk) >= least  # elements split in bulk
    return [(type(i).__name__, i.loc, getattr(i, "raw", None), getattr(i, "text", None),
             getattr(i, "reason", None)) for i in got]


@pytest.mark.parametrize("damage", ["none", "no comma", "bad json", "escapes", "crlf",
                                    "stray line", "truncated", "blank lines"])
def test_elements_read_in_bulk_equal_those_read_line_by_line(
        damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of regular elements are split in bulk; damaged ones fall back to the line-by-line
    reader: the records, positions and quarantine are the same either way."""
    messages = [{"id": i, "type": "message", "date_unixtime": str(1663754400 + i),
                 "from": "Анна", "from_id": "user1", "text": f"сообщение {i} 😀",
                 "text_entities": [{"type": "plain", "text": f"сообщение {i} 😀"}]}
                for i in range(1, 3001)]
    data = json.dumps({"name": "c", "type": "private_group", "id": 9, "messages": messages},
                      ensure_ascii=False, indent=1).encode()
    cut = data.index(b'"id": 1500,')
    if damage == "no comma":
        at = data.rindex(b"},\n", 0, cut)
        data = data[:at] + b"}\n" + data[at + 3:]
    elif damage == "bad json":
        data = data[:cut] + b'"id": 1500,,' + data[cut + len('"id": 1500,'):]
    elif damage == "escapes":
        data = data.replace(b"\\u00", b"\\x").replace("сообщение 7".encode(), b"m\\x41")
    elif damage == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif damage == "stray line":
        at = data.rindex(b"},\n", 0, cut) + 3
        data = data[:at] + b"  junk\n" + data[at:]
    elif damage == "truncated":
        data = data[:cut + 40]
    elif damage == "blank lines":  # between every other pair of messages: half read in bulk
        data = re.sub(rb"(\n  },\n)(  \{\n   \"id\": \d*[13579],)", rb"\1\n\2", data)
    least = {"crlf": 0, "truncated": 1000, "blank lines": 1000}.get(damage, 2000)
    bulk = _items(data, True, monkeypatch, least)
    assert bulk == _items(data, False, monkeypatch)
    if damage in ("none", "crlf", "escapes", "no comma", "blank lines"):  # all kept
        assert [i[0] for i in bulk] == ["Record"] * 3000
    else:
        assert "Bad" in {i[0] for i in bulk}


@pytest.mark.parametrize("indent", [2, 4])
def test_an_export_re_indented_by_a_json_tool_reads_the_same(indent: int) -> None:
    """jq and ``python -m json.tool`` indent by 2 or 4 spaces, not Telegram's one."""
    doc = {"name": "c", "type": "private_group", "id": 9, "messages": [
        {"id": i, "type": "message", "date_unixtime": str(1663754400 + i), "from": "Анна",
         "from_id": "user1", "text": [f"часть {i} ", {"type": "bold", "text": "жирно"}],
         "text_entities": [{"type": "plain", "text": f"часть {i} "},
                           {"type": "bold", "text": "жирно"}]} for i in range(1, 301)]}
    got = list(TelegramJson().parse(_source(json.dumps(doc, ensure_ascii=False,
                                                       indent=indent).encode()), ParseOptions()))
    want = list(TelegramJson().parse(_source(json.dumps(doc, ensure_ascii=False,
                                                        indent=1).encode()), ParseOptions()))
    assert [type(r).__name__ for r in got] == ["Record"] * 300
    assert [(r.message_id, r.text, r.entities) for r in got] == [  # type: ignore[union-attr]
        (r.message_id, r.text, r.entities) for r in want]  # type: ignore[union-attr]


def test_an_export_cut_between_two_messages_says_it_is_truncated() -> None:
    messages = [{"id": i, "type": "message", "date_unixtime": "1663754400", "from_id": "user1",
                 "text": f"m{i}", "text_entities": []} for i in range(1, 11)]
    data = json.dumps({"name": "c", "type": "private_group", "id": 9, "messages": messages},
                      indent=1).encode()
    cut = data[:data.index(b'"id": 8,')].rstrip(b" {\n")  # after message 7's "},"
    got = list(TelegramJson().parse(_source(cut), ParseOptions()))
    assert [getattr(r, "message_id", None) for r in got[:-1]] == [str(i) for i in range(1, 8)]
    assert "truncated" in got[-1].reason  # type: ignore[union-attr]


def test_a_crlf_export_keeps_each_record_verbatim() -> None:
    messages = [{"id": i, "type": "message", "date_unixtime": "1663754400", "from_id": "user1",
                 "text": f"m{i}", "text_entities": []} for i in range(1, 6)]
    data = json.dumps({"name": "c", "type": "private_group", "id": 9, "messages": messages},
                      indent=1).replace("\n", "\r\n").encode()
    got = list(TelegramJson().parse(_source(data), ParseOptions()))
    assert len(got) == 5
    assert all(isinstance(r.raw, bytes) and r.raw in data for r in got)  # type: ignore[union-attr]
