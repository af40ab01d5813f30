"""Related topics ("other topics of interest"): clusters of messages per language.

Offline and deterministic. A reproducible sample of messages (by hash of uid) is split by
language (the enrichment's ``lang``; messages whose language was not detected go by the script
of their words, so Hebrew, Latin and Cyrillic text never share a cluster). Within a language,
words of its dominant script that are not stopwords (:mod:`chatlens.enrich.stopwords`), of three
letters or more, become TF-IDF vectors; k-means clusters them; each cluster is named by its
distinctive terms (class-based TF-IDF: frequent in the cluster, rare in the language's other
clusters). A cluster whose members mostly share none of its top terms is marked *mixed*.

Shares are of the whole sample, and the messages left out are shown as their own rows (too few
words, or a language with too few messages), so the percentages, rounded to one decimal by the
largest remainder, add up to exactly 100.0. For any message, the most similar sampled messages
and its nearest topic are "related". Texts shown are PII-masked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chatlens.enrich.stopwords import stopwords
from chatlens.store.frames import time_bucket
from chatlens.store.stages import topic_sample
from chatlens.textsafe import mask_pii

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer

    from chatlens.project import Project

MAX_SAMPLE = 20_000
MIN_WORDS = 3  # words (after stopwords) a message needs to be clustered
MIN_GROUP = 40  # clusterable messages a language needs for topics of its own
MAX_TOPICS_PER_GROUP = 8
LANG_NAMES = {"ru": "Russian", "uk": "Ukrainian", "en": "English", "he": "Hebrew",
              "be": "Belarusian", "kk": "Kazakh", "ka": "Georgian", "hy": "Armenian",
              "de": "German", "sw": "Swahili", "und-lat": "Latin script, language not detected",
              "und-cyr": "Cyrillic script, language not detected",
              "und-ar": "Arabic script, language not detected",
              "und-other": "other scripts, language not detected"}


def _script(word: str) -> str:
    c = word[0]
    if "\u0590" <= c <= "\u05ff":
        return "he"
    if "\u0400" <= c <= "\u04ff":
        return "cyr"
    if "\u0600" <= c <= "\u06ff":
        return "ar"
    if c.isascii() or "\u00c0" <= c <= "\u024f":
        return "lat"
    return "other"


def _words(lemmas: list[str] | None) -> list[str]:
    stop = stopwords()
    return [x for x in lemmas or [] if len(x) >= 3 and x.isalpha() and x not in stop]


def _group(lang: str | None, words: list[str]) -> str:
    if lang and lang != "und":
        return lang
    if not words:
        return "und-other"
    script = Counter(_script(w) for w in words).most_common(1)[0][0]
    return "he" if script == "he" else f"und-{script}"


def lang_name(group: str) -> str:
    return LANG_NAMES.get(group, group)


def percentages(counts: list[int], decimals: int = 1) -> list[float]:
    """Counts as percentages rounded by the largest remainder: they add up to exactly 100."""
    total = sum(counts)
    if not total:
        return [0.0 for _ in counts]
    scale = 100 * 10**decimals
    raw = [c * scale / total for c in counts]
    floors = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: (floors[i] - raw[i], i))[:scale - sum(floors)]:
        floors[i] += 1
    return [f / 10**decimals for f in floors]


@dataclass(slots=True)
class Topic:
    id: int
    size: int
    share: float  # of the whole sample (0-1)
    terms: list[str]  # distinctive terms, most distinctive first
    examples: list[dict[str, Any]]
    over_time: list[tuple[str, float]]  # share of the language's clustered messages per bucket
    lang: str = ""
    lang_name: str = ""
    pct: float = 0.0  # share in percent, one decimal (all rows add up to 100.0)
    share_in_lang: float = 0.0
    mixed: bool = False  # most members share none of the top terms: no clear theme

    @property
    def name(self) -> str:
        return " · ".join(self.terms[:3]) if not self.mixed else "mixed: " + ", ".join(
            self.terms[:3])


@dataclass
class _Group:
    lang: str
    vectorizer: TfidfVectorizer
    matrix: csr_matrix
    centroids: np.ndarray
    labels: np.ndarray  # global topic id per row
    uids: list[str]
    texts: list[str]


@dataclass
class TopicModel:
    """Fitted topics over a sample of the project's messages."""

    topics: list[Topic]
    bucket: str
    sample_size: int = 0
    left_out: list[dict[str, Any]] = field(default_factory=list)  # reason, n, share, pct
    languages: list[dict[str, Any]] = field(default_factory=list)  # lang, name, n, pct
    groups: list[_Group] = field(default_factory=list)

    def related(self, lemmas: list[str] | None, uid: str | None = None,
                k: int = 5) -> dict[str, Any]:
        """The topic nearest a message (by its lemmas) and the ``k`` most similar sampled
        messages of the language whose messages it is most like."""
        words = _words(lemmas)
        best: tuple[float, _Group, np.ndarray] | None = None
        for g in self.groups:
            v = g.vectorizer.transform([words])
            if v.nnz == 0:
                continue
            sims = (g.matrix @ v.T).toarray().ravel()
            if best is None or sims.max() > best[0]:
                best = (float(sims.max()), g, sims)
        if best is None or best[0] <= 0:
            return {"topic": None, "messages": []}
        _, g, sims = best
        order = np.argsort(-sims, kind="stable")
        out: list[dict[str, Any]] = []
        for i in order:
            if len(out) >= k or sims[i] <= 0:
                break
            if g.uids[i] != uid:
                out.append({"uid": g.uids[i], "text": g.texts[i], "similarity": float(sims[i])})
        tid = int(g.labels[order[0]])
        return {"topic": next((t for t in self.topics if t.id == tid), None), "messages": out}


