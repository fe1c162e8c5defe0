"""Server-rendered pages (Jinja2 + htmx): the home page, open to everyone.

Signed-out visitors see what archplan does and a way to sign in (or, on a fresh
installation, to create the first administrator); signed-in users get their workspace's
starting points.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.services import accounts as acc
from app.web.deps import DbSession, FormGuard, OptionalPageUser
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, web: OptionalPageUser):
    ctx = {"active": "home", "signed_in": web is not None,
           "setup_open": web is None and acc.count_users(session) == 0}
    return templates.TemplateResponse(request, "home.html", ctx)
