"""A bounded, iterative JSON scanner that cuts a document into records without parsing it whole.

Used where a JSON document holds a list of records: a minified Telegram export's ``messages``,
a JSON array table, a Label Studio export. The scanner walks the structure with an explicit
stack (no recursion, so any nesting depth costs a counter, not the C stack), and for every
element of an array that ``want(path)`` selects it hands back the element's bytes, which the
caller parses alone (with orjson). So:

* memory is bounded: an element longer than ``max_element`` bytes is reported, not kept;
* an element nested deeper than ``max_depth`` is reported, and scanning goes on after it;
* one damaged element (an invalid string, a stray quote that still balances, bad UTF-8) costs
  only itself: inside an element the scanner only follows strings and brackets;
* time is linear: every byte is looked at a bounded number of times.

Outside the selected arrays the scanner checks the grammar and reports small scalars
(``("scalar", path, raw)``) so callers can pick up header keys such as a chat's ``name``.
A grammar error there raises :class:`ScanError` with the byte offset; what was handed out
before it stays valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import orjson

CHUNK = 1 << 20
MAX_DEPTH = 512  # orjson itself stops at 1024
MAX_ELEMENT = 64 << 20
MAX_SCALAR = 1 << 16  # header scalars longer than this are skipped, not reported
EXCERPT = 500

Path = tuple[str | int, ...]
_OUT = re.compile(rb'["{}\[\]:,]')  # what matters outside strings
_IN = re.compile(rb'["\\]')  # what matters inside a string
_WS = b" \t\r\n"


class ScanError(ValueError):
    """The document's structure is broken at ``offset`` (outside any selected element)."""

    def __init__(self, offset: int, message: str) -> None:
        self.offset = offset
        super().__init__(f"{message} at byte {offset}")


@dataclass(slots=True)
class Element:
    """One element of a selected array: its bytes, or why they are not given."""

    path: Path  # the array's path plus the element's index
    offset: int  # byte offset of its first byte
    raw: bytes  # the whole element, or an excerpt when ``error`` is set
    error: str | None = None


@dataclass(slots=True)
class Scalar:
    """A small scalar outside the selected arrays (raw JSON bytes: ``"abc"``, ``12``, ``null``)."""

    path: Path
    raw: bytes


class _Frame:
    __slots__ = ("array", "has_value", "index", "key", "selected")

    def __init__(self, array: bool, selected: bool) -> None:
        self.array = array
        self.key: str | int | None = 0 if array else None
        self.index = 0
        self.selected = selected
        self.has_value = False


class _Capture:
    """The bytes of the element being cut out."""

    __slots__ = ("deepest", "depth", "offset", "parts", "scalar", "size")

    def __init__(self, offset: int, scalar: bool) -> None:
        self.offset = offset
        self.parts: list[bytes] = []
        self.size = 0
        self.depth = 0
        self.deepest = 0
        self.scalar = scalar

    def add(self, data: bytes, limit: int) -> None:
        if self.size <= limit:
            self.parts.append(data)
        self.size += len(data)


