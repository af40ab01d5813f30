"""Store-side queries of masking (:mod:`chatlens.privacy`) and erasure (:mod:`chatlens.forget`)."""

from __future__ import annotations

from typing import Any

from chatlens.store.core import Store


def chat_senders(store: Store) -> list[tuple[str, str, str | None, str | None, list[str]]]:
    """Every chat with its platform, title, type and the display names of its senders (of
    ordinary messages: an iOS WhatsApp group "sends" its own system notes) that equal its
    title, as a 1:1 chat is titled with its partner's name."""
    rows = store.con.cursor().execute(
        "WITH candidates AS (SELECT c.chat_key, i.author_key, i.display_name FROM chats c "
        "JOIN identities i ON i.platform = c.platform "
        "AND lower(trim(i.display_name)) = lower(trim(c.title))), "
        "senders AS (SELECT DISTINCT k.chat_key, k.display_name FROM candidates k "
        "SEMI JOIN messages m ON m.chat_key = k.chat_key AND m.author_key = k.author_key "
        "AND m.kind <> 'service') "
        "SELECT c.chat_key, c.platform, c.title, c.chat_type, "
        "list(s.display_name) FILTER (s.display_name IS NOT NULL) "
        "FROM chats c LEFT JOIN senders s USING (chat_key) GROUP BY ALL").fetchall()
    return [(r[0], r[1], r[2], r[3], list(r[4] or [])) for r in rows]


def identity_names(store: Store) -> list[tuple[str, str]]:
    """(author_key, display_name) of every sender with a name."""
    rows: list[Any] = store.con.cursor().execute(
        "SELECT author_key, display_name FROM identities WHERE display_name IS NOT NULL"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]
