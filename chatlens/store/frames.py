"""Estimation frames: a measure's coded population, filtered, with what estimators need."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class Population:
    """A filter on a measure's population (all optional), the one used by estimates, evidence,
    claims, the dashboard and the report: languages (enrichment), chats, UTC days ``since`` to
    ``until`` inclusive, and ``where`` on other measures' coded values."""

    languages: list[str] | None = None
    chats: list[str] | None = None
    since: date | None = None
    until: date | None = None
    where: list[tuple[str, str]] = field(default_factory=list)

    @property
    def dated(self) -> bool:
        """True when the filter is on dates (messages without a date then fall outside it)."""
        return self.since is not None or self.until is not None

    def as_dict(self) -> dict[str, Any]:
        return {"languages": self.languages, "chats": self.chats,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "where": [f"{m}={v}" for m, v in self.where]}


def _filtered(codebook: str, measure: str, fingerprint: str, pop: Population, cols: list[str],
              need_messages: bool, need_enrichment: bool) -> tuple[str, list[Any]]:
    joins = []
    params: list[Any] = []
    if need_messages or pop.chats or pop.dated:
        joins.append("JOIN messages m USING (uid)")
    if pop.languages or need_enrichment:
        joins.append("LEFT JOIN enrichment e ON e.uid = c.uid AND e.fingerprint = ?")
        params.append(fingerprint)
    sql = [f"SELECT {', '.join(cols)} FROM codes c {' '.join(joins)} "
           "WHERE c.codebook = ? AND c.measure = ? AND c.in_population"]
    params += [codebook, measure]
    if pop.languages:
        sql.append("AND e.lang IN (SELECT unnest(?))")
        params.append(pop.languages)
    conds, more = population_conditions(pop, codebook)
    sql += [f"AND {c}" for c in conds]
    return " ".join(sql), params + more


def population_conditions(pop: Population, codebook: str) -> tuple[list[str], list[Any]]:
    """SQL conditions (on codes ``c`` joined with messages ``m``) for the filter's chats, UTC
    days and ``where`` codes; languages need the enrichment join and are the caller's."""
    conds: list[str] = []
    params: list[Any] = []
    if pop.chats:
        conds.append("m.chat_key IN (SELECT unnest(?))")
        params.append(pop.chats)
    if pop.since:
        conds.append("m.ts >= ?::TIMESTAMPTZ")
        params.append(f"{pop.since.isoformat()} 00:00:00+00")
    if pop.until:
        conds.append("m.ts < ?::TIMESTAMPTZ")
        params.append(f"{(pop.until + timedelta(days=1)).isoformat()} 00:00:00+00")
    for dep, val in pop.where:
        conds.append("c.uid IN (SELECT uid FROM codes WHERE codebook = ? AND measure = ? "
                     "AND value = ?)")
        params += [codebook, dep, val]
    return conds, params


def measure_frame(store: Store, codebook: str, measure: str, fingerprint: str,
                  pop: Population | None = None, by: str | None = None,
                  strata: Collection[str] = ()) -> pa.Table:
    """uid, coded value, score, group (and ``chat_key``/``month`` for each of ``strata``) of
    every message in the measure's population that passes the filter. Rows come in no set
    order; undated messages have a null month/week group.

    Messages and enrichment are joined only when a filter, the grouping or a stratum needs them:
    on a large project the join costs far more than reading the codes.
    """
    group = GROUP_EXPR[by] if by else "NULL"
    cols = [f"c.uid, c.value, c.score, {group} AS grp",
            *(f"{GROUP_EXPR[s]} AS {STRATUM_COLUMN[s]}" for s in sorted(strata))]
    sql, params = _filtered(codebook, measure, fingerprint, pop or Population(), cols,
                            bool(strata) or "m." in group, by == "lang")
    return store.query_arrow(sql, params)


def undated_count(store: Store, codebook: str, measure: str, fingerprint: str,
                  pop: Population | None = None) -> int:
    """Messages of the population (the filter's dates aside) that have no date: they are in
    no month or week, and outside any date range."""
    from dataclasses import replace

    undated = replace(pop or Population(), since=None, until=None)
    sql, params = _filtered(codebook, measure, fingerprint, undated, ["count(*)"], True, False)
    row = store.con.cursor().execute(sql + " AND m.ts IS NULL", params).fetchall()
    return int(row[0][0]) if row else 0


def scores_for(store: Store, codebook: str, measure: str, uids: list[str]) -> pa.Table:
    """uid, value, score of the measure's codes for the given messages."""
    if not uids:
        return pa.table({"uid": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                         "score": pa.array([], pa.float64())})
    return store.query_arrow(
        "SELECT uid, value, score FROM codes WHERE codebook = ? AND measure = ? "
        "AND in_population AND uid IN (SELECT unnest(?)) ORDER BY uid", [codebook, measure, uids])


def evidence(store: Store, codebook: str, measure: str, value: str, fingerprint: str,
             pop: Population | None, limit: int, reveal: bool = False) -> list[dict[str, Any]]:
    """Messages of the population (the same filter as the estimate's) coded ``measure=value``,
    in a stable pseudo-random order (hash of uid); phone numbers and e-mails masked unless
    ``reveal``."""
    from chatlens.textsafe import mask_pii

    frame = measure_frame(store, codebook, measure, fingerprint, pop)
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


def uncoded_count(store: Store, codebook: str) -> int:
    """Messages of the project with no code at all under ``codebook`` (ingested since it was
    last applied)."""
    row = store.con.cursor().execute(
        "SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM codes c "
        "WHERE c.uid = m.uid AND c.codebook = ?)", [codebook]).fetchall()
    return int(row[0][0]) if row else 0
