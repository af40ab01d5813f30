"""The project store: the only package that knows SQL and file paths.

:mod:`.core` holds the project, ingest tables and runs; :mod:`.stages` the tables later stages
write (enrichment, codebooks, codes).
"""

from chatlens.store.core import (
    DB_NAME,
    MESSAGE_SQL_COLUMNS,
    SECRET_NAME,
    BatchResult,
    SourceState,
    Store,
    arrow_table,
    is_project,
)

__all__ = [
    "DB_NAME",
    "MESSAGE_SQL_COLUMNS",
    "SECRET_NAME",
    "BatchResult",
    "SourceState",
    "Store",
    "arrow_table",
    "is_project",
]
