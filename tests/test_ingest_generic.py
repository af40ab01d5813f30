"""Generic CSV / JSON Lines / JSON array / Parquet importers, through the real pipeline."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatlens import ChatlensError, EncodingError, Project, UsageError
from chatlens.ingest.base import Bad, Importer, Member, ParseOptions, Record, SourceInput
from chatlens.ingest.generic import GenericCsv, GenericJsonl, GenericParquet
from chatlens.ingest.pipeline import SourceReport
from chatlens.ingest.tabular import parse_ts

T = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in µs


def _source(path: Path) -> SourceInput:
    return SourceInput(path=str(path), members=[Member(
        path.name, path.stat().st_size, lambda: path.open("rb"))])


def _one(project: Project, path: Path, **kw: Any) -> SourceReport:
    report = project.ingest([path], **kw)
    assert len(report.sources) == 1
    src = report.sources[0]
    if src.status == "complete":
        assert src.read == src.stored + src.duplicate + src.quarantined
    return src


def _rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return project.store.con.execute(sql).fetchall()


def _original(project: Project, pos: int) -> str:
    """The original record at ``pos`` of the project's one source."""
    (source_id,) = {s["source_id"] for s in project.store.sources()}
    return str(project.store.originals([(source_id, pos)]).column("raw")[0])


def test_semicolon_csv_with_bom(project: Project, fixtures: Path) -> None:
    src = _one(project, fixtures / "generic" / "semicolon_bom.csv")
    assert src.status == "complete", src.error
    assert src.format == "csv"
    assert (src.read, src.stored, src.duplicate, src.quarantined) == (6, 4, 0, 2)
    rows = _rows(project, "SELECT message_id, chat_key, epoch_us(ts), ts_naive, text, source_loc "
                 "FROM messages ORDER BY source_pos")
    assert rows == [
        ("1", "generic:semicolon_bom", 1709276400_000000, False, "Hello; world",
         "semicolon_bom.csv: line 2"),
        ("2", "generic:semicolon_bom", 1709287500_000000, True, "multi\r\nline",
         "semicolon_bom.csv: line 3"),
        ("5", "generic:semicolon_bom", 1709287680_000000, False, "unix seconds",
         "semicolon_bom.csv: line 7"),
        ("6", "generic:semicolon_bom", 1709287680_000000, False, "unix ms",
         "semicolon_bom.csv: line 8"),
    ]
    bad = _rows(project, "SELECT source_loc, reason, excerpt FROM quarantine ORDER BY source_pos")
    assert bad[0][0] == "semicolon_bom.csv: line 5" and "date" in bad[0][1]
    assert bad[0][2] == "3;not a date;u1;Alice;bad date"
    assert bad[1][0] == "semicolon_bom.csv: line 6" and "4 fields" in bad[1][1]
    raw = _original(project, 1)
    assert raw == '2;2024-03-01 10:05:00;u2;Bob;"multi\r\nline"'
    names = {r[0] for r in _rows(project, "SELECT display_name FROM identities")}
    assert names == {"Alice", "Bob"}


