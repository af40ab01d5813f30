"""Telethon messages → standard message rows plus the API-only fields (``collected``).

Pure mapping, no network: it reads the attributes of ``telethon.tl.types.Message`` /
``MessageService`` objects (and the entities Telethon attached to them) and never calls the
client. Ids and raw sender ids use the same forms as Telegram Desktop exports (``channel123``,
``user45``; chat ids without the ``-100`` prefix), so a collected channel and an export of it
share uids and pseudonyms, and deduplicate.

Only chats and channels get ids in ``collected``; people only ever appear as pseudonyms
(``author_key``, ``forwarded_from``) and their display names go to the ``identities`` table
alone. Reactions are counted per emoji; who reacted is never read.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from chatlens.ingest.base import Chat
from chatlens.ingest.rows import CHAT_SCHEMA, Pseudonymiser, message_uid
from chatlens.schema import COLLECTED_SCHEMA, MESSAGE_SCHEMA, ORIGINAL_SCHEMA

PLATFORM = "telegram"
PEER_SCHEMA = pa.schema([("chat_key", pa.string()), ("title", pa.string()),
                         ("username", pa.string()), ("kind", pa.string())])

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_ENTITY_NAMES = {"Url": "link", "TextUrl": "text_link", "MentionName": "mention_name",
                 "Strike": "strikethrough", "BotCommand": "bot_command",
                 "BankCard": "bank_card", "CustomEmoji": "custom_emoji"}
_MEDIA = {
    "MessageMediaPhoto": "photo", "MessageMediaGeo": "location", "MessageMediaGeoLive": "location",
    "MessageMediaVenue": "location", "MessageMediaContact": "contact", "MessageMediaPoll": "poll",
    "MessageMediaGame": "game", "MessageMediaInvoice": "invoice", "MessageMediaDice": "dice",
    "MessageMediaGiveaway": "giveaway", "MessageMediaGiveawayResults": "giveaway",
    "MessageMediaPaidMedia": "paid_media", "MessageMediaStory": "story",
    "MessageMediaUnsupported": "unsupported", "MessageMediaToDo": "todo",
}


def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def peer_raw(peer: Any) -> str | None:
    """A peer as Telegram Desktop exports write it: ``user1``, ``chat2``, ``channel3``."""
    if peer is None:
        return None
    name = type(peer).__name__
    if name == "PeerUser":
        return f"user{peer.user_id}"
    if name == "PeerChannel":
        return f"channel{peer.channel_id}"
    if name == "PeerChat":
        return f"chat{peer.chat_id}"
    return None


def peer_chat_key(peer: Any) -> str | None:
    """``telegram:<id>`` for a chat or channel peer; None for a person."""
    name = type(peer).__name__
    if name == "PeerChannel":
        return f"{PLATFORM}:{peer.channel_id}"
    if name == "PeerChat":
        return f"{PLATFORM}:{peer.chat_id}"
    return None


def chat_of(entity: Any) -> Chat:
    """The :class:`Chat` of a Telethon ``Channel``/``Chat`` entity, typed as exports type it."""
    username = getattr(entity, "username", None)
    public = "public" if username else "private"
    if type(entity).__name__ == "Channel":
        kind = f"{public}_channel" if getattr(entity, "broadcast", False) else \
            f"{public}_supergroup"
        if getattr(entity, "forum", False):
            kind += " (forum)"
    else:
        kind = "private_group"
    return Chat(PLATFORM, str(entity.id), getattr(entity, "title", None), kind)


def _us(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1_000_000)


def _display_name(entity: Any) -> str | None:
    if entity is None:
        return None
    title = getattr(entity, "title", None)
    if title:
        return str(title)
    parts = [getattr(entity, "first_name", None), getattr(entity, "last_name", None)]
    name = " ".join(p for p in parts if p)
    return name or None


_ENTITY_KINDS: dict[type, str] = {}  # entity class -> its type name, as exports write it
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 code units each


def _entities(text: str, entities: list[Any]) -> bytes:
    """Entities as ``{type, text[, href]}``; Telegram's offsets count UTF-16 code units, two for
    each character beyond the BMP (most emoji): offsets past them shift by one each."""
    wide_at = [] if text.isascii() else [  # the UTF-16 index of each such character
        m.start() + k for k, m in enumerate(_ASTRAL.finditer(text))]
    out = []
    for e in entities:
        cls = type(e)
        kind = _ENTITY_KINDS.get(cls)
        if kind is None:
            name = cls.__name__.removeprefix("MessageEntity").removeprefix("InputMessageEntity")
            kind = _ENTITY_KINDS[cls] = _ENTITY_NAMES.get(name) or snake(name)
        start, end = e.offset, e.offset + e.length
        if not wide_at:
            part = text[start:end]
        else:
            a, b = bisect_left(wide_at, start), bisect_left(wide_at, end)
            if (a and wide_at[a - 1] + 1 == start) or (b and wide_at[b - 1] + 1 == end) \
                    or not 0 <= start <= end:  # inside a surrogate pair, or odd: decode
                part = text.encode("utf-16-le", "surrogatepass")[2 * start:2 * end].decode(
                    "utf-16-le", "replace")
            else:
                part = text[start - a:end - b]
        item: dict[str, Any] = {"type": kind, "text": part}
        url = getattr(e, "url", None)
        if url:
            item["href"] = url
        out.append(item)
    return orjson.dumps(out)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):  # as Telethon's to_json writes them
        return base64.b64encode(value).decode("ascii")
    return repr(value)


def _media(media: Any) -> tuple[str | None, dict[str, Any]]:
    """(media type as exports name it, file metadata) of a message's media."""
    name = type(media).__name__
    if name == "MessageMediaDocument":
        doc = media.document
        meta: dict[str, Any] = {}
        kind = "file"
        if doc is not None and type(doc).__name__ == "Document":
            meta = {"mime_type": doc.mime_type, "size": doc.size}
            for attr in doc.attributes or ():
                aname = type(attr).__name__
                if aname == "DocumentAttributeFilename":
                    meta["file_name"] = attr.file_name
                elif aname == "DocumentAttributeSticker":
                    kind = "sticker"
                elif aname == "DocumentAttributeAnimated":
                    kind = "animation" if kind == "file" else kind
                elif aname == "DocumentAttributeVideo":
                    meta.update(duration=attr.duration, w=attr.w, h=attr.h)
                    if kind == "file":
                        kind = "video_message" if attr.round_message else "video_file"
                elif aname == "DocumentAttributeAudio":
                    meta["duration"] = attr.duration
                    if kind == "file":
                        kind = "voice_message" if attr.voice else "audio_file"
        return kind, meta
    if name == "MessageMediaPhoto":
        photo = media.photo
        meta = {}
        sizes = getattr(photo, "sizes", None) or []
        best = None
        for s in sizes:
            if hasattr(s, "w") and (best is None or s.w * s.h > best.w * best.h):
                best = s
        if best is not None:
            size = getattr(best, "size", None)
            if size is None and getattr(best, "sizes", None):
                size = max(best.sizes)
            meta = {"w": best.w, "h": best.h, "size": size}
        return "photo", meta
    if name == "MessageMediaWebPage":
        page = media.webpage
        url = getattr(page, "url", None)
        return None, {"webpage": {"url": url, "site_name": getattr(page, "site_name", None),
                                  "title": getattr(page, "title", None)}} if url else {}
    if name == "MessageMediaPoll":
        question = getattr(media.poll, "question", None)
        text = getattr(question, "text", question)
        return "poll", {"question": text} if isinstance(text, str) else {}
    if name == "MessageMediaEmpty":
        return None, {}
    return _MEDIA.get(name, snake(name.removeprefix("MessageMedia"))), {}


