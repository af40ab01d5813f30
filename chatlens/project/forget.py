"""Erase a person, a chat or a source from a project, verifiably.

Rows deleted from DuckDB stay readable in the database file (even after CHECKPOINT and
VACUUM), so :func:`forget` deletes the messages concerned with everything derived from them
(originals, codes, enrichment, search postings and vocabulary, identities and chats nothing else
refers to, labels and sample items) and then copies the database into a fresh file that replaces
the old one; the label database is vacuumed and its write-ahead log emptied. The erasure is
recorded in the runs log with counts and a keyed hash of the criterion, never the content.

Forgetting a source is also how a source is ingested again, e.g. with a corrected ``--encoding``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from chatlens import __version__
from chatlens.errors import UsageError
from chatlens.project import Project, new_run_id
from chatlens.store import privacy as db
from chatlens.store.snapshot import STAMP_NAME
from chatlens.textsafe import chat_pseudonym

#: Names shorter than this are not replaced in paths and logs (too likely to be other words).
MIN_SCRUB = 3
#: Files a project may hold that an erasure does not rewrite (outputs the user asked for).
_OUTPUT_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json", ".html")
#: The store's own files with those suffixes (they hold no messages).
_STORE_FILES = frozenset({STAMP_NAME})


@dataclass(slots=True)
class ForgetReport:
    run_id: str
    criterion: str  # author, chat or source
    criterion_hash: str  # keyed hash of what was named: the log never holds the name
    matched: int  # authors, chats or sources the criterion named
    messages: int
    deleted: dict[str, int] = field(default_factory=dict)
    other_files: list[str] = field(default_factory=list)  # outputs that may still hold text
    completed: list[str] = field(default_factory=list)  # interrupted forget runs this finished

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget(project: Project, author: str | None = None, chat: str | None = None,
           source: str | None = None) -> ForgetReport:
    """Erase the messages of one author (pseudonym, raw id or display name), chat (key, shown
    1:1 pseudonym or exact title) or source (id or path); see the module docstring."""
    given = [(k, v) for k, v in (("author", author), ("chat", chat), ("source", source)) if v]
    if len(given) != 1:
        raise UsageError("Name exactly one of --author KEY, --chat CHAT or --source SOURCE.")
    criterion, value = given[0]
    store = project.store
    if criterion == "author":
        column, keys = "author_key", db.resolve_author(store, value)
    elif criterion == "chat":
        masker = project.masker()
        shown = {v[0]: k for k, v in masker.personal.items()}
        column, keys = "chat_key", db.resolve_chat(store, value, shown)
    else:
        column, keys = "source_id", db.resolve_source(store, value)
    interrupted = db.interrupted_forgets(store)
    if not keys and interrupted:
        return _finish_interrupted(project, criterion, interrupted)
    if not keys:
        raise UsageError(f"No {criterion} {value!r} in this project; `chatlens status --json` "
                         "lists chats and sources, the dashboard shows author pseudonyms.")
    digest = hmac.new(store.secret(), f"forget\x1f{criterion}\x1f{value}".encode(),
                      hashlib.sha256).hexdigest()[:16]
    run_id = new_run_id()
    params = {"criterion": criterion, "criterion_hash": digest}
    store.start_run(run_id, "forget", __version__, params)
    secret = store.secret()
    pseudonym = chat_pseudonym(secret, keys[0]) if column == "chat_key" else keys[0]
    names = [n for n in db.names_of(store, column, keys) if len(n) >= MIN_SCRUB]
    # the runs log holds JSON, where a non-ASCII name is written with \u escapes
    scrub = [(form, pseudonym) for n in names for form in dict.fromkeys(
        (n, json.dumps(n)[1:-1]))]
    # labels first: a run killed after it finds the messages again and finishes; erased
    # messages first would leave their labels with nothing left to name them by
    counts = project.labels().forget(db.uids_of(store, column, keys))
    uids, erased = db.erase(store, column, keys, scrub)
    counts = {**erased, **counts}
    project.store = db.rewrite(store)
    other = sorted(str(p.relative_to(project.root)) for p in project.root.rglob("*")
                   if p.is_file() and p.suffix in _OUTPUT_SUFFIXES
                   and p.name not in _STORE_FILES)
    report = ForgetReport(run_id, criterion, digest, len(keys), len(uids), counts, other)
    project.store.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                                  **report.as_dict()})
    _close_interrupted(project, interrupted, run_id)
    return report


def _close_interrupted(project: Project, run_ids: list[str], by: str) -> None:
    for run_id in run_ids:
        project.store.finish_run(run_id, "interrupted", {"version": __version__,
                                                         "completed_by": by})


def _finish_interrupted(project: Project, criterion: str, run_ids: list[str]) -> ForgetReport:
    """The criterion names nothing any more because an interrupted run erased it: finish that
    run's work (rewrite the files) instead of answering that there is nothing to forget."""
    run_id = new_run_id()
    params = {"criterion": criterion, "completes": run_ids}
    project.store.start_run(run_id, "forget", __version__, params)
    project.store = db.rewrite(project.store)
    report = ForgetReport(run_id, criterion, "", 0, 0, {}, [], completed=run_ids)
    project.store.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                                  **report.as_dict()})
    _close_interrupted(project, run_ids, run_id)
    return report
