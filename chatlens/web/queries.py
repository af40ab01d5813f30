"""Read queries behind the dashboard pages: overview, evidence (keyset-paged), context."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from chatlens.enrich import Lemmatizer
from chatlens.project import Project
from chatlens.search import highlight_spans
from chatlens.store import stages
from chatlens.store.frames import time_bucket
from chatlens.textsafe import mask_pii

PAGE_SIZE = 50
_GROUP = re.compile(r"^(chat|month|week|lang):(.+)$")


def dicts(project: Project, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = project.store.con.cursor().execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def overview(project: Project) -> dict[str, Any]:
    """Counts for the overview page (one pass of a few aggregate queries)."""
    summary = project.store.summary()
    bucket = time_bucket(project.store)
    trunc = f"date_trunc('{bucket}', ts)"
    over_time = dicts(project,
                       f"SELECT strftime({trunc}, '%Y-%m-%d') AS t, chat_key, count(*) AS n "
                       "FROM messages WHERE ts IS NOT NULL GROUP BY ALL ORDER BY t")
    langs = dicts(project, "SELECT coalesce(lang, 'und') AS lang, count(*) AS n FROM enrichment "
                   "WHERE fingerprint = ? GROUP BY ALL ORDER BY n DESC",
                   [project.enrich_settings().fingerprint()])
    quarantine = dicts(project, "SELECT reason, count(*) AS n FROM quarantine GROUP BY ALL "
                        "ORDER BY n DESC LIMIT 20")
    masker = project.masker()  # 1:1 chats pseudonymised, in titles, keys and source paths
    chats = [masker.row(c) for c in project.store.chats()[:100]]
    for c in chats:
        c["title"] = c["title"] or c["chat_key"]
    for r in over_time:
        masker.row(r)
    for r in quarantine:
        r["reason"] = masker.loc(r["reason"])
    return {"summary": summary, "sources": [masker.row(s) for s in project.store.sources()],
            "chats": chats, "bucket": bucket, "over_time": over_time,
            "languages": langs, "quarantine": quarantine}


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
        if self.since:
            conds.append("m.ts >= ?::TIMESTAMPTZ")
            params.append(f"{self.since} 00:00:00+00")
        if self.until:
            conds.append("m.ts < ?::TIMESTAMPTZ + INTERVAL 1 DAY")
            params.append(f"{self.until} 00:00:00+00")
        for dep, val in self.where:
            conds.append("c.uid IN (SELECT uid FROM codes WHERE codebook = ? AND measure = ? "
                         "AND value = ?)")
            params += [codebook, dep, val]
        return " AND ".join(conds), params


def shape_rows(rows: list[dict[str, Any]], tokenizer: str) -> list[dict[str, Any]]:
    """Mask PII, then split each text into (segment, highlighted) pairs on matched lemmas.

    A row's ``lemmas`` are its stored ones; its tokens are the same text tokenised again with
    the project's ``tokenizer`` (enrichment keeps lemmas only; the two align one to one)."""
    lem = Lemmatizer(tokenizer)
    for r in rows:
        raw = r.get("text") or ""
        text = mask_pii(raw)
        wanted = set(r.pop("matched", None) or [])
        lemmas = r.pop("lemmas", None) or []
        spans = highlight_spans(text, lem.tokens(raw), lemmas, wanted) if wanted and lemmas else []
        r["text"] = text
        r["segments"] = segments(text, spans)
        r["matched_terms"] = sorted(wanted)
    return rows


def blind(item: dict[str, Any]) -> dict[str, Any]:
    """The message without the model's codes or matched terms, so coders are not anchored by
    what the rules or the model said (labels must measure the text, not the classifier)."""
    item["segments"] = segments(item["text"], [])
    item["matched_terms"] = []
    item["codes"] = []
    return item


