"""Small builders for tests: Telegram Desktop JSON exports from plain texts."""

from __future__ import annotations

import json
from pathlib import Path


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
