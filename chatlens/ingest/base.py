"""What every importer produces and the interface it implements.

An importer is a small object with a versioned ``name`` (``telegram_json.v1``), a ``format``
(what the user passes to ``--format``), ``sniff`` and ``parse``. ``parse`` yields, in a
deterministic order, one :class:`Record` per message and one :class:`Bad` per record it could not
read; the pipeline numbers them (``source_pos``) so an interrupted ingest resumes exactly where
it stopped. Importers never touch the store.

An importer that finds records in bulk may also offer ``parse_runs``: the same sequence, with
stretches of it left as a :class:`Run` that the pipeline reads in a worker process (the main one
keeps reading the file and storing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Protocol

#: Timestamps are microseconds since this naive epoch: ``(dt - EPOCH) // ONE_US``.
EPOCH = datetime(1970, 1, 1)
ONE_US = timedelta(microseconds=1)


@dataclass(slots=True)
class Chat:
    """The chat a record belongs to, as the source names it."""

    platform: str
    chat_id: str
    title: str | None = None
    type: str | None = None

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(slots=True)
class Record:
    """One message read from a source, before pseudonymisation and storage."""

    chat: Chat
    message_id: str | None  # None: the pipeline derives one from the content
    ts_us: int | None  # microseconds since the epoch, UTC (or naive local, see ts_naive)
    text: str
    raw: str | bytes  # the original record, verbatim (bytes: UTF-8 as read, checked on storage)
    loc: str  # human-readable position, e.g. "line 120" or "messages2.html #message5012"
    kind: str = "message"
    author_id: str | None = None  # stable raw sender id (user123, phone, name)
    author_name: str | None = None  # display name; goes only to the identities table
    ts_naive: bool = False
    media: str | None = None
    reply_to: str | None = None
    forwarded_from: str | None = None  # display name of the origin; pseudonymised on storage
    entities: str | bytes | None = None  # JSON (bytes: UTF-8)
    edited: bool | None = None


@dataclass(slots=True)
class Bad:
    """A record that could not be read; it is quarantined, never dropped."""

    loc: str
    reason: str
    excerpt: str


Item = Record | Bad


class Run(ABC):
    """A stretch of a source's items left unread: picklable, so that another process can read
    it. It reads into exactly ``len(run)`` items, in order, each record with its message id."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def items(self) -> Iterator[Item]: ...

    @abstractmethod
    def cut(self, start: int, stop: int) -> Run:
        """The items ``start`` to ``stop`` of this run, as a run."""

    @abstractmethod
    def raws(self) -> Sequence[str | bytes]:
        """What each item's record will hold as ``raw`` (as the source has it), unread."""


@dataclass(slots=True)
class Member:
    """One file of a source: a plain file, or a file inside an archive."""

    name: str  # name shown in positions and errors
    size: int
    opener: Callable[[], IO[bytes]]

    def open(self) -> IO[bytes]:
        return self.opener()

    def read_bytes(self) -> bytes:
        with self.opener() as fh:
            return fh.read()

    def head(self, n: int = 65536) -> bytes:
        with self.opener() as fh:
            return fh.read(n)


@dataclass(slots=True)
class SourceInput:
    """One logical export: a file, a Telegram HTML export's pages, or a zip's chat file."""

    path: str  # what the user named (file, folder or archive)
    members: list[Member]
    hint: str | None = None  # format suggested by discovery (e.g. pages of an HTML export)
    explicit: bool = True  # named by the user; False when found while searching a folder

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)


@dataclass(slots=True)
class ParseOptions:
    """Options that importers may read."""

    column_map: dict[str, str] = field(default_factory=dict)  # generic tables: field -> column
    tz: str = "UTC"  # zone for naive local timestamps
    chat: str | None = None  # override the chat id/title for sources without one
    date_order: str | None = None  # WhatsApp: "dmy", "mdy" or "ymd" when it cannot be inferred
    encoding: str | None = None  # text sources: the encoding to use instead of detecting one
    languages: tuple[str, ...] = ()  # the project's languages (guide encoding detection)
    # filled in while parsing, for the record: the text encoding decided, and why
    decided: list[str] = field(default_factory=list)


class Importer(Protocol):
    name: str  # versioned, e.g. "telegram_json.v1"
    format: str  # user-facing format name, e.g. "telegram-json"
    platform: str

    def sniff(self, source: SourceInput) -> float:
        """Confidence in [0, 1] that this importer reads the source."""
        ...

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        """Yield records and bad records in a deterministic order.

        Raise :class:`chatlens.errors.InputError` only when nothing can be read at all (empty file,
        not this format); a damaged record mid-file is yielded as :class:`Bad`.
        """
        ...
