"""The importer registry and format detection.

Importers are registered in one explicit place, :func:`default_importers`; nothing registers
itself as a side effect of being imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatlens.errors import UnknownFormatError, UsageError
from chatlens.ingest.base import Importer, SourceInput


def default_importers() -> list[Importer]:
    from chatlens.ingest.generic import GenericCsv, GenericJsonl, GenericParquet
    from chatlens.ingest.telegram_html import TelegramHtml
    from chatlens.ingest.telegram_json import TelegramJson
    from chatlens.ingest.viber import ViberDesktop
    from chatlens.ingest.whatsapp import WhatsAppText

    return [
        TelegramJson(), TelegramHtml(), WhatsAppText(), ViberDesktop(),
        GenericCsv(), GenericJsonl(), GenericParquet(),
    ]


_REGISTRY: dict[str, Importer] = {}


def importers() -> dict[str, Importer]:
    """All importers by user-facing format name."""
    if not _REGISTRY:
        for imp in default_importers():
            _REGISTRY[imp.format] = imp
    return _REGISTRY


def get_importer(fmt: str) -> Importer:
    known = importers()
    for imp in known.values():
        if fmt in (imp.format, imp.name):
            return imp
    raise UsageError(f"Unknown format {fmt!r}; choose one of: {', '.join(sorted(known))}.")


@dataclass(slots=True)
class Detection:
    """What :func:`detect` decided, and why."""

    importer: Importer
    confidence: float
    reason: str


def detect(source: SourceInput, fmt: str | None = None) -> Detection:
    """Pick the importer for ``source``: ``fmt`` if given, else the most confident sniffer."""
    if fmt:
        return Detection(get_importer(fmt), 1.0, "format given by the user")
    if source.hint:
        imp = get_importer(source.hint)
        return Detection(imp, 1.0, f"file names of a {imp.format} export")
    scores: list[tuple[float, Importer]] = []
    for imp in importers().values():
        scores.append((imp.sniff(source), imp))
        if scores[-1][0] >= 0.95:  # unmistakable (magic bytes, exporter layout): stop sniffing
            break
    scores.sort(key=lambda pair: pair[0], reverse=True)
    best, imp = scores[0]
    if best < 0.5:
        raise UnknownFormatError(
            source.path,
            "not a format chatlens recognises (Telegram JSON/HTML, WhatsApp .txt/.zip, Viber "
            "viber.db, CSV/JSONL/Parquet). Pass --format to choose one.",
        )
    runner_up = [f"{i.format}={s:.2f}" for s, i in scores[1:3] if s > 0]
    reason = f"sniffed as {imp.format} (confidence {best:.2f}"
    reason += f"; next: {', '.join(runner_up)})" if runner_up else ")"
    return Detection(imp, best, reason)
