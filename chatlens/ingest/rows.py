"""A batch of read items into the Arrow tables the store takes: pseudonyms, uids, times.

Pure (no store, no DuckDB), so that ingest's worker process (:mod:`.worker`) imports only this
and what parsing needs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.errors import UsageError
from chatlens.ingest.base import EPOCH, ONE_US, Bad, Chat, Item, Record, Run
from chatlens.schema import MESSAGE_SCHEMA, ORIGINAL_SCHEMA

EXCERPT = 500

QUARANTINE_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("source_pos", pa.int64()), ("source_loc", pa.string()),
    ("reason", pa.string()), ("excerpt", pa.string()), ("run_id", pa.string()),
])
IDENTITY_SCHEMA = pa.schema([
    ("author_key", pa.string()), ("platform", pa.string()), ("raw_id", pa.string()),
    ("display_name", pa.string()),
])
CHAT_SCHEMA = pa.schema([
    ("chat_key", pa.string()), ("platform", pa.string()), ("chat_id", pa.string()),
    ("title", pa.string()), ("chat_type", pa.string()), ("first_source", pa.string()),
])


class Pseudonymiser:
    """Keyed-hash pseudonyms: the same sender gets the same key within a project."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._cache: dict[tuple[str, str], str] = {}
        self.new: dict[str, tuple[str, str, str | None]] = {}

    def key(self, platform: str, raw_id: str, display_name: str | None) -> str:
        cached = self._cache.get((platform, raw_id))
        if cached is not None:
            return cached
        mac = hmac.new(self._secret, f"{platform}\x1f{raw_id}".encode(), hashlib.sha256)
        key = "a" + mac.hexdigest()[:15]
        self._cache[(platform, raw_id)] = key
        self.new[key] = (platform, raw_id, display_name)
        return key

    def drain(self) -> pa.Table:
        rows = self.new
        self.new = {}
        return pa.table(
            {
                "author_key": list(rows),
                "platform": [v[0] for v in rows.values()],
                "raw_id": [v[1] for v in rows.values()],
                "display_name": [v[2] for v in rows.values()],
            },
            schema=IDENTITY_SCHEMA,
        )


def message_uid(platform: str, chat_id: str, message_id: str) -> str:
    key = f"{platform}\x1f{chat_id}\x1f{message_id}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


class LocalTime:
    """Converts naive local microseconds to UTC for a named zone."""

    def __init__(self, tz: str) -> None:
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"Unknown time zone {tz!r}; use an IANA name such as "
                             "'Europe/Moscow' or 'UTC'.") from None
        self.utc = tz.upper() == "UTC"

    def to_utc(self, local_us: int) -> int:
        if self.utc:
            return local_us
        naive = EPOCH + timedelta(microseconds=local_us)
        offset = naive.replace(tzinfo=self.zone).utcoffset() or timedelta(0)
        return local_us - offset // ONE_US


class Batch:
    """One batch as read: items and runs, each with its (first) position in the source."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, Item | Run]] = []
        self.read = 0


@dataclass(slots=True)
class _Rows:
    """A batch read into records and bad records, with their positions in the source."""

    records: list[Record] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # of the records
    bad: list[tuple[int, Bad]] = field(default_factory=list)

    def add(self, pos: int, item: Item) -> None:
        if isinstance(item, Record):
            self.records.append(item)
            self.positions.append(pos)
        else:
            self.bad.append((pos, item))

    @property
    def service(self) -> int:
        return sum(r.kind == "service" for r in self.records)


def _rows(batch: Batch) -> _Rows:
    """The batch's runs read: every item in source order."""
    rows = _Rows()
    for pos, piece in batch.pieces:
        if not isinstance(piece, Run):
            rows.add(pos, piece)
            continue
        n = 0
        for n, item in enumerate(piece.items(), 1):
            if isinstance(item, Record) and item.message_id is None:
                raise RuntimeError("a run read into a record without a message id")
            rows.add(pos + n - 1, item)
        if n != len(piece):
            raise RuntimeError(f"a run of {len(piece)} read into {n} items")
    return rows


