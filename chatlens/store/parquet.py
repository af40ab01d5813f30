"""The Parquet interchange with a cluster: a dataset of messages partitioned by
(platform, chat, month) out, enrichment and codes written by Spark back in.

Layout of a dataset folder (local path or any URI pyarrow opens, e.g. ``s3://bucket/prefix``)::

    messages/platform=…/chat=…/month=YYYY-MM/part-….parquet   what the stages read
    enrichment/part-….parquet                                 written by the Spark job
    codes/part-….parquet                                      written by the Spark job
    job.json, models/                                         what the job computes, with what

Messages carry only what enrich and code read (uid, chat, time, kind, text; with ``enriched``
also lang, norm and lemmas); never authors' identities or original records. Partition values
are only a layout; readers ignore them (the columns are in the files).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from chatlens.errors import UsageError
from chatlens.store.core import Store, arrow_reader, first_row
from chatlens.store.stages import _ENRICH_TODO, ENRICH_COLUMNS, code_todo

PARTITIONS = ("platform", "chat", "month")
MESSAGES, ENRICHMENT, CODES, JOB = "messages", "enrichment", "codes", "job.json"
EXPORT_BATCH = 50_000
_PARTITIONING = ds.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS]),
                                flavor="hive")
#: Partition values: the chat as a short file-name-safe slug plus a hash of its key (keys can
#: be long titles in any script), the month in UTC.
_PARTS_SQL = ("m.platform, left(regexp_replace(m.chat_key, '[^A-Za-z0-9_.-]+', '_', 'g'), 40) "
              "|| '-' || left(md5(m.chat_key), 8) AS chat, "
              "coalesce(strftime(m.ts, '%Y-%m'), 'undated') AS month")
_MESSAGE_COLS = "m.uid, m.chat_key, m.ts, m.kind, m.text"


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a folder or URI."""
    if uri.startswith("s3a://"):  # Hadoop's name for the same bucket
        uri = "s3://" + uri.removeprefix("s3a://")
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path)
    except (pa.ArrowInvalid, ValueError):  # a plain relative path
        return pafs.LocalFileSystem(), str(pafs.LocalFileSystem().normalize_path(uri))


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def _write(store: Store, sql: str, params: list[Any], uri: str,
           reader: pa.RecordBatchReader | None = None) -> int:
    """Write the rows of ``sql`` (or of ``reader``) as the dataset's messages."""
    fs, path = _fs(join(uri, MESSAGES))
    if reader is None:
        reader = arrow_reader(store.con.cursor().sql(sql, params=params or None), EXPORT_BATCH)
    count = 0

    def counted() -> Any:
        nonlocal count
        for b in reader:
            count += b.num_rows
            yield b

    ds.write_dataset(pa.RecordBatchReader.from_batches(reader.schema, counted()), path,
                     filesystem=fs, format="parquet", partitioning=_PARTITIONING,
                     basename_template=f"part-{uuid.uuid4().hex[:8]}-{{i}}.parquet",
                     existing_data_behavior="overwrite_or_ignore", max_partitions=1 << 20,
                     max_rows_per_file=1 << 20, max_rows_per_group=1 << 17)
    return count


def export_messages(store: Store, uri: str) -> int:
    """Every message, for a job that enriches and codes them all."""
    return _write(store, f"SELECT {_MESSAGE_COLS}, {_PARTS_SQL} FROM messages m", [], uri)


def export_enrich_todo(store: Store, uri: str, fingerprint: str) -> int:
    """Messages not yet enriched with ``fingerprint``."""
    return _write(store, f"SELECT {_MESSAGE_COLS}, {_PARTS_SQL} {_ENRICH_TODO}", [fingerprint],
                  uri)


