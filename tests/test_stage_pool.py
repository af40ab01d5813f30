"""The stage pool: batches in order, workers that start with the stage's models loaded."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from chatlens.engines.local import map_batches
from chatlens.project.process import PRELOAD


def _worker_state(table: pa.Table) -> tuple[int, int, bool]:
    """The batch's value, the worker's pid, and whether pymorphy3 and py3langid were loaded
    before this batch came."""
    from chatlens.enrich.lid import _base_identifier
    from chatlens.enrich.morph import _analyzer

    warm = _analyzer.cache_info().currsize > 0 and _base_identifier.cache_info().currsize > 0
    return table.column("x")[0].as_py(), os.getpid(), warm


@pytest.mark.slow
def test_workers_start_with_the_models_loaded_and_give_batches_in_order() -> None:
    batches = [pa.table({"x": [i]}) for i in range(6)]
    out = list(map_batches(_worker_state, batches, workers=2, preload=PRELOAD))
    assert [x for x, _, _ in out] == list(range(6))
    assert all(warm for _, _, warm in out)
    assert os.getpid() not in {pid for _, pid, _ in out}
