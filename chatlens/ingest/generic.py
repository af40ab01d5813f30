"""Generic tables: CSV/TSV, JSON Lines (or a JSON array of objects) and Parquet.

Columns are mapped to chatlens fields by ``ParseOptions.column_map``, a dict **FIELD → COLUMN**
(``{"text": "body", "ts": "created"}``); fields it leaves out fall back to common column names
(:data:`DEFAULTS`, matched case-insensitively). Fields: ``text`` (required), ``ts``, ``author``,
``author_name``, ``chat``, ``message_id``, ``reply_to``, ``kind``. A mapped column the file lacks is
a :class:`~chatlens.errors.UsageError` naming the columns that exist.

Values: ``ts`` is ISO 8601 (with or without offset; naive → ``ts_naive``), ``dd.mm.yyyy hh:mm``,
or a unix number whose unit (s, ms, µs, ns) is read from its magnitude. A null/absent text is a bad
record; an empty string is kept as empty text. ``chat`` defaults to ``options.chat``, else the
file's stem; ``message_id`` defaults to None (the pipeline derives one from the content).

Everything streams: CSV row by row over an incremental decoder, JSON Lines line by line, a JSON
array through the bounded scanner, Parquet by record batches. The text encoding of CSV/TSV and
JSON files is decided and verified by :func:`chatlens.ingest.encoding.resolve` (``--encoding``,
a BOM, UTF-8, or a legacy code page of the project's languages, else
:class:`~chatlens.errors.EncodingError`); JSON that is not UTF-8 is transcoded to UTF-8 as it is
read. No mojibake is ever stored silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import orjson

from chatlens.errors import InputError
from chatlens.ingest.base import Bad, Item, ParseOptions, SourceInput
from chatlens.ingest.encoding import Utf8Reader, resolve, sniff_text
from chatlens.ingest.tabular import (
    CHUNK,
    LOOKAHEAD,
    MAX_RECORD,
    PLATFORM,
    RecordBuilder,
    resolve_columns,
    source_name,
    text_lines,
)
from chatlens.jsonscan import Element, ScanError, scan


def _delimiter(sample: str, suffix: str) -> str:
    """The delimiter that splits the sample's first rows most consistently, in linear time.

    (``csv.Sniffer`` was superlinear: a 63 KB run of ``"a,`` took minutes.) Each candidate
    splits at most 50 rows with the C csv reader; the best has the same field count (> 1) on
    most rows and appears in the header. Ties go to the order of the candidates.
    """
    candidates = "\t,;|" if suffix == ".tsv" else ",;\t|"
    header = sample.split("\n", 1)[0]
    best: tuple[int, float, int] = (0, 0.0, 0)
    found = ""
    for c in candidates:
        if c not in header:
            continue
        try:
            counts = [len(r) for r in itertools.islice(
                csv.reader(io.StringIO(sample), delimiter=c), 50) if r]
        except csv.Error:
            continue
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        score = (int(mode > 1), counts.count(mode) / len(counts), mode)
        if score > best:
            best, found = score, c
    if found:
        return found
    return "\t" if suffix == ".tsv" else ","


def _sample(text: str) -> str:
    return text[:text.rfind("\n") + 1] or text


class GenericCsv:
    name = "generic_csv.v1"
    format = "csv"
    platform = PLATFORM

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) != 1:
            return 0.0
        member = source.members[0]
        suffix = PurePosixPath(source_name(member.name)).suffix.lower()
        text = sniff_text(member.head(65536))
        if text is None:
            return 0.0
        sample = _sample(text)
        try:
            reader = csv.reader(io.StringIO(sample), delimiter=_delimiter(sample, suffix))
            rows = [r for r in itertools.islice(reader, 50) if r]
        except csv.Error:
            rows = []
        consistent = len(rows) >= 2 and len(rows[0]) >= 2 and sum(
            len(r) == len(rows[0]) for r in rows) >= 0.8 * len(rows)
        if suffix in (".csv", ".tsv"):
            return 0.8 if consistent else 0.6
        return 0.4 if consistent else 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        member = source.members[0]
        name = member.name
        encoding = resolve(source.members, options).encoding
        suffix = PurePosixPath(source_name(name)).suffix.lower()
        head = codecs.getincrementaldecoder(encoding)("replace").decode(member.head(65536))
        delim = _delimiter(_sample(head).lstrip("\ufeff"), suffix)
        builder = RecordBuilder(name, options)
        consumed: list[str] = []
        with member.open() as fh:
            def feed() -> Iterator[str]:
                for line in text_lines(fh, encoding, name):
                    consumed.append(line)
                    yield line

            reader = csv.reader(feed(), delimiter=delim)
            header: list[str] | None = None
            index: dict[str, int] = {}
            line_no = 1
            while True:
                try:
                    row = next(reader)
                    error = None
                except StopIteration:
                    break
                except csv.Error as exc:
                    row, error = [], str(exc)
                raw = "".join(consumed).rstrip("\r\n")
                consumed.clear()
                loc = f"{name}: line {line_no}"
                line_no = reader.line_num + 1
                if error is not None:
                    yield Bad(loc=loc, reason=f"unreadable CSV row: {error}", excerpt=raw)
                    continue
                if not row:
                    continue
                if header is None:
                    header = [h.lstrip("\ufeff").strip() for h in row]
                    cols = resolve_columns(header, options, name)
                    index = {fld: header.index(col) for fld, col in cols.items()}
                    continue
                if len(row) != len(header):
                    yield Bad(loc=loc, reason=f"row has {len(row)} fields, the header has "
                              f"{len(header)}", excerpt=raw)
                    continue
                yield builder.item({fld: row[i] for fld, i in index.items()}, raw, loc)
        if header is None:
            raise InputError(name, "the CSV file has no header row.")


# --- JSON Lines / JSON array ------------------------------------------------------------------

Entry = tuple[str, str, Any]  # (loc, raw, object or a BaseException describing why not)


def _json_lines(fh: IO[bytes], name: str) -> Iterator[Entry]:
    """One entry per non-blank line; a line longer than MAX_RECORD is an error entry, and
    only its first bytes are ever held."""
    rest = b""
    line_no = 0
    skipping = False  # inside a line too long to keep: drop bytes until its end
    while True:
        chunk = fh.read(CHUNK)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop() if chunk else b""
        for line in lines:
            line_no += 1
            if skipping:
                skipping = False
                yield (f"{name}: line {line_no}", "", ValueError(
                    f"the line is longer than {MAX_RECORD} bytes"))
                continue
            if line_no == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            raw = line.rstrip(b"\r").decode("utf-8", "replace")
            try:
                yield f"{name}: line {line_no}", raw, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield f"{name}: line {line_no}", raw, exc
        if len(rest) > MAX_RECORD:
            skipping, rest = True, b""
        if not chunk:
            if skipping:
                yield (f"{name}: line {line_no + 1}", "", ValueError(
                    f"the line is longer than {MAX_RECORD} bytes"))
            return


def _json_array(fh: IO[bytes], name: str) -> Iterator[Entry]:
    """The elements of a top-level JSON array, cut out by the bounded scanner: a damaged or
    too deeply nested element costs only itself."""
    n = 0
    try:
        for ev in scan(fh, lambda path: path == (), max_element=MAX_RECORD):
            if not isinstance(ev, Element):
                continue
            n += 1
            loc = f"{name}: item {n}"
            raw = ev.raw.decode("utf-8", "replace")
            if ev.error is not None:
                yield loc, raw, ValueError(ev.error)
                continue
            try:
                yield loc, raw, orjson.loads(ev.raw)
            except orjson.JSONDecodeError as exc:
                yield loc, raw, exc
    except ScanError as exc:
        if n == 0:
            raise InputError(name, f"not a valid JSON array ({exc}).") from None
        yield f"{name}: after item {n}", "", ValueError(f"the rest is unreadable: {exc}")


def _mapped(entries: Iterator[Entry], options: ParseOptions, name: str) -> Iterator[Item]:
    """Resolve the mapping from the first records' keys, then build every record."""
    ahead = list(itertools.islice(entries, LOOKAHEAD))
    keys: dict[str, None] = {}
    for _, _, obj in ahead:
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(k for k in obj if isinstance(k, str)))
    if not keys:
        if not ahead:
            raise InputError(name, "no JSON records found.")
        if all(isinstance(o, BaseException) for _, _, o in ahead):
            raise InputError(name, "not JSON Lines: the first lines are not valid JSON.")
    cols = resolve_columns(keys, options, name) if keys else {}
    builder = RecordBuilder(name, options)
    for loc, raw, obj in itertools.chain(ahead, entries):
        if isinstance(obj, BaseException):
            yield Bad(loc=loc, reason=f"invalid JSON: {obj}", excerpt=raw)
        elif not isinstance(obj, dict):
            yield Bad(loc=loc, reason=f"not a JSON object ({type(obj).__name__})", excerpt=raw)
        else:
            yield builder.item({f: obj.get(c) for f, c in cols.items()}, raw, loc)


