"""Telegram Desktop HTML export (``messages.html``, ``messages2.html``, …).

Discovery hands over the pages of one export folder as ONE source whose members are the pages in
order, so the chat is read as one sequence: a ``joined`` message (the exporter omits the sender
when it repeats) takes its sender from the previous message, across page breaks too.

How a page is read:

* Message elements are cut out of the page text by a small scanner that follows ``<div>`` nesting
  (the exporter escapes ``<`` and ``>`` in text and attributes, so tags are unambiguous). Each
  element's text slice is ``raw``, verbatim, and is parsed on its own with lxml. A damaged element
  therefore costs only itself, and a truncated page still yields every complete message before
  the cut; the element that is cut off is quarantined.
* Date dividers (``div.message.service`` with a negative id) are page layout, not records: they
  are skipped and counted nowhere.
* Service messages (positive ids) carry no date in HTML, so their ``ts_us`` is None.
* HTML exports carry no chat id and no user ids. The chat id is ``options.chat`` or
  ``"html:" + page title``; senders are ``author_id = "name:" + display name`` (two people with one
  name become one sender, all "Deleted Account"s become one).
* Replies: ``reply_to`` is the replied message's id (also when the link points at another page of
  the same export, ``messages2.html#go_to_message5``). A reply to another chat is
  ``"other_chat"``, or ``"other_chat/<id>"`` when the link names a message elsewhere.
* Media types use the Telegram JSON vocabulary (``photo``, ``video_file``, ``voice_message``, …)
  so that both Telegram formats agree.
* Telegram Desktop writes UTF-8; a page re-saved in another encoding is read in the encoding
  :func:`chatlens.ingest.encoding.resolve` decides for all pages together (``--encoding``, a BOM,
  or a confidently detected code page), or refused before anything is stored.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import lxml.html
import orjson
from lxml import etree

from chatlens.errors import EncodingError, InputError
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

_DIV_TAG = re.compile(r"<(/?)div\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""(?:^|\s)(class|id)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_MSG_ID = re.compile(r"^message(-?\d+)$")
_DATE = re.compile(
    r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{1,2}):(\d{2}):(\d{2})"
    r"(?: UTC([+-])(\d{1,2})(?::?(\d{2}))?)?\s*$"
)
_GO_TO = re.compile(r"^(?P<path>[^#]*)#go_to_message(?P<id>\d+)$")
_VIA = re.compile(r"\s+via @\w+$")
_ONCLICK = re.compile(r"return (Show\w+)\(")
_PAGE = re.compile(r"^messages\d*\.html$")
#: class of an element inside ``div.media_wrap`` -> media type (Telegram JSON names).
_MEDIA_CLASSES = {
    "photo_wrap": "photo", "media_photo": "photo", "sticker_wrap": "sticker",
    "animated_wrap": "animation", "video_file_wrap": "video_file", "media_video": "video_file",
    "media_voice_message": "voice_message", "media_audio_file": "audio_file",
    "media_file": "file", "media_contact": "contact", "media_location": "location",
    "media_live_location": "location", "media_venue": "location", "media_game": "game",
    "media_invoice": "invoice", "media_poll": "poll", "media_call": "call",
}
_GENERIC_TITLES = {"sticker": "sticker", "video message": "video_message",
                   "animation": "animation"}
_FORMAT_TAGS = {"strong": "bold", "b": "bold", "em": "italic", "i": "italic",
                "u": "underline", "s": "strikethrough", "strike": "strikethrough",
                "del": "strikethrough", "code": "code", "pre": "pre", "blockquote": "blockquote"}
_ONCLICK_TYPES = {"ShowHashtag": "hashtag", "ShowBotCommand": "bot_command",
                  "ShowCashtag": "cashtag", "ShowMentionName": "mention_name",
                  "ShowNotLoadedEmoji": "custom_emoji", "ShowNotAvailableEmoji": "custom_emoji"}
_PARSE_ERRORS = (etree.LxmlError, ValueError, TypeError)
MAX_PAGE = 256 << 20  # exporter pages hold 1,000 messages, a few MB
#: Deepest element nesting read; libxml2 silently drops what is nested past ~2,000 levels, and
#: the exporter never nests a message beyond ~15.
MAX_DEPTH = 500
_PARSER = lxml.html.HTMLParser(huge_tree=True)


@dataclass(slots=True)
class _Element:
    """One ``div.message`` cut out of a page."""

    raw: str
    line: int
    classes: set[str]
    id_attr: str | None
    closed: bool


@dataclass(slots=True)
class _State:
    """What carries over from one message to the next, across pages."""

    sender: str | None = None
    forwarded_from: str | None = None
    yielded: int = 0
    pending: list[Bad] = field(default_factory=list)


def _attrs(tag_body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(tag_body):
        value = m.group(2) if m.group(2) is not None else (m.group(3) or m.group(4) or "")
        out.setdefault(m.group(1).lower(), value)
    return out


def split_messages(text: str) -> Iterator[_Element]:
    """Every ``<div class="message …">`` of a page, in order, with its verbatim outer HTML."""
    start = -1
    depth = 0
    info: tuple[set[str], str | None] = (set(), None)
    line, line_pos = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, line_pos
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        return line

    for m in _DIV_TAG.finditer(text):
        closing, body = m.group(1) == "/", m.group(2)
        if not closing:
            attrs = _attrs(body)
            classes = set(attrs.get("class", "").split())
            if "message" in classes:
                if start >= 0:  # a message inside a message: the previous one was not closed
                    yield _Element(text[start:m.start()], line_at(start), *info, closed=False)
                start, depth, info = m.start(), 0, (classes, attrs.get("id"))
            if start >= 0 and not body.rstrip().endswith("/"):
                depth += 1
        elif start >= 0:
            depth -= 1
            if depth == 0:
                yield _Element(text[start:m.end()], line_at(start), *info, closed=True)
                start = -1
    if start >= 0:
        yield _Element(text[start:], line_at(start), *info, closed=False)


def parse_date(title: str) -> tuple[int, bool]:
    """``DD.MM.YYYY HH:MM:SS[ UTC±HH:MM]`` -> (microseconds, naive); ValueError if unreadable."""
    first = title.strip().splitlines()[0] if title.strip() else ""
    m = _DATE.match(first)
    if not m:
        raise ValueError(f"unreadable date {title!r}")
    d, mo, y, h, mi, s = (int(g) for g in m.groups()[:6])
    local = datetime(y, mo, d, h, mi, s)
    us = (local - EPOCH) // ONE_US
    if m.group(7) is None:
        return us, True
    offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9) or 0))
    if offset > timedelta(hours=15):
        raise ValueError(f"unreadable UTC offset in {title!r}")
    return us - (offset if m.group(7) == "+" else -offset) // ONE_US, False


def _classes(el: Any) -> set[str]:
    return set(str(el.get("class") or "").split())


def _child(el: Any, *tokens: str) -> Any:
    """The first child ``div``/``a`` of ``el`` whose class has all ``tokens``."""
    for c in el:
        if isinstance(c.tag, str) and set(tokens) <= _classes(c):
            return c
    return None


def _find(el: Any, *tokens: str) -> Any:
    for c in el.iter():
        if isinstance(c.tag, str) and set(tokens) <= _classes(c):
            return c
    return None


def _flat(el: Any, entities: list[dict[str, str]] | None) -> str:
    """Text of ``el`` with ``<br>`` as newlines; formatting and links go to ``entities``."""
    parts = [el.text or ""]
    for c in el:
        if isinstance(c.tag, str):
            tag = c.tag.lower()
            if tag == "br":
                parts.append("\n")
            else:
                pos = len(entities) if entities is not None else 0
                inner = _flat(c, entities)
                parts.append(inner)
                ent = _entity(tag, c, inner)
                if ent is not None and entities is not None and inner:
                    entities.insert(pos, ent)
        parts.append(c.tail or "")
    return "".join(parts)


def _entity(tag: str, el: Any, text: str) -> dict[str, str] | None:
    if tag in _FORMAT_TAGS:
        return {"type": _FORMAT_TAGS[tag], "text": text}
    if tag == "span" and "spoiler" in _classes(el):
        return {"type": "spoiler", "text": text}
    if tag != "a":
        return None
    href = str(el.get("href") or "").strip()
    onclick = _ONCLICK.search(str(el.get("onclick") or ""))
    if onclick:
        return {"type": _ONCLICK_TYPES.get(onclick.group(1), "link"), "text": text}
    if href.startswith("mailto:"):
        return {"type": "email", "text": text}
    if href.startswith("tel:"):
        return {"type": "phone", "text": text}
    if text.startswith("@") and href.rstrip("/").endswith("/" + text[1:]):
        return {"type": "mention", "text": text}
    if href == text:
        return {"type": "link", "text": text}
    return {"type": "text_link", "text": text, "href": href}


def _name(el: Any) -> str | None:
    """A ``from_name`` without its date span and ``via @bot`` suffix."""
    if el is None:
        return None
    parts = [el.text or ""]
    for c in el:
        if isinstance(c.tag, str) and c.tag.lower() != "span":
            parts.append(c.text_content())
        parts.append(c.tail or "")
    name = _VIA.sub("", " ".join("".join(parts).split()))
    return name or None


def _media(wrap: Any) -> str:
    for el in wrap.iter():
        if not isinstance(el.tag, str):
            continue
        for cls in sorted(_classes(el)):
            kind = _MEDIA_CLASSES.get(cls)
            if kind is None:
                continue
            if cls in ("media_photo", "media_video"):
                title = _find(el, "title")
                label = " ".join(title.text_content().split()).lower() if title is not None else ""
                kind = _GENERIC_TITLES.get(label, kind)
            return kind
    return "other"


def _reply(el: Any) -> str | None:
    if el is None:
        return None
    for a in el.iter("a"):
        m = _GO_TO.match(str(a.get("href") or "").strip())
        if m:
            path = m.group("path")
            same = not path or ("/" not in path and _PAGE.match(path) is not None)
            return m.group("id") if same else f"other_chat/{m.group('id')}"
    return "other_chat" if "another chat" in el.text_content() else None


def page_title(text: str) -> str | None:
    """The chat's name from ``div.page_header div.text``; None when the page has none."""
    end = text.find("class=\"history\"")
    head = text[: end if end > 0 else 65536]
    if "page_header" not in head:
        return None
    try:
        root = lxml.html.document_fromstring(head)
    except _PARSE_ERRORS:
        return None
    header = _find(root, "page_header")
    title = _find(header, "text") if header is not None else None
    name = " ".join(title.text_content().split()) if title is not None else ""
    return name or None


