"""Enrichment: normalisation, tokens/lemmas, features, places, language ID, settings."""

from __future__ import annotations

import os
import pickle
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from chatlens.enrich import (
    ENRICH_SCHEMA,
    EnrichSettings,
    Lemmatizer,
    enrich_table,
    enrich_text,
    negation_words,
    prepare,
)
from chatlens.enrich.lid import detect_batch

S = EnrichSettings()
LEM = Lemmatizer()


def test_russian_inflection_to_one_lemma() -> None:
    for form in ("граница", "границу", "границе", "границы", "границей"):
        assert LEM.lemmas(form, "ru") == ["граница"]


def test_ukrainian_inflection_and_apostrophe() -> None:
    for form in ("кордон", "кордону", "кордоні", "кордоном"):
        assert LEM.lemmas(form, "uk") == ["кордон"]
    assert LEM.lemmas("Грузії", "uk") == ["грузія"]
    assert LEM.lemmas("м’ята", "uk") == ["м'ята"]  # typographic apostrophe unified, one token


def test_fallback_and_lemmas_align_with_tokens() -> None:
    row = enrich_text("Ёлки, очередь на границе! 😡 Z", S)
    assert len(row["tokens"]) == len(row["lemmas"])
    assert "граница" in row["lemmas"] and "очередь" in row["lemmas"]
    # und / other Cyrillic languages use the Russian dictionary
    assert LEM.lemmas("границе", "und") == ["граница"]
    assert LEM.lemmas("Қазақстанға", "kk") == ["қазақстанға"]  # foreign letters: left as is


def test_homoglyph_folding() -> None:
    norm, _ = prepare("мобилизaция и вoенкомат")  # Latin a and o inside Cyrillic words
    assert norm == "мобилизация и военкомат"
    assert prepare("ВOЙНА")[0] == "война"
    assert prepare("pаssport")[0] == "passport"  # mostly Latin word: Cyrillic а becomes Latin
    assert enrich_text("Z", S)["tokens"] == ["z"]  # standalone Latin Z stays Latin
    assert enrich_text("V за наших", S)["tokens"][0] == "v"
    assert enrich_text("З", S)["tokens"] == ["з"]  # Cyrillic З unchanged
    assert "\u0437" in enrich_text("Зима", S)["norm"]
    assert enrich_text("мобилизaция", S)["norm"] == "мобилизация"  # pipeline folds norm too


def test_yo_zero_width_and_ukrainian_letters() -> None:
    assert prepare("Ещё ёлка")[0] == "еще елка"
    assert prepare("при\u200bвет\u00ad\ufeff")[0] == "привет"
    assert prepare("Їжак, Євген, ґанок, і")[0] == "їжак, євген, ґанок, і"
    row = enrich_text("👨\u200d👩\u200d👧 семья", S)
    assert row["emoji"] == ["👨\u200d👩\u200d👧"]  # ZWJ kept inside emoji sequences


def test_und_cases() -> None:
    for text in ("😀😀😀", "https://t.me/channel/123", "12345 678", "", "ок", "@someone"):
        row = enrich_text(text, S)
        assert row["lang"] == "und", text
        assert row["lang_score"] == 0.0


