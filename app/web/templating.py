"""Jinja2 environment for pages (autoescaped HTML)."""

from __future__ import annotations

from fastapi.templating import Jinja2Templates

from app import __version__
from app.settings import PROJECT_ROOT

templates = Jinja2Templates(directory=str(PROJECT_ROOT / "templates"))
templates.env.globals["archplan_version"] = __version__
