"""WhatsApp "Export chat" text files (``WhatsApp Chat with X.txt``, a zip's ``_chat.txt``).

Every message starts with a header (``20/01/19, 11:23 - `` on Android, ``[06/03/2017, 00:45:12] ``
on iOS); other lines continue the previous message. Headers are matched on a cleaned copy of the
line (bidi/zero-width marks removed, exotic spaces and Arabic-Indic digits normalised); bodies are
kept as written, except that leading U+200E/U+200F marks are dropped. The whole file is read first
(exports are capped at ~40 000 messages) because the date order (dmy, mdy or ymd) is decided per
file, from every header:

1. a first component of 3-4 digits (or > 31) means year-first;
2. otherwise a component > 12 fixes which one is the day;
3. otherwise ``ParseOptions.date_order`` when the user gave one (an explicit choice beats a guess);
4. otherwise the component that changes more often between consecutive messages is the day;
5. otherwise day-first.

Sender rule: the sender is the text before the first ``": "`` after the header. A name may itself
contain ``": "`` only when *every* message of the file whose text starts with the shorter prefix
continues with the same longer ``"A: B: "`` prefix, at least twice (so ``Dr: Who`` is found when
all their messages agree, while ``Bob: Note: x`` keeps ``Bob``). On Android-style lines a prefix
holding a double quote is never a sender (``X changed the subject to "A: b"`` is a system line).
Senders are cleaned like headers, with a leading ``~`` (non-contacts on newer builds) removed.

Kinds: lines without a sender, iOS lines whose body starts with U+200E (system notes written with
the group or member as sender) and deleted-message placeholders are ``service``; media markers are
``media`` with ``media`` set (photo, video, audio, sticker, gif, document, contact, poll,
location, or ``media`` when the type is unknown) and ``text`` holding only the caption (the marker
and the file name stay in ``raw``). A trailing ``<This message was edited>`` sets ``edited``.

Encoding: WhatsApp writes UTF-8; a file re-saved in a code page ("ANSI") is read in the encoding
:func:`chatlens.ingest.encoding.resolve` decides (``--encoding``, a BOM, or a confidently
detected code page of the project's languages) or refused before anything is stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import pairwise
from pathlib import PurePosixPath
from typing import NamedTuple

from chatlens.errors import EncodingError, InputError, UsageError
from chatlens.ingest.base import (
    EPOCH,
    ONE_US,
    Bad,
    Chat,
    Item,
    Member,
    ParseOptions,
    Record,
    SourceInput,
)
from chatlens.ingest.encoding import resolve, sniff_text

_REMOVED = (
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d"
    "\ufeff\u00ad"
)
_TABLE: dict[int, int | None] = {ord(c): None for c in _REMOVED}
_TABLE.update({ord(c): ord(" ") for c in "\u202f\u00a0\u2009"})
_TABLE.update({0x0660 + i: ord("0") + i for i in range(10)})  # Arabic-Indic digits
_TABLE.update({0x06F0 + i: ord("0") + i for i in range(10)})  # Extended Arabic-Indic digits
_AMPM = r"[AaPp]\.?\s?[Mm]\.?|上午|下午|午前|午後|오전|오후|ص|م"
_HEADER = re.compile(
    r"(\[)?(\d{1,4})[./-]\s?(\d{1,2})[./-]\s?(\d{1,4})\.?[,،]?\s(?:klo\s)?"
    rf"(?:({_AMPM})\s?)?(\d{{1,2}})[:.](\d{{2}})(?:[:.](\d{{2}}))?(?:\s?({_AMPM}))?"
    r"(\]\s?|\s[-–]\s|:\s)"
)
_PM = ("p", "下午", "午後", "오후", "م")
_DELETED = re.compile(
    r"(?:This message was deleted|You deleted this message|Diese Nachricht wurde gelöscht"
    r"|Du hast diese Nachricht gelöscht|Se eliminó este mensaje|Eliminaste este mensaje"
    r"|Esta mensagem foi apagada|Você apagou esta mensagem)\b"
)
_EDITED = re.compile(
    r"[\s\u200e\u200f]*<(?:This message was edited|Diese Nachricht wurde bearbeitet"
    r"|Se editó este mensaje|Mensagem editada|Ce message a été modifié|Dit bericht is bewerkt)"
    r"\.?>[\s\u200e\u200f]*$"
)
_OMITTED = re.compile(r"<(?:Media omitted|Medien ausgeschlossen|Multimedia omitido|Mídia oculta)>")
_IOS_OMITTED = re.compile(
    r"(?:.*\s)?(image|video|audio|sticker|GIF|document|Contact card|Bild|Video|Audio|Sticker"
    r"|Dokument|Kontakt|imagen|audio|documento) (?:omitted|weggelassen|omitido)", re.IGNORECASE
)
_ATTACHED = (  # the group holds the file name
    re.compile(r"(.+?) \((?:file attached|Datei angehängt|archivo adjunto|arquivo anexado"
               r"|fichier joint|file allegato)\)"),
    re.compile(r"<[^<>:]{1,30}: ([^<>]*\.\w{2,5})>"),
    re.compile(r"(\S+\.\w{2,5}) <attached>"),
)
_LOCATION = re.compile(r"[^:]{1,40}: https://maps\.google\.com/\?q=[-\d.,]+")
_OMITTED_TYPES = {"image": "photo", "bild": "photo", "imagen": "photo", "video": "video",
                  "audio": "audio", "sticker": "sticker", "gif": "gif", "document": "document",
                  "dokument": "document", "documento": "document", "contact card": "contact",
                  "kontakt": "contact"}
_EXT_TYPES = {"jpg": "photo", "jpeg": "photo", "png": "photo", "heic": "photo", "mp4": "video",
              "mov": "video", "3gp": "video", "opus": "audio", "m4a": "audio", "mp3": "audio",
              "aac": "audio", "ogg": "audio", "webp": "sticker", "gif": "gif", "vcf": "contact"}
_NAME_PREFIXES = ("whatsapp chat with ", "whatsapp chat - ", "whatsapp-chat mit ",
                  "chat de whatsapp con ", "conversa do whatsapp com ", "discussion whatsapp avec ")
_COPY_SUFFIX = re.compile(r"\s*\(\d+\)$")
ORDERS = ("dmy", "mdy", "ymd")


class Header(NamedTuple):
    a: int
    b: int
    c: int
    a_len: int
    hour: int
    minute: int
    second: int
    pm: bool | None  # None: 24-hour clock
    ios: bool  # bracketed or "hh:mm:ss: " style (iOS)
    end: int  # offset of the text after the header in the cleaned line


def clean(line: str) -> str:
    """The line as used for matching: invisible marks removed, spaces and digits normalised."""
    return line.translate(_TABLE)


def match_header(cleaned: str) -> Header | None:
    m = _HEADER.match(cleaned)
    if m is None:
        return None
    bracket, a, b, c, ampm1, hh, mm, ss, ampm2, sep = m.groups()
    if bool(bracket) != sep.startswith("]") or (sep == ": " and ss is None):
        return None
    ampm = ampm1 or ampm2
    pm = None if ampm is None else ampm.lower().startswith(_PM)
    return Header(int(a), int(b), int(c), len(a), int(hh), int(mm), int(ss or 0), pm,
                  bool(bracket) or sep == ": ", m.end())


def infer_date_order(heads: Sequence[Header], given: str | None) -> tuple[str, str]:
    """(order, reason) for one file's headers; see the module docstring."""
    if given is not None and given not in ORDERS:
        raise UsageError(f"Unknown date order {given!r}; use one of {', '.join(ORDERS)}.")
    if sum(h.a_len >= 3 or h.a > 31 for h in heads) * 2 > len(heads):
        return "ymd", "year-first dates"
    day_a = sum(h.a > 12 for h in heads)
    day_b = sum(h.b > 12 for h in heads)
    if day_a != day_b:
        return ("dmy", "a first component > 12") if day_a > day_b else (
            "mdy", "a second component > 12")
    if given:
        return given, "date order given by the user"
    changes_a = sum(x.a != y.a for x, y in pairwise(heads))
    changes_b = sum(x.b != y.b for x, y in pairwise(heads))
    if changes_a != changes_b:
        return ("dmy" if changes_a > changes_b else "mdy"), "the day changes more often"
    return "dmy", "ambiguous dates; day-first by default"


