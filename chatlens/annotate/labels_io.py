"""Reading and writing labels: CSV, JSONL and Label Studio JSON.

CSV and JSONL rows have the columns ``uid, measure, value, annotator`` and optionally
``created`` (ISO 8601; naive means UTC; absent means the time of import), ``sample_kind``,
``origin`` (default ``import``), ``span`` (``start:end`` in CSV, ``[start, end]`` in JSONL) and
``comment``; other columns (a coding sheet's ``text``, ``context_before``, ``context_after``,
``choices``) are ignored. A row that cannot be read is skipped and reported as a
:class:`LabelProblem` with its line; a file that cannot be read at all raises
:class:`~chatlens.errors.InputError`.

CSV cells are untrusted text, so cells that a spreadsheet would run as a formula (starting with
``= + - @``, tab or CR) are written with a leading apostrophe; a cell that already starts with an
apostrophe followed by one of those (or another apostrophe) gets one more. Reading removes
exactly that one apostrophe, so write-then-read returns the same records.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from chatlens.annotate import labelstudio
from chatlens.annotate.records import (
    LabelProblem,
    LabelRecord,
    Origin,
    SampleKind,
    context_text,
    parse_time,
)
from chatlens.errors import EncodingError, InputError, UsageError
from chatlens.textsafe import csv_safe, csv_unsafe

Format = Literal["csv", "jsonl", "labelstudio"]
COLUMNS = ("uid", "measure", "value", "annotator", "created", "sample_kind", "origin", "span",
           "comment")
#: A coding sheet: one row per sample item; coders fill ``value`` (one of ``choices``).
SHEET_COLUMNS = ("uid", "measure", "text", "context_before", "context_after", "choices", "value",
                 "annotator", "comment")
#: The problem a row without a value gets: an item nobody has labelled yet.
NO_VALUE = "value is missing (the item is not labelled yet)"

def label_format(path: str | Path, text: str | None = None) -> Format:
    """The format of a labels file from its suffix, else from its first character."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "labelstudio"
    head = (text or "").lstrip()[:1]
    return "labelstudio" if head == "[" else "jsonl" if head == "{" else "csv"


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), f"cannot read the labels file: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EncodingError(str(path), f"not UTF-8 text (byte {exc.start}); save the file as "
                            "UTF-8 and import it again") from None


def _text(row: Mapping[str, Any], key: str) -> str | None:
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise ValueError(f"{key} must be text, got {json.dumps(v)[:40]}")
    return str(v)


def _span(v: Any) -> tuple[int, int] | None:
    if v is None or v == "":
        return None
    parts = v.split(":") if isinstance(v, str) else v
    if not isinstance(parts, list) or len(parts) != 2 or any(
            isinstance(p, bool) or not isinstance(p, int | str) or (
                isinstance(p, str) and len(p) > 20) for p in parts):
        raise ValueError(f"span must be start:end or [start, end] (integers), got {str(v)[:60]!r}")
    return int(parts[0]), int(parts[1])


def record_from_row(row: Mapping[str, Any], default_annotator: str, measure: str | None,
                    now: datetime) -> LabelRecord:
    """One record from a CSV/JSONL row; ``ValueError`` says what is wrong with it."""
    uid, value = _text(row, "uid"), _text(row, "value")
    if uid is None:
        raise ValueError("uid is missing")
    if value is None:
        raise ValueError(NO_VALUE)
    m = _text(row, "measure")
    if m is not None and measure is not None and m != measure:
        raise ValueError(f"row is for measure {m!r}, not the requested {measure!r}")
    m = m or measure
    if m is None:
        raise ValueError("measure is missing (give the column or choose a measure)")
    created = _text(row, "created")
    return LabelRecord(uid=uid, measure=m, value=value,
                       annotator=_text(row, "annotator") or default_annotator,
                       created=parse_time(created) if created else now,
                       sample_kind=cast(SampleKind, _text(row, "sample_kind") or "none"),
                       origin=cast(Origin, _text(row, "origin") or "import"),
                       span=_span(row.get("span")), comment=_text(row, "comment"))


