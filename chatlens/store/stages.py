"""Tables written by the stages after ingest: enrichment, codebooks, measure state, codes.

Readers stream from a separate cursor (a snapshot), so a stage can write batch by batch while it
reads; every write is its own transaction, so an interrupted stage resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from chatlens.search_words import encode_lemmas, word_mask
from chatlens.store.batches import keyed_batches
from chatlens.store.core import LEMMA_INDEX_COLUMNS, Store, arrow_table, first_row

ENRICH_COLUMNS = ("uid, fingerprint, lang, lang_score, norm, lemmas, urls, mentions, hashtags, "
                  "emoji, places")


def _one(store: Store, sql: str, params: list[Any] | None = None) -> Any:
    row = first_row(store.con.execute(sql, params or []))
    return row[0] if row else None


# -- enrichment ------------------------------------------------------------------------------

def drop_stale_enrichment(store: Store, fingerprint: str) -> int:
    """Delete enrichment made with other settings; returns how many rows were dropped."""
    n = int(_one(store, "SELECT count(*) FROM enrichment WHERE fingerprint <> ?", [fingerprint]))
    if n:
        with store.transaction() as con:
            for table in ("lemma_index", "lemma_indexed"):
                con.execute(f"DELETE FROM {table} WHERE uid IN "
                            "(SELECT uid FROM enrichment WHERE fingerprint <> ?)", [fingerprint])
            con.execute("DELETE FROM enrichment WHERE fingerprint <> ?", [fingerprint])
    return n


_ENRICH_TODO = """
    FROM messages m ANTI JOIN (SELECT uid FROM enrichment WHERE fingerprint = ?) e USING (uid)
