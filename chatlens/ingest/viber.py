"""Viber Desktop's ``viber.db`` (SQLite), read-only, as described in FORMATS.md §4.1.

One record per ``Messages`` row, joined to ``Events`` (time, chat, sender, direction), ``Contact``
(sender names) and ``ChatInfo`` (group names), in ``EventID`` order. The database is opened with
``mode=ro&immutable=1`` so Viber's journal files are never touched; a database inside a zip is
first copied to a temporary file.

- ``TimeStamp`` is documented as milliseconds. The unit is checked per value by magnitude: below
  1e11 it is read as seconds (the ``EventInfo``-style seconds some builds show), below 1e14 as
  milliseconds, below 1e17 as microseconds. Viber times are absolute, so ``ts_naive`` is False.
- Sender: ``Direction = 1`` (outgoing) or ``ContactID = 1`` is the account owner
  (``contact:1``); otherwise ``contact:<ContactID>`` (or ``number:<Number>`` without an id).
  Display name: ``COALESCE(Contact.Name, Contact.ClientName, Contact.Number)``.
- Chat: ``ChatID``; title ``ChatInfo.Name``, or for a 1:1 chat the other member's name from
  ``ChatRelation``; type ``group`` when named or with more than one other member, else
  ``personal``.
- ``Messages.Type``: 1 and 15 text, 9 URL (text); 2 image, 3 video, 4 sticker, 6 voice, 7 instant
  video, 11 audio are media; other types are media ``viber_type_<N>``. ``ClientFlag`` 64 marks an
  edited message (Promnesia). ``Info`` (JSON) is kept, parsed, in ``raw``.
- Text is UTF-8 in SQLite. A value that is not (written by a broken build, or a BLOB) is decoded
  with ``--encoding`` when one is given; otherwise (or when that fails too) its message is a
  :class:`Bad` record naming the column, never stored with replacement characters.
- A message without its event, or with a missing/unreadable ``TimeStamp`` or ``ChatID``, is a
  :class:`Bad` record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from chatlens.errors import InputError
from chatlens.ingest.base import Bad, Chat, Item, ParseOptions, Record, SourceInput
from chatlens.ingest.generic import local_path

SQLITE_MAGIC = b"SQLite format 3\0"
OWNER = 1
MEDIA = {2: "image", 3: "video", 4: "sticker", 6: "voice", 7: "instant_video", 11: "audio"}
TEXT_TYPES = {1, 9, 15}
EDITED_FLAG = 64
TEXT_COLUMNS = ("Body", "Subject", "ContactName", "ClientName", "Number", "ChatName")
REQUIRED = {"Events": ("EventID", "TimeStamp", "ChatID"), "Messages": ("EventID",)}
OPTIONAL = {
    "Events": ("ContactID", "Direction"),
    "Messages": ("Type", "Subject", "Body", "Info", "Duration", "StickerID", "ClientFlag"),
}


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only and immutable; InputError if it is not an SQLite database."""
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
        con.text_factory = _utf8_or_bytes
        con.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise InputError(str(path), f"not a readable SQLite database ({exc}).") from None
    return con


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in con.execute(f'PRAGMA table_info("{table}")')}


