"""Test helpers: users with a role in a workspace, and clients signed in through ``/login``."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.main import create_app
from app.models import Workspace
from app.services import accounts as acc
from app.services import designs as svc
from app.settings import Settings

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(settings: Settings, email: str = EMAIL, password: str = PASSWORD, *,
              workspace: str | None = svc.DEFAULT_WORKSPACE_SLUG, role: str = "admin", name: str = "",
              is_admin: bool = False) -> int:
    """A user (the cheap scrypt cost of the test settings) with ``role`` in ``workspace``
    (the slug; the default workspace is created when missing; None: no membership)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            user = acc.create_user(s, email, password, name=name, is_admin=is_admin,
                                   scrypt_n=settings.password_scrypt_n)
            if workspace is not None:
                ws = s.exec(select(Workspace).where(Workspace.slug == workspace)).first()
                if ws is None:
                    ws = (svc.get_or_create_workspace(s) if workspace == svc.DEFAULT_WORKSPACE_SLUG
                          else acc.create_workspace(s, workspace, None))
                acc.add_member(s, ws.id, user.email, role)
            return user.id
    finally:
        engine.dispose()


def make_workspace(settings: Settings, name: str) -> tuple[int, str]:
    """A workspace without members: (id, slug)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            ws = acc.create_workspace(s, name, None)
            return ws.id, ws.slug
    finally:
        engine.dispose()


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "the page has no form with a CSRF token"
    return htmllib.unescape(m.group(1))


def sign_in(client: httpx.Client, email: str = EMAIL, password: str = PASSWORD, *, header: bool = True) -> str:
    """Sign in through the real form; returns the session's CSRF token, which (``header``)
    every later request then sends as ``X-CSRF-Token``, as htmx does in the browser."""
    client.headers.pop("X-CSRF-Token", None)
    page = client.get("/login")
    assert page.status_code == 200, page.text[:300]
    r = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text),
                                    "next": "/workspaces"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    token = csrf_of(client.get("/workspaces").text)
    if header:
        client.headers["X-CSRF-Token"] = token
    return token


@contextmanager
def signed_in_client(settings: Settings, email: str = EMAIL, password: str = PASSWORD, *,
                     create: bool = True, role: str = "admin") -> Iterator[TestClient]:
    """A TestClient of the app, signed in as a user (made here, with ``role`` in the
    default workspace, unless ``create`` is false)."""
    with TestClient(create_app(settings)) as client:
        if create:
            make_user(settings, email, password, role=role)
        sign_in(client, email, password)
        yield client


def with_session(settings: Settings, fn):
    """``fn(session)`` on the settings' database, in an engine of its own (as another process)."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return fn(s)
    finally:
        engine.dispose()
