"""Enrichment settings and their fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from chatlens.languages import DEFAULT_LANGUAGES

# v2: Cyrillic languages without their marker letters are ruled out (see .lid); URLs with
# capitalised prefixes (Http://, Www.) are found, which changes norm and lemmas
# v3: language ID ignores hashtags, e-mails and domains, knows every script py3langid covers
# (Hebrew, Arabic, Greek, CJK, …), and gives configured Latin languages a prior (see .lid)
# v4: only the places where a URL was found become <url> (not every copy of its text, which
# left "/5" of "t.me/a/5" behind when "t.me/a" was also in the message)
ENRICH_VERSION = "enrich.v4"



@dataclass(frozen=True, slots=True)
class EnrichSettings:
    """What enrichment does. Change anything here and :meth:`fingerprint` changes.

    ``languages``: ISO 639 codes language ID may return (anything else is ``und``); see
    :func:`chatlens.enrich.lid.supported_languages`.
    ``min_chars``: fewer letters than this (after removing URLs, e-mails, domains, mentions,
    hashtags, emoji, digits) → ``und``, unless their script leaves one non-Latin configured
    language (then 2 letters do).
    ``lid_chars``: language ID reads at most this many characters of the cleaned text.
    ``tokenizer``: ``"fast"`` (compiled regex modelled on razdel, see :mod:`.text`) or
    ``"razdel"`` (razdel itself: slower, splits Ukrainian apostrophe words).
    ``places``: run the gazetteer.
    """

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    min_chars: int = 5
    lid_chars: int = 300
    tokenizer: str = "fast"
    places: bool = True
    version: str = ENRICH_VERSION

    def __post_init__(self) -> None:
        if self.tokenizer not in ("fast", "razdel"):
            raise ValueError(f"tokenizer must be 'fast' or 'razdel', not {self.tokenizer!r}")
        if self.min_chars < 0 or self.lid_chars < 1:
            raise ValueError("min_chars must be >= 0 and lid_chars >= 1")
        object.__setattr__(self, "languages", tuple(self.languages))

    def fingerprint(self) -> str:
        """Stable hex digest of all settings (version included) and, when ``places`` is on, of
        the gazetteer's content, so that editing ``places.tsv`` redoes enrichment; 16 hex chars."""
        data = asdict(self)
        if self.places:
            from chatlens.enrich.places import gazetteer_digest

            data["gazetteer"] = gazetteer_digest()
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()
