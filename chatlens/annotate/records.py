"""The canonical label record and the problem report for rows that could not be read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

MAX_SPAN = 1 << 31  # character offsets beyond any message
MAX_TEXT = 1 << 20  # longest uid, value, annotator or comment accepted

SampleKind = Literal["audit", "train", "reference", "none"]
Origin = Literal["annotate", "correction", "import", "adjudication"]
SAMPLE_KINDS: tuple[str, ...] = ("audit", "train", "reference", "none")
ORIGINS: tuple[str, ...] = ("annotate", "correction", "import", "adjudication")


@dataclass(frozen=True)
class LabelRecord:
    """One human label: ``annotator`` says ``value`` for ``measure`` on message ``uid``.

    ``created`` is an aware UTC datetime (other zones are converted). ``sample_kind`` is the
    sample the item was drawn for (``audit`` labels feed estimates, ``train`` labels only
    models); ``origin`` how the label was made. ``span`` is an optional ``(start, end)``
    character range in the message text the label points at.
    """

    uid: str
    measure: str
    value: str
    annotator: str
    created: datetime
    sample_kind: SampleKind = "none"
    origin: Origin = "import"
    span: tuple[int, int] | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        for name in ("uid", "measure", "value", "annotator"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        for name in ("uid", "measure", "value", "annotator", "comment"):
            _check_text(name, getattr(self, name))
        if self.created.tzinfo is None or self.created.utcoffset() is None:
            raise ValueError("created must be timezone-aware")
        try:
            object.__setattr__(self, "created", self.created.astimezone(UTC))
        except OverflowError:
            raise ValueError("created is out of range once converted to UTC") from None
        if self.sample_kind not in SAMPLE_KINDS:
            raise ValueError(f"sample_kind must be one of {', '.join(SAMPLE_KINDS)}")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {', '.join(ORIGINS)}")
        if self.comment == "":
            object.__setattr__(self, "comment", None)
        if self.span is not None:
            start, end = (int(x) for x in self.span)
            if not 0 <= start <= end <= MAX_SPAN:
                raise ValueError(f"span must be 0 <= start <= end <= {MAX_SPAN}, got "
                                 f"{str(list(self.span))[:60]}")
            object.__setattr__(self, "span", (start, end))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (``created`` as ISO 8601 with offset, ``span`` as a list or null)."""
        return {"uid": self.uid, "measure": self.measure, "value": self.value,
                "annotator": self.annotator, "created": self.created.isoformat(),
                "sample_kind": self.sample_kind, "origin": self.origin,
                "span": list(self.span) if self.span else None, "comment": self.comment}


@dataclass(frozen=True)
class LabelProblem:
    """A row (or annotation) that was skipped, with where it is and why."""

    path: str
    line: int | None
    message: str
    where: str | None = None  # position when there is no line (Label Studio task/annotation)

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line is not None else (self.where or "")
        return f"{self.path}" + (f" ({at})" if at else "") + f": {self.message}"


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        return
    if len(value) > MAX_TEXT:
        raise ValueError(f"{name} is {len(value)} characters long, more than {MAX_TEXT}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
                         "which is not text; fix the file's escapes") from None


def parse_time(text: object) -> datetime:
    """An ISO 8601 time as aware UTC; a naive time is read as UTC.

    ``ValueError`` for anything else: a non-string, a malformed time, or one that cannot be
    expressed in UTC (``0001-01-01T00:00+05:00``).
    """
    if not isinstance(text, str):
        raise ValueError(f"not a time: {str(text)[:40]!r}")
    try:
        t = datetime.fromisoformat(text.strip())
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time {text[:40]!r} is out of range") from None


def context_text(messages: Any) -> str:
    """Context messages as plain text, one message per line: a list is joined, never written
    as its Python repr (``"['…', '…']"``)."""
    if messages is None:
        return ""
    if isinstance(messages, list | tuple):
        return "\n".join(str(m) for m in messages if m)
    return str(messages)
