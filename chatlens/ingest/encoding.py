"""Text encodings: the one place where every text importer's decoding is decided and checked.

:func:`resolve` decides a source's encoding from a bounded sample, then verifies the whole source
before a single record is read, so a source is either decoded exactly or refused with an
:class:`~chatlens.errors.EncodingError`; garbled text is never stored. The rules, in order:

1. ``--encoding NAME`` (``ParseOptions.encoding``) is used as given; only undecodable bytes stop
   it. It is the user's override when detection refuses.
2. A byte-order mark (UTF-8/16/32) declares the encoding.
3. NUL bytes in the sample: UTF-16/32 without a BOM, little- or big-endian, judged as in 5.
4. A sample that is valid UTF-8 is UTF-8. If a later byte is not, its neighbourhood joins the
   sample and the source is judged as in 5.
5. The legacy encodings of the project's languages (:data:`LEGACY`; ``cp1251``, ``koi8-r``,
   ``cp866`` … for ``ru``), plus ``gb18030`` and ``cp1252``, each decode the sample; a reading
   is judged by its non-ASCII characters (:func:`judge`): letters of the declared languages'
   alphabets count for it; letters of other alphabets or scripts, C1 controls, private-use and
   box-drawing characters, mojibake signatures (``Ð``/``Ñ``/``Ã`` + a UTF-8 continuation
   character, ``â€``, ``§`` + a Latin-1 letter, ``Р``/``С`` + a cp1251 continuation character),
   an inverted letter case (``пРИВЕТ``, most of the letters upper-case) and rare letters count
   against it. Candidates reading the sample identically are one reading. The best reading wins
   only when it is plausible and clearly better than the next; otherwise the source is refused,
   and the error lists how each candidate reads the sample.
6. Every part of the source must then decode strictly, and no window of it may look like
   mojibake (nor, for a detected legacy encoding, like a different encoding), or the source is
   refused before anything from it is stored.
"""

from __future__ import annotations

import codecs
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import IO

from chatlens.errors import EncodingError, UsageError
from chatlens.ingest.base import Member, ParseOptions

SAMPLE = 256 << 10  # bytes of a source the decision is made from
AROUND = 64 << 10  # bytes either side of the first non-UTF-8 byte added to the sample
CHUNK = 1 << 20  # verification reads this much at a time
WINDOW = 32 << 10  # and judges the text this many characters at a time
PLAUSIBLE = 0.06  # highest share of out-of-place characters a chosen reading may have
MIN_GAP = 2.0  # nats of evidence by which the chosen reading must beat the next one
ODD_WEIGHT = 8.0  # nats per out-of-place character (a letter costs about 3.2 nats)
MIN_EVIDENCE = 24  # non-ASCII characters a verification window needs before it is judged
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
WIDE = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")

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
#: Legacy (pre-Unicode) encodings tried for each language, most common first. Georgian
#: (georgian-ps, -academy) and Armenian (armscii-8) code pages have no Python codec.
LEGACY: dict[str, tuple[str, ...]] = {
    "ru": ("cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5"),
    "uk": ("cp1251", "koi8-u", "cp866", "cp1125", "mac-cyrillic", "iso8859-5"),
    "be": ("cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5"),
    "bg": ("cp1251", "cp866", "mac-cyrillic", "iso8859-5", "koi8-r"),
    "kk": ("cp1251", "kz1048", "ptcp154"), "ky": ("cp1251",), "tt": ("cp1251",),
    "ba": ("cp1251",), "mn": ("cp1251",), "tg": ("cp1251", "koi8-t"),
    "sr": ("cp1251", "iso8859-5", "cp1250"), "mk": ("cp1251", "iso8859-5"),
    "he": ("cp1255", "iso8859-8", "cp862"), "yi": ("cp1255",),
    "ar": ("cp1256", "iso8859-6", "cp720"), "fa": ("cp1256",), "ur": ("cp1256",),
    "el": ("cp1253", "iso8859-7"), "tr": ("cp1254", "iso8859-9"), "az": ("cp1254",),
    "pl": ("cp1250", "iso8859-2"), "cs": ("cp1250", "iso8859-2"), "sk": ("cp1250", "iso8859-2"),
    "hu": ("cp1250", "iso8859-2"), "ro": ("cp1250", "iso8859-16"), "hr": ("cp1250", "iso8859-2"),
    "sl": ("cp1250", "iso8859-2"), "bs": ("cp1250", "iso8859-2"), "sq": ("cp1250", "cp1252"),
    "et": ("cp1257", "iso8859-13"), "lv": ("cp1257", "iso8859-13"),
    "lt": ("cp1257", "iso8859-13"), "zh": ("gb18030", "big5"), "ja": ("cp932", "euc-jp"),
    "ko": ("cp949",), "th": ("cp874",), "vi": ("cp1258",),
}
WESTERN = ("cp1252", "iso8859-15", "mac-roman")  # any other Latin-script language
ALWAYS = ("gb18030", "cp1252")  # tried for every project (GB18030 also encodes Cyrillic)
DEFAULT_LANGUAGES = ("ru", "uk", "en", "ka", "kk", "hy", "be")  # = chatlens.enrich's default

