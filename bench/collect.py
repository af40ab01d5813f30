"""chatlens's own cost per collected Telegram message: mapping + storing, no network.

The in-process fake client (:mod:`chatlens.collect.fake`) serves real-shaped
``telethon.tl.types.Message`` objects (text with entities, views, forwards, reactions, replies,
forwards from channels, albums of photos, documents) page by page, finished with Telethon's own
``_finish_init``, as ``iter_messages`` does. Two figures:

* mapping: ``RowBatch.add`` + Arrow tables only, messages/s;
* collect: a whole ``collect_telegram`` run into a new project (mapping, originals, the
  ``collected`` table, checkpoints in the same transactions), messages/s;
* chatlens's own: the collect run less what the fake client spends serving the same messages
  (its paging and Telethon's own ``_finish_init`` per message, timed alone on a copy): what
  chatlens adds per message next to Telegram's delivery.

Usage: python bench/collect.py [--messages 100000] [--batch 1000]
Target (issue 15): collect >= 20,000 messages/s, so chatlens is never the bottleneck next to
Telegram's ~100 messages/s per account.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chatlens import Project
from chatlens.collect import fake as F
from chatlens.collect.api import collect_telegram
from chatlens.collect.runner import CollectOptions
from chatlens.collect.telegram import RowBatch, Where, chat_of
from chatlens.ingest.pipeline import Pseudonymiser

T0 = datetime(2022, 9, 21, tzinfo=UTC)
WORDS = ["очередь", "на", "границе", "Верхний", "Ларс", "сегодня", "стоим", "шесть", "часов",
         "пропускают", "медленно", "кто", "знает", "как", "дела", "на", "Казбеги", "нужна", "ли",
         "справка"]


def build(n: int, chat_id: int = 1001) -> list[Any]:
    from telethon.tl import types

    out = []
    for i in range(1, n + 1):
        words = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(8 + i % 25)]
        text = " ".join(words) + " 🇬🇪 #граница https://t.me/news/1"
        kw: dict[str, Any] = {
            "post": True, "views": 1000 + i, "forwards": i % 17,
            "entities": [types.MessageEntityBold(offset=0, length=7),
                         types.MessageEntityHashtag(offset=len(text) - 31, length=8),
                         types.MessageEntityUrl(offset=len(text) - 22, length=22)],
            "reactions": types.MessageReactions(results=[
                types.ReactionCount(reaction=types.ReactionEmoji(emoticon="👍"), count=i % 50),
                types.ReactionCount(reaction=types.ReactionEmoji(emoticon="😢"), count=i % 7)]),
            "replies": types.MessageReplies(replies=i % 5, replies_pts=i, comments=True,
                                            channel_id=2002, max_id=i * 3),
        }
        if i % 5 == 0:
            kw["fwd_from"] = types.MessageFwdHeader(date=T0, from_id=types.PeerChannel(3003),
                                                    channel_post=i)
        if i % 7 == 0:
            kw["grouped_id"] = i // 7
            kw["media"] = types.MessageMediaPhoto(photo=types.Photo(
                id=i, access_hash=1, file_reference=b"", date=T0, dc_id=2,
                sizes=[types.PhotoSize(type="y", w=1280, h=960, size=90000)]))
        elif i % 11 == 0:
            kw["media"] = types.MessageMediaDocument(document=types.Document(
                id=i, access_hash=1, file_reference=b"", date=T0, mime_type="video/mp4",
                size=10**6, dc_id=2, attributes=[
                    types.DocumentAttributeVideo(duration=12.0, w=640, h=360),
                    types.DocumentAttributeFilename(file_name="clip.mp4")]))
        if i % 13 == 0:
            kw["edit_date"] = T0 + timedelta(seconds=i * 60 + 30)
        out.append(F.message(i, chat_id, T0 + timedelta(seconds=i * 60), text, **kw))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    entity = F.channel(1001, "Новости", "news")
    msgs = build(args.messages)

    client = F.FakeTelegram([F.FakeChannel(entity, msgs)])
    ents = client._entities(client.by_id[1001])
    for m in msgs:  # what Telethon itself does per message, outside chatlens's cost
        m._finish_init(client, ents, None)
    where = Where(chat=chat_of(entity), source_id="bench", username="news")
    warm = RowBatch(Pseudonymiser(b"k" * 32), "warm")  # one-time imports (pyarrow's pandas shim)
    warm.add(build(1)[0], where)
    warm.tables()
    t, c = time.perf_counter(), time.process_time()
    batch = RowBatch(Pseudonymiser(b"k" * 32), "bench")
    for i, m in enumerate(msgs, 1):
        batch.add(m, where)
        if i % args.batch == 0:
            batch.tables()
            batch = RowBatch(batch.pseudo, "bench")
    batch.tables()
    mapping = args.messages / (time.perf_counter() - t)
    mapping_cpu = args.messages / (time.process_time() - c)

    import asyncio

    async def drain(c: Any) -> int:
        return sum([1 async for _ in c.iter_messages(entity, reverse=True)])

    served = build(args.messages)
    t, c = time.perf_counter(), time.process_time()
    assert asyncio.run(drain(F.FakeTelegram([F.FakeChannel(entity, served)]))) == args.messages
    serving, serving_cpu = time.perf_counter() - t, time.process_time() - c

    fresh = build(args.messages)
    client = F.FakeTelegram([F.FakeChannel(entity, fresh)])
    with tempfile.TemporaryDirectory() as tmp:
        proj = Project.init(Path(tmp) / "p")
        t, c = time.perf_counter(), time.process_time()
        report = collect_telegram(proj, ["news"], CollectOptions(batch=args.batch),
                                  client=client)
        total, cpu = time.perf_counter() - t, time.process_time() - c
        proj.close()
    assert report.channels[0].new == args.messages, report.as_dict()
    result = {"messages": args.messages, "batch": args.batch,
              "mapping_msgs_per_s": round(mapping), "collect_msgs_per_s":
              round(args.messages / total), "target_msgs_per_s": 20_000,
              # per CPU second (all threads): the figure that does not depend on a shared CPU
              "mapping_msgs_per_cpu_s": round(mapping_cpu),
              "collect_msgs_per_cpu_s": round(args.messages / cpu),
              "fake_serving_s": round(serving, 2),
              "chatlens_own_msgs_per_s": round(args.messages / max(total - serving, 1e-9)),
              "chatlens_own_msgs_per_cpu_s": round(args.messages / max(cpu - serving_cpu,
                                                                        1e-9)),
              "note": "fake client in process; collect includes Telethon's own _finish_init, "
                      "chatlens_own leaves the fake client's serving out"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
