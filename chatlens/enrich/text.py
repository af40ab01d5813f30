"""Text normalisation, feature extraction (URLs, mentions, hashtags, emoji) and tokenisation.

Normalisation, in order (:func:`prepare`):

1. NFKC (folds full-width and "mathematical" letters to plain ones), zero-width characters and
   soft hyphens removed (a zero-width *joiner* only where it touches a letter, so emoji ZWJ
   sequences survive), typographic apostrophes (’ ʼ ‘ ′ `) become ``'``.
2. URLs are taken out and replaced by the placeholder token ``<url>`` (the places found, not
   every copy of the URL's text: ``t.me/a`` in ``t.me/a/5`` is no URL of its own).
3. Lowercase, ``ё`` → ``е`` (Ukrainian ``і ї є ґ`` and Belarusian ``ў`` are kept).
4. Homoglyph folding, per word where a Latin letter touches a Cyrillic one: when the word has at
   least as many Cyrillic letters as Latin ones, the Latin lookalikes ``a b c e h i k m o p t x y``
   become ``а в с е н і к м о р т х у`` (``b``/``h`` from capital ``B``/``H``; Latin ``i`` becomes
   Ukrainian ``і``); otherwise those Cyrillic letters (and ``ѕ ј``) become Latin. Words in one
   script are never touched, so a standalone Latin ``z``/``v`` stays Latin (the war symbol) and
   Cyrillic ``з`` stays Cyrillic; ``z``/``v`` have no lookalike in the table, so they survive
   inside mixed words too (``zа`` keeps its ``z``).

The ``fast`` tokenizer is one compiled regex modelled on razdel's rules: hyphenated and apostrophe
words stay whole (``кто-то``, ``м'ята``, ``5-й``), decimals and fractions (``1,5`` ``3.14`` ``1/2``)
are one token, runs of ``.!?…`` and simple smileys are one token, emoji clusters are one token each,
any other non-space character is a token. ``#tag`` and ``@name`` give ``#``/``@`` plus the word,
as in razdel, so lexicon terms match inside hashtags.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

URL_TOKEN = "<url>"

_ZW_CLASS = "[\u200b\u200c\u200e\u200f\u2060\ufeff\u00ad]"
_ZW_ANY_RE = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
_ZW_RE = re.compile(_ZW_CLASS)
_ZWJ_RE = re.compile("(?<=\\w)\u200d|\u200d(?=\\w)")
_APOSTROPHES = "’ʼ‘′`"

# A URL is a prefix and the run of characters after it up to whitespace or < > " « », less
# trailing punctuation; when that punctuation runs into another character, it is no URL.
_URL_RUN = r"[^\s<>\"«»]+"
_URL_TRAIL = ".,;:!?)]'»"
_URL_RE = re.compile(rf"((?:https?://|www\.|(?<![\w.])(?:t|telegram)\.me/)){_URL_RUN}", re.I)
MENTION_RE = re.compile(r"(?<![\w@.])@(\w{2,})")
HASHTAG_RE = re.compile(r"(?<![\w&#])#(\w*[^\W\d_]\w*)")

_EMOJI_BASE = (
    "(?:[\U0001f1e6-\U0001f1ff]{2}|[#*0-9]\ufe0f?\u20e3|"
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a-\u23ff\u24c2"
    "\u25aa-\u27bf\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff])"
    "(?:\ufe0f|[\U0001f3fb-\U0001f3ff]|[\U000e0020-\U000e007f])*"
)
EMOJI_RE = re.compile(f"{_EMOJI_BASE}(?:\u200d{_EMOJI_BASE})*")
_EMOJI_ANY_RE = re.compile(
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2bff\u3030\u303d\u3297\u3299\u20e3"
    "\U0001f000-\U0001faff]"
)


def find_emoji(norm: str) -> list[str]:
    """Emoji clusters (flags, keycaps, skin tones and ZWJ sequences kept whole), in order."""
    return EMOJI_RE.findall(norm) if _EMOJI_ANY_RE.search(norm) else []


TOKEN_RE = re.compile(
    "<url>"
    f"|{_EMOJI_BASE}(?:\u200d{_EMOJI_BASE})*"
    r"|\d+(?:[.,/]\d+)+(?:-\w+)*"
    r"|\w+(?:[-'‐]\w+)*"
    r"|[:;]-?[()dp]+(?![\w])"
    r"|[.!?…]+"
    r"|\S"
)

_CYR = "а-яёіїєґўәғқңөұүһ"
_ADJ_RE = re.compile(f"[a-z][{_CYR}]|[{_CYR}][a-z]")
_WORD_RE = re.compile(r"\w+")
_CYR_LETTER_RE = re.compile(f"[{_CYR}]")
_LAT_LETTER_RE = re.compile("[a-z]")
_LAT2CYR = str.maketrans("abcehikmoptxy", "авсенікмортху")
_CYR2LAT = str.maketrans("авсенікмортхуѕј", "abcehikmoptxysj")


def _fold_word(m: re.Match[str]) -> str:
    w = m.group(0)
    if not _ADJ_RE.search(w):
        return w
    n_cyr = len(_CYR_LETTER_RE.findall(w))
    n_lat = len(_LAT_LETTER_RE.findall(w))
    return w.translate(_LAT2CYR if n_cyr >= n_lat else _CYR2LAT)


def fold_homoglyphs(text: str) -> str:
    """Fold lookalike letters inside mixed-script words of lowercase text (rule in module doc)."""
    return _WORD_RE.sub(_fold_word, text) if _ADJ_RE.search(text) else text


def clean(text: str) -> str:
    """Step 1: NFKC, zero-width removal, apostrophe unification (case kept)."""
    t = text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
    if _ZW_ANY_RE.search(t):
        t = _ZW_RE.sub("", t)
        if "\u200d" in t:
            t = _ZWJ_RE.sub("", t)
    for ch in _APOSTROPHES:
        if ch in t:
            t = t.replace(ch, "'")
    return t


#: Every case variant of a URL prefix holds one of these anchors, at these distances from its
#: start: ``://`` (http, https), ``ww.`` (www.), ``.me/`` (t.me/, telegram.me/).
_ANCHORS = (("://", (4, 5)), ("ww.", (1,)), ("WW.", (1,)), ("Ww.", (1,)), ("wW.", (1,)),
            (".me/", (1, 8)), (".ME/", (1, 8)), (".Me/", (1, 8)), (".mE/", (1, 8)))


def _prefix_matches(t: str) -> Iterator[re.Match[str]]:
    """What ``_URL_RE.finditer(t)`` yields, with the pattern tried only where an anchor puts the
    start of a prefix (trying a case-insensitive pattern at every position is slow)."""
    starts: set[int] = set()
    for anchor, back in _ANCHORS:
        j = t.find(anchor)
        while j >= 0:
            starts.update(j - b for b in back if j >= b)
            j = t.find(anchor, j + 1)
    end = 0
    for s in sorted(starts):
        if s >= end and (m := _URL_RE.match(t, s)):
            yield m
            end = m.end()


def url_spans(t: str) -> list[tuple[int, int]]:
    """Where the URLs of ``t`` are: each run ``_URL_RE`` finds less its trailing punctuation (at
    least one character stays), kept only when that punctuation runs into whitespace or the end."""
    out = []
    n = len(t)
    for m in _prefix_matches(t):
        q = m.end()
        while q < n and t[q] in _URL_TRAIL:
            q += 1
        if q < n and not t[q].isspace():
            continue
        head = m.end(1)
        out.append((m.start(), head + max(len(t[head:m.end()].rstrip(_URL_TRAIL)), 1)))
    return out


def find_urls(t: str) -> list[str]:
    """The URLs in ``t``, in order (see :func:`url_spans`)."""
    return [t[a:b] for a, b in url_spans(t)]


def prepare(text: str, fold: bool = True) -> tuple[str, list[str]]:
    """Normalised text (each URL found replaced by `` <url> ``) and the URLs, in order.

    ``fold=False`` skips homoglyph folding (the pipeline folds per cached chunk instead).
    """
    t = clean(text)
    spans = url_spans(t)
    urls = [t[a:b] for a, b in spans]
    if spans:
        parts, end = [], 0
        for a, b in spans:
            parts += [t[end:a], f" {URL_TOKEN} "]
            end = b
        t = "".join(parts) + t[end:]
    t = t.lower()
    if "ё" in t:
        t = t.replace("ё", "е")
    return (fold_homoglyphs(t) if fold else t), urls


def tokenize_fast(norm: str) -> list[str]:
    return TOKEN_RE.findall(norm)


def tokenize_razdel(norm: str) -> list[str]:
    from razdel import tokenize

    out: list[str] = []
    for part in norm.split(URL_TOKEN):
        if out:
            out.append(URL_TOKEN)
        out.extend(t.text for t in tokenize(part))
    return out
