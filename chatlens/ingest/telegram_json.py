"""Telegram Desktop JSON export (``result.json``): single chats and whole-account exports.

Telegram Desktop writes JSON pretty-printed with one space per nesting level, so every message
object of a ``messages`` array starts at a line ``<indent>{`` and ends at a line ``<indent>}``.
Strings cannot hold raw newlines, which makes those lines unambiguous: the reader finds message
boundaries with ``bytes.find`` over large chunks and parses each message alone with orjson, so a
multi-GB export streams in constant memory. Files in another layout fall back to ijson's
streaming parser. The exporter's invalid ``\\xHH`` escapes are repaired before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import IO, Any

import orjson

from chatlens.errors import InputError
from chatlens.ingest.base import (
    EPOCH,
    Bad,
    Chat,
    Item,
    ParseOptions,
    Record,
    Run,
    SourceInput,
)
from chatlens.jsonscan import Path, Scalar, ScanError, scan

CHUNK = 8 << 20
MAX_RECORD = 64 << 20  # no message (nor header line) of a real export comes near this
_MIN_WINDOW = 16 << 10  # what a bulk split searches at first (a message is ~1 KB)
MIN_US = (datetime(1, 1, 1) - EPOCH) // timedelta(microseconds=1)
MAX_US = (datetime(9999, 12, 31, 23, 59, 59) - EPOCH) // timedelta(microseconds=1)
_BAD_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\x([0-9a-fA-F]{2})")
_MESSAGES_KEY = re.compile(rb'^( *)"messages": \[ *\r?$')
_ELEMENT = re.compile(rb"^( +)\{\r?$")
_CHAT_KEY = re.compile(rb'^( *)"(name|type|id)": (.*?),? *\r?$')
_SECTION = re.compile(rb'^ *"(chats|left_chats)": \{')
MEDIA_KEYS = (
    ("sticker_emoji", "sticker"), ("photo", "photo"), ("poll", "poll"),
    ("location_information", "location"), ("contact_information", "contact"),
    ("game_title", "game"), ("invoice_information", "invoice"), ("file", "file"),
    ("giveaway_information", "giveaway"), ("paid_stars_amount", "paid_media"),
)
_MEDIA_KEYS = frozenset(key for key, _ in MEDIA_KEYS)


def repair_escapes(data: bytes) -> bytes:
    r"""Rewrite ``\xHH`` (not valid JSON) as ``\u00HH`` where the backslash is not escaped."""
    if b"\\x" not in data:
        return data
    return _BAD_ESCAPE.sub(rb"\1\\u00\2", data)


def loads(data: bytes) -> Any:
    r"""``orjson.loads``, with :func:`repair_escapes` only when it fails: valid JSON holds no
    unescaped ``\x``, so the repair cannot change a document orjson accepts (and most exports
    need none: the scan for ``\x`` is skipped)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        if b"\\x" not in data:
            raise
    return orjson.loads(repair_escapes(data))


def flatten_text(text: Any) -> str:
    """Join a ``text`` value (string, or list of strings and entity objects) into plain text."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        parts = []
        for part in text:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                value = part.get("text")
                if isinstance(value, str):
                    parts.append(value)
        return "".join(parts)
    return ""


def _entities(ents: Any, text: Any) -> bytes | None:
    """The message's formatting entities as JSON (UTF-8; None when it is all plain text)."""
    if isinstance(ents, list):
        for e in ents:
            if isinstance(e, dict) and e.get("type") != "plain":
                return orjson.dumps([e for e in ents if isinstance(e, dict) and e.get("text")])
    if isinstance(text, list):  # older exports: entities only inside `text`
        parts = [p for p in text if isinstance(p, dict) and p.get("text")]
        return orjson.dumps(parts) if parts else None
    return None