def test_utf16_tsv_and_explicit_mapping(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "export.tsv"
    text = "who\twhen\tmsg\tthread\n" + "".join(
        f"user{i}\t2024-01-01T00:0{i}:00Z\tпривет {i} ✓\tt{i % 2}\n" for i in range(5))
    path.write_bytes(text.encode("utf-16"))  # with BOM
    src = _one(project, path, format="csv",
               column_map={"text": "msg", "ts": "when", "author": "who", "chat": "thread"})
    assert src.status == "complete", src.error
    assert (src.stored, src.quarantined) == (5, 0)
    rows = _rows(project, "SELECT chat_key, text, epoch_us(ts) FROM messages ORDER BY source_pos")
    assert rows[1] == ("generic:t1", "привет 1 ✓", T + 60_000_000)


def test_cp1251_is_detected(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "ru.csv"
    lines = ["date,author,text"] + [
        f"2024-01-0{1 + i % 9} 12:00,автор{i},Сегодня хорошая погода, пойдём гулять в парк {i}"
        .replace(", пойдём", " и пойдём") for i in range(40)]
    path.write_bytes("\n".join(lines).encode("cp1251"))
    src = _one(project, path)
    assert src.status == "complete", src.error
    assert src.stored == 40
    first = _rows(project, "SELECT text FROM messages ORDER BY source_pos LIMIT 1")[0][0]
    assert first == "Сегодня хорошая погода и пойдём гулять в парк 0"


def test_invalid_bytes_are_a_clear_encoding_error(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    prefix = b"id,text\n1,hello\n2,wor"
    path.write_bytes(prefix + b"\xff\xfeld\n3,ok\n")
    with pytest.raises(EncodingError) as info:
        list(GenericCsv().parse(_source(path), ParseOptions()))
    msg = str(info.value)
    assert "broken.csv" in msg and f"byte offset {len(prefix)}" in msg and "--encoding" in msg
    src = _one(project, path)
    assert src.status == "failed" and f"byte offset {len(prefix)}" in (src.error or "")
    assert _rows(project, "SELECT count(*) FROM messages") == [(0,)]
    # a UTF-8 BOM declares the encoding: no guessing, the offset counts the BOM
    path.write_bytes(b"\xef\xbb\xbf" + prefix + b"\xffld\n")
    with pytest.raises(EncodingError, match=f"byte offset {len(prefix) + 3} .*BOM"):
        list(GenericCsv().parse(_source(path), ParseOptions()))
    # a cp1251 file: read as cp1251 (the project's languages include Russian), never mojibake
    path.write_bytes("label;text\nneg;Плохо\npos;Хорошо\n".encode("cp1251"))
    texts = [r.text for r in GenericCsv().parse(_source(path), ParseOptions())
             if isinstance(r, Record)]
    assert texts == ["Плохо", "Хорошо"]
    # too little text to tell cp1251 from mac-cyrillic: an error that names both, never mojibake
    path.write_bytes("label;text\nneg;Э\n".encode("cp1251"))
    with pytest.raises(EncodingError, match=r"byte 15.*cp1251 reads.*--encoding"):
        list(GenericCsv().parse(_source(path), ParseOptions()))


def test_jsonl_with_bad_lines(project: Project, fixtures: Path) -> None:
    src = _one(project, fixtures / "generic" / "messages.jsonl")
    assert src.status == "complete", src.error
    assert src.format == "jsonl"
    assert (src.read, src.stored, src.duplicate, src.quarantined) == (6, 3, 0, 3)
    rows = _rows(project, "SELECT message_id, chat_key, epoch_us(ts), ts_naive, kind, reply_to "
                 "FROM messages ORDER BY source_pos")
    assert rows == [("1", "generic:c1", T, False, "message", None),
                    ("2", "generic:c1", T + 60_000_000, False, "message", "1"),
                    ("5", "generic:c2", T + 180_000_000, True, "service", None)]
    bad = _rows(project, "SELECT source_loc, reason FROM quarantine ORDER BY source_pos")
    assert [b[0] for b in bad] == ["messages.jsonl: line 3", "messages.jsonl: line 4",
                                   "messages.jsonl: line 5"]
    assert "invalid JSON" in bad[0][1] and "missing text" in bad[1][1]


def test_json_array_detected_with_duplicates(project: Project, fixtures: Path) -> None:
    src = _one(project, fixtures / "generic" / "channels.json")
    assert src.status == "complete", src.error
    assert src.format == "jsonl" and "0.70" in (src.detection or "")
    assert (src.read, src.stored, src.duplicate, src.quarantined) == (5, 3, 1, 1)
    chats = dict(_rows(project, "SELECT chat_key, title FROM chats"))
    assert chats == {"generic:News A": "News A", "generic:News B": "News B"}
    assert _rows(project, "SELECT source_loc FROM quarantine") == [("channels.json: item 4",)]


def test_parquet(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "msgs.parquet"
    table = pa.table({
        "msg": ["a", "b", None, "d"],
        "when": pa.array([T, T + 1, T + 2, None], pa.timestamp("us", tz="UTC")),
        "who": [1, 2, 1, 2],
        "extra": [{"k": 1}, None, None, {"k": 2}],
    })
    pq.write_table(table, path, row_group_size=2)
    src = _one(project, path, column_map={"text": "msg", "ts": "when", "author": "who"})
    assert src.status == "complete", src.error
    assert src.format == "parquet"
    assert (src.read, src.stored, src.quarantined) == (4, 3, 1)
    rows = _rows(project, "SELECT text, epoch_us(ts), source_loc FROM messages ORDER BY source_pos")
    assert rows == [("a", T, "msgs.parquet: row 1"), ("b", T + 1, "msgs.parquet: row 2"),
                    ("d", None, "msgs.parquet: row 4")]
    raw = _original(project, 0)
    assert json.loads(raw)["extra"] == {"k": 1}


def test_missing_mapped_column_is_a_usage_error(project: Project, fixtures: Path,
                                                tmp_path: Path) -> None:
    csv_path = fixtures / "generic" / "semicolon_bom.csv"
    with pytest.raises(UsageError, match=r"'who'.*'id', 'date', 'sender'"):
        list(GenericCsv().parse(_source(csv_path), ParseOptions(column_map={"author": "who"})))
    src = _one(project, csv_path, column_map={"text": "nope"})
    assert src.status == "failed" and "'nope'" in (src.error or "")
    with pytest.raises(UsageError, match="'nope'"):
        list(GenericJsonl().parse(_source(fixtures / "generic" / "messages.jsonl"),
                                  ParseOptions(column_map={"text": "nope"})))
    with pytest.raises(UsageError, match="Unknown field 'body'"):
        list(GenericJsonl().parse(_source(fixtures / "generic" / "messages.jsonl"),
                                  ParseOptions(column_map={"body": "text"})))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    with pytest.raises(UsageError, match=r"'msg'.*'body'"):
        list(GenericParquet().parse(_source(path), ParseOptions(column_map={"text": "msg"})))
    # no mapping and no recognisable text column
    pq.write_table(pa.table({"words": ["x"]}), path)
    with pytest.raises(UsageError, match="no text column"):
        list(GenericParquet().parse(_source(path), ParseOptions()))


def test_sniff_scores(fixtures: Path, tmp_path: Path) -> None:
    gen = fixtures / "generic"
    assert GenericCsv().sniff(_source(gen / "semicolon_bom.csv")) == pytest.approx(0.8)
    assert GenericJsonl().sniff(_source(gen / "messages.jsonl")) == pytest.approx(0.9)
    assert GenericJsonl().sniff(_source(gen / "channels.json")) == pytest.approx(0.7)
    assert GenericJsonl().sniff(_source(gen / "semicolon_bom.csv")) == 0.0
    assert GenericCsv().sniff(_source(gen / "messages.jsonl")) < 0.5
    tg = tmp_path / "result.json"
    tg.write_text('{"name": "x", "messages": [{"id": 1}]}')
    assert GenericJsonl().sniff(_source(tg)) < 0.5


def test_parse_ts() -> None:
    assert parse_ts("2024-01-01T00:00:00Z") == (T, False)
    assert parse_ts("2024-01-01T03:00:00+03:00") == (T, False)
    assert parse_ts("2024-01-01 00:00:00") == (T, True)
    assert parse_ts("01.01.2024 00:00") == (T, True)
    assert parse_ts(1_704_067_200) == (T, False)
    assert parse_ts("1704067200000") == (T, False)
    assert parse_ts(1_704_067_200.5) == (T + 500_000, False)
    assert parse_ts(T) == (T, False)
    assert parse_ts(T * 1000) == (T, False)
    assert parse_ts("") == (None, False)
    for bad in ("yesterday", True, float("inf"), 10**25):
        with pytest.raises(ValueError):
            parse_ts(bad)


_SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "json": ".json", "parquet": ".parquet"}
_IMPORTERS: dict[str, Importer] = {"csv": GenericCsv(), "jsonl": GenericJsonl(),
                                   "json": GenericJsonl(), "parquet": GenericParquet()}
_PREFIXES = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"text,date\n", b'{"text": "a"}\n', b"[{",
             b"PAR1"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_IMPORTERS)), st.sampled_from(_PREFIXES), st.binary(max_size=2048),
       st.booleans())
