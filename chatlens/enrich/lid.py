"""Language identification restricted to the configured languages.

Runs on the first ``lid_chars`` characters of the normalised text, after removing what is not
words in a language: URLs, e-mail addresses, bare domains and file names, ``@mentions`` and
``#hashtags`` (a Russian caption tagged ``#breaking #news`` is Russian). Emoji, digits and
punctuation are not letters, so they never count. A long bilingual post gets the language of its
opening ``lid_chars`` characters. Not folded for homoglyphs (a Latin ``i`` in a Cyrillic word is
not counted as ``і``). Rules:

* fewer than ``min_chars`` letters (emoji-only, URL-only, digit-only, "ок") → ``und``, score 0,
  unless the script leaves a single configured language other than a Latin one: then
  :data:`MIN_LETTERS_ONE_LANGUAGE` letters are enough (Hebrew words are short: "קפה");
* letters are counted per script (:data:`SCRIPT_LANGS`: Latin, Cyrillic, Hebrew, Arabic, Greek,
  Georgian, Armenian, Devanagari, Bengali, Thai, CJK, Hangul, …). The script with most letters
  decides, except that a configured non-Latin script with at least a third of the letters wins
  over Latin (Latin words in a Cyrillic or Hebrew message are names, brands, titles, code). A
  dominant script no configured language is written in → ``und``. A script with one configured
  language gives that language (score = share of letters in that script); several go to
  py3langid restricted to them;
* Cyrillic: a distinctive-letter fast path decides the clear cases. ``ы э ъ`` with none of
  ``і ї є ґ ў ә ғ қ ң ө ұ ү һ`` → ``ru``; ``і ї є ґ`` with ``и`` and none of ``ы э ъ ў`` nor Kazakh
  letters → ``uk`` (Belarusian has no ``и``; Kazakh always shows its own letters). Score
  ``1 - 0.1**n`` for *n* distinctive letters (max 0.999); the letters must be frequent enough
  (≥ 0.5 % / 2 % of Cyrillic letters) so one stray ``і`` cannot make a Russian post Ukrainian.
  Everything else goes to py3langid restricted to the configured Cyrillic languages (its
  length-calibrated posterior is the score; Latin words are left out of its input); a single
  configured Cyrillic language just wins. Languages whose writing almost always shows letters
  of its own are left out when none of them appears: Belarusian (``і`` or ``ў``, and never
  ``и``), Kazakh (``ә ғ қ ң ө ұ ү һ і``), Kyrgyz (``ң ө ү``), Mongolian (``ө ү``), Tajik
  (``ғ ӣ қ ҳ ҷ ӯ``), Bashkir, Tatar. Short Russian chat messages without ``ы э ъ`` otherwise
  often came out as one of those;
* Latin: py3langid over the configured Latin-script languages plus a guard set of common Latin
  languages (de fr es it pt pl tr nl …); when a guard language wins the result is ``und``. The
  configured languages get a prior :data:`DECLARED_PRIOR` times the guard's, so a short message
  ("I was wondering", "Perfect") is read in the chat's language while a clearly German sentence
  in an English project still comes out ``und``.

:func:`supported_languages` (py3langid's languages that have a script here) is what a project may
declare; ``chatlens init --languages`` refuses anything else.
"""

from __future__ import annotations

import bisect
import copy
import math
import re
import string
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from numpy.typing import NDArray

from chatlens.textsafe import EMAIL_RE


def _codes(codes: str) -> frozenset[str]:
    return frozenset(codes.split())