def _text(raw: str | bytes) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def to_record(msg: Any, chat: Chat, raw: str | bytes, loc: str) -> Item:
    """Map one message object to a :class:`Record` (or :class:`Bad` if it is not one).

    ``raw`` is the message as it stands in the file (bytes are kept as read; the store checks
    that they are UTF-8)."""
    if not isinstance(msg, dict):
        return Bad(loc=loc, reason="message is not a JSON object", excerpt=_text(raw))
    mid = msg.get("id")
    if not isinstance(mid, int):
        return Bad(loc=loc, reason="message has no integer 'id'", excerpt=_text(raw))
    get = msg.get
    mtype = get("type", "message")
    ts_naive = False
    unix = get("date_unixtime")
    ts_us: int | None
    try:
        if type(unix) is str:  # what every export writes
            ts_us = int(unix) * 1_000_000
        elif unix is not None:
            if isinstance(unix, bool) or not isinstance(unix, int | str):
                raise TypeError("not a number")
            ts_us = int(unix) * 1_000_000
        elif isinstance(get("date"), str):
            local = datetime.fromisoformat(msg["date"])
            ts_us = int((local - EPOCH).total_seconds()) * 1_000_000
            ts_naive = True
        else:
            ts_us = None
        if ts_us is not None and not MIN_US <= ts_us <= MAX_US:
            raise ValueError("out of range")
    except (ValueError, TypeError, OverflowError):
        return Bad(loc=loc, reason=f"unreadable date {unix or get('date')!r}"[:200],
                   excerpt=_text(raw))
    value = get("text")
    ents = get("text_entities")
    if type(value) is str:  # plain text: no entities but, at most, one plain one
        text = value
        entities = None if not ents or (type(ents) is list and len(ents) == 1 and type(
            ents[0]) is dict and ents[0].get("type") == "plain") else _entities(ents, value)
    else:
        text = flatten_text(value)
        entities = _entities(ents, value)
    kind, media = "message", None
    if mtype == "service":
        kind = "service"
    elif mtype == "unsupported":
        kind, media = "media", "unsupported"
    else:
        media = get("media_type")
        if media is not None and not isinstance(media, str):
            media = "other"  # a media type the exporter never writes: kept as media, typed other
        if media is None and not _MEDIA_KEYS.isdisjoint(msg):
            media = next(name for key, name in MEDIA_KEYS if key in msg)
        if media is not None:
            kind = "media"
    author_id = get("from_id") or get("actor_id")
    author_name = get("from") if "from_id" in msg else get("actor")
    reply = get("reply_to_message_id")
    reply_to = None
    if reply is not None:
        peer = get("reply_to_peer_id")
        reply_to = f"{peer}/{reply}" if peer else str(reply)
    fwd = get("forwarded_from_id") or get("forwarded_from") or get("saved_from")
    return Record(
        chat=chat,
        message_id=str(mid),
        ts_us=ts_us,
        ts_naive=ts_naive,
        text=text,
        raw=raw,
        loc=loc,
        kind=kind,
        media=media,
        author_id=str(author_id) if author_id is not None else None,
        author_name=author_name if isinstance(author_name, str) else None,
        reply_to=reply_to,
        forwarded_from=str(fwd) if fwd is not None else (
            "hidden" if "forwarded_from" in msg else None),
        entities=entities,
        edited="edited" in msg,
    )