def _message_columns(recs: list[Record], positions: list[int], source_id: str,
                     pseudo: Pseudonymiser, clock: LocalTime) -> dict[str, list[Any]]:
    """The columns of :data:`MESSAGE_SCHEMA` for a batch's records (one pass per column)."""
    chats = [r.chat for r in recs]
    platforms = [c.platform for c in chats]
    fwd = [r.forwarded_from for r in recs]
    authors = [r.author_id or r.author_name for r in recs]
    key = pseudo.key
    return {
        "uid": [message_uid(c.platform, c.chat_id, str(r.message_id))
                for c, r in zip(chats, recs, strict=True)],
        "platform": platforms,
        "chat_key": [c.key for c in chats],
        "message_id": [r.message_id for r in recs],
        "ts": [clock.to_utc(r.ts_us) if (r.ts_naive and r.ts_us is not None) else r.ts_us
               for r in recs],
        "ts_naive": [r.ts_naive for r in recs],
        "author_key": [key(p, a, r.author_name) if a else None
                       for p, a, r in zip(platforms, authors, recs, strict=True)],
        "text": [r.text for r in recs],
        "kind": [r.kind for r in recs],
        "media": [r.media for r in recs],
        "reply_to": [r.reply_to for r in recs],
        "forwarded_from": [key(p, f"name:{f}", f) if f else None
                           for p, f in zip(platforms, fwd, strict=True)],
        "entities": [r.entities for r in recs],
        "edited": [r.edited for r in recs],
        "source_id": [source_id] * len(recs),
        "source_pos": positions,
        "source_loc": [r.loc for r in recs],
    }


def raw_column(raw: list[str | bytes]) -> pa.Array:
    """Original records as an Arrow string column. Records read as bytes are checked as UTF-8
    in one pass; a batch with invalid UTF-8 is decoded record by record, with U+FFFD for
    the bytes that are not UTF-8 (as an excerpt is)."""
    if raw and all(isinstance(r, bytes) for r in raw):
        binary = pa.array(raw, pa.binary())
        try:
            return binary.cast(pa.string())
        except pa.ArrowInvalid:
            pass
    return pa.array([r.decode("utf-8", "replace") if isinstance(r, bytes) else r for r in raw],
                    pa.string())


def batch_tables(source_id: str, run_id: str, batch: Batch, pseudo: Pseudonymiser,
                 clock: LocalTime) -> tuple[dict[str, pa.Table], tuple[int, int, int]]:
    """The batch as the Arrow tables :meth:`Store.write_batch` takes but ``originals`` (see
    :func:`originals_table`), and its counts (read, quarantined, service)."""
    rows = _rows(batch)
    recs = rows.records
    messages = pa.table(_message_columns(recs, rows.positions, source_id, pseudo, clock),
                        schema=MESSAGE_SCHEMA)
    first: dict[str, Chat] = {}
    for r in recs:  # each chat as its first record in the batch names it
        first.setdefault(r.chat.key, r.chat)
    chats = list(first.values())
    bad = rows.bad
    counts = (batch.read, len(bad), rows.service)
    return {
        "messages": messages,
        "quarantine": pa.table(
            {
                "source_id": [source_id] * len(bad),
                "source_pos": [p for p, _ in bad],
                "source_loc": [b.loc for _, b in bad],
                "reason": [b.reason for _, b in bad],
                "excerpt": [b.excerpt[:EXCERPT] for _, b in bad],
                "run_id": [run_id] * len(bad),
            },
            schema=QUARANTINE_SCHEMA,
        ),
        "identities": pseudo.drain(),
        "chats": pa.table(
            {
                "chat_key": [c.key for c in chats],
                "platform": [c.platform for c in chats],
                "chat_id": [c.chat_id for c in chats],
                "title": [c.title for c in chats],
                "chat_type": [c.type for c in chats],
                "first_source": [source_id] * len(chats),
            },
            schema=CHAT_SCHEMA,
        ),
    }, counts


def originals_table(batch: Batch, messages: pa.Table) -> pa.Table:
    """The original records of the batch's ``messages``, taken from the batch as read (what a
    worker process read it into need not carry them back)."""
    raw: list[str | bytes] = []
    for _, piece in batch.pieces:
        if isinstance(piece, Run):
            raw.extend(piece.raws())
        else:
            raw.append(piece.raw if isinstance(piece, Record) else b"")
    pos = messages.column("source_pos")
    first = batch.pieces[0][0]  # a batch's items have consecutive positions
    return pa.table([messages.column("source_id"), pos, messages.column("uid"),
                     raw_column(raw).take(pc.subtract(pos, first))], schema=ORIGINAL_SCHEMA)