def test_features() -> None:
    text = "Смотри https://t.me/kpp_lars/5, пиши @Border_Bot #ВерхнийЛарс #очередь 🇬🇪🚗👍🏽"
    row = enrich_text(text, S)
    assert row["urls"] == ["https://t.me/kpp_lars/5"]
    assert "<url>" in row["tokens"] and "<url>" in row["lemmas"]
    assert "https" not in row["tokens"]
    assert row["mentions"] == ["border_bot"]
    assert row["hashtags"] == ["верхнийларс", "очередь"]
    assert row["emoji"] == ["🇬🇪", "🚗", "👍🏽"]
    assert enrich_text("почта a@b.ru", S)["mentions"] == []


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Едем в Грузию", "country:GE"),
        ("Кто сейчас в Грузии?", "country:GE"),
        ("Грузия пускает всех", "country:GE"),
        ("Crossing into Georgia", "country:GE"),
        ("Ми вже в Грузії", "country:GE"),
        ("Живу в Тбилиси", "country:GE"),
        ("Кто в Казахстане? Алматы или Астана?", "country:KZ"),
        ("Прилетел в Ереван", "country:AM"),
        ("Через Улан-Батор", "country:MN"),
        ("Работаю в Стамбуле", "country:TR"),
        ("Очередь на Верхнем Ларсе", "checkpoint:upper_lars"),
        ("Верхний Ларс закрыт", "checkpoint:upper_lars"),
        ("Upper Lars queue is long", "checkpoint:upper_lars"),
        ("Проехал через Торфяновку", "checkpoint:torfyanovka"),
        ("На Бугристом пропускают", "checkpoint:bugristoye"),
        ("Через Кяхту в Монголию", "checkpoint:kyakhta"),
    ],
)
def test_places(text: str, place: str) -> None:
    assert place in enrich_text(text, S)["places"]


def test_places_exclude_nationality_adjectives() -> None:
    assert enrich_text("грузинский ресторан и казахские друзья", S)["places"] == []
    assert enrich_text("бугристая дорога", S)["places"] == []
    row = enrich_text("Из Грузии в Армению, потом снова в Грузию", S)
    assert row["places"] == ["country:GE", "country:AM"]  # first-mention order, no duplicates


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Мы стоим в очереди на границе уже третьи сутки, воды нет.", "ru"),
        ("Привет, как дела? Что слышно о военкомате?", "ru"),
        ("Ми стоїмо в черзі на кордоні вже третю добу, води немає.", "uk"),
        ("Доброго дня, підкажіть будь ласка, як отримати довідку?", "uk"),
        ("We have been waiting at the border for three days now.", "en"),
        ("საქართველოს საზღვარზე დიდი რიგია", "ka"),
        ("Սահմանին մեծ հերթ կա, սպասում ենք", "hy"),
        ("Шекарада үлкен кезек тұр, біз үш күн күттік.", "kk"),
        ("Мы стаім у чарзе на мяжы ўжо трэція суткі.", "be"),
    ],
)
def test_language_id(text: str, lang: str) -> None:
    row = enrich_text(text, S)
    assert row["lang"] == lang
    assert 0.5 < row["lang_score"] <= 1.0


@pytest.mark.parametrize("text", ["Ладно, понял", "Я заварю чай тогда", "Какая лапушкааа",
                                  "да-да я", "ну все пока"])
def test_short_cyrillic_without_marker_letters_is_not_belarusian_or_kazakh(text: str) -> None:
    # these came out "be" when py3langid chose among ru, uk, be, kk: Belarusian shows і or ў
    # (and no и), Kazakh its own letters
    assert enrich_text(text, S)["lang"] == "ru"
    assert detect_batch([prepare(text)[0]], S.languages, S.min_chars, S.lid_chars)[0][0] == "ru"
    only = EnrichSettings(languages=("ru", "be"))  # ruling out all but one: that one, no model
    assert enrich_text(text, only)["lang"] == "ru"


@pytest.mark.parametrize("text", ["Рахмет сізге", "Сіз кімсіз", "Мен білмеймін", "Біз дайынбыз",
                                  "Сізге рахмет, бауырым"])
def test_short_kazakh_whose_only_own_letter_is_i_stays_kazakh(text: str) -> None:
    assert enrich_text(text, S)["lang"] == "kk"


def test_language_restricted_to_settings() -> None:
    only_ru = EnrichSettings(languages=("ru",))
    assert enrich_text("საქართველოს საზღვარზე დიდი რიგია", only_ru)["lang"] == "und"
    assert enrich_text("Ich möchte morgen nach Tiflis fahren, bitte", S)["lang"] == "und"


def test_negation_words() -> None:
    assert {"не", "нет", "никогда"} <= negation_words("ru")
    assert {"не", "ні", "немає"} <= negation_words("uk")
    assert {"not", "never", "don't"} <= negation_words("en")
    assert negation_words("ka") == frozenset()


