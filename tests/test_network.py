"""Forward and reply networks: chats and channels only, from collections and from exports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("telethon", reason="the collect extra is not installed")

from telethon.tl import types

from chatlens import Project
from chatlens.collect import fake as F
from chatlens.collect.api import collect_telegram
from chatlens.collect.runner import CollectOptions
from chatlens.project.network import discover, network_graph, to_csv, to_gexf, to_json

T0 = datetime(2022, 9, 21, 10, 0, tzinfo=UTC)


def fwd(i: int, chat: int, origin: Any, minutes: int) -> Any:
    return F.message(i, chat, T0 + timedelta(minutes=minutes), f"fwd {i}", post=True,
                     fwd_from=types.MessageFwdHeader(date=T0 - timedelta(days=1),
                                                     from_id=origin, channel_post=i))


def build(project: Project, tmp_path: Path) -> None:
    """Two collected channels forwarding from others (and from a person), one export."""
    src_a, src_b = F.channel(3003, "Источник А", "source_a"), F.channel(4004, "Источник Б")
    news = F.FakeChannel(F.channel(1001, "Новости", "news"), [
        fwd(1, 1001, types.PeerChannel(3003), 1), fwd(2, 1001, types.PeerChannel(3003), 5),
        fwd(3, 1001, types.PeerChannel(4004), 7), fwd(4, 1001, types.PeerUser(777), 8),
        fwd(5, 1001, types.PeerChannel(2002), 9)])
    other = F.FakeChannel(F.channel(2002, "Другой", "other"), [
        fwd(1, 2002, types.PeerChannel(3003), 2),
        F.message(2, 2002, T0, "ответ в другой чат", reply_to=types.MessageReplyHeader(
            reply_to_msg_id=1, reply_to_peer_id=types.PeerChannel(1001)))])
    client = F.FakeTelegram([news, other, F.FakeChannel(src_a, []), F.FakeChannel(src_b, [])])
    collect_telegram(project, ["news", "other"], CollectOptions(), client=client)
    export = {"name": "Чат эмигрантов", "type": "private_supergroup", "id": 9009, "messages": [
        {"id": 1, "type": "message", "date": "2022-09-22T10:00:00", "date_unixtime": "1663840800",
         "from": "Анна", "from_id": "user5", "forwarded_from": "Новости", "text": "a",
         "text_entities": []},
        {"id": 2, "type": "message", "date": "2022-09-22T11:00:00", "date_unixtime": "1663844400",
         "from": "Анна", "from_id": "user5", "forwarded_from": "Пётр Иванов", "text": "b",
         "text_entities": []}]}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    project.ingest([path])


def test_forward_edges_are_weighted_dated_and_never_people(project: Project,
                                                           tmp_path: Path) -> None:
    build(project, tmp_path)
    g = network_graph(project.store)
    edges = {(e.source, e.target, e.kind): e for e in g.edges}
    a_news = edges[("telegram:3003", "telegram:1001", "forward")]
    assert a_news.weight == 2 and a_news.first == T0 + timedelta(minutes=1)
    assert a_news.last == T0 + timedelta(minutes=5) and len(a_news.evidence) == 2
    assert edges[("telegram:2002", "telegram:1001", "forward")].weight == 1
    # an export names its origin by title: matched to the collected channel of that title
    assert edges[("telegram:1001", "telegram:9009", "forward")].weight == 1
    assert edges[("telegram:2002", "telegram:1001", "reply")].weight == 1
    assert all("777" not in k and "user" not in k for k in g.nodes)  # no person is a node
    assert "Пётр Иванов" not in json.dumps(to_json(g), ensure_ascii=False)
    assert g.nodes["telegram:3003"].label == "Источник А"
    assert g.nodes["telegram:3003"].username == "source_a"
    assert not g.nodes["telegram:3003"].in_project and g.nodes["telegram:1001"].in_project
    top = g.top_sources()["telegram:1001"]
    assert top[0].source == "telegram:3003"


def test_discover_lists_the_most_forwarded_uncollected_channels(project: Project,
                                                                tmp_path: Path) -> None:
    build(project, tmp_path)
    found = discover(network_graph(project.store), 5)
    assert [d["chat_key"] for d in found] == ["telegram:3003", "telegram:4004"]
    assert found[0]["forwards"] == 3 and found[0]["into"] == 2
    assert found[0]["link"] == "https://t.me/source_a"


def test_gexf_csv_and_json_exports(project: Project, tmp_path: Path) -> None:
    build(project, tmp_path)
    g = network_graph(project.store)
    root = ET.fromstring(to_gexf(g))
    ns = {"g": "http://gexf.net/1.3"}
    assert root.find("g:graph", ns).get("defaultedgetype") == "directed"  # type: ignore[union-attr]
    assert len(root.findall(".//g:node", ns)) == len(g.nodes)
    assert len(root.findall(".//g:edge", ns)) == len(g.edges)
    rows = list(csv.DictReader(io.StringIO(to_csv(g))))
    assert {"source", "target", "kind", "weight", "first", "last"} <= set(rows[0])
    data = to_json(g)
    assert len(data["edges"]) == len(g.edges) and data["nodes"][0]["key"]


def test_an_empty_project_has_an_empty_network(project: Project) -> None:
    g = network_graph(project.store)
    assert g.edges == [] and discover(g, 3) == []
    ET.fromstring(to_gexf(g))


def test_the_network_command_writes_gexf_and_lists_discoveries(project: Project,
                                                                tmp_path: Path) -> None:
    build(project, tmp_path)
    root = project.root
    project.close()
    out = tmp_path / "net.gexf"
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "network", "--format", "gexf",
                          "-o", str(out), "--project", str(root), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["edges"] >= 4 and out.read_text().startswith("<?xml")
    res = subprocess.run([sys.executable, "-m", "chatlens.cli", "network", "--discover", "1",
                          "--project", str(root), "--json"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert [d["chat_key"] for d in json.loads(res.stdout)] == ["telegram:3003"]
    project.store = Project.open(root).store  # for the fixture's close


def test_the_dashboard_network_page_lists_top_sources_and_offers_the_gexf(
        project: Project, tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    from tests.test_web import start

    build(project, tmp_path)
    root = project.root
    project.close()
    server = start(root)
    try:
        html = urllib.request.urlopen(server.url + "/network", timeout=30).read().decode()
        assert "Источник А" in html and "/network.gexf" in html and "/message/" in html
        gexf = urllib.request.urlopen(server.url + "/network.gexf", timeout=30)
        assert "attachment" in gexf.headers["Content-Disposition"]
        assert gexf.read().startswith(b"<?xml")
    finally:
        server.stop()
    project.store = Project.open(root).store