def test_arbitrary_bytes_raise_only_chatlens_errors(kind: str, prefix: bytes, data: bytes,
                                                    mapped: bool) -> None:
    options = ParseOptions(column_map={"text": "text", "ts": "date"} if mapped else {})
    imp = _IMPORTERS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{_SUFFIXES[kind]}"
        path.write_bytes(prefix + data)
        assert 0.0 <= imp.sniff(_source(path)) <= 1.0
        try:
            for item in imp.parse(_source(path), options):
                assert isinstance(item, Record | Bad)
                if isinstance(item, Record):
                    item.text.encode("utf-8")
                    item.raw.encode("utf-8")
        except ChatlensError:
            pass


@pytest.mark.shared_data
def test_real_news_channels(shared_data: Path, project: Project) -> None:
    folder = shared_data / "corpora" / "ru_news_channels_2023_2024"
    files = sorted(folder.glob("*.json"))
    if not files:
        pytest.skip("ru_news_channels_2023_2024 is absent")
    expected = {}
    for f in files:
        with f.open(encoding="utf-8") as fh:
            expected[str(f)] = len(json.load(fh))
    report = project.ingest(list[str | Path](files))
    assert len(report.sources) == len(files) == 24
    for src in report.sources:
        assert src.status == "complete", src.error
        assert src.format == "jsonl"
        assert src.read == expected[src.path]
        assert src.stored + src.duplicate + src.quarantined == expected[src.path]
    total = sum(expected.values())
    stored = _rows(project, "SELECT count(*) FROM messages")[0][0]
    assert stored == report.total("stored")
    assert report.total("read") == total


@pytest.mark.shared_data
def test_real_rusentiment_csv(shared_data: Path, project: Project) -> None:
    path = shared_data / "labeled" / "ru_rusentiment" / "rusentiment_test.csv"
    if not path.exists():
        pytest.skip("rusentiment_test.csv is absent")
    with path.open(encoding="utf-8", newline="") as fh:
        expected = sum(1 for row in csv.reader(fh) if row) - 1
    src = _one(project, path, format="csv", column_map={"text": "text"})
    assert src.status == "complete", src.error
    assert src.read == expected
    assert src.stored + src.duplicate + src.quarantined == expected
    assert src.quarantined == 0
