"""Enrich and code a project incrementally, batch by batch, optionally in worker processes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chatlens.code import code_table, compile_codebook
from chatlens.code.compiled import CompiledCodebook, model_fingerprints
from chatlens.code.llm import LlmRuntime, LlmStats
from chatlens.code.stage import INPUT_COLUMNS
from chatlens.codebook import Codebook, LlmScorer
from chatlens.engines.local import appends, map_batches
from chatlens.enrich import EnrichSettings, enrich_table
from chatlens.errors import UsageError
from chatlens.store import Store
from chatlens.store import stages as db

BATCH_ROWS = 20_000  # most messages per batch: per-batch work (distinct chunks, commits) shrinks
MIN_BATCH_ROWS = 1_000  # fewest, unless BATCH_ROWS is lower
PRELOAD = "chatlens.project.preload"  # what the stage pool's workers start with
StageProgress = Callable[[str, int, int], None]  # (stage, done, total)


def batch_rows(todo: int, workers: int) -> int:
    """Messages per batch: up to :data:`BATCH_ROWS`, but small enough that every worker gets
    a few batches of a small project."""
    return min(BATCH_ROWS, max(MIN_BATCH_ROWS, -(-todo // (4 * max(workers, 1)))))


@dataclass(slots=True)
class EnrichReport:
    fingerprint: str
    todo: int
    enriched: int = 0
    dropped_stale: int = 0
    languages: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class CodeReport:
    codebook: str
    version: str
    hash: str
    recoded_measures: list[str]
    enriched: int = 0  # of ``messages``, those enriched in the same pass
    messages: int = 0
    rows: int = 0
    summary: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    llm: list[dict[str, Any]] = field(default_factory=list)  # per LLM scorer: calls, tokens

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Engine:
    """Where the stages run: ``local`` (this process, or ``workers`` processes) or ``spark``
    (``master`` e.g. ``local[2]``; None: from ``spark-submit`` or ``SPARK_*`` settings)."""

    name: str = "local"
    master: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ("local", "spark"):
            raise UsageError(f"Unknown engine {self.name!r}; use local or spark.")
        if self.master and self.name != "spark":
            raise UsageError("A Spark master (--master) needs --engine spark.")


LOCAL = Engine()


@dataclass(slots=True)
class Coding:
    """Codes to write along with new enrichment (see :func:`code_project`): the compiled
    codebook, the code run, and the report the codes are counted in."""

    compiled: CompiledCodebook
    run_id: str
    report: CodeReport


def enrich_project(store: Store, settings: EnrichSettings, workers: int = 1,
                   progress: StageProgress | None = None, engine: Engine = LOCAL,
                   run_id: str = "enrich", coding: Coding | None = None) -> EnrichReport:
    """Enrich messages not yet enriched with ``settings`` (earlier settings are dropped).
    With ``coding`` (local engine only) the workers also code each batch they enrich, and
    the codes are written with it."""
    fp = settings.fingerprint()
    report = EnrichReport(fingerprint=fp, todo=0)
    report.dropped_stale = db.drop_stale_enrichment(store, fp)
    report.todo = db.enrich_todo_count(store, fp)
    if report.todo and engine.name == "spark":
        from chatlens.project import spark

        report.enriched = spark.enrich(store, settings, engine.master, run_id)
        if progress:
            progress("enrich", report.enriched, report.todo)
    elif report.todo:
        func = functools.partial(_enrich, settings=settings,
                                 compiled=coding.compiled if coding else None)
        reader = db.enrich_todo(store, fp, batch_rows(report.todo, workers), coding is not None)
        # no older code of the messages to enrich: their codes need no collision check
        fresh = coding is not None and db.codes_without_enrichment(
            store, coding.compiled.name, fp) == 0
        with store.bulk_load():
            done = ((t, True) for t in map_batches(func, reader, workers, PRELOAD))
            for tables, _ in appends(done):
                table = tables[0]
                db.write_enrichment(store, table, fp)
                db.index_run(store, table)  # while the workers enrich the next batches
                if coding is not None:
                    coding.report.rows += db.write_codes(store, tables[1], coding.run_id,
                                                         fresh)
                    coding.report.messages += table.num_rows
                report.enriched += table.num_rows
                if progress:
                    progress("enrich", report.enriched, report.todo)
    # what is not indexed yet: enrichment written by Spark or by a run stopped in between
    db.index_lemmas(store, (lambda d, t: progress("search index", d, t)) if progress else None)
    report.languages = db.enrichment_summary(store, fp)["languages"]
    return report


def _enrich(table: pa.Table, settings: EnrichSettings,
            compiled: CompiledCodebook | None = None) -> tuple[pa.Table, ...]:
    """A batch's enrichment, with its lemmas encoded (``lemma_codes``) and the messages'
    ``ts`` for the search index; with ``compiled``, also its codes."""
    enriched = enrich_table(table, settings, with_codes=True).append_column(
        "ts", table.column("ts"))
    if compiled is None:
        return (enriched,)
    return enriched, code_enriched(table, enriched, compiled)


def code_enriched(messages: pa.Table, enriched: pa.Table,
                  compiled: CompiledCodebook) -> pa.Table:
    """Codes of a batch of :func:`~chatlens.store.stages.enrich_todo` ``for_code`` from its
    enrichment (with ``lemma_codes``: the lexicons read the lemmas encoded, as they are)."""
    lemmas = enriched.column("lemma_codes")
    return code_table(pa.table({
        c: lemmas if c == "lemmas" else (messages if c in messages.column_names
                                          else enriched).column(c) for c in INPUT_COLUMNS}),
        compiled)


def _code(table: Any, compiled: CompiledCodebook) -> tuple[tuple[pa.Table], bool]:
    """Codes for a batch, and whether none of its messages had any code when it was read."""
    fresh = table.num_rows == 0 or pc.max(table.column("n_coded")).as_py() == 0
    return (code_table(table, compiled),), bool(fresh)


def uses_llm(codebook: Codebook) -> bool:
    return any(isinstance(sc, LlmScorer) for m in codebook.measures for sc in m.scorers)


def _llm_runtime(store: Store, codebook: Codebook, llm: LlmRuntime | None,
                 progress: StageProgress | None) -> LlmRuntime | None:
    if not uses_llm(codebook):
        return None
    from chatlens.store.llmcache import LlmCache

    runtime = llm or LlmRuntime()
    if runtime.cache is None:
        runtime.cache = LlmCache(store.root)
    if runtime.progress is None:
        runtime.progress = progress
    return runtime


def fuses(codebook: Codebook, engine: Engine) -> bool:
    """Whether :func:`code_project` can enrich new messages and code them in one pass: on the
    local engine, without LLM scorers (those run in this process, see below)."""
    return engine.name == "local" and not uses_llm(codebook)


def code_project(store: Store, codebook: Codebook, source: str, settings: EnrichSettings,
                 run_id: str, workers: int = 1, progress: StageProgress | None = None,
                 llm: LlmRuntime | None = None, engine: Engine = LOCAL,
                 enrich: bool = False) -> CodeReport:
    """Code every enriched message with every measure; only what changed is re-coded.

    ``enrich`` (where :func:`fuses`): first enrich the messages not enriched yet, the workers
    coding each batch as they enrich it (so those are neither read back nor coded again).
    ``llm``: how ``llm`` scorers run (default: requests to local endpoints only, answers cached
    in the project). With an LLM scorer the code stage runs in this process, since the
    requests are already concurrent (the scorer's ``concurrency``)."""
    if enrich and not fuses(codebook, engine):
        raise UsageError("Enriching while coding needs the local engine and no LLM scorer.")
    models_dir = store.root / "models"
    runtime = _llm_runtime(store, codebook, llm, progress)
    if runtime is not None and engine.name == "spark":
        raise UsageError("LLM scorers run on the local engine only (their answers are cached "
                         "in the project); code without --engine spark.")
    if runtime is not None:
        workers = 1
    # compiling loads lexicons and models: a bad reference fails here, before anything is written
    compiled = compile_codebook(codebook, models_dir=models_dir, llm=runtime)
    fp = settings.fingerprint()
    models = model_fingerprints(codebook, models_dir)
    extras = {m.id: f"{fp}|{models.get(m.id, '')}" for m in codebook.measures}
    hashes = {m.id: codebook.measure_hash(m.id, extras=extras) for m in codebook.measures}
    db.save_codebook(store, codebook.name, codebook.version, codebook.hash(), source,
                     codebook.resolved())
    report = CodeReport(codebook.name, codebook.version, codebook.hash(),
                        recoded_measures=db.sync_measures(store, codebook.name, hashes, run_id),
                        pending=compiled.pending_notes())
    n = len(hashes)
    if enrich:
        report.enriched = enrich_project(store, settings, workers, progress, engine, run_id,
                                         Coding(compiled, run_id, report)).enriched
    todo = db.code_todo_count(store, codebook.name, fp, n)
    if todo and engine.name == "spark":
        from chatlens.project import spark

        report.rows = spark.code(store, compiled, fp, n, engine.master, run_id)
        report.messages = todo
        if progress:
            progress("code", report.messages, todo)
    elif todo:
        reader = db.code_todo(store, codebook.name, fp, n, batch_rows(todo, workers))
        func = functools.partial(_code, compiled=compiled)
        with store.bulk_load():
            for (table,), fresh in appends(map_batches(func, reader, workers, PRELOAD)):
                report.rows += db.write_codes(store, table, run_id, fresh)
                report.messages += table.num_rows // max(n, 1)
                if progress:
                    progress("code", report.messages, todo)
    report.summary = db.code_summary(store, codebook.name)
    if runtime is not None:
        report.llm = [st.as_dict() for st in runtime.stats]
    return report


def llm_dry_run(store: Store, codebook: Codebook, settings: EnrichSettings,
                allow_remote: bool = False) -> list[LlmStats]:
    """What coding would send to language models: per LLM scorer the messages in its
    population without a cached answer, their tokens and (for priced hosts) the cost. Sends
    nothing and writes nothing but the (empty) answer cache. Measures whose population
    depends on an LLM measure are counted as if none of its answers were in."""
    runtime = _llm_runtime(store, codebook, LlmRuntime(dry_run=True, allow_remote=allow_remote),
                           None)
    if runtime is None:
        return []
    compiled = compile_codebook(codebook, models_dir=store.root / "models", llm=runtime)
    fp = settings.fingerprint()
    every = 1 << 40  # "fewer codes than this": every enriched message
    for batch in db.code_todo(store, codebook.name, fp, every, BATCH_ROWS):
        code_table(pa.Table.from_batches([batch]), compiled)
    return runtime.stats