def _rows_csv(path: Path, text: str, need_measure: bool) -> Iterable[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(str(path), f"not a readable CSV file: {exc}", "line 1") from None
    if "uid" not in header or "value" not in header:
        raise InputError(str(path), "the CSV header needs the columns uid and value "
                         f"(found: {', '.join(header) or 'none'})", "line 1")
    if need_measure and "measure" not in header:
        raise InputError(str(path), "the CSV has no measure column: add one or name the measure "
                         "the labels are for", "line 1")
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, {"__error__": f"unreadable CSV row: {exc}"}
            start = reader.line_num + 1
            continue
        if any(c.strip() for c in cells):
            if len(cells) > len(header):
                yield start, {"__error__": f"{len(cells)} cells for {len(header)} columns"}
            else:
                yield start, {h: csv_unsafe(c) for h, c in zip(header, cells, strict=False)}
        start = reader.line_num + 1


def _rows_jsonl(text: str) -> Iterable[tuple[int, dict[str, Any]]]:
    for no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield no, {"__error__": f"not valid JSON: {exc.msg} (column {exc.colno})"}
            continue
        except RecursionError:
            yield no, {"__error__": "not readable: the JSON is nested too deeply"}
            continue
        yield no, obj if isinstance(obj, dict) else {"__error__": "not a JSON object"}


def read_labels(path: str | Path, default_annotator: str, measure: str | None = None, *,
                fmt: Format | None = None, now: datetime | None = None
                ) -> tuple[list[LabelRecord], list[LabelProblem]]:
    """Read labels from a CSV, JSONL or Label Studio export file.

    ``default_annotator`` names the coder of rows that name none; ``measure``, when given, is
    the measure of rows that name none, and rows naming another measure are reported and
    skipped. Rows without a time get ``now`` (default: the current UTC time).
    """
    p = Path(path)
    text = _read_text(p)
    fmt = fmt or label_format(p, text)
    now = now or datetime.now(UTC)
    if fmt == "labelstudio":
        return labelstudio.read_export(p, text, default_annotator, measure, now)
    if fmt not in ("csv", "jsonl"):
        raise UsageError(f"unknown labels format {fmt!r}: use csv, jsonl or labelstudio")
    records: list[LabelRecord] = []
    problems: list[LabelProblem] = []
    rows = _rows_csv(p, text, measure is None) if fmt == "csv" else _rows_jsonl(text)
    for line, row in rows:
        if "__error__" in row:
            problems.append(LabelProblem(str(p), line, str(row["__error__"])))
            continue
        try:
            records.append(record_from_row(row, default_annotator, measure, now))
        except (ValueError, TypeError, OverflowError) as exc:
            problems.append(LabelProblem(str(p), line, str(exc)[:300]))
    return records, problems


def write_labels(records: Iterable[LabelRecord], path: str | Path,
                 fmt: Format | None = None) -> int:
    """Write records as CSV (UTF-8 with BOM, for spreadsheets), JSONL or Label Studio tasks
    with annotations; the format comes from the suffix unless given. Returns the count."""
    p = Path(path)
    fmt = fmt or label_format(p)
    recs = list(records)
    if fmt == "labelstudio":
        p.write_text(labelstudio.export_json(recs), encoding="utf-8")
    elif fmt == "jsonl":
        with p.open("w", encoding="utf-8", newline="\n") as f:
            for r in recs:
                f.write(json.dumps(r.as_dict(), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        with p.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in recs:
                d = r.as_dict()
                d["span"] = f"{r.span[0]}:{r.span[1]}" if r.span else ""
                w.writerow([csv_safe(d[c]) for c in COLUMNS])
    else:
        raise UsageError(f"unknown labels format {fmt!r}: use csv, jsonl or labelstudio")
    return len(recs)


def write_sheet(items: Iterable[Mapping[str, Any]], path: str | Path,
                fmt: Format | None = None) -> int:
    """Write a coding sheet (CSV with BOM, for spreadsheets, or JSONL): one row per item with
    :data:`SHEET_COLUMNS`; ``value``, ``annotator`` and ``comment`` are empty unless the item
    is labelled. :func:`read_labels` reads it back (rows without a value are reported as
    :data:`NO_VALUE`). Returns the number of rows."""
    p = Path(path)
    fmt = fmt or label_format(p)
    rows = [{c: "" if it.get(c) is None else str(it[c]) for c in SHEET_COLUMNS}
            | {"context_before": context_text(it.get("context_before")),
               "context_after": context_text(it.get("context_after"))} for it in items]
    if fmt == "jsonl":
        with p.open("w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        with p.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(SHEET_COLUMNS)
            for r in rows:
                w.writerow([csv_safe(r[c]) for c in SHEET_COLUMNS])
    else:
        raise UsageError(f"a coding sheet is CSV or JSONL, not {fmt!r}")
    return len(rows)