# Non-ASCII characters that count neither for nor against a reading: spaces, punctuation,
# symbols, emoji, combining marks (their presence says nothing about the encoding).
_NEUTRAL = ("\u00a0\u00ab\u00bb\u00a9\u00ae\u00b0\u00b1\u00b7\u00d7\u00f7\u00ad\u00a7\u00b2"
            "\u00b3\u00bd\u00bc\u00be\u00a3\u00a5\u00a2\u00b5\u00b4\u00b6\u00ba\u00aa\u00bf"
            "\u00a1\u0300-\u036f\u02b9-\u02dd\u2000-\u2015\u2018-\u2026\u2030\u2032-\u2033"
            "\u2039\u203a\u2044\u2060-\u206f\u2070-\u209f\u20a0-\u20cf\u20e3\u2100-\u214f"
            "\u2150-\u218f\u2190-\u21ff\u2200-\u22ff\u2300-\u23ff\u25a0-\u25ff\u2600-\u27bf"
            "\u2900-\u2bff\u3000-\u3003\ufe00-\ufe0f\ufeff\U0001f000-\U0001faff")
# cp1252 (and latin-1) readings of the UTF-8 continuation bytes 0x80-0xBF
_CONT_1252 = bytes(range(0x80, 0xC0)).decode("cp1252", "ignore") + "".join(
    map(chr, range(0x80, 0xC0)))
_MOJIBAKE = re.compile(
    f"[\u00c2-\u00df][{re.escape(_CONT_1252)}]"  # UTF-8 2-byte sequence read as cp1252/latin-1
    f"|\u00e2\u20ac|\u00e2\u0080"  # UTF-8 punctuation (E2 80 xx) read as cp1252/latin-1
    f"|[\u00a7\u00a8][\u00a0-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e]"  # GB18030 row 7/8
    + "".join(  # UTF-8 Cyrillic (lead byte D0/D1, then a continuation) read in a code page
        f"|[{re.escape(bytes([0xD0, 0xD1]).decode(enc))}]"
        f"[{re.escape(bytes(range(0x80, 0xC0)).decode(enc, 'ignore'))}]"
        for enc in ("cp1251", "mac-cyrillic", "koi8-r", "cp866"))
)
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
class Choice:
    """The encoding a source is read with, and why."""

    encoding: str  # a Python codec name, for codecs.getincrementaldecoder
    reason: str  # "given with --encoding", "byte-order mark", "valid UTF-8", "detected: …"


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
    glued: re.Pattern[str]  # a symbol glued to a word that never is
    flips: re.Pattern[str]


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
    mixed = f"[A-Za-z]{other}|{other}[A-Za-z]"  # a word in two scripts
    return _Judge(
        letters=re.compile(klass(chars)), lower=re.compile(klass(lower)),
        upper=re.compile(klass(upper)),
        logp=_logp(languages, {c for c in lower if "\u0400" <= c <= "\u052f"}),
        glued=re.compile(f"{klass(_GLUED)}{klass(lower)}|(?<![\\w{re.escape(''.join(chars))}])"
                         f"{klass(_NO_START)}{klass(lower)}|{klass(chars)}"
                         f"{klass(_GLUED | set(_NO_END))}"),
        flips=re.compile(f"[a-z{re.escape(''.join(sorted(lower)))}]{klass(upper)}|{mixed}"),
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


def judge(text: str, languages: Sequence[str], encoding: str = "") -> Reading:
    """How plausible ``text`` is for a project in ``languages`` (see the module docstring)."""
    j = _judge(tuple(languages) or DEFAULT_LANGUAGES)
    controls = _count(_CONTROLS, text)  # C0 controls are odd though ASCII
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    letters = _count(j.letters, text)
    odd = max(0, non_ascii - letters - _count(_NEUTRAL_RE, text)) + controls
    lower, upper = _count(j.lower, text), _count(j.upper, text)
    flips = len(j.flips.findall(text))
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
                   len(_MOJIBAKE.findall(text)) + len(j.glued.findall(text)), flips,
                   inverted, n, fit, pairs, flow)