def header_ts(h: Header, order: str) -> int:
    """Naive local time as microseconds since the epoch (ValueError for impossible dates)."""
    if order == "ymd":
        year, month, day = h.a, h.b, h.c
    elif order == "mdy":
        month, day, year = h.a, h.b, h.c
    else:
        day, month, year = h.a, h.b, h.c
    if year < 100:
        year += 2000
    hour = h.hour
    if h.pm is not None and hour <= 12:
        hour = hour % 12 + (12 if h.pm else 0)
    dt = datetime(year, month, day, hour, h.minute, h.second)
    return (dt - EPOCH) // ONE_US


def chat_for(member_name: str, options: ParseOptions) -> Chat:
    """The chat a file belongs to: ``options.chat``, else the name in the export's file name."""
    if options.chat:
        title = options.chat
    else:
        archive, _, inner = member_name.rpartition("!")
        path = PurePosixPath(inner.replace("\\", "/"))
        if archive and path.name.lower() == "_chat.txt":
            title = PurePosixPath(archive.replace("\\", "/")).stem
        else:
            title = path.stem
        title = _COPY_SUFFIX.sub("", clean(title)).strip()
        for prefix in _NAME_PREFIXES:
            if title.lower().startswith(prefix) and len(title) > len(prefix):
                title = title[len(prefix):]
                break
    chat_id = " ".join(unicodedata.normalize("NFC", clean(title)).split()).casefold()
    chat_id = _COPY_SUFFIX.sub("", chat_id) or "whatsapp"
    return Chat("whatsapp", chat_id, title)


