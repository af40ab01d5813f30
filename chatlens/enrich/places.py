"""Place gazetteer: countries, major cities (mapped to their country) and border checkpoints.

Names are compiled through the same pipeline as messages (normalise, tokenise, lemmatise with the
ru, uk and plain-lowercase readings), so "Грузию", "в Грузии", "Грузія" and "Georgia" all give
``country:GE``. A name starting with ``=`` matches surface tokens only (no lemmas), for names whose
lemma is a common word ("Бугристое" → "бугристый"). Places only: nationality adjectives and
demonyms are deliberately absent (the codebook must not infer ethnicity).
"""

from __future__ import annotations

from functools import lru_cache

PLACES: dict[str, str] = {
    "country:GE": "Грузия|Грузія|Georgia|Сакартвело|Тбилиси|Тбілісі|Tbilisi|Батуми|Батумі|Batumi"
    "|Кутаиси|Кутаїсі|Kutaisi",
    "country:KZ": "Казахстан|Kazakhstan|Qazaqstan|Алматы|Алмати|Алма-Ата|Almaty|Астана|Astana"
    "|Нур-Султан|Уральск|Уральськ|Актобе|Шымкент|Караганда|Усть-Каменогорск",
    "country:AM": "Армения|Вірменія|Armenia|Ереван|Єреван|Yerevan|Гюмри|Gyumri",
    "country:KG": "Киргизия|Кыргызстан|Киргизстан|Киргизія|Kyrgyzstan|Бишкек|Бішкек|Bishkek",
    "country:MN": "Монголия|Монголія|Mongolia|Улан-Батор|Ulaanbaatar",
    "country:FI": "Финляндия|Фінляндія|Finland|Суоми|Хельсинки|Гельсінкі|Helsinki|Лаппеенранта",
    "country:TR": "Турция|Туреччина|Turkey|Türkiye|Стамбул|Istanbul|Анталья|Анталія|Antalya"
    "|Анкара|Ankara|Измир",
    "country:RS": "Сербия|Сербія|Serbia|Белград|Белград|Belgrade|Нови-Сад|Novi Sad",
    "country:IL": "Израиль|Ізраїль|Israel|Тель-Авив|Тель-Авів|Tel Aviv|Иерусалим|Єрусалим"
    "|Jerusalem|Хайфа|Haifa",
    "country:AE": "ОАЭ|ОАЕ|UAE|Эмираты|Емірати|Объединенные Арабские Эмираты|Дубай|Дубаї|Dubai"
    "|Абу-Даби|Абу-Дабі|Abu Dhabi",
    "country:UZ": "Узбекистан|Uzbekistan|Ташкент|Tashkent|Самарканд|Samarkand",
    "country:ME": "Черногория|Чорногорія|Montenegro|Подгорица|Podgorica|Будва|Budva",
    "country:RU": "Россия|Росія|Russia|РФ|Российская Федерация|Москва|Moscow|Санкт-Петербург"
    "|Петербург|Питер|Saint Petersburg",
    "country:UA": "Украина|Україна|Ukraine|Киев|Київ|Kyiv|Kiev|Харьков|Харків|Одесса|Одеса|Львов"
    "|Львів",
    "country:BY": "Беларусь|Белоруссия|Білорусь|Belarus|Минск|Мінськ|Minsk",
    "checkpoint:upper_lars": "Верхний Ларс|Верхній Ларс|Ларс|Upper Lars|Zemo Larsi|Казбеги",
    "checkpoint:kyakhta": "Кяхта|Kyakhta",
    "checkpoint:torfyanovka": "Торфяновка|Торф'янівка|Torfyanovka|Ваалимаа|Vaalimaa",
    "checkpoint:brusnichnoye": "Брусничное|=брусничном|Нуйямаа|Nuijamaa",
    "checkpoint:narva_ivangorod": "Ивангород|Івангород|Ivangorod|Нарва|Narva",
    "checkpoint:bugristoye": "=бугристое|=бугристом|=бугристого|КПП Бугристое|Bugristoye",
    "checkpoint:salla": "Салла|Salla",
    "checkpoint:burachki": "Бурачки|Burachki|Terehova",
    "checkpoint:ubylinka": "Убылинка|Ubylinka|Grebneva",
    "checkpoint:shumilkino": "Шумилкино|Shumilkino|Лухамаа|Luhamaa",
}


@lru_cache(maxsize=4)
def gazetteer(tokenizer: str = "fast") -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """First word → [(word sequence, place id)], longest sequence first, over all readings."""
    from chatlens.enrich.morph import Lemmatizer

    lem = Lemmatizer(tokenizer)
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for pid, names in PLACES.items():
        for name in names.split("|"):
            if name.startswith("="):
                readings = {tuple(lem.tokens(name[1:]))}
            else:
                toks = tuple(lem.tokens(name))
                readings = {toks, *(tuple(lem.lemmas(name, lg)) for lg in ("ru", "uk"))}
            for seq in readings:
                if seq:
                    index.setdefault(seq[0], []).append((seq, pid))
    for entries in index.values():
        entries.sort(key=lambda e: -len(e[0]))
    return index


@lru_cache(maxsize=4)
def gazetteer_keys(tokenizer: str = "fast") -> frozenset[str]:
    """The words a place name can start with (a message without any of them names no place)."""
    return frozenset(gazetteer(tokenizer))


def find_places(tokens: list[str], lemmas: list[str], tokenizer: str = "fast") -> list[str]:
    """Place ids mentioned, in order of first mention, each once."""
    index, keys = gazetteer(tokenizer), gazetteer_keys(tokenizer)
    if keys.isdisjoint(lemmas) and keys.isdisjoint(tokens):
        return []
    hits = keys.intersection(lemmas).union(keys.intersection(tokens))
    found: list[str] = []
    for i in range(len(tokens)):
        for seqs in (lemmas, tokens):
            w = seqs[i]
            if w not in hits:
                continue
            for seq, pid in index[w]:
                if tuple(seqs[i : i + len(seq)]) == seq:
                    if pid not in found:
                        found.append(pid)
                    break
    return found
