"""An in-process Telegram for tests and benchmarks: Telethon's method signatures, real objects.

:class:`FakeTelegram` serves ``telethon.tl.types.Message`` objects (finished with the same
``_finish_init`` Telethon applies, so ``sender`` and ``forward`` entities are set) page by page,
following ``iter_messages``'s bounds (``min_id``, ``max_id``, ``offset_id``, ``offset_date``,
``reverse``, ``reply_to``), and can raise Telethon's own ``FloodWaitError`` or a dropped
connection at chosen points. Nothing here opens a socket. It needs Telethon installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

PAGE = 100


@dataclass
class FakeChannel:
    """A channel (or group) with its messages and, for a channel, its discussion group."""

    entity: Any  # telethon.tl.types.Channel
    messages: list[Any] = field(default_factory=list)
    discussion: Any | None = None  # the linked group's Channel entity
    comments: dict[int, list[Any]] = field(default_factory=dict)  # post id -> comments
    users: dict[int, Any] = field(default_factory=dict)  # entities Telethon would attach
    chatter: list[Any] = field(default_factory=list)  # group messages outside any thread

    def roots(self) -> dict[int, Any]:
        """Post id -> the post's automatic copy in the discussion group (the thread's root),
        as Telegram makes it: a forward from the channel with ``channel_post`` and
        ``saved_from_*`` set. Its id is the one the post's comments reply to."""
        from telethon.tl import types

        posts = {m.id: m for m in self.messages}
        out = {}
        for post_id, comments in self.comments.items():
            if not comments or post_id not in posts or self.discussion is None:
                continue
            head = comments[0].reply_to
            root = head.reply_to_top_id or head.reply_to_msg_id
            post = posts[post_id]
            out[post_id] = types.Message(
                id=root, peer_id=types.PeerChannel(self.discussion.id), date=post.date,
                message=post.message, from_id=types.PeerChannel(self.entity.id),
                fwd_from=types.MessageFwdHeader(
                    date=post.date, from_id=types.PeerChannel(self.entity.id),
                    channel_post=post_id, saved_from_peer=types.PeerChannel(self.entity.id),
                    saved_from_msg_id=post_id))
        return out

    def group_history(self) -> list[Any]:
        """Every message of the discussion group: roots, comments and other chatter."""
        return [*self.roots().values(), *(m for c in self.comments.values() for m in c),
                *self.chatter]


