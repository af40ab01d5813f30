"""Queries behind the forward and reply networks: chats and channels only, never people.

Forward origins come from collected messages (``collected.fwd_chat_key``, a channel or chat id)
and from exports where the origin is named: Telegram Desktop's ``forwarded_from_id``
(``channel123``), or a display name that is exactly the title of one chat in the project. A
forward whose origin is a person, hidden, or unknown is left out.
"""

from __future__ import annotations

from typing import Any

from chatlens.store.collect import has_collect_tables
from chatlens.store.core import Store

EVIDENCE = 5


def _dicts(store: Store, sql: str) -> list[dict[str, Any]]:
    cur = store.con.cursor().execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def edge_rows(store: Store) -> list[dict[str, Any]]:
    """(source, target, kind, weight, first, last, evidence uids) per chat pair and kind."""
    collected = has_collect_tables(store)
    not_collected = ("AND m.uid NOT IN (SELECT uid FROM collected WHERE fwd_kind IS NOT NULL)"
                     if collected else "")
    parts = [f"""
        SELECT coalesce(CASE WHEN regexp_matches(i.raw_id, '^name:(channel|chat)[0-9]+$')
                        THEN m.platform || ':' || regexp_extract(i.raw_id, '[0-9]+$') END,
                        t.chat_key) AS source, m.chat_key AS target, 'forward' AS kind,
               m.ts, m.uid
        FROM messages m JOIN identities i ON i.author_key = m.forwarded_from
        LEFT JOIN (SELECT platform, title, any_value(chat_key) AS chat_key FROM chats
                   WHERE title IS NOT NULL GROUP BY platform, title HAVING count(*) = 1) t
               ON t.title = i.display_name AND t.platform = m.platform
        WHERE m.forwarded_from IS NOT NULL {not_collected}"""]
    if collected:
        parts += [
            """SELECT c.fwd_chat_key, m.chat_key, 'forward', m.ts, m.uid
               FROM collected c JOIN messages m USING (uid) WHERE c.fwd_chat_key IS NOT NULL""",
            """SELECT split_part(c.post_key, '/', 1), m.chat_key, 'comments', m.ts, m.uid
               FROM collected c JOIN messages m USING (uid) WHERE c.post_key IS NOT NULL""",
            """SELECT m.chat_key, c.reply_to_chat_key, 'reply', m.ts, m.uid
               FROM collected c JOIN messages m USING (uid)
               WHERE c.reply_to_chat_key IS NOT NULL""",
        ]
    union = " UNION ALL ".join(parts)
    return _dicts(store, f"""
        SELECT source, target, kind, count(*) AS weight, min(ts) AS first, max(ts) AS last,
               list(uid ORDER BY ts, uid)[1:{EVIDENCE}] AS evidence
        FROM ({union}) e WHERE source IS NOT NULL AND target IS NOT NULL AND source <> target
        GROUP BY source, target, kind ORDER BY kind, weight DESC, source, target""")


def chat_rows(store: Store) -> list[dict[str, Any]]:
    """Every chat of the project with its message and reply volumes."""
    return _dicts(store, """
        SELECT c.chat_key, c.platform, c.title, c.chat_type, count(m.uid) AS messages,
               count(m.reply_to) AS replies FROM chats c LEFT JOIN messages m USING (chat_key)
        GROUP BY ALL ORDER BY c.chat_key""")


def peer_rows(store: Store) -> list[dict[str, Any]]:
    """Channels and chats seen only as forward origins (title and public username)."""
    if not has_collect_tables(store):
        return []
    return _dicts(store, "SELECT chat_key, title, username, kind FROM peers ORDER BY chat_key")
