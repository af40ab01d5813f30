"""Scorers: the one interface every way of scoring a measure implements.

A scorer sees a :class:`Batch` of enriched messages and returns, per message, a :class:`Hit`
(the label it assigns, a score in [0, 1], the matched terms) or None. Rule scorers (lexicon,
regex) give score 1.0 when they fire; a trained model (``model`` scorers) gives a probability.
Scorers are plain picklable objects so a process pool can run them.
"""

from __future__ import annotations

import math
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

    Lemmas stay one Arrow list array: :meth:`flat_codes` dictionary-encodes them once for the
    batch (unless they come encoded, as the enrich stage hands them over), so a lexicon works
    on integer codes and never turns lemmas into Python strings.
    :attr:`lemmas` gives them all as Python lists (trained models need them).
    """

    __slots__ = ("_arrow", "_flat", "_lists", "lang", "norm", "text", "uids")

    def __init__(self, text: list[str], norm: list[str], lang: list[str],
                 lemmas: list[list[str]] | pa.Array | pa.ChunkedArray,
                 uids: pa.Array | pa.ChunkedArray | None = None) -> None:
        self.text, self.norm, self.lang = text, norm, lang
        self.uids = uids  # the messages' uids, when the caller has them
        self._lists: list[list[str]] | None = None
        self._flat: tuple[np.ndarray, np.ndarray, pa.Array] | None = None
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

    def flat_codes(self) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """All lemmas of the batch in one sequence: per-message offsets into it (``n + 1``), a
        dictionary code per lemma, and the dictionary (distinct lemmas)."""
        if self._flat is None:
            arr = self._arrow
            if arr.null_count:  # a null list holds no lemmas, whatever its offsets say
                arr = pc.fill_null(arr, pa.scalar([], arr.type))
            offs = np.asarray(arr.offsets, dtype=np.int64)
            enc = arr.flatten()
            if not pa.types.is_dictionary(enc.type):  # already encoded: the enrich stage's
                enc = pc.dictionary_encode(pc.fill_null(enc, ""))  # a null lemma: ""
            self._flat = (offs - offs[0], np.asarray(enc.indices, dtype=np.int64),
                          enc.dictionary)
        return self._flat


@dataclass(frozen=True, slots=True)
class Hit:
    label: str
    score: float
    matched: tuple[str, ...] = ()


#: What a scorer returns for a message it could not score (an LLM that gave no valid answer):
#: the measure gets no code for that message, so a later run tries again; never a guess.
MISSING = Hit("", math.nan)


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
    common and a Ukrainian lemma rarely equals a Russian one). At each position the longest
    phrase that matches there counts (matches may overlap). A match with a negation word (не,
    нет, ні, not, … plus the codebook's own) within ``window`` lemmas before it is ignored.
    """

    id: str
    label: str
    phrases: tuple[tuple[str, ...], ...]  # distinct, longest first
    negators: frozenset[str]
    window: int  # 0: no negation handling
    min_matches: int = 1

    def score(self, batch: Batch) -> list[Hit | None]:
        out: list[Hit | None] = [None] * len(batch)
        for i, found in self.matches(batch).items():
            if len(found) >= self.min_matches:
                out[i] = Hit(self.label, 1.0, tuple(" ".join(p) for p in found))
        return out

    def matches(self, batch: Batch) -> dict[int, list[tuple[str, ...]]]:
        """Message index → the phrases matched in it, in position order (messages ascending).

        Works on the batch's lemma codes: the phrases' words are looked up in the batch's
        dictionary once, the positions holding a first word are found with one NumPy pass, the
        negation window is a difference of a running count of negation words.
        """
        offsets, codes, dictionary = batch.flat_codes()
        if codes.size == 0 or not self.phrases:
            return {}
        words = sorted({w for p in self.phrases for w in p} | self.negators)
        at = np.asarray(pc.index_in(dictionary, value_set=pa.array(words, pa.string()))
                        .fill_null(-1), dtype=np.int64)  # per dictionary entry: index in words
        present = np.flatnonzero(at >= 0)
        code = {words[w]: c for c, w in zip(present.tolist(), at[present].tolist(), strict=True)}
        phrases = [(p, [code[w] for w in p]) for p in self.phrases if all(w in code for w in p)]
        if not phrases:
            return {}
        hits = np.flatnonzero(self._mask(len(at), [c[0] for _, c in phrases])[codes])
        rows = np.searchsorted(offsets, hits, side="right") - 1
        ends = offsets[rows + 1]
        open_ = np.ones(hits.size, dtype=bool)  # no match yet, not negated
        if self.window:
            negs = [code[w] for w in self.negators if w in code]
            if negs:
                seen = np.concatenate([[0], np.cumsum(self._mask(len(at), negs)[codes])])
                lo = np.maximum(hits - self.window, offsets[rows])
                open_ = seen[hits] == seen[lo]
        first = codes[hits]
        by_first = np.argsort(first, kind="stable")  # the hits of one first word: one slice
        sorted_first = first[by_first]
        which = np.full(hits.size, -1, dtype=np.int64)
        single = np.full(len(at), -1, dtype=np.int64)  # one-word phrase per dictionary code
        for k, (_, c) in enumerate(phrases):  # longest first: the first to match wins
            if len(c) == 1:
                single[c[0]] = k
                continue
            start, stop = np.searchsorted(sorted_first, [c[0], c[0] + 1])
            cand = by_first[start:stop]
            cand = cand[open_[cand] & (hits[cand] + len(c) <= ends[cand])]
            for j in range(1, len(c)):
                cand = cand[codes[hits[cand] + j] == c[j]]
            which[cand] = k
            open_[cand] = False
        cand = np.flatnonzero(open_ & (single[first] >= 0))  # one-word phrases come last
        which[cand] = single[first[cand]]
        out: dict[int, list[tuple[str, ...]]] = {}
        matched = np.flatnonzero(which >= 0)
        for r, k in zip(rows[matched].tolist(), which[matched].tolist(), strict=True):
            out.setdefault(r, []).append(phrases[k][0])
        return out

    @staticmethod
    def _mask(n: int, codes: list[int]) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[codes] = True
        return mask


def build_lexicon(scorer_id: str, label: str, phrases: list[tuple[str, ...]],
                  languages: list[str], window: int, extra_negators: list[str],
                  min_matches: int) -> LexiconMatcher:
    negators: set[str] = set(extra_negators)
    for lang in languages:
        negators |= negation_words(lang)
    return LexiconMatcher(
        id=scorer_id, label=label,
        phrases=tuple(sorted({p for p in phrases if p}, key=lambda p: (-len(p), p))),
        negators=frozenset(negators), window=window, min_matches=min_matches,
    )


@dataclass(frozen=True, slots=True)
class RegexMatcher:
    """A regular expression; ``starts`` (when known: a class of the characters a match can start
    with, see :func:`chatlens.codebook.regexsafety.start_class`) lets the search try only the
    positions holding one of them instead of every one."""

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
