"""Stratified audits as chatlens draws them: census strata, strata with one audited message,
strata the audit never reached, and domains (months) that cut across the strata. Checked
against known truth by simulation: the intervals must cover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chatlens import Project
from chatlens.annotate.sampling import draw_audit
from chatlens.estimate import audit_estimate, ppi_finite_stratified
from chatlens.estimate.domain import domain_stratified
from chatlens.store.labels import NewLabel
from tests.helpers import telegram_export

SIZES = [400, 300, 200, 100, 60, 30, 10, 5, 2, 1]


def population(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    strata = np.repeat([f"c{i}" for i in range(len(SIZES))], SIZES)
    prev = np.repeat(rng.uniform(0.05, 0.6, len(SIZES)), SIZES)
    y = (rng.random(strata.size) < prev).astype(float)
    f = np.clip(y * 0.5 + rng.random(y.size) * 0.5, 0, 1)
    return strata, y, f


def draw(strata: np.ndarray, n: int, seed: int) -> np.ndarray:
    s = draw_audit([f"u{i}" for i in range(strata.size)], n, seed, strata=list(strata))
    return np.array(sorted(int(u[1:]) for u in s.uids))


def test_census_and_single_message_strata_estimate_without_error() -> None:
    rng = np.random.default_rng(1)
    strata, y, f = population(rng)
    idx = draw(strata, 40, 3)  # proportional allocation: the small chats get one message each
    counts = {h: int((strata[idx] == h).sum()) for h in set(strata.tolist())}
    assert counts["c9"] == 1 == SIZES[9]  # a census of one
    assert any(c == 1 < SIZES[int(h[1:])] for h, c in counts.items())  # a singleton
    sizes = {h: SIZES[int(h[1:])] for h in counts}
    a = audit_estimate(y[idx], None, strata=strata[idx], strata_sizes=sizes)
    p = ppi_finite_stratified(y[idx], f[idx], strata[idx], f, strata)
    for e in (a, p):
        assert 0 < e.lower < e.upper < 1 and "single audited message" in e.notes


@pytest.mark.parametrize("method", ["audit", "ppi"])
def test_stratified_intervals_cover_with_censuses_and_singletons(method: str) -> None:
    rng = np.random.default_rng(7)
    hits = []
    for rep in range(300):
        strata, y, f = population(rng)
        idx = draw(strata, 40, rep)
        sizes = {h: SIZES[int(h[1:])] for h in set(strata.tolist())}
        e = (audit_estimate(y[idx], None, strata=strata[idx], strata_sizes=sizes)
             if method == "audit" else ppi_finite_stratified(y[idx], f[idx], strata[idx], f,
                                                             strata))
        hits.append(e.lower <= y.mean() <= e.upper)
    assert np.mean(hits) >= 0.93


@pytest.mark.parametrize("method", ["audit", "ppi"])
def test_month_domains_of_a_chat_stratified_audit_cover(method: str) -> None:
    rng = np.random.default_rng(11)
    hits, widths = [], []
    for rep in range(200):
        strata, y, f = population(rng)
        months = rng.integers(0, 12, y.size)
        idx = draw(strata, 150, rep)
        d = months == rep % 12
        kw = {} if method == "audit" else {"yhat_labelled": f[idx], "yhat_population": f}
        e = domain_stratified(y[idx], strata[idx], d[idx], strata, d, 0.95, **kw)
        hits.append(e.lower <= y[d].mean() <= e.upper)
        widths.append(e.width)
    assert np.mean(hits) >= 0.93
    assert np.mean(widths) < 0.6  # every audited message is used, not just the month's


def test_strata_the_audit_never_reached_widen_the_interval_by_their_share() -> None:
    strata = np.array(["a"] * 90 + ["b"] * 10)
    y = np.r_[np.zeros(90), np.ones(10)]
    idx = np.arange(0, 90, 3)  # only stratum a audited
    e = audit_estimate(y[idx], None, strata=strata[idx], strata_sizes={"a": 90, "b": 10})
    assert e.unreached == pytest.approx(0.1)
    assert e.lower <= y.mean() <= e.upper and e.upper >= 0.1


def test_stratified_ppi_weights_strata_by_population_share() -> None:
    # a big all-negative stratum and ten small all-positive ones; allocation over-samples the
    # small ones, so an unweighted audit would say ~0.2 where the truth is 0.01
    rng = np.random.default_rng(0)
    strata_all = np.array(["big"] * 9900 + [f"s{i}" for i in range(10) for _ in range(10)])
    y_all = (strata_all != "big").astype(float)
    f_all = np.clip(y_all * 0.8 + rng.random(y_all.size) * 0.2, 0, 1)
    idx = np.concatenate([rng.choice(9900, 40, replace=False),
                          *[9900 + 10 * i + rng.choice(10, 2, replace=False) for i in range(10)]])
    e = ppi_finite_stratified(y_all[idx], f_all[idx], strata_all[idx], f_all, strata_all)
    assert e.lower <= y_all.mean() <= e.upper and abs(e.point - 0.01) < 0.01
    # strata no audited message reached (1% of the population): any share there is allowed
    e = ppi_finite_stratified(y_all[idx[:40]], f_all[idx[:40]], strata_all[idx[:40]], f_all,
                              strata_all)
    assert e.unreached == pytest.approx(0.01) and e.upper >= 0.01 and "no audited" in e.notes


def test_stratified_audit_sample_is_estimated_as_stratified(project: Project,
                                                            tmp_path: Path) -> None:
    texts = [f"Стоим на границе {i} часов" for i in range(40)] + \
            [f"Обычное сообщение {i}" for i in range(160)]
    project.ingest([telegram_export(tmp_path / "a.json", texts[:40], chat_id=1),
                    telegram_export(tmp_path / "b.json", texts[40:], chat_id=2)])
    project.code("builtin:exodus-2022")
    s = project.sample("border_crossing", "audit", 30, strata="chat", seed=1)
    items = project.labels().sample_items(s["sample_id"])
    frame = dict(project.store.con.execute("SELECT uid, text FROM messages").fetchall())
    project.labels().add_labels(
        NewLabel(i["uid"], "exodus-2022", "border_crossing",
                 "yes" if "границе" in frame[i["uid"]] else "no", "c",
                 sample_id=s["sample_id"], sample_kind="audit") for i in items)
    (row,) = project.estimate("border_crossing", method="audit")
    assert "stratified" in row.estimate.notes
    assert row.estimate.lower <= 40 / 200 <= row.estimate.upper
    (ppi,) = project.estimate("border_crossing")
    assert "stratified audit" in ppi.estimate.notes
