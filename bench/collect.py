"""chatlens's own cost per collected Telegram message: mapping + storing, no network.

The in-process fake client (:mod:`chatlens.collect.fake`) serves real-shaped
``telethon.tl.types.Message`` objects (text with entities, views, forwards, reactions, replies,
forwards from channels, albums of photos, documents) page by page, finished with Telethon's own
``_finish_init``, as ``iter_messages`` does. Figures (each the best of ``--repeat`` runs):

* mapping: ``RowBatch.add`` + Arrow tables only, messages/s;
* collect: a whole ``collect_telegram`` run into a new project (mapping, originals, the
  ``collected`` table, checkpoints in the same transactions, the final checkpoint), messages/s;
* chatlens's own: the collect run less what the fake client spends serving the same messages
  (its paging and Telethon's own ``_finish_init`` per message, timed alone): what chatlens adds
  per message next to Telegram's delivery; the target;
* baseline, in the same run: the same Arrow tables appended to key-less DuckDB tables in one
  transaction per batch, then one checkpoint (the originals a row each, as chatlens stored
  them before it kept them in compressed blocks), and
  mapping + that append; ``own_vs_baseline`` is chatlens's own time over it.

Usage: python bench/collect.py [--messages 100000] [--batch 5000] [--repeat 3]
Target (issue 15): chatlens's own >= 20,000 messages/s, so chatlens is never the bottleneck
next to Telegram's ~100 messages/s per account.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from chatlens import Project
from chatlens.collect import fake as F
from chatlens.collect.api import collect_telegram
from chatlens.collect.runner import CollectOptions
from chatlens.collect.telegram import RowBatch, Where, chat_of
from chatlens.ingest.rows import Pseudonymiser

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


def _best(repeat: int, run: Callable[[], None]) -> tuple[float, float]:
    """(wall s, CPU s of all threads), each the least of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def _append_floor(tables: list[dict[str, pa.Table]], root: Path) -> None:
    """Append the batches' tables to key-less tables, a transaction each, then checkpoint."""
    import duckdb

    con = duckdb.connect(str(root / "floor.duckdb"))
    con.execute("SET checkpoint_threshold = '4GB'")
    for batch in tables:
        con.execute("BEGIN")
        for name in ("messages", "originals", "collected"):
            con.register("_t", batch[name])
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS FROM _t LIMIT 0")
            con.execute(f"INSERT INTO {name} FROM _t")
            con.unregister("_t")
        con.execute("COMMIT")
    con.execute("CHECKPOINT")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=CollectOptions().batch,
                    help="messages per transaction (the collector's default)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    args = ap.parse_args()
    n = args.messages
    entity = F.channel(1001, "Новости", "news")
    msgs = build(n)
    client = F.FakeTelegram([F.FakeChannel(entity, msgs)])
    ents = client._entities(client.by_id[1001])
    for m in msgs:  # what Telethon itself does per message, outside chatlens's cost
        m._finish_init(client, ents, None)
    where = Where(chat=chat_of(entity), source_id="bench", username="news")
    warm = RowBatch(Pseudonymiser(b"k" * 32), "warm")  # one-time imports (pyarrow's pandas shim)
    warm.add(build(1)[0], where)
    warm.tables()
    tables: list[dict[str, pa.Table]] = []

    def mapping() -> None:
        tables.clear()
        batch = RowBatch(Pseudonymiser(b"k" * 32), "bench")
        for i, m in enumerate(msgs, 1):
            batch.add(m, where)
            if i % args.batch == 0:
                tables.append(batch.tables())
                batch = RowBatch(batch.pseudo, "bench")
        if len(batch):
            tables.append(batch.tables())

    map_s, map_cpu = _best(args.repeat, mapping)

    async def drain(c: Any) -> int:
        return sum([1 async for _ in c.iter_messages(entity, reverse=True)])

    def serving() -> None:
        assert asyncio.run(drain(F.FakeTelegram([F.FakeChannel(entity, msgs)]))) == n

    serve_s, serve_cpu = _best(args.repeat, serving)
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(args.repeat * 2))

        def floor() -> None:
            folder = Path(tmp) / f"floor{next(runs)}"
            folder.mkdir()
            _append_floor(tables, folder)

        floor_s, floor_cpu = _best(args.repeat, floor)

        def collect() -> None:
            proj = Project.init(Path(tmp) / f"p{next(runs)}")
            report = collect_telegram(proj, ["news"], CollectOptions(batch=args.batch),
                                      client=F.FakeTelegram([F.FakeChannel(entity, msgs)]))
            proj.close()
            assert report.channels[0].new == n, report.as_dict()

        total_s, total_cpu = _best(args.repeat, collect)
    own_s, own_cpu = max(total_s - serve_s, 1e-9), max(total_cpu - serve_cpu, 1e-9)
    base_s, base_cpu = map_s + floor_s, map_cpu + floor_cpu
    result = {
        "messages": n, "batch": args.batch, "repeat": args.repeat,
        "mapping_msgs_per_s": round(n / map_s), "collect_msgs_per_s": round(n / total_s),
        "fake_serving_s": round(serve_s, 2),
        "chatlens_own_msgs_per_s": round(n / own_s), "target_msgs_per_s": 20_000,
        "baseline_append_msgs_per_s": round(n / floor_s),
        "baseline_mapping_plus_append_msgs_per_s": round(n / base_s),
        "own_vs_baseline": round(own_s / base_s, 2),
        # per CPU second (all threads): the figures that depend least on a shared CPU
        "mapping_msgs_per_cpu_s": round(n / map_cpu),
        "chatlens_own_msgs_per_cpu_s": round(n / own_cpu),
        "own_vs_baseline_cpu": round(own_cpu / base_cpu, 2),
        "note": "fake client in process; chatlens_own leaves the fake client's serving "
                "(Telethon's own _finish_init included) out",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
