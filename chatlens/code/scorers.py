"""Scorers: the one interface every way of scoring a measure implements.

A scorer sees a :class:`Batch` of enriched messages and returns, per message, a :class:`Hit`
(the label it assigns, a score in [0, 1], the matched terms) or None. Rule scorers (lexicon,
regex) give score 1.0 when they fire; a trained model (``model`` scorers) gives a probability.
Scorers are plain picklable objects so a process pool can run them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from chatlens.enrich.morph import negation_words


@dataclass(slots=True)
class Batch:
    """The columns scorers read, one list entry per message.

    :meth:`candidates` answers "which messages contain any of these lemmas" from one inverted
    index built per batch, so twenty lexicons cost one pass over the batch, not twenty.
    """

    text: list[str]
    norm: list[str]
    lang: list[str]
    lemmas: list[list[str]]
    _index: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.text)

    def candidates(self, lemmas: frozenset[str]) -> list[int]:
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i, row in enumerate(self.lemmas):
                for lemma in set(row):
                    bucket = index.get(lemma)
                    if bucket is None:
                        index[lemma] = [i]
                    else:
                        bucket.append(i)
            self._index = index
        found: set[int] = set()
        for lemma in lemmas:
            hit = self._index.get(lemma)
            if hit:
                found.update(hit)
        return sorted(found)


@dataclass(frozen=True, slots=True)
class Hit:
    label: str
    score: float
    matched: tuple[str, ...] = ()


class Scorer(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def label(self) -> str: ...

    def score(self, batch: Batch) -> list[Hit | None]: ...


@dataclass(frozen=True, slots=True)
class LexiconMatcher:
    """Phrases of lemmas; a phrase matches a run of consecutive message lemmas.

    Terms of every declared language are matched in every message (mixed-language chats are
    common and a Ukrainian lemma rarely equals a Russian one). A match with a negation word
    (не, нет, ні, not, … plus the codebook's own) within ``window`` lemmas before it is ignored.
    """

    id: str
    label: str
    by_first: dict[str, tuple[tuple[str, ...], ...]]  # first lemma -> phrases starting with it
    firsts: frozenset[str]
    negators: frozenset[str]
    window: int  # 0: no negation handling
    min_matches: int = 1

    def find(self, lemmas: list[str]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        n = len(lemmas)
        for i, lemma in enumerate(lemmas):
            phrases = self.by_first.get(lemma)
            if not phrases:
                continue
            for phrase in phrases:
                k = len(phrase)
                if i + k <= n and (k == 1 or tuple(lemmas[i:i + k]) == phrase):
                    if self.window and not self.negators.isdisjoint(
                            lemmas[max(0, i - self.window):i]):
                        continue
                    spans.append((i, i + k))
                    break
        return spans

    def score(self, batch: Batch) -> list[Hit | None]:
        out: list[Hit | None] = [None] * len(batch)
        candidates = batch.candidates(self.firsts)
        for i in candidates:
            lemmas = batch.lemmas[i]
            spans = self.find(lemmas)
            if len(spans) >= self.min_matches:
                out[i] = Hit(self.label, 1.0, tuple(" ".join(lemmas[a:b]) for a, b in spans))
        return out


def build_lexicon(scorer_id: str, label: str, phrases: list[tuple[str, ...]],
                  languages: list[str], window: int, extra_negators: list[str],
                  min_matches: int) -> LexiconMatcher:
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        if phrase:
            by_first.setdefault(phrase[0], []).append(phrase)
    negators: set[str] = set(extra_negators)
    for lang in languages:
        negators |= negation_words(lang)
    return LexiconMatcher(
        id=scorer_id, label=label,
        by_first={k: tuple(sorted(set(v), key=len, reverse=True)) for k, v in by_first.items()},
        firsts=frozenset(by_first), negators=frozenset(negators), window=window,
        min_matches=min_matches,
    )


@dataclass(frozen=True, slots=True)
class RegexMatcher:
    """A regular expression; ``first_chars`` (when known) lets most messages skip the search."""

    id: str
    label: str
    pattern: re.Pattern[str]
    field: str  # "text" or "norm"
    first_chars: frozenset[str] | None = None

    def score(self, batch: Batch) -> list[Hit | None]:
        texts = batch.text if self.field == "text" else batch.norm
        out: list[Hit | None] = []
        search = self.pattern.search
        first = self.first_chars
        for t in texts:
            if not t or (first is not None and not any(c in t for c in first)):
                out.append(None)
                continue
            m = search(t)
            out.append(Hit(self.label, 1.0, (m.group(0),)) if m else None)
        return out