#: Largest chat file read; WhatsApp caps an export at ~40 000 messages (a few MB).
MAX_FILE = 256 << 20


def _decode(member: Member, options: ParseOptions) -> str:
    """The file's text, in the encoding :func:`~chatlens.ingest.encoding.resolve` decides
    (WhatsApp writes UTF-8; a file re-saved as "ANSI" is read in its code page or refused)."""
    if member.size > MAX_FILE:
        raise InputError(member.name, f"the file is larger than {MAX_FILE >> 20} MB; WhatsApp "
                         "exports hold at most ~40,000 messages (a few MB), so this is not one. "
                         "Pass --format if it is another kind of file.", "byte 0")
    encoding = resolve([member], options).encoding
    with member.open() as fh:  # bounded: never more than MAX_FILE + 1 bytes in memory
        data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise InputError(member.name, f"the file grew beyond {MAX_FILE >> 20} MB while it was "
                         "read.", "byte 0")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:  # changed since it was checked
        raise EncodingError(member.name, f"not valid {encoding} text at byte {exc.start}, though "
                            "it was a moment ago: was the file changed while it was read?",
                            f"byte {exc.start}") from None


def _orig_offset(line: str, k: int) -> int:
    """Index in ``line`` of the character at cleaned offset ``k`` (removed marks not skipped)."""
    n = 0
    for i, ch in enumerate(line):
        if n == k:
            return i
        if ch not in _REMOVED:
            n += 1
    return len(line)


def _candidates(rest: str, ios: bool) -> list[int]:
    """Offsets of each ``": "`` in ``rest`` that could end a sender name."""
    out: list[int] = []
    pos = rest.find(": ")
    while 0 < pos <= 100 and len(out) < 4:
        if not ios and '"' in rest[:pos]:
            break
        out.append(pos)
        pos = rest.find(": ", pos + 2)
    return out


def _split_sender(rest: str, ios: bool, counts: Counter[str]) -> int | None:
    cands = _candidates(rest, ios)
    if not cands:
        return None
    first = counts[rest[: cands[0]]]
    for pos in reversed(cands[1:]):
        n = counts[rest[:pos]]
        if n >= 2 and n == first:
            return pos
    return cands[0]


def _media(first: str, ios: bool, lrm: bool) -> tuple[str, bool] | None:
    """(media type, caption-only) for a body's first (cleaned) line, or None for plain text."""
    if _OMITTED.fullmatch(first):
        return "media", True
    if m := _IOS_OMITTED.fullmatch(first):
        return _OMITTED_TYPES.get(m.group(1).lower(), "media"), True
    for pattern in _ATTACHED:
        if m := pattern.fullmatch(first):
            ext = m.group(1).rsplit(".", 1)[-1].lower()
            upper = m.group(1).upper()
            kind = next((t for t in ("PHOTO", "VIDEO", "AUDIO", "STICKER", "GIF") if t in upper),
                        None)
            return (kind.lower() if kind else _EXT_TYPES.get(ext, "document")), True
    if ios and lrm and first == "POLL:":
        return "poll", False
    if _LOCATION.fullmatch(first) and (lrm or first.lower().startswith("location: ")):
        return "location", False
    return None


