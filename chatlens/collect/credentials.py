"""API keys and the login session, kept outside the project so they never travel with it.

The API id and hash (from my.telegram.org) come from ``CHATLENS_TG_API_ID`` and
``CHATLENS_TG_API_HASH``, or from a TOML config file (``--config``, ``$CHATLENS_TG_CONFIG``,
default ``~/.config/chatlens/telegram.toml``) with ``api_id``, ``api_hash`` and optionally
``session``. The session file holds the account's auth key: it is created with mode 0600 at
``--session``, ``$CHATLENS_TG_SESSION``, the config's ``session`` or
``~/.config/chatlens/telegram.session``. Neither may lie inside the project directory, and
neither is ever written to a run manifest.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatlens.collect.errors import require_telethon
from chatlens.errors import CollectAuthError, CollectError, UsageError


def config_home(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chatlens"


@dataclass(slots=True)
class Credentials:
    api_id: int
    api_hash: str
    session: Path

    def __repr__(self) -> str:  # never print the hash
        return f"Credentials(api_id=<hidden>, api_hash=<hidden>, session={self.session!s})"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def load_credentials(project_root: Path, config: Path | None = None,
                     session: Path | None = None,
                     env: Mapping[str, str] = os.environ) -> Credentials:
    """Find the API id/hash and the session path; raise :class:`CollectError` if incomplete."""
    config = config or (Path(env["CHATLENS_TG_CONFIG"]) if env.get("CHATLENS_TG_CONFIG")
                        else config_home(env) / "telegram.toml")
    data: dict[str, Any] = {}
    if config.exists():
        if _inside(config, project_root):
            raise UsageError(f"The Telegram config {config} is inside the project; move it out "
                             "(e.g. to ~/.config/chatlens/telegram.toml) so keys never travel "
                             "with the project.")
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"Cannot read the Telegram config {config}: {exc}.") from None
    api_id = env.get("CHATLENS_TG_API_ID") or data.get("api_id")
    api_hash = env.get("CHATLENS_TG_API_HASH") or data.get("api_hash")
    if not api_id or not api_hash:
        raise CollectError(
            "No Telegram API id/hash: get them at https://my.telegram.org and set "
            "CHATLENS_TG_API_ID and CHATLENS_TG_API_HASH, or write api_id and api_hash to "
            f"{config}.")
    try:
        numeric = int(api_id)
    except (TypeError, ValueError):
        raise UsageError(f"The Telegram api_id must be a number, not {api_id!r}.") from None
    where = session or (Path(env["CHATLENS_TG_SESSION"]) if env.get("CHATLENS_TG_SESSION")
                        else Path(str(data["session"])).expanduser() if data.get("session")
                        else config_home(env) / "telegram.session")
    if where.suffix != ".session":
        where = where.with_name(where.name + ".session")
    if _inside(where, project_root):
        raise UsageError(f"The session file {where} is inside the project; it holds the "
                         "account's login key, so keep it elsewhere (--session PATH).")
    return Credentials(numeric, str(api_hash), where)


def prepare_session(path: Path) -> None:
    """Create the session file (and its folder) private to the user: 0600 (folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


def make_client(creds: Credentials) -> Any:
    """A real ``TelegramClient`` on the session file (Telethon imported here only)."""
    require_telethon()
    from telethon import TelegramClient

    prepare_session(creds.session)
    client = TelegramClient(str(creds.session), creds.api_id, creds.api_hash)
    client.flood_sleep_threshold = 0  # every flood wait comes to the collector: logged, capped
    return client


async def login(client: Any, session: Path, interactive: bool | None = None,
                ask: Callable[[str], str] = input,
                ask_secret: Callable[[str], str] | None = None) -> None:
    """Connect; log in (phone, code, 2FA password) only when a terminal is there to answer."""
    await client.connect()
    if await client.is_user_authorized():
        return
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        await client.disconnect()
        raise CollectAuthError(
            f"No usable Telegram session at {session}; run the same command once in an "
            "interactive terminal to log in (phone, code, 2FA password).")
    import getpass

    secret = ask_secret or getpass.getpass
    await client.start(phone=lambda: ask("Phone number (international format): "),
                       code_callback=lambda: ask("Login code Telegram sent you: "),
                       password=lambda: secret("Two-step verification password: "))
    os.chmod(session, 0o600)
