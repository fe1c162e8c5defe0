"""Who is asking, and may they: sessions, API keys, CSRF, rate limits and body limits for
the web pages and the REST API (the FastAPI side of :mod:`app.services.accounts`).

* Browser: the ``archplan_session`` cookie (random token; ``HttpOnly``, ``SameSite=Lax``,
  ``Secure`` in production) names an :class:`~app.models.AuthSession`.
* API: ``Authorization: Bearer ap_…`` names an :class:`~app.models.ApiKey`; a browser
  session works too (e.g. from ``/docs``), with the CSRF header on writes.
* CSRF: every form carries ``csrf_token`` and htmx sends it as ``X-CSRF-Token`` (set on
  ``<body hx-headers>``). The token is an HMAC of the session token (or, before sign-in,
  of the ``archplan_csrf`` cookie) under the secret key, so it is bound to one browser and
  needs no storage. :func:`csrf_protect` checks it on every unsafe method.
* :class:`GuardMiddleware` (pure ASGI) answers 413 for bodies over ``max_body_bytes`` (by
  ``Content-Length`` or while streaming) and 429 with ``Retry-After`` when a key or a
  client address exceeds its rate on ``/api/`` (token buckets in this process; with several
  replicas each replica counts on its own).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from app.db import release_connection
from app.models import AuthSession, User, Workspace
from app.problems import PROBLEM_MEDIA_TYPE
from app.services import accounts as acc

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "ApiPrincipal",
    "GuardMiddleware",
    "RateLimiter",
    "SignInRequired",
    "WebUser",
    "client_ip",
    "csrf_protect",
    "csrf_token_for",
    "get_db",
    "set_session_cookie",
]

SESSION_COOKIE = "archplan_session"
CSRF_COOKIE = "archplan_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def get_db(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request) -> bool:
    return request.app.state.settings.environment == "production"


# --------------------------------------------------------------------------- CSRF


def csrf_token_for(secret_key: str, binding: str) -> str:
    return hmac.new(secret_key.encode(), f"csrf|{binding}".encode(), hashlib.sha256).hexdigest()


def _csrf_binding(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(CSRF_COOKIE)


def expected_csrf(request: Request) -> str | None:
    binding = _csrf_binding(request) or getattr(request.state, "new_csrf_cookie", None)
    if not binding:
        return None
    return csrf_token_for(request.app.state.settings.secret_key, binding)


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe request whose CSRF token (header or form field) does not match."""
    if request.method not in _UNSAFE:
        return
    expected = expected_csrf(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "The form was out of date or did not come from this site; "
                                 "reload the page and try again.")


# --------------------------------------------------------------------------- browser users


