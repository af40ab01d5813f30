"""Estimation frames: a measure's coded population, filtered, with what estimators need."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from chatlens.store.core import Store

GROUP_EXPR = {
    "chat": "m.chat_key",
    "month": "strftime(m.ts, '%Y-%m')",
    "week": "strftime(date_trunc('week', m.ts), '%Y-%m-%d')",
    "lang": "coalesce(e.lang, 'und')",
}


def measure_frame(store: Store, codebook: str, measure: str, fingerprint: str,
                  languages: list[str] | None = None, chats: list[str] | None = None,
                  since: date | None = None, until: date | None = None,
                  where: list[tuple[str, str]] | None = None, by: str | None = None) -> pa.Table:
    """uid, coded value, score, group of every message in the measure's population that
    passes the filters (dates are UTC days, ``until`` inclusive; ``where`` on other measures'
    coded values)."""
    group = GROUP_EXPR[by] if by else "NULL"
    sql = [f"SELECT c.uid, c.value, c.score, {group} AS grp, m.chat_key, "
           "strftime(m.ts, '%Y-%m') AS month FROM codes c "
           "JOIN messages m USING (uid) "
           "LEFT JOIN enrichment e ON e.uid = c.uid AND e.fingerprint = ? "
           "WHERE c.codebook = ? AND c.measure = ? AND c.in_population"]
    params: list[Any] = [fingerprint, codebook, measure]
    if languages:
        sql.append("AND e.lang IN (SELECT unnest(?))")
        params.append(languages)
    if chats:
        sql.append("AND m.chat_key IN (SELECT unnest(?))")
        params.append(chats)
    if since:
        sql.append("AND m.ts >= ?::TIMESTAMPTZ")
        params.append(f"{since.isoformat()} 00:00:00+00")
    if until:
        sql.append("AND m.ts < ?::TIMESTAMPTZ")
        params.append(f"{(until + timedelta(days=1)).isoformat()} 00:00:00+00")
    for dep, val in where or []:
        sql.append("AND c.uid IN (SELECT uid FROM codes WHERE codebook = ? AND measure = ? "
                   "AND value = ?)")
        params += [codebook, dep, val]
    return store.query_arrow(" ".join(sql) + " ORDER BY c.uid", params)


def scores_for(store: Store, codebook: str, measure: str, uids: list[str]) -> pa.Table:
    """uid, value, score of the measure's codes for the given messages."""
    if not uids:
        return pa.table({"uid": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                         "score": pa.array([], pa.float64())})
    return store.query_arrow(
        "SELECT uid, value, score FROM codes WHERE codebook = ? AND measure = ? "
        "AND in_population AND uid IN (SELECT unnest(?))", [codebook, measure, uids])


def evidence(store: Store, codebook: str, measure: str, value: str, fingerprint: str,
             since: date | None, until: date | None, where: list[tuple[str, str]],
             limit: int) -> list[dict[str, Any]]:
    """Messages coded ``measure=value``, in a stable pseudo-random order (hash of uid)."""
    from chatlens.textsafe import mask_pii

    frame = measure_frame(store, codebook, measure, fingerprint, since=since, until=until,
                          where=where)
    uids = [r["uid"] for r in frame.to_pylist() if r["value"] == value]
    if not uids:
        return []
    rows: list[dict[str, Any]] = store.query_arrow(
        "SELECT m.uid, m.chat_key, ch.title AS chat_title, m.ts, m.author_key, m.text, "
        "c.matched FROM messages m JOIN codes c ON c.uid = m.uid AND c.codebook = ? "
        "AND c.measure = ? LEFT JOIN chats ch USING (chat_key) "
        "WHERE m.uid IN (SELECT unnest(?)) ORDER BY hash(m.uid) LIMIT ?",
        [codebook, measure, uids, limit]).to_pylist()
    for r in rows:
        r["text"] = mask_pii(r["text"])
    return rows


def population_size(store: Store, codebook: str, measure: str) -> int:
    row = store.con.execute(
        "SELECT count(*) FROM codes WHERE codebook = ? AND measure = ? AND in_population",
        [codebook, measure]).fetchall()
    return int(row[0][0]) if row else 0