#: py3langid's languages by the script they are written in (Serbian and Uzbek in two). One place:
#: :func:`supported_languages` and the script rules both read it.
SCRIPT_LANGS: dict[str, frozenset[str]] = {
    "lat": _codes(
        "ace af an az bcl br bs ca crh cs cy da de en eo es et eu ext fi fo fr fuv fy ga gcf gcr "
        "gd gl gug guw ha ht hr hu id ig is it jv kab kik ku la lb lg lij ln lt ltg lv mg ms mt "
        "nl nn no nso oc om pcm pl pt qu ro rw se sk sl sn so sq sr st sv sw tk tl tr uz vec vi "
        "vo wa xh yo zu"),
    "cyr": _codes("ru uk be kk bg mk sr ky mn tg ba tt uz"),
    "arab": _codes("ar ary arz fa ps ur ug sdh uzs"), "heb": _codes("he hbo"),
    "grek": _codes("el grc"), "deva": _codes("hi mr ne sa gom"), "beng": _codes("bn as"),
    "guru": _codes("pa"), "gujr": _codes("gu"), "orya": _codes("or"), "taml": _codes("ta"),
    "telu": _codes("te"), "knda": _codes("kn"), "mlym": _codes("ml"), "sinh": _codes("si"),
    "thai": _codes("th"), "laoo": _codes("lo"), "tibt": _codes("dz"), "mymr": _codes("my"),
    "geo": _codes("ka"), "ethi": _codes("am"), "khmr": _codes("km"), "arm": _codes("hy"),
    "cjk": _codes("zh ja wuu yue"), "hang": _codes("ko"),
}
CYRILLIC_LANGS = SCRIPT_LANGS["cyr"]
LATIN_GUARD = ("en", "de", "fr", "es", "it", "pt", "pl", "tr", "nl", "cs", "ro", "uz", "az", "fi")
#: Letters enough when the script leaves one configured language (Hebrew "קפה", Russian "да"):
#: ``min_chars`` is about telling languages apart, and there is nothing to tell apart then.
MIN_LETTERS_ONE_LANGUAGE = 2
#: How much likelier a configured Latin language is than a guard language before the text is read.
DECLARED_PRIOR = 300.0

#: First code point of each block of letters, and its script ("other": a script not modelled).
_BLOCKS: tuple[tuple[int, str], ...] = (
    (0x00C0, "lat"), (0x02B0, "other"), (0x0370, "grek"), (0x0400, "cyr"), (0x0530, "arm"),
    (0x0590, "heb"), (0x0600, "arab"), (0x0700, "other"), (0x0750, "arab"), (0x0780, "other"),
    (0x08A0, "arab"), (0x0900, "deva"), (0x0980, "beng"), (0x0A00, "guru"), (0x0A80, "gujr"),
    (0x0B00, "orya"), (0x0B80, "taml"), (0x0C00, "telu"), (0x0C80, "knda"), (0x0D00, "mlym"),
    (0x0D80, "sinh"), (0x0E00, "thai"), (0x0E80, "laoo"), (0x0F00, "tibt"), (0x1000, "mymr"),
    (0x10A0, "geo"), (0x1100, "hang"), (0x1200, "ethi"), (0x13A0, "other"), (0x1780, "khmr"),
    (0x1800, "other"), (0x1C90, "geo"), (0x1CC0, "other"), (0x1E00, "lat"), (0x1F00, "grek"),
    (0x2000, "other"), (0x2D00, "geo"), (0x2D30, "other"), (0x2E80, "cjk"), (0x3130, "hang"),
    (0x3190, "cjk"), (0xA000, "other"), (0xAC00, "hang"), (0xD7B0, "other"), (0xF900, "cjk"),
    (0xFB00, "lat"), (0xFB13, "arm"), (0xFB1D, "heb"), (0xFB50, "arab"), (0xFE00, "other"),
    (0xFE70, "arab"), (0xFF00, "other"), (0x20000, "cjk"), (0x30000, "other"),
)
_BLOCK_STARTS = [start for start, _ in _BLOCKS]

_AS_LETTERS = string.ascii_letters.encode()
# a run of letters neither ASCII nor in U+0400–04FF (those two are counted from the bytes)
_FOREIGN_RUN = re.compile("[^\\W\\d_a-zA-Z\u0400-\u04ff]+")
_TLDS = ("com|org|net|info|biz|io|me|ru|su|ua|by|kz|ge|am|uz|az|il|uk|us|de|fr|pl|tr|in|ae|qa|"
         "sa|eg|ke|tz|ng|za|ie|eu|co|tv|ly|gl|gg|app|dev|gov|edu|pdf|docx?|xlsx?|pptx?|jpe?g|png|"
         "gif|mp[34]|mov|zip|rar|exe|apk|html?|php")
# words that are not words of a language: e-mail addresses, bare domains and file names (each
# tried only where a word starts: the regex engine would otherwise retry inside every word)
_DOMAIN = re.compile(rf"(?<![\w.-])(?:[\w-]+\.)+(?:{_TLDS})\b(?:/\S*)?")
_DOMAIN_END = re.compile(rf"\.(?:{_TLDS})\b")  # a literal start: found by a fast scan
_MENTION = re.compile(r"(?<![\w@.])@\w+")
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_ASCII_WORDS = re.compile(r"\b[a-z]+\b")


