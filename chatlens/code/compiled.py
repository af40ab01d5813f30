"""A codebook compiled for scoring: lexicon terms lemmatised, regexes compiled, order resolved."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from chatlens.code.scorers import RegexMatcher, Scorer, build_lexicon
from chatlens.codebook import (
    Codebook,
    LexiconScorer,
    LlmScorer,
    Measure,
    ModelScorer,
    RegexScorer,
)
from chatlens.codebook.regexsafety import start_class
from chatlens.enrich.morph import Lemmatizer
from chatlens.errors import ChatlensError

if TYPE_CHECKING:
    from chatlens.code.llm import LlmRuntime

PUNCT = re.compile(r"^\W+$")


@dataclass(frozen=True, slots=True)
class CompiledMeasure:
    id: str
    type: str
    positive: str
    default: str
    combine: str
    scorers: tuple[Scorer, ...]
    languages: frozenset[str] | None
    chats: frozenset[str] | None
    kinds: frozenset[str]
    since_us: int | None
    until_us: int | None  # exclusive
    where: tuple[tuple[str, str], ...]
    #: models named by the codebook that do not exist yet (their scorers are left out); with
    #: no other scorer the measure is pending: its population is coded with no value
    pending: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledCodebook:
    name: str
    version: str
    hash: str
    measures: tuple[CompiledMeasure, ...]  # dependencies first

    def pending_notes(self) -> list[str]:
        """One line per measure that waits for a model to be trained."""
        return [f"{m.id}: model {', '.join(m.pending)} not trained yet; "
                + ("the measure has no other scorer, so its messages are left uncoded"
                   if not m.scorers else "coded by its other scorers meanwhile")
                + f" (label a training sample, then `chatlens train --measure {m.id}`)"
                for m in self.measures if m.pending]

    def uses_llm(self) -> bool:
        return any(getattr(s, "needs_population", False) for m in self.measures
                   for s in m.scorers)


def _day_us(d: date, plus_days: int = 0) -> int:
    dt = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=plus_days)
    return int(dt.timestamp()) * 1_000_000


def _phrase(lemmatizer: Lemmatizer, term: str, lang: str) -> tuple[str, ...]:
    return tuple(lem for lem in lemmatizer.lemmas(term, lang) if not PUNCT.match(lem))


def resolve_model(name: str, models_dir: Path | None) -> Path | None:
    """A model's folder: the project's ``models/NAME`` first, then one shipped with chatlens."""
    from chatlens.train import SHIPPED_MODELS

    for base in ([models_dir] if models_dir else []) + [SHIPPED_MODELS]:
        if (base / name / "SHA256SUMS").is_file():
            return base / name
    return None


def load_model_scorer(sid: str, m: Measure, name: str, label: str | None, threshold: float,
                      models_dir: Path | None, out_of_fold: bool = False) -> Scorer:
    """The model ``name`` as a scorer of measure ``m``. ``out_of_fold``: answer for the model's
    own training messages with their out-of-fold probabilities (see
    :class:`~chatlens.code.model.OutOfFoldScorer`)."""
    from chatlens.code.model import ModelScorer as TrainedScorer
    from chatlens.code.model import OutOfFoldScorer
    from chatlens.train import load_model
    from chatlens.train.storage import load_out_of_fold

    folder = resolve_model(name, models_dir)
    if folder is None:
        raise ChatlensError(
            f"Measure {m.id} uses the model {name!r}, which this project has not trained and "
            f"chatlens does not ship; label a sample and run `chatlens train --measure {m.id}`, "
            "or remove the model scorer from the codebook.")
    model = load_model(folder)
    if not set(model.labels) <= set(m.labels) or len(model.labels) < 2:
        raise ChatlensError(f"Model {name!r} predicts {model.labels}, but measure {m.id} has "
                            f"labels {m.labels}; train a model for this measure.")
    scorer = TrainedScorer(sid, model, name=name, label=label, threshold=threshold)
    oof = load_out_of_fold(folder, model.labels) if out_of_fold else {}
    return OutOfFoldScorer(scorer, oof) if out_of_fold and (oof or model.folds) else scorer


def model_fingerprints(cb: Codebook, models_dir: Path | None) -> dict[str, str]:
    """Per measure, the identity of the models it uses (so retraining re-codes it)."""
    out: dict[str, str] = {}
    for m in cb.measures:
        keys = []
        for sc in m.scorers:
            if isinstance(sc, ModelScorer):
                folder = resolve_model(sc.model, models_dir)
                sums = (folder / "SHA256SUMS").read_text() if folder else "missing"
                keys.append(f"{sc.model}:{hashlib.sha256(sums.encode()).hexdigest()[:16]}")
        if keys:
            out[m.id] = ",".join(keys)
    return out


def compile_measure(cb: Codebook, m: Measure, lemmatizer: Lemmatizer,
                    models_dir: Path | None = None, out_of_fold: bool = False,
                    llm: LlmRuntime | None = None) -> CompiledMeasure:
    scorers: list[Scorer] = []
    pending: list[str] = []
    for j, sc in enumerate(m.scorers):
        label = sc.label or m.positive_label()
        sid = sc.id or f"{sc.type}{j}"
        if isinstance(sc, LexiconScorer):
            phrases = [_phrase(lemmatizer, t, lang) for lang, terms in sc.terms.items()
                       for t in terms]
            neg = sc.negation
            extra = [w for words in (neg.words or {}).values() for w in words] if neg else []
            scorers.append(build_lexicon(sid, label, phrases, list(sc.terms),
                                         neg.window if neg else 0, extra, sc.min_matches))
        elif isinstance(sc, RegexScorer):
            flags = re.IGNORECASE if sc.ignore_case else 0
            scorers.append(RegexMatcher(sid, label, re.compile(sc.pattern, flags), sc.field,
                                        start_class(sc.pattern, sc.ignore_case)))
        elif isinstance(sc, ModelScorer):
            if resolve_model(sc.model, models_dir) is None:
                pending.append(sc.model)  # the bootstrap: code first, sample, then train
                continue
            scorers.append(load_model_scorer(sid, m, sc.model, sc.label, sc.threshold,
                                             models_dir, out_of_fold))
        elif isinstance(sc, LlmScorer):
            from chatlens.code.llm import LlmMeasureScorer, LlmRuntime

            # without a runtime: cached answers only, never a request
            scorers.append(LlmMeasureScorer(sid, m, sc, llm or LlmRuntime(network=False)))
    pop = m.population
    return CompiledMeasure(
        id=m.id, type=m.type, positive=m.positive_label(), default=m.default_label(),
        combine=m.combine, scorers=tuple(scorers),
        languages=frozenset(pop.languages) if pop.languages else None,
        chats=frozenset(pop.chats) if pop.chats else None, kinds=frozenset(pop.kinds),
        since_us=_day_us(pop.since) if pop.since else None,
        until_us=_day_us(pop.until, 1) if pop.until else None,
        where=tuple((c.measure, c.value) for c in pop.where), pending=tuple(pending),
    )


def compile_codebook(cb: Codebook, lemmatizer: Lemmatizer | None = None,
                     models_dir: Path | None = None,
                     out_of_fold: str | None = None,
                     llm: LlmRuntime | None = None) -> CompiledCodebook:
    """``out_of_fold``: a measure whose models answer out of fold for their training messages
    (for measuring their errors, :func:`chatlens.project.estimate.out_of_fold_codes`). ``llm``: how
    ``llm`` scorers may run (default: from cached answers only, with no request)."""
    lem = lemmatizer or Lemmatizer()
    return CompiledCodebook(
        name=cb.name, version=cb.version, hash=cb.hash(),
        measures=tuple(compile_measure(cb, m, lem, models_dir, m.id == out_of_fold, llm)
                       for m in cb.ordered()),
    )
