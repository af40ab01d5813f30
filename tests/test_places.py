"""The place gazetteer: cities and regions normalised to their country, inflection, common words
that must not match, the data file, and precision/recall on hand-checked real posts."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from chatlens.enrich import EnrichSettings
from chatlens.enrich.pipeline import enrich_text
from chatlens.enrich.places import (
    PLACES,
    find_places,
    gazetteer,
    gazetteer_digest,
    parse_places,
    places,
)
from chatlens.errors import ChatlensError
from tests.places_eval import audited_hits, score, score_audit, truth_texts

S = EnrichSettings()


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Обстрел в Донецке", "country:UA"),
        ("Бойцы вышли из Бахмута", "country:UA"),
        ("Беспилотник сбит над Белгородской областью", "country:RU"),
        ("В Белгородской области объявлена тревога", "country:RU"),
        ("Бои под Херсоном", "country:UA"),
        ("Запорізька область під обстрілом", "country:UA"),
        ("Дрони летять на Житомирщину", "country:UA"),
        ("На Донеччині тривають бої", "country:UA"),
        ("Вибухи у Бєлгороді та на Бєлгородщині", "country:RU"),
        ("Ситуация в Мариуполе", "country:UA"),
        ("Взрывы в Луганске и Горловке", "country:UA"),
        ("Атака на Севастополь отражена", "country:UA"),
        ("Мост в Крым", "country:UA"),
        ("Жители ДНР", "country:UA"),
        ("Тревога в Киевской обл.", "country:UA"),
        ("Курская обл., Рыльск", "country:RU"),
        ("Налёт на Сумы", "country:UA"),
        ("Во Львове погасли огни", "country:UA"),
        ("Курская область, Суджа", "country:RU"),
        ("Очередь во Владикавказе", "country:RU"),
        ("Через Северную Осетию к Ларсу", "country:RU"),
        ("Мы в Нижнем Новгороде", "country:RU"),
        ("Из Ростова-на-Дону", "country:RU"),
        ("Пробки в Ленинградской области", "country:RU"),
        ("Переехали в Батуми", "country:GE"),
        ("Сейчас в Абхазии", "country:GE"),
        ("Доехали до Уральска", "country:KZ"),
        ("Живём в Гюмри", "country:AM"),
        ("Работаю в Бухаре", "country:UZ"),
        ("Снимаем квартиру в Будве", "country:ME"),
        ("Улетаем из Анталии", "country:TR"),
        ("Flew from Kharkiv to Lviv", "country:UA"),
        ("Drone attack on Belgorod", "country:RU"),
        ("Уехали в Гомель", "country:BY"),
        ("Таллинн и Тарту", "country:EE"),
        ("Рейс до Риги", "country:LV"),
        ("Пересадка в Варшаве", "country:PL"),
        ("Жили в Тромсе", "country:NO"),
    ],
)
def test_cities_and_regions_give_their_country(text: str, place: str) -> None:
    assert place in enrich_text(text, S)["places"]


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Стоим на Ларсе", "checkpoint:upper_lars"),
        ("Через Светогорск пропускают", "checkpoint:svetogorsk"),
        ("КПП Маштаково открыт", "checkpoint:mashtakovo"),
        ("На Сторског очередь", "checkpoint:storskog"),
    ],
)
def test_checkpoints_give_their_own_id_only(text: str, place: str) -> None:
    assert enrich_text(text, S)["places"] == [place]


@pytest.mark.parametrize(
    "text",
    [
        "Ровно в пять", "мир во всём мире", "Орёл и решка", "шахты закрыли", "заливные луга",
        "большие суммы", "в парке львов", "булочка с изюмом", "турок продаёт кофе",
        "Лахта-центр", "Ларс Андерсен приехал", "Исламский эмират", "Иван Грозный",
        "из многих семей", "Владимир Путин", "гори оно огнём", "пошли в бар",
        "поднять бучу", "читы для игры",
    ],
)
def test_common_words_name_no_place(text: str) -> None:
    assert enrich_text(text, S)["places"] == []


def test_city_and_country_in_one_message_give_the_country_once() -> None:
    row = enrich_text("Из Донецка в Киев, потом во Львов и снова в Донецк", S)
    assert row["places"] == ["country:UA"]


def test_every_gazetteer_name_finds_its_own_place() -> None:
    ids = re.compile(r"(country:[A-Z]{2}|checkpoint:[a-z_]+)")
    for pid, names in places().items():
        assert ids.fullmatch(pid), pid
        for name in names:
            found = enrich_text(name.lstrip("="), S)["places"]
            assert found and found[0] == pid, (name, found)
    assert set(PLACES) == set(places())


def test_no_word_sequence_names_two_places() -> None:
    ids: dict[tuple[str, ...], set[str]] = {}
    for entries in gazetteer("fast").values():
        for seq, pid in entries:
            ids.setdefault(seq, set()).add(pid)
    assert not {seq: p for seq, p in ids.items() if len(p) > 1}


def test_gazetteer_file_errors_name_the_line() -> None:
    assert parse_places("# c\ncountry:GE\tТбилиси|Батуми\n\ncountry:GE\tКутаиси\n") == {
        "country:GE": ["Тбилиси", "Батуми", "Кутаиси"]}
    with pytest.raises(ChatlensError, match="line 2"):
        parse_places("country:GE\tТбилиси\ncity:GE Тбилиси\n")


def test_find_places_keeps_its_signature_and_first_mention_order() -> None:
    index = gazetteer("fast")
    assert ("донецк",) in {seq for seq, _ in index["донецк"]}
    assert find_places(["из", "батуми", "в", "херсон"], ["из", "батуми", "в", "херсон"]) == [
        "country:GE", "country:UA"]


@pytest.mark.shared_data
def test_places_on_hand_checked_real_posts(shared_data: Path) -> None:
    posts = truth_texts(shared_data)
    s = score(find_places, posts)
    print(f"\nplaces on {len(posts)} hand-checked posts: precision {s['precision']:.3f}, "
          f"recall {s['recall']:.3f} (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})")
    assert s["precision"] >= 0.95
    assert s["recall"] >= 0.90
    a = score_audit(find_places, audited_hits(shared_data))
    print(f"audited new-gazetteer hits: precision {a['precision']:.3f}, recall of the correct "
          f"ones {a['recall']:.3f} ({a['given']:.0f} still given)")
    assert a["precision"] >= 0.97
    assert a["recall"] >= 0.95


def test_the_enrichment_fingerprint_follows_the_gazetteer() -> None:
    a = parse_places("country:GE\tТбилиси\n")
    b = parse_places("country:GE\tТбилиси|Батуми\n")
    assert gazetteer_digest(a) != gazetteer_digest(b)
    assert gazetteer_digest() == gazetteer_digest(places())
    on, off = EnrichSettings(), EnrichSettings(places=False)
    blob = json.dumps({**asdict(on), "gazetteer": gazetteer_digest()}, sort_keys=True,
                      separators=(",", ":"))
    assert on.fingerprint() == hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()
    blob = json.dumps(asdict(off), sort_keys=True, separators=(",", ":"))  # no gazetteer
    assert off.fingerprint() == hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()
