"""Text encodings: the one place where every text importer's decoding is decided and checked.

:func:`resolve` decides a source's encoding from a bounded sample, then verifies the whole source
before a single record is read, so a source is either decoded exactly or refused with an
:class:`~chatlens.errors.EncodingError`; garbled text is never stored. The rules, in order:

1. ``--encoding NAME`` (``ParseOptions.encoding``) is used as given; undecodable bytes stop it,
   and so does a reading that looks garbled where detection (2–5) reads the source plausibly in
   another encoding. It is the user's override when detection refuses.
2. A byte-order mark (UTF-8/16/32) declares the encoding.
3. NUL bytes in the sample, in a UTF-16/32 pattern: UTF-16/32 without a BOM, little- or
   big-endian, judged as in 5.
4. A sample that is valid UTF-8 is UTF-8. If a later byte is not, its neighbourhood joins the
   sample and the source is judged as in 5.
5. The legacy encodings of the project's languages (:data:`LEGACY`; ``cp1251``, ``koi8-r``,
   ``cp866`` … for ``ru``), plus ``gb18030`` and ``cp1252``, each decode the sample, and each
   reading is judged (:func:`chatlens.ingest.plausible.judge`): letters of the declared
   languages' alphabets count for it; letters of other alphabets or scripts, C1 controls,
   private-use and box-drawing characters, mojibake signatures (``Ð``/``Ñ``/``Ã`` + a UTF-8
   continuation character, ``â€``, ``§`` + a Latin-1 letter, ``Р``/``С`` + a cp1251 one),
   inverted letter case (``пРИВЕТ``), words in two scripts, and unlikely Cyrillic letters and
   letter pairs count against it. Candidates reading the sample identically are one reading.
   Readings that are no plausible text (misread, mojibake) rank after the plausible ones. The
   best reading wins only when it is plausible and either the only plausible one or ahead of
   the next by ``MIN_GAP`` nats of evidence (and by all the out-of-place evidence against
   itself); otherwise the source is refused, and the error lists how each candidate reads the
   sample.
6. Every byte of the source must then decode strictly, and no judged part of it (the start,
   middle and end of every megabyte) may look like mojibake (nor, for a detected legacy
   encoding, like a different encoding), or the source is refused before anything from it is
   stored.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import IO

from chatlens.errors import EncodingError, UsageError
from chatlens.ingest.base import Member, ParseOptions
from chatlens.ingest.plausible import ALPHABETS, PLAUSIBLE, Reading, judge
from chatlens.languages import DEFAULT_LANGUAGES

SAMPLE = 64 << 10  # bytes of a source the decision is made from
AROUND = 16 << 10  # bytes either side of the first non-UTF-8 byte added to the sample
CHUNK = 1 << 20  # verification reads this much at a time (every byte is decoded strictly)
SPOT = 4096  # and judges this many characters at its start, middle and end
JUDGED = 16384  # characters of each candidate's reading of the sample that are judged
MIN_GAP = 2.0  # nats of evidence by which the chosen reading must beat the next one
MIN_EVIDENCE = 24  # non-ASCII characters a verification window needs before it is judged
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
WIDE = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_NON_ASCII = re.compile("[^\x00-\x7f]")

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
@dataclass(frozen=True, slots=True)
class Choice:
    """The encoding a source is read with, and why."""

    encoding: str  # a Python codec name, for codecs.getincrementaldecoder
    reason: str  # "given with --encoding", "byte-order mark", "valid UTF-8", "detected: …"


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
        # judged from just before the first non-ASCII character, where readings differ
        found = _NON_ASCII.search(text)
        start = max(0, found.start() - 64) if found else 0
        seen[text] = replace(judge(text[start:start + JUDGED], languages, enc), text=text)
    letters = max((r.cyrillic for r in seen.values()), default=0)
    return sorted((replace(r, ref_letters=letters) for r in seen.values()), key=lambda r: r.bad)


def _clearly_better(best: Reading, other: Reading) -> bool:
    """Enough evidence against ``other``: ``MIN_GAP`` nats more than against ``best``, and
    more than all the out-of-place evidence against ``best`` (so twice as much)."""
    return other.bad - best.bad >= max(MIN_GAP, best.hard)


def _choose(sample: bytes, encodings: Sequence[str], languages: Sequence[str], name: str,
            why: str, position: str | None = None) -> Choice:
    ranked = _rank(sample, encodings, languages)
    # UTF-16/32 is told by where its NUL bytes fall: only the other byte order competes, so
    # the reading needs to be clearly better, not free of every unusual character
    wide = set(encodings) <= set(WIDE)
    if not wide:
        # a reading that is no plausible text (misread, mojibake) cannot win, however well its
        # letters fit a declared language's frequencies: Hebrew read as cp1251 is Cyrillic
        # gibberish, and only Cyrillic has letter frequencies to score against
        ranked = [r for r in ranked if r.acceptable] + [r for r in ranked if not r.acceptable]
    if ranked and (ranked[0].acceptable or (wide and ranked[0].oddness <= 4 * PLAUSIBLE)) and (
            len(ranked) == 1 or (not ranked[1].acceptable and not wide)
            or _clearly_better(ranked[0], ranked[1])):
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
                for spot in ([] if strict_only else _spots(text)):
                    reading = judge(spot, languages, encoding)
                    if _garbled(reading, legacy):  # offset: where this chunk starts
                        return _Failure(member, offset, b"", reading)
                if not chunk:
                    break
                offset += len(chunk)
    return None


def _spots(text: str) -> list[str]:
    """The parts of a decoded chunk that are judged: all of a short one, else its start,
    middle and end (judging is ~50x slower than decoding; the bytes are all decoded)."""
    if len(text) <= 3 * SPOT:
        return [text] if text else []
    mid = len(text) // 2 - SPOT // 2
    return [text[:SPOT], text[mid:mid + SPOT], text[-SPOT:]]


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
    module docstring. EncodingError (nothing read) when the text would not come out right.
    The choice is also noted in ``options.decided`` (the pipeline records it with the source)."""
    choice = _resolve(members, options, name or (members[0].name if members else "input"))
    options.decided.append(f"encoding {choice.encoding} ({choice.reason})")
    return choice


