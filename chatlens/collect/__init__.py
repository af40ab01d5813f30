"""Collectors: public channels and groups read through a platform's API (extra ``collect``).

:mod:`.telegram` maps Telethon objects to rows, :mod:`.runner` iterates channels with
checkpoints and flood-wait handling, :mod:`.credentials` finds the API keys and the session,
:mod:`.api` is the entry point the CLI wraps. Telethon is imported only when a collection runs.
"""

from chatlens.errors import CollectAuthError, CollectError

__all__ = ["CollectAuthError", "CollectError"]
