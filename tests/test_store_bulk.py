"""The stages' work sets stream in bounded batches, whatever the corpus size (issue 16)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pytest

from chatlens.engines.local import appends
from chatlens.store import Store
from chatlens.store import stages as db
from chatlens.store.core import uid_hash_sql

N = 30_000


def _fill(store: Store, n: int, enrich_order: str = "uid") -> None:
    """``n`` messages of ~1 KB of text, enriched under fingerprint ``fp`` (written by SQL)."""
    store.con.execute(
        f"INSERT INTO messages SELECT *, {uid_hash_sql('uid')} FROM (SELECT "
        "'u' || lpad(i::VARCHAR, 6, '0') AS uid, 'generic', "
        "'chat' || (i % 7), i::VARCHAR, TIMESTAMPTZ '2023-01-01 00:00:00+00' "
        "+ i * INTERVAL 1 MINUTE, false, NULL, repeat('слово' || (i % 97) || ' ', 120), "
        "'message', NULL, NULL, NULL, NULL, NULL, 's', i, 'l' FROM range(?) t(i))", [n])
    store.con.execute(
        "INSERT INTO enrichment (uid, fingerprint, lang, norm, lemmas) SELECT uid, 'fp', 'ru', "
        f"upper(text), string_split(trim(text), ' ') FROM messages ORDER BY {enrich_order}")


def _small_memory(root: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The project reopened with far less memory than the work set's texts, norms and lemmas
    (~100 MB): they must stream."""
    monkeypatch.setenv("CHATLENS_MEMORY_LIMIT", "40MB")
    return Store.open(root)


def test_code_todo_streams_a_corpus_larger_than_the_memory_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.create(tmp_path / "p") as store:
        _fill(store, N)
        # a third of the messages fully coded, a third partly: only the rest and those are todo
        store.con.execute(
            "INSERT INTO codes SELECT uid, 'cb', m, true, 'no', 0.0, 'default', NULL, 'r' "
            "FROM messages, (VALUES ('a'), ('b')) v(m) WHERE message_id::INT % 3 = 0 "
            "OR (message_id::INT % 3 = 1 AND m = 'a')")
    with _small_memory(tmp_path / "p", monkeypatch) as store:
        assert db.code_todo_count(store, "cb", "fp", 2) == N - N // 3
        seen: dict[str, int] = {}
        for batch in db.code_todo(store, "cb", "fp", 2, 4_000):
            assert batch.num_rows <= 4_000
            rows = batch.to_pydict()
            for uid, text, lemmas, norm, n in zip(rows["uid"], rows["text"], rows["lemmas"],
                                                  rows["norm"], rows["n_coded"], strict=True):
                assert norm == text.upper() and lemmas == text.split()  # its own enrichment
                assert n == (1 if int(uid[1:]) % 3 == 1 else 0)
                seen[uid] = seen.get(uid, 0) + 1
        assert len(seen) == N - N // 3 and set(seen.values()) == {1}
        assert all(int(u[1:]) % 3 for u in seen)


def test_enrich_todo_streams_in_message_order(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.create(tmp_path / "p") as store:
        _fill(store, N)
        store.con.execute("DELETE FROM enrichment WHERE uid >= 'u010000' AND uid < 'u020000'")
    with _small_memory(tmp_path / "p", monkeypatch) as store:
        batches = [b.column("uid").to_pylist() for b in db.enrich_todo(store, "fp", 3_000)]
        uids = [u for b in batches for u in b]
        # only what lacks this fingerprint, once each, batch after batch in message order
        assert len(uids) == len(set(uids)) == 10_000
        assert sorted(uids) == [f"u{i:06d}" for i in range(10_000, 20_000)]
        assert all(max(a) < min(b) for a, b in pairwise(batches))
        assert len([b for b in db.enrich_todo(store, "other", 3_000)]) == -(-N // 3_000)


def test_code_todo_is_right_when_enrichment_is_out_of_message_order(tmp_path: Path) -> None:
    with Store.create(tmp_path / "p") as store:
        _fill(store, 5_000, enrich_order="hash(uid)")  # e.g. attached from a Spark job
        got = {u: t for b in db.code_todo(store, "cb", "fp", 1, 700)
               for u, t in zip(b.column("uid").to_pylist(), b.column("text").to_pylist(),
                               strict=True)}
        want = dict(store.con.execute("SELECT uid, text FROM messages").fetchall())
        assert got == want


def test_results_are_written_in_appends_of_at_least_a_row_group() -> None:
    parts = [((pa.table({"x": list(range(i * 10, i * 10 + 10))}), pa.table({"y": [i]})), i != 2)
             for i in range(7)]
    got = list(appends(parts, rows=25))
    assert [(t.num_rows, flag) for (t, _), flag in got] == [(30, False), (30, True), (10, True)]
    assert [x for (t, _), _ in got for x in t.column("x").to_pylist()] == list(range(70))
    assert [u.column("y").to_pylist() for (_, u), _ in got] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(appends([], rows=25)) == []
