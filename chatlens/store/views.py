"""Read queries behind the dashboard's and the report's pages: overview counts, evidence
(keyset-paged), one message with its codes. Rows come back raw; masking and highlighting are
:mod:`chatlens.present.messages`'."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chatlens.store import stages
from chatlens.store.core import Store
from chatlens.store.frames import Population, population_conditions, time_bucket

_GROUP = re.compile(r"^(chat|month|week|lang):(.+)$")


def dicts(store: Store, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = store.con.cursor().execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def overview_counts(store: Store, fingerprint: str) -> dict[str, Any]:
    """Counts for the overview page (one pass of a few aggregate queries)."""
    bucket = time_bucket(store)
    trunc = f"date_trunc('{bucket}', ts)"
    return {
        "summary": store.summary(), "bucket": bucket,
        "over_time": dicts(store, f"SELECT strftime({trunc}, '%Y-%m-%d') AS t, chat_key, "
                           "count(*) AS n FROM messages WHERE ts IS NOT NULL GROUP BY ALL "
                           "ORDER BY t"),
        "languages": dicts(store, "SELECT coalesce(lang, 'und') AS lang, count(*) AS n FROM "
                           "enrichment WHERE fingerprint = ? GROUP BY ALL ORDER BY n DESC",
                           [fingerprint]),
        "quarantine": dicts(store, "SELECT reason, count(*) AS n FROM quarantine GROUP BY ALL "
                            "ORDER BY n DESC LIMIT 20"),
        "sources": store.sources(), "chats": store.chats()[:100]}


@dataclass(slots=True)
class EvidenceQuery:
    """Which messages: a measure's value, optionally one group, dates and other codes."""

    measure: str
    value: str
    group: str | None = None
    since: str | None = None
    until: str | None = None
    where: list[tuple[str, str]] = field(default_factory=list)

    def needs_messages(self) -> bool:
        return bool(self.since or self.until or (self.group and not
                                                 self.group.startswith("lang:")))

    def sql(self, codebook: str, fingerprint: str) -> tuple[str, list[Any]]:
        conds = ["c.codebook = ?", "c.measure = ?", "c.in_population", "c.value = ?"]
        params: list[Any] = [codebook, self.measure, self.value]
        m = _GROUP.match(self.group or "")
        if m:
            kind, g = m.groups()
            if kind == "chat":
                conds.append("m.chat_key = ?")
            elif kind == "month":
                conds.append("strftime(m.ts, '%Y-%m') = ?")
            elif kind == "week":
                conds.append("strftime(date_trunc('week', m.ts), '%Y-%m-%d') = ?")
            else:
                conds.append("c.uid IN (SELECT uid FROM enrichment WHERE fingerprint = ? "
                             "AND coalesce(lang, 'und') = ?)")
                params.append(fingerprint)
            params.append(g)
        more, more_params = population_conditions(Population(
            since=date.fromisoformat(self.since) if self.since else None,
            until=date.fromisoformat(self.until) if self.until else None,
            where=list(self.where)), codebook)
        return " AND ".join(conds + more), params + more_params


def evidence_page(store: Store, codebook: str, fingerprint: str, q: EvidenceQuery,
                  after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of evidence rows (with ``matched`` and ``lemmas``) in uid order after
    ``after`` (keyset paging: a page costs the same however far one has paged), and the next
    cursor."""
    where, params = q.sql(codebook, fingerprint)
    if after:
        where += " AND c.uid > ?"
        params.append(after)
    join = "JOIN messages m USING (uid) " if q.needs_messages() else ""
    page = dicts(store, f"SELECT c.uid, c.matched FROM codes c {join}WHERE {where} "
                 "ORDER BY c.uid LIMIT ?", [*params, limit + 1])
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return [], None
    uids = [r["uid"] for r in page]
    matched = {r["uid"]: r["matched"] for r in page}
    found = stages.messages_by_uid(store, uids)
    rows = [found[u] for u in uids if u in found]  # uids are in order already
    lemmas = {r["uid"]: r["lemmas"] for r in dicts(
        store, "SELECT uid, lemmas FROM enrichment WHERE fingerprint = ? AND "
        "uid IN (SELECT unnest(?)) AND uid BETWEEN ? AND ?", [fingerprint, uids, uids[0],
                                                             uids[-1]])}
    for r in rows:
        r["matched"] = matched.get(r["uid"])
        r["lemmas"] = lemmas.get(r["uid"])
    return rows, (uids[-1] if more else None)


def evidence_count(store: Store, codebook: str, fingerprint: str, q: EvidenceQuery) -> int:
    where, params = q.sql(codebook, fingerprint)
    row = store.con.cursor().execute(
        f"SELECT count(*) FROM codes c JOIN messages m USING (uid) WHERE {where}",
        params).fetchall()
    return int(row[0][0])


def evidence_sample(store: Store, codebook: str, fingerprint: str, q: EvidenceQuery,
                    n: int) -> list[dict[str, Any]]:
    """``n`` evidence rows in a stable pseudo-random order (hash of uid), for the report."""
    where, params = q.sql(codebook, fingerprint)
    return dicts(store, "SELECT m.uid, m.chat_key, ch.title AS chat_title, m.ts, m.author_key, "
                 "m.text, m.kind, c.matched, e.lemmas FROM codes c JOIN messages m USING (uid) "
                 "LEFT JOIN chats ch ON ch.chat_key = m.chat_key LEFT JOIN enrichment e "
                 f"ON e.uid = m.uid AND e.fingerprint = ? WHERE {where} "
                 "ORDER BY hash(m.uid), m.uid LIMIT ?", [fingerprint, *params, n])


def message_with_codes(store: Store, codebook: str, fingerprint: str,
                       uid: str) -> dict[str, Any] | None:
    """A message with its enrichment and its codes under ``codebook`` (``codes``)."""
    where, params = store.uids_where([uid], "m")
    rows = dicts(store,
                 "SELECT m.uid, m.chat_key, ch.title AS chat_title, m.ts, m.author_key, m.text, "
                 "m.kind, e.lemmas, e.lang FROM messages m "
                 "LEFT JOIN chats ch ON ch.chat_key = m.chat_key "
                 "LEFT JOIN enrichment e ON e.uid = m.uid AND e.fingerprint = ? "
                 f"WHERE {where}", [fingerprint, *params])
    if not rows:
        return None
    r = rows[0]
    r["codes"] = dicts(store, "SELECT measure, value, score, matched FROM codes WHERE uid = ? "
                       "AND codebook = ? AND in_population ORDER BY measure", [uid, codebook])
    return r


def lemmas_of(store: Store, uid: str) -> list[str] | None:
    """A message's stored lemmas (any enrichment), for related topics."""
    rows = store.con.cursor().execute(
        "SELECT lemmas FROM enrichment WHERE uid = ? LIMIT 1", [uid]).fetchall()
    return list(rows[0][0]) if rows and rows[0][0] is not None else None
