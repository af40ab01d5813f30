"""Collecting Telegram channels: mapping real Telethon objects, and the collector against an
in-process fake client (checkpoints, flood waits, crash and resume, comments, re-collection)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("telethon", reason="the collect extra is not installed")

from click.testing import CliRunner
from telethon.errors import FloodWaitError
from telethon.tl import types

from chatlens import Project
from chatlens.collect import CollectAuthError, CollectError
from chatlens.collect import fake as F
from chatlens.collect.api import collect_telegram
from chatlens.collect.credentials import load_credentials, login, prepare_session
from chatlens.collect.runner import CollectOptions
from chatlens.collect.telegram import RowBatch, Where, chat_of
from chatlens.errors import UsageError
from chatlens.ingest.rows import Pseudonymiser

T0 = datetime(2022, 9, 21, 10, 0, tzinfo=UTC)
CH = 1001


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def posts(n: int, chat_id: int = CH, start: int = 1, **kw: Any) -> list[Any]:
    return [F.message(i, chat_id, at(i), f"post {i}", post=True, views=10 * i, **kw)
            for i in range(start, start + n)]


def one(msg: Any, entity: Any | None = None, post_key: str | None = None,
        users: list[Any] | None = None) -> tuple[dict[str, Any], dict[str, Any], RowBatch]:
    """Map one message through the same path a collection uses; (row, api row, batch)."""
    entity = entity or F.channel(CH, "Новости", "news")
    client = F.FakeTelegram([F.FakeChannel(entity, [msg], users={u.id: u for u in users or []})])
    ents = client._entities(client.by_id[entity.id])
    msg._finish_init(client, ents, None)
    batch = RowBatch(Pseudonymiser(b"k" * 32), "run1")
    batch.add(msg, Where(chat=chat_of(entity), source_id="src", username=entity.username,
                         post_key=post_key))
    tables = batch.tables()
    return (tables["messages"].to_pylist()[0], tables["collected"].to_pylist()[0], batch)


# -- mapping ---------------------------------------------------------------------------------
def test_channel_post_maps_to_a_standard_row_with_the_api_only_fields() -> None:
    msg = F.message(
        7, CH, T0, "Очередь на границе", post=True, views=1500, forwards=12, grouped_id=555,
        edit_date=at(5),
        replies=types.MessageReplies(replies=3, replies_pts=1, comments=True, channel_id=2002,
                                     max_id=40),
        factcheck=types.FactCheck(hash=1, country="DE", text=types.TextWithEntities(
            text="Missing context.", entities=[])))
    row, api, _ = one(msg)
    assert row["chat_key"] == "telegram:1001" and row["message_id"] == "7"
    assert row["ts"] == T0 and row["kind"] == "message" and row["edited"] is True
    assert row["text"] == "Очередь на границе"
    assert row["source_loc"] == "https://t.me/news/7" and row["source_pos"] == 7
    assert row["author_key"] and row["author_key"].startswith("a")
    assert (api["views"], api["forwards"], api["grouped_id"]) == (1500, 12, 555)
    assert (api["replies"], api["replies_max_id"]) == (3, 40)
    assert api["discussion_chat_key"] == "telegram:2002"
    assert api["edit_date"] == at(5) and api["fact_check"] == "Missing context."
    assert json.loads(api["meta"])["fact_check_country"] == "DE"


def test_reactions_are_counts_per_emoji_and_never_who_reacted() -> None:
    msg = F.message(1, CH, T0, "x", reactions=types.MessageReactions(
        results=[types.ReactionCount(reaction=types.ReactionEmoji(emoticon="👍"), count=5),
                 types.ReactionCount(reaction=types.ReactionCustomEmoji(document_id=77), count=2),
                 types.ReactionCount(reaction=types.ReactionPaid(), count=1)],
        recent_reactions=[types.MessagePeerReaction(
            peer_id=types.PeerUser(4242), date=T0,
            reaction=types.ReactionEmoji(emoticon="👍"))]))
    _, api, batch = one(msg)
    assert json.loads(api["reactions"]) == {"👍": 5, "custom:77": 2, "paid": 1}
    assert "4242" not in batch.raw[0]  # the original record does not keep who reacted


def test_the_original_record_is_telethons_without_null_fields() -> None:
    msg = F.message(7, CH, T0, "текст", post=True, views=3, media=types.MessageMediaPhoto(
        photo=types.Photo(id=9, access_hash=1, file_reference=b"\x01\x02", date=T0, dc_id=2,
                          sizes=[types.PhotoSize(type="y", w=10, h=10, size=99)])))
    _, _, batch = one(msg)
    raw = json.loads(batch.raw[0])
    full = json.loads(msg.to_json())  # Telethon's own record of the same message
    assert raw == {k: v for k, v in full.items() if v is not None}
    assert len(raw) < len(full) and raw["media"]["photo"]["file_reference"] == "AQI="


def test_forward_origins_keep_chats_by_id_and_people_only_as_pseudonyms() -> None:
    origin = F.channel(3003, "Источник", "source")
    from_channel = F.message(1, CH, T0, "fwd", fwd_from=types.MessageFwdHeader(
        date=at(-60), from_id=types.PeerChannel(3003), channel_post=99))
    row, api, _batch = one(from_channel)
    assert (api["fwd_kind"], api["fwd_chat_key"], api["fwd_message_id"]) == (
        "channel", "telegram:3003", 99)
    assert api["fwd_date"] == at(-60) and row["forwarded_from"]
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), []),
                             F.FakeChannel(origin, [])])
    from_channel._finish_init(client, client._entities(client.by_id[CH]), None)
    b2 = RowBatch(Pseudonymiser(b"k" * 32), "r")
    b2.add(from_channel, Where(chat_of(F.channel(CH, "Новости", "news")), "src"))
    assert b2.tables()["peers"].to_pylist() == [
        {"chat_key": "telegram:3003", "title": "Источник", "username": "source",
         "kind": "channel"}]

    from_user = F.message(2, CH, T0, "fwd", fwd_from=types.MessageFwdHeader(
        date=at(-1), from_id=types.PeerUser(555)))
    row, api, _ = one(from_user)
    assert api["fwd_kind"] == "user" and api["fwd_chat_key"] is None
    assert api["fwd_message_id"] is None and row["forwarded_from"]
    hidden = F.message(3, CH, T0, "fwd", fwd_from=types.MessageFwdHeader(
        date=at(-1), from_name="Скрытый"))
    row, api, _ = one(hidden)
    assert api["fwd_kind"] == "hidden" and row["forwarded_from"]


def test_replies_forum_topics_and_service_actions() -> None:
    group = F.channel(CH, "Форум", "forum", broadcast=False, forum=True)
    topic = F.service(10, CH, T0, types.MessageActionTopicCreate(title="Границы", icon_color=1))
    row, api, _ = one(topic, group)
    assert row["kind"] == "service" and row["text"] == "Границы" and api["thread_id"] == 10
    assert json.loads(api["meta"])["action"] == "topic_create"
    in_topic = F.message(11, CH, at(1), "вопрос", from_id=types.PeerUser(5),
                         reply_to=types.MessageReplyHeader(reply_to_msg_id=10, forum_topic=True))
    row, api, _ = one(in_topic, group, users=[F.user(5, "Анна")])
    assert api["thread_id"] == 10 and row["reply_to"] == "10"
    reply = F.message(12, CH, at(2), "ответ", from_id=types.PeerUser(6),
                      reply_to=types.MessageReplyHeader(reply_to_msg_id=11, forum_topic=True,
                                                        reply_to_top_id=10))
    row, api, _ = one(reply, group)
    assert (row["reply_to"], api["reply_to_id"], api["thread_id"]) == ("11", 11, 10)
    other = F.message(13, CH, at(3), "x", reply_to=types.MessageReplyHeader(
        reply_to_msg_id=4, reply_to_peer_id=types.PeerChannel(777)))
    row, api, _ = one(other)
    assert row["reply_to"] == "channel777/4" and api["reply_to_chat_key"] == "telegram:777"
    added = F.service(14, CH, at(4), types.MessageActionChatAddUser(users=[31337]))
    row, api, _batch = one(added, group)
    assert row["kind"] == "service" and "31337" not in (api["meta"] or "")
    assert chat_of(group).type == "public_supergroup (forum)"


def test_media_kinds_and_file_metadata_without_download() -> None:
    def doc(*attrs: Any, mime: str = "video/mp4", size: int = 1000) -> Any:
        return types.MessageMediaDocument(document=types.Document(
            id=1, access_hash=2, file_reference=b"", date=T0, mime_type=mime, size=size,
            dc_id=2, attributes=list(attrs)))

    cases = [
        (doc(types.DocumentAttributeVideo(duration=12.0, w=640, h=360),
             types.DocumentAttributeFilename(file_name="clip.mp4")), "video_file"),
        (doc(types.DocumentAttributeVideo(duration=3.0, w=240, h=240, round_message=True)),
         "video_message"),
        (doc(types.DocumentAttributeAudio(duration=4, voice=True), mime="audio/ogg"),
         "voice_message"),
        (doc(types.DocumentAttributeSticker(alt="🙂", stickerset=types.InputStickerSetEmpty())),
         "sticker"),
        (doc(types.DocumentAttributeFilename(file_name="a.pdf"), mime="application/pdf"), "file"),
        (types.MessageMediaPhoto(photo=types.Photo(
            id=1, access_hash=2, file_reference=b"", date=T0, dc_id=2,
            sizes=[types.PhotoSize(type="m", w=320, h=240, size=9000),
                   types.PhotoSize(type="y", w=1280, h=960, size=90000)])), "photo"),
        (types.MessageMediaPoll(poll=types.Poll(id=1, hash=0, question=types.TextWithEntities(
            text="Куда?", entities=[]), answers=[]), results=types.PollResults()), "poll"),
    ]
    for media, kind in cases:
        row, api, _ = one(F.message(1, CH, T0, "", media=media))
        assert (row["kind"], row["media"]) == ("media", kind), kind
    row, api, _ = one(F.message(1, CH, T0, "", media=cases[0][0]))
    assert json.loads(api["meta"]) == {"mime_type": "video/mp4", "size": 1000, "duration": 12.0,
                                       "w": 640, "h": 360, "file_name": "clip.mp4"}
    row, api, _ = one(F.message(1, CH, T0, "", media=cases[5][0]))
    assert json.loads(api["meta"]) == {"w": 1280, "h": 960, "size": 90000}
    page = types.MessageMediaWebPage(webpage=types.WebPage(
        id=1, url="https://example.org/a", display_url="example.org/a", hash=0, title="A"))
    row, api, _ = one(F.message(1, CH, T0, "https://example.org/a", media=page))
    assert row["kind"] == "message" and json.loads(api["meta"])["webpage"]["title"] == "A"


def test_entities_are_sliced_in_utf16_code_units() -> None:
    text = "🇺🇦 жирный ссылка"
    msg = F.message(1, CH, T0, text, entities=[
        types.MessageEntityBold(offset=5, length=6),
        types.MessageEntityTextUrl(offset=12, length=6, url="https://t.me/x")])
    row, _, _ = one(msg)
    assert json.loads(row["entities"]) == [
        {"type": "bold", "text": "жирный"},
        {"type": "text_link", "text": "ссылка", "href": "https://t.me/x"}]


def test_entity_offsets_past_emoji_and_inside_a_surrogate_pair() -> None:
    from chatlens.collect.telegram import _entities

    text = "😀 a🇬🇪b 𝕏c"  # 1 + 1 + 1 + 2 + 1 + 1 + 1 + 1 code points; 2s count double in UTF-16
    wide = text.encode("utf-16-le")

    def utf16(start: int, length: int) -> str:  # Telegram's reading of an offset, by definition
        return wide[2 * start:2 * (start + length)].decode("utf-16-le", "replace")

    spans = [(3, 1), (4, 4), (8, 1), (10, 2), (12, 1), (1, 1), (5, 2), (0, 1), (11, 2), (0, 14),
             (13, 5), (20, 1)]
    got = json.loads(_entities(text, [types.MessageEntityBold(offset=o, length=n)
                                      for o, n in spans]))
    assert [e["text"] for e in got] == [utf16(o, n) for o, n in spans]
    assert [e["text"] for e in got[:5]] == ["a", "🇬🇪", "b", "𝕏", "c"]
    assert got[6]["text"] == "\ufffd\ufffd"  # half of each of two pairs, as Telegram counts


def test_collected_posts_share_uids_and_pseudonyms_with_an_export_of_the_channel(
        project: Project, tmp_path: Path) -> None:
    export = {"name": "Новости", "type": "public_channel", "id": CH, "messages": [
        {"id": i, "type": "message", "date": "2022-09-21T10:00:00",
         "date_unixtime": str(int(at(i).timestamp())), "from": "Новости",
         "from_id": f"channel{CH}", "text": f"post {i}", "text_entities": []}
        for i in (1, 2)]}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    project.ingest([path])
    before = dict(project.store.con.execute(
        "SELECT message_id, author_key FROM messages").fetchall())
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(3))])
    report = collect_telegram(project, ["news"], client=client)
    ch = report.channels[0]
    assert (ch.new, ch.unchanged, ch.read) == (1, 2, 3)  # two deduplicated against the export
    after = dict(project.store.con.execute(
        "SELECT message_id, author_key FROM messages").fetchall())
    assert len(after) == 3 and after["1"] == before["1"] == after["3"]



def test_a_recheck_marks_exported_messages_the_server_no_longer_has(
        project: Project, tmp_path: Path) -> None:
    export = {"name": "Новости", "type": "public_channel", "id": CH, "messages": [
        {"id": i, "type": "message", "date": "2022-09-21T10:00:00",
         "date_unixtime": str(int(at(i).timestamp())), "from": "Новости",
         "from_id": f"channel{CH}", "text": f"post {i}", "text_entities": []}
        for i in (1, 2, 3)]}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    project.ingest([path])
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(3))
    client = F.FakeTelegram([chan])
    del chan.messages[0]  # post 1 was deleted before anything was collected
    run(project, client)
    del chan.messages[0]  # post 2 is deleted after its collection
    ch = run(project, client, recheck=True).channels[0]
    assert ch.deleted == 2
    rows = project.store.con.execute(
        "SELECT message_id, deleted_at IS NOT NULL, views FROM collected ORDER BY 1").fetchall()
    assert rows == [(1, True, None), (2, True, 20), (3, False, 30)]  # one row each
    assert count(project) == 3  # marked, never removed
    assert run(project, client, recheck=True).channels[0].deleted == 0

# -- the collector -------------------------------------------------------------------------
def run(project: Project, client: F.FakeTelegram, targets: list[str] | None = None,
        sleeps: list[float] | None = None, **opts: Any) -> Any:
    async def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)

    opts.setdefault("batch", 100)
    return collect_telegram(project, targets or ["news"], CollectOptions(**opts), client=client,
                            sleep=sleep)


def count(project: Project, sql: str = "SELECT count(*) FROM messages") -> int:
    return int(project.store.con.execute(sql).fetchall()[0][0])


def test_a_rerun_continues_after_the_checkpoint_and_never_duplicates(project: Project) -> None:
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(250))
    client = F.FakeTelegram([chan])
    first = run(project, client).channels[0]
    assert (first.status, first.new, first.high_id) == ("complete", 250, 250)
    chan.messages += posts(30, start=251)
    second = run(project, client).channels[0]
    assert (second.new, second.resumed_from, second.read) == (30, 250, 30)
    last = [kw for name, kw in client.calls if name == "iter_messages"][-1]
    assert last["min_id"] == 250 and last["reverse"] is True
    assert count(project) == 280
    assert project.store.originals().num_rows == 280
    src = project.store.sources()
    assert [(s["format"], s["n_read"], s["n_stored"]) for s in src] == [
        ("telegram-api", 280, 280)]


def test_flood_waits_are_slept_with_backoff_logged_and_lose_nothing(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(350))])
    client.flood_at = {3: 20, 4: 20}  # page 1 is get_entity; two waits in a row, then fine
    sleeps: list[float] = []
    with caplog.at_level("WARNING", logger="chatlens.collect"):
        ch = run(project, client, sleeps=sleeps).channels[0]
    assert ch.status == "complete" and ch.new == 350 and count(project) == 350
    assert sleeps[0] == 20 and sleeps[1] > 20  # the repeated wait backs off
    assert ch.flood_waits == 2 and ch.waited == sum(sleeps)
    assert sum("flood wait" in r.getMessage() for r in caplog.records) == 2


def test_a_wait_beyond_max_wait_stops_that_channel_resumably_and_moves_on(
        project: Project) -> None:
    a = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(250))
    b = F.FakeChannel(F.channel(2002, "Другой", "other"), posts(50, chat_id=2002))
    client = F.FakeTelegram([a, b])
    client.flood_at = {3: 3600}
    report = run(project, client, ["news", "other"], max_wait=600)
    first, second = report.channels
    assert first.status == "stopped" and "3600" in (first.error or "")
    assert first.new == 100 and second.status == "complete" and second.new == 50
    again = run(project, client, ["news"]).channels[0]
    assert (again.status, again.resumed_from, again.new) == ("complete", 100, 150)
    assert count(project) == 300


def test_a_dropped_connection_keeps_what_was_read_and_a_rerun_completes(
        project: Project) -> None:
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(300))])
    client.fail_after = 250
    ch = run(project, client, batch=100).channels[0]
    assert ch.status == "failed" and "ConnectionError" in (ch.error or "")
    assert count(project) == 250  # the partial batch was committed with its checkpoint
    again = run(project, client).channels[0]
    assert again.resumed_from == 250 and again.new == 50 and count(project) == 300
    assert count(project, "SELECT count(DISTINCT uid) FROM messages") == 300


def test_a_killed_process_leaves_only_whole_batches(project: Project) -> None:
    class Killed(BaseException):
        pass

    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(300))])
    original = client._page
    calls = {"n": 0}

    async def page() -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed
        await original()

    client._page = page  # type: ignore[method-assign]
    with pytest.raises(Killed):
        run(project, client)
    stored = count(project)
    point = project.store.con.execute(
        "SELECT high_id FROM collect_state WHERE thread = 0").fetchall()[0][0]
    assert stored == point == 200
    client._page = original  # type: ignore[method-assign]
    assert run(project, client).channels[0].new == 100 and count(project) == 300


def test_a_batch_spans_pages_and_commits_at_batch_messages_or_after_commit_s(
        project: Project) -> None:
    commits: list[int] = []  # messages read so far, at each committed batch

    def progress(target: str, read: int, phase: str) -> None:
        commits.append(read)

    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(250))
    client = F.FakeTelegram([chan])
    collect_telegram(project, ["news"], CollectOptions(batch=120, commit_s=3600),
                     client=client, progress=progress)
    assert commits == [120, 240, 250]  # pages of 100, batches across them
    assert client.pages == 4  # get_entity, then 3 pages: no request per batch
    chan.messages += posts(5, start=251)
    commits.clear()
    ch = collect_telegram(project, ["news"], CollectOptions(batch=10**6, commit_s=0),
                          client=client, progress=progress).channels[0]
    assert commits == [1, 2, 3, 4, 5] and ch.new == 5  # slow pace: each read, committed
    assert count(project) == count(project, "SELECT count(DISTINCT uid) FROM messages") == 255


_KILLED_MID_BATCH = """
import os, sys
from datetime import UTC, datetime, timedelta
from chatlens import Project
from chatlens.collect import fake as F
from chatlens.collect.api import collect_telegram
from chatlens.collect.runner import CollectOptions

