"""Shared parts of the generic table importers: field mapping, values, text encodings.

``ParseOptions.column_map`` is a dict **FIELD → COLUMN**; fields it leaves out fall back to the
common column names in :data:`DEFAULTS`. See :mod:`chatlens.ingest.generic`.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import IO, Any

from chatlens.errors import EncodingError, InputError, UsageError
from chatlens.ingest.base import EPOCH, ONE_US, Bad, Chat, Item, ParseOptions, Record, SourceInput
from chatlens.schema import KINDS

CHUNK = 4 << 20
MAX_RECORD = 64 << 20  # longest line or record held in memory
PLATFORM = "generic"
LOOKAHEAD = 200  # JSON records scanned for column names before mapping is resolved
FIELDS = ("text", "ts", "author", "author_name", "chat", "message_id", "reply_to", "kind")
DEFAULTS: dict[str, tuple[str, ...]] = {
    "text": ("text", "message", "body", "content"),
    "ts": ("date", "ts", "timestamp", "time", "created_at", "datetime"),
    "author": ("author", "author_id", "sender", "sender_id", "from", "from_id", "user",
               "user_id"),
    "author_name": ("author_name", "sender_name", "from_name", "user_name"),
    "chat": ("chat", "chat_id", "channel", "channel_id"),
    "message_id": ("message_id", "id", "msg_id"),
    "reply_to": ("reply_to", "reply_to_message_id", "reply_to_id"),
    "kind": ("kind",),
}
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")
_DMY = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


# --- values -----------------------------------------------------------------------------------

def _epoch_us(value: float) -> int:
    """Unix time in s, ms, µs or ns (told apart by magnitude) → microseconds."""
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    size = abs(value)
    for limit, factor in ((1e11, 1_000_000), (1e14, 1_000), (1e17, 1)):
        if size < limit:
            return int(value * factor) if isinstance(value, float) else int(value) * factor
    if size < 1e20:
        return int(value) // 1_000
    raise ValueError("number too large for a timestamp")


def parse_ts(value: Any) -> tuple[int | None, bool]:
    """(microseconds, naive) for a timestamp value; ValueError when it cannot be read."""
    if value is None or value == "":
        return None, False
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return (value - EPOCH) // ONE_US, True
        return (value.astimezone(UTC).replace(tzinfo=None) - EPOCH) // ONE_US, False
    if isinstance(value, date):
        return (datetime(value.year, value.month, value.day) - EPOCH) // ONE_US, True
    if isinstance(value, int | float):
        return _epoch_us(value), False
    if isinstance(value, str):
        s = value.strip()
        if _NUMBER.fullmatch(s):
            return _epoch_us(int(s) if s.lstrip("+-").isdigit() else float(s)), False
        try:
            return parse_ts(datetime.fromisoformat(s))
        except ValueError:
            for fmt in _DMY:
                try:
                    return parse_ts(datetime.strptime(s, fmt))
                except ValueError:
                    continue
    raise ValueError(f"unreadable date {value!r}")


def opt_str(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def source_name(name: str) -> str:
    return PurePosixPath(name.rsplit("!", 1)[-1].replace("\\", "/")).name


# --- column mapping ---------------------------------------------------------------------------

def resolve_columns(columns: Iterable[str], options: ParseOptions, name: str) -> dict[str, str]:
    """field → column for this file; UsageError for unknown fields or missing columns."""
    cols = list(columns)
    by_lower = {c.strip().lower(): c for c in reversed(cols)}
    listing = ", ".join(repr(c) for c in cols) or "none"
    out: dict[str, str] = {}
    for fld, col in options.column_map.items():
        if fld not in FIELDS:
            raise UsageError(f"Unknown field {fld!r} in the column mapping; fields are: "
                             f"{', '.join(FIELDS)} (mapping is COLUMN=FIELD on the command line).")
        if col in cols:
            out[fld] = col
        elif col.strip().lower() in by_lower:
            out[fld] = by_lower[col.strip().lower()]
        else:
            raise UsageError(f"{name}: mapped column {col!r} (for {fld}) is not in the file; "
                             f"its columns are: {listing}.")
    for fld, names in DEFAULTS.items():
        if fld in out:
            continue
        for cand in names:
            if cand in by_lower and by_lower[cand] not in out.values():
                out[fld] = by_lower[cand]
                break
    if "text" not in out:
        raise UsageError(f"{name}: no text column found; name one with --map COLUMN=text. "
                         f"Its columns are: {listing}.")
    return out


class RecordBuilder:
    """Turns per-field values into records; caches chats."""

    def __init__(self, name: str, options: ParseOptions) -> None:
        self.default_chat = options.chat or PurePosixPath(source_name(name)).stem or "unknown"
        self.chats: dict[str, Chat] = {}

    def chat(self, chat_id: str) -> Chat:
        found = self.chats.get(chat_id)
        if found is None:
            found = self.chats[chat_id] = Chat(PLATFORM, chat_id, chat_id)
        return found

    def item(self, values: dict[str, Any], raw: str, loc: str) -> Item:
        text = values.get("text")
        if text is None:
            return Bad(loc=loc, reason="missing text", excerpt=raw)
        if isinstance(text, dict | list) or (isinstance(text, float) and not math.isfinite(text)):
            return Bad(loc=loc, reason=f"text is not a string ({type(text).__name__})",
                       excerpt=raw)
        try:
            ts_us, naive = parse_ts(values.get("ts"))
        except (ValueError, OverflowError, OSError) as exc:
            return Bad(loc=loc, reason=f"unparsable date: {exc}", excerpt=raw)
        kind = (opt_str(values.get("kind")) or "message").lower()
        return Record(
            chat=self.chat(opt_str(values.get("chat")) or self.default_chat),
            message_id=opt_str(values.get("message_id")),
            ts_us=ts_us, ts_naive=naive, text=text if isinstance(text, str) else opt_str(
                text) or "", raw=raw, loc=loc, kind=kind if kind in KINDS else "message",
            author_id=opt_str(values.get("author")),
            author_name=opt_str(values.get("author_name")),
            reply_to=opt_str(values.get("reply_to")),
        )


# --- CSV --------------------------------------------------------------------------------------

def bom(head: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if head.startswith(bom)), None)


def _first_error(fh: IO[bytes], encoding: str) -> tuple[int, bytes] | None:
    """(byte offset, bad bytes) of the first undecodable byte, or None if the file decodes."""
    # the BOM is valid UTF-8 (U+FEFF); decoding it as such keeps the offsets exact
    decoder = codecs.getincrementaldecoder(
        "utf-8" if encoding == "utf-8-sig" else encoding)("strict")
    offset = 0
    while True:
        chunk = fh.read(CHUNK)
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            return offset - pending + exc.start, exc.object[exc.start:exc.end][:4]
        if not chunk:
            return None
        offset += len(chunk)


def detect_encoding(source: SourceInput, options: ParseOptions) -> str:
    member = source.members[0]
    forced = options.encoding
    enc = forced or bom(member.head(4)) or "utf-8"
    with member.open() as fh:
        err = _first_error(fh, enc)
    if err is None:
        return enc
    if enc == "utf-8" and not forced:
        from charset_normalizer import from_bytes

        with member.open() as fh:
            sample = fh.read(1 << 20)
            skip = err[0] - len(sample) - 65536
            while skip > 0 and (got := len(fh.read(min(skip, CHUNK)))):
                skip -= got
            sample += fh.read(131072)  # the neighbourhood of the first bad byte
        best = from_bytes(sample).best()
        if best is not None and best.coherence >= 0.2 and best.chaos <= 0.15 and \
                best.encoding not in ("utf_8", "ascii"):
            with member.open() as fh:
                if _first_error(fh, best.encoding) is None:
                    return best.encoding
    why = "and the encoding could not be detected with confidence" if enc == "utf-8" and \
        not forced else f"though the file {'was said' if forced else 'declares (BOM)'} to be {enc}"
    raise EncodingError(
        member.name,
        f"not valid {enc} text: byte offset {err[0]} holds {err[1].hex(' ')}, {why}. Convert the "
        "file to UTF-8 (for example `iconv -f cp1251 -t utf-8`) or name its encoding "
        "(--encoding cp1251).",
        f"byte {err[0]}",
    )


def text_lines(fh: IO[bytes], encoding: str, name: str) -> Iterator[str]:
    """Decoded lines split on '\\n' only (line ends kept), as csv expects with newline=''."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    rest = ""
    offset = 0
    try:
        while chunk := fh.read(CHUNK):
            parts = (rest + decoder.decode(chunk)).split("\n")
            rest = parts.pop()
            offset += len(chunk)
            for part in parts:
                yield part + "\n"
            if len(rest) > MAX_RECORD:  # bounded: one line is never held beyond this
                raise InputError(name, f"a line longer than {MAX_RECORD >> 20} MB; this is not "
                                 "a table of messages, or it is damaged.", f"near byte {offset}")
        rest += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise EncodingError(name, f"not valid {encoding} text ({exc.reason}).",
                            f"near byte {offset + exc.start}") from None
    if rest:
        yield rest


