"""How plausible a decoded text is for a project's languages: the judge behind
:mod:`chatlens.ingest.encoding`.

A reading's non-ASCII characters are sorted into letters of the declared languages' alphabets,
neutral characters (punctuation, symbols, emoji) and out-of-place ones (letters of other
alphabets or scripts, C0/C1 controls, private use, box drawing). Mojibake signatures, symbols
glued to words, inverted letter case and words in two scripts count against it too. Cyrillic
letters are also scored by their frequency in the likeliest declared language, and letter pairs
by a Russian bigram model (``cyrillic_bigrams.json``, built by
``bench/build_cyrillic_bigrams.py`` from CC BY 4.0 data). Evidence is in nats, so that the
difference between two readings of the same bytes is roughly their log-likelihood ratio.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

PLAUSIBLE = 0.06  # highest share of out-of-place characters a chosen reading may have
ODD_WEIGHT = 8.0  # nats per out-of-place character (a letter costs about 3.2 nats)
_RU = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
_HE = "\u05d0-\u05ea\u05b0-\u05c7\u05f0-\u05f4"  # letters, points, ligatures
#: Lower-case letters (beyond ASCII) each language writes; a range is "a-b".
ALPHABETS: dict[str, str] = {
    "ru": _RU, "bg": _RU, "uk": _RU + "ґєії", "be": _RU + "іў",
    "kk": _RU + "әғқңөұүһі", "ky": _RU + "ңөү", "tt": _RU + "әөүҗңһ", "ba": _RU + "ғҙҡңөҫүһә",
    "mn": _RU + "өү", "tg": _RU + "ғӣқӯҳҷ", "sr": "абвгдђежзијклљмнњопрстћуфхцчџшčćđšž",
    "mk": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
    "he": _HE, "yi": _HE,
    "ar": "\u0621-\u065f\u0660-\u0669\u0670-\u06d3", "fa": "\u0621-\u065f\u067e\u0686\u0698"
    "\u06a9\u06af\u06cc\u06f0-\u06f9", "ur": "\u0621-\u065f\u0670-\u06d3",
    "el": "\u0386-\u03ce", "ka": "\u10d0-\u10ff\u1c90-\u1cbf", "hy": "\u0531-\u0587",
    "zh": "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef",
    "ja": "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef",
    "ko": "\u1100-\u11ff\u3000-\u303f\u3130-\u318f\uac00-\ud7af\u4e00-\u9fff\uff00-\uffef",
    "hi": "\u0900-\u097f", "th": "\u0e00-\u0e7f",
    "en": "éèàçïü", "de": "äöüß", "fr": "àâæçéèêëîïôœùûüÿ", "es": "áéíñóúü", "it": "àèéìíòóù",
    "pt": "áâãàçéêíóôõú", "pl": "ąćęłńóśźż", "cs": "áčďéěíňóřšťúůýž", "sk": "áäčďéíĺľňóôŕšťúýž",
    "tr": "çğıöşüâî", "az": "çəğıöşü", "ro": "ăâîșțşţ", "hu": "áéíóöőúüű", "nl": "éëïóöü",
    "sv": "åäöé", "da": "æøåé", "no": "æøåé", "nb": "æøåé", "fi": "äöå", "et": "äöõüšž",
    "lv": "āčēģīķļņšūž", "lt": "ąčęėįšųūž", "hr": "čćđšž", "sl": "čšž", "bs": "čćđšž",
    "sq": "çë", "uz": "ʻ", "vi": "\u00c0-\u01b0\u1ea0-\u1ef9",
}
DEFAULT_LANGUAGES = ("ru", "uk", "en", "ka", "kk", "hy", "be")  # = chatlens.enrich's default

# Non-ASCII characters that count neither for nor against a reading: spaces, punctuation,
# symbols, emoji, combining marks (their presence says nothing about the encoding).
_NEUTRAL = ("\u00a0\u00ab\u00bb\u00a9\u00ae\u00b0\u00b1\u00b7\u00d7\u00f7\u00ad\u00a7\u00b2"
            "\u00b3\u00bd\u00bc\u00be\u00a3\u00a5\u00a2\u00b5\u00b4\u00b6\u00ba\u00aa\u00bf"
            "\u00a1\u0300-\u036f\u02b9-\u02dd\u2000-\u206f"  # general punctuation, bidi marks
            "\u2070-\u209f\u20a0-\u20cf\u20e3\u2100-\u214f"
            "\u2150-\u218f\u2190-\u21ff\u2200-\u22ff\u2300-\u23ff\u25a0-\u25ff\u2600-\u27ff"
            "\u2900-\u2bff\u3000-\u3003\ufe00-\ufe0f\ufeff\U0001f000-\U0001faff")
def _signatures() -> frozenset[str]:
    """Character pairs that UTF-8 (or GB18030) text read in a single-byte code page shows."""
    cont = {*bytes(range(0x80, 0xC0)).decode("cp1252", "ignore"), *map(chr, range(0x80, 0xC0))}
    pairs = {a + b for a in map(chr, range(0xC2, 0xE0)) for b in cont}  # 2-byte, cp1252/latin-1
    pairs |= {"\u00e2\u20ac", "\u00e2\u0080"}  # E2 80 xx (punctuation), cp1252/latin-1
    latin = [*map(chr, range(0xA0, 0x100)), *"\u0152\u0153\u0160\u0161\u0178\u017d\u017e"]
    pairs |= {a + b for a in "\u00a7\u00a8" for b in latin}  # GB18030 rows 7-8 (Cyrillic)
    for enc in ("cp1251", "mac-cyrillic", "koi8-r", "cp866"):  # UTF-8 Cyrillic (D0/D1 + cont)
        leads = bytes([0xD0, 0xD1]).decode(enc)
        conts = bytes(range(0x80, 0xC0)).decode(enc, "ignore")
        # real text has "—Да" (mac-cyrillic reads D0/D1 as dashes, 80-9F as capitals) and
        # "«СССР»" (cp1251 reads AB/BB as quotes)
        pairs |= {a + b for a in leads for b in conts
                  if not (a in "–—" and b.isupper()) and b not in "«»"}
    return frozenset(pairs)


_MOJIBAKE = _signatures()
_LEADS = "".join(sorted({p[0] for p in _MOJIBAKE}))
_MOJIBAKE_LEAD = re.compile(f"([{re.escape(_LEADS)}])(?=(.))", re.DOTALL)
_NEUTRAL_RE = re.compile(f"[{_NEUTRAL}]")
#: Symbols that a word never starts with: one directly before a lower-case letter is a letter
#: misread (a capital of one code page is often a symbol in another).
_GLUED = set("\u201a\u2026\u2020\u2021\u20ac\u2030\u2122\u2022\u00ac\u00a6\u00a4"
             "\u00b1\u00b0\u00b5\u00b6\u00b7\u00a9\u00ae\u00a7\u00bf\u00a1\u00f7\u00d7"
             "\u221a\u2248\u2206\u2260\u2264\u2265\u221e\u2202\u2211\u220f\u222b")
_NO_START = "\u2019\u201d\u00bb\u203a\u2013\u2014"  # closing quotes, dashes: not before one
_NO_END = "\u00ab\u201e\u2039"  # opening quotes: never right after one
#: Cyrillic letter frequencies: each letter's log-probability comes from its rank in
#: charset-normalizer's tables (Zipf, 1 / (rank + 3)). Real Russian or Ukrainian text averages
#: about -3.24 per letter and stays above -3.45; read in the wrong Cyrillic code page (koi8-r
#: for cp1251, …) it averages about -3.7. Letters below LOG_FLOOR on average count against it.
_FREQ_NAMES = {"ru": "Russian", "uk": "Ukrainian", "bg": "Bulgarian", "kk": "Kazakh",
               "sr": "Serbian"}
LOG_FLOOR = -3.45
FIT_TOP = -3.0  # about what real text scores: a reading pays per letter below it
#: Letter pairs: Russian text averages about -2.5 per pair (Ukrainian, scored with Russian
#: pairs, about -3.4); a reading in the wrong code page -4.2 to -5.2. Below FLOW_FLOOR (over at
#: least 24 letters) a reading is not chosen.
FLOW_FLOOR = -4.3
NO_FIT = -4.6  # what a reading without Cyrillic letters scores where another has them
BIGRAM_SPAN = 4096
BIGRAM_UNSEEN = -8.0
FOREIGN = 0.01  # weight of a letter outside the language's alphabet (relative to the rarest)
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Reading:
    """One candidate's reading of a sample, judged: ``bad`` is the evidence against it."""

    encoding: str
    text: str
    non_ascii: int  # non-ASCII characters (and C0 controls): the evidence
    letters: int  # letters of the declared languages' alphabets
    odd: int  # characters unlikely for the project (other scripts, controls, box drawing, …)
    mojibake: int  # signature matches, and symbols glued to a word
    flips: int  # lower-case then upper-case letter in a word, or a word in two scripts
    inverted: float  # excess of upper-case letters when the case looks inverted
    cyrillic: int  # Cyrillic letters of the declared alphabets
    fit: float  # their mean log-probability in the likeliest declared language
    pairs: int = 0  # letter pairs scored by the bigram model (0: not scored)
    flow: float = 0.0  # their mean log-probability (Russian letter pairs)
    # the most letters and pairs any reading of the same bytes has: a reading that turns
    # letters into symbols still answers for them (set by _rank)
    ref_letters: int = 0

    @property
    def rare(self) -> float:
        """Log-likelihood of the Cyrillic letters against real text's (in nats, negative when
        likelier) in the likeliest declared language: the difference between two readings is
        their likelihood ratio. (Letter pairs, known for Russian only, judge plausibility
        only.)"""
        if self.ref_letters < 12:
            return 0.0
        fit = self.fit if self.cyrillic else NO_FIT
        return (FIT_TOP - fit) * self.ref_letters

    @property
    def acceptable(self) -> bool:
        """Plausible enough to be chosen: few out-of-place characters, and not what
        verification would reject (inverted case, letters or letter pairs no real text has)."""
        pairs_ok = self.cyrillic < 24 or self.pairs == 0 or self.flow >= FLOW_FLOOR
        return self.oddness <= PLAUSIBLE and pairs_ok and self.misread <= 2 * PLAUSIBLE

    @property
    def hard(self) -> float:
        """Evidence against the reading that letter frequencies do not explain, in nats."""
        return ODD_WEIGHT * (self.odd + 2 * self.mojibake + self.flips) + self.inverted

    @property
    def bad(self) -> float:
        return self.hard + self.rare

    @property
    def misread(self) -> float:
        """Share of evidence that this is not the text's encoding, for long windows: out of
        place characters, and letters less likely than any real text's."""
        floor = max(0.0, LOG_FLOOR - self.fit) * self.cyrillic if self.cyrillic >= 12 else 0.0
        if self.pairs >= 200:
            floor += max(0.0, FLOW_FLOOR + 0.3 - self.flow) * self.pairs
        return self.oddness + (self.inverted + floor) / self.non_ascii if self.non_ascii \
            else 0.0

    @property
    def oddness(self) -> float:
        """The share of characters that are out of place whatever the language's letter
        frequencies (short real texts can have unusual ones)."""
        return (self.odd + 2 * self.mojibake + self.flips) / self.non_ascii \
            if self.non_ascii else 0.0