def ts_us(value: Any) -> int:
    """A Viber ``TimeStamp`` (ms; seconds or µs accepted by magnitude) → µs since the epoch."""
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value.strip())
        except ValueError:
            raise ValueError(f"unreadable TimeStamp {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"unreadable TimeStamp {value!r}")
    if value <= 0:
        raise ValueError(f"TimeStamp {value!r} is not a time")
    for limit, factor in ((1e11, 1_000_000), (1e14, 1_000), (1e17, 1)):
        if value < limit:
            return int(value * factor)
    raise ValueError(f"TimeStamp {value!r} is too large for s, ms or µs")


def _select(con: sqlite3.Connection, name: str) -> str:
    tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master "
                                             "WHERE type IN ('table', 'view')")}
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise InputError(name, f"not a Viber Desktop database: table(s) {', '.join(missing)} "
                         f"missing (found: {', '.join(sorted(tables)) or 'no tables'}).")
    have = {t: _columns(con, t) for t in REQUIRED}
    for table, cols in REQUIRED.items():
        lost = [c for c in cols if c not in have[table]]
        if lost:
            raise InputError(name, f"not a Viber Desktop database: {table} lacks column(s) "
                             f"{', '.join(lost)}.")
    alias = {"Events": "e", "Messages": "m"}
    parts = ["m.EventID AS EventID", "e.EventID AS EventFound", "e.TimeStamp AS TimeStamp",
             "e.ChatID AS ChatID"]
    for table, cols in OPTIONAL.items():
        parts += [f"{alias[table]}.{c} AS {c}" if c in have[table] else f"NULL AS {c}"
                  for c in cols]
    contact = "Contact" in tables and {"ContactID", "Name", "ClientName", "Number"} <= _columns(
        con, "Contact") and "ContactID" in have["Events"]
    chatinfo = "ChatInfo" in tables and {"ChatID", "Name"} <= _columns(con, "ChatInfo")
    parts += ["c.Name AS ContactName", "c.ClientName AS ClientName", "c.Number AS Number"] \
        if contact else ["NULL AS ContactName", "NULL AS ClientName", "NULL AS Number"]
    parts.append("ci.Name AS ChatName" if chatinfo else "NULL AS ChatName")
    sql = f"SELECT {', '.join(parts)} FROM Messages m LEFT JOIN Events e ON e.EventID = m.EventID"
    if contact:
        sql += " LEFT JOIN Contact c ON c.ContactID = e.ContactID"
    if chatinfo:
        sql += " LEFT JOIN ChatInfo ci ON ci.ChatID = e.ChatID"
    return sql + " ORDER BY m.EventID"


def _people(con: sqlite3.Connection, encoding: str | None,
            ) -> tuple[str | None, dict[str, list[str]]]:
    """The owner's display name, and each chat's other members' names (ChatRelation)."""
    try:
        if not {"ContactID", "Name", "ClientName", "Number"} <= _columns(con, "Contact"):
            return None, {}
        row = con.execute("SELECT COALESCE(Name, ClientName, Number) FROM Contact "
                          "WHERE ContactID = ?", [OWNER]).fetchone()
        name = _strict(row[0], encoding) if row else None
        owner = name if isinstance(name, str) else None
        others: dict[str, list[str]] = {}
        if {"ChatID", "ContactID"} <= _columns(con, "ChatRelation"):
            for chat_id, who in con.execute(
                "SELECT r.ChatID, COALESCE(c.Name, c.ClientName, c.Number, "
                "'contact:' || r.ContactID) FROM ChatRelation r LEFT JOIN Contact c "
                "ON c.ContactID = r.ContactID WHERE r.ContactID IS NOT ? "
                "ORDER BY r.ChatID, r.ContactID", [OWNER]
            ):
                who = _strict(who, encoding)
                if isinstance(who, str):  # an undecodable name is left out, not guessed
                    others.setdefault(_text(chat_id), []).append(who)
        return owner, others
    except sqlite3.Error:
        return None, {}


def _utf8_or_bytes(value: bytes) -> str | bytes:
    """SQLite text as str; bytes when it is not valid UTF-8 (decided later, per message)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _strict(value: Any, encoding: str | None) -> Any:
    """A text value decoded for sure (UTF-8, else ``encoding``); bytes when neither works."""
    if not isinstance(value, bytes):
        return value
    for enc in ("utf-8", encoding):
        if enc:
            try:
                return value.decode(enc)
            except UnicodeDecodeError:
                continue
    return value


def _text(value: Any) -> str:
    """A value for ``raw``: undecodable bytes shown as escapes, never as guessed text."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