def scan(fh: IO[bytes], want: Callable[[Path], bool], *, max_depth: int = MAX_DEPTH,
         max_element: int = MAX_ELEMENT) -> Iterator[Element | Scalar]:
    """Walk the JSON document in ``fh``; see the module docstring."""
    stack: list[_Frame] = []
    in_string = escape = False
    cap: _Capture | None = None  # the selected element being read
    token: list[bytes] = []  # the current string or atom outside elements (bounded)
    token_size = 0
    token_kind = ""  # "string" | "atom" | "" (none)
    base = 0
    started = done = False

    def path() -> Path:
        return tuple(f.key for f in stack if f.key is not None)

    def finish_element() -> Element:
        nonlocal cap
        assert cap is not None
        c, cap = cap, None
        raw = b"".join(c.parts)
        where = (*path(),)
        if c.size > max_element:
            return Element(where, c.offset, raw[:EXCERPT], f"the record is {c.size} bytes long, "
                           f"more than the {max_element} a record may have")
        if c.deepest > max_depth:
            return Element(where, c.offset, raw[:EXCERPT], f"the record is nested {c.deepest} "
                           f"levels deep, more than {max_depth}")
        return Element(where, c.offset, raw.strip(_WS))

    def take_token() -> bytes | None:
        nonlocal token, token_size, token_kind
        raw = b"".join(token) if token_size <= MAX_SCALAR else None
        token, token_size, token_kind = [], 0, ""
        return raw

    def end_value() -> Iterator[Scalar]:
        """A scalar value outside elements ended: report it."""
        raw = take_token()
        if not stack and raw is None:
            return
        if raw is not None and raw.strip(_WS):
            yield Scalar(path(), raw.strip(_WS))

    while True:
        data = fh.read(CHUNK)
        if not data:
            break
        if not started and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
            base += 3
        started = True
        i, n = 0, len(data)
        while i < n:
            if in_string:
                if escape:  # the byte after a backslash that ended the previous chunk
                    if cap is not None:
                        cap.add(data[i:i + 1], max_element)
                    elif token_size <= MAX_SCALAR:
                        token.append(data[i:i + 1])
                        token_size += 1
                    escape = False
                    i += 1
                    continue
                m = _IN.search(data, i)
                j = m.start() if m else n
                piece = data[i:j + 1] if m else data[i:]
                if cap is not None:
                    cap.add(piece, max_element)
                elif token_kind:
                    if token_size <= MAX_SCALAR:
                        token.append(piece)
                    token_size += len(piece)
                if m is None:
                    i = n
                    continue
                i = j + 1
                if data[j] == 0x5C:
                    escape = True
                    if i < n:  # the escaped byte
                        if cap is not None:
                            cap.add(data[i:i + 1], max_element)
                        elif token_size <= MAX_SCALAR:
                            token.append(data[i:i + 1])
                            token_size += 1
                        escape = False
                        i += 1
                    continue
                in_string = False
                continue  # a string element ends at the following ',' or ']'

            m = _OUT.search(data, i)
            j = m.start() if m else n
            gap = data[i:j]
            if gap.strip(_WS):
                if done:
                    raise ScanError(base + i, "unexpected text after the JSON document")
                top = stack[-1] if stack else None
                if cap is None and top is not None and top.selected and not top.has_value:
                    cap = _Capture(base + i + (len(gap) - len(gap.lstrip(_WS))), scalar=True)
                if cap is not None:
                    cap.add(gap, max_element)
                else:
                    token_kind = token_kind or "atom"
                    if token_size <= MAX_SCALAR:
                        token.append(gap)
                    token_size += len(gap)
            elif cap is not None:
                cap.add(gap, max_element)
            if m is None:
                i = n
                continue
            ch = data[j]
            i = j + 1
            off = base + j
            top = stack[-1] if stack else None
            if cap is not None and not cap.scalar:  # inside a selected container element
                cap.add(data[j:j + 1], max_element)
                if ch == 0x22:
                    in_string = True
                elif ch in b"{[":
                    cap.depth += 1
                    cap.deepest = max(cap.deepest, cap.depth)
                elif ch in b"}]":
                    cap.depth -= 1
                    if cap.depth == 0:
                        yield finish_element()
                        assert top is not None
                        top.has_value = True
                continue
            if done:
                raise ScanError(off, "unexpected text after the JSON document")
            if ch == 0x22:
                in_string = True
                if cap is None and top is not None and top.selected and not top.has_value:
                    cap = _Capture(off, scalar=True)
                if cap is not None:
                    cap.add(b'"', max_element)
                else:
                    token, token_size, token_kind = [b'"'], 1, "string"
                continue
            if ch in b"{[":
                if cap is None and top is not None and top.selected and not top.has_value:
                    cap = _Capture(off, scalar=False)
                    cap.add(data[j:j + 1], max_element)
                    cap.depth = cap.deepest = 1
                    continue
                if cap is not None:  # "1{" inside a scalar element: broken, let orjson say so
                    cap.add(data[j:j + 1], max_element)
                    continue
                if token_kind:
                    raise ScanError(off, "a value is followed by another without a ',' between")
                if len(stack) >= max_depth:
                    raise ScanError(off, f"the document is nested more than {max_depth} levels "
                                    "deep")
                if top is not None and not top.array and top.key is None:
                    raise ScanError(off, "an object key is missing")
                selected = ch == 0x5B and want(path())
                stack.append(_Frame(ch == 0x5B, selected))
                continue
            # ':' ',' '}' ']' outside a container element
            if cap is not None:  # the end of a scalar element
                assert top is not None
                if ch == 0x3A:
                    cap.add(b":", max_element)
                    continue
                yield finish_element()
                top.has_value = True
            if top is None:
                raise ScanError(off, f"unexpected {chr(ch)!r} outside any object or array")
            if ch == 0x3A:
                if top.array or token_kind != "string" or top.key is not None:
                    raise ScanError(off, "unexpected ':'")
                raw = take_token()
                if raw is None:
                    raise ScanError(off, "an object key is too long")
                try:
                    key = orjson.loads(raw)
                except ValueError:
                    key = raw[1:-1].decode("utf-8", "replace")
                top.key = key if isinstance(key, str) else str(key)
                continue
            if token_kind:
                if not top.array and top.key is None:
                    raise ScanError(off, "an object key without a value")
                yield from end_value()
                top.has_value = True
            if ch == 0x2C:
                if not top.has_value:
                    raise ScanError(off, "unexpected ','")
                top.has_value = False
                if top.array:
                    top.index += 1
                    top.key = top.index
                else:
                    top.key = None
                continue
            if (ch == 0x5D) != top.array:
                raise ScanError(off, f"unexpected {chr(ch)!r}")
            if top.array and top.index > 0 and not top.has_value:
                raise ScanError(off, "a value is missing before ']'")
            stack.pop()
            if stack:
                stack[-1].has_value = True
            else:
                done = True
        base += n
    if cap is not None:
        c = cap
        cap = None
        yield Element((*path(),), c.offset, b"".join(c.parts)[:EXCERPT],
                      "the file ends inside this record")
        raise ScanError(base, "the file ends inside a record")
    if in_string:
        raise ScanError(base, "the file ends inside a string")
    if token_kind and not stack:
        yield from end_value()
        return
    if stack:
        raise ScanError(base, "the file ends before the JSON document does")
    if not started:
        raise ScanError(0, "the file holds no JSON")