class FakeTelegram:
    """A fake ``TelegramClient``: ``get_entity``, ``iter_messages``, ``__call__``,
    ``takeout``, ``download_media``, ``connect``, ``is_user_authorized``, ``disconnect``."""

    def __init__(self, channels: list[FakeChannel], authorized: bool = True) -> None:
        from telethon._updates import EntityCache

        self.channels = {str(c.entity.username or c.entity.id).lower(): c for c in channels}
        self.by_id = {c.entity.id: c for c in channels}
        self.groups = {c.discussion.id: c for c in channels if c.discussion is not None}
        for c in channels:
            if c.discussion is not None and c.discussion.username:
                self.channels.setdefault(c.discussion.username.lower(), c)
        self.authorized = authorized
        self.flood_at: dict[int, int] = {}  # page request number -> FloodWaitError seconds
        self.fail_after: int | None = None  # messages served before a dropped connection
        self.pages = 0
        self.served = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.takeouts = 0
        self._self_id = 1  # what Telethon's _finish_init reads
        self._mb_entity_cache = EntityCache()
        self.flood_sleep_threshold = 0

    # -- connection --------------------------------------------------------------------------
    async def connect(self) -> None:
        return None

    async def is_user_authorized(self) -> bool:
        return self.authorized

    async def disconnect(self) -> None:
        return None

    @asynccontextmanager
    async def takeout(self, finalize: bool = True, *, contacts: bool | None = None,
                      users: bool | None = None, chats: bool | None = None,
                      megagroups: bool | None = None, channels: bool | None = None,
                      files: bool | None = None, max_file_size: int | None = None,
                      ) -> AsyncIterator[FakeTelegram]:
        self.takeouts += 1
        yield self

    # -- entities ----------------------------------------------------------------------------
    def _resolve(self, entity: Any) -> tuple[FakeChannel, bool]:
        """(channel, whether ``entity`` is that channel's discussion group)."""
        ident = getattr(entity, "id", None)
        if ident in self.groups and ident not in self.by_id:
            return self.groups[ident], True
        ch = self._channel(entity)
        name = str(entity).lower().removeprefix("https://").removeprefix("t.me/").lstrip("@")
        group = ch.discussion
        return ch, group is not None and ident is None and name == str(group.username).lower()

    def _channel(self, entity: Any) -> FakeChannel:
        if hasattr(entity, "id") and entity.id in self.by_id:
            return self.by_id[entity.id]
        if hasattr(entity, "id") and entity.id in self.groups:
            return self.groups[entity.id]
        key = str(entity).lower().removeprefix("https://").removeprefix("t.me/").lstrip("@")
        if key in self.channels:
            return self.channels[key]
        if key.lstrip("-").isdigit():
            n = int(key)
            n = -n - 1_000_000_000_000 if n < -1_000_000_000_000 else n
            if n in self.by_id:
                return self.by_id[n]
        raise ValueError(f'No user has "{entity}" as username')

    async def get_entity(self, entity: Any) -> Any:
        self.calls.append(("get_entity", {"entity": entity}))
        await self._page()
        ch, is_group = self._resolve(entity)
        return ch.discussion if is_group else ch.entity

    async def __call__(self, request: Any, ordered: bool = False, flood_sleep_threshold: Any = None,
                       ) -> Any:
        from telethon.tl import types
        from telethon.tl.types.messages import ChatFull

        name = type(request).__name__
        self.calls.append((name, {}))
        await self._page()
        if name != "GetFullChannelRequest":
            raise NotImplementedError(name)
        ch = self._channel(request.channel)
        linked = ch.discussion.id if ch.discussion is not None else None
        full = types.ChannelFull(
            id=ch.entity.id, about="", read_inbox_max_id=0, read_outbox_max_id=0,
            unread_count=0, chat_photo=types.PhotoEmpty(id=0),
            notify_settings=types.PeerNotifySettings(), bot_info=[], pts=1,
            linked_chat_id=linked)
        chats = [ch.entity] + ([ch.discussion] if ch.discussion is not None else [])
        return ChatFull(full_chat=full, chats=chats, users=[])

    async def _page(self) -> None:
        from telethon.errors import FloodWaitError

        self.pages += 1
        seconds = self.flood_at.pop(self.pages, None)
        if seconds is not None:
            raise FloodWaitError(request=None, capture=seconds)

    # -- messages ----------------------------------------------------------------------------
    def iter_messages(self, entity: Any, limit: float | None = None, *,
                      offset_date: datetime | None = None, offset_id: int = 0, max_id: int = 0,
                      min_id: int = 0, add_offset: int = 0, search: str | None = None,
                      filter: Any = None, from_user: Any = None, wait_time: float | None = None,
                      ids: Any = None, reverse: bool = False, reply_to: int | None = None,
                      scheduled: bool = False) -> AsyncIterator[Any]:
        self.calls.append(("iter_messages", {
            "entity": entity, "offset_date": offset_date, "offset_id": offset_id,
            "max_id": max_id, "min_id": min_id, "reverse": reverse, "reply_to": reply_to,
            "wait_time": wait_time, "limit": limit}))
        ch, is_group = self._resolve(entity)
        if reply_to is not None:  # GetRepliesRequest: one post's comments, not its root
            pool = ch.comments.get(reply_to, [])
        else:
            pool = ch.group_history() if is_group else ch.messages
        return self._iterate(ch, pool, limit, offset_date, offset_id, max_id, min_id, reverse)

    async def _iterate(self, ch: FakeChannel, pool: list[Any], limit: float | None,
                       offset_date: datetime | None, offset_id: int, max_id: int, min_id: int,
                       reverse: bool) -> AsyncIterator[Any]:
        def wanted(m: Any) -> bool:
            if (min_id and m.id <= min_id) or (max_id and m.id >= max_id):
                return False
            if offset_id and (m.id <= offset_id if reverse else m.id >= offset_id):
                return False
            return not (offset_date and (m.date <= offset_date if reverse
                                         else m.date >= offset_date))

        chosen = sorted((m for m in pool if wanted(m)), key=lambda m: m.id, reverse=not reverse)
        if limit is not None:
            chosen = chosen[:int(limit)]
        entities = self._entities(ch)
        for start in range(0, max(len(chosen), 1), PAGE):
            await self._page()
            for m in chosen[start:start + PAGE]:
                if self.fail_after is not None and self.served >= self.fail_after:
                    self.fail_after = None
                    raise ConnectionError("Connection to Telegram failed 5 time(s)")
                m._finish_init(self, entities, None)
                self.served += 1
                yield m

    async def get_messages(self, entity: Any, limit: float | None = None, *,
                           ids: Any = None, **kw: Any) -> Any:
        """Telethon's ``get_messages``; only the ``ids=`` form (a list, or one id)."""
        self.calls.append(("get_messages", {"entity": entity, "ids": ids}))
        if ids is None:
            raise NotImplementedError("the fake serves get_messages(ids=...) only")
        await self._page()
        ch, is_group = self._resolve(entity)
        pool = {m.id: m for m in (ch.group_history() if is_group else ch.messages)}
        entities = self._entities(ch)
        wanted = list(ids) if isinstance(ids, (list, tuple)) else [ids]
        found = [pool.get(int(i)) for i in wanted]
        for m in found:
            if m is not None:
                m._finish_init(self, entities, None)
        return found if isinstance(ids, (list, tuple)) else found[0]

    def _entities(self, ch: FakeChannel) -> dict[int, Any]:
        from telethon import utils

        found = [ch.entity, *([ch.discussion] if ch.discussion else []), *ch.users.values(),
                 *(c.entity for c in self.by_id.values())]
        return {utils.get_peer_id(e): e for e in found}

    async def download_media(self, message: Any, file: Any = None, *, thumb: Any = None,
                             progress_callback: Any = None) -> str | None:
        path = Path(str(file)).with_suffix(".bin")
        path.write_bytes(b"\0" * 16)
        return str(path)