class _RepairingReader:
    """A binary reader that applies :func:`repair_escapes` on the fly (for the ijson path).

    A chunk is never cut right after a backslash (nor within three bytes of the end), so an
    escape and the backslashes before it are always repaired together.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.rest = b""

    def read(self, n: int = -1) -> bytes:
        if n == 0:  # ijson probes with read(0) to tell bytes from text
            return b""
        data = self.rest + self.fh.read(n if n > 0 else CHUNK)
        if not data:
            return b""
        if len(data) <= len(self.rest):  # end of file: repair what is left
            self.rest = b""
            return repair_escapes(data)
        cut = max(len(data) - 3, 0)
        while cut > 0 and data[cut - 1:cut] == b"\\":
            cut -= 1
        self.rest = data[cut:]
        return repair_escapes(data[:cut]) if cut else self.read(n)


class _Lines:
    """A chunked reader that hands out lines and, in message mode, whole array elements."""

    def __init__(self, fh: IO[bytes], name: str = "") -> None:
        self.fh = fh
        self.name = name
        self.buf = b""
        self.pos = 0
        self.line_no = 1  # line number at self.pos
        self.eof = False
        self.window = _MIN_WINDOW  # bytes :meth:`elements` searches

    def _fill(self) -> bool:
        if self.eof:
            return False
        if len(self.buf) - self.pos > MAX_RECORD:  # bounded: never hold more than one record
            raise InputError(self.name, f"a line or message longer than {MAX_RECORD >> 20} MB; "
                             "no Telegram export has one, so the file is damaged or not an "
                             "export.", f"line {self.line_no}")
        data = self.fh.read(CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def readline(self) -> bytes | None:
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                line = self.buf[self.pos:end]
                self.pos = end + 1
                self.line_no += 1
                return line
            if not self._fill():
                if self.pos < len(self.buf):
                    line = self.buf[self.pos:]
                    self.pos = len(self.buf)
                    return line
                return None

    def peek(self) -> bytes | None:
        """The next line, left unread (a refill keeps the bytes from ``pos`` on)."""
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end >= 0:
                return self.buf[self.pos:end]
            if not self._fill():
                return self.buf[self.pos:] if self.pos < len(self.buf) else None

    def elements(self, opener: bytes, close: bytes) -> tuple[list[bytes], list[int]]:
        """The run of regular elements the buffer holds from here: each one ``opener``, a line
        break, its lines, ``close``, then ``,`` and a line break before the next; with the line
        each starts at. Found in bulk (a split at the separator, which only the end of an
        element at this indent can match); anything else is left to :meth:`element`."""
        head = opener + b"\n"
        if not self.buf.startswith(head, self.pos):
            return [], []
        sep = close + b",\n" + head
        # within a window that doubles while runs are regular and shrinks when one is not, so
        # an odd layout costs a few KB of search an element, not the rest of the buffer
        end = self.buf.rfind(sep, self.pos, self.pos + self.window)
        if end < 0:
            self.window = _MIN_WINDOW
            return [], []
        region = self.buf[self.pos + len(head):end]
        parts = region.split(sep)
        if region.count(close) != len(parts) - 1:  # an element ends early (no comma after it)
            parts = parts[:next(i for i, p in enumerate(parts) if close in p)]
            self.window = _MIN_WINDOW
        else:
            self.window = min(2 * self.window, CHUNK)
        datas = [b"".join((head, part, close)) for part in parts]
        lines = list(accumulate([part.count(b"\n") + 3 for part in parts], initial=self.line_no))
        self.line_no = lines.pop()
        self.pos += sum(map(len, parts)) + len(parts) * (len(head) + len(close) + 2)
        return datas, lines

    def element(self, close: bytes) -> tuple[bytes, bool] | None:
        """Bytes up to the next line equal to ``close`` (which starts with a newline).

        Returns (bytes, complete); complete is False when the file ends first.
        """
        offset = 0  # bytes after self.pos already searched
        while True:
            end = self.buf.find(close, self.pos + offset)
            if end >= 0:
                stop = end + len(close)
                if stop >= len(self.buf) and not self.eof:
                    rel = end - self.pos
                    if self._fill():
                        offset = rel
                        continue
                if self.buf[stop:stop + 1] in (b",", b"\n", b"\r", b""):
                    data = self.buf[self.pos:stop]
                    self.line_no += data.count(b"\n")
                    self.pos = stop
                    return data, True
                offset = stop - self.pos
                continue
            offset = max(0, len(self.buf) - self.pos - len(close))
            if not self._fill():
                rest = self.buf[self.pos:]
                self.line_no += rest.count(b"\n")
                self.pos = len(self.buf)
                return (rest, False) if rest.strip() else None


class TelegramJson:
    name = "telegram_json.v1"
    format = "telegram-json"
    platform = "telegram"

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) != 1:
            return 0.0
        head = source.members[0].head(8192).lstrip(b"\xef\xbb\xbf").lstrip()
        if not head.startswith(b"{"):
            return 0.0
        score = 0.0
        if b'"messages"' in head or b'"chats"' in head or b'"left_chats"' in head:
            score += 0.5
        if b'"date_unixtime"' in head or b'"from_id"' in head or b'"about"' in head:
            score += 0.3
        if re.search(rb'"type": ?"(personal_chat|private_group|private_supergroup|public_supergroup'
                     rb'|private_channel|public_channel|bot_chat|saved_messages|message|service)"',
                     head):
            score += 0.2
        return min(score, 1.0)

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        for item in self.parse_runs(source, options):
            if isinstance(item, Run):
                yield from item.items()
            else:
                yield item

    def parse_runs(self, source: SourceInput, options: ParseOptions) -> Iterator[Item | Run]:
        """:meth:`parse`'s items, runs of regular elements left as :class:`ElementRun`."""
        member = source.members[0]
        with member.open() as fh:
            head = fh.read(4096)
        if not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
            raise InputError(member.name, "not a Telegram JSON export (it does not start with "
                             "'{').", "byte 0")
        pretty = re.search(rb'\n( +)"', head) is not None
        if not pretty:
            yield from self._parse_stream(source, options)
            return
        with member.open() as fh:
            yield from self._parse_pretty(fh, member.name, options)

    def _parse_pretty(self, fh: IO[bytes], name: str, options: ParseOptions,
                      ) -> Iterator[Item | Run]:
        reader = _Lines(fh, name)
        first = reader.readline()
        if first is None:
            raise InputError(name, "the file is empty.")
        if not first.lstrip(b"\xef\xbb\xbf").strip().startswith(b"{"):
            raise InputError(name, "not a Telegram JSON export (it does not start with '{').",
                             "line 1")
        header: dict[int, dict[str, Any]] = {}  # indent -> chat keys seen at that indent
        section = ""
        found_messages = False
        while (line := reader.readline()) is not None:
            if m := _SECTION.match(line):
                section = m.group(1).decode()
                continue
            if m := _CHAT_KEY.match(line):
                try:
                    value = loads(m.group(3))
                except orjson.JSONDecodeError:
                    value = m.group(3).decode("utf-8", "replace")
                header.setdefault(len(m.group(1)), {})[m.group(2).decode()] = value
                continue
            m = _MESSAGES_KEY.match(line)
            if not m:
                continue
            found_messages = True
            indent = len(m.group(1))
            keys = header.pop(indent, {})
            chat_id = keys.get("id")
            if chat_id is None:
                chat_id = options.chat or "unknown"
            chat = Chat("telegram", str(chat_id), keys.get("name") if isinstance(
                keys.get("name"), str) else options.chat, keys.get("type") if isinstance(
                keys.get("type"), str) else None)
            if section == "left_chats" and chat.type:
                chat.type = f"{chat.type} (left)"
            # Telegram indents each level by one space; a re-indented file (jq, json.tool) by
            # more: the first element's line says
            first_elem = _ELEMENT.match(reader.peek() or b"")
            elem_indent = first_elem.group(1) if first_elem and len(first_elem.group(1)) > indent \
                else b" " * (indent + 1)
            opener = elem_indent + b"{"
            close = b"\n" + elem_indent + b"}"
            ended = b" " * indent + b"]"
            while True:
                datas, lines = reader.elements(opener, close)
                if datas:
                    yield ElementRun(datas, lines, chat, name)
                    continue
                line = reader.readline()
                if line is None:
                    yield Bad(loc=f"{name}: line {reader.line_no}", excerpt="",
                              reason="the file ends before the list of messages does (a "
                              "truncated export: any messages after this line are missing)")
                    return
                stripped = line.rstrip(b"\r")
                if stripped.startswith(ended) and stripped.strip() in (b"]", b"],"):
                    break
                if stripped != opener:
                    if stripped.strip():
                        yield Bad(loc=f"{name}: line {reader.line_no - 1}",
                                  reason="unexpected line inside 'messages'",
                                  excerpt=line.decode("utf-8", "replace"))
                    continue
                start_line = reader.line_no - 1
                got = reader.element(close)
                if got is None:
                    yield Bad(loc=f"{name}: line {start_line}",
                              reason="file ends inside a message (truncated export)",
                              excerpt=opener.decode())
                    return
                body, complete = got
                data = line + b"\n" + body  # the opener's line as read (with its CR, if any)
                loc = f"{name}: line {start_line}"
                if not complete:
                    yield Bad(loc=loc, reason="file ends inside a message (truncated export)",
                              excerpt=_text(data))
                    return
                tail = reader.readline()  # the rest of the closing line: "," or nothing
                if tail is not None and tail.strip() not in (b"", b","):
                    yield Bad(loc=f"{name}: line {reader.line_no - 1}",
                              reason="unexpected text after a message",
                              excerpt=tail.decode("utf-8", "replace"))
                try:
                    msg = loads(data)
                except orjson.JSONDecodeError as exc:
                    yield Bad(loc=loc, reason=f"invalid JSON: {exc}", excerpt=_text(data))
                    continue
                yield to_record(msg, chat, data, loc)
        if not found_messages:
            raise InputError(name, "no 'messages' list found; this is not a Telegram Desktop "
                             "JSON export, or it is truncated before its first message.")

    def _parse_stream(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        """Any other JSON layout (e.g. minified): the bounded scanner of :mod:`.jsonscan`.

        Each message is cut out and parsed alone, so a damaged message costs only itself, and a
        message nested too deeply or too long is quarantined without being held in memory.
        """
        member = source.members[0]
        chats: dict[Path, dict[str, Any]] = {}  # path of a chat object -> name/type/id
        n = 0
        with member.open() as fh:
            try:
                for ev in scan(fh, _messages_array):
                    if isinstance(ev, Scalar):
                        if ev.path and ev.path[-1] in ("id", "name", "type"):
                            try:
                                value = loads(ev.raw)
                            except orjson.JSONDecodeError:
                                continue
                            chats.setdefault(ev.path[:-1], {})[str(ev.path[-1])] = value
                        continue
                    n += 1
                    loc = f"{member.name}: message {n} (byte {ev.offset})"
                    if ev.error is not None:
                        yield Bad(loc=loc, reason=ev.error, excerpt=_text(ev.raw))
                        continue
                    try:
                        msg = loads(ev.raw)
                    except orjson.JSONDecodeError as exc:
                        yield Bad(loc=loc, reason=f"invalid JSON: {exc}", excerpt=_text(ev.raw))
                        continue
                    yield to_record(msg, _chat(chats.get(ev.path[:-2], {}), ev.path, options),
                                    ev.raw, loc)
            except ScanError as exc:
                if n == 0:
                    raise InputError(member.name, f"not valid JSON ({exc}).",
                                     f"byte {exc.offset}") from None
                yield Bad(loc=f"{member.name}: after message {n} (byte {exc.offset})",
                          reason=f"the rest of the file is not valid JSON: {exc}", excerpt="")
                return
        if n == 0 and not chats:
            raise InputError(member.name, "no 'messages' list found; this is not a Telegram "
                             "Desktop JSON export.")


@dataclass(slots=True)
class ElementRun(Run):
    """Whole elements split in bulk: their bytes, and the line each starts at."""

    datas: list[bytes]
    lines: list[int]
    chat: Chat
    name: str

    def __len__(self) -> int:
        return len(self.datas)

    def items(self) -> Iterator[Item]:
        for data, line in zip(self.datas, self.lines, strict=True):
            try:
                msg = loads(data)
            except orjson.JSONDecodeError as exc:
                yield Bad(loc=f"{self.name}: line {line}", reason=f"invalid JSON: {exc}",
                          excerpt=_text(data))
                continue
            yield to_record(msg, self.chat, data, f"{self.name}: line {line}")

    def raws(self) -> Sequence[str | bytes]:
        return self.datas

    def cut(self, start: int, stop: int) -> ElementRun:
        if (start, stop) == (0, len(self.datas)):
            return self
        return ElementRun(self.datas[start:stop], self.lines[start:stop], self.chat, self.name)


def _messages_array(path: Path) -> bool:
    """A chat's ``messages``: at the top, or in ``chats.list[i]`` / ``left_chats.list[i]``."""
    return path == ("messages",) or (len(path) == 4 and path[0] in ("chats", "left_chats")
                                     and path[1] == "list" and path[3] == "messages")


def _chat(keys: dict[str, Any], path: Path, options: ParseOptions) -> Chat:
    chat_id = keys.get("id")
    name, ctype = keys.get("name"), keys.get("type")
    chat = Chat("telegram", str(chat_id) if isinstance(chat_id, int | str) else (
        options.chat or "unknown"), name if isinstance(name, str) else options.chat,
        ctype if isinstance(ctype, str) else None)
    if path[0] == "left_chats" and chat.type:
        chat.type = f"{chat.type} (left)"
    return chat