def export_code_todo(store: Store, uri: str, codebook: str, fingerprint: str,
                     n_measures: int) -> int:
    """Enriched messages with fewer than ``n_measures`` codes, with their enrichment."""
    todo = code_todo(store, codebook, fingerprint, n_measures, EXPORT_BATCH,
                     extra=f", {_PARTS_SQL}")
    schema = todo.schema.remove(todo.schema.get_field_index("n_coded"))
    return _write(store, "", [], uri, pa.RecordBatchReader.from_batches(
        schema, (b.drop_columns(["n_coded"]) for b in todo)))


def write_job(uri: str, job: dict[str, Any]) -> None:
    fs, path = _fs(join(uri, JOB))
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(job, ensure_ascii=False, indent=2).encode())


def read_job(uri: str) -> dict[str, Any]:
    fs, path = _fs(join(uri, JOB))
    try:
        with fs.open_input_stream(path) as f:
            job: dict[str, Any] = json.loads(f.read())
    except FileNotFoundError as exc:
        raise UsageError(f"{uri} has no {JOB}; make the dataset with `chatlens parquet "
                         "export`.") from exc
    return job


def copy_folder(src: str, uri: str) -> None:
    """Copy a local folder (trained models) into the dataset."""
    fs, path = _fs(uri)
    pafs.copy_files(src, path, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)


def _dataset(uri: str) -> ds.Dataset | None:
    fs, path = _fs(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    return ds.dataset(path, filesystem=fs, format="parquet")  # ignores _SUCCESS, .crc


def attach_enrichment(store: Store, uri: str, fingerprint: str) -> int:
    """Insert the dataset's enrichment of stored messages not yet enriched; returns how many.
    Enrichment made with other settings than the project's is refused."""
    data = _dataset(join(uri, ENRICHMENT))
    if data is None:
        return 0
    prints = set(data.to_table(columns=["fingerprint"]).column(0).unique().to_pylist())
    if prints - {fingerprint}:
        raise UsageError(f"{uri} was enriched with settings {sorted(prints)}, not the project's "
                         f"({fingerprint}); run the job again on a fresh export.")
    with store.transaction() as con:
        con.register("_att", data.scanner(columns=ENRICH_COLUMNS.split(", ")).to_reader())
        row = first_row(con.execute(
            f"INSERT INTO enrichment ({ENRICH_COLUMNS}) SELECT {ENRICH_COLUMNS} FROM _att a "
            "SEMI JOIN messages USING (uid) "
            "ANTI JOIN (SELECT uid FROM enrichment WHERE fingerprint = ?) e USING (uid)",
            [fingerprint]))
        con.unregister("_att")
    return int(row[0]) if row else 0


_CODE_COLS = "uid, codebook, measure, in_population, value, score, scorer, matched"


def attach_codes(store: Store, uri: str, run_id: str, codebook: str,
                 measures: list[str]) -> int:
    """Insert the dataset's codes of ``measures`` that the project lacks (a code replaces a
    ``missing`` one, as in :func:`chatlens.store.stages.write_codes`); returns how many."""
    data = _dataset(join(uri, CODES))
    if data is None:
        return 0
    cols = _CODE_COLS.split(", ")
    keep = (ds.field("codebook") == codebook) & ds.field("measure").isin(measures)
    with store.transaction() as con:
        con.register("_att", data.scanner(columns=cols, filter=keep).to_reader())
        con.execute("CREATE OR REPLACE TEMP TABLE _att_codes AS SELECT * FROM _att")
        con.unregister("_att")
        con.execute("DELETE FROM codes WHERE scorer = 'missing' AND (uid, codebook, measure) "
                    "IN (SELECT uid, codebook, measure FROM _att_codes WHERE scorer IS DISTINCT "
                    "FROM 'missing')")
        row = first_row(con.execute(
            f"INSERT INTO codes SELECT {_CODE_COLS}, ? FROM _att_codes a "
            "SEMI JOIN messages USING (uid) "
            "ANTI JOIN (SELECT uid, codebook, measure FROM codes WHERE codebook = ?) c "
            "USING (uid, codebook, measure)", [run_id, codebook]))
        con.execute("DROP TABLE _att_codes")
    return int(row[0]) if row else 0
