"""The Python API: a project and the operations on it. The CLI is a thin shell over this."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from chatlens import __version__
from chatlens.errors import ChatlensError
from chatlens.ingest.base import ParseOptions
from chatlens.ingest.pipeline import IngestReport, Progress
from chatlens.ingest.pipeline import ingest as _ingest
from chatlens.store import Store


def default_project_dir() -> Path:
    """``$CHATLENS_PROJECT`` if set, else the current directory."""
    return Path(os.environ.get("CHATLENS_PROJECT") or ".")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Project:
    """An open chatlens project. Create with :meth:`init`, open with :meth:`open`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def root(self) -> Path:
        return self.store.root

    @classmethod
    def init(cls, root: str | Path) -> Project:
        return cls(Store.create(root))

    @classmethod
    def open(cls, root: str | Path | None = None, read_only: bool = False) -> Project:
        return cls(Store.open(root if root is not None else default_project_dir(), read_only))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(
        self,
        paths: list[str | Path],
        format: str | None = None,
        column_map: dict[str, str] | None = None,
        tz: str = "UTC",
        chat: str | None = None,
        date_order: str | None = None,
        encoding: str | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files, folders and archives; see :func:`chatlens.ingest.pipeline.ingest`."""
        run_id = new_run_id()
        params: dict[str, Any] = {
            "paths": [str(p) for p in paths], "format": format, "map": column_map or {},
            "tz": tz, "chat": chat, "date_order": date_order, "encoding": encoding,
        }
        self.store.start_run(run_id, "ingest", __version__, params)
        options = ParseOptions(column_map=dict(column_map or {}), tz=tz, chat=chat,
                               date_order=date_order, encoding=encoding)
        status = "failed"
        report = IngestReport(run_id=run_id)
        try:
            report = _ingest(self.store, [str(p) for p in paths], run_id, format, options,
                             progress)
            status = "complete" if not report.failed else (
                "partial" if len(report.failed) < len(report.sources) else "failed")
        finally:
            self.store.finish_run(run_id, status, {
                "version": __version__, "params": params, **report.as_dict(),
            })
        return report

    def status(self) -> dict[str, Any]:
        summary = self.store.summary()
        summary["sources_detail"] = self.store.sources()
        summary["chats_detail"] = self.store.chats()
        return summary

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.quarantined(limit)

    def messages(self) -> pa.Table:
        """All stored messages (pseudonymised) as an Arrow table."""
        return self.store.messages_arrow()

    def export(self, path: str | Path, fmt: str | None = None) -> int:
        """Export messages to Parquet, CSV or JSONL (format from ``fmt`` or the suffix)."""
        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower() or "parquet"
        if fmt == "json":
            fmt = "jsonl"
        run_id = new_run_id()
        self.store.start_run(run_id, "export", __version__, {"path": str(path), "format": fmt})
        try:
            n = self.store.export_messages(path, fmt)
        except ChatlensError:
            self.store.finish_run(run_id, "failed", {})
            raise
        self.store.finish_run(run_id, "complete", {"rows": n, "path": str(path), "format": fmt})
        return n
