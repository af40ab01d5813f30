"""The dashboard's pages (GET): overview, measures, claims, evidence, message, topics."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from chatlens.errors import UsageError
from chatlens.present import messages as queries
from chatlens.present.charts import (
    band_chart,
    interval_bars,
    lines_chart,
    small_note,
    topic_charts,
)
from chatlens.present.estimates import band_points, dated, estimates, warnings_of
from chatlens.store import views
from chatlens.store.frames import time_bucket
from chatlens.store.views import EvidenceQuery
from chatlens.textsafe import csv_safe, mask_pii

if TYPE_CHECKING:
    from chatlens.project import Project
    from chatlens.web.app import Web

CSV_LIMIT = 1_000_000
SEARCH_PAGE = 50  # messages per search page


def _page_number(raw: str | None) -> int:
    """A 1-based page number from the query string; anything else is page 1."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 5:
        return 1  # "²", "-3", a 5000-digit number, …
    return max(1, int(raw))


def evidence_query(request: Request) -> EvidenceQuery:
    qp = request.query_params
    measure, value = qp.get("measure"), qp.get("value")
    if not measure or not value:
        raise UsageError("Choose a measure and a value (measure=…&value=…).")
    where = []
    for w in qp.getlist("where"):
        m, sep, v = w.partition("=")
        if not sep:
            raise UsageError(f"where= expects MEASURE=VALUE, not {w!r}.")
        where.append((m, v))
    for key in ("since", "until"):
        try:
            if qp.get(key):
                date.fromisoformat(qp[key])
        except ValueError:
            raise UsageError(f"{key}= must be a date like 2022-09-21, not {qp[key]!r}.") \
                from None
    return EvidenceQuery(measure, value, qp.get("group") or None,
                                 qp.get("since") or None, qp.get("until") or None, where)