class GenericJsonl:
    name = "generic_jsonl.v1"
    format = "jsonl"
    platform = PLATFORM

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) != 1:
            return 0.0
        member = source.members[0]
        raw = member.head(65536)
        head = sniff_text(raw)
        if head is None:
            return 0.0
        body = head.lstrip()
        if body.startswith("["):
            return 0.7 if body[1:].lstrip().startswith("{") else 0.0
        lines = head.split("\n")
        if len(raw) == 65536 and len(lines) > 1:
            lines.pop()  # possibly cut
        objs: list[Any] = []
        for line in itertools.islice((ln for ln in lines if ln.strip()), 10):
            try:
                objs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                objs.append(None)  # a damaged line does not disqualify the file
        if not objs or not isinstance(objs[0], dict) or sum(
                isinstance(o, dict) for o in objs) < 0.6 * len(objs):
            return 0.0
        if len(objs) == 1 and isinstance(objs[0].get("messages"), list):
            return 0.3  # a one-line (minified) Telegram export, not a table
        suffix = PurePosixPath(source_name(member.name)).suffix.lower()
        return 0.9 if suffix in (".jsonl", ".ndjson") else 0.8

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        member = source.members[0]
        encoding = resolve(source.members, options).encoding
        start = codecs.getincrementaldecoder(encoding)("replace").decode(member.head(4096))
        with member.open() as raw:
            utf8 = encoding in ("utf-8", "utf-8-sig")  # else transcoded (BOM dropped)
            fh = raw if utf8 else cast(IO[bytes], Utf8Reader(raw, encoding))
            if start.lstrip("\ufeff").lstrip().startswith("["):
                if encoding == "utf-8-sig":
                    fh.read(3)
                yield from _mapped(_json_array(fh, member.name), options, member.name)
            else:
                yield from _mapped(_json_lines(fh, member.name), options, member.name)