class WhatsAppText:
    name = "whatsapp_txt.v1"
    format = "whatsapp"
    platform = "whatsapp"

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) != 1:
            return 0.0
        head = source.members[0].head(65536)
        text = sniff_text(head)
        if text is None:
            return 0.0
        lines = text.split("\n")
        if len(head) == 65536:
            lines = lines[:-1]
        cleaned = [c for c in (clean(x) for x in lines) if c.strip()][:50]
        if not cleaned or any("\ufffd" in c for c in cleaned[:5]):
            return 0.0
        hits = [match_header(c) is not None for c in cleaned]
        frac = sum(hits) / len(cleaned)
        if sum(hits) >= 2 and hits[0]:
            return min(1.0, 0.6 + 0.4 * frac)
        return frac if sum(hits) >= 2 or len(cleaned) == 1 else 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        for member in source.members:
            yield from self._parse_member(member, options)

    def _parse_member(self, member: Member, options: ParseOptions) -> Iterator[Item]:
        text = _decode(member, options)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        cleaned = [clean(x).rstrip("\r") for x in lines]
        heads = [match_header(c) for c in cleaned]
        found = [h for h in heads if h is not None]
        if not found:
            if not any(c.strip() for c in cleaned):
                return
            raise InputError(member.name, "no WhatsApp message header found (such as "
                             "'20/01/19, 11:23 - Name: text'); this is not a WhatsApp export.",
                             "line 1")
        order, _ = infer_date_order(found, options.date_order)
        counts: Counter[str] = Counter()
        for c, h in zip(cleaned, heads, strict=True):
            if h is not None:
                rest = c[h.end:]
                counts.update(rest[:p] for p in _candidates(rest, h.ios))
        chat = chat_for(member.name, options)
        i, n = 0, len(lines)
        while i < n:
            head = heads[i]
            if head is None:
                if cleaned[i].strip():
                    yield Bad(loc=f"{member.name}: line {i + 1}", excerpt=lines[i],
                              reason="text before the first WhatsApp message header")
                i += 1
                continue
            j = i + 1
            while j < n and heads[j] is None:
                j += 1
            yield self._record(chat, member.name, i, lines[i:j], cleaned[i], head, order, counts)
            i = j

    def _record(self, chat: Chat, name: str, index: int, lines: list[str], cleaned: str,
                head: Header, order: str, counts: Counter[str]) -> Item:
        raw = "\n".join(lines)
        loc = f"{name}: line {index + 1}"
        try:
            ts_us = header_ts(head, order)
        except ValueError as exc:
            return Bad(loc=loc, excerpt=raw, reason=f"impossible date for date order {order} "
                       f"({exc}); pass --date-order if the file's order was guessed wrongly")
        rest = cleaned[head.end:]
        split = _split_sender(rest, head.ios, counts)
        first = lines[0].rstrip("\r")
        if split is None:
            sender = None
            body = first[_orig_offset(first, head.end):]
        else:
            sender = rest[:split].strip()
            sender = sender[1:].lstrip() if sender.startswith("~") else sender
            body = first[_orig_offset(first, head.end + split + 2):]
        lrm = body[:1] in ("\u200e", "\u200f")
        body = body.lstrip("\u200e\u200f")
        more = [x.rstrip("\r") for x in lines[1:]]
        text = "\n".join([body, *more])
        edited = None
        tail = max(0, len(text) - 80)  # the marker is at the end; bound the regex's work
        if text.rstrip().endswith(">") and (m := _EDITED.search(text, tail)):
            text, edited = text[: m.start()], True
        kind, media = "message", None
        body_clean = clean(body).strip()
        if sender is None or _DELETED.match(body_clean):
            kind = "service"
        elif found := _media(clean(text.split("\n", 1)[0]).strip(), head.ios, lrm):
            kind, media = "media", found[0]
            if found[1]:
                text = "\n".join(more)
        elif head.ios and lrm:
            kind = "service"
        return Record(chat=chat, message_id=None, ts_us=ts_us, ts_naive=True, text=text,
                      raw=raw, loc=loc, kind=kind, author_id=sender or None,
                      author_name=sender or None, media=media, edited=edited)