def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    pos = 0
    for a, b in spans:
        if a > pos:
            out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def unmasked(project: Project, q: EvidenceQuery) -> EvidenceQuery:
    """``q`` with a 1:1 chat's shown pseudonym (``group=chat:whatsapp:c…``) as its chat key."""
    if not (q.group or "").startswith("chat:"):
        return q
    key = project.masker().unmask_chat(q.group.removeprefix("chat:"))  # type: ignore[union-attr]
    return EvidenceQuery(q.measure, q.value, f"chat:{key}", q.since, q.until, q.where)


def evidence_page(project: Project, q: EvidenceQuery, after: str | None,
                  limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], str | None]:
    """One page of evidence in uid order after ``after`` (keyset paging: the cost of a page
    does not grow with how far one has paged); returns the rows and the next cursor."""
    cb = project.codebook()[0].name
    fp = project.enrich_settings().fingerprint()
    where, params = unmasked(project, q).sql(cb, fp)
    if after:
        where += " AND c.uid > ?"
        params.append(after)
    join = "JOIN messages m USING (uid) " if q.needs_messages() else ""
    page = dicts(project, f"SELECT c.uid, c.matched FROM codes c {join}WHERE {where} "
                 "ORDER BY c.uid LIMIT ?", [*params, limit + 1])
    more = len(page) > limit
    page = page[:limit]
    if not page:
        return [], None
    uids = [r["uid"] for r in page]
    matched = {r["uid"]: r["matched"] for r in page}
    found = stages.messages_by_uid(project.store, uids)
    rows = [found[u] for u in uids if u in found]  # uids are in order already
    lemmas = {r["uid"]: r["lemmas"] for r in dicts(
        project, "SELECT uid, lemmas FROM enrichment WHERE fingerprint = ? AND "
        "uid IN (SELECT unnest(?)) AND uid BETWEEN ? AND ?", [fp, uids, uids[0], uids[-1]])}
    masker = project.masker()
    for r in rows:
        r["matched"] = matched.get(r["uid"])
        r["lemmas"] = lemmas.get(r["uid"])
        masker.row(r)
    return shape_rows(rows, project.enrich_settings().tokenizer), (uids[-1] if more else None)


def evidence_count(project: Project, q: EvidenceQuery) -> int:
    where, params = unmasked(project, q).sql(project.codebook()[0].name,
                                             project.enrich_settings().fingerprint())
    row = project.store.con.cursor().execute(
        f"SELECT count(*) FROM codes c JOIN messages m USING (uid) WHERE {where}",
        params).fetchall()
    return int(row[0][0])


def message(project: Project, uid: str) -> dict[str, Any] | None:
    """A message with its codes under the current codebook."""
    fp = project.enrich_settings().fingerprint()
    cb = project.codebook()[0].name
    rows = dicts(project,
                  "SELECT m.uid, m.chat_key, ch.title AS chat_title, m.ts, m.author_key, m.text, "
                  "m.kind, e.lemmas, e.lang FROM messages m "
                  "LEFT JOIN chats ch ON ch.chat_key = m.chat_key "
                  "LEFT JOIN enrichment e ON e.uid = m.uid AND e.fingerprint = ? "
                  "WHERE m.uid = ?", [fp, uid])
    if not rows:
        return None
    codes = dicts(project, "SELECT measure, value, score, matched FROM codes WHERE uid = ? "
                   "AND codebook = ? AND in_population ORDER BY measure", [uid, cb])
    r = project.masker().row(rows[0])
    r["matched"] = sorted({t for c in codes for t in (c["matched"] or [])})
    r["codes"] = codes
    return shape_rows([r], project.enrich_settings().tokenizer)[0]


def context(project: Project, uid: str, k: int = 3) -> dict[str, Any] | None:
    """The ``k`` messages before and after ``uid`` in its chat (PII masked)."""
    found = stages.context(project.store, uid, k)
    if found is None:
        return None
    masker = project.masker()
    for r in found["before"] + found["after"]:
        r["text"] = mask_pii(r["text"])
        masker.row(r)
    return found