@dataclass(frozen=True, slots=True)
class _Judge:
    """Compiled character classes for one set of declared languages."""

    letters: re.Pattern[str]
    lower: re.Pattern[str]
    upper: re.Pattern[str]
    logp: list[dict[str, float]]  # per language: log-probability of each Cyrillic letter
    glued: tuple[re.Pattern[str], ...]  # a symbol glued to a word that never is
    flips: tuple[re.Pattern[str], ...]


def _expand(spec: str) -> str:
    """The characters of an alphabet spec ("a-b" ranges allowed)."""
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(map(chr, range(ord(spec[i]), ord(spec[i + 2]) + 1)))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


@cache
def _judge(languages: tuple[str, ...]) -> _Judge:
    chars: set[str] = set()
    for lang in languages:
        for ch in _expand(ALPHABETS.get(lang, "")):
            chars.update(c for c in (ch, ch.upper(), ch.lower()) if len(c) == 1)
    chars = {c for c in chars if ord(c) > 0x7F}

    def klass(s: set[str] | str) -> str:
        return f"[{re.escape(''.join(sorted(s)))}]" if s else "[^\\s\\S]"

    lower = {c for c in chars if c.islower()}
    upper = {c for c in chars if c.isupper()}
    other = klass({c for c in chars if c.isalpha() and not "\u00c0" <= c <= "\u024f"})
    # flips: inverted case, and a word in two scripts (Latin and another)
    return _Judge(
        letters=re.compile(klass(chars)), lower=re.compile(klass(lower)),
        upper=re.compile(klass(upper)),
        logp=_logp(languages, {c for c in lower if "\u0400" <= c <= "\u052f"}),
        glued=(re.compile(f"{klass(_GLUED)}{klass(lower)}"),
               re.compile(f"{klass(_NO_START)}(?<![\\w{re.escape(''.join(chars))}]."
                          f"){klass(lower)}"),
               re.compile(f"{klass(chars)}{klass(_GLUED | set(_NO_END))}"),
               re.compile(f"{klass(chars)}[\u2013\u2014]{klass(chars)}")),  # UTF-8 as mac
        flips=(re.compile(f"[a-z{re.escape(''.join(sorted(lower)))}]{klass(upper)}"),
               re.compile(f"[A-Za-z]{other}"), re.compile(f"{other}[A-Za-z]")),
    )


