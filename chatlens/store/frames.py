"""Estimation frames: a measure's coded population, filtered, with what estimators need."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.store.core import Store

GROUP_EXPR = {
    "chat": "m.chat_key",
    "month": "strftime(m.ts, '%Y-%m')",
    "week": "strftime(date_trunc('week', m.ts), '%Y-%m-%d')",
    "lang": "coalesce(e.lang, 'und')",
}
#: The frame column that holds each kind of audit stratum (computed as its ``GROUP_EXPR``).
STRATUM_COLUMN = {"chat": "chat_key", "month": "month"}


def time_bucket(store: Store) -> str:
    """``month`` for corpora spanning more than about three months, else ``week``."""
    row = store.con.cursor().execute(
        "SELECT date_diff('day', min(ts), max(ts)) FROM messages").fetchall()
    days = row[0][0] if row and row[0][0] is not None else 0
    return "month" if days > 95 else "week"


def measure_frame(store: Store, codebook: str, measure: str, fingerprint: str,
                  languages: list[str] | None = None, chats: list[str] | None = None,
                  since: date | None = None, until: date | None = None,
                  where: list[tuple[str, str]] | None = None, by: str | None = None,
                  strata: Collection[str] = ()) -> pa.Table:
    """uid, coded value, score, group (and ``chat_key``/``month`` for each of ``strata``) of
    every message in the measure's population that passes the filters (dates are UTC days,
    ``until`` inclusive; ``where`` on other measures' coded values). Rows come in no set order.

    Messages and enrichment are joined only when a filter, the grouping or a stratum needs them:
    on a large project the join costs far more than reading the codes.
    """
    group = GROUP_EXPR[by] if by else "NULL"
    cols = [f"c.uid, c.value, c.score, {group} AS grp",
            *(f"{GROUP_EXPR[s]} AS {STRATUM_COLUMN[s]}" for s in sorted(strata))]
    joins = []
    params: list[Any] = []
    if chats or since or until or strata or "m." in group:
        joins.append("JOIN messages m USING (uid)")
    if languages or by == "lang":
        joins.append("LEFT JOIN enrichment e ON e.uid = c.uid AND e.fingerprint = ?")
        params.append(fingerprint)
    sql = [f"SELECT {', '.join(cols)} FROM codes c {' '.join(joins)} "
           "WHERE c.codebook = ? AND c.measure = ? AND c.in_population"]
    params += [codebook, measure]
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
    return store.query_arrow(" ".join(sql), params)


def scores_for(store: Store, codebook: str, measure: str, uids: list[str]) -> pa.Table:
    """uid, value, score of the measure's codes for the given messages."""
    if not uids:
        return pa.table({"uid": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                         "score": pa.array([], pa.float64())})
    return store.query_arrow(
        "SELECT uid, value, score FROM codes WHERE codebook = ? AND measure = ? "
        "AND in_population AND uid IN (SELECT unnest(?)) ORDER BY uid", [codebook, measure, uids])


def evidence(store: Store, codebook: str, measure: str, value: str, fingerprint: str,
             since: date | None, until: date | None, where: list[tuple[str, str]],
             limit: int, reveal: bool = False) -> list[dict[str, Any]]:
    """Messages coded ``measure=value``, in a stable pseudo-random order (hash of uid); phone
    numbers and e-mails masked unless ``reveal``."""
    from chatlens.textsafe import mask_pii

    frame = measure_frame(store, codebook, measure, fingerprint, since=since, until=until,
                          where=where)
    uids = frame.filter(pc.equal(frame["value"], value))["uid"].to_pylist()
    if not uids:
        return []
    rows: list[dict[str, Any]] = store.query_arrow(
        "SELECT m.uid, m.chat_key, ch.title AS chat_title, m.ts, m.author_key, m.text, m.kind, "
        "c.matched FROM messages m JOIN codes c ON c.uid = m.uid AND c.codebook = ? "
        "AND c.measure = ? LEFT JOIN chats ch USING (chat_key) "
        "WHERE m.uid IN (SELECT unnest(?)) ORDER BY hash(m.uid) LIMIT ?",
        [codebook, measure, uids, limit]).to_pylist()
    for r in rows if not reveal else []:
        r["text"] = mask_pii(r["text"])
    return rows


def population_size(store: Store, codebook: str, measure: str) -> int:
    row = store.con.execute(
        "SELECT count(*) FROM codes WHERE codebook = ? AND measure = ? AND in_population",
        [codebook, measure]).fetchall()
    return int(row[0][0]) if row else 0