class SignInRequired(Exception):
    """Raised by page dependencies without a signed-in user; the app redirects to /login."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass
class WebUser:
    """The signed-in user of a page request, their workspaces and the current one."""

    user: User
    auth: AuthSession
    workspaces: list[tuple[Workspace, str]] = field(default_factory=list)
    workspace: Workspace | None = None
    role: str | None = None

    @property
    def principal(self) -> acc.Principal:
        """The user, with the roles this request loaded (access checks then need no query)."""
        return acc.Principal(user=self.user, roles=tuple((ws.id, role) for ws, role in self.workspaces))

    def can(self, need: str) -> bool:
        return acc.role_at_least(self.role, need)

    def role_in(self, workspace_id: int) -> str | None:
        return next((r for ws, r in self.workspaces if ws.id == workspace_id), None)


def _next_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(target, safe="/")  # "?", "=" and "&" encoded: the whole path and query are one value


def current_web_user(request: Request, session: DbSession) -> WebUser:
    """The signed-in user (and their current workspace) or :class:`SignInRequired`."""
    found = acc.session_for_token(session, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise SignInRequired(_next_url(request))
    auth, user = found
    workspaces = acc.ensure_workspace(session, user)
    current = next(((ws, r) for ws, r in workspaces if ws.id == auth.workspace_id), None)
    if current is None:
        current = workspaces[0]
        acc.set_current_workspace(session, auth, current[0].id)
    web = WebUser(user=user, auth=auth, workspaces=workspaces, workspace=current[0], role=current[1])
    request.state.web_user = web
    release_connection(session)  # the page takes a connection again when it queries
    return web


def set_session_cookie(request: Request, response: Any, token: str, days: float) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(days * 86400), httponly=True,
                        secure=_secure(request), samesite="lax", path="/")


def clear_session_cookie(request: Request, response: Any) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=_secure(request), samesite="lax")


# --------------------------------------------------------------------------- API callers


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def api_principal(request: Request, session: DbSession) -> acc.Principal:
    """The API caller: a key (``Authorization: Bearer``) or a signed-in browser; else 401."""
    secret = _bearer(request)
    if secret is not None:
        key = request.app.state.api_keys.lookup(session, secret)
        if key is None:
            raise HTTPException(401, "The API key is unknown or revoked.",
                                headers={"WWW-Authenticate": 'Bearer realm="archplan", error="invalid_token"'})
        release_connection(session)  # the route takes a connection again when it queries
        return acc.Principal(key=key)
    found = acc.session_for_token(session, request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise HTTPException(401, "Send an API key as `Authorization: Bearer ap_…` (or sign in).",
                            headers={"WWW-Authenticate": 'Bearer realm="archplan"'})
    if request.method in _UNSAFE:
        sent = request.headers.get(CSRF_HEADER)
        expected = expected_csrf(request)
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            raise HTTPException(403, f"Requests signed in through the browser must send the {CSRF_HEADER} header.")
    release_connection(session)
    return acc.Principal(user=found[1])


ApiPrincipal = Annotated[acc.Principal, Depends(api_principal)]


# --------------------------------------------------------------------------- rate limits


class RateLimiter:
    """Token buckets per key: ``rate`` requests a minute, bursts up to ``rate``."""

    def __init__(self, per_minute: int, *, max_keys: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed (a token is taken), else the seconds until a token is free."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - seen) * self.refill)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                allowed = 0.0
            else:
                self._buckets[key] = (tokens, now)
                allowed = (1.0 - tokens) / self.refill
            if len(self._buckets) > self.max_keys:  # forget the idlest half
                for k, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: self.max_keys // 2]:
                    del self._buckets[k]
            return allowed


def _problem_bytes(status: int, title: str, detail: str, path: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "instance": path}).encode()


class _TooLarge(HTTPException):
    """A streamed body went over the limit (an HTTPException, so FastAPI answers 413 too)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class GuardMiddleware:
    """413 for oversized bodies, 429 for callers over their rate (see the module docstring)."""

    def __init__(self, app: Any, *, max_body_bytes: int, per_minute: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.limiter = RateLimiter(per_minute)

    async def _send_error(self, send: Any, status: int, title: str, detail: str, path: str,
                          headers: list[tuple[bytes, bytes]] | None = None, api: bool = True) -> None:
        body = _problem_bytes(status, title, detail, path) if api else detail.encode()
        ctype = PROBLEM_MEDIA_TYPE if api else "text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
                                (b"x-content-type-options", b"nosniff"), *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        api = path.startswith("/api/")
        headers = dict(scope.get("headers") or [])
        if api:
            auth = headers.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                who = "key:" + hashlib.sha256(auth[7:].strip()).hexdigest()[:32]
            else:
                client = scope.get("client")
                who = f"ip:{client[0] if client else ''}"
            wait = self.limiter.take(who)
            if wait > 0:
                await self._send_error(send, 429, "Too Many Requests",
                                       "Too many requests; slow down and retry after the given seconds.",
                                       path, [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                await self._send_error(send, 413, "Content Too Large",
                                       f"The request body is larger than {self.max_body} bytes.", path, api=api)
                return
        received = 0
        started = False

        async def counted_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._send_error(send, 413, "Content Too Large",
                                       f"The request body is larger than {self.max_body} bytes.", path, api=api)


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)