def _logp(languages: tuple[str, ...], letters: set[str]) -> list[dict[str, float]]:
    """For each declared Cyrillic language, a distribution over ``letters`` (the Cyrillic
    letters of all declared alphabets): Zipf by the letter's rank in the language's frequency
    table (Russian's for a language without one); letters outside its alphabet are rare."""
    from charset_normalizer.constant import FREQUENCIES

    out = []
    for lang in languages:
        own = {c for c in _expand(ALPHABETS.get(lang, "")) if "\u0400" <= c <= "\u052f"}
        if not own:
            continue
        table = FREQUENCIES[_FREQ_NAMES.get(lang, "Russian")]
        weight = {c: (1 / ((table.index(c) if c in table else 30) + 3)) if c in own else
                  FOREIGN / 33 for c in letters}
        total = sum(weight.values())
        out.append({c: math.log(w / total) for c, w in weight.items()})
    return out


def _count(pattern: re.Pattern[str], text: str) -> int:
    return len(text) - len(pattern.sub("", text))


@cache
def _bigrams() -> dict[str, float]:
    """Russian letter-pair log-probabilities (bench/build_cyrillic_bigrams.py; CC BY 4.0 data)."""
    from importlib.resources import files

    data = json.loads(files("chatlens.ingest").joinpath("cyrillic_bigrams.json").read_text(
        "utf-8"))
    return {k: float(v) for k, v in data["logp"].items()}


