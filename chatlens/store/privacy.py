"""Store-side queries of masking (:mod:`chatlens.privacy`) and erasure
(:mod:`chatlens.project.forget`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatlens.store import originals as originals_store
from chatlens.store.collect import COLLECT_BY_UID, has_collect_tables
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


# -- erasure -----------------------------------------------------------------------------------

#: Tables keyed by message uid that an erasure clears (besides messages and originals).
_BY_UID = ("codes", "enrichment", "lemma_index", "lemma_indexed")


def resolve_chat(store: Store, chat: str, pseudonyms: dict[str, str]) -> list[str]:
    """Chat keys meant by ``chat``: a chat key, a shown 1:1 pseudonym key, or an exact title."""
    if chat in pseudonyms:
        return [pseudonyms[chat]]
    rows = store.con.cursor().execute(
        "SELECT chat_key FROM chats WHERE chat_key = ? UNION "
        "SELECT chat_key FROM chats WHERE title = ? AND NOT EXISTS "
        "(SELECT 1 FROM chats WHERE chat_key = ?)", [chat, chat, chat]).fetchall()
    return sorted(r[0] for r in rows)


def resolve_author(store: Store, author: str) -> list[str]:
    """Author keys meant by ``author``: a pseudonym, else a raw id or display name."""
    rows = store.con.cursor().execute(
        "SELECT author_key FROM identities WHERE author_key = ? UNION "
        "SELECT author_key FROM identities WHERE (raw_id = ? OR display_name = ?) AND NOT EXISTS "
        "(SELECT 1 FROM identities WHERE author_key = ?)", [author] * 4).fetchall()
    return sorted(r[0] for r in rows)


def resolve_source(store: Store, source: str) -> list[str]:
    """Source ids meant by ``source``: a source id, or the path it was ingested from."""
    rows = store.con.cursor().execute(
        "SELECT source_id FROM sources WHERE source_id = ? OR path = ? OR path LIKE ?",
        [source, source, f"%/{source}"]).fetchall()
    return sorted(r[0] for r in rows)


#: Where names of the erased are replaced by their pseudonym (table, column).
_SCRUB = (("chats", "title"), ("sources", "path"), ("sources", "files"), ("runs", "params"),
          ("runs", "manifest"), ("quarantine", "source_loc"), ("quarantine", "excerpt"),
          ("messages", "source_loc"))


def names_of(store: Store, column: str, keys: list[str]) -> list[str]:
    """Chat titles (``chat_key``) or display names and raw ids (``author_key``) of ``keys``."""
    sql = {"chat_key": "SELECT title FROM chats WHERE chat_key IN (SELECT unnest(?))",
           "author_key": "SELECT display_name FROM identities WHERE author_key IN "
           "(SELECT unnest(?)) UNION SELECT raw_id FROM identities WHERE author_key IN "
           "(SELECT unnest(?))"}.get(column)
    if sql is None:
        return []
    rows = store.con.execute(sql, [keys] * sql.count("?")).fetchall()
    return sorted({r[0] for r in rows if r[0]})


def interrupted_forgets(store: Store) -> list[str]:
    """Forget runs that never finished and that no later forget completed: their deletions
    may be committed while the rewrite that removes the deleted rows' bytes from the file
    never ran. A writable open marks a killed run interrupted; a read-only one still sees it
    running (as it sees one that runs now)."""
    return [r[0] for r in store.con.execute(
        "SELECT run_id FROM runs WHERE command = 'forget' AND manifest IS NULL "
        "AND status IN ('interrupted', 'running') ORDER BY started").fetchall()]


def uids_of(store: Store, column: str, keys: list[str]) -> list[str]:
    """The uids of the messages whose ``column`` is one of ``keys`` (what :func:`erase`
    deletes)."""
    assert column in ("author_key", "chat_key", "source_id")
    return [r[0] for r in store.con.execute(
        f"SELECT uid FROM messages WHERE {column} IN (SELECT unnest(?))", [keys]).fetchall()]


def erase(store: Store, column: str, keys: list[str],
          scrub: Sequence[tuple[str, str]] = ()) -> tuple[list[str], dict[str, int]]:
    """Delete the messages whose ``column`` (author_key, chat_key or source_id) is one of
    ``keys``, with their originals, codes, enrichment and index postings, then identities,
    chats and search vocabulary nothing refers to any more (and, for sources, the source, its
    quarantine and its originals). Each (name, pseudonym) of ``scrub`` is replaced, in any
    case, in chat titles, source paths, the runs log and positions (a WhatsApp file is named
    after its chat). Returns the uids erased and the rows deleted per table."""
    import re
    assert column in ("author_key", "chat_key", "source_id")
    counts: dict[str, int] = {}
    with store.transaction() as con:
        con.execute(f"CREATE TEMP TABLE _forget AS SELECT uid, source_id, source_pos "
                    f"FROM messages WHERE {column} IN (SELECT unnest(?))", [keys])
        uids = [r[0] for r in con.execute("SELECT uid FROM _forget").fetchall()]

        def run(table: str, sql: str, params: list[Any] | None = None) -> None:
            row = con.execute(sql, params or []).fetchall()
            counts[table] = counts.get(table, 0) + (int(row[0][0]) if row else 0)

        for table in _BY_UID + (COLLECT_BY_UID if has_collect_tables(store) else ()):
            run(table, f"DELETE FROM {table} WHERE uid IN (SELECT uid FROM _forget)")
        counts["originals"] = originals_store.erase(con, "_forget")
        run("messages", "DELETE FROM messages WHERE uid IN (SELECT uid FROM _forget)")
        if column == "author_key":
            con.execute("UPDATE messages SET forwarded_from = NULL "
                        "WHERE forwarded_from IN (SELECT unnest(?))", [keys])
        if column == "source_id":
            counts["originals"] += originals_store.erase_sources(con, keys)
            run("quarantine", "DELETE FROM quarantine WHERE source_id IN (SELECT unnest(?))",
                [keys])
            run("sources", "DELETE FROM sources WHERE source_id IN (SELECT unnest(?))", [keys])
        run("identities", "DELETE FROM identities WHERE author_key NOT IN "
            "(SELECT author_key FROM messages WHERE author_key IS NOT NULL UNION "
            "SELECT forwarded_from FROM messages WHERE forwarded_from IS NOT NULL)")
        run("chats", "DELETE FROM chats WHERE chat_key NOT IN (SELECT chat_key FROM messages)")
        run("lemma_vocab", "DELETE FROM lemma_vocab WHERE id NOT IN "
            "(SELECT lemma_id FROM lemma_index)")
        con.execute("DROP TABLE _forget")
        for name, pseudonym in scrub:
            pattern = "(?i)" + re.escape(name)
            for table, col in _SCRUB:
                run(f"scrubbed {table}.{col}", f"UPDATE {table} SET {col} = "
                    f"regexp_replace({col}::VARCHAR, ?, ?, 'g') WHERE regexp_matches("
                    f"{col}::VARCHAR, ?)", [pattern, pseudonym, pattern])
    return uids, counts


def rewrite(store: Store) -> Store:
    """Copy the database into a fresh file and put it in place of the old one, so deleted rows
    are gone from the file too (DuckDB keeps them in its blocks even after CHECKPOINT and
    VACUUM). Closes ``store``; returns the project opened again."""
    import os

    from chatlens.store.core import DB_NAME
    from chatlens.store.snapshot import WriterLock, publish

    root = store.root
    db = root / DB_NAME
    fresh = root / f".{DB_NAME}.rewrite"
    for leftover in (fresh, Path(f"{fresh}.wal")):
        leftover.unlink(missing_ok=True)
    con = store.con
    con.execute("CHECKPOINT")
    name = con.execute("SELECT current_database()").fetchall()[0][0]
    quoted = str(fresh).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS _fresh")
    try:
        con.execute(f'COPY FROM DATABASE "{name}" TO _fresh')
        con.execute("CHECKPOINT _fresh")
    finally:
        con.execute("DETACH _fresh")
    # one more hold on the writer lock (re-entrant within the process) keeps it ours from the
    # close to the reopen: no other writer can open the old file while it is being replaced,
    # and the close publishes no snapshot of the state before the rewrite (erased rows' bytes)
    hold = WriterLock.take(root, 0)
    try:
        store.close()
        with open(fresh, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(fresh, db)
        Path(f"{db}.wal").unlink(missing_ok=True)
        publish(root)  # readers' copy: the old one still holds the erased rows' bytes
        return Store.open(root)
    finally:
        hold.release()