def test_settings_fingerprint() -> None:
    base = EnrichSettings().fingerprint()
    assert base == EnrichSettings().fingerprint()
    assert len(base) == 16
    assert EnrichSettings(min_chars=3).fingerprint() != base
    assert EnrichSettings(languages=("ru", "uk")).fingerprint() != base
    assert EnrichSettings(version="enrich.v0").fingerprint() != base
    assert EnrichSettings(tokenizer="razdel").fingerprint() != base
    with pytest.raises(ValueError):
        EnrichSettings(tokenizer="spacy")


def test_enrich_table_schema_order_and_pickling() -> None:
    table = pa.table({"uid": ["a", "b", "c"], "text": ["Едем в Грузию", None, "😀"]})
    out = enrich_table(table, S)
    assert out.schema == ENRICH_SCHEMA
    assert out.column("uid").to_pylist() == ["a", "b", "c"]
    assert out.column("places").to_pylist()[0] == ["country:GE"]
    assert out.column("lang").to_pylist()[1:] == ["und", "und"]
    assert pickle.loads(pickle.dumps(enrich_table)) is enrich_table
    assert pickle.loads(pickle.dumps(S)) == S
    assert pickle.loads(pickle.dumps(LEM)).lemmas("границе", "ru") == ["граница"]
    batch = table.to_batches()[0]
    assert enrich_table(batch, S).num_rows == 3


def test_razdel_tokenizer_setting() -> None:
    row = enrich_text("Кто-то едет в Грузию", EnrichSettings(tokenizer="razdel"))
    assert row["tokens"] == ["кто-то", "едет", "в", "грузию"]
    assert row["places"] == ["country:GE"]


def _shared_data() -> Path | None:
    env = os.environ.get("CHATLENS_SHARED_DATA")
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    for c in [*([Path(env)] if env else []), default]:
        if c.is_dir():
            return c
    return None


@pytest.mark.shared_data
def test_uk_ru_accuracy_on_unlp_dev() -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    d = _shared_data()
    path = d / "labeled" / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet" if d else None
    if path is None or not path.exists():
        pytest.skip("UNLP 2025 dev set absent (../shared/data or $CHATLENS_SHARED_DATA)")
    t = pq.read_table(path, columns=["id", "content", "lang"])
    out = enrich_table(
        pa.table({"uid": t.column("id"), "text": t.column("content")}), EnrichSettings()
    )
    gold = t.column("lang").to_pylist()
    pred = out.column("lang").to_pylist()
    confusion = Counter(zip(gold, pred, strict=True))
    for lang in ("ru", "uk"):
        n = sum(v for (g, _), v in confusion.items() if g == lang)
        acc = confusion[(lang, lang)] / n
        assert acc >= 0.97, f"{lang}: accuracy {acc:.3f}, confusion {dict(confusion)}"


EDGE_TEXTS = [
    "", None, "   \n\t ", "рaбота Zа и V", "🇬🇪🇷🇺 👍🏽 👨‍👩‍👧", "ВЕРХНИЙ ЛАРС",
    "в Верхнем Ларсе очередь", "@user #тег http://x.com/a. www.y.org, t.me/chan", "ok",
    "Київ і Львів, м'ята", "Москва\x1cМинск",
    "Қазақстан мен Алматы", "Ўсе добра, Мінск", "თბილისი", "Երևան", "Hello from Tbilisi!",
    "1️⃣ 11️⃣ #️⃣", "границу, границе; граница.", "Грузія та Україна", "кПп Бугристое",
]


def _rows_equal_enrich_text(texts: list[str | None]) -> None:
    out = enrich_table(pa.table({"uid": [str(i) for i in range(len(texts))], "text": texts}), S)
    for text, row in zip(texts, out.to_pylist(), strict=True):
        want = enrich_text(text or "", S)
        assert want.pop("tokens") == Lemmatizer(S.tokenizer).tokens(text or "")
        got = {k: v for k, v in row.items() if k != "uid"}
        # py3langid's posterior, summed in another order by the batch: equal to rounding
        got["lang_score"] = pytest.approx(want["lang_score"], abs=2e-4)
        assert got == want, text


