"""One masking and pseudonymisation applied to every output: export, search, evidence, the
dashboard and the report (``--reveal`` on local commands is the only way around it).

- :func:`chatlens.textsafe.mask_pii` masks phone numbers and e-mail addresses in any text, in
  time linear in its length (one pass of one pattern whose parts cannot backtrack over each
  other), and leaves URLs as they are, except the phone number of a phone link (``wa.me/…``,
  ``t.me/+…``).
- :class:`Masker` adds what needs the project: 1:1 chats (Telegram ``personal_chat``, Viber
  ``personal``, and WhatsApp or HTML exports whose title is a sender's name or a phone number)
  are shown as ``1:1 chat c…`` with a keyed pseudonym instead of the partner's name, in titles,
  chat keys, positions and source paths; and service texts ("X added Y") have display names
  replaced, by the author pseudonym when the name is a known sender, else by ``[name]``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatlens.textsafe import (
    _MAYBE_PII,
    _norm,
    chat_pseudonym,
    first_words,
    is_personal,
    mask_pii,
    mask_service_names,
)

_CACHE: dict[Any, Masker] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(slots=True)
class Masker:
    """The masking of one project. ``reveal`` (local commands only) turns all of it off."""

    personal: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    reveal: bool = False
    first: frozenset[str] = frozenset()
    #: One pattern for every 1:1 title (longest first), and the pseudonym of each title.
    _titles: re.Pattern[str] | None = None
    _by_title: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.first = first_words(self.names)
        for shown, title in self.personal.values():
            if title and len(title) > 1:
                self._by_title[title.casefold()] = shown.split(":", 1)[1]
        if self._by_title:
            self._titles = re.compile("|".join(
                re.escape(t) for t in sorted(self._by_title, key=len, reverse=True)),
                re.IGNORECASE)

    @classmethod
    def for_store(cls, store: Any, reveal: bool = False) -> Masker:
        """The masking of the project open in ``store`` (cached per version of its files)."""
        if reveal:
            return cls(reveal=True)
        from chatlens.store.core import DB_NAME

        stamp = []
        for name in (DB_NAME, DB_NAME + ".wal"):
            try:
                st = (store.root / name).stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((0, 0))
        key = (str(store.root.resolve()), tuple(stamp))
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is None:
            cached = cls._load(store)
            with _CACHE_LOCK:
                _CACHE.clear()  # one project version at a time is enough
                _CACHE[key] = cached
        return cached

    @classmethod
    def _load(cls, store: Any) -> Masker:
        from chatlens.store.privacy import chat_senders

        secret = store.secret()
        personal: dict[str, tuple[str, str | None]] = {}
        for key, platform, title, ctype, senders in chat_senders(store):
            if is_personal(ctype, title, senders, platform):
                personal[key] = (f"{platform}:{chat_pseudonym(secret, key)}", title)
        from chatlens.store.privacy import identity_names

        names = {_norm(n): k for k, n in identity_names(store) if n and len(_norm(n)) > 1}
        return cls(personal, names)

    def text(self, text: str | None, kind: str | None = None) -> str:
        if self.reveal:
            return text or ""
        masked = mask_pii(text)
        return mask_service_names(masked, self.names, self.first) if kind == "service" else masked

    def chat_key(self, chat_key: str | None) -> str | None:
        if self.reveal or chat_key not in self.personal:
            return chat_key
        return self.personal[chat_key][0]

    def title(self, chat_key: str | None, title: str | None) -> str | None:
        """The title to show for a chat: a pseudonym for a 1:1 chat, else the masked title."""
        if self.reveal:
            return title
        if chat_key in self.personal:
            return "1:1 chat " + self.personal[chat_key][0].split(":", 1)[1]
        return mask_pii(title) if title else title

    def shown(self, chat_key: str | None, title: str | None = None) -> str:
        """What to show for a chat: its (masked) title, else its (pseudonymised) key."""
        return self.title(chat_key, title) or self.chat_key(chat_key) or ""

    def unmask_chat(self, shown: str) -> str:
        """The chat key behind a shown 1:1 pseudonym key (a dashboard link), else ``shown``."""
        for key, (pseudo, _) in self.personal.items():
            if pseudo == shown:
                return key
        return shown

    def groups(self, rows: Iterable[dict[str, Any]], titles: dict[str, str | None]) -> None:
        """Estimate rows grouped by chat (``group`` a chat key): the group shown instead."""
        for r in rows:
            if r.get("group") in titles:
                r["group"] = self.shown(r["group"], titles[r["group"]])

    def loc(self, loc: str | None, chat_key: str | None = None) -> str | None:
        """A position or path (``WhatsApp Chat with Anna.txt: line 3``) without the names of
        1:1 partners, nor phone numbers or e-mails."""
        if self.reveal or not loc:
            return loc
        if chat_key in self.personal:
            shown, title = self.personal[chat_key]
            if title:
                loc = re.sub(re.escape(title), shown.split(":", 1)[1], loc, flags=re.IGNORECASE)
        elif chat_key is None and self._titles is not None:
            loc = self._titles.sub(lambda m: self._by_title.get(m.group().casefold(), "[name]"),
                                   loc)
        return mask_pii(loc)

    def row(self, r: dict[str, Any]) -> dict[str, Any]:
        """Mask a message row's text, chat title, chat key and position in place."""
        if self.reveal:
            return r
        key = r.get("chat_key")
        if "text" in r:
            r["text"] = self.text(r["text"], r.get("kind"))
        if "chat_title" in r:
            r["chat_title"] = self.title(key, r["chat_title"])
        if "title" in r and "chat_key" in r:
            r["title"] = self.title(key, r["title"])
        if "source_loc" in r:
            r["source_loc"] = self.loc(r["source_loc"], key)
        if "path" in r:
            r["path"] = self.loc(r["path"])
        if key is not None:
            r["chat_key"] = self.chat_key(key)
        return r

    def batch(self, batch: Any) -> Any:
        """A message record batch (export columns) with texts, chat keys and positions masked.
        Only the rows that may hold something to mask (by a vectorised linear-time pre-test)
        go through Python."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.reveal:
            return batch
        names = batch.schema.names
        cols = {name: batch.column(name) for name in names}
        keys = cols["chat_key"].to_pylist() if "chat_key" in cols else None
        personal = (pc.is_in(cols["chat_key"], value_set=pa.array(sorted(self.personal)))
                    if keys is not None and self.personal else None)

        def masked(name: str, fn: Any, also: Any = None) -> None:
            col = cols[name]
            todo = pc.match_substring_regex(col, _MAYBE_PII)
            if also is not None:
                todo = pc.or_(todo, also)
            rows = [i for i, t in enumerate(pc.fill_null(todo, False).to_pylist()) if t]
            if rows:
                values = col.to_pylist()
                for i in rows:
                    values[i] = fn(i, values[i])
                cols[name] = pa.array(values, col.type)

        if "text" in cols:
            kinds = cols["kind"].to_pylist() if "kind" in cols else None
            service = pc.equal(cols["kind"], "service") if "kind" in cols else None
            masked("text", lambda i, v: self.text(v, kinds[i] if kinds else None), service)
        if "entities" in cols:
            masked("entities", lambda i, v: mask_pii(v) if v else v)
        if "source_loc" in cols:
            masked("source_loc", lambda i, v: self.loc(v, keys[i] if keys else None), personal)
        if keys is not None and self.personal:
            cols["chat_key"] = pa.array([self.chat_key(k) for k in keys], pa.string())
        return pa.RecordBatch.from_arrays([cols[n] for n in names], schema=batch.schema)
