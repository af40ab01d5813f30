"""Annotation library: samples, agreement figures, label files."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from chatlens.annotate import (
    LabelRecord,
    agreement_report,
    allocate,
    cohen_kappa,
    disagreements,
    draw_audit,
    draw_train,
    krippendorff_alpha,
    read_labels,
    write_labels,
    write_tasks_label_studio,
)
from chatlens.errors import EncodingError, InputError, UsageError
from chatlens.textsafe import csv_safe as neutralise
from chatlens.textsafe import csv_unsafe as unneutralise

FRAME = [f"m{i:03d}" for i in range(50)]
T0 = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

# --- audit samples -------------------------------------------------------------------------


def test_audit_inclusion_is_uniform() -> None:
    counts = Counter(u for seed in range(2000) for u in draw_audit(FRAME, 10, seed).uids)
    observed = [counts[u] for u in FRAME]
    assert sum(observed) == 20000
    assert chisquare(observed).pvalue > 0.001  # expected 400 per unit


def test_audit_pairs_are_uniform() -> None:
    """SRSWOR: every pair of units is equally likely, not only every unit."""
    frame = [f"u{i}" for i in range(8)]
    pairs = Counter(tuple(sorted(draw_audit(frame, 2, seed).uids)) for seed in range(5600))
    observed = [pairs[p] for p in itertools.combinations(frame, 2)]
    assert chisquare(observed).pvalue > 0.001  # 28 pairs, expected 200 each


def test_audit_is_reproducible_and_seed_dependent() -> None:
    a, b = draw_audit(FRAME, 10, 7), draw_audit(FRAME, 10, 7)
    assert a.uids == b.uids and a.as_dict() == b.as_dict()
    assert set(draw_audit(FRAME, 10, 8).uids) != set(a.uids)


def test_audit_does_not_depend_on_frame_order() -> None:
    strata = [f"chat{i % 3}" for i in range(50)]
    pairs = list(zip(FRAME, strata, strict=True))
    random.Random(1).shuffle(pairs)
    shuffled, shuffled_strata = [p[0] for p in pairs], [p[1] for p in pairs]
    assert draw_audit(FRAME, 12, 3).uids == draw_audit(shuffled, 12, 3).uids
    a = draw_audit(FRAME, 12, 3, strata)
    b = draw_audit(shuffled, 12, 3, shuffled_strata)
    assert a.as_dict() == b.as_dict()


def test_audit_design_is_recorded() -> None:
    s = draw_audit(FRAME, 10, 42)
    d = s.as_dict()
    assert d["kind"] == "audit" and d["method"] == "srswor" and d["seed"] == 42
    assert d["frame_size"] == 50 and d["n"] == 10 and len(d["uids"]) == 10
    assert d["inclusion"] == {u: 0.2 for u in s.uids}
    assert json.loads(json.dumps(d)) == d


def test_stratified_sizes_are_exactly_as_allocated() -> None:
    strata = ["a"] * 25 + ["b"] * 15 + ["c"] * 10
    s = draw_audit(FRAME, 10, 5, strata)
    assert s.method == "stratified-srswor" and s.allocation == "proportional"
    assert s.strata_sizes == {"a": 25, "b": 15, "c": 10}
    assert s.sample_sizes == {"a": 5, "b": 3, "c": 2}
    of = dict(zip(FRAME, strata, strict=True))
    assert Counter(of[u] for u in s.uids) == Counter(s.sample_sizes)
    assert all(s.stratum_of[u] == of[u] for u in s.uids)
    assert s.inclusion[next(u for u in s.uids if of[u] == "b")] == pytest.approx(3 / 15)


def test_stratified_draws_are_uniform_within_strata() -> None:
    strata = ["a"] * 30 + ["b"] * 20
    counts = Counter(u for seed in range(1000) for u in draw_audit(FRAME, 10, seed, strata).uids)
    assert chisquare([counts[u] for u in FRAME[:30]]).pvalue > 0.001  # 6 of 30 each time
    assert chisquare([counts[u] for u in FRAME[30:]]).pvalue > 0.001  # 4 of 20 each time
    assert sum(counts[u] for u in FRAME[:30]) == 6000


def test_allocation_rounding_and_minimum() -> None:
    assert allocate({"a": 7, "b": 7, "c": 6}, 10) == {"a": 4, "b": 3, "c": 3}
    assert allocate({"a": 97, "b": 2, "c": 1}, 10) == {"a": 8, "b": 1, "c": 1}  # ≥ 1 each
    assert allocate({"a": 97, "b": 2, "c": 1}, 2) == {"a": 2, "b": 0, "c": 0}  # n < strata
    assert allocate({"a": 50, "b": 2, "c": 0}, 10, "equal") == {"a": 8, "b": 2, "c": 0}
    with pytest.raises(UsageError):
        allocate({"a": 3}, 4)
    with pytest.raises(UsageError):
        allocate({"a": 3}, 1, "neyman")  # type: ignore[arg-type]


def test_audit_rejects_bad_frames() -> None:
    with pytest.raises(UsageError, match="more than once"):
        draw_audit(["a", "b", "a"], 1, 0)
    with pytest.raises(UsageError, match="population of 3"):
        draw_audit(["a", "b", "c"], 4, 0)
    with pytest.raises(UsageError):
        draw_audit(["a", "b"], 1, 0, strata=["x"])


@settings(max_examples=60, deadline=None)
@given(st.sets(st.text(min_size=1, max_size=6), max_size=40), st.data(),
       st.integers(-(2**63), 2**63))
def test_audit_returns_n_distinct_frame_uids(frame: set[str], data: st.DataObject,
                                             seed: int) -> None:
    n = data.draw(st.integers(0, len(frame)))
    s = draw_audit(sorted(frame), n, seed)
    assert len(s.uids) == n == len(set(s.uids)) and set(s.uids) <= frame


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 30), min_size=1),
       st.data(), st.sampled_from(["proportional", "equal"]))
def test_allocation_properties(sizes: dict[str, int], data: st.DataObject, how: str) -> None:
    n = data.draw(st.integers(0, sum(sizes.values())))
    alloc = allocate(sizes, n, how)  # type: ignore[arg-type]
    assert sum(alloc.values()) == n
    assert all(0 <= alloc[h] <= sizes[h] for h in sizes)
    nonempty = [h for h in sizes if sizes[h] > 0]
    if n >= len(nonempty):
        assert all(alloc[h] >= 1 for h in nonempty)
    total = sum(sizes.values())
    if how == "proportional" and all(n * sizes[h] >= total for h in nonempty):
        # no stratum needs the minimum of 1: largest remainder stays within 1 of the quota
        assert all(abs(alloc[h] - n * sizes[h] / total) < 1 for h in nonempty)


# --- training samples ----------------------------------------------------------------------


def test_train_excludes_audit_and_prefers_uncertain() -> None:
    rng = np.random.default_rng(0)
    frame = [f"t{i:04d}" for i in range(1000)]
    scores = rng.uniform(size=1000)
    audit = draw_audit(frame, 100, 1)
    t = draw_train(frame, scores, 50, 2, exclude=set(audit.uids))
    assert t.kind == "train" and t.method == "uncertainty+random" and len(t.uids) == 50
    assert not set(t.uids) & set(audit.uids) and t.excluded == 100
    assert len(t.random_uids) == 15 and t.random_share == pytest.approx(0.3)
    assert set(t.random_uids) < set(t.uids)
    by = dict(zip(frame, scores, strict=True))
    chosen = [u for u in t.uids if u not in set(t.random_uids)]
    assert np.mean([abs(by[u] - 0.5) for u in chosen]) < np.mean(np.abs(scores - 0.5)) / 5
    assert t.as_dict()["uncertainty"] == {u: pytest.approx(1 - abs(2 * by[u] - 1))
                                          for u in t.uids}
    only = draw_train(frame, scores, 50, 2, exclude=set(audit.uids), random_share=0.0)
    assert only.method == "uncertainty" and only.random_uids == ()


def test_train_diversity_avoids_near_duplicates() -> None:
    frame = [f"d{i:02d}" for i in range(40)]
    texts = ["where is the border queue today?"] * 20 + [f"topic {w} {i}" for i, w in
                                                         enumerate("abcdefghijklmnopqrst")]
    scores = [0.5] * 20 + [0.45] * 20
    plain = draw_train(frame, scores, 6, 0, random_share=0.0)
    diverse = draw_train(frame, scores, 6, 0, texts=texts, random_share=0.0)
    assert all(int(u[1:]) < 20 for u in plain.uids)  # the six most uncertain: all duplicates
    assert diverse.method == "uncertainty+diversity"
    assert diverse.representation == "hashed-char-3grams"
    assert sum(int(u[1:]) < 20 for u in diverse.uids) == 1
    vec = draw_train(frame, scores, 6, 0, vectors=np.eye(40), random_share=0.0)
    assert vec.representation == "vectors" and len(set(vec.uids)) == 6


def test_train_without_scores_is_random_and_reproducible() -> None:
    t = draw_train(FRAME, None, 10, 3, exclude={"m000", "m001"})
    assert t.method == "random" and t.pool_size == 48 and len(t.uids) == 10
    assert t.uids == draw_train(list(reversed(FRAME)), None, 10, 3, exclude={"m000",
                                                                             "m001"}).uids
    assert not {"m000", "m001"} & set(t.uids)
    assert len(draw_train(FRAME, None, 100, 3, exclude=set(FRAME[:45])).uids) == 5


def test_train_with_probability_matrix_picks_high_entropy() -> None:
    probs = np.array([[0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [0.9, 0.05,
                                                                                    0.05]])
    t = draw_train(["a", "b", "c", "d"], probs, 2, 0, random_share=0.0)
    assert t.uids == ("b", "c") and t.uncertainty["b"] == pytest.approx(1.0)


def _rule_frame(unscored_negatives: bool) -> tuple[list[str], list[float], list[str]]:
    """5,000 messages, 57% of them hit by a rule (score 1; the rest 0, or no score at all), and
    the hits are long posts (about 1,900 characters) while the rest are short (about 270):
    the situation of issue 12, where the default sampler picked 20% hits with median 266."""
    rng = np.random.default_rng(12)
    frame = [f"r{i:05d}" for i in range(5000)]
    hit = rng.random(5000) < 0.57
    scores = [1.0 if h else (float("nan") if unscored_negatives else 0.0) for h in hit]
    words = ["граница", "очередь", "паспорт", "виза", "такси", "хостел", "работа", "банк"]
    texts = []
    for h in hit:
        k = int(rng.normal(270 if h else 40, 30 if h else 15))
        texts.append(" ".join(rng.choice(words, size=max(k, 1)).tolist()))
    return frame, scores, texts


@pytest.mark.parametrize("unscored_negatives", [False, True])
def test_train_with_rule_scores_tracks_the_population(unscored_negatives: bool) -> None:
    frame, scores, texts = _rule_frame(unscored_negatives)
    chats = [f"chat{i % 7}" for i in range(len(frame))]
    t = draw_train(frame, scores, 250, 3, exclude=set(frame[:100]), texts=texts, groups=chats)
    assert t.method == "score-stratified" and len(t.uids) == 250
    assert "0/1 decisions" in t.note and not set(t.uids) & set(frame[:100])
    sample, pop = t.composition["sample"], t.composition["frame"]
    assert pop["n"] == 4900 and sample["n"] == 250
    if unscored_negatives:
        assert sample["share_unscored"] == pytest.approx(pop["share_unscored"], abs=0.005)
    else:
        assert sample["share_flagged"] == pytest.approx(pop["share_flagged"], abs=0.005)
    ratio = sample["length"]["median"] / pop["length"]["median"]
    assert 0.85 < ratio < 1.15, (sample["length"], pop["length"])
    assert sample["groups"] == 7
    assert sum(t.sample_sizes.values()) == 250 and sum(t.strata_sizes.values()) == 4900
    assert t.as_dict()["composition"] == t.composition


@pytest.mark.parametrize(("hits", "enough"), [(60, True), (8, False)])
def test_train_sample_of_a_rare_measure_enriches_on_rule_hits(hits: int, enough: bool) -> None:
    """0.1-1.2 % rule hits: a proportional sample of 200 would hold 0-2 of them, too few to
    train on; the sample takes score strata in equal shares and says how many a proportional
    one would have held, and what to do when even all hits are too few."""
    frame = [f"q{i:05d}" for i in range(5000)]
    scores = [1.0 if i % (5000 // hits) == 0 and i // (5000 // hits) < hits else 0.0
              for i in range(5000)]
    assert sum(scores) == hits
    t = draw_train(frame, scores, 200, 4, exclude=set(frame[1:11]))
    flagged = sum(1 for u in t.uids if scores[frame.index(u)] == 1.0)
    assert t.method == "score-enriched" and len(t.uids) == 200
    assert flagged == min(hits, 100) and t.sample_sizes["s=1.0"] == flagged
    assert t.expected_flagged == pytest.approx(200 * hits / 4990)
    assert f"would hold about {200 * hits / 4990:.1f} of them" in t.warning
    assert ("Find more positives" in t.warning) == (not enough)
    assert t.as_dict()["warning"] == t.warning
    # a measure that is not rare keeps the proportional draw, without a warning
    common = draw_train(frame, [1.0 if i % 4 == 0 else 0.0 for i in range(5000)], 200, 4)
    assert common.method == "score-stratified" and not common.warning
    assert common.sample_sizes == {"s=0.0": 150, "s=1.0": 50}


def test_train_with_constant_scores_is_random_within_the_one_stratum() -> None:
    t = draw_train(FRAME, [0.7] * len(FRAME), 10, 3)
    assert t.method == "score-stratified" and "same uncertainty" in t.note
    assert set(t.uids) == set(draw_train(FRAME, None, 10, 3).uids)


def test_train_with_no_scored_item_is_random_and_calls_nothing_rare() -> None:
    """No message has a score yet: the draw is random, and it never claims flagged messages
    are rare (there is no flagged or unflagged side to compare)."""
    t = draw_train(FRAME, [float("nan")] * len(FRAME), 10, 3)
    assert t.method == "score-stratified" and "no item has a score" in t.note
    assert t.warning == "" and t.expected_flagged is None
    assert set(t.uids) == set(draw_train(FRAME, None, 10, 3).uids)


def test_train_composition_reports_sample_next_to_frame() -> None:
    rng = np.random.default_rng(1)
    frame = [f"c{i:04d}" for i in range(2000)]
    scores = rng.uniform(size=2000)
    texts = ["x" * int(n) for n in rng.integers(10, 500, size=2000)]
    t = draw_train(frame, scores, 100, 0, texts=texts)
    assert t.method == "uncertainty+diversity+random" and len(t.random_uids) == 30
    c = t.composition
    assert set(c) == {"sample", "frame"} and c["frame"]["n"] == 2000 and c["sample"]["n"] == 100
    assert {"share_flagged", "share_unscored", "length"} <= set(c["sample"])


def test_train_rejects_misaligned_scores() -> None:
    with pytest.raises(UsageError):
        draw_train(FRAME, [0.5] * 3, 2, 0)


# --- agreement -----------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data with
# missing values: 4 coders × 12 units; unit 12 has one value and is not pairable.
_: None = None
K2011: list[list[int | None]] = [[1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
         [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _]]


def _units() -> dict[int, list[int | None]]:
    return {u: [row[u] for row in K2011] for u in range(12)}


@pytest.mark.parametrize(("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815),
                                                 ("interval", 0.849), ("ratio", 0.797)])
def test_alpha_matches_krippendorff_2011(level: str, expected: float) -> None:
    assert krippendorff_alpha(_units(), level) == pytest.approx(expected, abs=5e-4)  # type: ignore[arg-type]


def test_alpha_from_triples_equals_alpha_from_units() -> None:
    triples = [(u, f"coder{c}", row[u]) for c, row in enumerate(K2011) for u in range(12)]
    # Nominal by hand: pairable values n = 40 with n_1..n_5 = 9, 13, 10, 5, 3; off-diagonal
    # coincidences Σ o_ck = 8; Σ n_c n_k (c ≠ k) = 40² - (81+169+100+25+9) = 1216;
    # α = 1 - (n - 1)·8/1216 = 1 - 312/1216 = 0.74342.
    assert krippendorff_alpha(triples) == pytest.approx(0.7434, abs=1e-4)
    assert krippendorff_alpha(triples) == pytest.approx(krippendorff_alpha(_units()))


def test_alpha_undefined_cases() -> None:
    lonely: dict[int, list[str | None]] = {1: ["a"], 2: ["b", None]}
    assert math.isnan(krippendorff_alpha(lonely))  # nothing pairable
    assert math.isnan(krippendorff_alpha({1: ["a", "a"], 2: ["a", "a"]}))  # no variation
    with pytest.raises(UsageError):
        krippendorff_alpha({1: ["x", "y"]}, "interval")


def test_cohen_kappa_hand_example() -> None:
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    # p_o = 35/50 = 0.7; P(A yes) = 0.5, P(B yes) = 0.6; p_e = 0.5·0.6 + 0.5·0.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([*a, None], [*b, "y"]) == pytest.approx(0.4)
    assert math.isnan(cohen_kappa(["y", "y"], ["y", "y"]))
    with pytest.raises(UsageError):
        cohen_kappa(["y"], [])


def test_agreement_report_and_disagreements() -> None:
    labels = [("m", "u1", "ann", "yes"), ("m", "u1", "bob", "yes"),
              ("m", "u2", "ann", "no"), ("m", "u2", "bob", "yes"),
              ("m", "u3", "ann", "no"), ("m", "u3", "bob", "no"),
              ("m", "u4", "ann", "no"),
              ("k", "u1", "ann", "x")]
    rep = agreement_report(labels)
    m = rep["m"]
    assert (m["n_labels"], m["n_units"], m["n_coders"], m["pairable_units"]) == (7, 4, 2, 3)
    assert m["percent_agreement"] == pytest.approx(2 / 3) and m["disagreements"] == 1
    # kappa by hand over u1..u3: p_o = 2/3; ann yes 1/3, bob yes 2/3; p_e = 2/9 + 2/9 = 4/9;
    # kappa = (2/3 - 4/9) / (5/9) = 0.4
    assert m["kappa"] == pytest.approx(0.4)
    assert m["alpha"] == pytest.approx(krippendorff_alpha(
        {"u1": ["yes", "yes"], "u2": ["no", "yes"], "u3": ["no", "no"], "u4": ["no"]}))
    assert rep["k"]["alpha"] is None and rep["k"]["percent_agreement"] is None
    assert disagreements(labels) == [{"measure": "m", "uid": "u2",
                                      "values": {"ann": "no", "bob": "yes"}}]
    recs = [LabelRecord(u, ms, v, c, T0) for ms, u, c, v in labels]
    assert agreement_report(recs) == rep


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=30).filter(
    lambda xs: len(set(xs)) > 1), st.integers(2, 5))
def test_alpha_of_perfect_agreement_is_one(values: list[str], coders: int) -> None:
    assert krippendorff_alpha({i: [v] * coders for i, v in enumerate(values)}) == \
        pytest.approx(1.0)


def test_alpha_cross_checked_with_krippendorff_package() -> None:
    kd = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(3)
    data = rng.integers(1, 5, size=(3, 40)).astype(float)
    data[rng.uniform(size=data.shape) < 0.2] = np.nan
    units = {u: [None if np.isnan(x) else float(x) for x in data[:, u]] for u in range(40)}
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert krippendorff_alpha(units, level) == pytest.approx(
            kd.alpha(reliability_data=data, level_of_measurement=level))


def test_kappa_cross_checked_with_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    a = rng.choice(["x", "y", "z"], 60).tolist()
    b = [v if rng.uniform() < 0.6 else rng.choice(["x", "y", "z"]) for v in a]
    assert cohen_kappa(a, b) == pytest.approx(metrics.cohen_kappa_score(a, b))


# --- label files ---------------------------------------------------------------------------


def _records() -> list[LabelRecord]:
    return [
        LabelRecord("u1", "host_hostility", "yes", "ann@example.org", T0, "audit", "annotate"),
        LabelRecord("u1", "anti_war", "=HYPERLINK(\"http://x\")", "bob", T0 + timedelta(1),
                    "train", "correction", span=(3, 9), comment="-2 + 3, \"quoted\"\nnext line"),
        LabelRecord("u2", "host_hostility", "'=already", "@carol", T0, comment="'plain"),
        LabelRecord("u3", "host_hostility", "нет", "ann@example.org",
                    datetime(2024, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3))),
                    comment="\tтаб"),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"labels{suffix}"
    assert write_labels(_records(), path) == 4
    got, problems = read_labels(path, "nobody")
    assert problems == [] and got == _records()
    assert got[3].created == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    write_labels(_records(), path)
    text = path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'@carol" in text and "\"'-2 + 3" in text
    assert "''=already" in text and ",'plain" in text and "'\tтаб" in text
    for row in csv.reader(text.splitlines()[1:]):
        assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in row)


@settings(max_examples=200)
@given(st.text())
def test_neutralise_is_reversible_and_safe(cell: str) -> None:
    out = neutralise(cell)
    assert unneutralise(out) == cell
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1))
def test_csv_round_trips_any_value(value: str) -> None:
    rec = LabelRecord("u", "m", value, "a", T0, comment=value)
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".csv", ".jsonl", ".json"):
            write_labels([rec], Path(d) / f"x{suffix}")
            assert read_labels(Path(d) / f"x{suffix}", "z") == ([rec], [])


def test_bad_rows_are_reported_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("uid,measure,value,annotator,created,comment\n"
                    "u1,m,yes,,2024-01-02T03:04:05,\"two\nlines\"\n"
                    ",m,yes,a,,\n"
                    "u3,m,,a,,\n"
                    "u4,m,yes,a,not-a-time,\n"
                    "\n"
                    "u5,other,yes,a,,\n"
                    "u6,m,yes,a,,,extra\n"
                    "u7,m,no,a,,\n", encoding="utf-8")
    got, problems = read_labels(path, "default", measure="m", now=T0)
    assert [r.uid for r in got] == ["u1", "u7"]
    assert got[0].annotator == "default" and got[0].comment == "two\nlines"
    assert got[0].created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got[1].created == T0 and got[1].origin == "import" and got[1].sample_kind == "none"
    assert [p.line for p in problems] == [4, 5, 6, 8, 9]
    assert "uid is missing" in problems[0].message
    assert "value is missing" in problems[1].message
    assert "not the requested 'm'" in problems[3].message
    assert str(problems[0]).startswith(f"{path} (line 4): ")


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"uid": "u1", "measure": "m", "value": "yes"}\n'
                    "{not json\n"
                    "[1, 2]\n"
                    '{"uid": "u2", "measure": "m", "value": true}\n'
                    '{"uid": "u3", "measure": "m", "value": "x", "sample_kind": "gold"}\n'
                    '{"uid": "u4", "measure": "m", "value": "x", "span": [5, 2]}\n',
                    encoding="utf-8")
    got, problems = read_labels(path, "me", now=T0)
    assert [r.uid for r in got] == ["u1"] and got[0].annotator == "me"
    assert [p.line for p in problems] == [2, 3, 4, 5, 6]


def test_unreadable_files_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_labels(tmp_path / "missing.csv", "a")
    bad = tmp_path / "latin.csv"
    bad.write_bytes("uid,measure,value\nu1,m,caf\xe9\n".encode("latin-1"))
    with pytest.raises(EncodingError):
        read_labels(bad, "a")
    header = tmp_path / "header.csv"
    header.write_text("id,label\n1,yes\n", encoding="utf-8")
    with pytest.raises(InputError, match="uid and value"):
        read_labels(header, "a")
    header.write_text("uid,value\nu1,yes\n", encoding="utf-8")
    with pytest.raises(InputError, match="no measure column"):
        read_labels(header, "a")
    assert read_labels(header, "a", measure="m", now=T0)[0] == [
        LabelRecord("u1", "m", "yes", "a", T0)]
    ls = tmp_path / "ls.json"
    ls.write_text('{"data": {}}', encoding="utf-8")
    with pytest.raises(InputError, match="list of tasks"):
        read_labels(ls, "a")
    ls.write_text("[{", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        read_labels(ls, "a")


def _items() -> list[dict[str, object]]:
    return [
        {"uid": "u1", "text": "Remove the Z sign?", "context_before": "", "context_after": "ok",
         "measure": "z_sign", "question": 'Does it ask about the "Z" sign & $border?',
         "labels": ["yes", "no"], "sample_kind": "audit"},
        {"uid": "u1", "text": "Remove the Z sign?", "context_before": "", "context_after": "ok",
         "measure": "anti_war", "question": "Anti-war stance?", "labels": ["yes", "no", "<?>"]},
        {"uid": "u2", "text": "=1+1", "context_before": "hi", "context_after": "",
         "measure": "z_sign", "question": 'Does it ask about the "Z" sign & $border?',
         "labels": ["yes", "no"]},
    ]


def test_label_studio_tasks_and_config() -> None:
    tasks_json, config = write_tasks_label_studio(_items())
    tasks = json.loads(tasks_json)
    assert [t["data"]["uid"] for t in tasks] == ["u1", "u2"]
    assert tasks[0]["data"]["measures"] == "z_sign, anti_war"
    assert tasks[0]["data"]["sample_kind"] == "audit" and tasks[1]["data"]["text"] == "=1+1"
    root = ET.fromstring(config)
    choices = {c.get("name"): [x.get("value") for x in c] for c in root.iter("Choices")}
    assert choices == {"z_sign": ["yes", "no"], "anti_war": ["yes", "no", "<?>"]}
    assert all(c.get("toName") == "text" for c in root.iter("Choices"))
    headers = [h.get("value") for h in root.iter("Header")]
    assert 'Does it ask about the "Z" sign & ＄border?' in headers
    with pytest.raises(UsageError):
        write_tasks_label_studio([{**_items()[0], "measure": "bad name"}])
    with pytest.raises(UsageError):
        write_tasks_label_studio([_items()[0], {**_items()[2], "labels": ["y", "n"]}])


def test_label_studio_export_is_read(tmp_path: Path) -> None:
    """Tasks as written, annotated the way Label Studio exports them."""
    tasks = json.loads(write_tasks_label_studio(_items())[0])
    tasks[0].update(id=11, annotations=[
        {"id": 1, "completed_by": 7, "created_at": "2024-05-01T10:00:00.000000Z",
         "was_cancelled": False, "result": [
             {"from_name": "z_sign", "to_name": "text", "type": "choices",
              "value": {"choices": ["yes"]}},
             {"from_name": "anti_war", "to_name": "text", "type": "choices",
              "value": {"choices": ["no", "yes"]}},
             {"from_name": "comment", "to_name": "text", "type": "textarea",
              "value": {"text": ["unclear"]}}]},
        {"id": 2, "completed_by": {"id": 8, "email": "eve@example.org"},
         "created_at": "2024-05-02T10:00:00Z", "was_cancelled": True, "result": []}])
    tasks[1].update(id=12, annotations=[
        {"id": 3, "completed_by": {"id": 9}, "result": [
            {"from_name": "z_sign", "to_name": "text", "type": "rating", "value": {"rating": 3}},
            {"from_name": "z_sign", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 4, "labels": ["no"]}}]}])
    tasks.append({"id": 13, "data": {"text": "not ours"}, "annotations": []})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    got, problems = read_labels(path, "default", now=T0)
    assert got == [
        LabelRecord("u1", "z_sign", "yes", "labelstudio:7",
                    datetime(2024, 5, 1, 10, tzinfo=UTC), "audit", "import", comment="unclear"),
        LabelRecord("u2", "z_sign", "no", "labelstudio:9", T0, span=(0, 4)),
    ]
    where = [p.where for p in problems]
    assert where == ["task 1 (id 11), annotation 1, result 2", "task 1 (id 11), annotation 2",
                     "task 2 (id 12), annotation 1, result 1", "task 3 (id 13)"]
    assert "2 values chosen" in problems[0].message and "cancelled" in problems[1].message
    only, skipped = read_labels(path, "default", measure="anti_war", now=T0)
    assert only == [] and any("not the requested measure" in p.message for p in skipped)
