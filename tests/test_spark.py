"""The Spark engine gives the local engine's results: same enrichment, same codes, same
estimates, on a generated sample and on a sample of the real news-channel corpus, with Spark
``local[2]`` (PySpark is in the test extra; Java 17 must be on the machine)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from chatlens import Project
from chatlens.demo import telegram_export

pytest.importorskip("pyspark", reason="PySpark is not installed: pip install 'chatlens[spark]'")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java 17 on PATH", allow_module_level=True)

CODEBOOK = "builtin:exodus-2022"


def _tables(proj: Project) -> dict[str, Any]:
    enr = proj.store.query_arrow(
        "SELECT uid, fingerprint, lang, lang_score, norm, lemmas, urls, mentions, hashtags, "
        "emoji, places FROM enrichment ORDER BY uid")
    codes = proj.store.query_arrow(
        "SELECT uid, codebook, measure, in_population, value, score, scorer, matched "
        "FROM codes ORDER BY uid, measure")
    est = [proj.estimate(m, by="month", method="naive") for m in ("border_crossing", "war_stance")]
    return {"enrichment": enr, "codes": codes,
            "estimates": [[{k: v for k, v in r.as_dict().items() if k != "run_id"} for r in e]
                          for e in est]}


def _local_and_spark(base: Path, tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    results = []
    for engine in ("local", "spark"):
        root = tmp / engine
        shutil.copytree(base, root)
        with Project.open(root) as proj:
            proj.code(CODEBOOK, engine=engine, master="local[2]" if engine == "spark" else None)
            results.append(_tables(proj))
            assert not (root / "spark").exists() or not any((root / "spark").iterdir())
    return results[0], results[1]


def _assert_same(local: dict[str, Any], spark: dict[str, Any]) -> None:
    assert local["enrichment"].num_rows > 0 and local["codes"].num_rows > 0
    for key in ("enrichment", "codes"):
        assert spark[key].to_pylist() == local[key].to_pylist(), key
    assert spark["estimates"] == local["estimates"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("spark_gen")
    telegram_export(tmp / "result.json", 1500, random.Random(3))
    with Project.init(tmp / "base") as proj:
        proj.ingest([tmp / "result.json"])
    return tmp / "base"


def test_spark_local2_codes_a_generated_sample_exactly_as_the_local_engine(
        generated: Path, tmp_path: Path) -> None:
    local, spark = _local_and_spark(generated, tmp_path)
    _assert_same(local, spark)


def test_a_cluster_job_on_an_exported_dataset_attaches_the_local_engines_codes(
        generated: Path, tmp_path: Path) -> None:
    from chatlens.engines import spark as engine

    shutil.copytree(generated, tmp_path / "local")
    with Project.open(tmp_path / "local") as proj:
        proj.code(CODEBOOK)
        local = _tables(proj)
    shutil.copytree(generated, tmp_path / "cluster")
    dataset = str(tmp_path / "dataset")
    with Project.open(tmp_path / "cluster") as proj:
        assert proj.export_dataset(dataset, CODEBOOK)["messages"] == 1501
    assert sorted(p.name for p in (tmp_path / "dataset" / "messages").iterdir()) == [
        "platform=telegram"]
    engine.run_job(engine.session("local[2]"), dataset)  # what spark-submit runs
    with Project.open(tmp_path / "cluster") as proj:
        report = proj.attach_dataset(dataset)
        assert report["enriched"] == 1501
        assert proj.attach_dataset(dataset)["codes"] == 0  # attaching again adds nothing
        _assert_same(local, _tables(proj))


@pytest.mark.shared_data
def test_spark_local2_codes_real_news_posts_exactly_as_the_local_engine(
        shared_data: Path, tmp_path: Path) -> None:
    corpus = shared_data / "corpora" / "ru_news_channels_2023_2024"
    rows = []
    for f in sorted(corpus.glob("*_messages.json"))[:8]:
        posts = json.loads(f.read_text(encoding="utf-8"))[:250]
        rows += [{"id": str(p["message_id"]), "chat": p["channel"], "date": p["date"],
                  "text": p["text"] or "", "author": str(p["sender_id"])} for p in posts]
    src = tmp_path / "news.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    with Project.init(tmp_path / "base") as proj:
        proj.ingest([src], format="jsonl")
    local, spark = _local_and_spark(tmp_path / "base", tmp_path)
    assert local["enrichment"].num_rows == len(rows) >= 1500
    _assert_same(local, spark)


def test_parquet_export_and_attach_commands_report_in_json(generated: Path,
                                                          tmp_path: Path) -> None:
    from tests.test_cli import run

    shutil.copytree(generated, tmp_path / "p")
    dataset = str(tmp_path / "ds")
    res = run("parquet", "export", dataset, "--project", str(tmp_path / "p"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["messages"] == 1501
    job = json.loads((tmp_path / "ds" / "job.json").read_text(encoding="utf-8"))
    assert job["codebook"]["name"] == "exodus-2022"
    res = run("parquet", "attach", dataset, "--project", str(tmp_path / "p"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["codes"] == 0  # no job ran: nothing to attach
    res = run("enrich", "--master", "local[2]", "--project", str(tmp_path / "p"))
    assert res.returncode == 2 and "--engine spark" in res.stderr
