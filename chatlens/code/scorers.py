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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatlens.enrich.morph import negation_words


class Batch:
    """The columns scorers read for a batch of messages: ``text``, ``norm``, ``lang`` (one entry
    per message) and the lemmas.

    Lemmas stay one Arrow list array: :meth:`positions` finds where any of a set of lemmas occurs
    with one hash lookup per *distinct* lemma of the batch, so a lexicon touches only the
    messages and positions it can match. :attr:`lemmas` gives them all as Python lists (trained
    models need them), :meth:`lemma_row` one message's.
    """

    __slots__ = ("_arrow", "_flat", "_lists", "_rows", "lang", "norm", "text", "uids")

    def __init__(self, text: list[str], norm: list[str], lang: list[str],
                 lemmas: list[list[str]] | pa.Array | pa.ChunkedArray,
                 uids: pa.Array | pa.ChunkedArray | None = None) -> None:
        self.text, self.norm, self.lang = text, norm, lang
        self.uids = uids  # the messages' uids, when the caller has them
        self._lists: list[list[str]] | None = None
        self._rows: dict[int, list[str]] = {}
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array] | None = None
        if isinstance(lemmas, list):
            self._lists = [x or [] for x in lemmas]
            lemmas = pa.array(self._lists, pa.list_(pa.string()))
        if isinstance(lemmas, pa.ChunkedArray):
            lemmas = (lemmas.combine_chunks() if lemmas.num_chunks
                      else pa.array([], pa.list_(pa.string())))
        self._arrow: pa.ListArray = lemmas

    def __len__(self) -> int:
        return len(self.text)

    @property
    def lemmas(self) -> list[list[str]]:
        if self._lists is None:
            self._lists = [x or [] for x in self._arrow.to_pylist()]
        return self._lists

    def lemma_row(self, i: int) -> list[str]:
        if self._lists is not None:
            return self._lists[i]
        row = self._rows.get(i)
        if row is None:
            offsets, _, _, flat = self._flat_lemmas()
            a, b = int(offsets[i]), int(offsets[i + 1])
            row = self._rows[i] = flat.slice(a, b - a).to_pylist()
        return row

    def _flat_lemmas(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        """Per-message offsets into the flat lemmas, dictionary codes, dictionary, flat array."""
        if self._flat is None:
            arr = self._arrow
            if arr.null_count:  # a null list holds no lemmas, whatever its offsets say
                arr = pc.fill_null(arr, pa.scalar([], arr.type))
            offs = np.asarray(arr.offsets, dtype=np.int64)
            flat = pc.fill_null(arr.flatten(), "")  # a null lemma matches nothing
            enc = pc.dictionary_encode(flat)
            codes = np.asarray(enc.indices, dtype=np.int64)
            self._flat = (offs - offs[0], codes, enc.dictionary, flat)
        return self._flat

    def positions(self, words: frozenset[str]) -> dict[int, list[int]]:
        """Message index → positions (ascending) of lemmas in ``words``, messages ascending."""
        offsets, codes, dictionary, _ = self._flat_lemmas()
        if not words or codes.size == 0:
            return {}
        wanted = pc.is_in(dictionary, value_set=pa.array(sorted(words), pa.string()))
        hits = np.flatnonzero(np.asarray(wanted.fill_null(False), dtype=bool)[codes])
        rows = np.searchsorted(offsets, hits, side="right") - 1
        out: dict[int, list[int]] = {}
        for r, h in zip(rows.tolist(), (hits - offsets[rows]).tolist(), strict=True):
            bucket = out.get(r)
            if bucket is None:
                out[r] = [h]
            else:
                bucket.append(h)
        return out


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

    def find(self, lemmas: list[str], starts: list[int] | None = None) -> list[tuple[int, int]]:
        """Matched ``(start, end)`` spans; ``starts``: the positions whose lemma begins a phrase
        (every position when omitted)."""
        spans: list[tuple[int, int]] = []
        n = len(lemmas)
        for i in range(n) if starts is None else starts:
            phrases = self.by_first.get(lemmas[i])
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
        for i, starts in batch.positions(self.firsts).items():
            lemmas = batch.lemma_row(i)
            spans = self.find(lemmas, starts)
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
    """A regular expression; ``starts`` (when known: a class of the characters a match can start
    with, see :func:`chatlens.regexsafety.start_class`) lets the search try only the positions
    holding one of them instead of every one."""

    id: str
    label: str
    pattern: re.Pattern[str]
    field: str  # "text" or "norm"
    starts: re.Pattern[str] | None = None

    def score(self, batch: Batch) -> list[Hit | None]:
        texts = batch.text if self.field == "text" else batch.norm
        out: list[Hit | None] = []
        search, match, starts = self.pattern.search, self.pattern.match, self.starts
        for t in texts:
            m = None
            if t and starts is None:
                m = search(t)
            elif t and starts is not None:
                # the leftmost match starts at the leftmost position where one matches, so this
                # gives what search() gives; lookbehinds still see the text before ``pos``
                for s in starts.finditer(t):
                    m = match(t, s.start())
                    if m:
                        break
            out.append(Hit(self.label, 1.0, (m.group(0),)) if m else None)
        return out
