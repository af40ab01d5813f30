"""Dashboard security: loopback by default, a token for other hosts, CSRF, strict headers.

- ``--host`` other than loopback needs a token (``--token``, ``CHATLENS_TOKEN``, or
  ``--token auto`` to generate one). Clients send it once as ``?token=`` (it becomes an HttpOnly
  cookie) or on every request as ``Authorization: Bearer …`` / ``X-Chatlens-Token``.
- Requests bound to loopback must name a loopback ``Host`` (defeats DNS rebinding).
- State-changing requests need the per-session CSRF value (cookie ``chatlens_csrf``, echoed in the
  ``X-CSRF-Token`` header from the page's meta tag) and, when the browser sends one, an
  ``Origin`` equal to the dashboard's own.
- Every response carries a Content-Security-Policy that allows only the dashboard's own origin
  and no inline script; pages are not cached and cannot be framed.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from chatlens.errors import UsageError

TOKEN_COOKIE = "chatlens_token"
CSRF_COOKIE = "chatlens_csrf"
CSRF_HEADER = "x-csrf-token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token the server requires (None: none) and whether it was generated here.

    A non-loopback host without a token is refused: pass ``--token VALUE``, set
    ``CHATLENS_TOKEN``, or pass ``--token auto`` to have one generated and printed."""
    if token == "auto":
        return secrets.token_urlsafe(24), True
    if token:
        if len(token) < 16:
            raise UsageError("The access token must be at least 16 characters long.")
        return token, False
    if not is_loopback(host):
        raise UsageError(
            f"Serving on {host} (not loopback) exposes the project to the network: it needs an "
            "access token. Pass --token VALUE, set CHATLENS_TOKEN, or pass --token auto to "
            "generate one.")
    return None, False


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    token: str | None
    loopback_only: bool


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header.split("]")[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class SecurityMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.headers.get("host", "")
        if self.config.loopback_only and not is_loopback(_host_name(host)):
            return self._headers(PlainTextResponse("Bad Host header", status_code=400))
        token = self.config.token
        if token is not None and not request.url.path.startswith("/static/"):
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given.encode(), token.encode()):
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + ("?" + urlencode(rest) if rest else "")
                resp: Response = RedirectResponse(target, status_code=303)
                resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return self._headers(resp)
            auth = request.headers.get("authorization", "")
            sent = (request.cookies.get(TOKEN_COOKIE) or request.headers.get("x-chatlens-token")
                    or (auth[7:] if auth.lower().startswith("bearer ") else ""))
            if not (sent and hmac.compare_digest(sent.encode(), token.encode())):
                return self._headers(PlainTextResponse(
                    "401 Unauthorized: open the link with ?token=… printed by `chatlens serve`.",
                    status_code=401))
        csrf = request.cookies.get(CSRF_COOKIE)
        if request.method not in SAFE_METHODS:
            problem = self._csrf_problem(request, csrf)
            if problem:
                return self._headers(PlainTextResponse(f"403 Forbidden: {problem}",
                                                       status_code=403))
        new_csrf = None
        if not csrf:
            csrf = new_csrf = secrets.token_urlsafe(24)
        request.state.csrf = csrf
        response = await call_next(request)
        if new_csrf:
            response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="strict")
        return self._headers(response)

    @staticmethod
    def _csrf_problem(request: Request, csrf: str | None) -> str | None:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is not None and origin != own:
            return "cross-origin request"
        referer = request.headers.get("referer")
        if origin is None and referer and not (referer == own or referer.startswith(own + "/")):
            return "cross-origin request"
        sent = request.headers.get(CSRF_HEADER, "")
        if not csrf or not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
            return "missing or wrong CSRF token; reload the page"
        return None

    @staticmethod
    def _headers(response: Response) -> Response:
        h = response.headers
        h["Content-Security-Policy"] = CSP
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "same-origin"
        h["X-Frame-Options"] = "DENY"
        h.setdefault("Cache-Control", "no-store")
        return response
