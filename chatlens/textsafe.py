"""Make untrusted text safe to show: in a terminal now, in HTML and CSV where they are written."""

from __future__ import annotations

import re

from chatlens.privacy import mask_pii as mask_pii  # masking lives there; importable here

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


#: Cell beginnings a spreadsheet would execute as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A CSV cell that spreadsheets show as text: an apostrophe before a formula prefix (and
    before an apostrophe that precedes one, so :func:`csv_unsafe` restores the original)."""
    cell = "" if value is None else str(value)
    if cell.startswith(FORMULA_PREFIXES) or (
            len(cell) > 1 and cell[0] == "'" and cell[1] in (*FORMULA_PREFIXES, "'")):
        return "'" + cell
    return cell


def csv_safe_sql(col: str) -> str:
    """:func:`csv_safe` as a SQL expression over column ``col`` (for exports written by DuckDB),
    named after the column; its pattern is built from :data:`FORMULA_PREFIXES`."""
    cls = "".join({"\t": r"\t", "\r": r"\r", "-": r"\-"}.get(c, c) for c in FORMULA_PREFIXES)
    pattern = f"^(?:[{cls}]|''[{cls}''])"  # '' is one quote inside the SQL string
    return (f"CASE WHEN regexp_matches({col}, '{pattern}') THEN '''' || {col} "
            f"ELSE {col} END AS {col}")


def csv_unsafe(cell: str) -> str:
    """Inverse of :func:`csv_safe`."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in (*FORMULA_PREFIXES, "'"):
        return cell[1:]
    return cell
