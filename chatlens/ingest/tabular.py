"""Shared parts of the generic table importers: field mapping, values, decoded lines.

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
from chatlens.ingest.base import EPOCH, ONE_US, Bad, Chat, Item, ParseOptions, Record
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


# --- CSV ---------------------------------------------------------------------------------------

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


