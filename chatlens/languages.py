"""The languages a project declares when ``chatlens init`` is given none (one place: language
ID, encoding detection and the project read it; importing this pulls in nothing else)."""

from __future__ import annotations

DEFAULT_LANGUAGES: tuple[str, ...] = ("ru", "uk", "en", "ka", "kk", "hy", "be")
