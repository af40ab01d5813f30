"""The dashboard's network page: top sources forwarded into each chat, with evidence, and the
GEXF download (opens in Gephi). Chats and channels only, never people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from chatlens.project import network as net

if TYPE_CHECKING:
    from chatlens.project import Project
    from chatlens.web.app import Web


def routes(web: Web) -> list[Route]:
    def graph() -> net.Graph:
        def compute(p: Project) -> net.Graph:
            return net.network_graph(p.store)
        return web.access.cached("network", compute)

    def page(request: Request) -> HTMLResponse:
        g = graph()
        chats: list[dict[str, Any]] = []
        for target, edges in sorted(g.top_sources(per_chat=10).items(),
                                    key=lambda kv: -sum(e.weight for e in kv[1])):
            chats.append({"node": g.nodes[target], "sources": [
                {"edge": e, "node": g.nodes[e.source]} for e in edges]})
        comments = [e for e in g.edges if e.kind == "comments"]
        return web.render(request, "network.html", chats=chats, comments=comments,
                          nodes=g.nodes, n_nodes=len(g.nodes), n_edges=len(g.edges),
                          discover=net.discover(g, 10))

    def gexf(request: Request) -> Response:
        return Response(net.to_gexf(graph()), media_type="application/gexf+xml",
                        headers={"Content-Disposition":
                                 'attachment; filename="chatlens-network.gexf"'})

    return [Route("/network", page), Route("/network.gexf", gexf)]