def _action(action: Any) -> tuple[str, dict[str, Any]]:
    """Service text and metadata; people named in an action are never kept."""
    name = snake(type(action).__name__.removeprefix("MessageAction"))
    meta: dict[str, Any] = {"action": name}
    text = ""
    title = getattr(action, "title", None)
    if isinstance(title, str):
        text = title
        meta["title"] = title
    if name == "topic_create":
        meta["icon_color"] = getattr(action, "icon_color", None)
    return text, meta


def _reactions(reactions: Any) -> bytes | None:
    if reactions is None or not reactions.results:
        return None
    counts: dict[str, int] = {}
    for rc in reactions.results:  # ReactionCount(reaction, count); recent_reactions never read
        r = rc.reaction
        rname = type(r).__name__
        if rname == "ReactionEmoji":
            key = r.emoticon
        elif rname == "ReactionCustomEmoji":
            key = f"custom:{r.document_id}"
        elif rname == "ReactionPaid":
            key = "paid"
        else:
            key = snake(rname.removeprefix("Reaction"))
        counts[key] = counts.get(key, 0) + int(rc.count)
    return orjson.dumps(counts)


def _raw(msg: Any) -> bytes:
    """The original record (Telethon's ``to_json``: its ``to_dict`` as JSON, bytes in base64)
    without the message's null fields (a field Telegram did not send; 40 % of the record) and
    without who reacted or who replied."""
    reactions, replies = msg.reactions, msg.replies
    if reactions is not None and (reactions.recent_reactions
                                  or getattr(reactions, "top_reactors", None)):
        reactions.recent_reactions = reactions.top_reactors = None
    if replies is not None and replies.recent_repliers:
        replies.recent_repliers = None
    record = {k: v for k, v in msg.to_dict().items() if v is not None}
    return orjson.dumps(record, default=_json_default)  # 4x Telethon's to_json


