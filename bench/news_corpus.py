"""The real news-channel corpus replicated to any size, as JSONL, for the throughput benches.

``../shared/data/corpora/ru_news_channels_2023_2024`` holds 24 channels, 22,099 posts. Copy
``k`` of it gets ids prefixed ``k-``; with ``spread`` its channels are also renamed
``<channel> #<k // 10>`` and its dates shifted back by ``(k % 10) × 728`` days (whole weeks),
so a bigger corpus spans more chats and months, not only more messages.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpora" / "ru_news_channels_2023_2024"


def require_corpus() -> None:
    """Exit with a clear line when the corpus is not there (it is never committed)."""
    if not CORPUS.exists():
        raise SystemExit(f"corpus not found at {CORPUS}; this benchmark needs ../shared/data")


def replicate(target: Path, n: int, spread: bool = False) -> int:
    """Write ``n`` posts to ``target`` (JSONL: id, chat, date, text, author); returns ``n``."""
    posts = []
    for f in sorted(CORPUS.glob("*_messages.json")):
        posts.extend(json.loads(f.read_text(encoding="utf-8")))
    written = 0
    with target.open("w", encoding="utf-8") as out:
        k = 0
        while written < n:
            shift = timedelta(days=728 * (k % 10))
            for p in posts[: n - written]:
                chat, date = p["channel"], p["date"]
                if spread:
                    chat = f"{chat} #{k // 10}"
                    date = (datetime.fromisoformat(date) - shift).isoformat()
                out.write(json.dumps({"id": f"{k}-{p['message_id']}", "chat": chat,
                                      "date": date, "text": p["text"] or "",
                                      "author": str(p["sender_id"])}, ensure_ascii=False))
                out.write("\n")
            written += min(len(posts), n - written)
            k += 1
    return written