_NOT_LETTER = re.compile("[^абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў\u0400-\u052f]+")
_OTHER_LETTER = re.compile("[^абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў_]")


def _flow(text: str) -> tuple[int, float]:
    """(pairs, mean log-probability) of the letter pairs of ``text`` (at most BIGRAM_SPAN
    characters are scored), word boundaries included."""
    seq = "_" + _OTHER_LETTER.sub("?", _NOT_LETTER.sub("_", text[:BIGRAM_SPAN].lower())) + "_"
    counts = Counter(map(operator.add, seq, seq[1:]))
    counts.pop("__", None)
    n = sum(counts.values())
    if n == 0:
        return 0, 0.0
    logp = _bigrams()
    return n, sum(c * logp.get(k, BIGRAM_UNSEEN) for k, c in counts.items()) / n


def _mojibake(text: str) -> int:
    return sum(1 for a, b in _MOJIBAKE_LEAD.findall(text) if a + b in _MOJIBAKE)


def judge(text: str, languages: Sequence[str], encoding: str = "") -> Reading:
    """How plausible ``text`` is for a project in ``languages`` (see the module docstring)."""
    j = _judge(tuple(languages) or DEFAULT_LANGUAGES)
    controls = _count(_CONTROLS, text)  # C0 controls are odd though ASCII
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    letters = _count(j.letters, text)
    odd = max(0, non_ascii - letters - _count(_NEUTRAL_RE, text)) + controls
    lower, upper = _count(j.lower, text), _count(j.upper, text)
    flips = sum(len(p.findall(text)) for p in j.flips)
    cased = lower + upper
    inverted = 0.0
    if (flips and cased >= 8 and upper > 0.6 * cased) or (cased >= 40 and upper > 0.8 * cased):
        inverted = 0.5 * (upper - 0.6 * cased)  # inverted case, or a whole text in capitals
    fit, n = 0.0, 0
    if j.logp:
        counts = Counter(text.lower())
        n = sum(counts[c] for c in j.logp[0])
        if n:  # mean log-probability of the letters in the likeliest declared language
            fit = max(sum(counts[c] * lp for c, lp in logp.items()) for logp in j.logp) / n
    pairs, flow = _flow(text) if n >= 12 else (0, 0.0)
    return Reading(encoding, text, non_ascii + controls, letters, odd,
                   _mojibake(text) + sum(len(p.findall(text)) for p in j.glued), flips,
                   inverted, n, fit, pairs, flow)
