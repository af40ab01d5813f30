"""Placeholder replaced by the generic table importers."""
from __future__ import annotations
from collections.abc import Iterator
from chatlens.ingest.base import Item, ParseOptions, SourceInput


class GenericCsv:
    name = "generic_csv.v1"
    format = "csv"
    platform = "generic"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError


class GenericJsonl:
    name = "generic_jsonl.v1"
    format = "jsonl"
    platform = "generic"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError


class GenericParquet:
    name = "generic_parquet.v1"
    format = "parquet"
    platform = "generic"

    def sniff(self, source: SourceInput) -> float:
        return 0.0

    def parse(self, source: SourceInput, options: ParseOptions) -> Iterator[Item]:
        raise NotImplementedError