class ViberDesktop:
    name = "viber_db.v1"
    format = "viber"
    platform = "viber"

    def sniff(self, source: SourceInput) -> float:
        if len(source.members) != 1:
            return 0.0
        head = source.members[0].head(1 << 20)
        if not head.startswith(SQLITE_MAGIC):
            return 0.0
        path = Path(source.path)
        if path.is_file():
            try:
                con = connect(path)
            except InputError:
                return 0.0
            try:
                tables = {str(r[0]) for r in con.execute("SELECT name FROM sqlite_master")}
            except sqlite3.Error:
                return 0.0
            finally:
                con.close()
            return 0.95 if {"Events", "Messages"} <= tables else 0.3
        # inside an archive: look for the table definitions in the first pages
        found = all(f"TABLE {t}".encode() in head or f'TABLE "{t}"'.encode() in head
                    for t in ("Events", "Messages"))
        return 0.9 if found else 0.3

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        name = source.members[0].name
        with local_path(source, ".db") as path:
            con = connect(path)
            try:
                try:
                    sql = _select(con, name)
                    owner, others = _people(con, options.encoding)
                    cursor = con.execute(sql)
                    cols = [d[0] for d in cursor.description]
                except sqlite3.Error as exc:
                    raise InputError(name, f"cannot read the database ({exc}).") from None
                chats: dict[str, Chat] = {}
                last = None
                while True:
                    try:
                        row = cursor.fetchone()
                    except sqlite3.Error as exc:
                        raise InputError(name, f"the database is damaged ({exc}).",
                                         f"after EventID {last}") from None
                    if row is None:
                        break
                    values = dict(zip(cols, row, strict=True))
                    last = values["EventID"]
                    yield self._item(values, owner, others, chats, name, options.encoding)
            finally:
                con.close()

    def _item(self, v: dict[str, Any], owner: str | None, others: dict[str, list[str]],
              chats: dict[str, Chat], name: str, encoding: str | None) -> Item:
        for key in TEXT_COLUMNS:
            v[key] = _strict(v[key], encoding)
        undecodable = [k for k in TEXT_COLUMNS if isinstance(v[k], bytes)]
        info = v.get("Info")
        if isinstance(info, str | bytes):
            try:
                v["Info"] = orjson.loads(info)
            except orjson.JSONDecodeError:
                v["Info"] = _text(info)
        raw = orjson.dumps(v, default=_text).decode()
        loc = f"{name}: EventID {v['EventID']}"
        if not isinstance(v["EventID"], int):
            return Bad(loc=loc, reason="EventID is not an integer", excerpt=raw)
        if undecodable:
            also = f" nor {encoding}" if encoding else ""
            return Bad(loc=loc, excerpt=raw, reason=(
                f"{', '.join(undecodable)} holds text that is not valid UTF-8{also}; if the "
                "database holds text in a code page, ingest it with --encoding NAME (e.g. "
                "--encoding cp1251)"))
        if v["EventFound"] is None:
            return Bad(loc=loc, reason="message has no matching row in Events", excerpt=raw)
        try:
            ts = ts_us(v["TimeStamp"])
        except (ValueError, OverflowError) as exc:
            return Bad(loc=loc, reason=str(exc), excerpt=raw)
        if v["ChatID"] is None:
            return Bad(loc=loc, reason="event has no ChatID", excerpt=raw)
        chat_id = _text(v["ChatID"])
        chat = chats.get(chat_id)
        if chat is None:
            members = others.get(chat_id, [])
            title = _text(v["ChatName"]) or None
            kind = "group" if title or len(members) > 1 else ("personal" if members else None)
            if title is None and len(members) == 1:
                title = members[0]
            chat = chats[chat_id] = Chat(self.platform, chat_id, title, kind)
        contact = v["ContactID"]
        if v["Direction"] == 1 or contact == OWNER:
            author_id: str | None = f"contact:{OWNER}"
            author_name = owner
        else:
            author_id = f"contact:{contact}" if contact is not None else (
                f"number:{v['Number']}" if v["Number"] is not None else None)
            author_name = next((_text(x) for x in (v["ContactName"], v["ClientName"],
                                                   v["Number"]) if x is not None), None)
        mtype = v["Type"]
        media = None if mtype is None or mtype in TEXT_TYPES else MEDIA.get(
            mtype, f"viber_type_{mtype}")
        flag = v["ClientFlag"]
        return Record(
            chat=chat, message_id=str(v["EventID"]), ts_us=ts, text=_text(v["Body"]), raw=raw,
            loc=loc, kind="media" if media else "message", author_id=author_id,
            author_name=author_name, media=media,
            edited=bool(flag & EDITED_FLAG) if isinstance(flag, int) else None,
        )
