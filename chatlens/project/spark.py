"""The middle of the enrich and code stages on Spark: export what is to do as a Parquet
dataset, run the pure stage functions there (:mod:`chatlens.engines.spark`), attach the
results. The dataset lives in the project's ``spark/`` folder and is removed afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from chatlens.code.compiled import CompiledCodebook
from chatlens.enrich import EnrichSettings
from chatlens.store import Store
from chatlens.store import parquet as pq

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@contextmanager
def _spark(store: Store, master: str | None, run_id: str) -> Iterator[tuple[SparkSession, str]]:
    from chatlens.engines import spark

    work = store.root / "spark" / run_id
    session = spark.session(master)
    try:
        yield session, str(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def enrich(store: Store, settings: EnrichSettings, master: str | None, run_id: str) -> int:
    """Enrich the messages not yet enriched with ``settings`` on Spark; returns how many."""
    from chatlens.engines import spark

    fp = settings.fingerprint()
    with _spark(store, master, run_id) as (session, work):
        if not pq.export_enrich_todo(store, work, fp):
            return 0
        spark.enrich(session, pq.join(work, pq.MESSAGES), pq.join(work, pq.ENRICHMENT),
                     settings)
        return pq.attach_enrichment(store, work, fp)


def code(store: Store, compiled: CompiledCodebook, fingerprint: str, n_measures: int,
         master: str | None, run_id: str) -> int:
    """Code the enriched messages lacking codes on Spark; returns how many code rows."""
    from chatlens.engines import spark

    with _spark(store, master, run_id) as (session, work):
        if not pq.export_code_todo(store, work, compiled.name, fingerprint, n_measures):
            return 0
        spark.code(session, pq.join(work, pq.MESSAGES), pq.join(work, pq.CODES), compiled)
        return pq.attach_codes(store, work, run_id, compiled.name,
                               [m.id for m in compiled.measures])
