"""The Python API: a project and the operations on it. The CLI is a thin shell over this."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from chatlens import __version__
from chatlens.errors import ChatlensError, UsageError
from chatlens.ingest.base import ParseOptions
from chatlens.ingest.pipeline import IngestReport, Progress
from chatlens.ingest.pipeline import ingest as _ingest
from chatlens.languages import DEFAULT_LANGUAGES
from chatlens.store import Store
from chatlens.store.diskerrors import storage_errors
from chatlens.store.labels import LabelStore

if TYPE_CHECKING:
    from chatlens.code.llm import LlmRuntime
    from chatlens.codebook import Codebook
    from chatlens.enrich import EnrichSettings
    from chatlens.privacy import Masker
    from chatlens.project.estimate import Population
    from chatlens.project.estimate import Row as EstimateRow
    from chatlens.project.process import CodeReport, EnrichReport, StageProgress

R = TypeVar("R")
DEFAULT_CODEBOOK = "builtin:exodus-2022"


#: Country or obsolete codes people type for a language, and the ISO 639-1 code meant.
_LANGUAGE_HINTS = {"ua": "uk", "iw": "he", "jp": "ja", "cn": "zh", "gr": "el", "kr": "ko",
                   "cz": "cs", "dk": "da", "ee": "et", "rs": "sr", "ge": "ka", "by": "be"}


def check_languages(languages: list[str]) -> None:
    """Refuse a list of languages that language ID could not all detect (see
    :func:`chatlens.enrich.lid.supported_languages`), saying which codes it supports."""
    import re

    from chatlens.enrich.lid import supported_languages
    from chatlens.errors import UsageError

    bad = [x for x in languages if not re.fullmatch(r"[a-z]{2,3}", x)]
    if bad or not languages:
        raise UsageError(f"Languages are ISO 639-1 codes such as ru, uk, en; not {bad}.")
    supported = supported_languages()
    unknown = [x for x in languages if x not in supported]
    if unknown:
        hints = [f"{_LANGUAGE_HINTS[x]} for {x}" for x in unknown if x in _LANGUAGE_HINTS]
        raise UsageError(
            f"Language ID cannot detect {', '.join(unknown)}"
            + (f" (did you mean {', '.join(hints)}?)" if hints else "")
            + f". Declare only languages it supports: {', '.join(sorted(supported))}.")


def default_project_dir() -> Path:
    """``$CHATLENS_PROJECT`` if set, else the current directory."""
    return Path(os.environ.get("CHATLENS_PROJECT") or ".")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _record_failure(store: Store | LabelStore, run_id: str, manifest: dict[str, Any]) -> None:
    """Record a run as failed, unless the store cannot be written any more (a full disk, an
    invalidated database): then the error that stopped the run is the one to report."""
    with contextlib.suppress(Exception):  # the first error is re-raised by the caller
        store.finish_run(run_id, "failed", manifest)


def _file_version(ref: str) -> tuple[int, int]:
    """(mtime, size) of a codebook file, so an edited file is read again; built-ins: (0, 0)."""
    if ref.startswith("builtin:"):
        return (0, 0)
    try:
        st = Path(ref).stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


_REVEAL_UNRECORDED = ("Showing raw identities is recorded in the project's runs log; this "
                      "view records no runs, so it cannot reveal them.")


class Project:
    """An open chatlens project. Create with :meth:`init`, open with :meth:`open`."""

    def __init__(self, store: Store, codebook_ref: str | None = None,
                 record_runs: bool | None = None) -> None:
        """``codebook_ref``: the codebook commands use when given none (default: the one the
        project was last coded with). ``record_runs``: whether reading commands (estimate,
        export, evidence and search with ``reveal``) log their runs; by default when the store
        is writable. They log in the label store (:meth:`_side_log`), so a project opened
        read-only can record them and the main database, and its snapshot, stay as they are."""
        self.store = store
        self.record_runs = (not store.read_only) if record_runs is None else record_runs
        self.codebook_ref = codebook_ref
        self._labels: LabelStore | None = None
        # () is the project's own; a file is keyed by its path and version on disk
        self._codebooks: dict[tuple[Any, ...], tuple[Codebook, str]] = {}

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
    def open(cls, root: str | Path | None = None, read_only: bool = False,
             record_runs: bool | None = None) -> Project:
        return cls(Store.open(root if root is not None else default_project_dir(), read_only),
                   record_runs=record_runs)

    def _side_log(self) -> LabelStore:
        """Where runs that change no data are logged: the label store, which never waits for
        the main database's writer (so ``estimate`` runs during an ``ingest``, and a command
        that only reads publishes no new snapshot of a multi-GB main file)."""
        return self.labels()

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
        options = ParseOptions(column_map=dict(column_map or {}), tz=tz, chat=chat,
                               date_order=date_order, encoding=encoding,
                               languages=self.languages())
        with storage_errors(self.store.root):
            self.store.start_run(run_id, "ingest", __version__, params)
            try:
                report = _ingest(self.store, [str(p) for p in paths], run_id, format, options,
                                 progress)
            except BaseException:
                _record_failure(self.store, run_id, {
                    "version": __version__, "params": params,
                    **IngestReport(run_id=run_id).as_dict()})
                raise
            status = "complete" if not report.failed else (
                "partial" if len(report.failed) < len(report.sources) else "failed")
            self.store.finish_run(run_id, status, {
                "version": __version__, "params": params, **report.as_dict(),
            })
        return report

    # -- settings ----------------------------------------------------------------------------
    def languages(self) -> tuple[str, ...]:
        """Languages the project declares (language ID never answers outside them)."""
        value = self.store.meta("languages")
        return tuple(value.split(",")) if value else DEFAULT_LANGUAGES

    def set_languages(self, languages: list[str]) -> None:
        """Declare the languages of the corpus (``chatlens init --languages``)."""
        check_languages(languages)
        self.store.set_meta("languages", ",".join(languages))

    def enrich_settings(self) -> EnrichSettings:
        """The enrichment settings of this project (their fingerprint keys the enrichment)."""
        from chatlens.enrich import EnrichSettings

        return EnrichSettings(languages=self.languages())

    # -- enrich and code -------------------------------------------------------------------
    def enrich(self, workers: int = 1, progress: StageProgress | None = None,
               engine: str = "local", master: str | None = None) -> EnrichReport:
        """Enrich messages not yet enriched with the project's current settings. ``engine``:
        ``local`` (``workers`` processes) or ``spark`` (on ``master``, e.g. ``local[2]``;
        needs the ``spark`` extra)."""
        from chatlens.project.process import Engine, enrich_project

        eng = Engine(engine, master)
        settings = self.enrich_settings()
        return self._run("enrich", {"workers": workers, "settings": asdict(settings),
                                    "engine": engine, "master": master},
                         lambda run_id: enrich_project(self.store, settings, workers, progress,
                                                       eng, run_id))

    def codebook(self, ref: str | Path | None = None) -> tuple[Codebook, str]:
        """The codebook ``ref`` (file or builtin:NAME); without ``ref``, the one the project was
        last coded with, as stored in the project (so it does not matter where the file is now,
        or whether it changed since), else the built-in ``exodus-2022``. Returns it with the
        reference it was loaded from. Each is read once per open project (a file again when it
        changed on disk)."""
        from chatlens.codebook import Codebook, load_codebook
        from chatlens.store.stages import last_codebook

        ref = ref or self.codebook_ref
        if ref:
            key: tuple[Any, ...] = (str(ref), *_file_version(str(ref)))
            if key not in self._codebooks:
                self._codebooks[key] = (load_codebook(ref), str(ref))
            return self._codebooks[key]
        if () not in self._codebooks:
            stored = last_codebook(self.store)
            if stored is not None:
                source, resolved = stored
                self._codebooks[()] = (Codebook.model_validate(resolved), source)
            else:
                self._codebooks[()] = (load_codebook(DEFAULT_CODEBOOK), DEFAULT_CODEBOOK)
        return self._codebooks[()]

    def code(self, codebook: str | Path | None = None, workers: int = 1,
             progress: StageProgress | None = None, allow_remote: bool = False,
             llm: LlmRuntime | None = None, engine: str = "local",
             master: str | None = None) -> CodeReport:
        """Enrich what is new, then code it with every measure of the codebook (on the local
        engine without LLM scorers, in one pass: the workers code each batch they enrich).
        ``allow_remote``: let ``llm`` scorers whose codebook entry allows it send messages to
        a host that is not this machine; ``llm``: a :class:`chatlens.code.llm.LlmRuntime`;
        ``engine``/``master``: as for :meth:`enrich` (both stages run there)."""
        from chatlens.code.llm import LlmRuntime
        from chatlens.project.process import Engine, code_project, fuses
        from chatlens.store.stages import last_codebook

        if codebook is None:  # re-read the file coded last, if it is still there (it may be
            last = last_codebook(self.store)  # edited), else the stored copy
            if last and (last[0].startswith("builtin:") or Path(last[0]).is_file()):
                codebook = last[0]
        if codebook is not None and not str(codebook).startswith("builtin:"):
            codebook = Path(codebook).resolve()  # remembered wherever the next command runs
        cb, source = self.codebook(codebook)
        self._codebooks.pop((), None)  # the project's codebook is the one coded last
        eng = Engine(engine, master)
        fused = fuses(cb, eng)  # new messages are enriched and coded in one pass
        if not fused:
            self.enrich(workers, progress, engine, master)
        settings = self.enrich_settings()
        runtime = llm or LlmRuntime(allow_remote=allow_remote)
        return self._run(
            "code", {"codebook": source, "workers": workers,
                     "allow_remote": runtime.allow_remote, "engine": engine, "master": master,
                     **({"settings": asdict(settings)} if fused else {})},
            lambda run_id: code_project(self.store, cb, source, settings, run_id, workers,
                                        progress, runtime, eng, enrich=fused),
            extra={"codebook_hash": cb.hash(), "codebook": cb.resolved()},
        )

    def llm_dry_run(self, codebook: str | Path | None = None, workers: int = 1,
                    allow_remote: bool = False) -> list[dict[str, Any]]:
        """What ``code`` would send to language models (calls, tokens, cost, time); sends
        nothing. Enriches what is new first, since populations depend on language."""
        from chatlens.project.process import llm_dry_run

        cb, _ = self.codebook(codebook)
        self.enrich(workers)
        return [st.as_dict() for st in llm_dry_run(self.store, cb, self.enrich_settings(),
                                                    allow_remote)]

    def search(self, query: str, measure: str | None = None, value: str | None = None,
               limit: int = 20, offset: int = 0, reveal: bool = False) -> list[dict[str, Any]]:
        """Messages containing every word of ``query`` in any inflected form, newest first
        (``offset`` skips that many: pages of ``limit``); masked unless ``reveal``."""
        from chatlens.project.search import search

        codebook = self.codebook()[0].name if measure else None
        if reveal:
            self._record_reveal("search", {"measure": measure, "value": value, "limit": limit,
                                           "offset": offset})
        return search(self.store, query, codebook, measure, value, limit, offset,
                      mask=None if reveal else self.masker().row)

    # -- samples and labels --------------------------------------------------------------
    def sample(self, measure: str, kind: str = "audit", n: int = 200, strata: str | None = None,
               seed: int | None = None, design: str = "random",
               floor: float | None = None) -> dict[str, Any]:
        """Draw an audit or training sample of a measure's population; an audit's ``design`` is
        ``random`` or ``active`` (weighted to the model's uncertainty, ``floor`` its uniform
        share); see :func:`chatlens.project.labels.create_sample`."""
        from chatlens.annotate.sampling import ACTIVE_MIX
        from chatlens.project.labels import create_sample

        if floor is not None and design != "active":
            raise UsageError("--floor applies to --design active only.")
        share = ACTIVE_MIX if floor is None else floor
        params = {"measure": measure, "kind": kind, "n": n, "strata": strata, "seed": seed,
                  "design": design, "floor": share if design == "active" else None}
        return self._run("sample", params, lambda run_id: create_sample(
            self, measure, kind, n, strata, seed, run_id, design, share))

    def import_labels(self, path: str | Path, annotator: str | None = None,
                      sample_id: str | None = None, measure: str | None = None,
                      reference: str | None = None) -> Any:
        """Import labels from CSV, JSONL, a coding sheet or a Label Studio export: for a sample
        (``sample_id``; only then can they be audit labels), as a declared reference set of
        another corpus or period (``reference``), or as training labels. ``annotator`` is the
        coder of every row (rows naming another are refused); without it each row's annotator
        column decides. Returns a report with ``read``, ``stored`` and ``problems``."""
        from chatlens.project.labels import import_labels

        return self._run("label import", {"path": str(path), "annotator": annotator,
                                          "sample": sample_id, "reference": reference},
                         lambda run_id: import_labels(self, path, annotator, sample_id, measure,
                                                      reference, run_id), labels_only=True)

    def drop_sample(self, sample_id: str, restore: bool = False) -> None:
        """Drop a sample (its labels are kept but no longer count anywhere) or restore it."""
        if not self.labels().set_sample_status(sample_id, "active" if restore else "dropped"):
            raise UsageError(f"No sample {sample_id!r}; `chatlens samples --all` lists them.")

    def unresolved(self, measure: str) -> list[dict[str, Any]]:
        """Audited messages whose coders disagree and that nobody adjudicated."""
        from chatlens.project.labels import unresolved

        return unresolved(self, measure)

    def adjudicate(self, measure: str, decisions: dict[str, str],
                   adjudicator: str = "adjudicator") -> dict[str, Any]:
        """Settle coder disagreements (uid -> value); see
        :func:`chatlens.project.labels.adjudicate`."""
        from chatlens.project.labels import adjudicate

        return self._run("label adjudicate", {"measure": measure, "n": len(decisions),
                                              "adjudicator": adjudicator},
                         lambda run_id: adjudicate(self, measure, decisions, adjudicator))

    def export_labels(self, path: str | Path, fmt: str | None = None,
                      sample_id: str | None = None, measure: str | None = None,
                      annotator: str | None = None) -> int:
        """Write labels as CSV/JSONL/Label Studio JSON, or a sample as a coding sheet or Label
        Studio tasks (``fmt="labelstudio-tasks"``); with ``annotator``, only that coder's labels
        (a blind sheet for a second coder). Returns the number of rows written."""
        from chatlens.project.labels import export_labels

        return export_labels(self, path, fmt, sample_id, measure, annotator)

    def agreement(self, measure: str | None = None) -> dict[str, Any]:
        """Inter-coder agreement per measure (Krippendorff's alpha, Cohen's kappa, percent
        agreement) and the items coders disagree on: ``{"report": …, "disagreements": […]}``."""
        from chatlens.project.labels import agreement

        return agreement(self, measure)

    # -- models ----------------------------------------------------------------------------
    def train(self, measure: str, cv: int = 5, seed: int = 0,
              merge: dict[str, str] | None = None,
              leave_out: list[str] | None = None, dense: bool = False) -> dict[str, Any]:
        """Train a model for ``measure`` from training labels and corrections (never audit
        labels); see :func:`chatlens.project.train.train_measure`."""
        from chatlens.project.train import train_measure

        return self._run("train", {"measure": measure, "cv": cv, "seed": seed,
                                   "merge": merge, "leave_out": leave_out, "dense": dense},
                         lambda run_id: train_measure(self, measure, cv, seed, merge, leave_out,
                                                      dense))

    def models(self) -> list[dict[str, Any]]:
        """Models trained in this project and shipped with chatlens, with their metrics."""
        from chatlens.project.train import list_models

        return list_models(self)

    # -- estimates -------------------------------------------------------------------------
    def estimate(self, measure: str, value: str | None = None, by: str | None = None,
                 method: str = "auto", level: float = 0.95,
                 population: Population | None = None, samples: list[str] | None = None,
                 ties: str = "bounds") -> list[EstimateRow]:
        """Prevalence with a confidence interval (and the naive figure beside it); see
        :func:`chatlens.project.estimate.estimate`."""
        from chatlens.project.estimate import estimate

        rows = estimate(self, measure, value, by, method, level, population, samples, ties)
        if not self.record_runs:  # a view (the dashboard, the report) records no run
            return rows
        run_id = new_run_id()
        params = {"measure": measure, "value": value, "by": by, "method": method,
                  "level": level, "samples": samples, "ties": ties,
                  "population": (population.as_dict() if population else None)}
        log = self._side_log()
        log.start_run(run_id, "estimate", __version__, params)
        for r in rows:
            r.run_id = run_id
        log.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                            "rows": [r.as_dict() for r in rows]})
        return rows

    def evidence(self, measure: str, value: str, population: Population | None = None,
                 limit: int = 20, reveal: bool = False) -> list[dict[str, Any]]:
        """Messages coded ``measure=value`` in the population, in a reproducible random order,
        with the terms that matched; authors pseudonymised, phone numbers and e-mails masked."""
        from chatlens.store.frames import evidence

        cb = self.codebook()[0]
        if value not in cb.measure(measure).labels:
            raise UsageError(f"{value!r} is not a label of {measure} "
                             f"({', '.join(cb.measure(measure).labels)}).")
        if reveal:
            self._record_reveal("evidence", {"measure": measure, "value": value,
                                             "limit": limit})
        rows = evidence(self.store, cb.name, measure, value,
                        self.enrich_settings().fingerprint(), population, limit, reveal)
        if not reveal:
            masker = self.masker()
            rows = [masker.row(r) for r in rows]
        return rows

    def _run(self, command: str, params: dict[str, Any], work: Callable[[str], R],
             extra: dict[str, Any] | None = None, labels_only: bool = False) -> R:
        """Run ``work`` as a logged run; ``labels_only``: it changes only labels, so it is
        logged in the label store and works on a project opened read-only."""
        log: Store | LabelStore = self.labels() if labels_only else self.store
        run_id = new_run_id()
        with storage_errors(self.store.root):
            log.start_run(run_id, command, __version__, params)
            try:
                result = work(run_id)
            except BaseException:
                _record_failure(log, run_id, {"version": __version__, "params": params})
                raise
            report = (result.as_dict() if hasattr(result, "as_dict")
                      else dict(result) if isinstance(result, dict) else {})
            log.finish_run(run_id, "complete", {"version": __version__, "params": params,
                                                **(extra or {}), **report})
        return result

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The runs log, newest first: the main database's and the label store's."""
        rows = self.store.runs(limit) + self.labels().runs(limit)
        rows.sort(key=lambda r: r["started"], reverse=True)
        return rows[:limit]

    def status(self) -> dict[str, Any]:
        """Counts of messages, chats, sources, authors and quarantined records, with details
        per source and chat (1:1 chats pseudonymised, paths masked)."""
        masker = self.masker()
        summary = self.store.summary()
        summary["sources_detail"] = [masker.row(s) for s in self.store.sources()]
        summary["chats_detail"] = [masker.row(c) for c in self.store.chats()]
        from chatlens.store.privacy import interrupted_forgets

        summary["interrupted_erasures"] = interrupted_forgets(self.store)
        return summary

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined records with position, reason and excerpt (masked)."""
        masker = self.masker()
        rows = self.store.quarantined(limit)
        for r in rows:
            masker.row(r)
            r["reason"] = masker.loc(r["reason"])
            r["excerpt"] = masker.text(r["excerpt"])
        return rows

    def messages(self) -> pa.Table:
        """All stored messages (pseudonymised) as an Arrow table."""
        return self.store.messages_arrow()

    def masker(self, reveal: bool = False) -> Masker:
        """The project's masking and pseudonymisation (see :mod:`chatlens.privacy`);
        ``reveal`` turns it off (local commands only, recorded in their run)."""
        from chatlens.privacy import Masker

        return Masker.for_store(self.store, reveal=reveal)

    def export(self, path: str | Path, fmt: str | None = None, reveal: bool = False) -> int:
        """Export messages to Parquet, CSV or JSONL (format from ``fmt`` or the suffix), masked
        and pseudonymised like every output unless ``reveal`` (recorded in the run manifest)."""
        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower() or "parquet"
        if fmt == "json":
            fmt = "jsonl"
        run_id = new_run_id()
        params = {"path": str(path), "format": fmt, "reveal": reveal}
        if reveal and not self.record_runs:
            raise UsageError(_REVEAL_UNRECORDED)
        log = self._side_log()
        log.start_run(run_id, "export", __version__, params)
        masker = self.masker(reveal)
        try:
            n = self.store.export_messages(path, fmt, None if reveal else masker.batch)
        except ChatlensError:
            log.finish_run(run_id, "failed", {})
            raise
        log.finish_run(run_id, "complete", {"rows": n, "path": str(path), "format": fmt,
                                            "reveal": reveal})
        return n

    def export_dataset(self, uri: str, codebook: str | Path | None = None) -> dict[str, Any]:
        """Write every message as a Parquet dataset partitioned by (platform, chat, month), with
        ``job.json`` (enrichment settings, resolved codebook) and the codebook's trained models,
        for ``python -m chatlens.engines.spark`` on a cluster; ``uri``: a folder or an object
        store URI (``s3://…``). Texts are as stored (the stages read them), authors and
        original records are not included."""
        from chatlens.code.compiled import model_fingerprints
        from chatlens.store import parquet as pq

        cb, source = self.codebook(codebook)
        settings = self.enrich_settings()
        def work(run_id: str) -> dict[str, Any]:
            n = pq.export_messages(self.store, uri)
            models = model_fingerprints(cb, self.root / "models")
            pq.write_job(uri, {"version": __version__, "enrich": asdict(settings),
                               "fingerprint": settings.fingerprint(), "codebook_source": source,
                               "codebook": cb.resolved(), "models": models})
            if models and (self.root / "models").is_dir():
                pq.copy_folder(str(self.root / "models"), pq.join(uri, "models"))
            return {"uri": uri, "messages": n, "codebook": cb.name,
                    "fingerprint": settings.fingerprint()}

        # it changes no data: logged in the label store, a failure recorded as one
        return self._run("parquet export", {"uri": uri, "codebook": source}, work,
                         labels_only=True)

    def attach_dataset(self, uri: str) -> dict[str, Any]:
        """Attach the enrichment and codes a Spark job wrote into a dataset made by
        :meth:`export_dataset`; only rows the project lacks are added, and only with the
        project's enrichment settings and the codebook the dataset was exported with."""
        from chatlens.code.compiled import model_fingerprints
        from chatlens.codebook import Codebook
        from chatlens.store import parquet as pq
        from chatlens.store import stages as db

        job = pq.read_job(uri)
        fp = self.enrich_settings().fingerprint()
        cb = Codebook.model_validate(job["codebook"])
        models = model_fingerprints(cb, self.root / "models")
        if models != job.get("models", {}):
            raise UsageError(f"The project's trained models differ from those {uri} was "
                             "coded with; export and run the job again.")
        extras = {m.id: f"{fp}|{models.get(m.id, '')}" for m in cb.measures}
        hashes = {m.id: cb.measure_hash(m.id, extras=extras) for m in cb.measures}

        def work(run_id: str) -> dict[str, Any]:
            enriched = pq.attach_enrichment(self.store, uri, fp)
            db.save_codebook(self.store, cb.name, cb.version, cb.hash(),
                             job.get("codebook_source", cb.name), cb.resolved())
            recoded = db.sync_measures(self.store, cb.name, hashes, run_id)
            rows = pq.attach_codes(self.store, uri, run_id, cb.name, list(hashes))
            db.index_lemmas(self.store)
            return {"uri": uri, "enriched": enriched, "codebook": cb.name, "codes": rows,
                    "recoded_measures": recoded}

        self._codebooks.pop((), None)
        return self._run("parquet attach", {"uri": uri}, work)

    def _record_reveal(self, command: str, params: dict[str, Any]) -> None:
        """Record in the runs log that a read command showed raw identities (``reveal``); a
        view that records no runs (the dashboard, the report) cannot, so it cannot reveal."""
        if not self.record_runs:
            raise UsageError(_REVEAL_UNRECORDED)
        run_id = new_run_id()
        log = self._side_log()
        log.start_run(run_id, command, __version__, {**params, "reveal": True})
        log.finish_run(run_id, "complete", {"version": __version__, "reveal": True})
