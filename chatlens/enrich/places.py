"""Place gazetteer: countries, their cities and regions (each mapped to its country) and border
checkpoints, read from ``places.tsv`` next to this module.

Names are compiled through the same pipeline as messages (normalise, tokenise, lemmatise with the
ru, uk and plain-lowercase readings), so "Грузию", "в Грузии", "Грузія" and "Georgia" all give
``country:GE``, and "в Донецке", "Белгородской области", "Запорізька область" give ``country:UA``
or ``country:RU``. Output ids are ``country:XX`` (ISO 3166-1 alpha-2) and ``checkpoint:NAME``; a
city or region yields its country's id only, never a finer one. A name starting with ``=``
is not lemmatised, for names whose lemma is a common word ("Бугристое" → "бугристый"): it
matches a message word that is, or lemmatises to, that exact form. A name ending in "область"
also matches the abbreviation "обл". Places only: nationality adjectives and demonyms are
deliberately absent (the codebook must not infer ethnicity).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.resources import files

from chatlens.errors import ChatlensError

GAZETTEER_FILE = "places.tsv"


def parse_places(text: str, source: str = GAZETTEER_FILE) -> dict[str, list[str]]:
    """Place id → names, from gazetteer text (``id<TAB>name|name…`` lines; ``#`` comments)."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        pid, sep, names = line.partition("\t")
        kind = pid.partition(":")[0]
        if not sep or kind not in ("country", "checkpoint") or not names.strip():
            raise ChatlensError(f"{source} line {n}: expected 'country:XX' or 'checkpoint:NAME',"
                                " a tab and '|'-separated names; fix that line.")
        out.setdefault(pid, []).extend(x.strip() for x in names.split("|") if x.strip())
    return out


@lru_cache(maxsize=1)
def places() -> dict[str, list[str]]:
    """The built-in gazetteer: place id → names (see ``places.tsv``)."""
    text = files("chatlens.enrich").joinpath(GAZETTEER_FILE).read_text(encoding="utf-8")
    return parse_places(text)


def gazetteer_digest(table: dict[str, list[str]] | None = None) -> str:
    """16 hex digits of a gazetteer's content (default: the built-in one); part of the
    enrichment fingerprint, so stored places are redone when the gazetteer changes."""
    if table is None:
        return _builtin_digest()
    blob = json.dumps(table, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


@lru_cache(maxsize=1)
def _builtin_digest() -> str:
    return gazetteer_digest(places())


#: Place id → "|"-joined names (the built-in gazetteer, as :func:`places` gives it).
PLACES: dict[str, str] = {pid: "|".join(names) for pid, names in places().items()}


@lru_cache(maxsize=4)
def gazetteer(tokenizer: str = "fast") -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """First word → [(word sequence, place id)], longest sequence first, over all readings."""
    from chatlens.enrich.morph import Lemmatizer, lemmatize_tokens

    lem = Lemmatizer(tokenizer)
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for pid, names in places().items():
        for name in names:
            toks = lem.tokens(name.removeprefix("="))
            readings = {tuple(toks)}
            if not name.startswith("="):  # Lemmatizer.lemmas(name, lg), tokenising once
                readings.update(tuple(lemmatize_tokens(toks, lg)) for lg in ("ru", "uk"))
            readings |= {(*seq[:-1], "обл") for seq in readings if seq[-1:] == ("область",)}
            for seq in sorted(readings):  # a stable order, whatever the hash seed
                if seq and (seq, pid) not in index.get(seq[0], ()):
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
    # the positions where a name may start, in text order, the lemma reading before the token one
    starts = [(i, 0) for i, w in enumerate(lemmas) if w in hits]
    starts += [(i, 1) for i, w in enumerate(tokens) if w in hits]
    starts.sort()
    found: list[str] = []
    for i, kind in starts:
        seqs = tokens if kind else lemmas
        for seq, pid in index[seqs[i]]:
            if tuple(seqs[i : i + len(seq)]) == seq:
                if pid not in found:
                    found.append(pid)
                break
    return found
