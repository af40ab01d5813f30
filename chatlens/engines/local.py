"""Run a pure stage function over Arrow batches, in this process or in worker processes."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")


def map_batches(func: Callable[[pa.Table], T], batches: Iterable[pa.Table | pa.RecordBatch],
                workers: int = 1) -> Iterator[T]:
    """Yield ``func(batch)`` for each batch, in order.

    With ``workers > 1`` batches go to a process pool (spawned, so no state leaks from the
    parent); at most ``2 × workers`` batches are in flight, which bounds memory.
    """
    if workers <= 1:
        for batch in batches:
            yield func(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch)
                       else batch)
        return
    ctx = multiprocessing.get_context("spawn")
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


def appends(results: Iterable[tuple[pa.Table, bool]], rows: int = APPEND_ROWS,
            ) -> Iterator[tuple[pa.Table, bool]]:
    """Consecutive ``(table, flag)`` results joined into appends of at least ``rows`` rows (the
    last may be smaller): the tables concatenated, and whether all their flags were true."""
    parts: list[pa.Table] = []
    flag, size = True, 0
    for table, ok in results:
        parts.append(table)
        flag, size = flag and ok, size + table.num_rows
        if size >= rows:
            yield pa.concat_tables(parts), flag
            parts, flag, size = [], True, 0
    if parts:
        yield pa.concat_tables(parts), flag
