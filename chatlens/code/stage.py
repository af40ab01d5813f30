"""The code stage: a pure function from enriched messages to one code row per message × measure.

Every message evaluated gets a row for every measure written: ``in_population`` says whether the
measure applies to it (language, chat, kind, dates, other measures' values); ``value`` is the
label (NULL outside the population), ``score`` the scorer's score for that value, ``scorer`` the
scorer that decided (``default`` when none fired), ``matched`` the terms that matched.
A message a scorer could not score (:data:`~chatlens.code.scorers.MISSING`: an LLM gave no valid
answer) keeps its row, with no value and the scorer ``missing`` (so it stays in the measure's
population, where the audit corrects whatever the model said), and so do measures whose
population filters on it; rows marked ``missing`` do not count as coded, so the next run
codes the message again.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.code.compiled import CompiledCodebook, CompiledMeasure
from chatlens.code.scorers import MISSING, Batch, Hit

CODE_SCHEMA = pa.schema([
    ("uid", pa.string()), ("codebook", pa.string()), ("measure", pa.string()),
    ("in_population", pa.bool_()), ("value", pa.string()), ("score", pa.float64()),
    ("scorer", pa.string()), ("matched", pa.list_(pa.string())),
])

#: Columns :func:`code_table` reads.
INPUT_COLUMNS = ("uid", "chat_key", "ts", "kind", "text", "lang", "norm", "lemmas")


def _combine(m: CompiledMeasure, hits: list[tuple[str, Hit | None]]) -> tuple[str, float, str,
                                                                               tuple[str, ...]]:
    fired = [(sid, h) for sid, h in hits if h is not None]
    if not fired:
        return m.default, 0.0, "default", ()
    matched = tuple(t for _, h in fired for t in h.matched)
    if m.combine == "all" and len(fired) < len(hits):
        return m.default, 0.0, "default", ()
    if m.combine == "max":
        sid, best = max(fired, key=lambda p: p[1].score)
        return best.label, best.score, sid, matched
    sid, first = fired[0]
    if m.type == "binary":  # any/first/all: the positive label, scored by the strongest hit
        return m.positive, max(h.score for _, h in fired), "+".join(s for s, _ in fired), matched
    return first.label, first.score, sid, matched


def _population(table: pa.Table, m: CompiledMeasure, values: dict[str, list[str | None]],
                ) -> list[bool]:
    """Which rows the measure applies to (vectorised, except conditions on other measures)."""
    mask = pc.is_in(table.column("kind"), value_set=pa.array(sorted(m.kinds)))
    if m.languages is not None:
        mask = pc.and_(mask, pc.is_in(table.column("lang"), value_set=pa.array(sorted(
            m.languages))))
    if m.chats is not None:
        mask = pc.and_(mask, pc.is_in(table.column("chat_key"), value_set=pa.array(sorted(
            m.chats))))
    ts = table.column("ts").cast(pa.int64())
    if m.since_us is not None:
        mask = pc.and_(mask, pc.greater_equal(ts, m.since_us))
    if m.until_us is not None:
        mask = pc.and_(mask, pc.less(ts, m.until_us))
    inside: list[bool] = [bool(x) for x in pc.fill_null(mask, False).to_pylist()]
    for dep, val in m.where:
        dep_values = values[dep]
        inside = [ok and dep_values[i] == val for i, ok in enumerate(inside)]
    return inside


def code_table(table: pa.Table, compiled: CompiledCodebook,
               write: frozenset[str] | None = None) -> pa.Table:
    """Code ``table`` (columns :data:`INPUT_COLUMNS`); rows only for measures in ``write``."""
    n = table.num_rows
    if n == 0:
        return CODE_SCHEMA.empty_table()
    batch = Batch(text=[t or "" for t in table.column("text").to_pylist()],
                  norm=[t or "" for t in table.column("norm").to_pylist()],
                  lang=table.column("lang").to_pylist(),
                  lemmas=table.column("lemmas"), uids=table.column("uid"))
    uids = table.column("uid")
    values: dict[str, list[str | None]] = {}
    missing: dict[str, set[int]] = {}
    parts: list[pa.Table] = []
    for m in compiled.measures:
        inside = _population(table, m, values)
        # rows with no valid answer (an LLM scorer, or a measure it filters on): no code
        dep_lost = {i for dep, _ in m.where for i in missing.get(dep, ())}
        lost: set[int] = set()
        results: list[list[Hit | None]] = []
        model_p: list[float] | None = None  # binary: P(positive) from trained models
        for s in m.scorers:
            proba = getattr(s, "positive_proba", None)
            subset = getattr(s, "needs_population", False)  # only the population is scored
            if proba is not None and m.type == "binary":
                p = proba(batch, inside) if subset else proba(batch)
                if subset:
                    lost.update(i for i, x in enumerate(p) if x != x)  # NaN: no answer
                    p = [0.0 if x != x else x for x in p]
                model_p = p if model_p is None else [max(a, b) for a, b in zip(model_p, p,
                                                                                strict=True)]
                t = s.threshold  # type: ignore[attr-defined]
                results.append([Hit(m.positive, x, ()) if x >= t else None for x in p])
            else:
                hits = (s.score(batch, inside) if subset  # type: ignore[call-arg]
                        else s.score(batch))
                if subset:
                    lost.update(i for i, h in enumerate(hits) if h is MISSING)
                    hits = [None if h is MISSING else h for h in hits]
                results.append(hits)
        ids = [s.id for s in m.scorers]
        # rows where nothing fired get the default; only the others need combining
        value: list[str | None] = [m.default if ok and m.scorers else None for ok in inside]
        scorer: list[str | None] = [("default" if m.scorers else "pending") if ok else None
                                    for ok in inside]
        score: list[float | None] = (
            [0.0 if ok and m.scorers else None for ok in inside] if model_p is None
            else [max(0.0, p) if ok else None for ok, p in zip(inside, model_p, strict=True)])
        matched: list[list[str] | None] = [None] * n
        fired = sorted({i for r in results for i, h in enumerate(r) if h is not None})
        for i in fired:
            if inside[i]:
                v, sc, who, terms = _combine(m, [(ids[k], r[i]) for k, r in enumerate(results)])
                if model_p is not None:  # keep P(positive) below the threshold too (for PPI)
                    sc = max(sc, model_p[i])
                value[i], score[i], scorer[i] = v, sc, who
                matched[i] = list(terms) or None
        lost = {i for i in lost if inside[i]} | dep_lost
        for i in lost:
            value[i], scorer[i] = None, "missing"
        values[m.id] = value
        missing[m.id] = lost
        if write is None or m.id in write:
            part = pa.table({
                "uid": uids,
                "codebook": pa.array([compiled.name] * n, pa.string()),
                "measure": pa.array([m.id] * n, pa.string()),
                "in_population": pa.array(inside, pa.bool_()),
                "value": pa.array(value, pa.string()),
                "score": pa.array(score, pa.float64()),
                "scorer": pa.array(scorer, pa.string()),
                "matched": pa.array(matched, pa.list_(pa.string())),
            }, schema=CODE_SCHEMA)
            parts.append(part)
    return pa.concat_tables(parts) if parts else CODE_SCHEMA.empty_table()