@lru_cache(maxsize=1)
def supported_languages() -> frozenset[str]:
    """The languages language ID can return: py3langid's, each written in a script it knows."""
    model = set(_base_identifier().nb_classes)
    return frozenset(x for langs in SCRIPT_LANGS.values() for x in langs if x in model)


def script_counts(s: str) -> dict[str, int]:
    """Letters per script (``cyr``, ``lat``, and any of :data:`SCRIPT_LANGS` or ``other`` that
    occur); byte counts for ASCII and U+0400–04FF, one regex run per word of other letters."""
    b = s.encode()
    c = b.count
    cyr = c(b"\xd0") + c(b"\xd1") + c(b"\xd2") + c(b"\xd3")  # U+0400–04FF, 2 bytes each
    lat = len(b) - len(b.translate(None, _AS_LETTERS))
    counts = {"cyr": cyr, "lat": lat}
    if not s.isascii() and len(b) - len(s) != cyr:  # multi-byte characters that are not Cyrillic
        for run in _FOREIGN_RUN.findall(s):
            i = bisect.bisect_right(_BLOCK_STARTS, ord(run[0])) - 1
            script = _BLOCKS[i][1] if i >= 0 else "other"
            counts[script] = counts.get(script, 0) + len(run)
    return counts


def _score(n: int) -> float:
    return min(0.999, 1.0 - 0.1**n)


@lru_cache(maxsize=1)
def _base_identifier() -> Any:
    import py3langid.langid as pl

    return pl.LanguageIdentifier.from_modelpath(pl.MODEL_DIR / pl.MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=32)
def _identifier(langs: tuple[str, ...], boosted: tuple[str, ...] = ()) -> Any:
    """py3langid restricted to ``langs``, with ``boosted`` given :data:`DECLARED_PRIOR` times the
    prior of the others."""
    base = _base_identifier()
    ident = copy.copy(base)
    ident.set_languages([lang for lang in langs if lang in set(base.nb_classes)])
    if boosted:
        ident.nb_pc = ident.nb_pc.copy()
        for k, lang in enumerate(ident.nb_classes):
            if lang in boosted:
                ident.nb_pc[k] += math.log(DECLARED_PRIOR)
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
            "mn": frozenset("өү"), "tg": frozenset("ғӣқҳҷӯ"), "ba": frozenset("ҡғҙҫәөүһң"),
            "tt": frozenset("әөүҗңһ")}


def _plausible(cands: tuple[str, ...], s: str) -> tuple[str, ...]:
    """The candidates whose marker letters ``s`` shows (all of them if that leaves none)."""
    letters = set(s)
    kept = tuple(x for x in cands if x not in _MARKERS
                 or (not letters.isdisjoint(_MARKERS[x]) and not (x == "be" and "и" in letters)))
    return kept or cands


class Pending(NamedTuple):
    """A text the rules leave to py3langid, the languages it may be, and the configured ones
    among them when others (the Latin guard) compete."""

    text: str
    cands: tuple[str, ...]
    boosted: tuple[str, ...] = ()


def words_only(norm: str, lid_chars: int) -> str:
    """The first ``lid_chars`` characters of ``norm`` less URLs, e-mail addresses, domains, file
    names, mentions and hashtags (each replaced by a space)."""
    s = norm[: lid_chars + 80]
    if "<url>" in s:
        s = s.replace("<url>", " ")
    if "@" in s:
        s = _MENTION.sub(" ", EMAIL_RE.sub(" ", s))
    if "." in s and _DOMAIN_END.search(s):
        s = _DOMAIN.sub(" ", s)
    if "#" in s:
        s = _HASHTAG.sub(" ", s)
    return s[:lid_chars]


def _script(counts: dict[str, int], languages: tuple[str, ...], min_chars: int) -> str:
    """The script that decides (see the module doc)."""
    top = max(counts, key=counts.__getitem__)
    if top != "lat":
        return top
    total = sum(counts.values())
    for script, n in counts.items():
        if (script not in ("lat", "other") and n * 3 >= total and n >= min_chars
                and any(x in SCRIPT_LANGS[script] for x in languages)):
            return script  # at most two scripts hold a third each beside a leading Latin
    return top


