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

A *training* sample picks items that should improve a model (uncertainty, then diversity). It is
recorded as such and never counts as an audit sample; it excludes the audit uids it is given.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
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
    """Items picked to improve a model; never audit items. ``uids`` in selection order."""

    uids: tuple[str, ...]
    method: str  # random | uncertainty | uncertainty+diversity
    seed: int
    frame_size: int
    n_requested: int
    n: int
    excluded: int  # frame uids left out because they are in ``exclude`` (audit items)
    pool_size: int
    representation: str | None = None
    uncertainty: dict[str, float] = field(default_factory=dict)
    kind: Literal["train"] = "train"
    rng: str = RNG

    def as_dict(self) -> dict[str, Any]:
        """The selection and how it was made as plain JSON-able data."""
        d = asdict(self)
        d["uids"] = list(self.uids)
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


def draw_train(frame_uids: Sequence[str], scores: ArrayLike | None, n: int, seed: int,
               exclude: Collection[str] = frozenset(), texts: Sequence[str] | None = None,
               vectors: ArrayLike | None = None, pool_factor: int = 5) -> TrainSample:
    """Pick up to ``n`` training items from the frame, never one in ``exclude``.

    ``scores`` (aligned with ``frame_uids``) are P(positive) per item or a probability matrix;
    without them the pick is random. With them the ``pool_factor·n`` most uncertain items form a
    pool (ties broken at random by seed); with ``texts`` (hashed character 3-grams) or
    ``vectors`` the pool is thinned greedily for uncertainty and diversity, otherwise the most
    uncertain are taken. Asking for more items than remain gives all of them.
    """
    _check_frame(frame_uids)
    excl = set(exclude)
    keep = [i for i, u in enumerate(frame_uids) if u not in excl]
    m = min(max(n, 0), len(keep))
    base: dict[str, Any] = {"seed": seed, "frame_size": len(frame_uids), "n_requested": n,
                            "excluded": len(frame_uids) - len(keep)}
    if scores is None:
        picks = [i for _, _, i in heapq.nsmallest(
            m, ((prn(seed, frame_uids[i]), frame_uids[i], i) for i in keep))]
        return TrainSample(tuple(frame_uids[i] for i in picks), "random", n=m,
                           pool_size=len(keep), **base)
    u_all = uncertainty(scores)
    if len(u_all) != len(frame_uids):
        raise UsageError(f"{len(u_all)} scores for {len(frame_uids)} frame uids")
    idx = np.asarray(keep, dtype=np.int64)
    keys = np.fromiter((prn(seed, frame_uids[i]) for i in keep), dtype=np.uint64, count=len(keep))
    # most uncertain first, random order (by seed) within ties; a key tie (p = 2^-64) is broken
    # by frame position
    ranked = idx[np.lexsort((keys, -u_all[idx]))].tolist()
    rep: NDArray[np.float64] | None = None
    name: str | None = None
    if vectors is not None or texts is not None:
        pool = ranked[:min(len(ranked), max(m, pool_factor * m))]
        if vectors is not None:
            rep, name = np.asarray(vectors, dtype=np.float64)[pool], "vectors"
        else:
            assert texts is not None
            rep, name = hashed_ngrams([texts[i] for i in pool]), "hashed-char-3grams"
        picks = [pool[j] for j in _diverse(u_all[pool], rep, m)] if m else []
        method = "uncertainty+diversity"
    else:
        pool, picks, method = ranked[:m], ranked[:m], "uncertainty"
    return TrainSample(tuple(frame_uids[i] for i in picks), method, n=m, pool_size=len(pool),
                       representation=name,
                       uncertainty={frame_uids[i]: float(u_all[i]) for i in picks}, **base)
