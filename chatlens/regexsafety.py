"""Reject regular expressions that can take exponential time (nested unbounded repeats)."""

from __future__ import annotations

import importlib
import re
from typing import Any

sre_parse: Any = importlib.import_module("re._parser")  # the parser behind re.compile (3.11+)

_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
MAXREPEAT = sre_parse.MAXREPEAT


def _unbounded_repeat_inside(items: Any, inside_repeat: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _lo, hi, body = arg
            unbounded = hi == MAXREPEAT or hi > 100
            if unbounded and inside_repeat:
                return True
            if _unbounded_repeat_inside(body, inside_repeat or unbounded):
                return True
        elif name == "SUBPATTERN":
            if _unbounded_repeat_inside(arg[-1], inside_repeat):
                return True
        elif name == "BRANCH":
            if any(_unbounded_repeat_inside(b, inside_repeat) for b in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT") and _unbounded_repeat_inside(arg[1], inside_repeat):
            return True
    return False


def check_pattern(pattern: str) -> None:
    """Raise ValueError if ``pattern`` does not compile or nests unbounded repeats."""
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValueError(f"the regular expression does not compile: {exc}") from None
    if _unbounded_repeat_inside(list(parsed), False):
        raise ValueError("the regular expression nests unbounded repeats (like (a+)+), which "
                         "can take exponential time on some messages; rewrite it without the "
                         "nested quantifier")


def first_chars(pattern: str, ignore_case: bool) -> frozenset[str] | None:
    """Characters one of which every match must contain (its possible first characters), or
    None when that cannot be told cheaply. Used to skip messages that cannot match."""
    chars: set[str] = set()

    def first(items: Any) -> bool:
        """Add the possible first characters of a sequence; False if unknown."""
        for op, arg in items:
            name = str(op)
            if name in ("AT", "ASSERT", "ASSERT_NOT"):
                continue  # zero-width: look further
            if name == "LITERAL":
                ch = chr(arg)
                chars.update({ch, ch.lower(), ch.upper()} if ignore_case else {ch})
                return True
            if name == "IN" and all(str(o) == "LITERAL" for o, _ in arg):
                for _, code in arg:
                    ch = chr(code)
                    chars.update({ch, ch.lower(), ch.upper()} if ignore_case else {ch})
                return True
            if name == "SUBPATTERN":
                return first(arg[-1])
            if name == "BRANCH":
                return all(first(b) for b in arg[1])
            if name in _REPEATS and arg[0] >= 1:
                return first(arg[2])
            return False
        return False

    return frozenset(chars) if first(list(sre_parse.parse(pattern))) else None
