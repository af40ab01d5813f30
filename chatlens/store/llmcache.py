"""Answers of language-model scorers, in ``llm_cache.sqlite`` beside the DuckDB store.

One row per (message uid, prompt hash, model): re-coding with the same prompt and model costs
no request, and an interrupted run resumes where it stopped, because every answer is committed
as it arrives. It is a separate SQLite file (like the labels) so answers can be committed while
``chatlens code`` holds DuckDB's writer in a bulk load, and so it can be deleted on its own.

``status`` is ``ok`` (a valid label) or ``invalid`` (the model answered, but never with one of
the labels, after every retry): an invalid answer is not requested again for the same prompt
and model, and the message gets no code (it is never guessed). Requests that failed for
transient reasons (timeouts, server errors, rate limits) are not stored, so a later run tries
them again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

LLM_CACHE_DB = "llm_cache.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS llm_answers (
    uid TEXT NOT NULL, prompt_hash TEXT NOT NULL, model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    label TEXT, probs TEXT, raw TEXT, error TEXT, attempts INTEGER NOT NULL,
    prompt_tokens INTEGER, completion_tokens INTEGER, created TEXT NOT NULL,
    PRIMARY KEY (uid, prompt_hash, model));
"""


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer: ``label`` (None when invalid) and, where the server gave
    log-probabilities, the probability of each label (``probs``)."""

    status: str
    label: str | None
    probs: dict[str, float] | None = None
    raw: str | None = None
    error: str | None = None
    attempts: int = 1
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class LlmCache:
    """The answer cache of a project (``root / llm_cache.sqlite``); use from one thread."""

    def __init__(self, root: Path | str) -> None:
        self.path = Path(root) / LLM_CACHE_DB
        self.con = sqlite3.connect(self.path, timeout=30)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.executescript(_DDL)

    def close(self) -> None:
        self.con.close()

    def get(self, uids: Iterable[str], prompt_hash: str, model: str) -> dict[str, CachedAnswer]:
        """Stored answers of these messages for the prompt and model."""
        out: dict[str, CachedAnswer] = {}
        ids = list(uids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = self.con.execute(
                "SELECT uid, status, label, probs, raw, error, attempts, prompt_tokens, "
                "completion_tokens FROM llm_answers WHERE prompt_hash = ? AND model = ? AND uid IN"
                f" ({','.join('?' * len(chunk))})", [prompt_hash, model, *chunk]).fetchall()
            for uid, status, label, probs, raw, error, attempts, pt, ct in rows:
                out[uid] = CachedAnswer(status, label, json.loads(probs) if probs else None,
                                        raw, error, attempts, pt, ct)
        return out

    def put(self, uid: str, prompt_hash: str, model: str, answer: CachedAnswer) -> None:
        """Store one answer (not committed until :meth:`commit`)."""
        self.con.execute(
            "INSERT OR REPLACE INTO llm_answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [uid, prompt_hash, model, answer.status, answer.label,
             json.dumps(answer.probs) if answer.probs is not None else None, answer.raw,
             answer.error, answer.attempts, answer.prompt_tokens, answer.completion_tokens,
             datetime.now(UTC).isoformat()])

    def commit(self) -> None:
        self.con.commit()

    def summary(self) -> list[dict[str, object]]:
        """Per prompt hash and model: answers by status (for ``chatlens status`` and reports)."""
        cur = self.con.execute(
            "SELECT prompt_hash, model, status, count(*) FROM llm_answers "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
        return [{"prompt_hash": h, "model": m, "status": s, "n": n} for h, m, s, n in cur]
