"""Language ID: what counts as words, which script decides, what a project may declare, and the
accuracy on real chats against hand-checked samples (``fixtures/lid/hand_labels.csv``)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatlens.enrich import EnrichSettings, enrich_text
from chatlens.enrich.lid import (
    SCRIPT_LANGS,
    _base_identifier,
    detect,
    detect_batch,
    supported_languages,
)
from chatlens.enrich.text import prepare
from chatlens.errors import UsageError
from chatlens.project import Project, check_languages

LABELS = Path(__file__).parent / "fixtures" / "lid" / "hand_labels.csv"


def lang(text: str, *languages: str) -> str:
    """The language of ``text``, checked to be the same one at a time and in a batch."""
    norm = prepare(text)[0]
    one = detect(norm, languages, 5, 300)
    batch = detect_batch([norm, "filler so the batch has more than one text"], languages, 5, 300)
    assert one[0] == batch[0][0] and one[1] == pytest.approx(batch[0][1], abs=2e-4), text
    return one[0]


@pytest.mark.parametrize("text", [
    "Главные новости: что случилось за ночь #breaking #news #worldnews #usa",
    "ИЗИ РАЗНОС ЧЕРТЕЙ В DEMONS SOULS #4 (part 5) 12.02.2021 #DemonsSouls #FIFA21",
    "Играем в Elden Ring #1 #EldenRing",
    "пишите на ivan.petrov@example.com или @ivan_petrov_official",
    "подробнее на rbc.ru и meduza.io, файл report_final.pdf",
    "Смотри https://www.youtube.com/watch?v=abcdefghijk 👍👍 2024",
])
def test_hashtags_mentions_urls_do_not_outvote_the_words(text: str) -> None:
    assert lang(text, "ru") == "ru"
    assert lang(text, "ru", "uk", "en") == "ru"


def test_what_is_left_without_words_is_und() -> None:
    for text in ("#breaking #news", "@someone @another", "ivan@example.com", "rbc.ru",
                 "🍺 🍺 🍺", "12.02.2021 18:30", "https://t.me/channel/5"):
        assert lang(text, "ru", "en") == "und", text


@pytest.mark.parametrize(("text", "languages", "want"), [
    ("שלום לכולם, מה שלומכם?", ("he",), "he"),
    ("קפה", ("he",), "he"),  # Hebrew words are short: one configured language needs 2 letters
    ("ok תודה רבה", ("he", "en"), "he"),
    ("Καλημέρα σε όλους, τι κάνετε;", ("el", "en"), "el"),
    ("مرحبا كيف حالك اليوم", ("ar", "fa", "ur"), "ar"),
    ("سلام، حال شما چطور است؟", ("ar", "fa", "ur"), "fa"),
    ("آپ کیسے ہیں؟ میں ٹھیک ہوں", ("ar", "fa", "ur"), "ur"),
    ("我们明天在车站见面", ("zh", "ja"), "zh"),
    ("明日は雨が降るでしょう", ("zh", "ja"), "ja"),
    ("안녕하세요 반갑습니다", ("ko", "en"), "ko"),
    ("मैं कल घर जा रहा हूँ", ("hi", "en"), "hi"),
    ("สวัสดีครับ วันนี้อากาศดี", ("th",), "th"),
    ("საქართველოს საზღვარზე დიდი რიგია", ("ka", "ru"), "ka"),
])
def test_scripts_map_to_their_declared_languages(text: str, languages: tuple[str, ...],
                                                  want: str) -> None:
    assert lang(text, *languages) == want


def test_two_letters_suffice_only_when_the_script_leaves_one_language() -> None:
    assert lang("да", "ru", "en") == "ru"
    assert lang("ок", "ru", "uk") == "und"  # Russian or Ukrainian: too short to tell
    assert lang("Done", "en") == "und"  # Latin always competes with the guard languages
    assert lang("אין", "he", "en") == "he"


def test_a_dominant_script_no_declared_language_uses_stays_und() -> None:
    assert lang("שלום לכולם, מה שלומכם?", "ru", "uk", "en") == "und"
    assert lang("Καλημέρα σε όλους", "en") == "und"
    assert lang("مرحبا كيف حالك اليوم", "he", "en") == "und"
    assert lang("我们明天在车站见面", "ko") == "und"
    assert lang("Hello and welcome, my name is Gustavo", "ru") == "und"


def test_short_messages_are_read_in_the_declared_latin_language() -> None:
    for text in ("I was wondering", "I am interested", "Perfect", "Oh nice", "Smart man",
                 "Lol deleted", "Temporarily", "Dark mode", "Not valid", "Yummy!"):
        assert lang(text, "en") == "en", text


def test_sentences_in_an_undeclared_latin_language_stay_und() -> None:
    for text in ("Ich möchte morgen nach Tiflis fahren, bitte", "Je ne sais pas quoi faire demain",
                 "No sé qué hacer mañana", "Ik weet het niet, misschien morgen",
                 "Nie wiem co robić jutro", "Bugün çok yoruldum, yarın görüşürüz",
                 "Danke schön", "Gracias amigo", "Obrigado pela ajuda"):
        assert lang(text, "en") == "und", text


_PIECES = ["привет как дела", "як справи", "שלום לכולם", "مرحبا", "Καλημέρα", "我们明天见",
           "안녕하세요", "hello there", "Ich möchte", "#hashtag", "@someone", "a@b.com", "rbc.ru",
           "https://t.me/x", "🍺", "12.02", " ", "ы", "і", "ok", "<url>", "ї", "ґ", "ў", "қ",
           "и", "здравствуйте товарищи", "mixed Latin words", "файл.pdf", "«»—"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=6).map(" ".join), max_size=8),
       st.sets(st.sampled_from(["ru", "uk", "en", "he", "ar", "fa", "el", "zh", "ko", "sw"]),
               min_size=1).map(tuple))
def test_batch_equals_one_at_a_time_and_answers_only_declared_languages(
        texts: list[str], languages: tuple[str, ...]) -> None:
    norms = [prepare(t)[0] for t in texts]
    batch = detect_batch(norms, languages, 5, 300)
    for norm, (got, score) in zip(norms, batch, strict=True):
        one = detect(norm, languages, 5, 300)
        assert got == one[0] and score == pytest.approx(one[1], abs=2e-4), norm
        assert got in languages or (got == "und" and score == 0.0)


def test_the_column_rules_equal_one_at_a_time_on_real_texts(shared_data: Path) -> None:
    """:func:`detect_column` settles most real texts on the whole column and the rest one by
    one: the answers equal :func:`detect` on every text of the real Russian news channels,
    the Ukrainian/Russian Telegram posts of UNLP 2025 and the WhatsApp chats (he, en, sw)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from chatlens.enrich.lid import _column_rules, detect_column

    texts: dict[str, list[str]] = {"news": [], "unlp": [], "whatsapp": []}
    for f in sorted((shared_data / "corpora" / "ru_news_channels_2023_2024").glob("*.json")):
        texts["news"] += [p["text"] or "" for p in json.loads(f.read_text(encoding="utf-8"))][:400]
    unlp = shared_data / "labeled" / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet"
    if unlp.exists():
        texts["unlp"] = pq.read_table(unlp, columns=["content"]).column("content").to_pylist()
    for f in sorted((shared_data / "whatsapp").glob("*.txt")):
        texts["whatsapp"] += f.read_text(encoding="utf-8", errors="replace").splitlines()
    langs = EnrichSettings().languages
    for name, corpus in texts.items():
        if not corpus:
            continue
        norms = [prepare(t)[0] for t in corpus]
        for languages in (langs, ("ru", "uk", "en"), ("he", "en", "sw")):
            got, scores = detect_column(pa.array(norms), languages, 5, 300)
            for norm, g, sc in zip(norms, got.to_pylist(), scores.to_pylist(), strict=True):
                one = detect(norm, languages, 5, 300)
                assert (g, sc) == (one[0], pytest.approx(one[1], abs=2e-4)), (name, norm)
        if name == "news":  # the column path does most of the work, not the fallback
            decided = _column_rules(pa.array(norms), langs, 5, 300)[2]
            assert decided.mean() > 0.75


@pytest.mark.parametrize("letter", ["ы", "ъ", "і", "ї"])
def test_the_column_rules_equal_one_at_a_time_at_the_thresholds(letter: str) -> None:
    """Texts just under, at and over the fast path's shares (0.5 % ы э ъ, 2 % і ї є ґ)."""
    import pyarrow as pa

    from chatlens.enrich.lid import detect_column

    per = 200 if letter in "ыъ" else 50
    norms = []
    for k in (1, 2, 3):
        for n_cyr in range(k * per - 3, k * per + 4):
            body = letter * k + "и" + "а" * (n_cyr - k - 1)
            norms.append(" ".join(body[i: i + 7] for i in range(0, len(body), 7)))
    for languages in (("ru", "uk"), ("ru", "uk", "be", "kk", "en")):
        got, scores = detect_column(pa.array(norms), languages, 5, 10_000)
        for norm, g, sc in zip(norms, got.to_pylist(), scores.to_pylist(), strict=True):
            one = detect(norm, languages, 5, 10_000)
            assert (g, sc) == (one[0], pytest.approx(one[1], abs=2e-4)), norm


def test_supported_languages_are_py3langids_each_with_a_script() -> None:
    model = set(_base_identifier().nb_classes)
    in_table = {x for langs in SCRIPT_LANGS.values() for x in langs}
    assert in_table <= model  # no script rule names a language the model lacks
    assert model - in_table == {"zxx"}  # every real language of the model has its script
    assert supported_languages() == frozenset(in_table)
    assert {"ru", "uk", "en", "he", "ar", "fa", "el", "zh", "ja", "ko", "hi", "sw"} <= in_table
    assert set(EnrichSettings().languages) <= supported_languages()


def test_init_refuses_a_language_it_cannot_detect(tmp_path: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "init", "--project",
                          str(tmp_path / "p"), "--languages", "ru,ua,yi"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "cannot detect ua, yi" in res.stderr and "did you mean uk for ua" in res.stderr
    assert "he," in res.stderr and "ru," in res.stderr  # lists what it supports
    assert not (tmp_path / "p").exists()  # refused before anything is created
    with pytest.raises(UsageError, match="cannot detect xx"):
        check_languages(["en", "xx"])
    with Project.init(tmp_path / "q") as proj:
        with pytest.raises(UsageError):
            proj.set_languages(["he", "yi"])
        proj.set_languages(["he", "en"])
        assert proj.languages() == ("he", "en")


def test_default_settings_still_tell_the_usual_languages_apart() -> None:
    s = EnrichSettings()
    assert enrich_text("Мы стоим в очереди на границе уже третьи сутки #граница #border",
                       s)["lang"] == "ru"
    assert enrich_text("Ми стоїмо в черзі на кордоні #kordon #queue #ukraine", s)["lang"] == "uk"


# -- accuracy on real chats ---------------------------------------------------------------------

#: What each shared export is declared to be in, as an analyst would declare it.
DECLARED = {
    "whatsapp/android24h_he_family_group.txt": ("he", "en"),
    "whatsapp/ios_en_sw_group__chat.txt": ("en", "sw"),
    "whatsapp/android12h_en_hrjobs_group.txt": ("en",),
    "telegram/json_ru_channel/result.json": ("ru", "en"),
    "telegram/html_uk_channel": ("uk", "ru", "en"),
    "telegram/html_en_group": ("en",),
}
FLOOR = 0.9  # per language, over the hand-checked messages with a language
UND_FLOOR = 0.95  # language-less messages (emoji, links, numbers) that come out und


def _detected(root: Path, source: Path, languages: tuple[str, ...]) -> dict[str, str]:
    with Project.init(root) as proj:
        proj.set_languages(list(languages))
        proj.ingest([source])
        proj.enrich()
        rows = proj.store.con.execute(
            "SELECT m.source_loc, e.lang FROM messages m JOIN enrichment e USING (uid)"
        ).fetchall()
    return dict(rows)


@pytest.mark.slow
@pytest.mark.shared_data
def test_accuracy_per_language_on_hand_checked_real_chats(shared_data: Path,
                                                          tmp_path: Path) -> None:
    with LABELS.open(encoding="utf-8") as f:
        labels = list(csv.DictReader(f))
    by_source: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in labels:
        by_source[row["source"]].append(row)
    assert set(by_source) == set(DECLARED)
    hits: Counter[tuple[str, str]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    misses: list[str] = []
    for i, (source, rows) in enumerate(sorted(by_source.items())):
        path = shared_data / source
        if not path.exists():
            pytest.skip(f"{source} is absent from the shared data")
        declared = DECLARED[source]
        got = _detected(tmp_path / f"p{i}", path, declared)
        for row in rows:
            want = row["lang"] if row["lang"] in declared else "und"  # undeclared: und
            out = got[row["loc"]]  # KeyError: the export changed under the labels
            key = (want, row["pick"])
            totals[key] += 1
            hits[key] += out == want
            if out != want:
                misses.append(f"{source} {row['loc']}: want {want}, got {out}")
    table = ["lang  pick    n  correct  accuracy"]
    for key in sorted(totals):
        table.append(f"{key[0]:<5} {key[1]:<6} {totals[key]:>3}  {hits[key]:>7}  "
                     f"{hits[key] / totals[key]:>8.3f}")
    print("\n".join(["", *table, f"misses ({len(misses)}):", *misses]))
    for want in {k[0] for k in totals}:
        n = sum(v for k, v in totals.items() if k[0] == want)
        acc = sum(v for k, v in hits.items() if k[0] == want) / n
        assert acc >= (UND_FLOOR if want == "und" else FLOOR), (want, acc, table)
