"""Run a pure stage function over Arrow batches, in this process or in worker processes."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")


def map_batches(func: Callable[[pa.Table], T], batches: Iterable[pa.Table | pa.RecordBatch],
                workers: int = 1, preload: str | None = None) -> Iterator[T]:
    """Yield ``func(batch)`` for each batch, in order.

    With ``workers > 1`` batches go to a process pool; at most ``2 × workers`` batches are in
    flight, which bounds memory. Its workers are forked from a fork server (a fresh process,
    so no state leaks from the parent, and none of its threads: DuckDB's), which first imports
    ``preload`` (a module name), so what that module loads is loaded once for all workers of
    every pool of this process. Where there is no fork server (Windows) workers are spawned.
    """
    if workers <= 1:
        for batch in batches:
            yield func(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch)
                       else batch)
        return
    ctx: BaseContext = multiprocessing.get_context("spawn")
    if "forkserver" in multiprocessing.get_all_start_methods():
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(["__main__", *([preload] if preload else [])])
        ctx = server
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque[Future[T]] = deque()
        for batch in batches:
            table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            pending.append(pool.submit(func, table))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


#: Rows per store append: a full DuckDB row group (122,880 rows) or more is written straight to
#: the database file; a smaller insert goes through the write-ahead log first (written twice).
APPEND_ROWS = 131_072


def appends(results: Iterable[tuple[Sequence[pa.Table], bool]], rows: int = APPEND_ROWS,
            ) -> Iterator[tuple[list[pa.Table], bool]]:
    """Consecutive ``(tables, flag)`` results joined into appends of at least ``rows`` rows of
    the first table (the last may be smaller): each table concatenated with its fellows, and
    whether all their flags were true."""
    parts: list[Sequence[pa.Table]] = []
    flag, size = True, 0
    for tables, ok in results:
        parts.append(tables)
        flag, size = flag and ok, size + tables[0].num_rows
        if size >= rows:
            yield [pa.concat_tables(t) for t in zip(*parts, strict=True)], flag
            parts, flag, size = [], True, 0
    if parts:
        yield [pa.concat_tables(t) for t in zip(*parts, strict=True)], flag
