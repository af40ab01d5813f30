"""Related topics: per language, without stopwords, named by distinctive terms, honest shares."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chatlens import Project
from chatlens.present.charts import topic_charts
from chatlens.project.topics import _script, fit_topics, percentages
from tests.helpers import telegram_export

THEMES = {
    "ru-border": ("что это и на", "граница очередь ларс машина стоять пограничник паспорт"),
    "ru-flat": ("что это и на", "квартира аренда тбилиси цена район хозяин залог"),
    "he-food": ("של את זה", "גבינה חלב לחם עגבניות מלפפונים תפוזים יוגורט"),
    "en-jobs": ("the and is", "job candidates experience recruiter salary vacancy interview"),
}


def _texts(seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    out = []
    for stop, words in THEMES.values():
        for _ in range(60):
            out.append(" ".join(rng.sample(stop.split(), 2) + rng.sample(words.split(), 4)))
    out += ["да", "ok", "👍"] * 5  # too short to cluster
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> object:
    base = tmp_path_factory.mktemp("topics")
    src = telegram_export(base / "mixed.json", _texts(), step=3600 * 24)
    with Project.init(base / "proj") as p:
        p.ingest([src])
        p.code("builtin:exodus-2022")
        return fit_topics(p)


def test_topics_are_per_language_and_never_mix_scripts(model: object) -> None:
    topics = model.topics  # type: ignore[attr-defined]
    assert {t.lang for t in topics} >= {"ru", "he"}
    for t in topics:
        assert len({_script(w) for w in t.terms}) == 1, t.terms
    biggest = max(topics, key=lambda t: t.size)
    assert biggest.share < 0.4  # no cluster swallows the sample


def test_topic_terms_have_no_stopwords_and_name_the_theme(model: object) -> None:
    topics = model.topics  # type: ignore[attr-defined]
    terms = {w for t in topics for w in t.terms}
    assert not terms & {"что", "это", "the", "and", "של", "את"}
    theme_words = [set(words.split()) for _, words in THEMES.values()]
    named = [t for t in topics if not t.mixed]
    assert named
    for t in named:  # a topic's name comes from one theme's words
        lemmas = set(t.terms[:3])
        assert any(len(lemmas & {w[:5] for w in ws} | lemmas & ws) or
                   any(x.startswith(w[:4]) for x in lemmas for w in ws) for ws in theme_words)


def test_topic_shares_add_up_to_100_with_left_out_messages(model: object) -> None:
    m = model
    pcts = [t.pct for t in m.topics] + [x["pct"] for x in m.left_out]  # type: ignore[attr-defined]
    assert round(sum(pcts), 6) == 100.0
    assert all(round(p, 1) == p for p in pcts)
    assert any("fewer than 3 words" in x["reason"] for x in m.left_out)  # type: ignore[attr-defined]
    assert sum(x["n"] for x in m.left_out) + sum(t.size for t in m.topics) == m.sample_size  # type: ignore[attr-defined]


def test_topic_charts_tick_in_percent(model: object) -> None:
    svg = str(next(iter(topic_charts(model).values())))
    assert "%</text>" in svg


def test_percentages_round_by_largest_remainder() -> None:
    assert percentages([1, 1, 1]) == [33.4, 33.3, 33.3]
    assert sum(percentages([475, 3, 2, 1, 519])) == pytest.approx(100.0)
    assert percentages([]) == [] and percentages([0, 0]) == [0.0, 0.0]


def test_topics_of_a_real_mixed_language_project(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = Path("/work/shared/data") if not data.is_dir() else data
    wa = data / "whatsapp"
    if not wa.is_dir():
        pytest.skip("real data not found at ../shared/data (see its README)")
    with Project.init(tmp_path / "p") as p:
        p.ingest([wa / "android24h_he_family_group.txt", wa / "ios_en_sw_group__chat.txt"],
                 tz="UTC")
        p.code("builtin:exodus-2022")
        m = fit_topics(p, sample=6000)
    assert m.topics
    for t in m.topics:
        assert len({_script(w) for w in t.terms}) == 1, t.terms
        assert not set(t.terms) & {"the", "and", "של", "את", "na", "ya"}
    pcts = [t.pct for t in m.topics] + [x["pct"] for x in m.left_out]
    assert round(sum(pcts), 6) == 100.0