@dataclass(slots=True)
class Where:
    """What the mapping needs to know about the chat being read."""

    chat: Chat
    source_id: str
    username: str | None = None
    post_key: str | None = None  # comments: "<channel chat_key>/<post id>"
    post_link: str | None = None  # comments: t.me link of the post


#: The fields of a :class:`RowBatch` row, one tuple per message; the columns of ``messages``,
#: ``collected`` and ``originals`` are taken from them by name (``mid``: the message id as an
#: integer, ``source_pos`` and ``collected.message_id``) or are the same for the whole batch.
_ROW = ("uid", "chat_key", "message_id", "mid", "ts", "author_key", "text", "kind", "media",
        "reply_to", "forwarded_from", "entities", "edited", "source_id", "source_loc", "raw",
        "views", "forwards", "replies", "replies_max_id", "discussion_chat_key", "fwd_kind",
        "fwd_chat_key", "fwd_message_id", "fwd_date", "reply_to_id", "reply_to_chat_key",
        "thread_id", "post_key", "grouped_id", "reactions", "edit_date", "edit_hide",
        "fact_check", "meta")
_RAW = _ROW.index("raw")


def _table(schema: pa.Schema, cols: Mapping[str, Sequence[Any]], made: dict[str, pa.Array]
           ) -> pa.Table:
    """``schema``'s table: the arrays in ``made`` by name, the others from ``cols``."""
    return pa.Table.from_arrays(
        [made[f.name] if f.name in made else pa.array(cols[f.name], f.type) for f in schema],
        schema=schema)