# -- builders of real Telethon objects (tests, benchmarks) -------------------------------------
def channel(id: int, title: str, username: str | None = None, broadcast: bool = True,
            forum: bool = False) -> Any:
    """A ``telethon.tl.types.Channel`` (a broadcast channel, or a supergroup)."""
    from telethon.tl import types

    return types.Channel(id=id, title=title, photo=types.ChatPhotoEmpty(), date=None,
                         broadcast=broadcast or None, megagroup=(not broadcast) or None,
                         forum=forum or None, username=username, access_hash=id * 7)


def user(id: int, first: str, last: str | None = None) -> Any:
    from telethon.tl import types

    return types.User(id=id, first_name=first, last_name=last, access_hash=id * 11)


def message(id: int, chat_id: int, date: datetime, text: str = "", **kw: Any) -> Any:
    """A ``telethon.tl.types.Message`` in channel ``chat_id``; ``kw`` are its TL fields."""
    from telethon.tl import types

    return types.Message(id=id, peer_id=types.PeerChannel(chat_id), date=date, message=text,
                         **kw)


def service(id: int, chat_id: int, date: datetime, action: Any, **kw: Any) -> Any:
    from telethon.tl import types

    return types.MessageService(id=id, peer_id=types.PeerChannel(chat_id), date=date,
                                action=action, **kw)
