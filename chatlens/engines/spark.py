"""Run the enrich and code stages as Spark jobs: the same pure functions, inside ``mapInArrow``.

Input and output are Parquet datasets (see :mod:`chatlens.store.parquet` for the layout);
the project exports to them and attaches the results. On a cluster, run this module with
``spark-submit`` on a dataset made by ``chatlens parquet export`` (see docs/spark.md)::

    spark-submit --master yarn -m chatlens.engines.spark s3a://bucket/corpus

PySpark is the ``spark`` extra, imported only here.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from chatlens.code.compiled import CompiledCodebook
from chatlens.code.stage import CODE_SCHEMA, INPUT_COLUMNS, code_table
from chatlens.enrich.pipeline import ENRICH_SCHEMA, enrich_table
from chatlens.enrich.settings import EnrichSettings
from chatlens.errors import UsageError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Columns of the enrichment dataset: the stage's output and the settings' fingerprint.
ENRICHMENT_SCHEMA = pa.schema([*(f.with_nullable(True) for f in ENRICH_SCHEMA),
                               pa.field("fingerprint", pa.string())])
_CODES_SCHEMA = pa.schema([f.with_nullable(True) for f in CODE_SCHEMA])


def session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session (``master`` e.g. ``local[2]``, ``spark://host:7077``; None: whatever
    ``spark-submit`` or ``SPARK_*`` settings say). A ``local`` master runs its Python workers
    with this interpreter and this copy of chatlens; a cluster's executors need chatlens
    installed (docs/spark.md)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise UsageError("The Spark engine needs PySpark and Java 17: pip install "
                         "'chatlens[spark]'.") from exc
    builder = SparkSession.builder.appName("chatlens")
    if master:
        builder = builder.master(master)
    if (master or "").startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        here = str(Path(__file__).resolve().parents[2])  # the folder holding chatlens/
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if here not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([here, *filter(None, paths)])
        builder = builder.config("spark.ui.enabled", "false")  # offline: no web UI port
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _read(spark: SparkSession, path: str, columns: tuple[str, ...]) -> DataFrame:
    # the partition folders are only a layout: their values are in the files' own columns
    return spark.read.option("recursiveFileLookup", "true").parquet(path).select(*columns)


def _enrich_batches(batches: Iterator[pa.RecordBatch], settings: EnrichSettings,
                    fingerprint: str) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        table = enrich_table(batch, settings)
        table = table.append_column("fingerprint", pa.array([fingerprint] * table.num_rows,
                                                            pa.string()))
        yield from table.cast(ENRICHMENT_SCHEMA).to_batches()


def _code_batches(batches: Iterator[pa.RecordBatch], compiled: CompiledCodebook,
                  ) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield from code_table(pa.Table.from_batches([batch]), compiled).cast(
            _CODES_SCHEMA).to_batches()


def enrich(spark: SparkSession, messages: str, out: str, settings: EnrichSettings) -> None:
    """Enrich the messages dataset at ``messages`` into Parquet at ``out``."""
    func = functools.partial(_enrich_batches, settings=settings,
                             fingerprint=settings.fingerprint())
    (_read(spark, messages, ("uid", "text"))
     .mapInArrow(func, _spark_schema(ENRICHMENT_SCHEMA))
     .write.mode("overwrite").parquet(out))


def code(spark: SparkSession, inputs: str | DataFrame, out: str,
         compiled: CompiledCodebook) -> None:
    """Code the dataset at ``inputs`` (columns :data:`~chatlens.code.stage.INPUT_COLUMNS`)
    into Parquet at ``out``. The compiled codebook (lexicons, models) travels to the
    executors with the task."""
    df = _read(spark, inputs, INPUT_COLUMNS) if isinstance(inputs, str) else inputs
    func = functools.partial(_code_batches, compiled=compiled)
    df.mapInArrow(func, _spark_schema(_CODES_SCHEMA)).write.mode("overwrite").parquet(out)


def run_job(spark: SparkSession, dataset: str, models_dir: Path | None = None) -> None:
    """Enrich and code every message of a dataset made by ``chatlens parquet export``, as its
    ``job.json`` says; results go to its ``enrichment/`` and ``codes/``."""
    from chatlens.code.compiled import compile_codebook
    from chatlens.codebook import Codebook
    from chatlens.store import parquet as pq

    job = pq.read_job(dataset)
    settings = EnrichSettings(**job["enrich"])
    enriched = pq.join(dataset, pq.ENRICHMENT)
    enrich(spark, pq.join(dataset, pq.MESSAGES), enriched, settings)
    if job.get("codebook") is None:
        return
    if models_dir is None and "://" not in dataset:
        models_dir = Path(dataset) / "models"
    compiled = compile_codebook(Codebook.model_validate(job["codebook"]), models_dir=models_dir)
    messages = _read(spark, pq.join(dataset, pq.MESSAGES), ("uid", "chat_key", "ts", "kind",
                                                              "text"))
    inputs = messages.join(_read(spark, enriched, ("uid", "lang", "norm", "lemmas")), "uid")
    code(spark, inputs.select(*INPUT_COLUMNS), pq.join(dataset, pq.CODES), compiled)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m chatlens.engines.spark",
                                 description="Enrich and code a dataset made by `chatlens "
                                 "parquet export`; attach the results with `chatlens parquet "
                                 "attach`.")
    ap.add_argument("dataset", help="dataset folder or URI (s3a://…, hdfs://…)")
    ap.add_argument("--master", default=None, help="Spark master (default: spark-submit's)")
    ap.add_argument("--models", type=Path, default=None,
                    help="local folder of the trained models the codebook uses (default: the "
                    "dataset's models/ when it is a local folder)")
    args = ap.parse_args(argv)
    spark = session(args.master)
    try:
        run_job(spark, args.dataset, args.models)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