class RowBatch:
    """A batch of collected messages, one tuple of :data:`_ROW` each (a tuple per message costs
    less than an append per column); :meth:`tables` makes the Arrow tables, column by column.
    JSON values stay orjson's UTF-8 bytes, which Arrow's string columns take as they are."""

    def __init__(self, pseudo: Pseudonymiser, run_id: str) -> None:
        self.pseudo = pseudo
        self.run_id = run_id
        self.rows: list[tuple[Any, ...]] = []
        self.chats: dict[str, Chat] = {}
        self.peers: dict[str, tuple[str | None, str | None, str]] = {}
        self.uids: set[str] = set()
        self.high_id = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def raw(self) -> list[str]:
        """The original records, in the order added."""
        return [row[_RAW].decode() for row in self.rows]

    def add(self, msg: Any, where: Where, extra: dict[str, Any] | None = None) -> bool:
        """Map one message (``extra``: more metadata, e.g. a downloaded file's path); False
        when it was already in this batch."""
        chat = where.chat
        mid = int(msg.id)
        message_id = str(mid)
        uid = message_uid(PLATFORM, chat.chat_id, message_id)
        if uid in self.uids:
            return False
        self.uids.add(uid)
        if mid > self.high_id:
            self.high_id = mid
        if chat.key not in self.chats:
            self.chats[chat.key] = chat
        pseudo = self.pseudo
        text = msg.message or ""
        meta: dict[str, Any] = {}
        action = getattr(msg, "action", None)
        media_kind = None
        if action is not None:
            kind = "service"
            text, meta = _action(action)
        else:
            kind = "message"
            media = msg.media
            if media is not None:
                media_kind, meta = _media(media)
                if media_kind is not None:
                    kind = "media"
        # sender: the export's rule, the chat's own peer when the API gives none (channel posts)
        from_id = msg.from_id
        if from_id is not None:
            author = peer_raw(from_id)
            author_key = pseudo.key(PLATFORM, author, _display_name(
                getattr(msg, "_sender", None))) if author else None
        else:
            author_key = pseudo.key(PLATFORM, f"channel{chat.chat_id}", chat.title)
        ents = msg.entities if action is None else None
        # forward origin: chats and channels by id, people by pseudonym only
        fwd = msg.fwd_from
        fwd_kind = fwd_key = fwd_mid = fwd_date = forwarded = None
        if fwd is not None:
            origin = fwd.from_id
            fwd_date = fwd.date
            if origin is not None:
                forwarded = peer_raw(origin)
                fwd_key = peer_chat_key(origin)
                fwd_kind = "user" if fwd_key is None else (
                    "channel" if type(origin).__name__ == "PeerChannel" else "chat")
                if fwd_key is not None:
                    fwd_mid = fwd.channel_post
                    entity = getattr(getattr(msg, "_forward", None), "_chat", None)
                    if entity is not None:
                        self.peers[fwd_key] = (getattr(entity, "title", None),
                                               getattr(entity, "username", None), fwd_kind)
            else:
                fwd_kind = "hidden"
                forwarded = fwd.from_name or "hidden"
        reply = msg.reply_to
        reply_to = reply_chat = thread = None
        reply_id = None
        if reply is not None and type(reply).__name__ == "MessageReplyHeader":
            reply_id = reply.reply_to_msg_id
            top = reply.reply_to_top_id
            other = reply.reply_to_peer_id
            if reply_id is not None:
                reply_to = f"{peer_raw(other)}/{reply_id}" if other is not None else str(reply_id)
                if other is not None:
                    reply_chat = peer_chat_key(other)
            if top is not None:
                thread = top
            elif reply.forum_topic or where.post_key:
                thread = reply_id
        elif action is not None and type(action).__name__ == "MessageActionTopicCreate":
            thread = mid
        replies = msg.replies
        fc = getattr(msg, "factcheck", None)
        fc_text = getattr(getattr(fc, "text", None), "text", None) if fc is not None else None
        edit_date = msg.edit_date
        edit_hide = bool(msg.edit_hide)
        if where.post_link:
            loc = f"{where.post_link}?comment={mid}"
        elif where.username:
            loc = f"https://t.me/{where.username}/{mid}"
        else:
            loc = f"telegram chat {chat.chat_id} message {mid}"
        if extra:
            meta.update(extra)
        if fc_text:
            meta["fact_check_country"] = getattr(fc, "country", None)
        reactions = msg.reactions
        self.rows.append((
            uid, chat.key, message_id, mid, msg.date, author_key, text, kind, media_kind,
            reply_to,
            pseudo.key(PLATFORM, f"name:{forwarded}", forwarded) if forwarded else None,
            _entities(text, ents) if ents else None,
            edit_date is not None and not edit_hide, where.source_id, loc, _raw(msg),
            msg.views, msg.forwards,
            replies.replies if replies is not None else None,
            replies.max_id if replies is not None else None,
            f"{PLATFORM}:{replies.channel_id}" if replies is not None and replies.comments
            and replies.channel_id else None,
            fwd_kind, fwd_key, fwd_mid, fwd_date, reply_id, reply_chat, thread, where.post_key,
            msg.grouped_id, _reactions(reactions) if reactions is not None else None,
            edit_date, edit_hide, fc_text, orjson.dumps(meta) if meta else None))
        return True

    def tables(self, stored_chats: Collection[str] = ()) -> dict[str, pa.Table]:
        """The batch's tables; chats in ``stored_chats`` (stored before) are left out."""
        chats = [x for x in self.chats.values() if x.key not in stored_chats]
        n = len(self.rows)
        cols = dict(zip(_ROW, zip(*self.rows, strict=True) if n else [()] * len(_ROW),
                        strict=True))
        mid = pa.array(cols["mid"], pa.int64())
        shared = {name: pa.array(cols[name], pa.string())
                  for name in ("uid", "chat_key", "source_id")}
        return {
            "messages": _table(MESSAGE_SCHEMA, cols, shared | {
                "platform": pa.array([PLATFORM] * n, pa.string()),
                "ts_naive": pa.array([False] * n, pa.bool_()), "source_pos": mid}),
            "originals": _table(ORIGINAL_SCHEMA, cols, shared | {"source_pos": mid}),
            "identities": self.pseudo.drain(),
            "chats": pa.table({
                "chat_key": [x.key for x in chats], "platform": [x.platform for x in chats],
                "chat_id": [x.chat_id for x in chats], "title": [x.title for x in chats],
                "chat_type": [x.type for x in chats],
                "first_source": [cols["source_id"][0] if n else None] * len(chats),
            }, schema=CHAT_SCHEMA),
            "collected": _table(COLLECTED_SCHEMA, cols, shared | {
                "message_id": mid, "deleted_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
                "run_id": pa.array([self.run_id] * n, pa.string())}),
            "peers": pa.table({
                "chat_key": list(self.peers), "title": [v[0] for v in self.peers.values()],
                "username": [v[1] for v in self.peers.values()],
                "kind": [v[2] for v in self.peers.values()],
            }, schema=PEER_SCHEMA),
        }