def _ctfidf(counts: Any, labels: np.ndarray, k: int) -> np.ndarray:
    """Class-based TF-IDF (terms × clusters from a binary doc-term matrix)."""
    tf = np.vstack([np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in range(k)])
    per_class = np.maximum(tf.sum(axis=1, keepdims=True), 1)
    avg = float(per_class.mean())
    freq = np.maximum(tf.sum(axis=0, keepdims=True), 1)
    return np.asarray((tf / per_class) * np.log1p(avg / freq) * (tf >= 2))


def _fit_group(lang: str, idx: list[int], docs: list[list[str]], rows: list[Any],
               texts: list[str], first_id: int, seed: int, max_k: int,
               ) -> tuple[list[Topic], _Group] | None:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    gdocs = [docs[i] for i in idx]
    for max_df in (0.3, 1.0):  # a language with one theme has no term under 30% of messages
        vec = TfidfVectorizer(analyzer=lambda d: d, min_df=2, max_df=max_df, sublinear_tf=True)
        try:
            X = vec.fit_transform(gdocs)
        except ValueError:  # no term left
            continue
        if len(vec.vocabulary_) >= 5:
            break
    else:
        return None
    k = int(np.clip(round(np.sqrt(len(gdocs) / 25)), 2, max(2, max_k)))
    k = min(k, max(1, len(gdocs) // 10))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X)
    local = km.labels_
    counts = CountVectorizer(analyzer=lambda d: d, vocabulary=vec.vocabulary_,
                             binary=True).transform(gdocs)
    scores = _ctfidf(counts, local, k)
    terms = np.array(vec.get_feature_names_out())
    buckets = [rows[i][4] for i in idx]
    dated = sorted({b for b in buckets if b})
    totals = Counter(b for b in buckets if b)
    gtexts = [texts[i] for i in idx]
    topics = []
    for c in range(k):
        members = np.flatnonzero(local == c)
        if not len(members):
            continue
        top_idx = [int(t) for t in np.argsort(-scores[c], kind="stable")[:8] if scores[c, t] > 0]
        if not top_idx:  # nothing distinctive: the terms the centroid weighs most
            top_idx = [int(t) for t in np.argsort(-km.cluster_centers_[c], kind="stable")[:8]]
        covered = np.asarray(counts[members][:, top_idx[:3]].sum(axis=1)).ravel() > 0
        dist = np.asarray((X[members] @ km.cluster_centers_[c]).ravel())
        central = members[np.argsort(-dist, kind="stable")[:200]]
        per_bucket = Counter(buckets[i] for i in members if buckets[i])
        topics.append(Topic(
            id=first_id + c, size=len(members), share=0.0, terms=[str(terms[t]) for t in top_idx],
            examples=_distinct(central, gtexts, [rows[i] for i in idx], 5),
            over_time=[(b, per_bucket.get(b, 0) / totals[b]) for b in dated],
            lang=lang, lang_name=lang_name(lang), share_in_lang=len(members) / len(gdocs),
            mixed=bool(covered.mean() < 0.5)))
    group = _Group(lang, vec, X, km.cluster_centers_, local + first_id,
                   [rows[i][0] for i in idx], gtexts)
    return topics, group


def fit_topics(project: Project, n_topics: int | None = None, sample: int = MAX_SAMPLE,
               seed: int = 0) -> TopicModel:
    """Cluster a reproducible sample of the project's enriched messages into topics, per
    language. ``n_topics`` caps the topics of each language."""
    bucket = time_bucket(project.store)
    rows = topic_sample(project.store, project.enrich_settings().fingerprint(), bucket, sample)
    if not rows:
        return TopicModel(topics=[], bucket=bucket)
    texts = [mask_pii(r[1] or "") for r in rows]
    raw = [_words(r[2]) for r in rows]
    groups = [_group(r[3], w) for r, w in zip(rows, raw, strict=True)]
    by_group: dict[str, list[int]] = {}
    scripts: dict[str, str] = {}
    for g in sorted(set(groups)):  # each language keeps the words of its dominant script
        members = [i for i, x in enumerate(groups) if x == g]
        sc = Counter(_script(w) for i in members for w in raw[i])
        scripts[g] = sc.most_common(1)[0][0] if sc else "lat"
    docs = [[w for w in ws if _script(w) == scripts[g]] for ws, g in zip(raw, groups, strict=True)]
    short = 0
    for i, (g, d) in enumerate(zip(groups, docs, strict=True)):
        if len(d) < MIN_WORDS:
            short += 1
        else:
            by_group.setdefault(g, []).append(i)
    small = {g: idx for g, idx in by_group.items() if len(idx) < MIN_GROUP}
    topics: list[Topic] = []
    fitted: list[_Group] = []
    unfit = 0
    for g, idx in sorted(by_group.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if g in small:
            continue
        got = _fit_group(g, idx, docs, rows, texts, len(topics), seed,
                         n_topics or MAX_TOPICS_PER_GROUP)
        if got is None:
            unfit += len(idx)
            continue
        topics += got[0]
        fitted.append(got[1])
    topics.sort(key=lambda tp: (-tp.size, tp.id))
    left_out: list[dict[str, Any]] = [
        {"reason": f"fewer than {MIN_WORDS} words once stopwords are removed", "n": short},
        {"reason": f"languages with fewer than {MIN_GROUP} such messages "
                   f"({', '.join(sorted(lang_name(g) for g in small)) or 'none'})",
         "n": sum(len(v) for v in small.values())},
        {"reason": "no word shared with another message of their language", "n": unfit}]
    left_out = [x for x in left_out if x["n"]]
    n = len(rows)
    pcts = percentages([t.size for t in topics] + [x["n"] for x in left_out])
    for t, p in zip(topics, pcts, strict=False):
        t.share, t.pct = t.size / n, p
    for x, p in zip(left_out, pcts[len(topics):], strict=True):
        x["share"], x["pct"] = x["n"] / n, p
    lang_counts = Counter(groups)
    names = sorted(lang_counts, key=lambda g: (-lang_counts[g], g))
    languages = [{"lang": g, "name": lang_name(g), "n": lang_counts[g], "pct": p}
                 for g, p in zip(names, percentages([lang_counts[g] for g in names]),
                                 strict=True)]
    return TopicModel(topics=topics, bucket=bucket, sample_size=n, left_out=left_out,
                      languages=languages, groups=fitted)


def _distinct(idx: np.ndarray, texts: list[str], rows: list[Any], k: int) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for i in idx:
        if texts[i] in seen:
            continue
        seen.add(texts[i])
        out.append({"uid": rows[i][0], "text": texts[i]})
        if len(out) >= k:
            break
    return out
