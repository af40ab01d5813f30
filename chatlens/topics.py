"""Related topics ("other topics of interest"): clusters of messages by lemma TF-IDF.

Offline and deterministic: a reproducible sample of enriched messages (by hash of uid) is turned
into TF-IDF vectors over lemmas (words of three letters or more, in at least two messages and at
most a third of them), clustered with k-means, and each cluster is described by its top terms,
its most central messages and its share over time. For any message, the most similar messages
of the sample and its nearest topic are "related". Texts shown are PII-masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from chatlens.store.frames import time_bucket
from chatlens.textsafe import mask_pii

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer

    from chatlens.project import Project

MAX_SAMPLE = 20_000


def _keep(lemmas: list[str] | None) -> list[str]:
    return [x for x in lemmas or [] if len(x) >= 3 and x.isalpha()]


@dataclass(slots=True)
class Topic:
    id: int
    size: int
    share: float
    terms: list[str]
    examples: list[dict[str, Any]]
    over_time: list[tuple[str, float]]


@dataclass
class TopicModel:
    """Fitted topics over a sample of the project's messages."""

    topics: list[Topic]
    bucket: str
    vectorizer: TfidfVectorizer | None = None
    matrix: csr_matrix | None = None
    centroids: np.ndarray | None = None
    uids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: np.ndarray | None = None
    sample_size: int = 0

    def related(self, lemmas: list[str] | None, uid: str | None = None,
                k: int = 5) -> dict[str, Any]:
        """The topic nearest a message (by its lemmas) and the ``k`` most similar sampled
        messages."""
        if self.vectorizer is None or self.matrix is None or self.centroids is None:
            return {"topic": None, "messages": []}
        v = self.vectorizer.transform([_keep(lemmas)])
        if v.nnz == 0:
            return {"topic": None, "messages": []}
        sims = (self.matrix @ v.T).toarray().ravel()
        order = np.argsort(-sims, kind="stable")
        out: list[dict[str, Any]] = []
        for i in order:
            if len(out) >= k or sims[i] <= 0:
                break
            if self.uids[i] != uid:
                out.append({"uid": self.uids[i], "text": self.texts[i],
                            "similarity": float(sims[i])})
        best = int(self.labels[order[0]]) if self.labels is not None else -1
        topic = next((t for t in self.topics if t.id == best), None)
        return {"topic": topic, "messages": out}


def fit_topics(project: Project, n_topics: int | None = None, sample: int = MAX_SAMPLE,
               seed: int = 0) -> TopicModel:
    """Cluster a reproducible sample of the project's enriched messages into topics."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    fp = project.enrich_settings().fingerprint()
    bucket = time_bucket(project.store)
    fmt = "%Y-%m" if bucket == "month" else "%Y-%m-%d"
    con = project.store.con.cursor()
    # draw the sample from the messages alone, then fetch its texts and lemmas: carrying them
    # through an ordering of the whole corpus costs minutes on millions of messages
    picked = [r[0] for r in con.execute(
        "SELECT uid FROM messages WHERE kind = 'message' ORDER BY hash(uid), uid LIMIT ?",
        [sample]).fetchall()]
    rows = con.execute(
        f"SELECT m.uid, m.text, e.lemmas, strftime(date_trunc('{bucket}', m.ts), '{fmt}') "
        "FROM (SELECT uid, lemmas FROM enrichment WHERE fingerprint = ? "
        "AND uid IN (SELECT unnest(?))) e JOIN messages m USING (uid) "
        "ORDER BY hash(m.uid), m.uid", [fp, picked]).fetchall()
    docs = [_keep(r[2]) for r in rows]
    keep = [i for i, d in enumerate(docs) if d]
    if len(keep) < 10:
        return TopicModel(topics=[], bucket=bucket, sample_size=len(keep))
    docs = [docs[i] for i in keep]
    rows = [rows[i] for i in keep]
    vec = TfidfVectorizer(analyzer=lambda d: d, min_df=2, max_df=0.33, sublinear_tf=True)
    try:
        X = vec.fit_transform(docs)
    except ValueError:
        return TopicModel(topics=[], bucket=bucket, sample_size=len(docs))
    k = n_topics or int(np.clip(round(np.sqrt(len(docs) / 20)), 3, 12))
    k = min(k, X.shape[0])
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(X)
    labels = km.labels_
    centroids = km.cluster_centers_
    terms = np.array(vec.get_feature_names_out())
    buckets = [r[3] or "?" for r in rows]
    all_b = sorted(set(buckets))
    totals = {b: buckets.count(b) for b in all_b}
    texts = [mask_pii(r[1]) for r in rows]
    topics = []
    for t in range(k):
        members = np.flatnonzero(labels == t)
        if not len(members):
            continue
        top = [str(x) for x in terms[np.argsort(-centroids[t])[:8]]]
        dist = np.asarray((X[members] @ centroids[t]).ravel())
        central = members[np.argsort(-dist, kind="stable")[:200]]
        counts: dict[str, int] = {}
        for i in members:
            counts[buckets[i]] = counts.get(buckets[i], 0) + 1
        topics.append(Topic(
            id=t, size=len(members), share=len(members) / len(rows), terms=top,
            examples=_distinct(central, texts, rows, 5),
            over_time=[(b, counts.get(b, 0) / totals[b]) for b in all_b]))
    topics.sort(key=lambda tp: -tp.size)
    return TopicModel(topics=topics, bucket=bucket, vectorizer=vec, matrix=X,
                      centroids=centroids, uids=[r[0] for r in rows], texts=texts,
                      labels=labels, sample_size=len(rows))


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
