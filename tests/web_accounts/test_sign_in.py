"""Signing in and out, the session cookie, ``next``, the sign-in rate limit, ``/setup``
and what anonymous visitors get."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.main import create_app
from app.models import AuditEvent, AuthSession, Membership, User
from app.requirements.examples import load_example
from app.services import designs as svc
from tests.conftest import make_settings
from tests.signin import EMAIL, PASSWORD, csrf_of, make_user, sign_in


def _rows(settings, model, **where):
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.exec(select(model).filter_by(**where)).all())
    engine.dispose()
    return rows


def _login(client: TestClient, email: str = EMAIL, password: str = PASSWORD, next: str = "", **kw):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": next},
                       follow_redirects=False, **kw)


def _set_cookie(response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


@pytest.mark.parametrize("path", [
    "/designs", "/designs/1", "/designs/1/plans/1", "/designs/1/plans/1/schedule.csv",
    "/designs/1/plans/1/bundles/all.zip", "/designs/1/jobs/1", "/designs/new/wizard", "/designs/1/wizard",
    "/compare", "/catalog", "/workspaces", "/workspaces/default/members", "/workspaces/default/keys",
    "/workspaces/default/audit",
])
def test_pages_send_anonymous_visitors_to_sign_in(app_client: TestClient, path: str) -> None:
    make_user(app_client.app.state.settings)
    r = app_client.get(path, follow_redirects=False)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == "/login" and parse_qs(target.query)["next"] == [path]


def test_next_keeps_the_whole_query_and_htmx_gets_hx_redirect(app_client: TestClient) -> None:
    make_user(app_client.app.state.settings)
    r = app_client.get("/compare?ids=1&ids=2", follow_redirects=False)
    assert parse_qs(urlsplit(r.headers["location"]).query)["next"] == ["/compare?ids=1&ids=2"]
    # An htmx poll: back to the page it polls for, not to the fragment.
    r = app_client.get("/designs/1/jobs/2/status?seen=x", follow_redirects=False,
                       headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/designs/1?saved=1"})
    assert r.status_code == 204
    assert parse_qs(urlsplit(r.headers["HX-Redirect"]).query)["next"] == ["/designs/1?saved=1"]


def test_sign_in_sets_a_safe_cookie_and_shows_the_account(app_client: TestClient, settings) -> None:
    make_user(settings)
    page = app_client.get("/login")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<label for="login-email">' in page.text and 'autocomplete="current-password"' in page.text
    r = _login(app_client, next="/designs?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/designs?x=1"
    cookie = _set_cookie(r, "archplan_session")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # not in the test environment (plain http)
    html = app_client.get("/designs").text
    assert EMAIL in html and "Default workspace" in html and 'action="/logout"' in html
    assert [e.action for e in _rows(settings, AuditEvent)] == ["user.sign_in"]
    # Signed in, /login goes on to where it would have.
    r = app_client.get("/login?next=/catalog", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/catalog"


def test_the_session_cookie_is_secure_in_production(migrated_sqlite_url) -> None:
    settings = make_settings(migrated_sqlite_url, job_workers=0).model_copy(
        update={"environment": "production", "secret_key": "s" * 48})
    make_user(settings)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        r = _login(client)
        assert r.status_code == 303
        cookie = _set_cookie(r, "archplan_session")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert client.get("/designs").status_code == 200


@pytest.mark.parametrize("email, password", [(EMAIL, "not the password"), ("nobody@example.com", PASSWORD),
                                             ("not an e-mail", PASSWORD), (EMAIL, "")])
def test_wrong_credentials_get_one_generic_message(app_client: TestClient, settings, email, password) -> None:
    make_user(settings)
    r = _login(app_client, email, password)
    assert r.status_code == 401
    assert "Wrong e-mail or password." in r.text and 'aria-invalid="true"' in r.text
    assert "archplan_session" not in r.headers.get("set-cookie", "")
    assert app_client.get("/designs", follow_redirects=False).status_code == 303
    [event] = _rows(settings, AuditEvent)
    assert event.action == "user.sign_in_failed" and event.detail == {"email": email.strip()}
    assert event.ip == "testclient"


def test_next_must_be_a_path_on_this_site(app_client: TestClient, settings) -> None:
    make_user(settings)
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
                "designs", "/designs\r\nSet-Cookie: x=1"):
        r = _login(app_client, next=bad)
        assert r.status_code == 303 and r.headers["location"] == "/designs", bad
    page = app_client.get("/login?next=//evil.example", follow_redirects=False)
    assert page.headers["location"] == "/designs"


def test_sign_out_ends_the_session(app_client: TestClient, settings) -> None:
    make_user(settings)
    sign_in(app_client, header=False)
    token_cookie = app_client.cookies.get("archplan_session")
    assert _rows(settings, AuthSession)
    assert app_client.post("/logout").status_code == 403  # without the CSRF token
    csrf = csrf_of(app_client.get("/designs").text)
    r = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?signed_out=1"
    cleared = _set_cookie(r, "archplan_session")
    assert "Max-Age=0" in cleared or "expires=Thu, 01 Jan 1970" in cleared.lower()
    assert _rows(settings, AuthSession) == []
    assert "You are signed out." in app_client.get("/login?signed_out=1").text
    # The old cookie, sent again, is worth nothing.
    app_client.cookies.set("archplan_session", token_cookie)
    assert app_client.get("/designs", follow_redirects=False).status_code == 303
    assert [e.action for e in _rows(settings, AuditEvent)] == ["user.sign_in", "user.sign_out"]


def test_signing_in_again_replaces_the_old_session(app_client: TestClient, settings) -> None:
    make_user(settings)
    sign_in(app_client)
    first = app_client.cookies.get("archplan_session")
    token = csrf_of(app_client.get("/designs").text)
    r = app_client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
                        follow_redirects=False)
    assert r.status_code == 303
    assert app_client.cookies.get("archplan_session") not in (None, first)
    assert len(_rows(settings, AuthSession)) == 1  # the old one was ended, not left behind


def test_sign_in_attempts_are_rate_limited_per_address(migrated_sqlite_url) -> None:
    settings = make_settings(migrated_sqlite_url, sign_in_attempts_per_minute=3, job_workers=0)
    make_user(settings)
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert _login(client, password="wrong password!").status_code == 401
        r = _login(client)  # even the right password waits now
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in r.text and "archplan_session" not in r.headers.get("set-cookie", "")
        assert client.get("/login").status_code == 200  # the page itself is not limited
    with TestClient(create_app(settings), client=("10.0.0.2", 5000)) as other:
        assert _login(other).status_code == 303  # another address has its own budget


def test_setup_creates_the_first_admin_once(app_client: TestClient, settings) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:  # designs from before accounts existed
        ws = svc.get_or_create_workspace(s)
        old = svc.create_design(s, ws.id, load_example("research-burst-deadline"), "Older design")
        old_id = old.id
    engine.dispose()
    assert app_client.get("/login", follow_redirects=False).headers["location"] == "/setup"
    page = app_client.get("/setup")
    assert page.status_code == 200 and "Create the administrator" in page.text
    token = csrf_of(page.text)
    r = app_client.post("/setup", data={"email": "root@example.com", "password": "long enough pw",
                                        "password_again": "different pw!", "csrf_token": token})
    assert r.status_code == 422 and "The two passwords differ" in r.text
    r = app_client.post("/setup", data={"email": "root@example.com", "password": "short",
                                        "password_again": "short", "csrf_token": token})
    assert r.status_code == 422 and "at least 10 characters" in r.text
    assert _rows(settings, User) == []
    r = app_client.post("/setup", data={"email": "Root@Example.com", "name": "Root", "password": "long enough pw",
                                        "password_again": "long enough pw", "csrf_token": token},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/designs"
    assert "HttpOnly" in _set_cookie(r, "archplan_session")
    [user] = _rows(settings, User)
    assert user.email == "root@example.com" and user.is_admin and user.name == "Root"
    [m] = _rows(settings, Membership)
    assert m.role == "admin" and m.user_id == user.id
    listing = app_client.get("/designs").text  # signed in, and the older designs are there
    assert f'href="/designs/{old_id}"' in listing and "Older design" in listing
    # Afterwards /setup is gone.
    assert app_client.get("/setup", follow_redirects=False).headers["location"] == "/login"
    app_client.cookies.clear()
    token = csrf_of(app_client.get("/login").text)
    r = app_client.post("/setup", data={"email": "eve@example.com", "password": "long enough pw",
                                        "password_again": "long enough pw", "csrf_token": token})
    assert r.status_code == 404
    assert len(_rows(settings, User)) == 1
    actions = [e.action for e in _rows(settings, AuditEvent)]
    assert actions[:3] == ["user.create", "member.add", "user.sign_in"]


def test_setup_without_a_default_workspace_gives_the_admin_their_own(app_client: TestClient, settings) -> None:
    token = csrf_of(app_client.get("/setup").text)
    r = app_client.post("/setup", data={"email": "root@example.com", "password": "long enough pw",
                                        "password_again": "long enough pw", "csrf_token": token})
    assert r.status_code == 200 and "root&#39;s workspace" in r.text


def test_home_page_for_visitors_and_users(app_client: TestClient, settings) -> None:
    fresh = app_client.get("/")
    assert fresh.status_code == 200 and 'href="/setup"' in fresh.text
    make_user(settings)
    html = app_client.get("/").text
    assert html.count("<h1>") == 1 and "Plan ML architectures" in html
    assert 'href="/login?next=/designs"' in html and 'href="/designs"' not in html
    assert re.search(r'<a href="/login">Sign in</a>', html)
    sign_in(app_client)
    html = app_client.get("/").text
    assert 'href="/designs">Start a design' in html and EMAIL in html and 'href="/login"' not in html


def test_a_disabled_user_is_signed_out(app_client: TestClient, settings) -> None:
    uid = make_user(settings)
    sign_in(app_client)
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        u = s.get(User, uid)
        u.disabled = True
        s.add(u)
        s.commit()
    engine.dispose()
    assert app_client.get("/designs", follow_redirects=False).status_code == 303
    assert _login(app_client).status_code == 401
