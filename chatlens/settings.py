"""Settings that chatlens reads from the environment, declared once.

Each entry names an environment variable, its default and what it changes. The docs' settings
reference is generated from :data:`ENVIRONMENT`, and a test checks that every ``CHATLENS_*``
name used anywhere in the package is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, default (as text) and meaning."""

    name: str
    default: str
    meaning: str


ENVIRONMENT: tuple[Setting, ...] = (
    Setting("CHATLENS_PROJECT", "the current directory",
            "Project directory used by every command that takes `--project` when the option is "
            "not given, and by `Project.open()` without a path."),
    Setting("CHATLENS_MEMORY_LIMIT", "1GB",
            "DuckDB memory limit of each command (digits and a unit: `512MB`, `4GB`); DuckDB "
            "spills to disk beyond it."),
    Setting("CHATLENS_LOAD_MEMORY", "256MB",
            "DuckDB memory limit while a batch of messages is loaded into the store during "
            "ingest (kept low so ingest of large exports stays flat in memory)."),
    Setting("CHATLENS_INGEST_WORKER", "auto",
            "`auto`: ingest reads a Telegram JSON export of 64 MB or more with a worker process "
            "(two cores: one reads the file and stores, the other parses); `on`: every Telegram "
            "JSON export; `off`: one process. The rows stored are the same either way."),
    Setting("CHATLENS_LOCK_WAIT", "10",
            "Seconds a command that writes waits for the dashboard or another command to let go "
            "of the project before it stops with a 'project is being used by another chatlens "
            "process' error."),
    Setting("CHATLENS_TOKEN", "none",
            "Access token of `chatlens serve` (same as `--token`); required when the dashboard "
            "listens on anything but loopback."),
    Setting("CHATLENS_TG_API_ID", "none",
            "`chatlens collect telegram`: the API id from my.telegram.org (or `api_id` in the "
            "config file)."),
    Setting("CHATLENS_TG_API_HASH", "none",
            "`chatlens collect telegram`: the API hash from my.telegram.org (or `api_hash` in "
            "the config file)."),
    Setting("CHATLENS_TG_CONFIG", "~/.config/chatlens/telegram.toml",
            "`chatlens collect telegram`: TOML file with `api_id`, `api_hash` and optionally "
            "`session`; it must lie outside the project."),
    Setting("CHATLENS_TG_SESSION", "beside the config file",
            "`chatlens collect telegram`: the login session file (created mode 0600)."),
    Setting("CHATLENS_SHARED_DATA", "../shared/data",
            "Tests and benchmarks only: the folder of real public data that tests marked "
            "`shared_data` use; they skip when it is absent."),
)