"""


def enrich_todo_count(store: Store, fingerprint: str) -> int:
    return int(_one(store, f"SELECT count(*) {_ENRICH_TODO}", [fingerprint]))


def enrich_todo(store: Store, fingerprint: str, batch_rows: int,
                for_code: bool = False) -> pa.RecordBatchReader:
    """uid, text and ts of messages not enriched with ``fingerprint`` (with ``for_code`` also
    chat_key and kind, what the code stage reads of a message), in message order, in batches
    of ``batch_rows`` (found on keys first: see :mod:`.batches`)."""
    columns = "uid, text, ts" + (", chat_key, kind" if for_code else "")
    return keyed_batches(
        store.con, f"SELECT m.rowid AS rid {_ENRICH_TODO}", [fingerprint],
        f"SELECT {columns} FROM messages WHERE rowid BETWEEN $1 AND $2 "
        "AND rowid IN (SELECT rid FROM {keys} WHERE rid BETWEEN $1 AND $2)", batch_rows)


def codes_without_enrichment(store: Store, codebook: str, fingerprint: str) -> int:
    """Messages with codes of ``codebook`` but no enrichment with ``fingerprint``: while there
    are none, codes written along with new enrichment cannot collide with older ones."""
    return int(_one(store, "SELECT count(*) FROM (SELECT DISTINCT uid FROM codes WHERE "
                           "codebook = ?) ANTI JOIN (SELECT uid FROM enrichment WHERE "
                           "fingerprint = ?) USING (uid)", [codebook, fingerprint]))


def write_enrichment(store: Store, table: pa.Table, fingerprint: str) -> None:
    table = table.append_column("fingerprint", pa.array([fingerprint] * table.num_rows,
                                                         pa.string()))
    with store.transaction() as con:
        con.register("_enr", table)
        con.execute(f"INSERT INTO enrichment ({ENRICH_COLUMNS}) SELECT {ENRICH_COLUMNS} FROM _enr")
        con.unregister("_enr")


INDEX_CHUNK = 200_000  # messages indexed per sorted run and transaction (bounds memory)
INDEX_MAX_RUNS = 4  # sorted runs the index may hold before it is compacted into one
INDEX_SLICE = 20_000_000  # index rows sorted at once while compacting (bounds memory)


def index_lemmas(store: Store, progress: Callable[[int, int], None] | None = None) -> int:
    """Add enriched messages not yet indexed to the search index; returns how many.

    ``lemma_index`` holds one row per distinct word lemma of a message, as an integer id from
    ``lemma_vocab``, with the message's time. Each run of :data:`INDEX_CHUNK` messages is
    written sorted by (lemma id, newest first), so DuckDB's zone maps let a lookup read only the
    row groups of the lemmas asked for (integer keys sort about five times faster than strings);
    each run commits with its entries in ``lemma_indexed``, so an interrupted indexing resumes
    where it stopped. A run is built in bulk: its messages read by row id range (see
    :mod:`.batches`), their distinct lemmas found in Arrow, new words added to the vocabulary
    in SQL, the postings sorted in numpy (:func:`_postings`) and appended as they are.
    """
    total, done = unindexed_count(store), 0
    if total:  # two table counts; the anti-join below scans every uid
        runs = keyed_batches(
            store.con, "SELECT e.rid, m.mrid FROM (SELECT rowid AS rid, uid FROM enrichment) e "
            "ANTI JOIN lemma_indexed USING (uid) JOIN (SELECT rowid AS mrid, uid FROM messages) m "
            "USING (uid)", [],
            "SELECT e.uid, e.lemmas, m.ts "
            "FROM (SELECT * FROM {keys} WHERE rid BETWEEN $1 AND $2) k "
            "JOIN (SELECT rowid AS rid, uid, lemmas FROM enrichment WHERE rowid BETWEEN $1 AND $2) "
            "e USING (rid) JOIN (SELECT rowid AS mrid, ts FROM messages WHERE rowid BETWEEN $3 "
            "AND $4 AND rowid IN (SELECT mrid FROM {keys} WHERE rid BETWEEN $1 AND $2)) m "
            "USING (mrid)", INDEX_CHUNK, also="mrid")
        try:
            for batch in runs:
                run = pa.Table.from_batches([batch])
                index_run(store, run.append_column(
                    "lemma_codes", encode_lemmas(run.column("lemmas").combine_chunks())))
                done += batch.num_rows
                if progress:
                    progress(done, total)
        finally:
            runs.close()
    if _index_runs(store) > INDEX_MAX_RUNS:
        compact_index(store)
    return done


def index_run(store: Store, run: pa.Table) -> None:
    """Add enriched messages (``uid``, ``ts`` and ``lemma_codes``, see
    :mod:`chatlens.search_words`; none of them indexed yet) to the search index as one sorted
    run, in one transaction (see :func:`index_lemmas`)."""
    words, codes, rows = _lemma_codes(run)
    con = store.con
    with store.transaction():
        con.register("_words", words)
        con.execute(r"""
            INSERT INTO lemma_vocab
            SELECT (SELECT coalesce(max(id), 0) FROM lemma_vocab)
                   + row_number() OVER (ORDER BY lemma), lemma
            FROM (SELECT lemma FROM _words) ANTI JOIN lemma_vocab USING (lemma)""")
        ids = arrow_table(con.sql(
            "SELECT w.code, v.id FROM _words w JOIN lemma_vocab v USING (lemma)"))
        con.unregister("_words")
        con.register("_postings", _postings(run, codes, rows, ids, len(words)))
        con.execute("SET preserve_insertion_order = true")  # keep the run's sort on disk
        try:
            con.execute("INSERT INTO lemma_index SELECT * FROM _postings")
        finally:
            con.execute("SET preserve_insertion_order = false")
        con.unregister("_postings")
        con.register("_rows", run.select(["uid"]))
        con.execute("INSERT INTO lemma_indexed SELECT uid FROM _rows")
        con.unregister("_rows")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('lemma_index_runs', ?)",
                    [str(_index_runs(store) + 1)])


Ints = NDArray[np.int64]


def _lemma_codes(run: pa.Table) -> tuple[pa.Table, Ints, Ints]:
    """A run's distinct words (``code``, lemma), and per word occurrence its code and row: the
    words of the batches' ``lemma_codes`` (each chunk encoded on its own) on one dictionary."""
    dictionaries, codes, rows = [], [], []
    n_codes = n_rows = 0
    for chunk in run.column("lemma_codes").chunks:
        flat = chunk.flatten()
        word = word_mask(flat.dictionary)
        local = np.cumsum(word) - 1
        idx = np.asarray(flat.indices, dtype=np.int64)
        keep = word[idx]
        offsets = np.asarray(chunk.offsets, dtype=np.int64)
        row = np.repeat(np.arange(n_rows, n_rows + len(chunk), dtype=np.int64), np.diff(offsets))
        codes.append(local[idx[keep]] + n_codes)
        rows.append(row[keep])
        dictionaries.append(flat.dictionary.filter(pa.array(word)))
        n_codes, n_rows = n_codes + int(word.sum()), n_rows + len(chunk)
    if not dictionaries:
        return (pa.table({"code": pa.array([], pa.int32()), "lemma": pa.array([], pa.string())}),
                np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    enc = pc.dictionary_encode(pa.concat_arrays(dictionaries))
    words = pa.table({"code": pa.array(np.arange(len(enc.dictionary), dtype=np.int32)),
                      "lemma": enc.dictionary})
    return (words, np.asarray(enc.indices, dtype=np.int64)[np.concatenate(codes)],
            np.concatenate(rows))


def _postings(batch: pa.Table, codes: Ints, rows: Ints, ids: pa.Table,
              n_codes: int) -> pa.Table:
    """One ``lemma_index`` row per distinct (word lemma, message) of a run, sorted by (lemma
    id, newest first): one integer sort of (rank of the lemma's id, rank of the message's
    time), which also brings a message's repeats of a lemma together (vectorised: a join and
    ``ORDER BY`` in SQL cost several times more)."""
    word_code = np.asarray(ids.column("code"), dtype=np.int64)
    word_id = np.asarray(ids.column("id"), dtype=np.int64)
    by_id = np.argsort(word_id, kind="stable")
    id_rank = np.full(n_codes, -1, dtype=np.int64)  # -1: not a word, not indexed
    id_rank[word_code[by_id]] = np.arange(by_id.size)
    ts = batch.column("ts").cast(pa.int64())
    newest = np.asarray(pc.fill_null(pc.negate(ts), np.iinfo(np.int64).max), dtype=np.int64)
    by_time = np.argsort(newest, kind="stable")  # newest first, no time last
    n = batch.num_rows
    time_rank = np.empty(n, dtype=np.int64)
    time_rank[by_time] = np.arange(n)
    rank = id_rank[codes]
    keep = rank >= 0
    key = np.sort(rank[keep] * max(n, 1) + time_rank[rows[keep]])
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if key.size else key
    take = pa.array(by_time[key % max(n, 1)])
    return pa.table({"lemma_id": pa.array(word_id[by_id][key // max(n, 1)], pa.int32()),
                     "ts": batch.column("ts").take(take), "uid": batch.column("uid").take(take)})


def _index_runs(store: Store) -> int:
    return int(_one(store, "SELECT value FROM meta WHERE key = 'lemma_index_runs'") or 0)


def compact_index(store: Store) -> None:
    """Rewrite ``lemma_index`` as one run sorted by (lemma id, newest first), an id range at a
    time (:data:`INDEX_SLICE` rows each, ranges from a sample), so that a lookup reads the
    few row groups of its lemma instead of a few in every run."""
    con = store.con
    total = int(_one(store, "SELECT count(*) FROM lemma_index"))
    slices = -(-total // INDEX_SLICE)
    sample = sorted(r[0] for r in con.execute(
        "SELECT lemma_id FROM lemma_index USING SAMPLE 100000 ROWS").fetchall())
    bounds = sorted({sample[len(sample) * i // slices] for i in range(1, slices)}) \
        if sample else []
    edges: list[int | None] = [None, *bounds, None]
    with store.transaction():
        con.execute(f"CREATE TABLE _lemma_index ({LEMMA_INDEX_COLUMNS})")
        for lo, hi in pairwise(edges):
            conds = [(op, b) for op, b in ((">=", lo), ("<", hi)) if b is not None]
            where = " AND ".join(f"lemma_id {op} ?" for op, _ in conds)
            con.execute(f"INSERT INTO _lemma_index SELECT * FROM lemma_index "
                        f"{'WHERE ' + where if where else ''} "
                        "ORDER BY lemma_id, ts DESC NULLS LAST",
                        [b for _, b in conds])
        con.execute("DROP TABLE lemma_index")
        con.execute("ALTER TABLE _lemma_index RENAME TO lemma_index")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('lemma_index_runs', '1')")


def unindexed_count(store: Store) -> int:
    """Enriched messages missing from the search index (all of them in projects made before it,
    or before its integer lemma ids: a writable open rebuilds those, see ``Store.open``)."""
    if not _index_current(store):
        return int(_one(store, "SELECT count(*) FROM enrichment"))
    return int(_one(store, "SELECT (SELECT count(*) FROM enrichment) - "
                           "(SELECT count(*) FROM lemma_indexed)"))


def _index_current(store: Store) -> bool:
    """Whether the search index has this version's layout (a project of schema version 1 opened
    read-only still has the old one)."""
    return bool(_one(store, "SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                            "'lemma_vocab'"))


def enrichment_summary(store: Store, fingerprint: str) -> dict[str, Any]:
    langs = store.con.execute(
        "SELECT lang, count(*) FROM enrichment WHERE fingerprint = ? GROUP BY lang "
        "ORDER BY 2 DESC", [fingerprint]).fetchall()
    return {"enriched": sum(n for _, n in langs), "languages": dict(langs)}


# -- codebooks and codes ---------------------------------------------------------------------

def save_codebook(store: Store, name: str, version: str, digest: str, source: str,
                  resolved: dict[str, Any]) -> None:
    store.con.execute(
        "INSERT OR IGNORE INTO codebooks VALUES (?, ?, ?, ?, ?, ?)",
        [name, version, digest, source, json.dumps(resolved, ensure_ascii=False),
         datetime.now(UTC)])


def last_codebook(store: Store) -> tuple[str, dict[str, Any]] | None:
    """The reference and resolved form of the codebook the project was last coded with."""
    row = first_row(store.con.cursor().execute(
        "SELECT source, resolved FROM codebooks ORDER BY added DESC LIMIT 1"))
    if row is None:
        return None
    resolved = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    return str(row[0]), resolved


def sync_measures(store: Store, codebook: str, hashes: dict[str, str], run_id: str) -> list[str]:
    """Drop codes of measures whose definition changed (or vanished); returns those re-coded."""
    stored = dict(store.con.execute(
        "SELECT measure, measure_hash FROM measure_state WHERE codebook = ?", [codebook]
    ).fetchall())
    changed = [m for m, h in hashes.items() if stored.get(m) != h]
    gone = [m for m in stored if m not in hashes]
    with store.transaction() as con:
        for m in changed + gone:
            con.execute("DELETE FROM codes WHERE codebook = ? AND measure = ?", [codebook, m])
            con.execute("DELETE FROM measure_state WHERE codebook = ? AND measure = ?",
                        [codebook, m])
        for m in changed:
            con.execute("INSERT INTO measure_state VALUES (?, ?, ?, ?)",
                        [codebook, m, hashes[m], run_id])
    return changed


#: Row ids of enriched messages (``rid`` in enrichment, ``mrid`` in messages) with fewer codes
#: than asked, and how many they have (parameters: fingerprint, codebook, count).
_CODE_TODO_KEYS = """
    SELECT e.rid, m.mrid, coalesce(c.n_all, 0) AS n_coded
    FROM (SELECT rowid AS rid, uid FROM enrichment WHERE fingerprint = ?) e
    JOIN (SELECT rowid AS mrid, uid FROM messages) m USING (uid)
    LEFT JOIN (SELECT uid, count(*) FILTER (WHERE scorer IS DISTINCT FROM 'missing') AS n,
               count(*) AS n_all FROM codes WHERE codebook = ? GROUP BY uid) c USING (uid)
    WHERE coalesce(c.n, 0) < ?
"""


#: What the code stage reads (:data:`chatlens.code.stage.INPUT_COLUMNS`), from messages ``m``
#: joined with their enrichment ``e``.
_CODE_INPUT = "m.uid, m.chat_key, m.ts, m.kind, m.text, e.lang, e.norm, e.lemmas"


def code_todo_count(store: Store, codebook: str, fingerprint: str, n_measures: int) -> int:
    return int(_one(store, f"SELECT count(*) FROM ({_CODE_TODO_KEYS})",
                    [fingerprint, codebook, n_measures]))


def code_todo(store: Store, codebook: str, fingerprint: str, n_measures: int,
              batch_rows: int, extra: str = "") -> pa.RecordBatchReader:
    """Enriched messages with fewer than ``n_measures`` codes of ``codebook``: what the code
    stage reads, ``n_coded`` (their codes so far) and ``extra`` (more columns of ``m`` and
    ``e``), in batches of ``batch_rows`` found on keys first (see :mod:`.batches`)."""
    batch = f"""
        SELECT {_CODE_INPUT}, k.n_coded{extra}
        FROM (SELECT * FROM {{keys}} WHERE rid BETWEEN $1 AND $2) k
        JOIN (SELECT rowid AS rid, * FROM enrichment WHERE rowid BETWEEN $1 AND $2) e USING (rid)
        JOIN (SELECT rowid AS mrid, * FROM messages WHERE rowid BETWEEN $3 AND $4
              AND rowid IN (SELECT mrid FROM {{keys}} WHERE rid BETWEEN $1 AND $2)) m
          USING (mrid)"""
    return keyed_batches(store.con, _CODE_TODO_KEYS, [fingerprint, codebook, n_measures], batch,
                         batch_rows, also="mrid")


def code_input(store: Store, fingerprint: str, uids: list[str]) -> pa.Table:
    """What the code stage reads (:data:`chatlens.code.stage.INPUT_COLUMNS`) for some messages."""
    return store.query_arrow(
        f"SELECT {_CODE_INPUT} "
        "FROM messages m JOIN enrichment e ON e.uid = m.uid AND e.fingerprint = ? "
        "WHERE m.uid IN (SELECT unnest(?)) ORDER BY m.uid", [fingerprint, uids])


def write_codes(store: Store, table: pa.Table, run_id: str, fresh: bool = False) -> int:
    """Insert code rows that do not exist yet for (uid, codebook, measure); returns the count.

    ``fresh``: none of these messages had codes when the batch was read, so nothing can
    collide and the check against existing codes (a scan of the codes table) is skipped.
    """
    table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
    with store.transaction() as con:
        con.register("_codes", table)
        if fresh:
            row = first_row(con.execute("INSERT INTO codes SELECT * FROM _codes"))
        else:  # a code that replaces a missing answer (see chatlens.code.stage) drops it first
            con.execute("DELETE FROM codes WHERE scorer = 'missing' AND (uid, codebook, measure) "
                        "IN (SELECT uid, codebook, measure FROM _codes WHERE scorer IS DISTINCT "
                        "FROM 'missing')")
            row = first_row(con.execute(
                "INSERT INTO codes SELECT b.* FROM _codes b ANTI JOIN ("
                "  SELECT uid, codebook, measure FROM codes WHERE uid IN (SELECT uid FROM _codes)"
                ") c USING (uid, codebook, measure)"))
        con.unregister("_codes")
    return int(row[0]) if row else 0


def code_summary(store: Store, codebook: str) -> list[dict[str, Any]]:
    cur = store.con.execute(
        "SELECT measure, value, count(*) AS n FROM codes WHERE codebook = ? AND in_population "
        "GROUP BY measure, value ORDER BY measure, n DESC", [codebook])
    return [{"measure": m, "value": v, "n": n} for m, v, n in cur.fetchall()]


# -- search ----------------------------------------------------------------------------------

_UNWINDOWED = 20_000  # candidate postings a search reads at once, without time windows


def search(store: Store, lemma_sets: list[list[str]], codebook: str | None,
           measure: str | None, value: str | None, limit: int, offset: int = 0,
           ) -> list[dict[str, Any]]:
    """Messages whose lemmas include all lemmas of one of ``lemma_sets``, newest first; the
    ``limit`` after skipping ``offset`` of them.

    Looked up in ``lemma_index`` (see :func:`index_lemmas`), first among the newest postings and
    in wider time windows until ``limit`` messages are found: all postings of a message share its
    time, so a window holds whole messages, and zone maps skip the postings outside it.
    """
    if not _index_current(store):  # read-only, old layout, nothing enriched: nothing to find
        return []
    words = sorted({x for s in lemma_sets for x in s})
    ids = dict(store.con.execute(f"SELECT lemma, id FROM lemma_vocab WHERE lemma IN "
                                 f"({', '.join('?' * len(words))})", words).fetchall())
    sets = [[ids[w] for w in s] for s in lemma_sets if all(w in ids for w in s)]
    if not sets:
        return []
    wanted = sorted({i for s in sets for i in s})
    stats = {i: (n, ts) for i, n, ts in store.con.execute(
        f"SELECT lemma_id, count(*), max(ts) FROM lemma_index WHERE lemma_id IN "
        f"({', '.join('?' * len(wanted))}) GROUP BY lemma_id", wanted).fetchall()}
    sets = [s for s in sets if all(i in stats for i in s)]
    if not sets:
        return []
    # candidates: the postings of each set's rarest lemma; few of them need no time windows
    candidates = sum(min(stats[i][0] for i in s) for s in sets)
    newest = max((stats[i][1] for s in sets for i in s if stats[i][1] is not None), default=None)
    since: list[Any] = [None]
    if newest is not None and candidates > _UNWINDOWED:
        since = [newest - timedelta(days=d) for d in (30, 365, 3650)] + [None]
    filt = ""
    fparams: list[Any] = []
    if measure:
        filt = ("SEMI JOIN (SELECT uid FROM codes WHERE codebook = ? AND measure = ? "
                "AND in_population" + (" AND value = ?" if value else "") + ") c USING (uid)")
        fparams = [codebook, measure, *([value] if value else [])]
    top: list[str] = []
    want = offset + limit
    for cutoff in since:
        window = "" if cutoff is None else "AND ts >= ?"
        hits = " UNION ".join(
            f"SELECT uid, max(ts) AS ts FROM lemma_index WHERE lemma_id IN "
            f"({', '.join('?' * len(s))}) {window} GROUP BY uid HAVING count(*) = {len(s)}"
            for s in sets)
        params = [x for s in sets for x in [*s, *([cutoff] if cutoff else [])]]
        top = [r[0] for r in store.con.execute(
            f"SELECT uid FROM ({hits}) h {filt} ORDER BY ts DESC NULLS LAST, uid LIMIT ?",
            [*params, *fparams, want]).fetchall()]
        if len(top) >= want:
            break
    top = top[offset:]
    if not top:
        return []
    found = messages_by_uid(store, top)
    return [found[u] for u in top if u in found]


def messages_by_uid(store: Store, uids: list[str]) -> dict[str, dict[str, Any]]:
    """uid, chat_key, chat_title, ts, author_key, text and kind of a few messages, by uid (literal
    IN lists DuckDB filters the scan with: ``uid_hash`` first, see :meth:`Store.uids_where`)."""
    if not uids:
        return {}
    cols = ["uid", "chat_key", "chat_title", "ts", "author_key", "text", "kind"]
    where, params = store.uids_where(uids)
    cur = store.con.cursor().execute(
        "SELECT m.uid, m.chat_key, ch.title, m.ts, m.author_key, m.text, m.kind "
        f"FROM (SELECT * FROM messages WHERE {where}) m "
        "LEFT JOIN chats ch USING (chat_key)", params)
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


# -- topics ----------------------------------------------------------------------------------

def topic_sample(store: Store, fingerprint: str, bucket: str, limit: int,
                 ) -> list[tuple[str, str, list[str] | None, str | None, str | None]]:
    """A reproducible sample (by hash of uid) of up to ``limit`` messages of kind ``message``:
    uid, text, lemmas, detected language and time bucket (``week``/``month``; None undated)."""
    fmt = "%Y-%m" if bucket == "month" else "%Y-%m-%d"
    unit = "month" if bucket == "month" else "week"
    con = store.con.cursor()
    # draw the sample from the messages alone, then fetch its texts and lemmas: carrying them
    # through an ordering of the whole corpus costs minutes on millions of messages
    picked = [r[0] for r in con.execute(
        "SELECT uid FROM messages WHERE kind = 'message' ORDER BY hash(uid), uid LIMIT ?",
        [limit]).fetchall()]
    return [tuple(r) for r in con.execute(
        f"SELECT m.uid, m.text, e.lemmas, e.lang, strftime(date_trunc('{unit}', m.ts), '{fmt}') "
        "FROM (SELECT uid, lemmas, lang FROM enrichment WHERE fingerprint = ? "
        "AND uid IN (SELECT unnest(?))) e JOIN messages m USING (uid) "
        "ORDER BY hash(m.uid), m.uid", [fingerprint, picked]).fetchall()]


# -- frames and context for sampling and labelling -------------------------------------------

def population_frame(store: Store, codebook: str, measure: str) -> pa.Table:
    """The measure's population: uid, chat, time, coded value and score, ordered by uid."""
    return store.query_arrow(
        "SELECT c.uid, m.chat_key, m.ts, strftime(m.ts, '%Y-%m') AS month, c.value, c.score, "
        "m.text FROM codes c JOIN messages m USING (uid) "
        "WHERE c.codebook = ? AND c.measure = ? AND c.in_population ORDER BY c.uid",
        [codebook, measure])


#: Widening time windows for keyset lookups around one message: the nearest messages are
#: nearly always within a day, and a bounded window lets zone maps skip the rest of the chat.
_WINDOWS = ("1 day", "30 days", "365 days", None)


def context(store: Store, uid: str, k: int = 3) -> dict[str, list[dict[str, Any]]] | None:
    """The ``k`` messages before and after one message in its chat (keyset lookups in widening
    time windows: cheap for a single message however long the chat); None if there is none."""
    where, params = store.uids_where([uid])
    me = first_row(store.con.execute(f"SELECT chat_key, ts FROM messages WHERE {where}", params))
    if me is None:
        return None
    chat, ts = me
    cols = ["uid", "ts", "author_key", "text", "kind"]

    def rows(before: bool) -> list[dict[str, Any]]:
        op, order = ("<", "DESC") if before else (">", "ASC")
        found: list[Any] = []
        for window in _WINDOWS if ts is not None else (None,):
            bound = ""
            if window is not None:
                bound = f"AND ts {'>=' if before else '<='} ?::TIMESTAMPTZ " \
                        f"{'-' if before else '+'} INTERVAL '{window}'"
            found = store.con.execute(
                f"SELECT {', '.join(cols)} FROM messages WHERE chat_key = ? {bound} "
                f"AND (ts {op} ? OR (ts = ? AND uid {op} ?)) "
                f"ORDER BY ts {order}, uid {order} LIMIT ?",
                [chat, *([ts] if window else []), ts, ts, uid, k]).fetchall()
            if len(found) == k:
                break
        return [dict(zip(cols, r, strict=True)) for r in found]

    return {"before": list(reversed(rows(True))), "after": rows(False)}


def messages_with_context(store: Store, uids: list[str], k: int = 2) -> list[dict[str, Any]]:
    """Many messages by uid (in the order given) with up to ``k`` messages before and after,
    in one pass over their chats (for exporting a sample; :func:`context` serves one message)."""
    if not uids:
        return []
    store.con.register("_want", pa.table({"uid": uids, "pos": list(range(len(uids)))}))
    cur = store.con.execute(
        """
        WITH ordered AS (
            SELECT uid, chat_key, ts, author_key, text,
                   row_number() OVER (PARTITION BY chat_key ORDER BY ts, uid) AS rn
            FROM messages WHERE chat_key IN (SELECT m.chat_key FROM messages m
                                             JOIN _want USING (uid)))
        SELECT w.pos, o.uid, o.chat_key, ch.title, o.ts, o.author_key, o.text,
               (SELECT list(p.text ORDER BY p.rn) FROM ordered p
                 WHERE p.chat_key = o.chat_key AND p.rn BETWEEN o.rn - ? AND o.rn - 1) AS before,
               (SELECT list(p.text ORDER BY p.rn) FROM ordered p
                 WHERE p.chat_key = o.chat_key AND p.rn BETWEEN o.rn + 1 AND o.rn + ?) AS after
        FROM _want w JOIN ordered o USING (uid) LEFT JOIN chats ch ON ch.chat_key = o.chat_key
        ORDER BY w.pos
        """, [k, k])
    cols = ["pos", "uid", "chat_key", "chat_title", "ts", "author_key", "text", "before", "after"]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    store.con.unregister("_want")
    return rows


def known_uids(store: Store, uids: list[str]) -> list[str]:
    """The subset of ``uids`` that are stored messages."""
    if not uids:
        return []
    store.con.register("_ask", pa.table({"uid": list(set(uids))}))
    found = [r[0] for r in store.con.execute(
        "SELECT uid FROM messages WHERE uid IN (SELECT uid FROM _ask)").fetchall()]
    store.con.unregister("_ask")
    return found


def texts_and_lemmas(store: Store, fingerprint: str, uids: list[str]) -> list[dict[str, Any]]:
    """uid, text and lemmas (``None`` when not enriched) of the given messages, by uid."""
    rows: list[dict[str, Any]] = store.query_arrow(
        "SELECT m.uid, m.text, e.lemmas FROM messages m LEFT JOIN enrichment e "
        "ON e.uid = m.uid AND e.fingerprint = ? WHERE m.uid IN (SELECT unnest(?)) ORDER BY m.uid",
        [fingerprint, uids]).to_pylist()
    return rows
