""":func:`~chatlens.enrich.text.prepare` for a whole Arrow column, in ``pyarrow.compute``.

Most rows never reach Python: zero-width removal, apostrophes, URLs (one RE2 pass marks them,
one takes them out), lowercase and ``ё`` → ``е`` run on the column; NFKC runs (in C, through
``unicodedata``) only on the rows holding a character it may change. RE2 has no lookaround
and its ``\\w``/``\\s`` are ASCII, so the classes are built from Python's own
(:func:`py_class`), and the rows RE2 cannot do exactly go to
:func:`~chatlens.enrich.text.prepare` instead: a zero-width joiner (its rule looks around), a
character Arrow lowercases differently from Python (final sigma, ``İ``, Unicode version gaps),
a URL that Python's scan rejects (its punctuation runs into a character), a NUL
(used as the marker). The result equals ``prepare(text, fold=False)`` row by row.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from chatlens.enrich.text import URL_TOKEN, prepare

STR_LIST = pa.list_(pa.string())  # the type of every list column of enrichment
NDArrayInt = NDArray[np.int64]


@lru_cache(maxsize=1)
def _all_chars() -> list[str]:
    """Every character that has a case, a compatibility form or a combining class in some
    Unicode version to date: planes 0–2 and the tags/variation-selector block (planes 3–13
    and 15–16 hold only CJK extensions and private use)."""
    return [chr(c) for c in (*range(0x30000), *range(0xE0000, 0xE1000))
            if not 0xD800 <= c <= 0xDFFF and c != 0x0A]


def _ranges(chars: list[str]) -> str:
    """An RE2 class body for a sorted list of characters."""
    out: list[str] = []
    start = prev = -2
    for c in map(ord, chars):
        if c != prev + 1:
            if start >= 0:
                out.append(_span(start, prev))
            start = c
        prev = c
    if start >= 0:
        out.append(_span(start, prev))
    return "".join(out)


def _span(a: int, b: int) -> str:
    return f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"


@lru_cache(maxsize=1)
def _every() -> str:
    return "".join(map(chr, (*range(0xD800), *range(0xE000, sys.maxunicode + 1))))


@lru_cache(maxsize=8)
def py_class(pattern: str) -> str:
    """A Python regex matching one character (``r"\\w"``, ``r"[^\\W\\d]"``) as an RE2 class
    body: the same characters, found by trying every one."""
    return "".join(_span(ord(m.group()[0]), ord(m.group()[-1]))
                   for m in re.finditer(f"(?:{pattern})+", _every()))


def _mapped(func: Callable[[str], str], chars: list[str]) -> list[str]:
    """``func`` of each character, in one call over all of them (newline-separated: a newline
    neither composes nor reorders with its neighbours)."""
    out = func("\n".join(chars)).split("\n")
    assert len(out) == len(chars)
    return out


def _arrow(func: Callable[[pa.Array], pa.Array]) -> Callable[[str], str]:
    return lambda s: str(func(pa.array([s])).to_pylist()[0])


@lru_cache(maxsize=1)
def _python_only() -> str:
    """RE2 class of characters Arrow lowercases differently from Python, the final-sigma
    candidate (Python looks at its neighbours), the joiner (its rule looks around), the marker."""
    chars = _all_chars()
    odd = {"\u03a3", "\u200d", "\x00"}
    odd.update(c for c, x, y in zip(chars, _mapped(str.lower, chars),
                                    _mapped(_arrow(pc.utf8_lower), chars), strict=True) if x != y)
    return _ranges(sorted(odd))


@lru_cache(maxsize=1)
def _nfkc_may_change() -> str:
    """RE2 class of characters NFKC may change in context: those it changes alone, combining
    marks, and the second characters of canonical compositions."""
    chars = _all_chars()
    nfkc = _mapped(lambda s: unicodedata.normalize("NFKC", s), chars)
    odd = {c for c, n in zip(chars, nfkc, strict=True) if n != c or unicodedata.combining(c)}
    for c in map(chr, range(0x30000)):
        dec = unicodedata.decomposition(c).split()
        if len(dec) == 2 and not dec[0].startswith("<"):
            odd.add(chr(int(dec[1], 16)))
    return _ranges(sorted(odd))


_ZW = "[\u200b\u200c\u200e\u200f\u2060\ufeff\u00ad]"
_APOS = "[’ʼ‘′`]"
_TRAIL = r".,;:!?)\]'»"


@lru_cache(maxsize=1)
def _url_patterns() -> tuple[str, str]:
    """(the URL pattern, the pattern of rows RE2 cannot mark exactly: a URL Python's scan would
    reject, since its punctuation runs into a character, or a ``t.me/`` after a word character
    or a dot, which Python's lookbehind skips)."""
    w, s = py_class(r"\w"), py_class(r"\s")
    run = f'[^{s}<>"«»]'
    body = f"(?:{run}*[^{s}<>\"«»{_TRAIL}]|{run})"
    prefix = "(?i:https?://|www\\.|(?:t|telegram)\\.me/)"
    slow = (f"(?i:https?://|www\\.|\\.me/){run}+(?:[<>\"«]|»[{_TRAIL}]*[^{s}{_TRAIL}])"
            f"|[{w}.](?i:(?:t|telegram)\\.me/)")
    return prefix + body, slow


def _where(mask: pa.Array) -> NDArrayInt:
    return np.flatnonzero(np.asarray(pc.fill_null(mask, False), dtype=bool))


def prepare_column(texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.ListArray]:
    """``prepare(text, fold=False)`` of every row: the normalised texts and their URL lists.
    Null text counts as ""."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    texts = pc.fill_null(texts.cast(pa.string()), "")
    python_only = f"[{_python_only()}]"
    n = len(texts)
    slow = np.zeros(n, dtype=bool)
    # cleaning: only rows holding a character some step may change (one pass finds them)
    rare = _where(pc.match_substring_regex(
        texts, f"[{_python_only()}{_nfkc_may_change()}{_ZW[1:-1]}{_APOS[1:-1]}]"))
    t = texts
    if rare.size:
        # NFKC in Python (C speed, and Arrow's utf8proc is slower and may be another version)
        sub = pa.array([unicodedata.normalize("NFKC", x)
                        for x in texts.take(pa.array(rare)).to_pylist()], pa.string())
        sub = pc.replace_substring_regex(sub, _ZW, "")
        sub = pc.replace_substring_regex(sub, _APOS, "'")
        # before or after NFKC, a character Arrow handles differently from Python
        slow[rare] = np.asarray(pc.or_(
            pc.match_substring_regex(texts.take(pa.array(rare)), python_only),
            pc.match_substring_regex(sub, python_only)), dtype=bool)
        t = put(t, rare, sub)
    # URLs: one pass marks them (NUL before and after), one takes the marked text out
    mark, inexact = _url_patterns()
    slow |= np.asarray(pc.match_substring_regex(t, inexact), dtype=bool)
    marked = pc.replace_substring_regex(t, mark, "\x00\\0\x00")
    urls = _odd_items(pc.split_pattern(marked, "\x00"))
    t = pc.replace_substring_regex(marked, "\x00[^\x00]*\x00", f" {URL_TOKEN} ")
    t = pc.replace_substring(pc.utf8_lower(t), "ё", "е")
    slow_rows = np.flatnonzero(slow)
    if slow_rows.size:  # exact, in Python
        done = [prepare(x, fold=False) for x in texts.take(pa.array(slow_rows)).to_pylist()]
        t = put(t, slow_rows, pa.array([d[0] for d in done], pa.string()))
        urls = _scatter_lists(urls, slow_rows, pa.array([d[1] for d in done], STR_LIST))
    return t, urls


def put(arr: pa.Array, rows: NDArrayInt, values: pa.Array) -> pa.Array:
    """``arr`` with the items at ``rows`` (ascending) replaced by ``values``."""
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(arr, pa.array(mask), values)


def _odd_items(lists: pa.ListArray) -> pa.ListArray:
    """Per list, the items at odd positions (what lay between pairs of markers)."""
    offs = np.asarray(lists.offsets, dtype=np.int64)
    parent = np.repeat(np.arange(len(lists)), np.diff(offs))
    pos = np.arange(offs[-1] - offs[0]) - (offs[:-1] - offs[0])[parent]
    keep = (pos % 2) == 1
    counts = np.bincount(parent[keep], minlength=len(lists))
    return pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32()),
        lists.flatten().filter(pa.array(keep)))


def _scatter_lists(base: pa.ListArray, rows: NDArrayInt, values: pa.ListArray) -> pa.ListArray:
    """``base`` with the lists at ``rows`` replaced by ``values`` (in order)."""
    src = np.arange(len(base), dtype=np.int64)
    src[rows] = len(base) + np.arange(len(rows))
    return pa.concat_arrays([base, values.cast(base.type)]).take(pa.array(src))
