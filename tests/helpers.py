"""Small builders for tests: Telegram Desktop JSON exports from plain texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatlens import Project


def telegram_export(path: Path, texts: list[str], chat_id: int = 42, start_ts: int = 1663754400,
                    step: int = 60, name: str = "Тестовый чат") -> Path:
    messages = [
        {"id": i, "type": "message", "date": "2022-09-21T10:00:00",
         "date_unixtime": str(start_ts + i * step), "from": f"U{i % 5}",
         "from_id": f"user{i % 5}", "text": t, "text_entities": []}
        for i, t in enumerate(texts, start=1)
    ]
    doc = {"name": name, "type": "private_supergroup", "id": chat_id, "messages": messages}
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


#: 120 short Russian messages, every third one about waiting at the border (40 of 120).
BORDER_TEXTS = [f"Стоим на границе {i} часов" if i % 3 == 0 else f"Обычное сообщение номер {i}"
                for i in range(120)]


def ingest_border_chats(project: Project, tmp_path: Path) -> Project:
    """:data:`BORDER_TEXTS` as two Telegram chats of 60, ingested and coded with the built-in
    codebook."""
    project.ingest([telegram_export(tmp_path / "a.json", BORDER_TEXTS[:60], chat_id=1),
                    telegram_export(tmp_path / "b.json", BORDER_TEXTS[60:], chat_id=2)])
    project.code("builtin:exodus-2022")
    return project

