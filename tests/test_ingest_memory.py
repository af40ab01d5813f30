"""Ingest's DuckDB memory: a fixed budget for the batches plus what the key index holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatlens.store.core import INDEX_BYTES_PER_MESSAGE, Store, _size_bytes, first_row


def _setting(store: Store) -> int:
    row = first_row(store.con.execute("SELECT current_setting('memory_limit')"))
    assert row is not None
    return _size_bytes(str(row[0]))


def _index_bytes(store: Store) -> int:
    row = first_row(store.con.execute(
        "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'ART_INDEX'"))
    return int(row[0] or 0) if row else 0


def test_sizes_read_as_duckdb_reads_them() -> None:
    assert _size_bytes("256MB") == 256 * 10**6
    assert _size_bytes("1GiB") == 2**30
    assert _size_bytes("95.3 MiB") == int(95.3 * 2**20)


def test_load_limit_is_the_budget_plus_the_key_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """300k stored messages hold ~20 MB of primary-key index that DuckDB cannot evict: ingest's
    limit makes room for it on top of CHATLENS_LOAD_MEMORY, and the usual limit comes back."""
    monkeypatch.setenv("CHATLENS_LOAD_MEMORY", "64MB")
    store = Store.create(tmp_path / "p")
    try:
        for lo, hi in ((0, 300_000), (300_000, 301_000)):  # the small insert loads the index
            store.con.execute(
                "INSERT INTO messages SELECT md5(i::VARCHAR)[:24], 'telegram', 'telegram:1', "
                "i::VARCHAR, NULL, false, NULL, '', 'message', NULL, NULL, NULL, NULL, NULL, "
                f"'s', i, 'line' FROM range({lo}, {hi}) r(i)")
        index = _index_bytes(store)
        assert index > 10 * 2**20
        budget, reckoned = 64 * 10**6, max(index, 301_000 * INDEX_BYTES_PER_MESSAGE)
        with store.bulk_load(lean=True):
            limit = _setting(store)
            assert budget + index <= limit <= budget + reckoned + (17 << 20)
            # a checkpoint writes the index out; the next insert loads it back whole, so the
            # room stays (a limit that followed the resident index stopped a 5 GB ingest)
            store.con.execute("CHECKPOINT")
            assert _index_bytes(store) < index
            store._fit_load_memory()
            assert _setting(store) >= limit
        assert abs(_setting(store) - 10**9) < 2**20  # back to 1GB (DuckDB shows it rounded)
        # a project whose index is not in memory yet gets the room before its first insert
        with store.bulk_load(lean=True):
            assert _setting(store) >= budget + 301_000 * INDEX_BYTES_PER_MESSAGE
    finally:
        store.close()
