"""Language identification restricted to the configured languages.

Runs on the first ``lid_chars`` characters of the normalised text (URLs and mentions removed), so
a bilingual post gets the language it opens with. Not folded for homoglyphs (a Latin ``i`` in a
Cyrillic word is not counted as ``і``). Rules:

* fewer than ``min_chars`` letters (emoji-only, URL-only, digit-only, "ок") → ``und``, score 0;
* letters are counted per script. Georgian → ``ka``, Armenian → ``hy`` (score = share of letters in
  that script); a dominant script no configured language uses → ``und``;
* Cyrillic: a distinctive-letter fast path decides the clear cases. ``ы э ъ`` with none of
  ``і ї є ґ ў ә ғ қ ң ө ұ ү һ`` → ``ru``; ``і ї є ґ`` with ``и`` and none of ``ы э ъ ў`` nor Kazakh
  letters → ``uk`` (Belarusian has no ``и``; Kazakh always shows its own letters). Score
  ``1 - 0.1**n`` for *n* distinctive letters (max 0.999); the letters must be frequent enough
  (≥ 0.5 % / 2 % of Cyrillic letters) so one stray ``і`` cannot make a Russian post Ukrainian.
  Everything else goes to py3langid restricted to the configured Cyrillic languages (its
  length-calibrated posterior is the score); a single configured Cyrillic language just wins.
  Languages whose writing almost always shows letters of its own are left out when none of them
  appears: Belarusian (``і`` or ``ў``, and never ``и``), Kazakh (``ә ғ қ ң ө ұ ү һ і``), Kyrgyz
  (``ң ө ү``), Mongolian (``ө ү``), Tajik (``ғ ӣ қ ҳ ҷ ӯ``). Short Russian chat messages without
  ``ы э ъ`` otherwise often came out as one of those;
* Latin: py3langid over the configured Latin-script languages plus a guard set of common Latin
  languages (de fr es it pt pl tr nl …); when a guard language wins the result is ``und``.
"""

from __future__ import annotations

import copy
import re
import string
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

CYRILLIC_LANGS = frozenset({"ru", "uk", "be", "kk", "bg", "mk", "sr", "ky", "mn", "tg"})
LATIN_GUARD = ("en", "de", "fr", "es", "it", "pt", "pl", "tr", "nl", "cs", "ro", "uz", "az", "fi")
SCRIPT_LANGS = {"geo": "ka", "arm": "hy"}

_AS_LETTERS = string.ascii_letters.encode()
_FOREIGN = re.compile("[^\\W\\d_a-z\u0400-\u04ff]")  # a letter neither ASCII nor Cyrillic
_SCRIPTS = {
    "lat": re.compile("[\u00c0-\u024f]+"),
    "geo": re.compile("[\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f]+"),
    "arm": re.compile("[\u0531-\u058f\ufb13-\ufb17]+"),
    "other": re.compile(
        "[^\\W\\d_a-z\u00c0-\u024f\u0400-\u04ff\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f"
        "\u0531-\u058f\ufb13-\ufb17]+"
    ),
}
_MENTION = re.compile(r"(?<![\w@.])@\w+")


def script_counts(s: str) -> dict[str, int]:
    """Letters per script (``cyr`` ``lat`` ``geo`` ``arm`` ``other``); byte counts when possible."""
    b = s.encode()
    c = b.count
    cyr = c(b"\xd0") + c(b"\xd1") + c(b"\xd2") + c(b"\xd3")  # U+0400–04FF, 2 bytes each
    lat = len(b) - len(b.translate(None, _AS_LETTERS))
    counts = {"cyr": cyr, "lat": lat, "geo": 0, "arm": 0, "other": 0}
    if not s.isascii() and _FOREIGN.search(s):
        for name, rx in _SCRIPTS.items():
            counts[name] += sum(map(len, rx.findall(s)))
    return counts


def _score(n: int) -> float:
    return min(0.999, 1.0 - 0.1**n)


@lru_cache(maxsize=1)
def _base_identifier() -> Any:
    import py3langid.langid as pl

    return pl.LanguageIdentifier.from_modelpath(pl.MODEL_DIR / pl.MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=16)
def _identifier(langs: tuple[str, ...]) -> Any:
    base = _base_identifier()
    ident = copy.copy(base)
    ident.set_languages([lang for lang in langs if lang in set(base.nb_classes)])
    return ident


_DISTINCT_RE = re.compile("[ыэъіїєґўәғқңөұүһ]")
_RU_ONLY, _UK_ONLY = frozenset("ыэъ"), frozenset("їєґ")


def _cyrillic_fast(s: str, n_cyr: int) -> tuple[str, float] | None:
    found = _DISTINCT_RE.findall(s)  # one scan; usually a handful of letters
    if not found:
        return None
    n_ru = n_uk = n_i = 0
    for ch in found:
        if ch in _RU_ONLY:
            n_ru += 1
        elif ch in _UK_ONLY:
            n_uk += 1
        elif ch == "і":
            n_i += 1
        else:  # ў or a Kazakh letter
            return None
    if n_ru * 200 >= n_cyr and not n_i and not n_uk:  # ы+э+ъ ≈ 2.5% of Russian letters
        return "ru", _score(n_ru)
    if not n_ru and (n_i + n_uk) * 50 >= n_cyr and "и" in s:  # і+ї+є ≈ 7% of Ukrainian letters
        return "uk", _score(n_i + n_uk)
    return None


#: Letters one of which a text in the language (nearly) always shows.
_MARKERS = {"be": frozenset("іў"), "kk": frozenset("әғқңөұүһі"), "ky": frozenset("ңөү"),
            "mn": frozenset("өү"), "tg": frozenset("ғӣқҳҷӯ")}


