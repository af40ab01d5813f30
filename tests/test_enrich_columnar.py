"""The columnar enrichment path against the per-message reference (``prepare``, ``enrich_text``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from chatlens.enrich import EnrichSettings, Lemmatizer, enrich_table, prepare
from chatlens.enrich import chunks as chunk_cache
from chatlens.enrich.columnar import prepare_column
from chatlens.enrich.places import find_places
from chatlens.search_words import encode_lemmas
from tests.test_enrich import EDGE_TEXTS, _rows_equal_enrich_text

S = EnrichSettings()

#: what the columnar path hands to Python (and must still get right) or does in RE2 with care
TRICKY = [
    "see Http://x.org/a, Www.y.org T.ME/chan", "«http://a.com»", "(http://a.com).", "http://.",
    'http://a.com"x', "http://a.com<b>", "http://a.com».x", "http://a.com»» ok", "xt.me/a",
    "a.t.me/b", ",t.me/c", "telegram.me/d", "t.me/a t.me/a/5", "http://a.com http://a.com/x",
    "ΣΑΣ ΟΔΟΣ", "İstanbul", "ǅemal", "\u1e9e", "привет\u200dмир 👨\u200d👩\u200d👧", "nul\x00byte",
    "со\u00adфт\u200bхайфен", "№ 5 … ½ ²", "ｆｕｌｌｗｉｄｔｈ", "и\u0306ду", "e\u0301te",
    "don’t ʼ ‘q′`",
    "\u00a0nbsp\u2028line\x85next\x1cfs", "Ёлка ЁЖ", "www.ВЕРХНИЙ-ЛАРС.рф/путь?", "🇬🇪 1️⃣ ℹ️",
    "HTTPS://T.ME/x/1!!", "https://t.me/+abc)]'", ":) :-( ;p :dd", "рaбота Zа", "",
]


def _prepare_rows_equal(texts: list[str | None]) -> None:
    norms, urls = prepare_column(pa.array(texts, pa.string()))
    for text, norm, found in zip(texts, norms.to_pylist(), urls.to_pylist(), strict=True):
        assert (norm, found) == prepare(text or "", fold=False), repr(text)


def test_prepare_column_equals_prepare_on_tricky_texts() -> None:
    _prepare_rows_equal([*TRICKY, *EDGE_TEXTS, None])
    _prepare_rows_equal([])


def test_prepare_column_equals_prepare_on_random_texts() -> None:
    rng = random.Random(11)
    alphabet = [*"ab/.:,;!?)]'»«<>\" \n\tx", "http://", "HTTP://", "Www.", "www.", "t.me/",
                "T.Me/", "telegram.me/", "\u00a0", "\u2028", "ё", "Ё", "Σ", "İ", "\u200d", "\u00ad",
                "’", "…", "й", "и\u0306", "Z", "😀", "\x00", "Я", "ǅ"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
             for _ in range(20_000)]
    _prepare_rows_equal(texts)


def test_a_url_is_replaced_where_it_was_found_not_every_copy_of_its_text() -> None:
    # before enrich.v4 "t.me/a" was replaced inside "t.me/a/5" too, leaving "/5" behind
    assert prepare("t.me/a и t.me/a/5") == (" <url>  и  <url> ", ["t.me/a", "t.me/a/5"])
    assert prepare("«http://a.com», ") == ("« <url> », ", ["http://a.com"])


def test_enrich_table_equals_enrich_text_on_tricky_texts() -> None:
    _rows_equal_enrich_text(TRICKY * 2)


def test_chunk_cache_carries_over_batches_and_starts_over_past_its_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [*EDGE_TEXTS, *TRICKY]
    table = pa.table({"uid": [str(i) for i in range(len(texts))], "text": texts})
    first = enrich_table(table, S)
    assert enrich_table(table, S).equals(first)  # every chunk and token from the caches now
    monkeypatch.setattr(chunk_cache, "CHUNK_LIMIT", 5)
    assert enrich_table(table.slice(3), S).equals(first.slice(3))
    assert enrich_table(table, S).equals(first)
    # a batch of cached and new chunks that overflows the cache: it starts over with them all
    mixed = pa.table({"uid": ["a", "b"], "text": [texts[0], "совсем новые слова здесь"]})
    expected = enrich_table(mixed, S)
    monkeypatch.setattr(chunk_cache, "_STORE", chunk_cache._Store())
    monkeypatch.setattr(chunk_cache, "CHUNK_LIMIT", 10**6)
    enrich_table(table, S)
    monkeypatch.setattr(chunk_cache, "CHUNK_LIMIT", len(chunk_cache._STORE.keys) + 1)
    assert enrich_table(mixed, S).equals(expected)


def test_places_from_windows_equal_places_from_whole_messages() -> None:
    filler = " и ".join(["слово"] * 40)
    texts = [f"В Верхнем {filler} Ларсе, {filler} в верхнем ларсе и Грузии; {filler} Грузия",
             f"Москва {filler} Москва Тбилиси верхний", "верхний ларс " * 30, "Ларс",
             f"{filler} кпп бугристое {filler}"]
    out = enrich_table(pa.table({"uid": [str(i) for i in range(len(texts))], "text": texts}), S)
    lem = Lemmatizer()
    for text, lemmas, places in zip(texts, out.column("lemmas").to_pylist(),
                                    out.column("places").to_pylist(), strict=True):
        assert places == find_places(lem.tokens(text), lemmas), text
    assert out.column("places").to_pylist()[0] == ["checkpoint:upper_lars", "country:GE"]


def _news_posts(shared_data: Path, every: int) -> list[str]:
    d = shared_data / "corpora" / "ru_news_channels_2023_2024"
    if not d.is_dir():
        pytest.skip("news-channel corpus absent")
    posts = [str(p.get("text") or "") for f in sorted(d.glob("*.json"))
             for p in json.loads(f.read_text("utf-8"))]
    return posts[::every]


@pytest.mark.slow
def test_enrich_table_equals_enrich_text_on_real_news_posts(shared_data: Path) -> None:
    _rows_equal_enrich_text(_news_posts(shared_data, 7))  # 3,157 posts of all 24 channels


def test_tokens_align_with_stored_lemmas_on_real_news_posts(shared_data: Path) -> None:
    """Highlighting zips ``Lemmatizer.tokens(text)`` with the stored lemmas: equal counts."""
    texts = _news_posts(shared_data, 5)
    out = enrich_table(pa.table({"uid": [str(i) for i in range(len(texts))], "text": texts}), S)
    lem = Lemmatizer(S.tokenizer)
    for text, lemmas in zip(texts, out.column("lemmas").to_pylist(), strict=True):
        tokens = lem.tokens(text)
        assert len(tokens) == len(lemmas), text[:200]
        # a token whose lemma is itself (punctuation, numbers, Latin, <url>) is stored as is
        assert all(t == m for t, m in zip(tokens, lemmas, strict=True)
                   if not any("а" <= c <= "я" or c in "іїєґ" for c in t)), text[:200]



def _lemma_codes_equal_stored_lemmas(texts: list[str | None]) -> None:
    out = enrich_table(pa.table({"uid": [str(i) for i in range(len(texts))], "text": texts}), S,
                       with_codes=True)
    lemmas = out.column("lemmas").to_pylist()
    codes = out.column("lemma_codes")
    assert codes.to_pylist() == lemmas
    again = encode_lemmas(out.column("lemmas").combine_chunks())
    assert again.to_pylist() == lemmas
    for enc in (codes.combine_chunks(), again):  # the dictionary: the batch's distinct lemmas
        assert sorted(enc.flatten().dictionary.to_pylist()) == sorted(
            {x for xs in lemmas for x in xs})


def test_lemma_codes_from_the_cache_equal_the_stored_lemmas(
        shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers hand lexicons and the search index the lemmas encoded, from the chunk
    cache's codes; the store encodes stored lemmas when it catches up: both decode to the
    stored lemmas (real news posts, mixed Russian/Ukrainian batches, after the cache starts
    over), each on the batch's distinct lemmas."""
    texts: list[str | None] = [*EDGE_TEXTS, *TRICKY, *_news_posts(shared_data, 40)]
    _lemma_codes_equal_stored_lemmas(texts)
    _lemma_codes_equal_stored_lemmas(texts[::-1])  # every chunk from the cache now
    monkeypatch.setattr(chunk_cache, "CHUNK_LIMIT", 50)
    _lemma_codes_equal_stored_lemmas(texts[:40])


def test_enrich_table_reports_its_steps_when_asked() -> None:
    table = pa.table({"uid": ["a", "b"], "text": ["Едем в Грузию 😀", "http://x.org ok"]})
    steps: dict[str, float] = {}
    out = enrich_table(table, S, steps)
    assert out.equals(enrich_table(table, S))
    assert list(steps) == ["prepare", "language", "chunks", "lemmas", "places"]
    assert all(v >= 0 for v in steps.values())