def _rules(norm: str, languages: tuple[str, ...], min_chars: int,
           lid_chars: int) -> tuple[str, float] | Pending:
    """The decision when the rules settle it, else what py3langid must classify."""
    s = words_only(norm, lid_chars)
    counts = script_counts(s)
    total = sum(counts.values())
    if total == 0 or total < min(min_chars, MIN_LETTERS_ONE_LANGUAGE):
        return "und", 0.0
    script = _script(counts, languages, min_chars)
    if script == "other":
        return "und", 0.0
    n = counts[script]
    cands = tuple(x for x in languages if x in SCRIPT_LANGS[script])
    if not cands or (total < min_chars and script == "lat"):
        return "und", 0.0
    if script == "lat":
        guard = tuple(x for x in LATIN_GUARD if x not in cands)
        return Pending(s, (*cands, *guard), cands if guard else ())
    if script == "cyr":
        if "ru" in cands and "uk" in cands:
            fast = _cyrillic_fast(s, n)
            if fast is not None:
                return fast
        cands = _plausible(cands, s)
    if total < min_chars and len(cands) > 1:
        return "und", 0.0
    if len(cands) == 1:
        return cands[0], round(n / total, 4)
    if counts["lat"]:
        s = _ASCII_WORDS.sub(" ", s)  # names, brands, code: no evidence for this script
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
    lang, prob = _identifier(r.cands, r.boosted).classify(r.text)
    return _verdict(lang, prob, languages)


def detect_batch(norms: list[str], languages: tuple[str, ...], min_chars: int,
                 lid_chars: int) -> list[tuple[str, float]]:
    """:func:`detect` for many texts (see :func:`detect_column`)."""
    langs, scores = detect_column(pa.array(norms, pa.string()), languages, min_chars, lid_chars)
    return list(zip(langs.to_pylist(), scores.to_pylist(), strict=True))


def detect_column(norms: pa.Array, languages: tuple[str, ...], min_chars: int,
                  lid_chars: int) -> tuple[pa.Array, pa.Array]:
    """:func:`detect` of each text: languages and (float32) scores.

    The clear cases are settled on the whole column (:func:`_column_rules`); the rest go
    through :func:`_rules` one by one, and what those leave open goes to py3langid together,
    one vectorised pass per set of candidate languages. Null text counts as ""."""
    norms = pc.fill_null(norms, "")
    labels = ["und", *languages]
    index = {lang: k for k, lang in enumerate(labels)}
    code, score, decided = _column_rules(norms, languages, min_chars, lid_chars)
    rest = np.flatnonzero(~decided)
    pending: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[int, str]]] = {}
    for i, norm in zip(rest.tolist(), norms.take(pa.array(rest)).to_pylist(), strict=True):
        r = _rules(norm, languages, min_chars, lid_chars)
        if isinstance(r, Pending):
            pending.setdefault((r.cands, r.boosted), []).append((i, r.text))
        else:
            code[i], score[i] = index[r[0]], r[1]
    for (cands, boosted), items in pending.items():
        found = classify_many(_identifier(cands, boosted), [t for _, t in items])
        for (i, _), (lang, prob) in zip(items, found, strict=True):
            verdict = _verdict(lang, prob, languages)
            code[i], score[i] = index[verdict[0]], verdict[1]
    return (pa.array(labels, pa.string()).take(pa.array(code)),
            pa.array(score.astype(np.float32), pa.float32()))


#: Classes of the characters :func:`_column_rules` counts: ASCII letters, and the letters of
#: U+0400–04FF (two bytes each in UTF-8) split by what :func:`_cyrillic_fast` reads.
_LAT, _CYR, _CYR_RU, _CYR_UK, _CYR_I, _CYR_OTHER, _CYR_IE = range(7)


@lru_cache(maxsize=1)
def _cyrillic_classes() -> NDArray[np.int64]:
    """The class of each character of U+0400–04FF."""
    special = {**dict.fromkeys("ыэъ", _CYR_RU), **dict.fromkeys("їєґ", _CYR_UK), "і": _CYR_I,
               **dict.fromkeys("ўәғқңөұүһ", _CYR_OTHER), "и": _CYR_IE}
    return np.array([special.get(chr(0x400 + k), _CYR) for k in range(256)], dtype=np.int64)


@lru_cache(maxsize=1)
def _foreign_letter() -> str:
    """RE2 pattern of one letter :func:`script_counts` would count in some other script."""
    from chatlens.enrich.columnar import py_class

    return f"[{py_class(_FOREIGN_RUN.pattern[:-1])}]"


_FAST_SCORES = np.array([_score(k) for k in range(12)])  # by letters found; 0.999 from 3 on