t0 = datetime(2022, 9, 21, 10, 0, tzinfo=UTC)
msgs = [F.message(i, 1001, t0 + timedelta(minutes=i), f"post {i}", post=True, views=i)
        for i in range(1, 901)]
client = F.FakeTelegram([F.FakeChannel(F.channel(1001, "Новости", "news"), msgs)])
page = client._page

async def killing_page():
    if client.pages == 8:  # mid-batch: 700 read, batches of 300 (the third one third full)
        os._exit(9)  # as kill -9: no flush, no rollback, no checkpoint of the database
    await page()

client._page = killing_page
collect_telegram(Project.open(sys.argv[1]), ["news"], CollectOptions(batch=300, commit_s=3600),
                 client=client)
"""


@pytest.mark.slow
def test_a_process_killed_mid_batch_keeps_whole_batches_and_the_rerun_equals_one_run(
        tmp_path: Path) -> None:
    import subprocess

    root = tmp_path / "killed"
    Project.init(root).close()
    res = subprocess.run([sys.executable, "-c", _KILLED_MID_BATCH, str(root)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 9, res.stderr
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"),
                         [F.message(i, CH, at(i), f"post {i}", post=True, views=i)
                          for i in range(1, 901)])
    killed = Project.open(root)
    try:
        stored = count(killed)
        point = killed.store.con.execute("SELECT high_id FROM collect_state").fetchall()
        # whole batches with their checkpoint (the second one may not have been written yet)
        assert stored in (300, 600) and point == [(stored,)]
        again = run(killed, F.FakeTelegram([chan]), batch=300).channels[0]
        assert (again.resumed_from, again.new) == (stored, 900 - stored)
        rows = "SELECT uid, text, source_pos FROM messages ORDER BY uid"
        after = killed.store.con.execute(rows).fetchall()
        n_orig = killed.store.originals().num_rows
        n_api = count(killed, "SELECT count(*) FROM collected")
        src = [(s["n_read"], s["n_stored"], s["n_duplicate"]) for s in killed.store.sources()]
    finally:
        killed.close()
    whole = Project.init(tmp_path / "whole")
    try:
        run(whole, F.FakeTelegram([chan]), batch=300)
        assert after == whole.store.con.execute(rows).fetchall()
        assert n_orig == n_api == 900 and src == [(900, 900, 0)]
    finally:
        whole.close()


def _with_comments() -> tuple[F.FakeChannel, Any]:
    group = F.channel(2002, "Новости — чат", "news_chat", broadcast=False)
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), [], discussion=group)
    for i in (1, 2, 3):
        n = 2 if i != 3 else 0
        chan.messages.append(F.message(
            i, CH, at(i), f"post {i}", post=True,
            replies=types.MessageReplies(replies=n, replies_pts=1, comments=True,
                                         channel_id=2002, max_id=100 + 10 * i if n else None)))
        chan.comments[i] = [F.message(
            100 + 10 * i - k, 2002, at(i + 1), f"comment {k} on {i}",
            from_id=types.PeerUser(50 + k),
            reply_to=types.MessageReplyHeader(reply_to_msg_id=90 + i, reply_to_top_id=90 + i))
            for k in range(n)]
    return chan, group


def test_comments_are_messages_of_the_discussion_chat_with_thread_ids(
        project: Project) -> None:
    chan, _ = _with_comments()
    client = F.FakeTelegram([chan])
    ch = run(project, client, comments=True).channels[0]
    assert ch.discussion_chat_key == "telegram:2002"
    assert (ch.comments_new, ch.threads) == (4, 2)  # the post without comments is not asked
    rows = project.store.con.execute(
        "SELECT m.chat_key, c.thread_id, c.post_key, m.source_loc FROM messages m "
        "JOIN collected c USING (uid) WHERE c.post_key IS NOT NULL ORDER BY m.message_id"
    ).fetchall()
    assert rows[0] == ("telegram:2002", 91, "telegram:1001/1",
                       "https://t.me/news/1?comment=109")
    group_point = project.store.con.execute(
        "SELECT high_id FROM collect_state WHERE thread = -1").fetchall()
    assert group_point == [(120,)]
    # a new comment on an old post: a plain rerun reads the group after its checkpoint only
    chan.comments[2].append(F.message(121, 2002, at(9), "new", from_id=types.PeerUser(7),
                                      reply_to=types.MessageReplyHeader(reply_to_msg_id=92)))
    before = len(client.calls)
    again = run(project, client, comments=True).channels[0]
    assert (again.read, again.comments_new, again.threads) == (0, 1, 1)
    asked = [kw for name, kw in client.calls[before:] if name == "iter_messages"]
    assert [(kw["entity"].id, kw["min_id"], kw["reply_to"]) for kw in asked[1:]] == [
        (2002, 120, None)]
    post = project.store.con.execute(
        "SELECT c.post_key, c.thread_id FROM collected c JOIN messages m USING (uid) "
        "WHERE m.chat_key = 'telegram:2002' AND m.message_id = '121'").fetchall()
    assert post == [("telegram:1001/2", 92)]
    before = len(client.calls)
    run(project, client, comments=True, recheck=True)
    asked = [kw for name, kw in client.calls[before:] if name == "iter_messages"
             and kw["reply_to"] is not None]
    assert {kw["reply_to"] for kw in asked} == {1, 2}  # recheck re-reads every thread
    assert count(project, "SELECT count(*) FROM messages WHERE chat_key = 'telegram:2002'") == 5


def test_a_first_comment_on_a_post_older_than_the_group_checkpoint_finds_its_post(
        project: Project) -> None:
    chan, _ = _with_comments()
    client = F.FakeTelegram([chan])
    run(project, client, comments=True)  # group checkpoint 120; post 3 had no comments
    # post 3's copy in the group (id 93) is older than the checkpoint: iter_messages after
    # it never serves it, so the thread's root is looked up once with get_messages(ids=)
    chan.comments[3] = [F.message(
        121 + k, 2002, at(9 + k), f"late {k}", from_id=types.PeerUser(60 + k),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=93, reply_to_top_id=93))
        for k in range(2)]
    chan.chatter.append(F.message(  # a reply to a root the group no longer has
        123, 2002, at(12), "lost", from_id=types.PeerUser(70),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=88)))
    before = len(client.calls)
    again = run(project, client, comments=True).channels[0]
    lookups = [kw["ids"] for name, kw in client.calls[before:] if name == "get_messages"]
    assert sorted(lookups) == [[88], [93]]  # once per unknown root, not once per comment
    assert (again.comments_new, again.threads, again.skipped) == (2, 1, 1)
    rows = project.store.con.execute(
        "SELECT m.message_id, c.post_key, c.thread_id, m.source_loc FROM collected c "
        "JOIN messages m USING (uid) WHERE m.chat_key = 'telegram:2002' "
        "AND c.post_key = 'telegram:1001/3' ORDER BY 1").fetchall()
    assert rows == [("121", "telegram:1001/3", 93, "https://t.me/news/3?comment=121"),
                    ("122", "telegram:1001/3", 93, "https://t.me/news/3?comment=122")]
    assert count(project, "SELECT count(*) FROM messages WHERE message_id = '123'") == 0


def test_since_and_until_bound_comments_read_through_the_discussion_group(
        project: Project) -> None:
    group = F.channel(2002, "Новости — чат", "news_chat", broadcast=False)
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), [], discussion=group)
    for i in (1, 2, 3):  # posts at minutes 10, 20, 30; two comments each, 5 minutes later
        chan.messages.append(F.message(
            i, CH, at(10 * i), f"post {i}", post=True,
            replies=types.MessageReplies(replies=2, replies_pts=1, comments=True,
                                         channel_id=2002, max_id=100 + 10 * i)))
        chan.comments[i] = [F.message(
            100 + 10 * i - k, 2002, at(10 * i + 5), f"comment {k} on {i}",
            from_id=types.PeerUser(50 + k),
            reply_to=types.MessageReplyHeader(reply_to_msg_id=90 + i, reply_to_top_id=90 + i))
            for k in range(2)]
    chan.comments[1].append(F.message(  # a late comment on post 1, inside the date range
        131, 2002, at(25), "late on 1", from_id=types.PeerUser(9),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=91, reply_to_top_id=91)))
    client = F.FakeTelegram([chan])
    ch = run(project, client, comments=True, since=at(15), until=at(25)).channels[0]
    assert (ch.read, ch.comments_new, ch.threads) == (1, 2, 1)  # post 2 and its comments
    group_call = next(kw for name, kw in client.calls
                      if name == "iter_messages" and kw["entity"].id == 2002)
    assert group_call["offset_date"] == at(15) and group_call["min_id"] == 0
    # post 1's root is older than --since, so the late comment's post is looked up and its
    # date, outside the range, leaves the comment out
    assert [kw["ids"] for name, kw in client.calls if name == "get_messages"] == [[91]]
    keys = project.store.con.execute(
        "SELECT DISTINCT c.post_key FROM collected c JOIN messages m USING (uid) "
        "WHERE m.chat_key = 'telegram:2002'").fetchall()
    assert keys == [("telegram:1001/2",)]


def test_recheck_keeps_earlier_versions_and_marks_disappeared_messages(
        project: Project) -> None:
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(5))
    client = F.FakeTelegram([chan])
    run(project, client)
    chan.messages[1] = F.message(2, CH, at(2), "post 2, corrected", post=True, edit_date=at(30))
    del chan.messages[3]  # post 4 deleted on the server
    plain = run(project, client).channels[0]
    assert plain.read == 0  # a plain rerun only looks for new messages
    ch = run(project, client, recheck=True).channels[0]
    assert (ch.edited, ch.unchanged, ch.deleted, ch.new) == (1, 3, 1, 0)
    text = project.store.con.execute(
        "SELECT text, edited FROM messages WHERE message_id = '2'").fetchall()[0]
    assert text == ("post 2, corrected", True)
    old = project.store.con.execute("SELECT text, raw FROM message_versions").fetchall()
    assert len(old) == 1 and old[0][0] == "post 2" and '"post 2"' in old[0][1]
    gone = project.store.con.execute(
        "SELECT m.message_id, m.text FROM collected c JOIN messages m USING (uid) "
        "WHERE c.deleted_at IS NOT NULL").fetchall()
    assert gone == [("4", "post 4")]  # marked, not lost
    assert count(project) == 5 and project.store.originals().num_rows == 5
    again = run(project, client, recheck=True).channels[0]
    assert (again.edited, again.deleted) == (0, 0)


def test_forgetting_a_collected_chat_clears_its_api_rows_and_earlier_versions(
        project: Project) -> None:
    from chatlens.project.forget import forget

    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(150))
    client = F.FakeTelegram([chan])
    run(project, client)
    chan.messages[1] = F.message(2, CH, at(2), "post 2, corrected", post=True, edit_date=at(30))
    run(project, client, recheck=True)
    assert count(project, "SELECT count(*) FROM message_versions") == 1
    report = forget(project, chat="telegram:1001")
    assert report.deleted["collected"] == 150 and report.deleted["message_versions"] == 1
    for table in ("messages", "collected", "message_versions"):
        assert count(project, f"SELECT count(*) FROM {table}") == 0
    # collected back (a full re-read): one API row per message, none left over or doubled
    again = run(project, client, recheck=True).channels[0]
    assert again.new == 150 and count(project) == 150
    assert count(project, "SELECT count(DISTINCT uid) FROM collected") == count(
        project, "SELECT count(*) FROM collected") == 150
    assert count(project, "SELECT count(*) FROM collected c ANTI JOIN messages m "
                          "USING (uid)") == 0
    # an erasure by an older chatlens left the API rows behind: the next collection drops them
    project.store.con.execute("DELETE FROM messages WHERE message_id::INT > 100")
    assert run(project, client, recheck=True).channels[0].new == 50  # a batch of new ones
    assert count(project, "SELECT count(*) FROM collected WHERE message_id > 100") == 50


def test_a_collected_table_made_with_its_old_primary_key_still_takes_rechecks(
        project: Project) -> None:
    from chatlens.store import collect as cstore

    project.store.con.execute(cstore.COLLECT_DDL.replace(
        "uid VARCHAR NOT NULL, chat_key", "uid VARCHAR PRIMARY KEY, chat_key", 1))
    chan = F.FakeChannel(F.channel(CH, "Новости", "news"), posts(250))
    client = F.FakeTelegram([chan])
    run(project, client)
    chan.messages[5] = F.message(6, CH, at(6), "post 6, corrected", post=True, views=1)
    del chan.messages[10]
    ch = run(project, client, recheck=True).channels[0]
    assert (ch.status, ch.edited, ch.unchanged, ch.deleted) == ("complete", 1, 248, 1)
    assert project.store.con.execute(
        "SELECT count(*), count(DISTINCT uid), count(deleted_at) FROM collected").fetchall() == [
        (250, 250, 1)]


def test_since_and_until_bound_the_range(project: Project) -> None:
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(100))])
    ch = run(project, client, since=at(20), until=at(40)).channels[0]
    assert ch.new == 19  # minutes 21..39 (offset_date is exclusive, until too)
    call = next(kw for name, kw in client.calls if name == "iter_messages")
    assert call["offset_date"] == at(20)
    assert count(project, "SELECT min(message_id::INT) FROM messages") == 21


def test_takeout_wraps_the_whole_run(project: Project) -> None:
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(10))])
    ch = run(project, client, takeout=True).channels[0]
    assert client.takeouts == 1 and ch.new == 10
    call = next(kw for name, kw in client.calls if name == "iter_messages")
    assert call["wait_time"] == 0


def test_unknown_channels_fail_alone(project: Project) -> None:
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(3))])
    report = run(project, client, ["nosuch", "https://t.me/news"])
    assert [c.status for c in report.channels] == ["failed", "complete"]
    assert "nosuch" in (report.channels[0].error or "")


def test_media_are_downloaded_only_when_asked_and_under_the_cap(project: Project,
                                                                tmp_path: Path) -> None:
    def doc(size: int) -> Any:
        return types.MessageMediaDocument(document=types.Document(
            id=size, access_hash=2, file_reference=b"", date=T0, mime_type="video/mp4",
            size=size, dc_id=2, attributes=[]))

    msgs = [F.message(1, CH, T0, "", media=doc(100)), F.message(2, CH, T0, "", media=doc(10**9))]
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), msgs)])
    ch = run(project, client, media_dir=tmp_path / "media", media_max_bytes=1000).channels[0]
    assert ch.media_saved == 1 and (tmp_path / "media" / str(CH) / "1.bin").exists()
    meta = [json.loads(m) for (m,) in project.store.con.execute(
        "SELECT meta FROM collected ORDER BY message_id").fetchall()]
    assert meta[0]["file_path"].endswith("1.bin") and meta[1]["download"].startswith("skipped")


def test_the_run_manifest_records_channels_ranges_and_counts_never_credentials(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATLENS_TG_API_HASH", "deadbeefhash")
    client = F.FakeTelegram([F.FakeChannel(F.channel(CH, "Новости", "news"), posts(3))])
    run(project, client, since=at(0))
    manifest = project.store.runs(1)[0]
    assert manifest["command"] == "collect telegram" and manifest["status"] == "complete"
    text = json.dumps(manifest, default=str)
    assert "deadbeefhash" not in text and "session" not in text
    data = json.loads(manifest["manifest"])
    assert data["params"]["channels"] == ["news"] and data["params"]["since"].startswith("2022")
    assert data["channels"][0]["new"] == 3 and data["totals"]["new"] == 3


# -- credentials and login -----------------------------------------------------------------
def test_credentials_come_from_the_environment_or_a_config_outside_the_project(
        tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    env = {"CHATLENS_TG_API_ID": "123", "CHATLENS_TG_API_HASH": "abc",
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    creds = load_credentials(proj, env=env)
    assert (creds.api_id, creds.api_hash) == (123, "abc")
    assert creds.session == tmp_path / "cfg" / "chatlens" / "telegram.session"
    assert "abc" not in repr(creds)
    conf = tmp_path / "tg.toml"
    conf.write_text('api_id = 9\napi_hash = "h"\nsession = "~/x/my"\n', encoding="utf-8")
    creds = load_credentials(proj, config=conf, env={})
    assert creds.api_id == 9 and creds.session.name == "my.session"
    inside = proj / "tg.toml"
    inside.write_text(conf.read_text(), encoding="utf-8")
    with pytest.raises(UsageError, match="inside the project"):
        load_credentials(proj, config=inside, env={})
    with pytest.raises(UsageError, match="inside the project"):
        load_credentials(proj, session=proj / "s.session", env=env)
    with pytest.raises(CollectError, match=r"my\.telegram\.org"):
        load_credentials(proj, config=tmp_path / "none.toml", env={})


def test_the_session_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "telegram.session"
    prepare_session(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.chmod(0o644)
    prepare_session(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_without_a_session_a_non_interactive_run_fails_clearly(project: Project) -> None:
    client = F.FakeTelegram([], authorized=False)
    with pytest.raises(CollectAuthError, match="interactive terminal"):
        asyncio.run(login(client, Path("/x/telegram.session"), interactive=False))
    with pytest.raises(CollectAuthError):
        collect_telegram(project, ["news"], client=client, interactive=False)
    assert project.store.runs(1)[0]["status"] == "failed"


def test_the_cli_exits_2_with_one_line_without_credentials(tmp_path: Path) -> None:
    import subprocess

    Project.init(tmp_path / "proj").close()
    root = tmp_path / "proj"

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATLENS_TG")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "collect", "telegram", "news",
                          "--project", str(root)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "CHATLENS_TG_API_ID" in lines[0]
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "collect", "telegram", "news",
                          "--since", "yesterday", "--project", str(root)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2 and "--since" in res.stderr


def test_a_missing_telethon_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatlens.collect.errors import require_telethon

    monkeypatch.setitem(sys.modules, "telethon", None)
    with pytest.raises(CollectError, match=r"chatlens\[collect\]"):
        require_telethon()


def test_flood_wait_error_is_telethons_own() -> None:
    exc = FloodWaitError(request=None, capture=42)
    assert exc.seconds == 42
    assert CliRunner  # the CLI runner import stays for the network tests' style
