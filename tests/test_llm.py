"""LLM scorers, tested against an in-process server speaking OpenAI chat-completions JSON."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import httpx
import pytest

from chatlens.code.llm import (
    LlmClient,
    LlmMeasureScorer,
    LlmRuntime,
    build_prompt,
    label_probabilities,
    parse_label,
)
from chatlens.code.scorers import MISSING, Batch
from chatlens.codebook import is_local_url, parse_codebook
from chatlens.errors import ChatlensError, CodebookError
from chatlens.project import Project
from chatlens.store.llmcache import LlmCache
from tests.helpers import telegram_export
from tests.llm_server import FakeLlm


def codebook_yaml(url: str, extra: str = "", name: str = "llmtest", timeout: float = 5.0) -> str:
    """``timeout``: generous, so a loaded machine does not turn answers into retries; the
    timeout test sets a short one."""
    return f"""
name: {name}
version: "1"
languages: [ru, en]
measures:
  - id: border
    question: Does the message talk about crossing a border?
    labels: [yes, no]
    instructions: Code yes when the message talks about a border crossing.
    examples:
      yes: ["Стоим на границе 12 часов"]
      no: ["Где купить симку?"]
    scorers:
      - type: llm
        model: test-model
        base_url: {url}
        timeout: {timeout}
        max_retries: 2
        concurrency: 4
{extra}
"""


def measure_and_cfg(url: str, extra: str = "", timeout: float = 5.0) -> tuple:
    cb = parse_codebook(codebook_yaml(url, extra, timeout=timeout))
    m = cb.measures[0]
    return m, m.scorers[0]


def batch(texts: list[str], prefix: str = "u") -> Batch:
    import pyarrow as pa

    return Batch(texts, texts, ["ru"] * len(texts), [[] for _ in texts],
                 uids=pa.array([f"{prefix}{i}" for i in range(len(texts))]))


# -- pure parts --------------------------------------------------------------------------------

def test_local_urls_are_loopback_only() -> None:
    assert is_local_url("http://127.0.0.1:8080/v1")
    assert is_local_url("http://localhost:11434/v1")
    assert is_local_url("http://[::1]:8000/v1")
    assert not is_local_url("https://api.openai.com/v1")
    assert not is_local_url("http://192.168.1.5:8080/v1")


def test_answers_are_validated_against_the_labels() -> None:
    labels = ("yes", "no")
    assert parse_label('{"label": "yes"}', labels) == "yes"
    assert parse_label('```json\n{"label": "No"}\n```', labels) == "no"
    assert parse_label('{"label": "maybe"}', labels) is None
    assert parse_label("yes", labels) is None
    assert parse_label('["yes"]', labels) is None


def test_probabilities_come_from_the_label_token() -> None:
    content = '{"label": "yes"}'
    lp = {"content": [
        {"token": '{"', "logprob": 0.0}, {"token": "label", "logprob": 0.0},
        {"token": '":', "logprob": 0.0},
        {"token": ' "yes', "logprob": math.log(0.7), "top_logprobs": [
            {"token": ' "yes', "logprob": math.log(0.7)},
            {"token": ' "no', "logprob": math.log(0.2)},
            {"token": ' "maybe', "logprob": math.log(0.1)}]},
        {"token": '"}', "logprob": 0.0}]}
    probs = label_probabilities(content, lp, ("yes", "no"))
    assert probs is not None
    assert probs["yes"] == pytest.approx(0.7 / 0.9)
    assert label_probabilities(content, None, ("yes", "no")) is None
    # a first token shared by two labels tells nothing
    lp2 = {"content": [{"token": '{"label": "', "logprob": 0.0},
                       {"token": "anti", "logprob": -0.1,
                        "top_logprobs": [{"token": "anti", "logprob": -0.1}]}]}
    assert label_probabilities('{"label": "anti_war"}', lp2, ("anti", "anti_war")) is None


def test_prompt_carries_the_measure_and_its_hash_changes_with_it() -> None:
    m, cfg = measure_and_cfg("http://127.0.0.1:9/v1")
    p = build_prompt(m, cfg)
    assert m.question in p.system and "Стоим на границе" in p.system
    assert p.request["temperature"] == 0
    assert p.request["response_format"]["json_schema"]["schema"]["properties"]["label"][
        "enum"] == ["yes", "no"]
    m2, cfg2 = measure_and_cfg("http://127.0.0.1:9/v1", "        temperature: 0.5")
    assert build_prompt(m2, cfg2).hash != p.hash
    assert build_prompt(m, cfg).hash == p.hash


def test_codebook_rejects_a_remote_endpoint_without_allow_remote() -> None:
    with pytest.raises(CodebookError) as exc:
        parse_codebook(codebook_yaml("https://api.example.com/v1"))
    (path, line, msg), = exc.value.problems
    assert path == "measures[0].scorers[0].base_url" and line and "allow_remote" in msg
    parse_codebook(codebook_yaml("https://api.example.com/v1", "        allow_remote: true"))


def test_remote_needs_both_opt_ins_and_only_then_sends() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"choices": [{"message": {
            "content": '{"label": "no"}'}}]})

    m, cfg = measure_and_cfg("https://api.example.com/v1", "        allow_remote: true")
    with pytest.raises(ChatlensError, match="--allow-remote"):
        LlmMeasureScorer("llm0", m, cfg, LlmRuntime(transport=httpx.MockTransport(handler)))
    assert not sent
    sc = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(allow_remote=True,
                                                     transport=httpx.MockTransport(handler)))
    assert sc.positive_proba(batch(["привет"])) == [0.0]
    assert len(sent) == 1 and sent[0].url.host == "api.example.com"


# -- the client against the server -------------------------------------------------------------

def test_client_retries_rate_limits_errors_timeouts_and_malformed_answers() -> None:
    with FakeLlm(slow_seconds=1.5) as srv:
        m, cfg = measure_and_cfg(srv.url, timeout=0.5)
        client = LlmClient(cfg, build_prompt(m, cfg), backoff=0.01)
        try:
            for text in ("RATELIMIT на границе", "ERROR500 на границе", "SLOW на границе",
                         "FLAKY на границе", "BROKENBODY на границе"):
                a = client.ask(text)
                assert a is not None and a.status == "ok" and a.label == "yes", text
                assert a.probs == pytest.approx({"yes": 0.9, "no": 0.1})
                assert a.attempts == 2
            bad = client.ask("MALFORMED")
            assert bad is not None and bad.status == "invalid" and bad.label is None
            assert bad.attempts == 3 and srv.seen["MALFORMED"] == 3
            assert client.ask("BADLABEL").status == "invalid"  # type: ignore[union-attr]
            body = srv.requests[0]
            assert body["model"] == "test-model" and body["temperature"] == 0
            assert body["logprobs"] is True and body["messages"][0]["role"] == "system"
        finally:
            client.close()


def test_transient_failures_after_every_retry_give_no_answer() -> None:
    with FakeLlm(fail_after=0) as srv:
        m, cfg = measure_and_cfg(srv.url)
        client = LlmClient(cfg, build_prompt(m, cfg), backoff=0.01)
        assert client.ask("на границе") is None
        assert len(srv.requests) == cfg.max_retries + 1
        client.close()


def test_no_server_is_a_clear_error() -> None:
    m, cfg = measure_and_cfg("http://127.0.0.1:9/v1")
    sc = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(backoff=0.01))
    with pytest.raises(ChatlensError, match="No language-model server"):
        sc.positive_proba(batch(["a"]))


def test_wrong_model_is_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "model 'x' not found"}})

    m, cfg = measure_and_cfg("http://127.0.0.1:9/v1")
    sc = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(transport=httpx.MockTransport(handler)))
    with pytest.raises(ChatlensError, match="check the model name"):
        sc.positive_proba(batch(["a"]))


def test_scorer_caches_answers_and_never_asks_twice(tmp_path: Path) -> None:
    with FakeLlm() as srv:
        m, cfg = measure_and_cfg(srv.url)
        cache = LlmCache(tmp_path)
        texts = ["на границе", "привет", "MALFORMED", "граница закрыта", "ok"]
        sc = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(cache=cache, backoff=0.01))
        p = sc.positive_proba(batch(texts), [True, True, True, True, False])
        assert p[0] == pytest.approx(0.9) and p[1] == pytest.approx(0.2)
        assert math.isnan(p[2]) and p[3] == pytest.approx(0.9) and math.isnan(p[4])
        n = len(srv.requests)
        assert n == 3 + 3  # three answers, the malformed one asked three times
        sc2 = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(cache=cache, backoff=0.01))
        hits = sc2.score(batch(texts), [True] * 4 + [False])
        assert hits[2] is MISSING and hits[1] is None and hits[0].label == "yes"
        assert len(srv.requests) == n and sc2.stats.cached == 4
        cache.close()


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    with FakeLlm() as srv:
        m, cfg = measure_and_cfg(srv.url, "        requests_per_minute: 6000")
        sc = LlmMeasureScorer("llm0", m, cfg, LlmRuntime(cache=LlmCache(tmp_path)))
        texts = [f"сообщение {i}" for i in range(40)]
        assert sc.positive_proba(batch(texts)) == pytest.approx([0.2] * 40)
        assert sc.stats.answered == 40 and len(srv.requests) == 40


# -- end to end: a project coded by an LLM, an audit, PPI --------------------------------------

def _project(tmp_path: Path, n: int = 240, seed: int = 3, step: int = 60,
             ) -> tuple[Project, dict[str, bool]]:
    rng = random.Random(seed)
    texts, truth = [], {}
    for i in range(n):
        border = rng.random() < 0.3
        word = "границе" if border and rng.random() < 0.85 else "очереди"
        if not border and rng.random() < 0.08:
            word = "границе"  # the model's false positives
        t = f"Сообщение {i}: стоим на {word}, {'да' if border else 'нет'}"
        texts.append(t)
        truth[t] = border
    export = telegram_export(tmp_path / "result.json", texts, step=step)
    proj = Project.init(tmp_path / "proj")
    proj.ingest([export])
    return proj, truth


def test_llm_codes_and_an_audit_give_a_ppi_interval(tmp_path: Path) -> None:
    from chatlens.store.labels import NewLabel
    from chatlens.store.stages import population_frame

    proj, truth = _project(tmp_path)
    cb_path = tmp_path / "cb.yaml"
    with FakeLlm() as srv, proj:
        cb_path.write_text(codebook_yaml(srv.url), encoding="utf-8")
        dry = proj.llm_dry_run(cb_path)
        assert dry[0]["requested"] == 240 and dry[0]["prompt_tokens"] > 240 * 50
        assert not srv.requests  # a dry run sends nothing
        report = proj.code(cb_path)
        assert report.llm[0]["answered"] == 240 and len(srv.requests) == 240
        frame = population_frame(proj.store, "llmtest", "border").to_pylist()
        assert len(frame) == 240
        assert {round(r["score"], 3) for r in frame} == {0.9, 0.2}
        again = proj.code(cb_path)
        assert again.llm[0]["requested"] == 0 and len(srv.requests) == 240
        assert proj.llm_dry_run(cb_path)[0]["requested"] == 0
        sample = proj.sample("border", "audit", 120, seed=1)
        proj.labels().add_labels(
            NewLabel(uid=i["uid"], codebook="llmtest", measure="border",
                     value="yes" if truth[text] else "no", annotator="t",
                     sample_id=sample["sample_id"], sample_kind="audit")
            for i in proj.labels().sample_items(sample["sample_id"])
            for text in [next(r["text"] for r in frame if r["uid"] == i["uid"])])
        (row,) = proj.estimate("border")
    share = sum(truth.values()) / len(truth)
    est = row.estimate
    assert est.method == "ppi" and est.lower <= share <= est.upper
    assert est.upper - est.lower < 0.25


def test_interrupted_coding_resumes_without_asking_again(tmp_path: Path) -> None:
    proj, _ = _project(tmp_path, n=60)
    cb_path = tmp_path / "cb.yaml"
    with proj:
        with FakeLlm(fail_after=25) as srv:
            cb_path.write_text(codebook_yaml(srv.url, "        max_retries: 0"), "utf-8")
            first = proj.code(cb_path, llm=LlmRuntime(backoff=0.0))
            answered = first.llm[0]["answered"]
            assert 0 < answered <= 25 and first.llm[0]["failed"] == 60 - answered
            assert proj.status() is not None
        with FakeLlm() as srv2:
            cb_path.write_text(codebook_yaml(srv2.url, "        max_retries: 0"), "utf-8")
            # a new port changes base_url, not the prompt: answers stay cached
            second = proj.code(cb_path)
            assert second.llm[0]["cached"] == answered
            assert len(srv2.requests) == 60 - answered
        from chatlens.store.stages import population_frame

        assert population_frame(proj.store, "llmtest", "border").num_rows == 60


def test_cli_code_dry_run_prints_the_calls(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chatlens.cli import cli

    proj, _ = _project(tmp_path, n=20)
    proj.close()
    cb_path = tmp_path / "cb.yaml"
    with FakeLlm() as srv:
        cb_path.write_text(codebook_yaml(srv.url, "        price_per_million_input: 1.0"),
                           "utf-8")
        res = CliRunner().invoke(cli, ["code", "--codebook", str(cb_path), "--dry-run",
                                       "--json", "--project", str(tmp_path / "proj")])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["calls"] == 20 and data["scorers"][0]["cost"] > 0
        assert not srv.requests


def test_report_states_the_model_prompt_hash_and_audited_accuracy(tmp_path: Path) -> None:
    from chatlens.code.llm import build_prompt
    from chatlens.codebook import parse_codebook
    from chatlens.report import build_report
    from chatlens.store.labels import NewLabel
    from chatlens.store.stages import population_frame

    proj, truth = _project(tmp_path, n=60)
    cb_path = tmp_path / "cb.yaml"
    with FakeLlm() as srv:
        cb_path.write_text(codebook_yaml(srv.url), encoding="utf-8")
        with proj:
            proj.code(cb_path)
            text = {r["uid"]: r["text"] for r in
                    population_frame(proj.store, "llmtest", "border").to_pylist()}
            sample = proj.sample("border", "audit", 40, seed=1)
            proj.labels().add_labels(
                NewLabel(uid=i["uid"], codebook="llmtest", measure="border",
                         value="yes" if truth[text[i["uid"]]] else "no", annotator="t",
                         sample_id=sample["sample_id"], sample_kind="audit")
                for i in proj.labels().sample_items(sample["sample_id"]))
        html = build_report(tmp_path / "proj", tmp_path / "r.html").read_text("utf-8")
    cb = parse_codebook(codebook_yaml(srv.url))
    assert "llm test-model (border)" in html
    assert build_prompt(cb.measures[0], cb.measures[0].scorers[0]).hash in html
    assert "Audited accuracy:" in html and "on 40 audit-sample messages" in html


def test_without_a_runtime_only_cached_answers_are_used_and_nothing_is_sent() -> None:
    from chatlens.code import compile_codebook

    sent: list[object] = []
    cb = parse_codebook(codebook_yaml("https://api.example.com/v1", "        allow_remote: true"))
    compiled = compile_codebook(cb)  # e.g. estimation re-coding labelled messages
    (scorer,) = compiled.measures[0].scorers
    assert compiled.uses_llm() and not sent
    assert math.isnan(scorer.positive_proba(batch(["на границе"]))[0])  # type: ignore[attr-defined]


def test_progress_counts_every_request_of_the_run(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    with FakeLlm() as srv:
        m, cfg = measure_and_cfg(srv.url)
        rt = LlmRuntime(cache=LlmCache(tmp_path), progress=lambda *a: seen.append(a))
        sc = LlmMeasureScorer("llm0", m, cfg, rt)
        sc.positive_proba(batch([f"a {i}" for i in range(5)]))
        sc.positive_proba(batch([f"b {i}" for i in range(5)], prefix="v"))
    assert seen[-1] == ("llm border", 10, 10) and all(s[0] == "llm border" for s in seen)


def test_a_codebook_without_llm_scorers_never_touches_the_llm_machinery(tmp_path: Path) -> None:
    proj, _ = _project(tmp_path, n=10)
    cb_path = tmp_path / "cb.yaml"
    cb_path.write_text("""
name: rules
version: "1"
languages: [ru]
measures:
  - id: border
    question: Does the message talk about crossing a border?
    labels: [yes, no]
    instructions: Code yes when the message talks about a border crossing.
    scorers:
      - type: regex
        pattern: границ
""", encoding="utf-8")
    with proj:
        report = proj.code(cb_path)
        assert report.llm == [] and proj.llm_dry_run(cb_path) == []
    assert not (tmp_path / "proj" / "llm_cache.sqlite").exists()


def test_a_categorical_measure_gets_the_label_the_model_picks(tmp_path: Path) -> None:
    yaml_text = codebook_yaml("URL").replace("labels: [yes, no]", "type: categorical\n"
                                              "    labels: [border, queue, other]")
    yaml_text = yaml_text.replace('      yes: ["Стоим на границе 12 часов"]\n      no: ["Где '
                                  'купить симку?"]', '      border: ["Стоим на границе"]')
    with FakeLlm() as srv:
        cb = parse_codebook(yaml_text.replace("URL", srv.url))
        m = cb.measures[0]
        sc = LlmMeasureScorer("llm0", m, m.scorers[0], LlmRuntime(cache=LlmCache(tmp_path)))
        hits = sc.score(batch(["на границе", "в очереди"]))
    assert [h.label for h in hits] == ["border", "queue"]  # type: ignore[union-attr]
    assert hits[0].score == pytest.approx(0.9)  # type: ignore[union-attr]
    bad = yaml_text.replace("URL", "http://127.0.0.1:9/v1").replace(
        "        model: test-model", "        model: test-model\n        label: border")
    with pytest.raises(CodebookError, match="remove label"):
        parse_codebook(bad)