def test_batch_enrichment_equals_the_per_message_reference() -> None:
    # mixed Russian and Ukrainian messages take the per-dictionary paths and are put back in order
    _rows_equal_enrich_text(EDGE_TEXTS * 3)
    _rows_equal_enrich_text(EDGE_TEXTS[9:10] + EDGE_TEXTS[:3])


def test_batch_enrichment_equals_the_reference_on_real_posts(shared_data: Path) -> None:
    import pandas as pd

    unlp = shared_data / "labeled" / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet"
    if not unlp.exists():
        pytest.skip("UNLP 2025 dev set absent")
    texts = pd.read_parquet(unlp)["content"].tolist()[:1500]
    _rows_equal_enrich_text(texts)


def test_url_scan_equals_the_lookahead_regexes() -> None:
    """The URL rule as lazy regexes with a lookahead (how it was first written), against the
    run-and-trim scan chatlens uses."""
    import random
    import re

    from chatlens.enrich.text import find_urls

    tail = r"[^\s<>\"«»]+?(?=[.,;:!?)\]'»]*(?:\s|$))"
    url_re = re.compile(rf"(?:https?://|www\.|(?<![\w.])(?:t|telegram)\.me/){tail}", re.I)

    rng = random.Random(7)
    alphabet = [*"ab/.:,;!?)]'»«<>\" \n\tx", "http://", "https://", "HTTP://", "Http://",
                "hTTps://", "ftp://", "www.", "WWW.", "Www.", "t.me/", "T.Me/", "telegram.me/",
                "\u00a0", "\u2028", "ё"]
    for _ in range(30_000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert find_urls(t) == url_re.findall(t), t
    assert find_urls("see Http://x.org/a, Www.y.org T.ME/chan") == [
        "Http://x.org/a", "Www.y.org", "T.ME/chan"]


def test_batched_py3langid_equals_the_one_at_a_time_classifier() -> None:
    from chatlens.enrich.lid import LATIN_GUARD, _identifier, classify_many

    texts = ["привет как дела", "як справи у тебе", "прывітанне як справы", "сәлем қалайсың",
             "", "!!!", "hello there my friend", "bonjour mes amis", "ЗАГЛАВНЫЕ БУКВЫ ТУТ",
             "🙂🙂", "a", "мама мыла раму " * 30]
    for cands in (("ru", "uk", "be", "kk"), ("en", *LATIN_GUARD)):
        ident = _identifier(cands)
        got = classify_many(ident, texts)
        for t, (lang, prob) in zip(texts, got, strict=True):
            want_lang, want_prob = ident.classify(t)
            assert lang == want_lang and prob == pytest.approx(want_prob, abs=1e-5), t
    assert classify_many(_identifier(("ru", "uk")), []) == []
    ident = _identifier(("ru", "uk"))
    assert classify_many(ident, ["", ""]) == [ident.classify(""), ident.classify("")]


@pytest.mark.parametrize("tokenizer", ["fast", "razdel"])
def test_tokens_come_back_from_the_text_one_per_stored_lemma(tokenizer: str) -> None:
    # the store keeps lemmas only; highlighting re-tokenises the text and zips the two
    settings = EnrichSettings(tokenizer=tokenizer)
    out = enrich_table(pa.table({"uid": [str(i) for i in range(len(EDGE_TEXTS))],
                                 "text": EDGE_TEXTS}), settings)
    assert "tokens" not in out.schema.names
    lem = Lemmatizer(tokenizer)
    for text, lemmas in zip(EDGE_TEXTS, out.column("lemmas").to_pylist(), strict=True):
        tokens = lem.tokens(text or "")
        assert tokens == enrich_text(text or "", settings)["tokens"]
        assert len(tokens) == len(lemmas), text