def candidates(languages: Sequence[str]) -> list[str]:
    """The legacy encodings tried for a project in ``languages``, most likely first."""
    out: dict[str, None] = {}
    for lang in languages or DEFAULT_LANGUAGES:
        out.update(dict.fromkeys(LEGACY.get(lang, WESTERN if lang in ALPHABETS else ())))
    out.update(dict.fromkeys(ALWAYS))
    return [e for e in out if _known(e)]


def _known(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def bom(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` declares, if any."""
    return next((enc for mark, enc in BOMS if head.startswith(mark)), None)


def _decode(data: bytes, encoding: str, final: bool = False) -> str | None:
    """Strictly decoded ``data`` (a cut character at the end is dropped unless final)."""
    try:
        return codecs.getincrementaldecoder(encoding)("strict").decode(data, final=final)
    except UnicodeDecodeError:
        return None


def _wide_guess(head: bytes) -> str | None:
    """UTF-16/32 without a BOM, guessed from where the NUL bytes fall (None: no pattern)."""
    n = len(head) - len(head) % 4
    if n < 4 or b"\0" not in head:
        return None
    by_pos = [head[i:n:4].count(0) for i in range(4)]
    nuls = sum(by_pos)
    if nuls < max(2, n // 64):
        return None
    quarter = n // 4
    if min(by_pos[1:]) > 0.7 * quarter:
        return "utf-32-le"
    if min(by_pos[:3]) > 0.7 * quarter:
        return "utf-32-be"
    odd = by_pos[1] + by_pos[3]
    if odd >= 0.95 * nuls:
        return "utf-16-le"
    if odd <= 0.05 * nuls:
        return "utf-16-be"
    return None


def sniff_text(head: bytes) -> str | None:
    """The start of a file as text for format sniffing (never for storing): decoded by its BOM,
    as BOM-less UTF-16/32, as UTF-8, or else byte for byte as latin-1 so that ASCII markup and
    digits are still seen. None for binary data (NUL bytes in no UTF-16/32 pattern)."""
    enc = bom(head) or _wide_guess(head)
    if enc is not None:
        return codecs.getincrementaldecoder(enc)("replace").decode(head).lstrip("\ufeff")
    if b"\0" in head:
        return None
    text = _decode(head, "utf-8")
    return text if text is not None else head.decode("latin-1")


# --- the decision -----------------------------------------------------------------------------

def _preview(reading: Reading, width: int = 48) -> str:
    """A one-line excerpt of the reading around its first non-ASCII character."""
    text = reading.text
    start = next((i for i, c in enumerate(text) if ord(c) > 0x7F), 0)
    start = max(0, start - 8)
    excerpt = " ".join(text[start:start + width].split())
    return repr(excerpt)


def _rank(sample: bytes, encodings: Sequence[str], languages: Sequence[str],
          ) -> list[Reading]:
    """Readings of ``sample`` by each encoding that decodes it, best first; candidates giving
    the same text are one reading (the first, most likely, keeps it)."""
    seen: dict[str, Reading] = {}
    for enc in encodings:
        text = _decode(sample, enc)
        if text is None or text in seen:
            continue
        seen[text] = judge(text, languages, enc)
    letters = max((r.cyrillic for r in seen.values()), default=0)
    return sorted((replace(r, ref_letters=letters) for r in seen.values()), key=lambda r: r.bad)


def _clearly_better(best: Reading, other: Reading) -> bool:
    """Enough evidence against ``other``: ``MIN_GAP`` nats more than against ``best``, and
    more than all the out-of-place evidence against ``best`` (so twice as much)."""
    return other.bad - best.bad >= max(MIN_GAP, best.hard)


def _choose(sample: bytes, encodings: Sequence[str], languages: Sequence[str], name: str,
            why: str, position: str | None = None) -> Choice:
    ranked = _rank(sample, encodings, languages)
    if ranked and ranked[0].acceptable and (
            len(ranked) == 1 or _clearly_better(ranked[0], ranked[1])):
        best = ranked[0]
        others = ", ".join(f"{r.encoding} by {r.bad - best.bad:.0f}" for r in ranked[1:3])
        return Choice(best.encoding, f"detected: {best.encoding}"
                      + (f" (ahead of {others} nats)" if others else ""))
    failed = [e for e in encodings if _decode(sample, e) is None]
    raise refusal(name, why, ranked, failed, position)


def refusal(name: str, why: str, ranked: Sequence[Reading], failed: Sequence[str] = (),
            position: str | None = None) -> EncodingError:
    """The EncodingError that names the candidates, how each reads the sample, and what to do."""
    shown = "; ".join(f"{r.encoding} reads {_preview(r)}" for r in ranked[:4])
    tried = f" ({', '.join(failed[:6])} cannot decode it)" if failed else ""
    example = ranked[0].encoding if ranked else "cp1251"
    return EncodingError(
        name,
        f"{why}, and its encoding cannot be told with confidence{tried}. "
        + (f"Candidates: {shown}. " if shown else "")
        + f"If you know the encoding, name it: --encoding NAME (e.g. --encoding {example}); "
        "if this source was already stored under a wrong encoding, erase it first with "
        "`chatlens forget --source SOURCE`, then ingest it again with --encoding.",
        position,
    )


def _head(members: Sequence[Member]) -> bytes:
    return members[0].head(SAMPLE) if members else b""


def _around(member: Member, at: int) -> bytes:
    """The bytes of ``member`` around offset ``at`` (read through, never held whole)."""
    start = max(0, at - AROUND)
    with member.open() as fh:
        skip = start
        while skip > 0 and (got := len(fh.read(min(skip, CHUNK)))):
            skip -= got
        data: bytes = fh.read(2 * AROUND)
    # start at a line boundary so a multi-byte encoding is read in step
    cut = data.find(b"\n", 0, min(len(data), AROUND)) if start else -1
    return data[cut + 1:] if cut >= 0 else data


@dataclass(slots=True)
class _Failure:
    member: Member
    offset: int
    bad: bytes  # the undecodable bytes, or b"" when the text looks garbled instead
    reading: Reading | None = None


def _verify(members: Sequence[Member], encoding: str, languages: Sequence[str],
            legacy: bool, strict_only: bool) -> _Failure | None:
    """The first place where ``members`` fail to decode as ``encoding`` (or, unless
    ``strict_only``, look garbled), or None. Memory: one chunk at a time."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding  # keep offsets exact over a BOM
    for member in members:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        offset = 0
        with member.open() as fh:
            while True:
                chunk = fh.read(CHUNK)
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    at = max(0, offset - pending + exc.start)
                    return _Failure(member, at, exc.object[exc.start:exc.end][:4])
                for start in range(0, len(text) if not strict_only else 0, WINDOW):
                    reading = judge(text[start:start + WINDOW], languages, encoding)
                    if _garbled(reading, legacy):  # offset: where this chunk starts
                        return _Failure(member, offset, b"", reading)
                if not chunk:
                    break
                offset += len(chunk)
    return None


def _garbled(reading: Reading, legacy: bool) -> bool:
    """A window that looks like mojibake; for a detected legacy encoding, also one that reads
    implausibly (another part of the file in another encoding)."""
    if reading.non_ascii < MIN_EVIDENCE:
        return False
    if reading.mojibake >= 5 and reading.mojibake > 0.1 * reading.non_ascii:
        return True
    return legacy and reading.misread > 2 * PLAUSIBLE


def resolve(members: Sequence[Member], options: ParseOptions, name: str | None = None,
            ) -> Choice:
    """The encoding to read ``members`` (one source) with, verified over all of them; see the
    module docstring. EncodingError (nothing read) when the text would not come out right."""
    name = name or (members[0].name if members else "input")
    languages = tuple(options.languages) or DEFAULT_LANGUAGES
    forced = options.encoding
    if forced:
        if not _known(forced):
            raise UsageError(f"Unknown encoding {forced!r}; use a Python codec name such as "
                             "utf-8, cp1251, koi8-r or gb18030.")
        fail = _verify(members, forced, languages, legacy=False, strict_only=True)
        if fail is not None:
            raise _undecodable(fail, forced, "though --encoding names it")
        return Choice(codecs.lookup(forced).name, "given with --encoding")
    head = _head(members)
    declared = bom(head)
    if declared is not None:
        fail = _verify(members, declared, languages, legacy=False, strict_only=False)
        if fail is not None:
            raise _undecodable(fail, declared, "though its byte-order mark (BOM) declares it")
        return Choice(declared, "byte-order mark")
    if b"\0" in head:
        choice = _choose(head, WIDE, languages, name, "the file holds NUL bytes but no "
                         "byte-order mark, so it may be UTF-16 or UTF-32")
        return _checked(members, choice, languages, name)
    if _decode(head, "utf-8") is not None:
        fail = _verify(members, "utf-8", languages, legacy=False, strict_only=False)
        if fail is None:
            return Choice("utf-8", "valid UTF-8")
        if not fail.bad:
            raise _garbled_error(fail, "utf-8")
        sample = head + b"\n" + _around(fail.member, fail.offset)
        at, bad, where = fail.offset, fail.bad, fail.member.name
    else:
        sample = head
        at, bad = _first_bad(head)
        where = members[0].name
    of = f" of {where}" if where != name else ""
    why = f"not valid UTF-8 (byte offset {at}{of} holds {bad.hex(' ')})"
    choice = _choose(sample, candidates(languages), languages, name, why, f"byte {at}")
    return _checked(members, choice, languages, name)


def _first_bad(data: bytes) -> tuple[int, bytes]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start, data[exc.start:exc.end][:4]
    return len(data), b""


def _checked(members: Sequence[Member], choice: Choice, languages: Sequence[str],
             name: str) -> Choice:
    fail = _verify(members, choice.encoding, languages, legacy=True, strict_only=False)
    if fail is None:
        return choice
    if fail.bad:
        raise _undecodable(fail, choice.encoding, f"though its start reads as {choice.encoding}")
    raise _garbled_error(fail, choice.encoding)


def _undecodable(fail: _Failure, encoding: str, why: str) -> EncodingError:
    return EncodingError(
        fail.member.name,
        f"not valid {encoding} text: byte offset {fail.offset} holds {fail.bad.hex(' ')}, {why}. "
        "Convert the file to UTF-8 (for example `iconv -f cp1251 -t utf-8`) or name its "
        "encoding with --encoding NAME; if this source was already stored under a wrong "
        "encoding, erase it first with `chatlens forget --source SOURCE`.",
        f"byte {fail.offset}",
    )


def _garbled_error(fail: _Failure, encoding: str) -> EncodingError:
    r = fail.reading
    seen = f" (it reads {_preview(r)})" if r is not None else ""
    return EncodingError(
        fail.member.name,
        f"the text from byte offset {fail.offset} on decodes as {encoding} but looks garbled"
        f"{seen}: mojibake, or part of the file in another encoding. Nothing was stored. Name "
        "the right encoding with --encoding NAME (--encoding utf-8 stores the text exactly as "
        "it is); if this source was already stored under a wrong encoding, erase it first with "
        "`chatlens forget --source SOURCE`.",
        f"byte {fail.offset}",
    )


class Utf8Reader:
    """A binary stream of UTF-8 bytes read from ``raw`` in ``encoding`` (for readers that take
    UTF-8 only, such as JSON); strict: an undecodable byte raises UnicodeDecodeError."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._buffer = b""
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            chunk = self._raw.read(CHUNK)
            self._buffer += self._decoder.decode(chunk, final=not chunk).lstrip(
                "\ufeff" if not self._buffer else "").encode("utf-8")
            self._done = not chunk
        if n < 0:
            n = len(self._buffer)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def close(self) -> None:
        self._raw.close()
