"""The code stage: a pure function from enriched messages to one code row per message × measure.

Every message evaluated gets a row for every measure written: ``in_population`` says whether the
measure applies to it (language, chat, kind, dates, other measures' values); ``value`` is the
label (NULL outside the population), ``score`` the scorer's score for that value, ``scorer`` the
scorer that decided (``default`` when none fired), ``matched`` the terms that matched.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from chatlens.code.compiled import CompiledCodebook, CompiledMeasure
from chatlens.code.scorers import Batch, Hit

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


def code_table(table: pa.Table, compiled: CompiledCodebook,
               write: frozenset[str] | None = None) -> pa.Table:
    """Code ``table`` (columns :data:`INPUT_COLUMNS`); rows only for measures in ``write``."""
    n = table.num_rows
    cols: dict[str, list[Any]] = {name: [] for name in CODE_SCHEMA.names}
    if n == 0:
        return pa.table(cols, schema=CODE_SCHEMA)
    uids = table.column("uid").to_pylist()
    chats = table.column("chat_key").to_pylist()
    ts_col = table.column("ts").cast(pa.int64()).to_pylist()
    kinds = table.column("kind").to_pylist()
    langs = table.column("lang").to_pylist()
    batch = Batch(text=[t or "" for t in table.column("text").to_pylist()],
                  norm=[t or "" for t in table.column("norm").to_pylist()],
                  lang=langs, lemmas=[x or [] for x in table.column("lemmas").to_pylist()])
    values: dict[str, list[str | None]] = {}
    for m in compiled.measures:
        inside = [True] * n
        for i in range(n):
            if (kinds[i] not in m.kinds
                    or (m.languages is not None and langs[i] not in m.languages)
                    or (m.chats is not None and chats[i] not in m.chats)
                    or (m.since_us is not None and (ts_col[i] is None or ts_col[i] < m.since_us))
                    or (m.until_us is not None and (ts_col[i] is None
                                                    or ts_col[i] >= m.until_us))
                    or any(values[dep][i] != val for dep, val in m.where)):
                inside[i] = False
        results = [s.score(batch) for s in m.scorers]
        measure_values: list[str | None] = []
        for i in range(n):
            if not inside[i]:
                measure_values.append(None)
                if write is None or m.id in write:
                    for name, v in (("value", None), ("score", None), ("scorer", None),
                                    ("matched", None)):
                        cols[name].append(v)
                    cols["in_population"].append(False)
            else:
                value, score, scorer, matched = _combine(
                    m, [(s.id, r[i]) for s, r in zip(m.scorers, results, strict=True)])
                measure_values.append(value)
                if write is None or m.id in write:
                    cols["value"].append(value)
                    cols["score"].append(score)
                    cols["scorer"].append(scorer)
                    cols["matched"].append(list(matched) or None)
                    cols["in_population"].append(True)
            if write is None or m.id in write:
                cols["uid"].append(uids[i])
                cols["codebook"].append(compiled.name)
                cols["measure"].append(m.id)
        values[m.id] = measure_values
    return pa.table(cols, schema=CODE_SCHEMA)
