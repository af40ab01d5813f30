"""Make untrusted text safe to show: in a terminal now, in HTML and CSV where they are written."""

from __future__ import annotations

import re

# C0/C1 controls (except tab and newline), DEL, and bidi overrides/isolates that can disguise text.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str | None, single_line: bool = False) -> str:
    """Replace control and bidi-override characters with visible escapes (``\\x1b``)."""
    if text is None:
        return ""
    out = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                      else f"\\u{ord(m.group()):04x}", text)
    if single_line:
        out = out.replace("\n", "⏎ ").replace("\t", " ")
    return out


_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{7,}\d(?!\w)")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")


def mask_pii(text: str | None) -> str:
    """Mask phone numbers and e-mail addresses (for displays, evidence and reports)."""
    if not text:
        return ""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))
