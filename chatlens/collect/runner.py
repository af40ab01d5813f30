"""Iterating channels and comment threads: batches, checkpoints, flood waits, re-collection.

Messages are read oldest first (``reverse=True``) so the checkpoint, the highest id stored, only
grows; each batch is committed together with it (see :mod:`chatlens.store.collect`). A batch
spans pages: it is committed at ``batch`` messages, or once ``commit_s`` seconds have passed since
its first message (at Telegram's pace), whichever comes first. A rerun
starts after the checkpoint (``min_id``) and never duplicates. ``recheck`` re-reads the whole
range instead: changed texts keep their earlier version, messages gone from the server are marked.

A ``FloodWaitError`` ends the current page; the batch read so far is committed, the wait is
slept (longer on repeated waits) and reading resumes after the checkpoint. A wait longer than
``max_wait`` stops that channel with its state resumable and moves on to the next one.

The client is anything with Telethon's method signatures: ``get_entity``, ``iter_messages``,
``__call__`` (for ``GetFullChannelRequest``), ``takeout`` and ``download_media``; tests pass a
fake one that serves real ``telethon.tl.types`` objects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chatlens.collect.telegram import RowBatch, Where, chat_of
from chatlens.errors import CollectError
from chatlens.ingest.base import Chat
from chatlens.ingest.rows import Pseudonymiser
from chatlens.store import Store
from chatlens.store import collect as cstore

log = logging.getLogger("chatlens.collect")

Progress = Callable[[str, int, str], None]  # (channel, messages read so far, phase)
Sleep = Callable[[float], Awaitable[None]]
Route = Callable[[Any], Awaitable["Where | None"]]
IMPORTER = "telegram_api.v1"


@dataclass(slots=True)
class CollectOptions:
    since: datetime | None = None
    until: datetime | None = None
    comments: bool = False
    takeout: bool = False
    recheck: bool = False  # re-read the range: keeps earlier versions, marks deletions
    max_wait: float = 300.0  # seconds; a longer flood wait stops the channel (resumable)
    media_dir: Path | None = None  # download media here (None: metadata only)
    media_max_bytes: int = 20 * 1024 * 1024
    batch: int = 5000  # most messages per transaction (fewer, larger commits cost less)
    commit_s: float = 10.0  # and commit what was read in this many seconds, whichever first

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, (Path, datetime)) else v)
                for k, v in ((n, getattr(self, n)) for n in self.__slots__)}


@dataclass(slots=True)
class ChannelReport:
    """One channel's outcome. ``read = new + unchanged + edited``; ``waited`` in seconds."""

    target: str
    status: str = "failed"  # complete | stopped | failed
    chat_key: str | None = None
    title: str | None = None
    read: int = 0
    new: int = 0
    unchanged: int = 0
    edited: int = 0
    deleted: int = 0
    skipped: int = 0  # outside --since/--until, or empty placeholders
    waited: float = 0.0
    flood_waits: int = 0
    comments_read: int = 0
    comments_new: int = 0
    threads: int = 0
    discussion_chat_key: str | None = None
    resumed_from: int = 0
    high_id: int = 0
    media_saved: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class CollectReport:
    run_id: str
    options: CollectOptions
    channels: list[ChannelReport] = field(default_factory=list)

    @property
    def failed(self) -> list[ChannelReport]:
        return [c for c in self.channels if c.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        keys = ("read", "new", "unchanged", "edited", "deleted", "skipped", "comments_new",
                "flood_waits")
        return {
            "run_id": self.run_id, "options": self.options.as_dict(),
            "channels": [c.as_dict() for c in self.channels],
            "totals": {k: sum(getattr(c, k) for c in self.channels) for k in keys}
            | {"waited": round(sum(c.waited for c in self.channels), 1)},
            "failed": len(self.failed),
        }


class _Stop(Exception):
    """A flood wait beyond ``max_wait``: stop this channel, resumable."""


def _flood_error() -> type[BaseException]:
    from telethon.errors import FloodWaitError

    return FloodWaitError  # type: ignore[no-any-return]


def _rpc_error() -> type[BaseException]:
    from telethon.errors import RPCError

    return RPCError  # type: ignore[no-any-return]


class Collector:
    """One collect run over a store with a (real or fake) Telethon client."""

    def __init__(self, store: Store, client: Any, run_id: str, options: CollectOptions,
                 progress: Progress | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.store = store
        self.client = client
        self.run_id = run_id
        self.options = options
        self.progress = progress
        self.sleep = sleep
        self.pseudo = Pseudonymiser(store.secret())
        self.flood = _flood_error()
        self._stored_chats: set[str] = set()  # chats rows committed in this run
        cstore.ensure_collect_tables(store)

    # -- flood waits -----------------------------------------------------------------------
    async def _wait(self, report: ChannelReport, exc: BaseException, streak: int) -> None:
        seconds = float(getattr(exc, "seconds", 0) or 0)
        wait = seconds * (1.0 + 0.5 * streak) + (1.0 if streak else 0.0)  # back off on repeats
        report.flood_waits += 1
        if wait > self.options.max_wait:
            log.warning("%s: Telegram asks to wait %.0f s, over --max-wait %.0f s; stopping "
                        "this channel (rerun later to continue).", report.target, seconds,
                        self.options.max_wait)
            raise _Stop(f"Telegram asked to wait {seconds:.0f} s (over --max-wait "
                        f"{self.options.max_wait:.0f} s); stopped with a resumable state, "
                        "rerun later to continue.")
        log.warning("%s: flood wait, sleeping %.0f s (Telegram asked %.0f s).", report.target,
                    wait, seconds)
        report.waited += wait
        await self.sleep(wait)

    async def _call(self, report: ChannelReport, make: Callable[[], Awaitable[Any]]) -> Any:
        streak = 0
        while True:
            try:
                return await make()
            except self.flood as exc:
                await self._wait(report, exc, streak)
                streak += 1

    # -- one stream of messages (a channel, or one post's comments) -------------------------
    async def _pull(self, report: ChannelReport, entity: Any, where: Where, thread: int,
                    start_id: int, reply_to: int | None = None, route: Route | None = None,
                    ) -> tuple[int, list[int]]:
        """Read from ``start_id`` (exclusive) to the end of the range; (high id, ids seen).

        ``route`` (comments read through the discussion group) gives each message its
        :class:`Where` (its post), or None to skip it; the date range is then the posts'."""
        opts = self.options
        checkpoint_key = report.chat_key or where.chat.key
        min_id = start_id
        high = start_id
        seen: list[int] = []
        batch = RowBatch(self.pseudo, self.run_id)
        opened = 0.0  # when the batch got its first message (time.monotonic)
        streak = 0
        since_us = opts.since.timestamp() if opts.since else None
        until_us = opts.until.timestamp() if opts.until else None
        is_comments = reply_to is not None or route is not None
        if route is not None:
            since_us = until_us = None

        def flush(status: str) -> None:
            """Store the batch with its checkpoint, in this thread. A writer thread gained
            nothing: DuckDB's scan of the batch's Arrow tables waits for the GIL the mapping
            holds, so each write took 4-5 times as long as alone (``bench/collect.py``)."""
            nonlocal batch
            if not len(batch):
                return
            tables = batch.tables(self._stored_chats)
            # every id up to ``high`` is stored or was skipped on purpose (read in order)
            point = cstore.Checkpoint(checkpoint_key, thread, max(batch.high_id, high), status)
            n, batch_chats = len(batch), list(batch.chats)
            batch = RowBatch(self.pseudo, self.run_id)
            result = cstore.write_collected(self.store, where.source_id, self.run_id, **tables,
                                            point=point, target=report.target)
            self._stored_chats.update(batch_chats)  # committed: later batches leave them out
            if is_comments:
                report.comments_read += n
                report.comments_new += result.new
            else:
                report.read += n
            report.new += result.new
            report.unchanged += result.unchanged
            report.edited += result.edited
            if self.progress:
                self.progress(report.target, report.read + report.comments_read,
                              "comments" if is_comments else "messages")

        done = False
        while not done:
            kwargs: dict[str, Any] = {"reverse": True, "min_id": min_id}
            if min_id == 0 and opts.since is not None:
                kwargs["offset_date"] = opts.since
            if reply_to is not None:
                kwargs["reply_to"] = reply_to
            if opts.takeout:
                kwargs["wait_time"] = 0
            try:
                async for msg in self.client.iter_messages(entity, **kwargs):
                    streak = 0
                    date = getattr(msg, "date", None)
                    if date is None or not hasattr(msg, "from_id"):
                        report.skipped += 1  # MessageEmpty placeholders
                        continue
                    ts = date.timestamp()
                    if until_us is not None and ts >= until_us:
                        break
                    mid = int(msg.id)
                    high = max(high, mid)
                    if since_us is not None and ts < since_us:
                        report.skipped += 1
                        continue
                    at = where
                    if route is not None:
                        found = await route(msg)
                        if found is None:
                            report.skipped += 1
                            continue
                        at = found
                    seen.append(mid)
                    extra = await self._media(report, msg, at) if opts.media_dir else None
                    if not len(batch):
                        opened = time.monotonic()
                    batch.add(msg, at, extra)
                    if len(batch) >= opts.batch or time.monotonic() - opened >= opts.commit_s:
                        flush("partial")
                        min_id = high
                done = True
            except self.flood as exc:
                flush("partial")
                min_id = max(min_id, high)
                await self._wait(report, exc, streak)
                streak += 1
            except BaseException:
                flush("partial")  # what was read is kept; a rerun continues after it
                raise
        flush("complete")
        return high, seen

    async def _media(self, report: ChannelReport, msg: Any, where: Where) -> dict[str, Any]:
        from chatlens.collect.telegram import _media as media_meta

        if msg.media is None or type(msg.media).__name__ == "MessageMediaWebPage":
            return {}
        _, meta = media_meta(msg.media)
        size = meta.get("size")
        if not isinstance(size, int) or size > self.options.media_max_bytes:
            return {"download": "skipped: over --media-max" if isinstance(size, int)
                    else "skipped: unknown size"}
        assert self.options.media_dir is not None
        folder = self.options.media_dir / where.chat.chat_id
        folder.mkdir(parents=True, exist_ok=True)
        path = await self._call(report, lambda: self.client.download_media(
            msg, file=str(folder / str(msg.id))))
        if path is None:
            return {}
        report.media_saved += 1
        return {"file_path": str(path)}

    # -- a channel -------------------------------------------------------------------------
    async def channel(self, target: str) -> ChannelReport:
        report = ChannelReport(target=target)
        rpc = _rpc_error()
        try:
            entity = await self._call(report, lambda: self.client.get_entity(target))
            if type(entity).__name__ not in ("Channel", "Chat"):
                raise CollectError(f"{target} is not a channel or group; chatlens collects "
                                   "public channels and groups only, never a person's chats.")
            chat = chat_of(entity)
            report.chat_key, report.title = chat.key, chat.title
            await self._collect(report, entity, chat)
            report.status = "complete"
        except _Stop as exc:
            report.status, report.error = "stopped", str(exc)
        except CollectError as exc:
            report.error = str(exc)
        except (rpc, ValueError, OSError, ConnectionError) as exc:
            report.error = f"{target}: {type(exc).__name__}: {exc}"
            log.warning("%s", report.error)
        if report.chat_key:
            cstore.set_status(self.store, report.chat_key, 0,
                              "complete" if report.status == "complete" else report.status,
                              self.run_id, target)
        return report

    def _begin(self, chat: Chat, username: str | None, target: str) -> str:
        source_id = f"telegram-api-{chat.chat_id}"
        self.store.begin_source({
            "source_id": source_id, "path": f"https://t.me/{username}" if username else target,
            "files": [], "sha256": "", "format": "telegram-api", "importer": IMPORTER,
            "detection": "collected with the Telegram API (Telethon)", "size_bytes": 0,
            "file_mtime": None, "run_id": self.run_id,
        })
        return source_id

    async def _collect(self, report: ChannelReport, entity: Any, chat: Chat) -> None:
        opts = self.options
        username = getattr(entity, "username", None)
        source_id = self._begin(chat, username, report.target)
        where = Where(chat=chat, source_id=source_id, username=username)
        point = cstore.checkpoint(self.store, chat.key, 0)
        start = 0 if (opts.recheck or point is None) else point.high_id
        report.resumed_from = start
        high, seen = await self._pull(report, entity, where, 0, start)
        report.high_id = high
        if opts.recheck:
            top = max(high, point.high_id if point else 0)
            report.deleted += cstore.mark_deleted(self.store, chat.key, seen, top, opts.since,
                                                  opts.until, None, self.run_id)
        self.store.finish_source(source_id, "complete")
        if opts.comments and getattr(entity, "broadcast", False):
            await self._comments(report, entity, chat, username)

    async def _comments(self, report: ChannelReport, entity: Any, chat: Chat,
                        username: str | None) -> None:
        from telethon.tl.functions.channels import GetFullChannelRequest

        opts = self.options
        full = await self._call(report, lambda: self.client(GetFullChannelRequest(entity)))
        linked = getattr(full.full_chat, "linked_chat_id", None)
        if not linked:
            return
        group = next((c for c in full.chats if c.id == linked), None)
        disc = chat_of(group) if group is not None else Chat("telegram", str(linked), None,
                                                             "public_supergroup")
        report.discussion_chat_key = disc.key
        disc_user = getattr(group, "username", None)
        source_id = self._begin(disc, disc_user, f"{report.target} (comments)")

        def where(post_id: int) -> Where:
            return Where(chat=disc, source_id=source_id, username=disc_user,
                         post_key=f"{chat.key}/{post_id}",
                         post_link=f"https://t.me/{username}/{post_id}" if username else None)

        if not opts.recheck:
            await self._group_comments(report, group if group is not None else linked, chat,
                                       disc, where(0), where)
        else:  # re-read every thread: earlier versions kept, deleted comments marked
            for post_id, done in cstore.threads_to_collect(self.store, chat.key, opts.since,
                                                           opts.until, every=True):
                high, seen = await self._pull(report, entity, where(post_id), post_id, 0,
                                              reply_to=post_id)
                report.threads += 1
                report.deleted += cstore.mark_deleted(
                    self.store, disc.key, seen, max(high, done), None, None, post_id,
                    self.run_id)
        self.store.finish_source(source_id, "complete")

    async def _group_comments(self, report: ChannelReport, group: Any, chat: Chat, disc: Chat,
                              base: Where, where: Callable[[int], Where]) -> None:
        """New comments on every post, old ones included, in one pass over the discussion
        group after its checkpoint (``collect_state`` thread -1 of the channel).

        Every comment lives in the group and replies, directly or through another comment,
        to the post's automatic copy there (the thread's root: ``reply_to_top_id``, else
        ``reply_to_msg_id``). Roots map to posts by their forward header; roots older than the
        checkpoint come from the comments stored before, or one ``get_messages`` call. The
        roots themselves (copies of posts) and messages outside any thread are skipped.
        """
        opts = self.options
        since = opts.since.timestamp() if opts.since else None
        until = opts.until.timestamp() if opts.until else None
        posts: dict[int, tuple[int, float | None] | None] = {
            root: (post, ts.timestamp() if ts else None)
            for root, post, ts in cstore.comment_roots(self.store, disc.key, chat.key)}
        threads: set[int] = set()
        channel_id = int(chat.chat_id)

        def as_root(msg: Any) -> tuple[int, float | None] | None:
            fwd = getattr(msg, "fwd_from", None)
            origin = getattr(fwd, "from_id", None)
            if fwd is None or getattr(origin, "channel_id", None) != channel_id:
                return None
            post = fwd.channel_post or fwd.saved_from_msg_id
            return (int(post), fwd.date.timestamp() if fwd.date else None) if post else None

        async def route(msg: Any) -> Where | None:
            root = as_root(msg)
            if root is not None:  # a post's copy: the post itself is stored from the channel
                posts[int(msg.id)] = root
                return None
            reply = getattr(msg, "reply_to", None)
            top = (getattr(reply, "reply_to_top_id", None)
                   or getattr(reply, "reply_to_msg_id", None)) if reply is not None else None
            if top is None or getattr(reply, "reply_to_peer_id", None) is not None:
                return None  # chatter in the group, not a comment on a post
            if top not in posts:  # a thread whose root is older than the checkpoint
                found = await self._call(report, lambda: self.client.get_messages(
                    group, ids=[top]))
                head = found[0] if found else None
                posts[top] = as_root(head) if head is not None else None
            post = posts[top]
            if post is None:
                return None
            post_id, ts = post
            if ts is not None and ((since is not None and ts < since)
                                   or (until is not None and ts >= until)):
                return None
            threads.add(post_id)
            return where(post_id)

        point = cstore.checkpoint(self.store, chat.key, cstore.GROUP_THREAD)
        start = point.high_id if point else 0
        # a first pass starts at --since (offset_date): comments are never older than posts
        await self._pull(report, group, base, cstore.GROUP_THREAD, start, route=route)
        report.threads += len(threads)

    async def run(self, targets: list[str]) -> list[ChannelReport]:
        reports = []
        # committed batches stay in the write-ahead log (durable) and are checkpointed once
        with self.store.bulk_load():
            for target in targets:
                reports.append(await self.channel(target))
        return reports


async def collect(store: Store, client: Any, targets: list[str], run_id: str,
                  options: CollectOptions, progress: Progress | None = None,
                  sleep: Sleep = asyncio.sleep) -> CollectReport:
    """Collect every target (username, t.me link or id) in turn; one failure never stops the
    others. With ``options.takeout`` the whole run goes through one takeout session."""
    report = CollectReport(run_id=run_id, options=options)
    if options.takeout:
        from telethon import errors

        try:
            async with client.takeout(finalize=True, megagroups=True, channels=True) as tk:
                report.channels = await Collector(store, tk, run_id, options, progress,
                                                  sleep).run(targets)
        except errors.TakeoutInitDelayError as exc:
            raise CollectError(
                "Telegram holds the takeout (bulk export) request for "
                f"{getattr(exc, 'seconds', '?')} s: approve it in Telegram on another device "
                "(Settings → Privacy → Data export requests), then rerun; or run without "
                "--takeout.") from None
        return report
    report.channels = await Collector(store, client, run_id, options, progress,
                                      sleep).run(targets)
    return report
