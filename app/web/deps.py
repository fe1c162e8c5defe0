"""What the pages share: the signed-in user and their current workspace, the database
session, the guard on unsafe requests (CSRF token and same-origin check), and the audit
helper.

Every page router is declared with ``dependencies=[FormGuard]`` (see :func:`form_guard`),
and every page takes ``web: PageUser`` — the signed-in :class:`~app.auth.WebUser`, or a
redirect to ``/login?next=…`` for anonymous visitors.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from sqlalchemy import inspect
from sqlmodel import Session

from app.auth import DbSession, SignInRequired, WebUser, client_ip, csrf_protect, current_web_user
from app.services import accounts as acc

__all__ = [
    "DbSession",
    "FormGuard",
    "OptionalPageUser",
    "PageUser",
    "audit",
    "form_guard",
    "is_local_path",
    "page_user",
    "same_origin",
]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _detach(session: Session, web: WebUser) -> WebUser:
    """Load the user and workspaces the navigation shows and take them out of the session.

    A page's own commits expire what the session holds, and error pages render after the
    session is closed: detached, fully loaded rows keep rendering without a query."""
    for obj in {id(o): o for o in (web.user, *(ws for ws, _ in web.workspaces))}.values():
        state = inspect(obj)
        if state.session is not session:
            continue
        if state.expired_attributes:
            session.refresh(obj)
        session.expunge(obj)
    return web


def page_user(web: Annotated[WebUser, Depends(current_web_user)], session: DbSession) -> WebUser:
    """The signed-in user of a page (anonymous visitors are sent to ``/login``)."""
    return _detach(session, web)


def optional_page_user(request: Request, session: DbSession) -> WebUser | None:
    """The signed-in user, or None for an anonymous visitor (pages open to both)."""
    try:
        web = current_web_user(request, session)
    except SignInRequired:
        return None
    return _detach(session, web)


PageUser = Annotated[WebUser, Depends(page_user)]
OptionalPageUser = Annotated[WebUser | None, Depends(optional_page_user)]


def same_origin(request: Request) -> None:
    """Refuse cross-site form posts (a second line of defence behind the CSRF token).

    Browsers say where a request comes from in ``Sec-Fetch-Site`` (independent of proxies
    rewriting ``Host``); older ones only send ``Origin``, compared with the host asked for.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site == "cross-site":
            raise HTTPException(403, "Cross-site form submissions are refused.")
        return
    origin = request.headers.get("origin")
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if origin and origin != "null" and urlsplit(origin).netloc not in hosts:
        raise HTTPException(403, "Cross-site form submissions are refused.")


async def form_guard(request: Request) -> None:
    """On unsafe methods: the same-origin check, then the CSRF token (form field
    ``csrf_token`` or header ``X-CSRF-Token``); safe methods pass."""
    if request.method not in UNSAFE_METHODS:
        return
    same_origin(request)
    await csrf_protect(request)


FormGuard = Depends(form_guard)


def is_local_path(target: str | None) -> bool:
    """True for a path on this site (``/designs?x=1``), never for another site
    (``//evil.example``, ``/\\evil.example``, ``https://…``) or odd characters."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def audit(session: Session, request: Request, web: WebUser, action: str, *, workspace_id: int | None,
          target: str = "", detail: dict[str, Any] | None = None) -> None:
    """Record what a signed-in user did from a page (commits)."""
    acc.record(session, web.principal, action, workspace_id=workspace_id, target=target, detail=detail,
               ip=client_ip(request))
