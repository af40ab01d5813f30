"""Coding through the real pipeline: lemma-aware lexicons, regexes, populations, increments."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatlens import Project, UsageError
from chatlens.codebook import parse_codebook
from tests.helpers import telegram_export

CODEBOOK = """
name: t
version: "1"
languages: [ru, uk, en]
measures:
  - id: border
    question: Is the message about the border?
    labels: [yes, no]
    instructions: Code yes for border talk.
    scorers:
      - type: lexicon
        terms: {ru: [граница, верхний ларс], uk: [кордон]}
        negation: {window: 2}
  - id: zsym
    question: Does the message show the Z symbol?
    labels: [yes, no]
    instructions: Latin Z or V as a war symbol.
    scorers:
      - {type: regex, pattern: '(?<![\\w-])[ZV](?![\\w-])', ignore_case: false}
  - id: queue_in_ru
    question: Is a border message in Russian about a queue?
    labels: [yes, no]
    instructions: Only Russian border messages.
    population: {languages: [ru], where: [{measure: border, value: "yes"}]}
    scorers:
      - type: lexicon
        terms: {ru: [очередь]}
"""

TEXTS = [
    "Кто сейчас на границе? Большая очередь",       # 1 border, ru, queue
    "Стоим у границы уже пятый час",                # 2 inflected
    "Прошли границу пешком",                        # 3 accusative
    "На Верхнем Ларсе пробка",                      # 4 multi-word phrase, locative
    "Черга на кордоні величезна, стоїмо з ранку",   # 5 Ukrainian, inflected
    "Пропустили на кордону без питань",             # 6 Ukrainian dative/locative
    "Про грaницу ничего не слышно",                 # 7 Latin 'a' homoglyph inside the word
    "Это не граница, а просто шлагбаум",            # 8 negated within the window
    "Сняли Z с машины перед выездом",               # 9 Latin Z symbol
    "За рулём всю ночь, Зина спит",                 # 10 Cyrillic З words, not the symbol
    "🇬🇪🇬🇪🇬🇪",                                     # 11 emoji only
    "Хорошая погода сегодня",                       # 12 nothing
]


def codes(project: Project, measure: str) -> dict[int, str | None]:
    rows = project.store.con.execute(
        "SELECT CAST(m.message_id AS INT), c.value FROM codes c JOIN messages m USING (uid) "
        "WHERE c.measure = ?", [measure]).fetchall()
    return dict(rows)


@pytest.fixture
def coded(project: Project, tmp_path: Path) -> Project:
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    project.ingest([telegram_export(tmp_path / "r.json", TEXTS)])
    project.code(tmp_path / "cb.yaml")
    return project


def test_lexicon_matches_across_inflection_scripts_and_languages(coded: Project) -> None:
    border = codes(coded, "border")
    assert [i for i, v in sorted(border.items()) if v == "yes"] == [1, 2, 3, 4, 5, 6, 7]


def test_negation_window_and_emoji_only(coded: Project) -> None:
    border = codes(coded, "border")
    assert border[8] == "no" and border[11] == "no" and border[12] == "no"
    (lang,), = coded.store.con.execute(
        "SELECT e.lang FROM enrichment e JOIN messages m USING (uid) WHERE m.message_id = '11'"
    ).fetchall()
    assert lang == "und"


def test_latin_z_symbol_is_not_cyrillic_ze(coded: Project) -> None:
    z = codes(coded, "zsym")
    assert z[9] == "yes" and z[10] == "no" and z[7] == "no"


def test_population_filters_on_language_and_another_measure(coded: Project) -> None:
    q = codes(coded, "queue_in_ru")
    assert q[1] == "yes" and q[2] == "no"  # Russian border messages
    assert q[5] is None and q[12] is None  # Ukrainian; not about the border: outside
    (n_in,), = coded.store.con.execute(
        "SELECT count(*) FROM codes WHERE measure = 'queue_in_ru' AND in_population").fetchall()
    assert n_in == 5  # 1, 2, 3, 4, 7 (8 is negated, 5 and 6 are Ukrainian)


def test_rerun_is_a_noop_and_a_changed_measure_alone_is_recoded(
        coded: Project, tmp_path: Path) -> None:
    again = coded.code(tmp_path / "cb.yaml")
    assert again.rows == 0 and again.recoded_measures == []
    changed = CODEBOOK.replace('version: "1"', 'version: "2"').replace(
        "terms: {ru: [очередь]}", "terms: {ru: [очередь, пробка]}")
    (tmp_path / "cb2.yaml").write_text(changed, encoding="utf-8")
    report = coded.code(tmp_path / "cb2.yaml")
    assert report.recoded_measures == ["queue_in_ru"]
    assert report.rows == len(TEXTS)  # one measure × every message
    assert codes(coded, "queue_in_ru")[4] == "yes"
    (total,), = coded.store.con.execute("SELECT count(*) FROM codes").fetchall()
    assert total == 3 * len(TEXTS)


def test_new_messages_alone_are_enriched_and_coded(coded: Project, tmp_path: Path) -> None:
    extra = telegram_export(tmp_path / "more.json", ["Снова на границе"], chat_id=43)
    coded.ingest([extra])
    report = coded.code()
    assert report.messages == 1 and report.rows == 3


@pytest.mark.slow
def test_two_workers_give_the_same_codes(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import chatlens.project.process as runner

    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    export = telegram_export(tmp_path / "r.json", TEXTS * 30)
    monkeypatch.setattr(runner, "BATCH_ROWS", 50)  # several batches per worker
    results = []
    for workers in (1, 2):
        with Project.init(tmp_path / f"p{workers}") as p:
            p.ingest([export])
            p.code(tmp_path / "cb.yaml", workers=workers)
            results.append(p.store.con.execute(
                "SELECT m.message_id, c.measure, c.value FROM codes c JOIN messages m USING (uid)"
                " ORDER BY 1, 2").fetchall())
    assert results[0] == results[1] and len(results[0]) == 3 * len(TEXTS) * 30


_CODE_ROWS = ("SELECT m.message_id, m.chat_key, c.measure, c.in_population, c.value, c.score, "
              "c.scorer, c.matched FROM codes c JOIN messages m USING (uid) ORDER BY ALL")
_ENRICH_ROWS = ("SELECT uid, lang, round(lang_score, 4), norm, lemmas, urls, mentions, hashtags, "
                "emoji, places FROM enrichment ORDER BY uid")


def test_enriching_and_coding_in_one_pass_equals_enrich_then_code(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``code`` on new messages enriches and codes each batch in one pass (nothing read back);
    the enrichment, the search index and the codes equal those of ``enrich`` then ``code``,
    on real exports (a Russian channel, a Ukrainian channel) and the planted texts."""
    import chatlens.project.process as runner

    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    sources = [telegram_export(tmp_path / "r.json", TEXTS),
               shared_data / "telegram" / "json_ru_channel" / "result.json",
               shared_data / "telegram" / "html_uk_channel"]
    monkeypatch.setattr(runner, "BATCH_ROWS", 300)  # several batches and appends
    got = []
    for name in ("two_steps", "one_pass"):
        with Project.init(tmp_path / name) as p:
            p.ingest(sources)
            if name == "two_steps":
                assert p.enrich().enriched > 1000
            report = p.code(tmp_path / "cb.yaml")
            n = p.store.con.execute("SELECT count(*) FROM messages").fetchall()[0][0]
            assert report.messages == n and report.rows == 3 * n
            assert report.enriched == (n if name == "one_pass" else 0)
            got.append([p.store.con.execute(sql).fetchall() for sql in (
                _CODE_ROWS, _ENRICH_ROWS,
                "SELECT v.lemma, i.ts, i.uid FROM lemma_index i JOIN lemma_vocab v "
                "ON v.id = i.lemma_id ORDER BY ALL")])
            assert p.code(tmp_path / "cb.yaml").rows == 0
            # the index holds every word lemma (letter, digit or _) and nothing else
            assert p.store.con.execute(
                r"SELECT count(*) FILTER (WHERE NOT regexp_matches(lemma, '[\pL\pN_]')), "
                r"(SELECT count(DISTINCT l) FROM (SELECT unnest(lemmas) AS l FROM enrichment) "
                r" WHERE regexp_matches(l, '[\pL\pN_]')) - count(*) FROM lemma_vocab"
            ).fetchall() == [(0, 0)]
    for a, b in zip(*got, strict=True):
        assert a == b