def _column_rules(norms: pa.Array, languages: tuple[str, ...], min_chars: int, lid_chars: int,
                  ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`_rules` on the whole column where it is exact and needs no model: texts whose
    :func:`words_only` is just the URL placeholder removed (no ``@``, ``#`` or possible
    domain) and whose letters are ASCII or U+0400–04FF, decided by the letter counts (``und``)
    or the Cyrillic fast path. Returns per text the index into ``("und", *languages)``, the
    score, and whether it was decided here."""
    n = len(norms)
    code, score = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float64)
    head = pc.utf8_slice_codeunits(norms, 0, lid_chars + 80)
    plain = pc.invert(pc.match_substring_regex(head, f"[@#]|\\.(?:{_TLDS})"))
    words = pc.utf8_slice_codeunits(pc.replace_substring(head, "<url>", " "), 0, lid_chars)
    plain = pc.and_(plain, pc.invert(pc.match_substring_regex(words, _foreign_letter())))
    counts = _letter_counts(words)
    lat, cyr = counts[:, _LAT], counts[:, _CYR:].sum(axis=1)
    total = lat + cyr
    ok = np.asarray(plain, dtype=bool)
    und = total < max(1, min(min_chars, MIN_LETTERS_ONE_LANGUAGE))
    cyr_langs = [x for x in languages if x in CYRILLIC_LANGS]
    # the script that decides: Cyrillic on a tie (it is counted first) or with a third beside
    # a leading Latin (the only other script these texts can have)
    is_cyr = (cyr >= lat) | ((cyr * 3 >= total) & (cyr >= min_chars) & bool(cyr_langs))
    lat_langs = [x for x in languages if x in SCRIPT_LANGS["lat"]]
    und |= ~is_cyr & ((total < min_chars) | (not lat_langs))
    und |= is_cyr & (not cyr_langs)
    decided = ok & und
    if "ru" in cyr_langs and "uk" in cyr_langs:
        n_ru, n_uk, n_i = counts[:, _CYR_RU], counts[:, _CYR_UK], counts[:, _CYR_I]
        fast = ok & ~und & is_cyr & (counts[:, _CYR_OTHER] == 0)
        ru = fast & (n_ru > 0) & (n_ru * 200 >= cyr) & (n_i == 0) & (n_uk == 0)
        uk = (fast & (n_ru == 0) & (n_i + n_uk > 0) & ((n_i + n_uk) * 50 >= cyr)
              & (counts[:, _CYR_IE] > 0))
        code[ru], score[ru] = 1 + languages.index("ru"), _FAST_SCORES[np.minimum(n_ru[ru], 11)]
        k_uk = np.minimum(n_i[uk] + n_uk[uk], 11)
        code[uk], score[uk] = 1 + languages.index("uk"), _FAST_SCORES[k_uk]
        decided |= ru | uk
    return code, score, decided


def _letter_counts(texts: pa.Array) -> NDArray[np.int64]:
    """Per text and class (:data:`_LAT` …), how many characters it has (NumPy over the
    UTF-8 bytes: a U+0400–04FF character starts with a byte D0–D3 and no other does)."""
    n = len(texts)
    out = np.zeros((n, 7), dtype=np.int64)
    bufs = texts.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[texts.offset: texts.offset + n + 1] \
        if n else np.zeros(1, dtype=np.int32)
    if bufs[2] is None or offsets[-1] == offsets[0]:
        return out
    raw = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    rel = (offsets - offsets[0]).astype(np.int64)
    empty = rel[1:] == rel[:-1]
    starts = np.minimum(rel[:-1], raw.size - 1)

    def per_text(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        sums = np.add.reduceat(mask, starts, dtype=np.int64)  # an empty text: its next byte
        sums[empty] = 0
        return sums

    out[:, _LAT] = per_text(((raw | 0x20) - 97) < 26)
    lead = (raw & 0xFC) == 0xD0
    pos = np.flatnonzero(lead)
    cls = _cyrillic_classes()[((raw[pos] & 3) << 6) | (raw[pos + 1] & 0x3F)]
    special = np.flatnonzero(cls != _CYR)
    row = np.searchsorted(rel, pos[special], side="right") - 1
    out += np.bincount(row * 7 + cls[special], minlength=7 * n).reshape(n, 7)
    out[:, _CYR] = per_text(lead) - out[:, _CYR_RU:].sum(axis=1)
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
