"""Label planning: the planned audit size gives the target half-width (checked by simulation)."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from chatlens.estimate import audit_estimate, difference, ppi_finite_estimate
from chatlens.estimate.audit import fpc_effective_n
from chatlens.estimate.plan import (
    audit_n,
    difference_n,
    disagreement_rate,
    plan_audit,
    plan_ppi,
    ppi_half_width,
    ppi_n,
    residual_variance,
    wilson_half_width,
)
from chatlens.estimate.simulate import Classifier, audit_indices, population

N = 20_000


def test_audit_n_is_the_smallest_size_with_the_width() -> None:
    for p, w in ((0.5, 0.05), (0.1, 0.03), (0.02, 0.01)):
        n = audit_n(p, N, w)
        assert wilson_half_width(p, fpc_effective_n(n, N)) <= w
        assert wilson_half_width(p, fpc_effective_n(n - 2, N)) > w
    assert audit_n(0.5, 10_000, 0.05) == 367  # 381 without the finite-population correction
    assert audit_n(0.5, 10**9, 0.05) == 381
    assert audit_n(0.5, 100, 0.001) == 100


def test_ppi_n_inverts_the_ppi_half_width() -> None:
    n = ppi_n(0.08, N, 0.02)
    assert ppi_half_width(0.08, n, N) <= 0.02 < ppi_half_width(0.08, n - 1, N)
    assert ppi_n(0.001, N, 0.05, p=0.05) == 200  # ten expected positives at least
    few = ppi_n(0.0005, N, 0.02, disagreement=0.001)  # few disagreements: the floor binds
    assert few > ppi_n(0.0005, N, 0.02)
    assert ppi_half_width(0.0005, few, N, disagreement=0.001) <= 0.02


def test_difference_n_meets_the_width_with_the_fewest_labels() -> None:
    na, nb = difference_n(0.04, 5000, 0.16, 8000, 0.03)
    z = 1.959964
    width = z * math.sqrt(0.04 * (1 / na - 1 / 5000) + 0.16 * (1 / nb - 1 / 8000))
    assert width <= 0.03 + 1e-6 and nb == pytest.approx(2 * na, rel=0.02)  # n ∝ s
    equal = math.ceil(0.20 / ((0.03 / z) ** 2 + 0.04 / 5000 + 0.16 / 8000))  # same n each side
    assert na + nb < 2 * equal


def _simulated(rng: np.random.Generator, prevalence: float, clf: Classifier, pilot: int,
               ) -> tuple[np.ndarray, np.ndarray, object]:
    y, f = population(rng, N, prevalence, clf)
    idx = audit_indices(rng, N, pilot)
    lg, lin, basis = residual_variance(y[idx], f[idx], f)
    return y, f, (lg, lin, basis, float(y[idx].mean()), disagreement_rate(y[idx], f[idx]))


SETTINGS = [  # prevalence, classifier, target half-width
    (0.2, Classifier("medium", 1.5), 0.03),
    (0.1, Classifier("miscalibrated", 1.5, slope=0.6, shift=1.0), 0.02),
    (0.3, Classifier("strong", 3.0), 0.02),
    (0.05, Classifier("weak", 0.5), 0.02),
]


@pytest.mark.parametrize(("prevalence", "clf", "w"), SETTINGS, ids=lambda s: getattr(s, "name",
                                                                                    str(s)))
def test_planned_n_achieves_the_half_width_within_ten_percent(
        prevalence: float, clf: Classifier, w: float) -> None:
    """The plan from a large pilot (so the pilot's own noise is small) is checked against the
    mean half-width chatlens's PPI and audit intervals have at the planned size."""
    rng = np.random.default_rng(11)
    y, f, (lg, lin, basis, p, dis) = _simulated(rng, prevalence, clf, pilot=3000)
    ppi = plan_ppi(lg, p, N, w, basis=basis, disagreement=dis, sigma2_linear=lin)
    aud = plan_audit(p, N, w)
    hw_ppi = [(e.upper - e.lower) / 2 for e in (
        ppi_finite_estimate(y[j], f[j], f) for j in
        (audit_indices(rng, N, ppi.n) for _ in range(60)))]
    hw_aud = [(e.upper - e.lower) / 2 for e in (
        audit_estimate(y[j], N) for j in (audit_indices(rng, N, aud.n) for _ in range(60)))]
    assert np.mean(hw_aud) == pytest.approx(w, rel=0.10)
    if ppi.binding == "variance":
        assert np.mean(hw_ppi) == pytest.approx(w, rel=0.10)
    else:  # a floor set n: the interval is narrower than asked, never wider
        assert np.mean(hw_ppi) <= 1.10 * w
    assert ppi.n < aud.n


def test_planned_difference_achieves_the_half_width() -> None:
    rng = np.random.default_rng(5)
    clf = Classifier("medium", 1.5)
    ya, fa, (lga, *_) = _simulated(rng, 0.15, clf, pilot=3000)
    yb, fb, (lgb, *_) = _simulated(rng, 0.30, clf, pilot=3000)
    na, nb = difference_n(lga, N, lgb, N, 0.03)
    widths = []
    for _ in range(40):
        ja, jb = audit_indices(rng, N, na), audit_indices(rng, N, nb)
        d = difference(ppi_finite_estimate(yb[jb], fb[jb], fb),
                       ppi_finite_estimate(ya[ja], fa[ja], fa))
        widths.append((d.upper - d.lower) / 2)
    assert np.mean(widths) == pytest.approx(0.03, rel=0.10)


# -- a project: plan from a pilot audit, from the scores alone; the CLI ------------------------

def test_plan_for_a_project_with_a_pilot_groups_and_a_split(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from chatlens.cli import cli
    from chatlens.project.plan import plan_labels
    from chatlens.store.labels import NewLabel
    from chatlens.store.stages import population_frame
    from tests.llm_server import FakeLlm
    from tests.test_llm import _project, codebook_yaml

    proj, truth = _project(tmp_path, n=200, step=1800)  # four days
    cb_path = tmp_path / "cb.yaml"
    with FakeLlm() as srv, proj:
        cb_path.write_text(codebook_yaml(srv.url), encoding="utf-8")
        proj.code(cb_path)
        no_pilot = plan_labels(proj, "border", 0.05)
        assert no_pilot["pilot"] == 0 and "calibrated" in no_pilot["basis"]
        frame = {r["uid"]: r["text"] for r in
                 population_frame(proj.store, "llmtest", "border").to_pylist()}
        sample = proj.sample("border", "audit", 80, seed=2)
        proj.labels().add_labels(
            NewLabel(uid=i["uid"], codebook="llmtest", measure="border",
                     value="yes" if truth[frame[i["uid"]]] else "no", annotator="t",
                     sample_id=sample["sample_id"], sample_kind="audit")
            for i in proj.labels().sample_items(sample["sample_id"]))
        result = plan_labels(proj, "border", 0.05, by="chat", split=date(2022, 9, 23))
    assert result["pilot"] == 80 and result["basis"].startswith("pilot audit of 80")
    audit, ppi, active = result["plans"]
    assert audit["method"] == "audit" and ppi["method"] == "ppi"
    assert active["method"] == "active" and active["n"] <= audit["n"]
    assert 0 < ppi["n"] <= audit["n"] <= 200
    assert {g["group"] for g in result["groups"]} == {"telegram:42"}
    assert set(result["difference"]["ppi"]) == {"before", "after"}
    res = CliRunner().invoke(cli, ["plan", "--measure", "border", "--width", "0.05",
                                   "--group", "chat", "--json",
                                   "--project", str(tmp_path / "proj")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["plans"][1]["n"] == ppi["n"]
    res = CliRunner().invoke(cli, ["plan", "--measure", "border", "--width", "0.05",
                                   "--project", str(tmp_path / "proj")])
    assert res.exit_code == 0 and "ppi" in res.output
