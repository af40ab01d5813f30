"""Messages as the dashboard and the report show them: PII masked, 1:1 chats pseudonymised,
matched terms highlighted; the queries are :mod:`chatlens.store.views`'."""

from __future__ import annotations

from typing import Any

from chatlens.enrich import Lemmatizer
from chatlens.project import Project
from chatlens.project.search import highlight_spans
from chatlens.store import stages, views
from chatlens.store.views import EvidenceQuery
from chatlens.textsafe import mask_pii

PAGE_SIZE = 50


def overview(project: Project) -> dict[str, Any]:
    """Counts for the overview page, with chats, sources and reasons masked."""
    out = views.overview_counts(project.store, project.enrich_settings().fingerprint())
    masker = project.masker()  # 1:1 chats pseudonymised, in titles, keys and source paths
    out["chats"] = [masker.row(c) for c in out["chats"]]
    for c in out["chats"]:
        c["title"] = c["title"] or c["chat_key"]
    for r in out["over_time"]:
        masker.row(r)
    for r in out["quarantine"]:
        r["reason"] = masker.loc(r["reason"])
    out["sources"] = [masker.row(s) for s in out["sources"]]
    return out


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
    """One page of evidence in uid order after ``after``; returns the rows and the next
    cursor."""
    rows, nxt = views.evidence_page(project.store, project.codebook()[0].name,
                                    project.enrich_settings().fingerprint(),
                                    unmasked(project, q), after, limit)
    masker = project.masker()
    return shape_rows([masker.row(r) for r in rows], project.enrich_settings().tokenizer), nxt


def evidence_count(project: Project, q: EvidenceQuery) -> int:
    return views.evidence_count(project.store, project.codebook()[0].name,
                                project.enrich_settings().fingerprint(), unmasked(project, q))


def evidence_sample(project: Project, q: EvidenceQuery, n: int) -> list[dict[str, Any]]:
    """``n`` messages of ``q`` in a reproducible random order, masked (the report's)."""
    rows = views.evidence_sample(project.store, project.codebook()[0].name,
                                 project.enrich_settings().fingerprint(), q, n)
    masker = project.masker()  # the report never reveals
    return shape_rows([masker.row(r) for r in rows], project.enrich_settings().tokenizer)


def message(project: Project, uid: str) -> dict[str, Any] | None:
    """A message with its codes under the current codebook."""
    r = views.message_with_codes(project.store, project.codebook()[0].name,
                                 project.enrich_settings().fingerprint(), uid)
    if r is None:
        return None
    r = project.masker().row(r)
    r["matched"] = sorted({t for c in r["codes"] for t in (c["matched"] or [])})
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
