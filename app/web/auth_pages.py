"""Signing in and out of the browser, and the first administrator of a fresh installation.

Routes
======
* ``GET|POST /login`` — e-mail and password. ``next`` (a path on this site only) says where
  to go afterwards. Attempts are limited per client address
  (``settings.sign_in_attempts_per_minute``; over it: 429 with ``Retry-After``); a failure
  says "wrong e-mail or password" whichever of the two was wrong.
* ``POST /logout`` — ends the session and clears its cookie.
* ``GET|POST /setup`` — only while there are no users at all: creates the first user, an
  administrator (who also becomes admin of the ``default`` workspace, where designs made
  before accounts existed live) and signs them in. Afterwards it is gone.

Every sign-in, failed sign-in and sign-out is in the audit log (without a workspace).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import select

from app.auth import (
    SESSION_COOKIE,
    RateLimiter,
    clear_session_cookie,
    client_ip,
    set_session_cookie,
)
from app.models import User, Workspace
from app.services import accounts as acc
from app.services.designs import DEFAULT_WORKSPACE_SLUG
from app.web.deps import DbSession, FormGuard, OptionalPageUser, is_local_path
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])
log = logging.getLogger("archplan.web.auth")

DEFAULT_NEXT = "/designs"
WRONG_CREDENTIALS = "Wrong e-mail or password."
_limiter_lock = threading.Lock()
_setup_lock = threading.Lock()


def sign_in_limiter(request: Request) -> RateLimiter:
    """The app's limiter of sign-in attempts per client address (made on first use)."""
    state = request.app.state
    limiter = getattr(state, "sign_in_limiter", None)
    if limiter is None:
        with _limiter_lock:
            limiter = getattr(state, "sign_in_limiter", None)
            if limiter is None:
                limiter = state.sign_in_limiter = RateLimiter(state.settings.sign_in_attempts_per_minute)
    return limiter


def _next(value: str | None) -> str:
    return value if is_local_path(value) else DEFAULT_NEXT


def _render(request: Request, template: str, context: dict, status: int = 200,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {"active": "login", **context}, status_code=status,
                                          headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _start(request: Request, session: DbSession, user: User, target: str) -> RedirectResponse:
    """A new session for ``user`` (ending the one the browser had) and the redirect to ``target``."""
    settings = request.app.state.settings
    acc.end_session(session, request.cookies.get(SESSION_COOKIE))
    token = acc.start_session(session, user, days=settings.session_days, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent", ""))
    acc.record(session, acc.Principal(user=user), "user.sign_in", target=f"user:{user.id}", ip=client_ip(request))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token, settings.session_days)
    return response


# --------------------------------------------------------------------------- sign in and out


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: DbSession, web: OptionalPageUser, next: str = "",
               signed_out: str = ""):
    if web is not None:
        return RedirectResponse(_next(next), status_code=303)
    if acc.count_users(session) == 0:
        return RedirectResponse("/setup", status_code=303)
    return _render(request, "auth/login.html", {"next": _next(next), "email": "", "error": None,
                                                "signed_out": signed_out == "1"})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: DbSession, email: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""):
    target = _next(next)
    ip = client_ip(request)
    wait = sign_in_limiter(request).take(ip or "unknown")
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        log.warning("sign-in attempts over the limit from %s", ip)
        return _render(request, "auth/login.html",
                       {"next": target, "email": email,
                        "error": f"Too many sign-in attempts from your address; wait {seconds} seconds "
                                 "and try again."},
                       status=429, headers={"Retry-After": str(seconds)})
    user = acc.authenticate(session, email, password[: acc.MAX_PASSWORD_CHARS + 1],
                            scrypt_n=request.app.state.settings.password_scrypt_n)
    if user is None:
        acc.record(session, None, "user.sign_in_failed", detail={"email": email.strip()[:254]}, ip=ip)
        return _render(request, "auth/login.html", {"next": target, "email": email, "error": WRONG_CREDENTIALS},
                       status=401)
    return _start(request, session, user, target)


@router.post("/logout")
def logout(request: Request, session: DbSession):
    token = request.cookies.get(SESSION_COOKIE)
    found = acc.session_for_token(session, token)
    if found is not None:
        acc.record(session, acc.Principal(user=found[1]), "user.sign_out", target=f"user:{found[1].id}",
                   ip=client_ip(request))
    acc.end_session(session, token)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session_cookie(request, response)
    return response


# --------------------------------------------------------------------------- first administrator


def _setup_open(session: DbSession) -> bool:
    return acc.count_users(session) == 0


@router.get("/setup", response_class=HTMLResponse)
def setup_page(request: Request, session: DbSession):
    if not _setup_open(session):
        return RedirectResponse("/login", status_code=303)
    return _render(request, "auth/setup.html", {"email": "", "name": "", "errors": [],
                                                "min_password": acc.MIN_PASSWORD_CHARS})


@router.post("/setup", response_class=HTMLResponse)
def setup(request: Request, session: DbSession, email: Annotated[str, Form()] = "",
          name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          password_again: Annotated[str, Form()] = ""):
    errors: list[str] = []
    if password != password_again:
        errors.append("The two passwords differ; type the same password twice.")
    with _setup_lock:  # two browsers submitting at once make one administrator
        if not _setup_open(session):
            return _render(request, "error.html", {"status": 404, "detail": None}, status=404)
        if not errors:
            try:
                user = acc.create_user(session, email, password, name=name, is_admin=True,
                                       scrypt_n=request.app.state.settings.password_scrypt_n)
            except acc.AccountError as exc:
                errors.append(str(exc))
    if errors:
        return _render(request, "auth/setup.html", {"email": email, "name": name, "errors": errors,
                                                    "min_password": acc.MIN_PASSWORD_CHARS}, status=422)
    acc.record(session, acc.Principal(user=user), "user.create", target=f"user:{user.id}",
               detail={"email": user.email, "admin": True, "setup": True}, ip=client_ip(request))
    default = session.exec(select(Workspace).where(Workspace.slug == DEFAULT_WORKSPACE_SLUG)).first()
    if default is not None:
        acc.add_member(session, default.id, user.email, "admin")
        acc.record(session, acc.Principal(user=user), "member.add", workspace_id=default.id,
                   target=f"user:{user.id}", detail={"email": user.email, "role": "admin"}, ip=client_ip(request))
    log.info("first administrator %s created through /setup", user.email)
    return _start(request, session, user, DEFAULT_NEXT)
