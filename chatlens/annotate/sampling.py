"""Samples for annotation: audit samples for estimation, training picks for the models.

An *audit* sample is a probability sample of a measure's population: simple random sampling
without replacement (``srswor``), or stratified SRSWOR with one independent SRSWOR per stratum.
It never looks at model scores. Its design (frame size, strata sizes ``N_h``, sample sizes
``n_h``, seed, inclusion probabilities) is recorded so estimates can use it.

Randomness comes from *permanent random numbers*: each uid gets the key
``blake2b(f"{seed}\\x1f{uid}")`` (64 bits) and SRSWOR takes the ``n`` smallest keys. Ordering
units by independent uniform keys is a uniformly random permutation, so this is exact SRSWOR; it
is independent of the frame's row order and of numpy/Python versions, and costs one hash per
uid. Ties (probability 2⁻⁶⁴) are broken by uid.

A *training* sample picks items that should improve a model (uncertainty, then diversity), plus
a random share of the frame so that the model also sees typical messages. When the scores carry
no uncertainty (0/1 rule decisions, or one value for everything) uncertainty sampling has nothing
to go on and its tie-breaking (diversity) favours odd, short messages, so the draw is random
within score strata instead. It is recorded as such, with the sample's composition next to the
frame's, and never counts as an audit sample; it excludes the audit uids it is given.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from chatlens.errors import UsageError

#: Name of the random-number scheme, recorded in every design.
RNG = "blake2b-prn-v1"
Allocation = Literal["proportional", "equal"]


def prn(seed: int, uid: str) -> int:
    """The permanent random number (a 64-bit integer) of ``uid`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x1f{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _smallest(uids: Sequence[str], k: int, seed: int) -> list[tuple[int, str]]:
    return heapq.nsmallest(k, ((prn(seed, u), u) for u in uids))


def _check_frame(frame_uids: Sequence[str]) -> None:
    if len(set(frame_uids)) == len(frame_uids):
        return
    for a, b in itertools.pairwise(sorted(frame_uids)):
        if a == b:
            raise UsageError(f"the sampling frame lists uid {a!r} more than once")


def frame_digest(uids: Sequence[str]) -> str:
    """A short hash of the sorted frame, so a recorded design names the frame it was drawn from."""
    h = hashlib.blake2b(digest_size=12)
    for u in sorted(uids):
        h.update(u.encode())
        h.update(b"\n")
    return h.hexdigest()


def allocate(sizes: Mapping[str, int], n: int,
             allocation: Allocation = "proportional") -> dict[str, int]:
    """Split ``n`` over strata of the given sizes.

    ``proportional`` gives stratum ``h`` the quota ``n·N_h/N``; ``equal`` gives each non-empty
    stratum ``n/H``. Quotas are rounded by largest remainder (Hamilton): floors first, then one
    more to the largest remainders (ties: larger stratum, then name). When ``n`` is at least the
    number of non-empty strata, every non-empty stratum gets at least 1 (the units this takes
    come from the most over-quota strata), so every stratum can be estimated. No stratum gets
    more than its size. Empty strata get 0.
    """
    keys = sorted(h for h, s in sizes.items() if s > 0)
    total = sum(sizes[h] for h in keys)
    if n < 0 or n > total:
        raise UsageError(f"cannot draw {n} items from strata holding {total}")
    if allocation == "proportional":
        quota = {h: Fraction(n * sizes[h], total) for h in keys}
    elif allocation == "equal":
        quota = {h: Fraction(n, len(keys)) for h in keys}
    else:
        raise UsageError(f"unknown allocation {allocation!r}: use proportional or equal")
    alloc = {h: min(int(quota[h]), sizes[h]) for h in keys}
    if n >= len(keys):
        alloc = {h: max(a, 1) for h, a in alloc.items()}
    while sum(alloc.values()) < n:
        open_ = [h for h in keys if alloc[h] < sizes[h]]
        h = max(open_, key=lambda g: (quota[g] - alloc[g], sizes[g]))
        alloc[h] += 1
    while sum(alloc.values()) > n:
        over = [h for h in keys if alloc[h] > 1]
        h = min(over, key=lambda g: (quota[g] - alloc[g], -sizes[g]))
        alloc[h] -= 1
    return {h: alloc.get(h, 0) for h in sorted(sizes)}


@dataclass(frozen=True)
class AuditSample:
    """A probability sample for audit coding. ``uids`` are in random (presentation) order."""

    uids: tuple[str, ...]
    method: str  # srswor | stratified-srswor | active-poisson
    seed: int
    frame_size: int
    n: int
    frame_digest: str
    allocation: str | None = None
    strata_sizes: dict[str, int] = field(default_factory=dict)  # N_h
    sample_sizes: dict[str, int] = field(default_factory=dict)  # n_h
    stratum_of: dict[str, str] = field(default_factory=dict)  # sampled uid → stratum
    inclusion: dict[str, float] = field(default_factory=dict)  # sampled uid → π_i
    kind: Literal["audit"] = "audit"
    rng: str = RNG

    def as_dict(self) -> dict[str, Any]:
        """The sample and its design as plain JSON-able data."""
        d = asdict(self)
        d["uids"] = list(self.uids)
        return d


def draw_audit(frame_uids: Sequence[str], n: int, seed: int,
               strata: Sequence[str] | None = None,
               allocation: Allocation = "proportional") -> AuditSample:
    """Draw ``n`` distinct uids from the frame by (stratified) SRSWOR; see :func:`allocate`.

    ``strata`` gives each frame uid's stratum (e.g. its chat or month), aligned with
    ``frame_uids``. The draw depends only on the set of (uid, stratum) pairs and ``seed``.
    """
    _check_frame(frame_uids)
    uids = frame_uids
    N = len(uids)
    if not 0 <= n <= N:
        raise UsageError(f"cannot draw an audit sample of {n} from a population of {N}")
    digest = frame_digest(uids)
    if strata is None:
        picked = _smallest(uids, n, seed)
        chosen = tuple(u for _, u in picked)
        pi = n / N if N else 0.0
        return AuditSample(chosen, "srswor", seed, N, n, digest,
                           inclusion={u: pi for u in chosen})
    if len(strata) != len(frame_uids):
        raise UsageError(f"strata has {len(strata)} entries for {len(frame_uids)} frame uids")
    groups: dict[str, list[str]] = {}
    for u, h in zip(frame_uids, strata, strict=True):
        groups.setdefault(str(h), []).append(u)
    sizes = {h: len(g) for h, g in sorted(groups.items())}
    alloc = allocate(sizes, n, allocation)
    picked, stratum_of, inclusion = [], {}, {}
    for h in sorted(groups):
        for key, u in _smallest(sorted(groups[h]), alloc[h], seed):
            picked.append((key, u))
            stratum_of[u] = h
            inclusion[u] = alloc[h] / sizes[h]
    picked.sort()
    return AuditSample(tuple(u for _, u in picked), "stratified-srswor", seed, N, n, digest,
                       allocation, sizes, alloc, stratum_of, inclusion)


#: Share of the active design's inclusion probabilities spread uniformly (a floor under every
#: message's chance, so no part of the population goes almost unaudited).
ACTIVE_MIX = 0.2


def active_probabilities(spread: ArrayLike, n: float, mix: float = ACTIVE_MIX,
                         ) -> NDArray[np.float64]:
    """Inclusion probabilities for an active audit of expected size ``n``: proportional to
    ``spread`` (the expected size of a message's correction, e.g. ``sqrt(g(1-g))`` for a
    calibrated score ``g``: the variance-minimising choice) mixed with uniform (share ``mix``),
    summing to ``n`` and capped at 1 (what a capped message cannot take goes to the others)."""
    u = np.nan_to_num(np.asarray(spread, dtype=float), nan=1.0).clip(0.0, None)
    N = u.size
    if not 0 < n <= N:
        raise UsageError(f"cannot draw an active audit of {n} from a population of {N}")
    base = (1 - mix) * (u / u.sum() if u.sum() > 0 else np.full(N, 1.0 / N)) + mix / N
    pi = np.zeros(N)
    capped = np.zeros(N, dtype=bool)
    for _ in range(N):
        free = ~capped
        rest = n - capped.sum()
        pi[free] = rest * base[free] / base[free].sum()
        pi[capped] = 1.0
        over = free & (pi > 1.0)
        if not over.any():
            break
        capped |= over
    return np.asarray(np.clip(pi, 0.0, 1.0), dtype=float)


def draw_active(frame_uids: Sequence[str], spread: ArrayLike, n: float, seed: int,
                mix: float = ACTIVE_MIX) -> AuditSample:
    """An active audit sample: Poisson sampling with permanent random numbers, message ``i``
    drawn when ``prn / 2^64 < pi_i`` (:func:`active_probabilities`). Its size is random with
    mean ``n``; each drawn message records its ``pi_i`` for the weighted estimate
    (:func:`chatlens.estimate.active.ppi_active_estimate`)."""
    _check_frame(frame_uids)
    pi = active_probabilities(spread, n, mix)
    if pi.size != len(frame_uids):
        raise UsageError(f"{pi.size} spreads for {len(frame_uids)} frame uids")
    picked = sorted((prn(seed, u), u) for u, q in zip(frame_uids, pi.tolist(), strict=True)
                    if prn(seed, u) < q * 2.0**64)
    inclusion = dict(zip(frame_uids, pi.tolist(), strict=True))
    chosen = tuple(u for _, u in picked)
    return AuditSample(chosen, "active-poisson", seed, len(frame_uids), len(chosen),
                       frame_digest(frame_uids), inclusion={u: inclusion[u] for u in chosen})


@dataclass(frozen=True)
class TrainSample:
    """Items picked to improve a model; never audit items. ``uids`` in selection order.

    ``method``: ``random`` (no scores), ``score-stratified`` (scores without uncertainty: random
    within score strata), ``score-enriched`` (the same with equal shares of the strata, when the
    flagged messages are too rare for a proportional share to hold enough of them), or
    ``uncertainty``/``uncertainty+diversity`` followed by ``+random`` when part of the sample is
    a simple random draw (``random_uids``, ``random_share`` of it). ``expected_flagged`` is how
    many flagged messages (P >= 0.5) a proportional sample would hold; ``warning`` says when
    the sample holds too few of them to train on, and what to do.
    ``composition`` compares the sample with the frame it was drawn from (audit items left out):
    see :func:`composition`. ``note`` explains a fallback in one sentence.
    """

    uids: tuple[str, ...]
    method: str
    seed: int
    frame_size: int
    n_requested: int
    n: int
    excluded: int  # frame uids left out because they are in ``exclude`` (audit items)
    pool_size: int
    representation: str | None = None
    uncertainty: dict[str, float] = field(default_factory=dict)
    random_share: float = 0.0
    random_uids: tuple[str, ...] = ()
    strata_sizes: dict[str, int] = field(default_factory=dict)  # score-stratified: N_h
    sample_sizes: dict[str, int] = field(default_factory=dict)  # score-stratified: n_h
    composition: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    expected_flagged: float | None = None
    warning: str = ""
    kind: Literal["train"] = "train"
    rng: str = RNG

    def as_dict(self) -> dict[str, Any]:
        """The selection and how it was made as plain JSON-able data."""
        d = asdict(self)
        d["uids"] = list(self.uids)
        d["random_uids"] = list(self.random_uids)
        return d


def uncertainty(scores: ArrayLike) -> NDArray[np.float64]:
    """Uncertainty in [0, 1]: ``1 - |2p - 1|`` for a vector of P(positive), normalised entropy
    for a matrix of class probabilities (rows renormalised). Missing (NaN) scores count as 1."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        u = 1.0 - np.abs(2.0 * np.clip(s, 0.0, 1.0) - 1.0)
    elif s.ndim == 2:
        k = s.shape[1]
        p = np.clip(s, 0.0, None)
        p = p / np.where(p.sum(axis=1, keepdims=True) > 0, p.sum(axis=1, keepdims=True), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        u = ent / np.log(k) if k > 1 else np.zeros(len(p))
        u = np.where(np.isnan(s).any(axis=1), np.nan, u)
    else:
        raise UsageError("scores must be a vector of probabilities or a probability matrix")
    return np.where(np.isnan(u), 1.0, u)


def hashed_ngrams(texts: Sequence[str], dim: int = 512, n: int = 3) -> NDArray[np.float64]:
    """L2-normalised hashed character ``n``-gram counts (stable crc32 buckets), one row a text."""
    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        s = f" {' '.join(t.casefold().split())} "
        for j in range(max(len(s) - n + 1, 0)):
            out[i, zlib.crc32(s[j:j + n].encode()) % dim] += 1.0
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


def _diverse(u: NDArray[np.float64], x: NDArray[np.float64], n: int) -> list[int]:
    """Greedy pick maximising uncertainty × cosine distance to the nearest item already picked."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norm > 0, norm, 1.0)
    chosen = [0]
    mind = np.clip(1.0 - x @ x[0], 0.0, 2.0)
    taken = np.zeros(len(u), dtype=bool)
    taken[0] = True
    while len(chosen) < n:
        gain = np.where(taken, -1.0, (u + 1e-6) * mind)
        j = int(np.argmax(gain))
        chosen.append(j)
        taken[j] = True
        mind = np.minimum(mind, np.clip(1.0 - x @ x[j], 0.0, 2.0))
    return chosen


#: Share of a training sample drawn at random from the frame when the scores are informative.
RANDOM_SHARE = 0.3
#: A training sample drawn by 0/1 scores that would hold fewer flagged messages (P >= 0.5) than
#: this (and than half the sample) in proportion to the frame takes equal shares of the score
#: strata instead.
MIN_FLAGGED = 20


def informative(scores: ArrayLike) -> tuple[bool, str]:
    """Whether scores carry uncertainty that uncertainty sampling can use, and why not.

    Not informative: no scored item, finite scores that are all 0 or 1 (decisions, e.g. rule
    hits, not probabilities), or a single distinct uncertainty among the scored items. Missing
    (NaN) scores are left out of the check.
    """
    s = np.asarray(scores, dtype=np.float64)
    rows = ~np.isnan(s) if s.ndim == 1 else ~np.isnan(s).any(axis=1)
    f = s[rows]
    if f.size == 0:
        return False, "no item has a score"
    if np.all((f == 0.0) | (f == 1.0)):
        return False, "the scores are 0/1 decisions, which carry no uncertainty"
    u = uncertainty(f)
    if float(u.max() - u.min()) <= 1e-12:
        return False, "every scored item has the same uncertainty"
    return True, ""


def score_strata(scores: ArrayLike) -> list[str]:
    """One stratum name per item: ``unscored`` for a missing score; otherwise the score rounded
    to 0.1 (vector) or the most probable class index (matrix), e.g. ``s=1.0`` or ``c=2``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        return ["unscored" if np.isnan(v) else f"s={round(float(v), 1):.1f}" for v in s]
    return ["unscored" if np.isnan(r).any() else f"c={int(np.argmax(r))}" for r in s]


def _flagged_strata(sizes: Mapping[str, int]) -> list[str] | None:
    """The score strata (:func:`score_strata` names) whose score is at least 0.5; None when the
    strata are classes of a probability matrix (no flagged side)."""
    if any(h.startswith("c=") for h in sizes):
        return None
    return [h for h in sizes if h.startswith("s=") and float(h[2:]) >= 0.5]


def composition(idx: Sequence[int], scores: ArrayLike | None = None,
                texts: Sequence[str] | None = None,
                groups: Sequence[str] | None = None) -> dict[str, Any]:
    """What a set of items (frame positions ``idx``) looks like: ``n``; with scores, the share
    flagged (P >= 0.5, vector) or the share per most probable class (matrix) among the scored
    items and the share unscored; with texts, the median and quartiles of the length in
    characters; with groups (e.g. chats), how many there are and the largest one's share."""
    ix = np.asarray(list(idx), dtype=np.int64)
    out: dict[str, Any] = {"n": int(ix.size)}
    if ix.size == 0:
        return out
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64)[ix]
        if s.ndim == 1:
            scored = s[~np.isnan(s)]
            out["share_flagged"] = float(np.mean(scored >= 0.5)) if scored.size else None
            out["share_unscored"] = float(np.mean(np.isnan(s)))
        else:
            ok = ~np.isnan(s).any(axis=1)
            top = np.argmax(s[ok], axis=1)
            out["share_by_class"] = {str(k): float(np.mean(top == k)) for k in range(s.shape[1])}
            out["share_unscored"] = float(np.mean(~ok))
    if texts is not None:
        lens = np.array([len(texts[i] or "") for i in ix], dtype=np.float64)
        q1, med, q3 = np.quantile(lens, [0.25, 0.5, 0.75])
        out["length"] = {"median": float(med), "q1": float(q1), "q3": float(q3)}
    if groups is not None:
        g: dict[str, int] = {}
        for i in ix:
            g[str(groups[i])] = g.get(str(groups[i]), 0) + 1
        out["groups"] = len(g)
        out["largest_group_share"] = max(g.values()) / int(ix.size)
    return out


def draw_train(frame_uids: Sequence[str], scores: ArrayLike | None, n: int, seed: int,
               exclude: Collection[str] = frozenset(), texts: Sequence[str] | None = None,
               vectors: ArrayLike | None = None, pool_factor: int = 5,
               random_share: float = RANDOM_SHARE,
               groups: Sequence[str] | None = None) -> TrainSample:
    """Pick up to ``n`` training items from the frame, never one in ``exclude``.

    ``scores`` (aligned with ``frame_uids``) are P(positive) per item or a probability matrix.

    - Without scores the pick is a simple random draw (``random``).
    - Scores without uncertainty (see :func:`informative`: 0/1 rule decisions, or one value for
      all) cannot say which items would teach the model most, and picking among their ties by
      diversity favours short, odd messages; the pick is then random within score strata
      (:func:`score_strata`), allocated in proportion to their sizes (``score-stratified``);
      when that would give fewer than :data:`MIN_FLAGGED` flagged messages and fewer than half
      the sample (a rare measure), in equal shares (``score-enriched``): a training sample
      need not mirror the frame.
    - Informative scores: ``ceil(random_share·n)`` items are a simple random draw from the frame
      (``random_uids``), so the model keeps seeing typical messages; the rest come from the
      ``pool_factor·n`` most uncertain of the remaining items (ties broken at random by seed),
      thinned greedily for uncertainty and diversity when ``texts`` (hashed character 3-grams)
      or ``vectors`` are given, else the most uncertain.

    ``texts`` and ``groups`` (e.g. chat keys) also feed ``composition``: the sample next to the
    frame (audit items left out) — size, share flagged, length, groups — for the user to check.
    Asking for more items than remain gives all of them.
    """
    _check_frame(frame_uids)
    if not 0.0 <= random_share <= 1.0:
        raise UsageError(f"random_share must be between 0 and 1, got {random_share}")
    if texts is not None and len(texts) != len(frame_uids):
        raise UsageError(f"{len(texts)} texts for {len(frame_uids)} frame uids")
    if groups is not None and len(groups) != len(frame_uids):
        raise UsageError(f"{len(groups)} groups for {len(frame_uids)} frame uids")
    excl = set(exclude)
    keep = [i for i, u in enumerate(frame_uids) if u not in excl]
    m = min(max(n, 0), len(keep))
    base: dict[str, Any] = {"seed": seed, "frame_size": len(frame_uids), "n_requested": n,
                            "excluded": len(frame_uids) - len(keep)}
    if scores is not None and len(np.asarray(scores, dtype=np.float64)) != len(frame_uids):
        raise UsageError(f"{len(np.asarray(scores))} scores for {len(frame_uids)} frame uids")

    def comp(picks: Sequence[int]) -> dict[str, Any]:
        return {"sample": composition(picks, scores, texts, groups),
                "frame": composition(keep, scores, texts, groups)}

    def random_picks(among: Sequence[int], k: int) -> list[int]:
        return [i for _, _, i in heapq.nsmallest(
            k, ((prn(seed, frame_uids[i]), frame_uids[i], i) for i in among))]

    if scores is None:
        picks = random_picks(keep, m)
        return TrainSample(tuple(frame_uids[i] for i in picks), "random", n=m,
                           pool_size=len(keep), random_share=1.0,
                           random_uids=tuple(frame_uids[i] for i in picks),
                           composition=comp(picks), **base)
    u_all = uncertainty(scores)
    ok, why = informative(np.asarray(scores, dtype=np.float64)[keep]) if keep else (True, "")
    if not ok:
        names = score_strata(scores)
        groups_h: dict[str, list[int]] = {}
        for i in keep:
            groups_h.setdefault(names[i], []).append(i)
        sizes = {h: len(v) for h, v in sorted(groups_h.items())}
        flagged = _flagged_strata(sizes)
        n_flagged = sum(sizes[h] for h in flagged or [])
        scored = len(keep) - sizes.get("unscored", 0)
        # no scored item: nothing is flagged or unflagged, so nothing can be called rare
        expected = m * n_flagged / len(keep) if scored and flagged is not None else None
        # rare: a proportional share would hold few flagged messages, and fewer than unflagged
        rare = expected is not None and expected < min(MIN_FLAGGED, m / 2)
        enrich = rare and n_flagged > 0
        alloc = allocate(sizes, m, "equal" if enrich else "proportional")
        picked = sorted((prn(seed, frame_uids[i]), frame_uids[i], i) for h in sorted(groups_h)
                        for i in random_picks(groups_h[h], alloc[h]))
        picks = [i for _, _, i in picked]
        note = f"Uncertainty sampling was not used because {why}; the sample is random within " \
            "score strata, " + ("in equal shares" if enrich else "in proportion to their sizes") \
            + "."
        warning = ""
        if rare:
            got = sum(alloc[h] for h in flagged or ())
            warning = (f"Flagged messages are rare: {n_flagged:,} of {len(keep):,} "
                       f"({n_flagged / len(keep):.2%}), so a proportional sample of {m:,} "
                       f"would hold about {expected:.1f} of them, too few to train on. ")
            warning += (f"This sample takes equal shares of each score stratum instead and "
                        f"holds {got:,} flagged messages (a training sample need not mirror the "
                        "population: it never enters an estimate)." if enrich else
                        "The scores flag none, so no sample drawn by score can find positives.")
            if got < MIN_FLAGGED:
                warning += (" Find more positives with `chatlens search WORDS` and label them "
                            "as training labels (corrections in the dashboard, or `chatlens "
                            "label import`).")
        return TrainSample(tuple(frame_uids[i] for i in picks),
                           "score-enriched" if enrich else "score-stratified", n=m,
                           pool_size=len(keep), random_share=0.0 if enrich else 1.0,
                           random_uids=() if enrich else tuple(frame_uids[i] for i in picks),
                           strata_sizes=sizes, sample_sizes=alloc, composition=comp(picks),
                           note=note, expected_flagged=expected, warning=warning, **base)
    k_rand = min(m, math.ceil(random_share * m))
    rand = random_picks(keep, k_rand)
    taken = set(rand)
    rest = [i for i in keep if i not in taken]
    m_unc = m - k_rand
    idx = np.asarray(rest, dtype=np.int64)
    keys = np.fromiter((prn(seed, frame_uids[i]) for i in rest), dtype=np.uint64,
                       count=len(rest))
    # most uncertain first, random order (by seed) within ties; a key tie (p = 2^-64) is broken
    # by frame position
    ranked = idx[np.lexsort((keys, -u_all[idx]))].tolist() if rest else []
    rep: NDArray[np.float64] | None = None
    name: str | None = None
    if vectors is not None or texts is not None:
        pool = ranked[:min(len(ranked), max(m_unc, pool_factor * m_unc))]
        if vectors is not None:
            rep, name = np.asarray(vectors, dtype=np.float64)[pool], "vectors"
        else:
            assert texts is not None
            rep, name = hashed_ngrams([texts[i] for i in pool]), "hashed-char-3grams"
        chosen = [pool[j] for j in _diverse(u_all[pool], rep, m_unc)] if m_unc else []
        method = "uncertainty+diversity"
    else:
        pool, chosen, method = ranked[:m_unc], ranked[:m_unc], "uncertainty"
    if k_rand:
        method += "+random"
    picks = chosen + rand
    return TrainSample(tuple(frame_uids[i] for i in picks), method, n=m, pool_size=len(pool),
                       representation=name,
                       uncertainty={frame_uids[i]: float(u_all[i]) for i in picks},
                       random_share=k_rand / m if m else 0.0,
                       random_uids=tuple(frame_uids[i] for i in rand),
                       composition=comp(picks), **base)
