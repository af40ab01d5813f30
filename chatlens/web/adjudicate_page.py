"""Adjudicating coder disagreements on the dashboard: how many are open per measure, one at a
time with every coder's label, and ``POST /api/adjudicate`` to settle one.

Disagreements are read and decisions written in ``labels.sqlite`` only (see
:func:`chatlens.project.labels.disputes` and :func:`chatlens.project.labels.record_decisions`), so
counting and saving work while another process holds DuckDB's writer lock; only the message
text and its context come from the store. A decision is an ``adjudication`` label by the
dashboard's annotator: it wins over the coders' labels in estimates (theirs are kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from chatlens.errors import UsageError
from chatlens.present import messages as queries
from chatlens.project.labels import disputes, record_decisions
from chatlens.store.labels import LabelStore
from chatlens.web.api import _json

if TYPE_CHECKING:
    from chatlens.web.app import Web


def routes(web: Web) -> list[Route]:
    def measure_info(mid: str) -> dict[str, Any]:
        info: dict[str, Any] | None = next(
            (m for m in web.codebook_info()["measures"] if m["id"] == mid), None)
        if info is None:
            raise UsageError(f"No measure {mid!r} in the codebook.")
        return info

    def open_disputes(mid: str) -> list[dict[str, Any]]:
        ls = LabelStore(web.access.root)
        try:
            return disputes(ls, web.codebook_info()["name"], mid)
        finally:
            ls.close()

    def index(request: Request) -> HTMLResponse:
        counts = [{"measure": m, "n": len(open_disputes(m["id"]))}
                  for m in web.codebook_info()["measures"]]
        return web.render(request, "adjudicate_index.html", counts=counts)

    def page(request: Request) -> HTMLResponse:
        info = measure_info(request.path_params["measure"])
        items = open_disputes(info["id"])
        after = request.query_params.get("after") or ""
        # "skip" moves on in uid order and wraps around to the first one
        item = next((i for i in items if i["uid"] > after), items[0] if items else None)
        msg = ctx = None
        if item is not None:
            with web.access.project() as p:
                found = queries.message(p, item["uid"])
                msg = queries.blind(found) if found is not None else None
                ctx = queries.context(p, item["uid"])
        return web.render(request, "adjudicate.html", info=info, item=item, msg=msg, ctx=ctx,
                          left=len(items))

    async def decide(request: Request) -> JSONResponse:
        if web.settings.read_only:
            return JSONResponse({"error": "This dashboard is read-only."}, status_code=403)
        body = await _json(request)
        mid, uid, value = (str(body.get(k, "")) for k in ("measure", "uid", "value"))
        info = measure_info(mid)
        if value not in info["labels"]:
            raise UsageError(f"{value!r} is not a label of {mid}.")
        ls = LabelStore(web.access.root)
        try:
            stored, problems = record_decisions(ls, web.codebook_info()["name"], mid,
                                                info["labels"], {uid: value}, web.settings.who())
            if problems:
                raise UsageError(problems[0])
            remaining = len(disputes(ls, web.codebook_info()["name"], mid))
        finally:
            ls.close()
        return JSONResponse({"ok": True, "uid": uid, "value": value, "stored": stored,
                             "remaining": remaining})

    return [Route("/adjudicate", index), Route("/adjudicate/{measure}", page),
            Route("/api/adjudicate", decide, methods=["POST"])]