def test_one_pass_stopped_before_its_codes_are_written_codes_them_next_time(
        coded: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatlens.store import stages

    before = coded.store.con.execute(_CODE_ROWS).fetchall()
    con = coded.store.con
    con.execute("DELETE FROM codes")
    con.execute("DELETE FROM enrichment")
    for table in ("lemma_index", "lemma_indexed", "lemma_vocab"):
        con.execute(f"DELETE FROM {table}")

    def stop(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "write_codes", stop)
    with pytest.raises(KeyboardInterrupt):
        coded.code(tmp_path / "cb.yaml")
    assert con.execute("SELECT count(*) FROM enrichment").fetchall()[0][0] == len(TEXTS)
    monkeypatch.undo()
    report = coded.code(tmp_path / "cb.yaml")  # read back and coded by the code stage
    assert (report.enriched, report.messages) == (0, len(TEXTS))
    assert con.execute(_CODE_ROWS).fetchall() == before


def test_one_pass_never_doubles_codes_that_outlived_their_enrichment(
        coded: Project, tmp_path: Path) -> None:
    before = coded.store.con.execute(_CODE_ROWS).fetchall()
    coded.store.con.execute("DELETE FROM enrichment")  # codes stay: the pass must not add more
    for table in ("lemma_index", "lemma_indexed", "lemma_vocab"):
        coded.store.con.execute(f"DELETE FROM {table}")
    report = coded.code(tmp_path / "cb.yaml")
    assert report.enriched == len(TEXTS) and report.rows == 0
    assert coded.store.con.execute(_CODE_ROWS).fetchall() == before


def test_batches_are_large_but_every_worker_gets_some() -> None:
    from chatlens.project.process import BATCH_ROWS, MIN_BATCH_ROWS, batch_rows

    assert batch_rows(1_000_000, 1) == batch_rows(1_000_000, 2) == BATCH_ROWS
    assert batch_rows(40_000, 2) == 5_000  # four batches per worker
    assert batch_rows(10, 2) == MIN_BATCH_ROWS  # tiny projects: one small batch


def test_search_finds_inflected_forms_and_highlights_them(coded: Project) -> None:
    rows = coded.search("граница")
    texts = {r["text"] for r in rows}
    assert "Прошли границу пешком" in texts and "Стоим у границы уже пятый час" in texts
    row = next(r for r in rows if r["text"] == "Прошли границу пешком")
    (a, b), = row["highlights"]
    assert row["text"][a:b] == "границу"
    only = coded.search("очередь", measure="queue_in_ru", value="yes")
    assert [r["text"] for r in only] == [TEXTS[0]]


def test_search_index_follows_enrichment(coded: Project, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    con = coded.store.con
    n_msgs = con.execute("SELECT count(*) FROM enrichment").fetchall()[0][0]
    assert con.execute("SELECT count(*) FROM lemma_indexed").fetchall()[0][0] == n_msgs
    # words only, one row per message and lemma, written in lemma id order, newest first
    rows = con.execute("SELECT lemma_id, ts FROM lemma_index").fetchall()
    assert rows == sorted(rows, key=lambda r: (r[0], -r[1].timestamp()))
    words = [r[0] for r in con.execute(
        "SELECT v.lemma FROM lemma_index JOIN lemma_vocab v ON v.id = lemma_id").fetchall()]
    assert "граница" in words and "." not in words
    assert len(words) == len(set(con.execute("SELECT lemma_id, uid FROM lemma_index").fetchall()))
    # a project made before the index (or whose enrich run stopped early) catches up on search
    con.execute("DELETE FROM lemma_index")
    con.execute("DELETE FROM lemma_indexed")
    assert {r["text"] for r in coded.search("граница")} >= {"Прошли границу пешком"}
    assert con.execute("SELECT count(*) FROM lemma_indexed").fetchall()[0][0] == n_msgs
    # in runs of a few messages (each sorted, each committed): the same entries
    whole = set(con.execute("SELECT * FROM lemma_index").fetchall())
    con.execute("DELETE FROM lemma_index")
    con.execute("DELETE FROM lemma_indexed")
    from chatlens.store import stages
    monkeypatch.setattr(stages, "INDEX_CHUNK", 3)
    seen: list[tuple[int, int]] = []
    assert stages.index_lemmas(coded.store, lambda d, t: seen.append((d, t))) == n_msgs
    assert set(con.execute("SELECT * FROM lemma_index").fetchall()) == whole
    assert seen[-1] == (n_msgs, n_msgs) and len(seen) == -(-n_msgs // 3)
    assert stages.index_lemmas(coded.store) == 0
    # more runs than allowed: compacted into one sorted run, slice by slice, same entries
    assert stages._index_runs(coded.store) == 1  # 2 earlier + 4 new runs > INDEX_MAX_RUNS
    monkeypatch.setattr(stages, "INDEX_MAX_RUNS", 1)
    monkeypatch.setattr(stages, "INDEX_SLICE", 7)
    coded.ingest([telegram_export(tmp_path / "one.json", ["Очередь у границы"], chat_id=98)])
    coded.enrich()
    assert stages._index_runs(coded.store) == 1
    ids = [r[0] for r in con.execute("SELECT lemma_id FROM lemma_index").fetchall()]
    assert ids == sorted(ids)
    assert set(con.execute("SELECT * FROM lemma_index").fetchall()) >= whole
    monkeypatch.setattr(stages, "INDEX_MAX_RUNS", 4)
    # new messages are indexed by the enrich run that enriches them
    coded.ingest([telegram_export(tmp_path / "more.json", ["Граница закрыта"], chat_id=99)])
    coded.enrich()
    assert "Граница закрыта" in {r["text"] for r in coded.search("граница")}
    # settings that change the enrichment drop the old index rows with it
    assert stages.drop_stale_enrichment(coded.store, "other") == n_msgs + 2
    assert con.execute("SELECT count(*) FROM lemma_index").fetchall()[0][0] == 0


def test_model_scorer_without_a_trained_model_is_pending_until_trained(
        project: Project, tmp_path: Path) -> None:
    text = CODEBOOK + """
  - id: stance
    question: What stance does it take?
    labels: [yes, no]
    instructions: A trained model decides.
    scorers:
      - {type: model, model: stance-v1}
"""
    parse_codebook(text)  # valid as a codebook
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    project.ingest([telegram_export(tmp_path / "r.json", TEXTS)])
    # the bootstrap: coding works before the model exists; the measure's population is coded
    # without a value, so a training sample can be drawn, and estimates refuse clearly
    report = project.code(tmp_path / "m.yaml")
    assert any(n.startswith("stance: model stance-v1 not trained yet") for n in report.pending)
    rows = project.store.con.execute(
        "SELECT count(*), count(value), min(scorer) FROM codes WHERE measure = 'stance' "
        "AND in_population").fetchone()
    assert rows[0] > 0 and rows[1] == 0 and rows[2] == "pending"
    assert project.sample("stance", "train", 3, seed=1)["n"] == 3
    with pytest.raises(UsageError, match="not scored yet"):
        project.estimate("stance")


def test_enrich_indexes_what_it_writes_and_catches_up_after_a_stop(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatlens.store import stages

    project.ingest([telegram_export(tmp_path / "r.json", TEXTS)])
    left: list[int] = []
    catch_up = stages.index_lemmas
    monkeypatch.setattr(stages, "index_lemmas", lambda store, progress=None: (
        left.append(stages.unindexed_count(store)), catch_up(store, progress))[1])
    project.enrich()
    assert left == [0]  # every append was indexed as it was written
    con = project.store.con
    whole = set(con.execute("SELECT v.lemma, i.ts, i.uid FROM lemma_index i "
                            "JOIN lemma_vocab v ON v.id = i.lemma_id").fetchall())
    assert whole
    # a run that stops between writing enrichment and indexing it: the next run catches up
    con.execute("DELETE FROM enrichment")
    for table in ("lemma_index", "lemma_indexed", "lemma_vocab"):
        con.execute(f"DELETE FROM {table}")

    def stop(store: object, run: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "index_run", stop)
    with pytest.raises(KeyboardInterrupt):
        project.enrich()
    assert con.execute("SELECT count(*) FROM enrichment").fetchall()[0][0] == len(TEXTS)
    assert con.execute("SELECT count(*) FROM lemma_indexed").fetchall()[0][0] == 0
    monkeypatch.undo()
    project.enrich()
    assert set(con.execute("SELECT v.lemma, i.ts, i.uid FROM lemma_index i "
                           "JOIN lemma_vocab v ON v.id = i.lemma_id").fetchall()) == whole


@pytest.mark.parametrize("windowed", [True, False])
def test_search_widens_its_time_window_until_it_has_enough(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windowed: bool) -> None:
    from chatlens.store import stages
    if windowed:  # as with many candidate messages
        monkeypatch.setattr(stages, "_UNWINDOWED", 0)
    # five matches 1000 days apart: each wider window (30, 365, 3650 days, all) adds some
    texts = [f"Граница номер {i}" for i in range(5)]
    project.ingest([telegram_export(tmp_path / "t.json", texts, start_ts=1_000_000_000,
                                    step=1000 * 86400)])
    project.enrich()
    newest_first = list(reversed(texts))
    for limit in (1, 2, 4, 5, 10):
        assert [r["text"] for r in project.search("границы", limit=limit)] == \
            newest_first[:limit]
    for offset in (0, 1, 3, 4, 5):  # pages: the windows widen until offset + limit are found
        assert [r["text"] for r in project.search("границы", limit=2, offset=offset)] == \
            newest_first[offset:offset + 2]
    assert project.search("граница номер") and not project.search("граница небо")


def test_projects_that_stored_tokens_drop_them_and_keep_the_rest(coded: Project) -> None:
    from chatlens.present.messages import message

    con = coded.store.con
    n = con.execute("SELECT count(*) FROM enrichment").fetchall()[0][0]
    con.execute("ALTER TABLE enrichment ADD COLUMN tokens VARCHAR[]")  # as schema version 1 made
    con.execute("UPDATE enrichment SET tokens = lemmas")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    uid = con.execute("SELECT uid FROM messages WHERE text = 'Прошли границу пешком'"
                      ).fetchall()[0][0]
    root = coded.store.root
    coded.close()
    with Project.open(root, read_only=True) as old:  # read as it is: tokens are never asked for
        shown = message(old, uid)
        assert shown is not None and ("границу", True) in shown["segments"]
    with Project.open(root) as p:
        cols = [r[0] for r in p.store.con.execute("DESCRIBE enrichment").fetchall()]
        assert "tokens" not in cols and "lemmas" in cols
        assert p.store.con.execute("SELECT count(*) FROM enrichment").fetchall()[0][0] == n
        assert p.enrich().enriched == 0  # nothing to redo
        assert p.store.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                   ).fetchall() == [("4",)]
        shown = message(p, uid)
        assert shown is not None and ("границу", True) in shown["segments"]


def test_a_search_index_keyed_by_lemma_strings_is_rebuilt(coded: Project) -> None:
    from chatlens.errors import UsageError

    con = coded.store.con
    whole = set(con.execute("SELECT v.lemma, i.ts, i.uid FROM lemma_index i "
                            "JOIN lemma_vocab v ON v.id = i.lemma_id").fetchall())
    con.execute("DROP TABLE lemma_index")  # the layout of schema version 1
    con.execute("DROP TABLE lemma_vocab")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.execute("CREATE TABLE lemma_index (lemma VARCHAR NOT NULL, ts TIMESTAMPTZ, "
                "uid VARCHAR NOT NULL)")
    con.execute("INSERT INTO lemma_index SELECT lemma, ts, uid FROM (SELECT e.uid, "
                "unnest(e.lemmas) AS lemma FROM enrichment e) JOIN messages USING (uid)")
    root = coded.store.root
    coded.close()
    with Project.open(root, read_only=True) as old, pytest.raises(UsageError, match="enrich"):
        old.search("граница")
    with Project.open(root) as p:
        assert {r["text"] for r in p.search("граница")} >= {"Прошли границу пешком"}
        assert set(p.store.con.execute(
            "SELECT v.lemma, i.ts, i.uid FROM lemma_index i "
            "JOIN lemma_vocab v ON v.id = i.lemma_id").fetchall()) == whole


def test_schema_versions_it_cannot_read_or_upgrade_are_refused(tmp_path: Path) -> None:
    from chatlens.errors import ProjectError

    with Project.init(tmp_path / "p") as p:
        p.store.con.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    with pytest.raises(ProjectError, match="schema version 5"):
        Project.open(tmp_path / "p")


def test_a_version_1_project_with_nothing_enriched_searches_read_only(tmp_path: Path) -> None:
    with Project.init(tmp_path / "p") as p:
        p.ingest([telegram_export(tmp_path / "r.json", TEXTS)])
        con = p.store.con
        con.execute("DROP TABLE lemma_index")
        con.execute("DROP TABLE lemma_vocab")
        con.execute("CREATE TABLE lemma_index (lemma VARCHAR NOT NULL, ts TIMESTAMPTZ, "
                    "uid VARCHAR NOT NULL)")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Project.open(tmp_path / "p", read_only=True) as old:
        assert old.search("граница") == []
