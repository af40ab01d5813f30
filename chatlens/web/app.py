"""The dashboard application (Starlette): settings, templates, error pages, routes.

Build with :func:`create_app`; ``chatlens serve`` runs it with uvicorn. Pages are rendered on
the server (Jinja2 with autoescaping: every message text is escaped in HTML and attributes);
the only script is ``static/app.js`` (keyboard labelling, Ctrl+Enter corrections, context).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chatlens import __version__
from chatlens.errors import ChatlensError
from chatlens.project import Project
from chatlens.web.access import ProjectAccess, ProjectBusy
from chatlens.web.security import SecurityConfig, SecurityMiddleware, is_loopback

HERE = Path(__file__).parent


@dataclass(slots=True)
class Settings:
    project: Path
    codebook: str | None = None
    claims: str | None = None
    read_only: bool = False
    token: str | None = None
    host: str = "127.0.0.1"
    annotator: str | None = None

    def who(self) -> str:
        if self.annotator:
            return self.annotator
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "user"
        return f"dashboard:{user}"


def script_json(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: ``< > &`` as unicode escapes."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def make_env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "—" if v is None else f"{int(v):,}"
    return env


class Web:
    """Shared state of one running dashboard."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.access = ProjectAccess(Path(settings.project), settings.codebook)
        self.env = make_env()
        self._codebook_info: dict[str, Any] | None = None

    def codebook_info(self) -> dict[str, Any]:
        """The codebook's measures and labels; while the project cannot be read (a writer is
        publishing its first snapshot) the last one read, so labels can still be saved."""
        try:
            self._codebook_info = self._read_codebook_info()
        except ProjectBusy:
            if self._codebook_info is None:
                raise
        return self._codebook_info

    def _read_codebook_info(self) -> dict[str, Any]:
        def compute(p: Project) -> dict[str, Any]:
            cb, source = p.codebook()
            return {"name": cb.name, "version": cb.version, "source": source,
                    "measures": [{"id": m.id, "question": m.question, "labels": m.labels,
                                  "type": m.type, "instructions": m.instructions,
                                  "positive": m.positive_label()} for m in cb.measures]}
        return self.access.cached("codebook", compute)

    def render(self, request: Request, name: str, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        base: dict[str, Any] = {
            "request": request, "csrf": getattr(request.state, "csrf", ""),
            "read_only": self.settings.read_only, "version": __version__,
            "annotator": self.settings.who(), "path": request.url.path,
            "updating": self.access.updating(), "refresh": None,
        }
        if "codebook" not in ctx:
            try:
                ctx["codebook"] = self.codebook_info()
            except (ProjectBusy, ChatlensError):
                ctx["codebook"] = {"measures": []}
        ctx["codebook_json"] = script_json(
            {m["id"]: {"labels": m["labels"], "question": m["question"]}
             for m in ctx["codebook"]["measures"]})
        html = self.env.get_template(name).render({**base, **ctx})
        return HTMLResponse(html, status_code=status)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for one project."""
    from chatlens.web import adjudicate_page, api, network_page, pages

    web = Web(settings)

    async def busy(request: Request, exc: Exception) -> Response:
        # only while a writer publishes the first readable copy (seconds): pages say so and
        # reload themselves; API callers (the label buttons) are told to retry
        if request.url.path.startswith("/api/"):
            from starlette.responses import JSONResponse
            resp: Response = JSONResponse({"error": "The project is being updated; try again "
                                           "in a few seconds.", "updating": True},
                                          status_code=503)
        else:
            resp = web.render(request, "message_page.html", codebook={"measures": []},
                              title="Being updated", refresh=3,
                              body="Another chatlens command is updating this project and "
                                   "there is no readable copy of it yet. This page reloads "
                                   "itself in a few seconds.", detail=str(exc))
        resp.headers["Retry-After"] = "3"
        return resp

    async def problem(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            from starlette.responses import JSONResponse
            return JSONResponse({"error": str(exc)}, status_code=400)
        return web.render(request, "message_page.html", status=400, title="Cannot show this",
                          body=str(exc), detail="")

    routes = [*pages.routes(web), *api.routes(web), *network_page.routes(web),
              *adjudicate_page.routes(web),
              Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static")]
    config = SecurityConfig(token=settings.token, loopback_only=is_loopback(settings.host))
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        web.access.close()  # let go of the project when the server stops

    app = Starlette(routes=routes, middleware=[Middleware(SecurityMiddleware, config=config)],
                    exception_handlers={ProjectBusy: busy, ChatlensError: problem},
                    lifespan=lifespan)
    app.state.web = web
    return app


__all__ = ["Route", "Settings", "Web", "create_app"]
