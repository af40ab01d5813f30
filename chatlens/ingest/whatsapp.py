"""Placeholder replaced by the WhatsApp importer."""
from __future__ import annotations
from collections.abc import Iterator
from chatlens.ingest.base import Item, ParseOptions, SourceInput


class WhatsAppText:
    name = "whatsapp_txt.v1"
    format = "whatsapp"
    platform = "whatsapp"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError
