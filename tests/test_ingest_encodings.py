"""Input fidelity — encodings: every text importer reads a source exactly or refuses it.

Fixtures are written here by encoding text (short hand-written sentences, and real messages from
../shared/data when it is present) into the encodings found in the wild. The contract checked
everywhere: the stored texts are exactly the original ones, or the source fails with an
EncodingError naming candidates and ``--encoding``, and nothing from it is stored.
"""

from __future__ import annotations

import csv
import html
import io
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from chatlens import EncodingError, Project
from chatlens.ingest.base import Importer, Member, ParseOptions, Record, SourceInput
from chatlens.ingest.encoding import resolve, sniff_text
from chatlens.ingest.generic import GenericCsv, GenericJsonl
from chatlens.ingest.plausible import judge
from chatlens.ingest.registry import detect
from chatlens.ingest.telegram_html import TelegramHtml
from chatlens.ingest.viber import ViberDesktop
from chatlens.ingest.whatsapp import WhatsAppText
from chatlens.languages import DEFAULT_LANGUAGES

RU = ["Где очередь на границе? Стоим на Ларсе третий час.",
      "#Украина Сегодня в Тбилиси прошёл митинг, людей было очень много.",
      "Подскажите, пожалуйста, где можно снять квартиру без посредников?",
      "Вчера открыли счёт в банке, нужен был только паспорт и адрес.",
      "Кто едет завтра утром в Ереван? Есть два свободных места в машине.",
      "Спасибо всем, кто помог! Вещи уже отправили волонтёрам.",
      "ВНИМАНИЕ: пробка у Верхнего Ларса, ждите не меньше шести часов."]
UK = ["Доброго ранку! Хто знає, чи працює сьогодні консульство?",
      "Дякую за допомогу, ми вже на місці, все гаразд.",
      "Їдемо через Польщу, черга на кордоні приблизно п’ять годин."]
HE = ["שלום לכולם, מה שלומכם היום?", "צריך לקנות חלב, ביצים ולחם לשבת",
      "אני אגיע הביתה בערב, תשאירו לי אוכל", "תודה רבה על העזרה אתמול"]


# --- fixtures written from texts --------------------------------------------------------------

def whatsapp(texts: list[str]) -> str:
    return "".join(f"05/05/2020, 10:{i % 60:02d} - Member {i % 3:02d}: {t}\n"
                   for i, t in enumerate(texts))


def table(texts: list[str]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["text", "date", "author"])
    w.writerows([t, f"2022-10-01T10:{i % 60:02d}:00Z", f"u{i % 3}"] for i, t in enumerate(texts))
    return out.getvalue()


def page(texts: list[str]) -> str:
    msgs = "".join(
        f'<div class="message default clearfix" id="message{i}"><div class="body">'
        f'<div class="pull_right date details" title="21.09.2022 10:{i % 60:02d}:00 UTC+03:00">'
        f'10:00</div><div class="from_name">Member {i % 3}</div><div class="text">'
        f"{html.escape(t, quote=False)}</div></div></div>\n" for i, t in enumerate(texts, 1))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"/></head><body>'
            '<div class="page_wrap"><div class="page_header"><div class="content"><div '
            'class="text bold">Channel</div></div></div><div class="page_body chat_page">'
            f'<div class="history">{msgs}</div></div></div></body></html>')


def jsonl(texts: list[str]) -> str:
    return "".join(json.dumps({"text": t, "date": "2022-10-01T10:00:00Z"}, ensure_ascii=False)
                   + "\n" for t in texts)


FORMATS: dict[str, tuple[Callable[[list[str]], str], Importer, str]] = {
    "whatsapp": (whatsapp, WhatsAppText(), "WhatsApp Chat with X.txt"),
    "csv": (table, GenericCsv(), "chat.csv"),
    "telegram-html": (page, TelegramHtml(), "messages.html"),
    "jsonl": (jsonl, GenericJsonl(), "chat.jsonl"),
}


def source(data: bytes, name: str) -> SourceInput:
    return SourceInput(path=name, members=[Member(name, len(data), lambda: io.BytesIO(data))])


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-bom":
        return text.encode("utf-16")  # with its BOM
    if encoding == "utf-8-sig":
        return text.encode("utf-8-sig")
    return text.encode(encoding)


def read(fmt: str, texts: list[str], encoding: str,
         languages: tuple[str, ...] = DEFAULT_LANGUAGES, given: str | None = None,
         ) -> list[str] | EncodingError:
    """The texts the importer reads from the fixture, or the EncodingError it refuses with;
    the format is sniffed from the bytes, as the pipeline does."""
    build, importer, name = FORMATS[fmt]
    src = source(encode(build(texts), encoding), name)
    assert detect(src).importer.format == importer.format, (fmt, encoding)
    try:
        return [r.text for r in importer.parse(src, ParseOptions(encoding=given,
                                                                 languages=languages))
                if isinstance(r, Record)]
    except EncodingError as exc:
        assert "--encoding" in str(exc)
        return exc


def clean(texts: list[str], encoding: str) -> list[str]:
    """Texts as a file in ``encoding`` can hold them: one line, only encodable characters."""
    codec = "utf-16" if encoding == "utf-16-bom" else encoding
    out = [" ".join(t.encode(codec, "ignore").decode(codec).split()) for t in texts]
    return [t for t in out if t]


# --- the cases the issue names ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r", "cp866", "mac-cyrillic", "gb18030",
                                      "iso8859-5", "utf-16-bom", "utf-16-le", "utf-16-be",
                                      "utf-8", "utf-8-sig"])
def test_russian_in_legacy_and_wide_encodings_is_read_exactly(fmt: str, encoding: str) -> None:
    texts = clean(RU, encoding)
    assert read(fmt, texts, encoding) == texts


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("encoding", ["cp1251", "koi8-u", "utf-16-le"])
def test_ukrainian_is_read_exactly(fmt: str, encoding: str) -> None:
    texts = clean(UK, encoding)
    assert read(fmt, texts, encoding) == texts


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_hebrew_cp1255_is_read_in_a_hebrew_project_and_refused_elsewhere(fmt: str) -> None:
    assert read(fmt, HE, "cp1255", languages=("he", "en")) == HE
    assert read(fmt, HE, "iso8859-8", languages=("he", "en")) == HE
    # the new-user trial: also when Cyrillic languages are declared beside Hebrew (cp1251 reads
    # the bytes as Cyrillic gibberish, which is no plausible text however its letters score)
    assert read(fmt, HE, "cp1255", languages=("ru", "uk", "en", "he")) == HE
    # the project declares no Hebrew: cp1251 would read the bytes as Cyrillic gibberish
    refused = read(fmt, HE, "cp1255")
    assert isinstance(refused, EncodingError)
    assert "cannot be told" in str(refused) or "looks garbled" in str(refused)


def test_the_gb18030_csv_of_the_issue_is_stored_exactly(project: Project, tmp_path: Path) -> None:
    texts = [f"#Украина {t}" for t in RU] * 60  # the issue: 403 texts garbled, no warning
    path = tmp_path / "export.csv"
    path.write_bytes(table(texts).encode("gb18030"))
    (src,) = project.ingest([path]).sources
    assert src.status == "complete", src.error
    stored = [t for (t,) in project.store.con.execute(
        "SELECT text FROM messages ORDER BY source_pos").fetchall()]
    assert stored == texts
    # the decision is recorded with the source
    assert "encoding gb18030 (detected: gb18030" in (src.detection or "")
    (recorded,) = project.store.con.execute("SELECT detection FROM sources").fetchone()
    assert recorded == src.detection


def test_refusal_names_candidates_with_their_readings_and_the_way_out() -> None:
    # one letter: cp1251 "Э", mac-cyrillic "ё", kz1048 "Э"… cannot be told apart
    err = read("csv", ["Э"], "cp1251")
    assert isinstance(err, EncodingError)
    msg = str(err)
    assert "cp1251 reads ',author Э," in msg and "mac-cyrillic reads ',author Ё," in msg
    assert "gb18030 cannot decode it" in msg
    assert "--encoding NAME" in msg and "chatlens forget --source" in msg
    assert read("csv", ["Э"], "cp1251", given="cp1251") == ["Э"]


@pytest.mark.parametrize("fmt", ["whatsapp", "csv", "telegram-html", "jsonl"])
def test_given_encoding_is_used_for_every_text_importer(fmt: str) -> None:
    texts = clean(RU, "koi8-r")
    assert read(fmt, texts, "koi8-r", given="koi8-r") == texts
    # a given encoding that cannot decode the bytes is an error, not a guess
    err = read(fmt, texts, "cp1251", given="utf-8")
    assert isinstance(err, EncodingError) and "though --encoding names it" in str(err)


@pytest.mark.parametrize("fmt", ["whatsapp", "csv", "telegram-html", "jsonl"])
def test_a_given_encoding_that_garbles_what_detection_reads_is_refused(fmt: str) -> None:
    # the new-user trial: a cp1251 file re-ingested with --encoding koi8-r was stored garbled
    texts = clean(RU, "cp1251")
    err = read(fmt, texts, "cp1251", given="koi8-r")
    assert isinstance(err, EncodingError), err
    assert "--encoding koi8-r reads this file as garbled" in str(err)
    assert "Use --encoding cp1251" in str(err)
    assert read(fmt, texts, "cp1251", given="cp1251") == texts


@pytest.mark.parametrize("encoding", ["cp1251", "utf-16-le", "utf-16-bom"])
def test_a_json_array_in_a_code_page_is_transcoded_exactly(encoding: str) -> None:
    texts = clean(RU, encoding)
    data = json.dumps([{"text": t} for t in texts], ensure_ascii=False)
    src = source(encode(data, encoding), "chat.json")
    assert detect(src).importer.format == "jsonl"
    got = [r.text for r in GenericJsonl().parse(src, ParseOptions()) if isinstance(r, Record)]
    assert got == texts


def test_unknown_encoding_name_is_a_usage_error() -> None:
    from chatlens import UsageError

    with pytest.raises(UsageError, match="Unknown encoding"):
        read("csv", ["a"], "utf-8", given="klingon-8")


def test_double_encoded_utf8_is_refused_unless_stored_as_is_on_request() -> None:
    garbled = [t.encode("utf-8").decode("cp1251", "replace") for t in RU]  # "РџСЂРёРІРµС‚"
    err = read("csv", garbled, "utf-8")
    assert isinstance(err, EncodingError) and "looks garbled" in str(err)
    latin = [t.encode("utf-8").decode("latin-1") for t in RU]  # "ÐŸÑ€Ð¸Ð²ÐµÑ‚"
    assert isinstance(read("whatsapp", latin, "utf-8"), EncodingError)
    assert read("csv", garbled, "utf-8", given="utf-8") == garbled


def test_a_later_part_in_another_encoding_refuses_the_whole_source(
        project: Project, tmp_path: Path) -> None:
    body = RU * 1200  # beyond the sample the decision is made from
    path = tmp_path / "mixed.csv"
    # UTF-8, then a tail re-saved as cp1251: no reading of it is right as a whole
    path.write_bytes(table(body).encode("utf-8") + table(RU)[20:].encode("cp1251"))
    (src,) = project.ingest([path]).sources
    assert src.status == "failed" and "--encoding" in (src.error or "")
    # cp1251, then a tail in koi8-r: every byte decodes, but the tail reads as gibberish
    path.write_bytes(table(body).encode("cp1251") + (table(RU * 40)[20:]).encode("koi8-r"))
    (src,) = project.ingest([path]).sources
    assert src.status == "failed" and "looks garbled" in (src.error or ""), src.error
    assert project.store.con.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert project.store.con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


def test_a_whatsapp_zip_with_a_cp1251_chat_is_read_exactly(project: Project,
                                                           tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "WhatsApp Chat - Relocation.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("_chat.txt", whatsapp(RU).encode("cp1251"))
    (src,) = project.ingest([path]).sources
    assert src.status == "complete" and "encoding cp1251" in (src.detection or ""), src.error
    stored = [t for (t,) in project.store.con.execute(
        "SELECT text FROM messages ORDER BY source_pos").fetchall()]
    assert stored == RU


def test_project_languages_guide_detection(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Family.txt"
    path.write_bytes(whatsapp(HE).encode("cp1255"))
    with Project.init(tmp_path / "default") as p:
        (src,) = p.ingest([path]).sources
        assert src.status == "failed" and "--encoding" in (src.error or "")
        assert p.store.con.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    with Project.init(tmp_path / "hebrew") as p:
        p.set_languages(["he", "en"])
        (src,) = p.ingest([path]).sources
        assert src.status == "complete", src.error
        stored = [t for (t,) in p.store.con.execute(
            "SELECT text FROM messages ORDER BY source_pos").fetchall()]
    assert stored == HE


def test_forget_then_reingest_corrects_a_source_stored_under_a_wrong_encoding(
        tmp_path: Path) -> None:
    from chatlens.project.forget import forget

    path = tmp_path / "WhatsApp Chat with Bob.txt"
    path.write_bytes(whatsapp(RU).encode("cp1251"))
    with Project.init(tmp_path / "proj") as p:
        # a wrong --encoding where detection reads the file plausibly is refused...
        (src,) = p.ingest([path], encoding="cp1252").sources
        assert src.status == "failed" and "Use --encoding cp1251" in (src.error or "")
        # ...and stands where detection cannot decide (one letter): the user's wrong choice
        short = tmp_path / "WhatsApp Chat with Ann.txt"
        short.write_bytes(whatsapp(["Э"]).encode("cp1251"))
        (src,) = p.ingest([short], encoding="cp1252").sources
        assert src.status == "complete"
        (again,) = p.ingest([short], encoding="cp1251").sources
        assert again.status == "unchanged" and f"forget --source {src.source_id}" in (
            again.error or "")
        assert forget(p, source=str(short)).messages == 1
        (fixed,) = p.ingest([short], encoding="cp1251").sources
        assert fixed.status == "complete", fixed.error
        (fixed,) = p.ingest([path]).sources  # detected
        assert fixed.status == "complete", fixed.error
        stored = [t for (t,) in p.store.con.execute(
            "SELECT text FROM messages ORDER BY chat_key, source_pos").fetchall()]
    assert sorted(stored) == sorted([*RU, "Э"])


def test_sniff_text_sees_markup_in_any_encoding() -> None:
    assert sniff_text("a,b\n".encode("utf-16-le")) == "a,b\n"
    assert sniff_text("a,b\n".encode("utf-16-be")) == "a,b\n"
    assert sniff_text("ab\u00e9 c".encode("cp1252")) == "ab\u00e9 c"  # latin-1: ASCII kept
    assert sniff_text("Привет, 12:30".encode("utf-16-be")) == "Привет, 12:30"
    assert sniff_text(b"\x00\x01\x02PK\x03\x04\x00\x00\x7f") is None


def test_judge_flags_mojibake_signatures_and_inverted_case() -> None:
    langs = DEFAULT_LANGUAGES
    assert judge("Привет, как дела?", langs).hard == 0
    assert judge("—Да, конечно. «СССР» —Нет!", langs).mojibake == 0  # real, if unspaced
    for garbled in ("ÐŸÑ€Ð¸Ð²ÐµÑ‚", "РџСЂРёРІРµС‚", "#§µ§Ü§â§Ñ§Ú§ß§Ñ", "â€œquotedâ€\x9d",
                    "Привет мир".encode().decode("mac-cyrillic")):
        assert judge(garbled, langs).mojibake >= 2, garbled
    assert judge("пРИВЕТ, нАТАША, ЛЮЙ ДЕКЮ", langs).misread > 0.1  # cp1251 read as koi8-r
    assert not judge("╧ЁштхЄ ъръ фхыр", langs).acceptable  # cp1251 read as cp866


def test_resolve_reads_the_whole_source_in_bounded_chunks() -> None:
    data = ("Привет\n" * 400_000).encode("cp1251")  # 2.8 MB, several chunks

    class Counting(io.BytesIO):
        largest = 0

        def read(self, n: int | None = -1) -> bytes:
            assert n is not None and 0 < n <= 1 << 20, n  # never the whole file at once
            out = super().read(n)
            Counting.largest = max(Counting.largest, len(out))
            return out

    member = Member("big.txt", len(data), lambda: Counting(data))
    choice = resolve([member], ParseOptions())
    assert choice.encoding == "cp1251" and choice.reason.startswith("detected")


# --- Viber: text that is not UTF-8 inside the database ----------------------------------------

def test_viber_text_not_in_utf8_is_quarantined_or_decoded_with_the_given_encoding(
        tmp_path: Path) -> None:
    db = tmp_path / "viber.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE Events (EventID INTEGER PRIMARY KEY, TimeStamp INTEGER, ContactID INTEGER,"
        " ChatID INTEGER, Direction INTEGER);"
        "CREATE TABLE Messages (EventID INTEGER PRIMARY KEY, Type INTEGER, Body TEXT);")
    con.execute("INSERT INTO Events VALUES (1, 1700000000000, 2, 10, 0), "
                "(2, 1700000001000, 2, 10, 0)")
    con.execute("INSERT INTO Messages VALUES (1, 1, 'в UTF-8'), (2, 1, CAST(? AS TEXT))",
                ["Привет из cp1251".encode("cp1251")])
    con.commit()
    con.close()
    src = SourceInput(path=str(db), members=[Member(db.name, db.stat().st_size,
                                                    lambda: db.open("rb"))])
    items = list(ViberDesktop().parse(src, ParseOptions()))
    assert isinstance(items[0], Record) and items[0].text == "в UTF-8"
    assert not isinstance(items[1], Record) and "--encoding" in items[1].reason
    items = list(ViberDesktop().parse(src, ParseOptions(encoding="cp1251")))
    assert [i.text for i in items if isinstance(i, Record)] == ["в UTF-8", "Привет из cp1251"]


# --- real messages × encodings: exact or refused ----------------------------------------------

def _real_texts(shared: Path) -> dict[str, list[str]]:
    """Real messages by language: Russian news posts (channels the letter-pair model was not
    built from) and a channel, Hebrew WhatsApp lines."""
    import pyarrow.parquet as pq

    out: dict[str, list[str]] = {"ru": [], "he": [], "uk": []}
    news = sorted((shared / "corpora" / "ru_news_channels_2023_2024").glob("*.json"))
    for path in news[-6:]:  # bench/build_cyrillic_bigrams.py reads the first 12
        out["ru"] += [m["text"] for m in json.loads(path.read_text("utf-8"))[:150]
                      if isinstance(m.get("text"), str)]
    channel = json.loads((shared / "telegram" / "json_ru_channel" / "result.json")
                         .read_text("utf-8"))
    out["ru"] += [m["text"] for m in channel["messages"][:400] if isinstance(m.get("text"), str)]
    wa = (shared / "whatsapp" / "android24h_he_family_group.txt").read_text("utf-8")
    out["he"] = [line.split(": ", 1)[1] for line in wa.splitlines()[3:2000]
                 if " - Member" in line and ": " in line]
    posts = pq.read_table(shared / "labeled" / "uk_ru_tg_manipulation_unlp2025" / "dev.parquet",
                          columns=["content", "lang"]).to_pylist()
    out["uk"] = [p["content"] for p in posts if p["lang"] == "uk"][:600]
    # WhatsApp's own markers (media, deletions, edits) are not message text
    marks = ("<", "\u200e", "\u200f", "deleted", "null")
    return {k: [t for t in v if t.strip() and not any(m in t for m in marks)]
            for k, v in out.items()}


CASES = {"ru": ["cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5", "gb18030",
                "utf-16-le", "utf-16-be", "utf-16-bom", "utf-8"],
         "he": ["cp1255", "iso8859-8", "utf-16-le", "utf-8"],
         "uk": ["cp1251", "koi8-u", "utf-16-le"]}
LANGS = {"ru": DEFAULT_LANGUAGES, "he": ("he", "en"), "uk": DEFAULT_LANGUAGES}


def test_real_messages_in_every_encoding_are_read_exactly_or_refused(
        shared_data: Path) -> None:
    rng = random.Random(20221001)
    texts = _real_texts(shared_data)
    refused: Counter[tuple[str, str]] = Counter()
    tried: Counter[tuple[str, str]] = Counter()
    for lang, encodings in CASES.items():
        for encoding in encodings:
            for fmt in ("whatsapp", "csv", "telegram-html"):
                for _ in range(8):
                    pick = clean(rng.sample(texts[lang], rng.choice([1, 3, 10, 30])), encoding)
                    if not pick:
                        continue
                    got = read(fmt, pick, encoding, LANGS[lang])
                    tried[lang, encoding] += 1
                    if isinstance(got, EncodingError):
                        refused[lang, encoding] += 1
                    else:
                        assert got == pick, (lang, encoding, fmt)  # exact, never garbled
    rates = {f"{lang} {e}": refused[lang, e] / n for (lang, e), n in tried.items()}
    print(f"{sum(tried.values())} files; refusal rate:",
          {k: f"{r:.0%}" for k, r in sorted(rates.items())})
    # real Russian text in cp1251 is detected, not refused; no encoding is mostly refused
    assert rates["ru cp1251"] <= 0.1 and rates["ru utf-8"] == 0 and rates["ru utf-16-bom"] == 0
    assert max(rates.values()) <= 0.35, rates


WHOLE = [("whatsapp/android24h_he_family_group.txt", "whatsapp", ["cp1255", "utf-16-le"],
          ("he", "en")),
         ("telegram/html_uk_channel/messages2.html", "telegram-html",
          ["cp1251", "koi8-u", "mac-cyrillic", "gb18030", "utf-16-le"], DEFAULT_LANGUAGES)]


@pytest.mark.parametrize(("rel", "fmt", "encodings", "languages"), WHOLE)
def test_whole_real_exports_re_encoded_read_exactly_or_refused(
        shared_data: Path, rel: str, fmt: str, encodings: list[str],
        languages: tuple[str, ...]) -> None:
    importer = FORMATS[fmt][1]
    path = shared_data / rel
    refused = []
    for encoding in encodings:
        text = path.read_text("utf-8").encode(encoding, "ignore").decode(encoding)
        want = [r.text for r in importer.parse(source(text.encode("utf-8"), path.name),
                                               ParseOptions()) if isinstance(r, Record)]
        src = source(text.encode(encoding), path.name)
        try:
            got = [r.text for r in importer.parse(src, ParseOptions(languages=languages))
                   if isinstance(r, Record)]
        except EncodingError:
            refused.append(encoding)  # acceptable in general, never garbled text
            continue
        assert got == want, (rel, encoding)
    assert refused == []  # these whole exports hold evidence enough to be detected


def test_utf8_reader_drops_a_bom_at_the_start_only() -> None:
    import io

    from chatlens.ingest.encoding import CHUNK, Utf8Reader

    text = "\ufeff" + "я" * (CHUNK // 2 - 1) + "\ufeffb"  # the second chunk opens with U+FEFF
    reader = Utf8Reader(io.BytesIO(text.encode("utf-16-le")), "utf-16-le")
    out = b""
    while piece := reader.read(CHUNK - 2):  # the first chunk decoded, exactly: then empty
        out += piece
    assert out.decode("utf-8") == text[1:]
