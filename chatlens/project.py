"""The Python API: a project and the operations on it. The CLI is a thin shell over this."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from chatlens import __version__
from chatlens.errors import ChatlensError
from chatlens.ingest.base import ParseOptions
from chatlens.ingest.pipeline import IngestReport, Progress
from chatlens.ingest.pipeline import ingest as _ingest
from chatlens.store import Store
from chatlens.store.core import first_row
from chatlens.store.labels import LabelStore

if TYPE_CHECKING:
    from chatlens.codebook import Codebook
    from chatlens.enrich import EnrichSettings
    from chatlens.estimation import Population
    from chatlens.estimation import Row as EstimateRow
    from chatlens.runner import CodeReport, EnrichReport, StageProgress

R = TypeVar("R")
DEFAULT_CODEBOOK = "builtin:exodus-2022"


def check_languages(languages: list[str]) -> None:
    import re

    from chatlens.errors import UsageError

    bad = [x for x in languages if not re.fullmatch(r"[a-z]{2,3}", x)]
    if bad or not languages:
        raise UsageError(f"Languages are ISO 639-1 codes such as ru, uk, en; not {bad}.")


def default_project_dir() -> Path:
    """``$CHATLENS_PROJECT`` if set, else the current directory."""
    return Path(os.environ.get("CHATLENS_PROJECT") or ".")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Project:
    """An open chatlens project. Create with :meth:`init`, open with :meth:`open`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._labels: LabelStore | None = None

    def labels(self) -> LabelStore:
        """The project's label store (``labels.sqlite``), opened on first use."""
        if self._labels is None:
            self._labels = LabelStore(self.store.root)
        return self._labels

    @property
    def root(self) -> Path:
        return self.store.root

    @classmethod
    def init(cls, root: str | Path) -> Project:
        return cls(Store.create(root))

    @classmethod
    def open(cls, root: str | Path | None = None, read_only: bool = False) -> Project:
        return cls(Store.open(root if root is not None else default_project_dir(), read_only))

    def close(self) -> None:
        """Close the store and the label store; ``with Project.open(...)`` does it for you."""
        if self._labels is not None:
            self._labels.close()
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(
        self,
        paths: list[str | Path],
        format: str | None = None,
        column_map: dict[str, str] | None = None,
        tz: str = "UTC",
        chat: str | None = None,
        date_order: str | None = None,
        encoding: str | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files, folders and archives; see :func:`chatlens.ingest.pipeline.ingest`."""
        run_id = new_run_id()
        params: dict[str, Any] = {
            "paths": [str(p) for p in paths], "format": format, "map": column_map or {},
            "tz": tz, "chat": chat, "date_order": date_order, "encoding": encoding,
        }
        self.store.start_run(run_id, "ingest", __version__, params)
        options = ParseOptions(column_map=dict(column_map or {}), tz=tz, chat=chat,
                               date_order=date_order, encoding=encoding)
        status = "failed"
        report = IngestReport(run_id=run_id)
        try:
            report = _ingest(self.store, [str(p) for p in paths], run_id, format, options,
                             progress)
            status = "complete" if not report.failed else (
                "partial" if len(report.failed) < len(report.sources) else "failed")
        finally:
            self.store.finish_run(run_id, status, {
                "version": __version__, "params": params, **report.as_dict(),
            })
        return report

    # -- settings ----------------------------------------------------------------------------
    def languages(self) -> tuple[str, ...]:
        """Languages the project declares (language ID never answers outside them)."""
        from chatlens.enrich import DEFAULT_LANGUAGES

        row = first_row(self.store.con.execute("SELECT value FROM meta WHERE key = 'languages'"))
        return tuple(row[0].split(",")) if row and row[0] else DEFAULT_LANGUAGES

    def set_languages(self, languages: list[str]) -> None:
        """Declare the languages of the corpus (``chatlens init --languages``)."""
        check_languages(languages)
        self.store.con.execute("INSERT OR REPLACE INTO meta VALUES ('languages', ?)",
                               [",".join(languages)])

    def enrich_settings(self) -> EnrichSettings:
        """The enrichment settings of this project (their fingerprint keys the enrichment)."""
        from chatlens.enrich import EnrichSettings

        return EnrichSettings(languages=self.languages())

    # -- enrich and code -------------------------------------------------------------------
    def enrich(self, workers: int = 1, progress: StageProgress | None = None) -> EnrichReport:
        """Enrich messages not yet enriched with the project's current settings."""
        from chatlens.runner import enrich_project

        settings = self.enrich_settings()
        return self._run("enrich", {"workers": workers, "settings": asdict(settings)},
                         lambda run_id: enrich_project(self.store, settings, workers, progress))

    def codebook(self, ref: str | Path | None = None) -> tuple[Codebook, str]:
        """The codebook ``ref`` (file or builtin:NAME), else the last one used, else the
        built-in ``exodus-2022``; returns it with the reference it was loaded from."""
        from chatlens.codebook import load_codebook
        from chatlens.store.stages import last_codebook_source

        source = str(ref) if ref else (last_codebook_source(self.store) or DEFAULT_CODEBOOK)
        return load_codebook(source), source

    def code(self, codebook: str | Path | None = None, workers: int = 1,
             progress: StageProgress | None = None) -> CodeReport:
        """Enrich what is new, then code it with every measure of the codebook."""
        from chatlens.runner import code_project

        cb, source = self.codebook(codebook)
        self.enrich(workers, progress)
        settings = self.enrich_settings()
        return self._run(
            "code", {"codebook": source, "workers": workers},
            lambda run_id: code_project(self.store, cb, source, settings, run_id, workers,
                                        progress),
            extra={"codebook_hash": cb.hash(), "codebook": cb.resolved()},
        )

    def search(self, query: str, measure: str | None = None, value: str | None = None,
               limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Messages containing every word of ``query`` in any inflected form, newest first
        (``offset`` skips that many: pages of ``limit``)."""
        from chatlens.search import search

        codebook = self.codebook()[0].name if measure else None
        return search(self.store, query, codebook, measure, value, limit, offset)

    # -- samples and labels --------------------------------------------------------------
    def sample(self, measure: str, kind: str = "audit", n: int = 200, strata: str | None = None,
               seed: int | None = None) -> dict[str, Any]:
        """Draw an audit or training sample of a measure's population; see
        :func:`chatlens.labelling.create_sample`."""
        from chatlens.labelling import create_sample

        params = {"measure": measure, "kind": kind, "n": n, "strata": strata, "seed": seed}
        return self._run("sample", params, lambda run_id: create_sample(
            self, measure, kind, n, strata, seed, run_id))

    def import_labels(self, path: str | Path, annotator: str, sample_id: str | None = None,
                      measure: str | None = None) -> Any:
        """Import labels from CSV, JSONL or a Label Studio export; only ``sample_id`` makes them
        audit labels. Returns a report with ``read``, ``stored`` and ``problems``."""
        from chatlens.labelling import import_labels

        return self._run("label import", {"path": str(path), "annotator": annotator,
                                          "sample": sample_id},
                         lambda run_id: import_labels(self, path, annotator, sample_id, measure))

    def export_labels(self, path: str | Path, fmt: str | None = None,
                      sample_id: str | None = None, measure: str | None = None) -> int:
        """Write labels as CSV/JSONL/Label Studio JSON, or a sample as Label Studio tasks
        (``fmt="labelstudio-tasks"``); returns the number of rows written."""
        from chatlens.labelling import export_labels

        return export_labels(self, path, fmt, sample_id, measure)

    def agreement(self, measure: str | None = None) -> dict[str, Any]:
        """Inter-coder agreement per measure (Krippendorff's alpha, Cohen's kappa, percent
        agreement) and the items coders disagree on: ``{"report": …, "disagreements": […]}``."""
        from chatlens.labelling import agreement

        return agreement(self, measure)

    # -- models ----------------------------------------------------------------------------
    def train(self, measure: str, cv: int = 5, seed: int = 0) -> dict[str, Any]:
        """Train a model for ``measure`` from training labels and corrections (never audit
        labels); see :func:`chatlens.training.train_measure`."""
        from chatlens.training import train_measure

        return self._run("train", {"measure": measure, "cv": cv, "seed": seed},
                         lambda run_id: train_measure(self, measure, cv, seed))

    def models(self) -> list[dict[str, Any]]:
        """Models trained in this project and shipped with chatlens, with their metrics."""
        from chatlens.training import list_models

        return list_models(self)

    # -- estimates -------------------------------------------------------------------------
    def estimate(self, measure: str, value: str | None = None, by: str | None = None,
                 method: str = "auto", level: float = 0.95,
                 population: Population | None = None) -> list[EstimateRow]:
        """Prevalence with a confidence interval (and the naive figure beside it); see
        :func:`chatlens.estimation.estimate`."""
        from chatlens.estimation import estimate

        rows = estimate(self, measure, value, by, method, level, population)
        run_id = new_run_id()
        params = {"measure": measure, "value": value, "by": by, "method": method,
                  "level": level}
        self.store.start_run(run_id, "estimate", __version__, params)
        for r in rows:
            r.run_id = run_id
        self.store.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                                   "rows": [r.as_dict() for r in rows]})
        return rows

    def evidence(self, measure: str, value: str, population: Population | None = None,
                 limit: int = 20) -> list[dict[str, Any]]:
        """Messages coded ``measure=value`` in the population, in a reproducible random order,
        with the terms that matched; authors pseudonymised, phone numbers and e-mails masked."""
        from chatlens.estimation import Population
        from chatlens.store.frames import evidence

        cb = self.codebook()[0]
        pop = population or Population()
        return evidence(self.store, cb.name, measure, value, self.enrich_settings().fingerprint(),
                        pop.since, pop.until, pop.where, limit)

    def _run(self, command: str, params: dict[str, Any], work: Callable[[str], R],
             extra: dict[str, Any] | None = None) -> R:
        run_id = new_run_id()
        self.store.start_run(run_id, command, __version__, params)
        try:
            result = work(run_id)
        except BaseException:
            self.store.finish_run(run_id, "failed", {"version": __version__, "params": params})
            raise
        report = (result.as_dict() if hasattr(result, "as_dict")
                  else dict(result) if isinstance(result, dict) else {})
        self.store.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                                   **(extra or {}), **report})
        return result

    def status(self) -> dict[str, Any]:
        """Counts of messages, chats, sources, authors and quarantined records, with details
        per source and chat."""
        summary = self.store.summary()
        summary["sources_detail"] = self.store.sources()
        summary["chats_detail"] = self.store.chats()
        return summary

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined records with their source, position, reason and an excerpt."""
        return self.store.quarantined(limit)

    def messages(self) -> pa.Table:
        """All stored messages (pseudonymised) as an Arrow table."""
        return self.store.messages_arrow()

    def export(self, path: str | Path, fmt: str | None = None) -> int:
        """Export messages to Parquet, CSV or JSONL (format from ``fmt`` or the suffix)."""
        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower() or "parquet"
        if fmt == "json":
            fmt = "jsonl"
        run_id = new_run_id()
        self.store.start_run(run_id, "export", __version__, {"path": str(path), "format": fmt})
        try:
            n = self.store.export_messages(path, fmt)
        except ChatlensError:
            self.store.finish_run(run_id, "failed", {})
            raise
        self.store.finish_run(run_id, "complete", {"rows": n, "path": str(path), "format": fmt})
        return n