def _plausible(cands: tuple[str, ...], s: str) -> tuple[str, ...]:
    """The candidates whose marker letters ``s`` shows (all of them if that leaves none)."""
    letters = set(s)
    kept = tuple(x for x in cands if x not in _MARKERS
                 or (not letters.isdisjoint(_MARKERS[x]) and not (x == "be" and "и" in letters)))
    return kept or cands


class Pending(NamedTuple):
    """A text the rules leave to py3langid, with the languages it may be."""

    text: str
    cands: tuple[str, ...]


def _rules(norm: str, languages: tuple[str, ...], min_chars: int,
           lid_chars: int) -> tuple[str, float] | Pending:
    """The decision when the rules settle it, else what py3langid must classify."""
    s = norm[: lid_chars + 40]
    if "<url>" in s:
        s = s.replace("<url>", " ")
    if "@" in s:
        s = _MENTION.sub(" ", s)
    s = s[:lid_chars]
    counts = script_counts(s)
    total = sum(counts.values())
    if total < min_chars or total == 0:
        return "und", 0.0
    script = max(counts, key=counts.__getitem__)
    n = counts[script]
    if script == "other" or n * 2 < total:  # mostly a script we do not model (CJK, Greek, …)
        return "und", 0.0
    if script in SCRIPT_LANGS:
        lang = SCRIPT_LANGS[script]
        return (lang, round(n / total, 4)) if lang in languages else ("und", 0.0)
    if script == "cyr":
        cands = tuple(x for x in languages if x in CYRILLIC_LANGS)
        if not cands:
            return "und", 0.0
        if "ru" in cands and "uk" in cands:
            fast = _cyrillic_fast(s, n)
            if fast is not None and fast[0] in cands:
                return fast
        cands = _plausible(cands, s)
        if len(cands) == 1:
            return cands[0], round(n / total, 4)
    else:
        configured = [x for x in languages if x not in CYRILLIC_LANGS and x not in SCRIPT_LANGS]
        if not configured:
            return "und", 0.0
        cands = tuple(dict.fromkeys([*configured, *LATIN_GUARD]))
    return Pending(s, cands)


def _verdict(lang: str, prob: float, languages: tuple[str, ...]) -> tuple[str, float]:
    return ("und", 0.0) if lang not in languages else (str(lang), round(float(prob), 4))


def detect(
    norm: str, languages: tuple[str, ...], min_chars: int, lid_chars: int
) -> tuple[str, float]:
    """``(lang, score)`` for normalised text; see the module doc for the rules."""
    r = _rules(norm, languages, min_chars, lid_chars)
    if not isinstance(r, Pending):
        return r
    lang, prob = _identifier(r.cands).classify(r.text)
    return _verdict(lang, prob, languages)


def detect_batch(norms: list[str], languages: tuple[str, ...], min_chars: int,
                 lid_chars: int) -> list[tuple[str, float]]:
    """:func:`detect` for many texts: those the rules leave open go to py3langid together,
    one vectorised pass per set of candidate languages."""
    out: list[tuple[str, float]] = []
    pending: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for i, norm in enumerate(norms):
        r = _rules(norm, languages, min_chars, lid_chars)
        if isinstance(r, Pending):
            out.append(("und", 0.0))
            pending.setdefault(r.cands, []).append((i, r.text))
        else:
            out.append(r)
    for cands, items in pending.items():
        found = classify_many(_identifier(cands), [t for _, t in items])
        for (i, _), (lang, prob) in zip(items, found, strict=True):
            out[i] = _verdict(lang, prob, languages)
    return out


@lru_cache(maxsize=1)
def _automaton() -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """py3langid's byte automaton as arrays: next state, row offsets, feature per state."""
    base = _base_identifier()
    return (np.asarray(base.tk_nextmove, dtype=np.int64),
            np.asarray(base._rowbase, dtype=np.int64),
            np.asarray(base.tk_output, dtype=np.int64))


def classify_many(ident: Any, texts: list[str]) -> list[tuple[str, float]]:
    """``[ident.classify(t) for t in texts]`` with the automaton walked for all texts at once
    (one NumPy step per byte position instead of a Python step per byte and text). The
    probabilities agree with py3langid's to float32 rounding."""
    if not texts:
        return []
    nextmove, rowbase, output = _automaton()
    enc = [ident._encode(t) for t in texts]
    lens = np.fromiter(map(len, enc), np.int64, len(enc))
    order = np.argsort(-lens, kind="stable")
    buf = np.zeros((len(enc), int(lens.max())), dtype=np.uint8)
    for row, j in enumerate(order.tolist()):
        buf[row, : lens[j]] = np.frombuffer(enc[j], dtype=np.uint8)
    sorted_lens = lens[order]
    state = np.zeros(len(enc), dtype=np.int64)
    rows, feats = [], []
    active = len(enc)
    for pos in range(buf.shape[1]):
        while active and sorted_lens[active - 1] <= pos:
            active -= 1
        st = nextmove[rowbase[state[:active]] + buf[:active, pos]]
        state[:active] = st
        f = output[st]
        hit = np.flatnonzero(f >= 0)
        rows.append(order[hit])
        feats.append(f[hit])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    f = np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64)
    counts = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, f)),
                           shape=(len(enc), ident.nb_ptc.shape[0]))
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    scores = np.asarray(counts @ ident.nb_ptc.astype(np.float32), dtype=np.float32)
    scores += ident.nb_pc
    scores[np.diff(counts.indptr) == 0] = 0.0  # no features: uniform, as py3langid does
    scores *= (1.0 / np.sqrt(np.maximum(lens, 1))).astype(np.float32)[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in ident._alias_pairs:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    return [(ident.nb_classes[k], float(scores[n, k])) for n, k in enumerate(best.tolist())]
