"""Annotation pages and the state-changing API: labels, skip, undo, Ctrl+Enter corrections.

Labels are written to ``labels.sqlite`` only (never DuckDB), so they can be saved while another
process holds the store's writer lock. A correction is a label with origin ``correction`` and
sample kind ``none``: it feeds training, never the audit sample behind estimates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from chatlens.errors import UsageError
from chatlens.present import messages as queries
from chatlens.store.labels import LabelStore, NewLabel

if TYPE_CHECKING:
    from chatlens.web.app import Web

MAX_COMMENT = 2000


def _sample(labels: LabelStore, sample_id: str) -> dict[str, Any]:
    for s in labels.samples():
        if s["sample_id"] == sample_id:
            return s
    raise UsageError(f"No sample {sample_id!r} in this project.")


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise UsageError("The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise UsageError("The request body must be a JSON object.")
    return body


def routes(web: Web) -> list[Route]:
    root = web.access.root

    def labels() -> LabelStore:
        return LabelStore(root)

    def writable() -> JSONResponse | None:
        if web.settings.read_only:
            return JSONResponse({"error": "This dashboard is read-only."}, status_code=403)
        return None

    def annotate_index(request: Request) -> HTMLResponse:
        ls = labels()
        try:
            samples = ls.samples()
            who = web.settings.who()
            for s in samples:
                s["mine"] = len(ls.done_uids(s["sample_id"], who))
        finally:
            ls.close()
        return web.render(request, "annotate_index.html", samples=samples)

    def annotate(request: Request) -> HTMLResponse:
        sample_id = request.path_params["sample_id"]
        who = web.settings.who()
        ls = labels()
        try:
            sample = _sample(ls, sample_id)
            items = ls.sample_items(sample_id)
            done = ls.done_uids(sample_id, who)
        finally:
            ls.close()
        todo = [i for i in items if i["uid"] not in done]
        info = next((m for m in web.codebook_info()["measures"]
                     if m["id"] == sample["measure"]), None)
        item = ctx = None
        if todo:
            with web.access.project() as p:
                item = queries.message(p, todo[0]["uid"])
                item = queries.blind(item) if item is not None else None
                ctx = queries.context(p, todo[0]["uid"])
        return web.render(request, "annotate.html", sample=sample, info=info, item=item,
                          ctx=ctx, done=len(items) - len(todo), total=len(items))

    async def label(request: Request) -> JSONResponse:
        if (denied := writable()) is not None:
            return denied
        body = await _json(request)
        sample_id, uid = str(body.get("sample_id", "")), str(body.get("uid", ""))
        skip = bool(body.get("skip"))
        value = None if skip else body.get("value")
        ls = labels()
        try:
            sample = _sample(ls, sample_id)
            if uid not in {i["uid"] for i in ls.sample_items(sample_id)}:
                raise UsageError("That message is not in this sample.")
            info = next(m for m in web.codebook_info()["measures"]
                        if m["id"] == sample["measure"])
            if not skip and value not in info["labels"]:
                raise UsageError(f"{value!r} is not a label of {sample['measure']}.")
            ls.add_labels([NewLabel(
                uid=uid, codebook=sample["codebook"], measure=sample["measure"],
                value=value, annotator=web.settings.who(), origin="annotate",
                sample_id=sample_id, sample_kind=sample["kind"],
                status="skipped" if skip else "active")])
        finally:
            ls.close()
        return JSONResponse({"ok": True, "uid": uid, "value": value, "skipped": skip})

    async def undo(request: Request) -> JSONResponse:
        if (denied := writable()) is not None:
            return denied
        body = await _json(request)
        ls = labels()
        try:
            undone = ls.undo_last(web.settings.who(), str(body.get("sample_id", "")))
        finally:
            ls.close()
        return JSONResponse({"ok": undone is not None, "undone": undone})

    async def correction(request: Request) -> JSONResponse:
        if (denied := writable()) is not None:
            return denied
        body = await _json(request)
        uid, measure, value = (str(body.get(k, "")) for k in ("uid", "measure", "value"))
        info = next((m for m in web.codebook_info()["measures"] if m["id"] == measure), None)
        if info is None or value not in info["labels"]:
            raise UsageError("Choose a measure of the codebook and one of its labels.")
        span = body.get("span")
        span_t: tuple[int, int] | None = None
        if isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span):
            span_t = (min(span), max(span))
        comment = str(body.get("comment") or "")[:MAX_COMMENT] or None
        with web.access.project() as p:
            if queries.message(p, uid) is None:
                raise UsageError(f"No message {uid!r} in this project.")
        ls = labels()
        try:
            ls.add_labels([NewLabel(
                uid=uid, codebook=web.codebook_info()["name"], measure=measure, value=value,
                annotator=web.settings.who(), origin="correction", sample_id=None,
                sample_kind="none", span=span_t, comment=comment)])
        finally:
            ls.close()
        return JSONResponse({"ok": True})

    return [Route("/annotate", annotate_index), Route("/annotate/{sample_id}", annotate),
            Route("/api/label", label, methods=["POST"]),
            Route("/api/undo", undo, methods=["POST"]),
            Route("/api/correction", correction, methods=["POST"])]
