"""Placeholder replaced by the Telegram HTML importer."""
from __future__ import annotations
from collections.abc import Iterator
from chatlens.ingest.base import Item, ParseOptions, SourceInput


class TelegramHtml:
    name = "telegram_html.v1"
    format = "telegram-html"
    platform = "telegram"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError
