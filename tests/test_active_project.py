"""Active audits in a project: drawn with recorded probabilities, estimated by inverse-probability
weighting (never pooled with a random audit as if it were one), batches combined, groups valid."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chatlens import Project
from chatlens.annotate.sampling import active_probabilities, draw_active
from chatlens.cli import cli
from chatlens.errors import UsageError
from chatlens.estimate.active import ppi_active_estimate
from chatlens.estimate.simulate import Classifier, population
from chatlens.project.active import (
    Batch,
    WorkingModel,
    active_estimate,
    choose_working_model,
    fit_working_model,
)
from chatlens.store import stages as db
from chatlens.store.labels import NewLabel
from tests.helpers import BORDER_TEXTS, ingest_border_chats

TEXTS = BORDER_TEXTS
TRUTH = 40 / 120


@pytest.fixture
def coded(project: Project, tmp_path: Path) -> Project:
    return ingest_border_chats(project, tmp_path)


def label(project: Project, sample_id: str) -> list[dict[str, object]]:
    """Code every item of the sample with its true value (the text says so)."""
    items = project.labels().sample_items(sample_id)
    text = dict(project.store.con.execute("SELECT uid, text FROM messages").fetchall())
    project.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if "границе" in text[i["uid"]] else "no", "coder",
                 sample_id=sample_id, sample_kind="audit") for i in items)
    return items


def test_rule_scores_without_an_audit_cannot_weight_an_active_draw(coded: Project) -> None:
    with pytest.raises(UsageError, match="Draw a random audit first"):
        coded.sample("border_crossing", "audit", 30, design="active", seed=1)
    with pytest.raises(UsageError, match="without --strata"):
        coded.sample("border_crossing", "audit", 30, strata="chat", design="active")


def test_active_batch_records_pi_per_item_and_is_estimated_by_weighting(coded: Project) -> None:
    srs = coded.sample("border_crossing", "audit", 40, seed=2)
    label(coded, srs["sample_id"])
    act = coded.sample("border_crossing", "audit", 30, seed=3, design="active", floor=0.3)
    d = act["design"]
    assert d["method"] == "active-poisson" and d["floor"] == 0.3 and d["expected_n"] == 30
    assert d["working_model"]["fitted_on"] == 40  # recalibrated on the random audit
    assert d["working_model"]["fitted_on_samples"] == [srs["sample_id"]]
    # about 13 positives of 40: too few to trust the audit's intercept, so it is moved to the
    # population's EMQ prevalence (no audit label read) and the design says so
    assert d["working_model"]["basis"] == "audit"
    assert 0 < d["working_model"]["prior_shift"]["to"] < 1
    items = label(coded, act["sample_id"])
    pis = [i["inclusion_prob"] for i in items]
    assert all(0 < p <= 1 for p in pis) and len(set(pis)) == 2  # rule hits vs the rest
    (row,) = coded.estimate("border_crossing", samples=[act["sample_id"]])
    assert "active audit" in row.estimate.notes and "inverse-probability" in row.estimate.notes
    # a batch of expected size 30 may hold fewer: then the small-group rule says not valid
    assert row.valid == (row.estimate.n_labelled >= 30) and row.status in ("valid", "too-small")
    assert row.estimate.lower <= TRUTH <= row.estimate.upper
    # the estimate is the batch's own: its stored pi and its recorded working model
    frame = db.population_frame(coded.store, "exodus-2022", "border_crossing")
    at = {u: i for i, u in enumerate(frame["uid"].to_pylist())}
    g_all = WorkingModel.from_dict(d["working_model"])(
        np.array(frame["score"].to_pylist(), dtype=float))
    text = dict(coded.store.con.execute("SELECT uid, text FROM messages").fetchall())
    y = np.array([float("границе" in text[i["uid"]]) for i in items])
    g = g_all[[at[i["uid"]] for i in items]]
    by_hand = ppi_active_estimate(y, g, np.array(pis), g_all)
    assert row.estimate.point == pytest.approx(by_hand.point)
    assert row.estimate.se == pytest.approx(by_hand.se)
    (ht,) = coded.estimate("border_crossing", method="audit", samples=[act["sample_id"]])
    assert ht.estimate.method == "audit" and "Horvitz-Thompson" in ht.estimate.notes
    assert ht.estimate.lower <= TRUTH <= ht.estimate.upper
    # never pooled with the random audit: asked for both, refused; by default one, named
    with pytest.raises(UsageError, match="different designs"):
        coded.estimate("border_crossing", samples=[srs["sample_id"], act["sample_id"]])
    (default,) = coded.estimate("border_crossing")
    assert default.samples == [srs["sample_id"]]
    assert any(act["sample_id"] in w and "active" not in default.estimate.notes
               for w in default.warnings)


def test_batches_combine_and_groups_are_estimated_within_each_batch(coded: Project) -> None:
    label(coded, coded.sample("border_crossing", "audit", 40, seed=4)["sample_id"])
    ids = []
    for seed in (5, 6):
        s = coded.sample("border_crossing", "audit", 40, seed=seed, design="active")
        label(coded, s["sample_id"])
        ids.append(s["sample_id"])
    (row,) = coded.estimate("border_crossing", samples=ids)
    assert "2 batches of an active audit" in row.estimate.notes
    assert row.estimate.lower <= TRUTH <= row.estimate.upper
    rows = coded.estimate("border_crossing", by="chat", samples=ids)
    assert len(rows) == 2 and all(r.status in ("valid", "too-small", "too-few") for r in rows)
    assert all(r.estimate.lower <= 20 / 60 <= r.estimate.upper for r in rows
               if r.status != "too-few")


def test_cli_draws_an_active_batch_as_json(coded: Project) -> None:
    label(coded, coded.sample("border_crossing", "audit", 40, seed=7)["sample_id"])
    run = CliRunner().invoke(cli, ["sample", "--measure", "border_crossing", "--design", "active",
                                   "--n", "25", "--floor", "0.5", "--seed", "1", "--json",
                                   "--project", str(coded.root)])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert out["design"]["design"] == "active" and out["design"]["floor"] == 0.5
    text = CliRunner().invoke(cli, ["sample", "--measure", "border_crossing", "--design",
                                    "active", "--n", "25", "--project", str(coded.root)])
    assert text.exit_code == 0 and "drawn with probabilities" in text.output
    bad = CliRunner().invoke(cli, ["sample", "--measure", "border_crossing", "--floor", "0.5",
                                   "--project", str(coded.root)])
    assert isinstance(bad.exception, UsageError) and "--design active" in str(bad.exception)


def test_combined_batches_cover_the_truth() -> None:
    # two batches, the second with a working model recalibrated on the first batch's labels
    # (unweighted, so miscalibrated on purpose: validity must not depend on it)
    rng = np.random.default_rng(0)
    y, s = population(rng, 3000, 0.1, Classifier("weak", 0.8, score_prior=0.3))
    uids = [f"u{i}" for i in range(y.size)]
    hits, reps = 0, 200
    for rep in range(reps):
        w1 = WorkingModel()
        b1 = draw_active(uids, np.sqrt(w1(s) * (1 - w1(s))), 80, seed=2 * rep)
        i1 = [int(u[1:]) for u in b1.uids]
        w2 = fit_working_model(y[i1], s[i1])
        b2 = draw_active(uids, np.sqrt(w2(s) * (1 - w2(s))), 120, seed=2 * rep + 1)
        batches = [Batch("b1", b1.inclusion, w1, 80), Batch("b2", b2.inclusion, w2, 120)]
        both = sorted(set(b1.uids) | set(b2.uids))
        idx = np.array([int(u[1:]) for u in both])
        e = active_estimate(batches, "ppi", y[idx], both, s, s[idx], True, 0.95)
        hits += e.lower <= y.mean() <= e.upper
    assert hits / reps >= 0.93 - 2 * np.sqrt(0.95 * 0.05 / reps)


def test_working_model_moves_to_the_population_prevalence_without_audit_labels() -> None:
    # known truth: a model calibrated where half the messages were positive (its training
    # labels), a population at 5 %; the shift reads only the population's scores
    rng = np.random.default_rng(3)
    clf = Classifier("medium", 1.5)
    y_ref, s_ref = population(rng, 2000, 0.5, clf)
    y, s = population(rng, 20_000, 0.05, clf)
    none = np.zeros(0)
    work = choose_working_model(none, none, s, lambda: (y_ref, s_ref))
    assert work.basis == "training" and work.prior is not None
    assert work.prior[0] == pytest.approx(y_ref.mean())
    # EMQ's error comes from the slope fitted on 2,000 labels (0.036-0.062 over five seeds)
    assert work.prior[1] == pytest.approx(y.mean(), abs=0.02)
    assert work(s).mean() == pytest.approx(y.mean(), abs=0.02)
    unshifted = fit_working_model(y_ref, s_ref)
    assert unshifted.prior is None and unshifted(s).mean() > 0.15
    # the shifted g puts the labels where they pay: exact design variance of the weighted PPI,
    # E(y - g)^2 = t(1 - t) + (t - g)^2 with t the true P(y | score) at 5 %
    t = 1 / (1 + np.exp(-(np.log(s / (1 - s)) + np.log(0.05 / 0.95))))

    def design_var(g: np.ndarray) -> float:
        pi = active_probabilities(np.sqrt(g * (1 - g)), 500)
        return float(np.sum((1 - pi) / pi * (t * (1 - t) + (t - g) ** 2)))

    assert design_var(work(s)) < 0.8 * design_var(unshifted(s))
    assert WorkingModel.from_dict(work.as_dict()) == work


def test_working_model_comes_from_the_audit_once_it_holds_enough_of_each_class() -> None:
    rng = np.random.default_rng(4)
    clf = Classifier("medium", 1.5)
    y_ref, s_ref = population(rng, 1000, 0.5, clf)
    y, s = population(rng, 5000, 0.1, clf)
    big = rng.choice(5000, 400, replace=False)  # about 40 positives
    w = choose_working_model(y[big], s[big], s, lambda: (y_ref, s_ref))
    assert w.basis == "audit" and w.prior is None and w.fitted_on == 400
    small = big[:60]  # about 6 positives: the training labels, moved to the population
    assert choose_working_model(y[small], s[small], s, lambda: (y_ref, s_ref)).basis == \
        "training"
    few = choose_working_model(y[small], s[small], s)  # no trained model: the few, moved
    assert few.basis == "audit" and few.prior is not None and few.fitted_on == 60
    assert choose_working_model(np.zeros(3), s[:3], s).a is None  # one class: the score


@pytest.mark.slow
def test_first_active_batch_uses_the_trained_model_moved_to_the_population(
        tmp_path: Path) -> None:
    # a model trained on a training sample, before any audit label: the batch's working model
    # is the model's out-of-fold scores recalibrated and moved to the population's prevalence
    from importlib import resources

    from chatlens.codebook import BUILTIN
    from chatlens.demo import run_demo
    from chatlens.project.active import training_reference

    root = tmp_path / "p"
    run_demo(root, n_messages=400, seed=5)
    truth = json.loads((root / "demo-data" / "truth.json").read_text(encoding="utf-8"))
    topic = {t["text"]: t["topic"] for t in truth}
    p = Project.open(root)
    for s in p.labels().samples(None, "border_crossing", "audit"):
        p.drop_sample(s["sample_id"])  # the demo's audit: this batch comes before any
    text = dict(p.store.con.execute("SELECT uid, text FROM messages").fetchall())
    train = p.sample("border_crossing", "train", 200, seed=9)
    p.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if topic.get(text[i["uid"]]) == "border_crossing" else "no", "coder",
                 sample_id=train["sample_id"], sample_kind="train")
        for i in p.labels().sample_items(train["sample_id"]))
    p.train("border_crossing", cv=3)
    cb = resources.files(BUILTIN).joinpath("exodus-2022.yaml").read_text("utf-8")
    cb = cb.replace('version: "1.0.0"', 'version: "1.0.1"').replace(
        "        negation: {window: 2}\n\n  - id: mobilization",
        "        negation: {window: 2}\n      - {type: model, model: border_crossing-v1}\n"
        "    combine: any\n\n  - id: mobilization")
    (tmp_path / "cb.yaml").write_text(cb, encoding="utf-8")
    p.code(tmp_path / "cb.yaml")
    m = p.codebook()[0].measure("border_crossing")
    ref = training_reference(p, m)
    assert ref is not None and ref[0].size == 200 and 0 < ref[0].mean() < 1
    act = p.sample("border_crossing", "audit", 60, seed=3, design="active")
    w = act["design"]["working_model"]
    assert w["basis"] == "training" and w["fitted_on"] == 200
    assert w["fitted_on_samples"] == [] and w["prior_shift"]["from"] == pytest.approx(
        ref[0].mean())
    frame = db.population_frame(p.store, "exodus-2022", "border_crossing")
    g = WorkingModel.from_dict(w)(np.array(frame["score"].to_pylist(), dtype=float))
    assert g.mean() == pytest.approx(w["prior_shift"]["to"], abs=0.02)  # EMQ's fixed point
    share = sum(topic.get(t) == "border_crossing" for t in frame["text"].to_pylist()) / \
        frame.num_rows
    assert abs(w["prior_shift"]["to"] - share) < 0.05
    p.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if topic.get(text[i["uid"]]) == "border_crossing" else "no", "coder",
                 sample_id=act["sample_id"], sample_kind="audit")
        for i in p.labels().sample_items(act["sample_id"]))
    (row,) = p.estimate("border_crossing", samples=[act["sample_id"]])
    assert "active audit" in row.estimate.notes
    assert row.estimate.lower <= share <= row.estimate.upper


def test_design_mixing_warning_is_on_every_surface(coded: Project, tmp_path: Path) -> None:
    """A random audit and an active batch: the estimate uses one design and names the other;
    the CLI, the dashboard (measure and measures pages) and the report show that same warning
    (one source: the estimate's warnings)."""
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    from chatlens.report import build_report
    from tests.test_web import request, start

    srs = coded.sample("border_crossing", "audit", 40, seed=8)["sample_id"]
    label(coded, srs)
    act = coded.sample("border_crossing", "audit", 20, seed=9, design="active")["sample_id"]
    label(coded, act)
    (row,) = coded.estimate("border_crossing")
    (mixing,) = [w for w in row.warnings if "different designs" in w]
    assert act in mixing and row.samples == [srs]
    root = coded.root
    coded.close()
    res = CliRunner(env={"COLUMNS": "400"}).invoke(
        cli, ["estimate", "--measure", "border_crossing", "--project", str(root)])
    assert res.exit_code == 0 and mixing in " ".join(res.output.split())
    build_report(root, tmp_path / "report.html")
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    shown = html.escape(mixing, quote=False)
    assert report.count(shown) >= 1
    server = start(root)
    try:
        for page in ("/measures/border_crossing", "/measures"):
            status, _, body = request(server.url + page)
            assert status == 200 and html.unescape(shown) in html.unescape(body), page
        _seen_in_chromium(server.url + "/measures/border_crossing", mixing)
    finally:
        server.stop()


def _seen_in_chromium(url: str, text: str) -> None:
    """``text`` is on the page as Chromium renders it (when playwright and Chromium exist)."""
    try:
        from playwright import sync_api
    except ImportError:
        return
    from tests.test_web import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        return
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        assert text in " ".join(page.inner_text("body").split())
        browser.close()