def _resolve(members: Sequence[Member], options: ParseOptions, name: str) -> Choice:
    languages = tuple(options.languages) or DEFAULT_LANGUAGES
    forced = options.encoding
    if forced:
        if not _known(forced):
            raise UsageError(f"Unknown encoding {forced!r}; use a Python codec name such as "
                             "utf-8, cp1251, koi8-r or gb18030.")
        # one pass decodes every byte and judges the text; only a garbled reading costs more
        fail = _verify(members, forced, languages, legacy=True, strict_only=False)
        if fail is not None and not fail.bad:  # undecodable bytes further on still come first
            fail = _verify(members, forced, languages, legacy=False, strict_only=True) or fail
        if fail is not None and fail.bad:
            raise _undecodable(fail, forced, "though --encoding names it")
        if fail is not None:
            _check_override(members, options, forced, fail, name)
        return Choice(codecs.lookup(forced).name, "given with --encoding")
    head = _head(members)
    declared = bom(head)
    if declared is not None:
        fail = _verify(members, declared, languages, legacy=False, strict_only=False)
        if fail is not None:
            raise _undecodable(fail, declared, "though its byte-order mark (BOM) declares it")
        return Choice(declared, "byte-order mark")
    if _wide_guess(head) is not None:  # NUL bytes in a UTF-16/32 pattern
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


def _check_override(members: Sequence[Member], options: ParseOptions, forced: str,
                    fail: _Failure, name: str) -> None:
    """An ``--encoding`` that reads the source as garbled text (``fail``), where detection reads
    it plausibly in another encoding, is refused: the override is for sources detection cannot
    decide, not a way to store mojibake."""
    assert fail.reading is not None
    try:
        detected = _resolve(members, replace(options, encoding=None), name)
    except EncodingError:
        return  # detection cannot decide either: the user's choice stands
    if codecs.lookup(detected.encoding).name == codecs.lookup(forced).name:
        return
    raise EncodingError(
        fail.member.name,
        f"--encoding {forced} reads this file as garbled text from byte offset {fail.offset} "
        f"on ({_preview(fail.reading)}), while it reads plausibly as {detected.encoding} "
        f"({detected.reason}). Nothing was stored. Use --encoding {detected.encoding}, or "
        "leave --encoding out.",
        f"byte {fail.offset}",
    )


def _first_bad(data: bytes) -> tuple[int, bytes]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start, data[exc.start:exc.end][:4]
    return len(data), b""


def _checked(members: Sequence[Member], choice: Choice, languages: Sequence[str],
             name: str) -> Choice:
    legacy = choice.encoding not in WIDE  # a code page could be misread; UTF-16 only garbled
    fail = _verify(members, choice.encoding, languages, legacy=legacy, strict_only=False)
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
        self._start = True  # a BOM is dropped at the start of the text only

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            chunk = self._raw.read(CHUNK)
            text = self._decoder.decode(chunk, final=not chunk)
            if self._start and text:
                text, self._start = text.removeprefix("\ufeff"), False
            self._buffer += text.encode("utf-8")
            self._done = not chunk
        if n < 0:
            n = len(self._buffer)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def close(self) -> None:
        self._raw.close()
