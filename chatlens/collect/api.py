"""The entry point the CLI wraps: one collect run, recorded with its manifest.

The manifest lists the channels, the range and the counts; never the API keys or the session.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chatlens import __version__
from chatlens.collect.runner import CollectOptions, CollectReport, Progress, Sleep, collect
from chatlens.project import Project, new_run_id


def collect_telegram(
    project: Project,
    targets: list[str],
    options: CollectOptions | None = None,
    client: Any = None,
    config: Path | None = None,
    session: Path | None = None,
    interactive: bool | None = None,
    progress: Progress | None = None,
    sleep: Sleep | None = None,
) -> CollectReport:
    """Collect public Telegram channels/groups into the project.

    ``client``: a Telethon client (or :class:`chatlens.collect.fake.FakeTelegram`); without one,
    a real client is made from the credentials and logged in (prompting only in a terminal).
    """
    options = options or CollectOptions()
    run_id = new_run_id()
    params = {"channels": list(targets), **options.as_dict()}
    store = project.store

    async def main() -> CollectReport:
        nonlocal client
        from chatlens.collect.credentials import load_credentials, login, make_client

        owned = client is None
        if owned:
            creds = load_credentials(project.root, config, session)
            client = make_client(creds)
            where = creds.session
        else:
            where = Path(str(getattr(getattr(client, "session", None), "filename", "")
                             or "the given client's session"))
        await login(client, where, interactive)
        try:
            return await collect(store, client, targets, run_id, options, progress,
                                 sleep or asyncio.sleep)
        finally:
            if owned:
                await client.disconnect()

    store.start_run(run_id, "collect telegram", __version__, params)
    status = "failed"
    report = CollectReport(run_id=run_id, options=options)
    try:
        report = asyncio.run(main())
        failed = len(report.failed)
        status = "complete" if not failed and all(
            c.status == "complete" for c in report.channels) else (
            "failed" if failed == len(report.channels) else "partial")
    finally:
        store.finish_run(run_id, status, {"version": __version__, "params": params,
                                          **report.as_dict()})
    return report