# --- Parquet ----------------------------------------------------------------------------------

@contextmanager
def local_path(source: SourceInput, suffix: str = "") -> Iterator[Path]:
    """A seekable local file for the source: the file itself, or a temporary copy of a member."""
    own = Path(source.path)
    if len(source.members) == 1 and own.is_file():
        yield own
        return
    with tempfile.TemporaryDirectory(prefix="chatlens-") as tmp:
        target = Path(tmp) / f"member{suffix}"
        with source.members[0].open() as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        yield target


class GenericParquet:
    name = "generic_parquet.v1"
    format = "parquet"
    platform = PLATFORM

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) == 1 and source.members[0].head(4) == b"PAR1":
            return 0.95
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = source.members[0].name
        with local_path(source, ".parquet") as path:
            try:
                pf = pq.ParquetFile(path)
                columns = pf.schema_arrow.names
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise InputError(name, f"not a readable Parquet file ({exc}).") from None
            cols = resolve_columns(columns, options, name)
            builder = RecordBuilder(name, options)
            n = 0
            try:
                for batch in pf.iter_batches(batch_size=8192):
                    for row in batch.to_pylist():
                        n += 1
                        loc = f"{name}: row {n}"
                        try:
                            raw = orjson.dumps(row, default=str,
                                               option=orjson.OPT_NON_STR_KEYS).decode()
                        except orjson.JSONEncodeError as exc:
                            yield Bad(loc=loc, reason=f"unreadable row: {exc}",
                                      excerpt=repr(row)[:500])
                            continue
                        yield builder.item({f: row.get(c) for f, c in cols.items()}, raw, loc)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise InputError(name, f"the Parquet file is damaged ({exc}).",
                                 f"row {n + 1}") from None
