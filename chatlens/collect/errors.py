"""Errors of the collectors (they extend the tree in :mod:`chatlens.errors`)::

    ChatlensError
    └── CollectError (RuntimeError)     a collection cannot start (missing extra, no credentials)
        └── CollectAuthError            no usable session and no terminal to log in from
"""

from __future__ import annotations

from chatlens.errors import CollectError

INSTALL_HINT = ("Collecting needs Telethon: install the extra with "
                "`pip install 'chatlens[collect]'` (or `pip install telethon`).")


def require_telethon() -> None:
    """Raise :class:`CollectError` with an install hint when Telethon is missing."""
    try:
        import telethon  # noqa: F401
    except ImportError:
        raise CollectError(INSTALL_HINT) from None
