"""Forward and reply networks between chats and channels (never people), and their exports.

Edges are directed from origin to destination: ``forward`` (channel or chat A's posts forwarded
into B, weighted, with first and last date), ``comments`` (a channel's posts commented in its
discussion group) and ``reply`` (messages of A replying to messages in B). Nodes carry each
chat's message and reply volumes. :func:`to_gexf` writes GEXF 1.3 (opens in Gephi),
:func:`to_csv` the edge list, :func:`to_json` both; :func:`discover` ranks the channels most
forwarded into the project that it has not collected (a snowball list, nothing is collected).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from chatlens import __version__
from chatlens.textsafe import csv_safe

KINDS = ("forward", "comments", "reply")
_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(slots=True)
class Node:
    key: str
    label: str
    username: str | None = None
    in_project: bool = False  # the project holds messages of this chat
    chat_type: str | None = None
    messages: int = 0
    replies: int = 0

    @property
    def link(self) -> str | None:
        return f"https://t.me/{self.username}" if self.username else None


@dataclass(slots=True)
class Edge:
    source: str
    target: str
    kind: str
    weight: int
    first: datetime | None
    last: datetime | None
    evidence: list[str] = field(default_factory=list)  # uids of example messages


@dataclass(slots=True)
class Graph:
    nodes: dict[str, Node]
    edges: list[Edge]

    def top_sources(self, kind: str = "forward", per_chat: int = 10) -> dict[str, list[Edge]]:
        """For each chat of the project, its most frequent origins of ``kind``."""
        out: dict[str, list[Edge]] = {}
        for e in sorted(self.edges, key=lambda e: (-e.weight, e.source)):
            if e.kind == kind and self.nodes[e.target].in_project:
                lst = out.setdefault(e.target, [])
                if len(lst) < per_chat:
                    lst.append(e)
        return out


def build_graph(chats: list[dict[str, Any]], peers: list[dict[str, Any]],
                edges: list[dict[str, Any]]) -> Graph:
    """A graph from the rows of :mod:`chatlens.store.network`."""
    nodes: dict[str, Node] = {}
    for p in peers:
        nodes[p["chat_key"]] = Node(p["chat_key"], p["title"] or (
            f"@{p['username']}" if p["username"] else p["chat_key"]), p["username"])
    for c in chats:
        node = nodes.get(c["chat_key"]) or Node(c["chat_key"], c["chat_key"])
        node.label = c["title"] or node.label
        node.in_project = int(c["messages"]) > 0
        node.chat_type = c["chat_type"]
        node.messages, node.replies = int(c["messages"]), int(c["replies"])
        nodes[c["chat_key"]] = node
    out = []
    for e in edges:
        for key in (e["source"], e["target"]):
            nodes.setdefault(key, Node(key, key))
        out.append(Edge(e["source"], e["target"], e["kind"], int(e["weight"]), e["first"],
                        e["last"], list(e["evidence"] or [])))
    return Graph(nodes, out)


def network_graph(store: Any) -> Graph:
    """The project's network (``store``: an open :class:`chatlens.store.Store`)."""
    from chatlens.store import network as q

    return build_graph(q.chat_rows(store), q.peer_rows(store), q.edge_rows(store))


def discover(graph: Graph, n: int) -> list[dict[str, Any]]:
    """The ``n`` channels most forwarded into the project that it holds no messages of."""
    score: dict[str, dict[str, Any]] = {}
    for e in graph.edges:
        src = graph.nodes[e.source]
        if e.kind != "forward" or src.in_project or not graph.nodes[e.target].in_project:
            continue
        s = score.setdefault(e.source, {"chat_key": e.source, "label": src.label,
                                        "link": src.link, "forwards": 0, "into": 0,
                                        "first": e.first, "last": e.last})
        s["forwards"] += e.weight
        s["into"] += 1
        if e.first and (s["first"] is None or e.first < s["first"]):
            s["first"] = e.first
        if e.last and (s["last"] is None or e.last > s["last"]):
            s["last"] = e.last
    return sorted(score.values(), key=lambda s: (-s["forwards"], -s["into"],
                                                 s["chat_key"]))[:n]


def _iso(d: datetime | None) -> str:
    return d.isoformat() if d else ""


def _x(text: Any) -> str:
    return quoteattr(_XML_BAD.sub("", str(text)))


def to_gexf(graph: Graph) -> str:
    """GEXF 1.3: directed, weighted; node and edge attributes for Gephi."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gexf xmlns="http://gexf.net/1.3" version="1.3">',
        f'  <meta><creator>chatlens {__version__}</creator><description>Forward, comment and '
        'reply network between chats and channels</description></meta>',
        '  <graph mode="static" defaultedgetype="directed">',
        '    <attributes class="node">',
        '      <attribute id="username" title="username" type="string"/>',
        '      <attribute id="in_project" title="in_project" type="boolean"/>',
        '      <attribute id="chat_type" title="chat_type" type="string"/>',
        '      <attribute id="messages" title="messages" type="long"/>',
        '      <attribute id="replies" title="replies" type="long"/>',
        '    </attributes>',
        '    <attributes class="edge">',
        '      <attribute id="kind" title="kind" type="string"/>',
        '      <attribute id="first" title="first" type="string"/>',
        '      <attribute id="last" title="last" type="string"/>',
        '    </attributes>',
        '    <nodes>',
    ]
    for n in graph.nodes.values():
        lines.append(
            f"      <node id={_x(n.key)} label={_x(n.label)}><attvalues>"
            f"<attvalue for=\"username\" value={_x(n.username or '')}/>"
            f"<attvalue for=\"in_project\" value=\"{str(n.in_project).lower()}\"/>"
            f"<attvalue for=\"chat_type\" value={_x(n.chat_type or '')}/>"
            f"<attvalue for=\"messages\" value=\"{n.messages}\"/>"
            f"<attvalue for=\"replies\" value=\"{n.replies}\"/></attvalues></node>")
    lines += ["    </nodes>", "    <edges>"]
    for i, e in enumerate(graph.edges):
        lines.append(
            f"      <edge id=\"{i}\" source={_x(e.source)} target={_x(e.target)} "
            f"weight=\"{e.weight}\" label={_x(e.kind)}><attvalues>"
            f"<attvalue for=\"kind\" value={_x(e.kind)}/>"
            f"<attvalue for=\"first\" value={_x(_iso(e.first))}/>"
            f"<attvalue for=\"last\" value={_x(_iso(e.last))}/></attvalues></edge>")
    lines += ["    </edges>", "  </graph>", "</gexf>", ""]
    return "\n".join(lines)


def to_csv(graph: Graph) -> str:
    """One edge per row, labels beside the keys; cells neutralised for spreadsheets."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "source_label", "target", "target_label", "kind", "weight", "first",
                "last"])
    for e in graph.edges:
        w.writerow([csv_safe(e.source), csv_safe(graph.nodes[e.source].label),
                    csv_safe(e.target), csv_safe(graph.nodes[e.target].label), e.kind,
                    e.weight, _iso(e.first), _iso(e.last)])
    return buf.getvalue()


def to_json(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": [asdict(n) | {"link": n.link} for n in graph.nodes.values()],
        "edges": [asdict(e) | {"first": _iso(e.first) or None, "last": _iso(e.last) or None}
                  for e in graph.edges],
    }