class TelegramHtml:
    name = "telegram_html.v1"
    format = "telegram-html"
    platform = "telegram"

    def sniff(self, source: SourceInput) -> float:
        if not source.members:
            return 0.0
        head = sniff_text(source.members[0].head(65536)) or ""
        body_marks = ('class="history"', 'class="message default', 'class="message service')
        if 'class="page_wrap"' in head and any(m in head for m in body_marks):
            return 0.95
        if 'class="message default clearfix' in head and 'id="message' in head:
            return 0.9
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        if not source.members:
            raise InputError(source.path, "no pages to read.")
        encoding = resolve(source.members, options, source.path).encoding
        title = None
        for member in source.members:  # the header is on every page; usually the first is read
            try:
                title = page_title(_decode(member.head(65536), encoding, final=False))
            except (OSError, UnicodeError):
                continue
            if title:
                break
        chat_id = options.chat or f"html:{title or PurePosixPath(source.path).name}"
        chat = Chat(self.platform, chat_id, title or options.chat)
        state = _State()
        for member in source.members:
            try:
                with member.open() as fh:  # bounded: a page is never held beyond MAX_PAGE
                    data = fh.read(MAX_PAGE + 1)
            except OSError as exc:
                state.pending.append(Bad(loc=member.name, excerpt="",
                                         reason=f"the page cannot be read ({exc})"))
                continue
            if len(data) > MAX_PAGE:
                state.pending.append(Bad(loc=member.name, excerpt=data[:500].decode(
                    "utf-8", "replace"), reason=f"the page is larger than {MAX_PAGE >> 20} MB; "
                    "Telegram Desktop writes pages of 1,000 messages (a few MB), so it was not "
                    "read"))
                continue
            try:
                text = _decode(data, encoding)
            except UnicodeError as exc:  # the page changed since it was checked
                at = getattr(exc, "start", 0)
                raise EncodingError(member.name, f"not valid {encoding} text at byte {at}, though "
                                    "it was a moment ago: was the page changed while it was "
                                    "read? Ingest it again.", f"byte {at}") from None
            found = False
            for element in split_messages(text):
                found = True
                item = self._item(element, member, chat, state)
                if item is None:
                    continue
                yield from state.pending
                state.pending.clear()
                state.yielded += 1
                yield item
            if not found and 'class="page_wrap"' not in text:
                state.pending.append(Bad(loc=member.name, excerpt=text[:500], reason=(
                    "not a Telegram Desktop export page (no page_wrap, no messages)")))
        if state.yielded == 0 and state.pending:
            raise InputError(source.path, state.pending[0].reason + "; nothing could be read.",
                             state.pending[0].loc)
        yield from state.pending

    def _item(self, el: _Element, member: Member, chat: Chat, state: _State) -> Item | None:
        m = _MSG_ID.match(el.id_attr or "")
        loc = f"{member.name} #{el.id_attr}" if m else f"{member.name}: line {el.line}"
        if m is None:
            return Bad(loc=loc, reason="message element without id=\"message<N>\"",
                       excerpt=el.raw)
        mid = int(m.group(1))
        if mid < 0 and "service" in el.classes:
            return None  # a date divider: layout, not a record
        try:
            root = lxml.html.fragment_fromstring(el.raw, parser=_PARSER)
        except _PARSE_ERRORS as exc:
            return Bad(loc=loc, reason=f"unreadable HTML: {exc}", excerpt=el.raw)
        depth = _depth(root)
        if depth > MAX_DEPTH:  # its text could be cut short: quarantine instead of storing it
            return Bad(loc=loc, reason=f"the message's HTML is nested {depth} levels deep, more "
                       f"than the {MAX_DEPTH} that are read", excerpt=el.raw)
        body = _child(root, "body")
        if body is None:
            body = root
        if "service" in el.classes:
            if not el.closed:
                return Bad(loc=loc, reason="message element is cut off (truncated page?)",
                           excerpt=el.raw)
            return Record(chat=chat, message_id=str(mid), ts_us=None, kind="service",
                          text=_flat(body, None).strip(), raw=el.raw, loc=loc)
        joined = "joined" in el.classes
        sender = _name(_child(body, "from_name"))
        if sender is None and joined:
            sender = state.sender
        fwd_body = _child(body, "forwarded", "body")
        forwarded = None
        if fwd_body is not None:
            forwarded = _name(_child(fwd_body, "from_name"))
            if forwarded is None and joined:
                forwarded = state.forwarded_from
        state.sender, state.forwarded_from = sender, forwarded
        if "default" not in el.classes:
            return Bad(loc=loc, reason=f"unknown message element class {sorted(el.classes)}",
                       excerpt=el.raw)
        if mid < 0:
            return Bad(loc=loc, reason="negative id on a non-service message", excerpt=el.raw)
        if not el.closed:
            return Bad(loc=loc, reason="message element is cut off (truncated page?)",
                       excerpt=el.raw)
        date = _child(body, "date")
        if date is None or not date.get("title"):
            return Bad(loc=loc, reason="message has no date (div.date[title])", excerpt=el.raw)
        title = str(date.get("title"))
        try:
            ts_us, naive = parse_date(title)
        except (ValueError, OverflowError):
            return Bad(loc=loc, reason=f"unreadable date {title!r}", excerpt=el.raw)
        content = fwd_body if fwd_body is not None else body
        entities: list[dict[str, str]] = []
        text_div = _child(content, "text")
        text = _flat(text_div, entities).strip() if text_div is not None else ""
        wrap = _child(content, "media_wrap")
        return Record(
            chat=chat, message_id=str(mid), ts_us=ts_us, ts_naive=naive, text=text,
            raw=el.raw, loc=loc, kind="media" if wrap is not None else "message",
            media=_media(wrap) if wrap is not None else None,
            author_id=f"name:{sender}" if sender else None, author_name=sender,
            reply_to=_reply(_find(root, "reply_to")), forwarded_from=forwarded,
            entities=orjson.dumps(entities).decode() if entities else None,
            edited=True if "\nEdited" in title or "\nedited" in title else None,
        )


def _depth(root: Any) -> int:
    """The deepest element nesting under ``root``, walked without recursion."""
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def _decode(data: bytes, encoding: str = "utf-8", final: bool = True) -> str:
    """Strictly decoded text (a cut multi-byte character at the end is dropped if not final)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    return decoder.decode(data, final=final).lstrip("\ufeff")