def routes(web: Web) -> list[Route]:
    def overview(request: Request) -> HTMLResponse:
        data = web.access.cached("overview", queries.overview)
        series: dict[str, list[tuple[str, float]]] = {"total": []}
        totals: dict[str, float] = {}
        titles = {c["chat_key"]: c["title"] or c["chat_key"] for c in data["chats"]}
        for r in data["over_time"]:
            totals[r["t"]] = totals.get(r["t"], 0) + r["n"]
            series.setdefault(titles.get(r["chat_key"], r["chat_key"]), []).append(
                (r["t"], r["n"]))
        series["total"] = sorted(totals.items())
        chart = lines_chart(series, f"Messages per {data['bucket']}, total and per chat")
        return web.render(request, "overview.html", data=data, chart=chart)

    def measures(request: Request) -> HTMLResponse:
        info = web.codebook_info()

        def compute(p: Project) -> list[dict[str, Any]]:
            out = []
            for m in info["measures"]:
                try:
                    rows = estimates(p, m["id"])
                    out.append({"measure": m, "rows": [r.as_dict() for r in rows],
                                "warnings": warnings_of(rows), "error": None})
                except Exception as exc:  # one measure failing must not hide the others
                    out.append({"measure": m, "rows": [], "warnings": [], "error": str(exc)})
            return out
        data = web.access.cached("measures", compute, True)
        return web.render(request, "measures.html", items=data)

    def measure(request: Request) -> HTMLResponse:
        mid = request.path_params["measure"]
        info = next((m for m in web.codebook_info()["measures"] if m["id"] == mid), None)
        if info is None:
            raise UsageError(f"No measure {mid!r} in the codebook.")
        value = request.query_params.get("value") or (
            info["positive"] if info["type"] == "binary" else info["labels"][0])
        if value not in info["labels"]:
            raise UsageError(f"{value!r} is not a label of {mid}.")

        def compute(p: Project) -> dict[str, Any]:
            bucket = time_bucket(p.store)
            overall = estimates(p, mid, value=value)
            by_time = estimates(p, mid, by=bucket, value=value)
            by_chat = estimates(p, mid, by="chat", value=value)
            time, undated = dated(by_time)
            return {"overall": overall[0], "time": time, "undated": undated, "chat": by_chat,
                    "warnings": warnings_of(overall, by_time, by_chat), "bucket": bucket,
                    "titles": {c["chat_key"]: p.masker().shown(c["chat_key"], c["title"])
                               for c in p.store.chats()},
                    "shown_keys": {c["chat_key"]: p.masker().chat_key(c["chat_key"])
                                   for c in p.store.chats()}}
        d = web.access.cached("measure", compute, True, mid, value)
        overall = d["overall"]
        time_chart = chat_chart = time_note = chat_note = None
        if overall.corrected:  # no human labels: no interval chart of the naive figure
            time_points = band_points(d["time"])
            time_chart = band_chart(time_points, f"{mid}={value} per {d['bucket']}",
                                    overall.method)
            time_note = small_note(time_points, d["bucket"])
            chat_points = band_points(d["chat"], d["titles"])
            chat_chart = interval_bars(chat_points, f"{mid}={value} by chat")
            chat_note = small_note(chat_points, "chat")
        return web.render(request, "measure.html", info=info, value=value, d=d,
                          time_chart=time_chart, chat_chart=chat_chart, time_note=time_note,
                          chat_note=chat_note)

    def claims(request: Request) -> HTMLResponse:
        from chatlens.project.claims import check_claims

        path = web.settings.claims or "builtin:exodus-2022"
        try:
            def checked(p: Project) -> dict[str, Any]:
                found = check_claims(p, path)
                titles = {c["chat_key"]: c["title"] for c in p.store.chats()}
                for c in found.get("results", []):
                    p.masker().groups(c.get("estimates", []), titles)
                return found
            result = web.access.cached("claims", checked, True)
            error = None
        except UsageError as exc:
            result, error = {"results": []}, str(exc)
        return web.render(request, "claims.html", result=result, error=error, claims_path=path)

    def evidence(request: Request) -> HTMLResponse:
        qp = request.query_params
        if not qp.get("measure"):
            return web.render(request, "evidence.html", q=None, rows=[], next_after=None,
                              total=None, qs="")
        q = evidence_query(request)
        with web.access.project() as p:
            rows, next_after = queries.evidence_page(p, q, qp.get("after") or None)
        total = web.access.cached("evidence_count", lambda p: queries.evidence_count(p, q),
                                  False, q.measure, q.value, q.group, q.since, q.until,
                                  tuple(q.where))
        base = [(k, v) for k, v in qp.multi_items() if k != "after"]
        return web.render(request, "evidence.html", q=q, rows=rows, next_after=next_after,
                          total=total, base=base)

    def evidence_csv(request: Request) -> Response:
        q = evidence_query(request)

        def chunks() -> Iterator[str]:
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(["uid", "chat_key", "chat_title", "ts", "author_key", "text",
                             "matched"])
            after: str | None = None
            sent = 0
            while sent < CSV_LIMIT:
                with web.access.project() as p:
                    rows, after = queries.evidence_page(p, q, after, 5000)
                for r in rows:
                    writer.writerow([csv_safe(r[k]) for k in
                                     ("uid", "chat_key", "chat_title", "ts", "author_key",
                                      "text")] + [csv_safe(" ".join(r["matched_terms"]))])
                sent += len(rows)
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
                if after is None:
                    break
        name = f"evidence-{q.measure}-{q.value}.csv".replace('"', "")
        return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def context(request: Request) -> HTMLResponse:
        with web.access.project() as p:
            ctx = queries.context(p, request.path_params["uid"])
        return web.render(request, "context.html", ctx=ctx)

    def message(request: Request) -> HTMLResponse:
        uid = request.path_params["uid"]
        with web.access.project() as p:
            msg = queries.message(p, uid)
            ctx = queries.context(p, uid) if msg else None
            lemmas = views.lemmas_of(p.store, uid)
        if msg is None:
            raise UsageError(f"No message {uid!r} in this project.")
        related = topic_model().related(lemmas, uid)
        return web.render(request, "message.html", item=msg, ctx=ctx, related=related)

    def topic_model() -> Any:
        from chatlens.project.topics import fit_topics

        return web.access.cached("topics", fit_topics)

    def topics(request: Request) -> HTMLResponse:
        model = topic_model()
        charts = topic_charts(model)
        return web.render(request, "topics.html", model=model, charts=charts, links=True)

    def search(request: Request) -> HTMLResponse:
        q = request.query_params.get("q", "").strip()
        page = _page_number(request.query_params.get("page"))
        rows: list[dict[str, Any]] = []
        more = False
        if q:
            with web.access.project() as p:  # one more than a page tells whether there is more
                found = p.search(q, limit=SEARCH_PAGE + 1, offset=(page - 1) * SEARCH_PAGE)
            more, found = len(found) > SEARCH_PAGE, found[:SEARCH_PAGE]
            for r in found:
                masked = mask_pii(r["text"])
                spans = r["highlights"] if masked == r["text"] else []
                r["text"] = masked
                r["segments"] = queries.segments(masked, spans)
            rows = found
        return web.render(request, "search.html", q=q, rows=rows, page=page, more=more,
                          first=(page - 1) * SEARCH_PAGE + 1)

    return [Route("/", overview), Route("/measures", measures),
            Route("/measures/{measure}", measure), Route("/claims", claims),
            Route("/evidence", evidence), Route("/evidence.csv", evidence_csv),
            Route("/context/{uid}", context), Route("/message/{uid}", message),
            Route("/topics", topics), Route("/search", search)]
