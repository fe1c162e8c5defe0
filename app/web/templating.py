"""Jinja2 environment for pages (autoescaped HTML)."""

from __future__ import annotations

from fastapi.templating import Jinja2Templates

from app import __version__
from app.settings import PROJECT_ROOT

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))
templates.env.globals["archplan_version"] = __version__


def _csrf_token(request) -> str:
    from app.auth import expected_csrf

    return expected_csrf(request) or ""


def _web_user(request):
    """The signed-in user of this request (set by the page dependency), or None."""
    return getattr(request.state, "web_user", None)


templates.env.globals["csrf_token"] = _csrf_token
templates.env.globals["web_user"] = _web_user
