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


def start_class(pattern: str, ignore_case: bool) -> re.Pattern[str] | None:
    """A character class matching every character a match of ``pattern`` can start with, or
    None when that cannot be told cheaply. Where the pattern ignores case (the flag, a leading
    ``(?i)`` or a scoped ``(?i:...)``), the class does too, so it folds case exactly as ``re``
    does (``ſ`` for s, the Kelvin sign for k). Lets a scorer try a match only at those
    positions, and skip messages without any."""
    chars: set[str] = set()
    parsed = sre_parse.parse(pattern)
    icase = ignore_case or bool(parsed.state.flags & re.IGNORECASE)

    def first(items: Any) -> bool:
        """Add the possible first characters of a sequence; False if unknown."""
        nonlocal icase
        for op, arg in items:
            name = str(op)
            if name in ("AT", "ASSERT", "ASSERT_NOT"):
                continue  # zero-width: look further
            if name == "LITERAL":
                chars.add(chr(arg))
                return True
            if name == "IN" and all(str(o) == "LITERAL" for o, _ in arg):
                chars.update(chr(code) for _, code in arg)
                return True
            if name == "SUBPATTERN":
                icase = icase or bool(arg[1] & re.IGNORECASE)  # (?i:...)
                return first(arg[-1])
            if name == "BRANCH":
                return all(first(b) for b in arg[1])
            if name in _REPEATS and arg[0] >= 1:
                return first(arg[2])
            return False
        return False

    if not first(list(parsed)) or not chars:
        return None
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]",
                      re.IGNORECASE if icase else 0)
