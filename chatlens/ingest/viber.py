"""Placeholder replaced by the Viber importer."""
from __future__ import annotations
from collections.abc import Iterator
from chatlens.ingest.base import Item, ParseOptions, SourceInput


class ViberDesktop:
    name = "viber_db.v1"
    format = "viber"
    platform = "viber"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError
