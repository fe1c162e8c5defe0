"""CSRF: every unsafe request needs the token of its own session (form field or the htmx
header), and every form the pages render carries it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import make_engine
from app.models import Design
from app.requirements.examples import example_text
from tests.signin import csrf_of, make_user, sign_in

HX = {"HX-Request": "true"}
FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.DOTALL)


def _designs(settings) -> list[Design]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = list(s.exec(select(Design)).all())
    engine.dispose()
    return rows


def _signed_in(client: TestClient, settings) -> str:
    make_user(settings)
    return sign_in(client, header=False)  # no default header: each request says what it sends


def test_a_form_post_needs_the_token(app_client: TestClient, settings) -> None:
    token = _signed_in(app_client, settings)
    r = app_client.post("/designs/from-example", data={"example": "research-burst-deadline"})
    assert r.status_code == 403 and "did not come from this site" in r.text
    r = app_client.post("/designs/from-example", data={"example": "research-burst-deadline", "csrf_token": "0" * 64})
    assert r.status_code == 403
    assert _designs(settings) == []
    r = app_client.post("/designs/from-example", data={"example": "research-burst-deadline", "csrf_token": token},
                        follow_redirects=False)
    assert r.status_code == 303 and len(_designs(settings)) == 1
    # A file upload form (multipart) carries it the same way.
    files = {"spec_file": ("s.yaml", example_text("llm-finetune-hipaa").encode(), "application/x-yaml")}
    assert app_client.post("/designs/from-yaml", files=files).status_code == 403
    r = app_client.post("/designs/from-yaml", data={"csrf_token": token}, files=files, follow_redirects=False)
    assert r.status_code == 303 and len(_designs(settings)) == 2


def test_an_htmx_request_needs_the_header(app_client: TestClient, settings) -> None:
    token = _signed_in(app_client, settings)
    r = app_client.post("/designs/from-example", data={"example": "research-burst-deadline", "csrf_token": token},
                        follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    text = example_text("research-burst-deadline").replace("horizon_months: 3", "horizon_months: 4")
    r = app_client.post(f"/designs/{did}/spec", data={"spec_yaml": text}, headers=HX)
    assert r.status_code == 403
    assert _designs(settings)[0].spec["lifecycle"]["horizon_months"] == 3
    r = app_client.post(f"/designs/{did}/spec", data={"spec_yaml": text}, headers={**HX, "X-CSRF-Token": token})
    assert r.status_code == 200 and "Requirements saved." in r.text
    assert _designs(settings)[0].spec["lifecycle"]["horizon_months"] == 4
    # The wizard's htmx endpoints too.
    assert app_client.post("/designs/wizard/validate", data={"name": "x"}, headers=HX).status_code == 403
    r = app_client.post("/designs/wizard/validate", data={"name": "x"}, headers={**HX, "X-CSRF-Token": token})
    assert r.status_code == 200


def test_a_token_from_another_session_is_refused(app_client: TestClient, settings) -> None:
    token = _signed_in(app_client, settings)
    make_user(settings, "bob@example.com")
    with TestClient(app_client.app) as other:
        other_token = sign_in(other, "bob@example.com", header=False)
        assert other_token != token
        r = other.post("/designs/from-example", data={"example": "research-burst-deadline", "csrf_token": token})
        assert r.status_code == 403
    # Signing in changes the token: the one from before sign-in is no good afterwards.
    with TestClient(app_client.app) as fresh:
        before = csrf_of(fresh.get("/login").text)
        after = sign_in(fresh, header=False)
        assert before != after
        r = fresh.post("/designs/from-example", data={"example": "research-burst-deadline", "csrf_token": before})
        assert r.status_code == 403


def test_sign_in_itself_needs_the_token(app_client: TestClient, settings) -> None:
    make_user(settings)
    app_client.get("/login")
    r = app_client.post("/login", data={"email": "ada@example.com", "password": "correct horse battery staple"})
    assert r.status_code == 403 and "archplan_session" not in r.headers.get("set-cookie", "")


def test_every_post_form_carries_the_token(client: TestClient, settings) -> None:
    """Crawl the pages (as an admin, so every form shows) and check each POST form."""
    token = client.headers["X-CSRF-Token"]
    r = client.post("/designs/from-example", data={"example": "research-burst-deadline"}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    job_url = client.post(f"/designs/{did}/plan", follow_redirects=False).headers["location"]
    r = client.post("/workspaces/default/keys", data={"name": "robot", "scopes": "read"})
    key_id = re.search(r"/keys/(\d+)/revoke", client.get("/workspaces/default/keys").text).group(1)
    pages = ["/", "/designs", f"/designs/{did}", f"/designs/{did}/delete", job_url, "/designs/new/wizard",
             f"/designs/{did}/wizard", "/compare", "/catalog", "/workspaces", "/workspaces/default/members",
             "/workspaces/default/keys", f"/workspaces/default/keys/{key_id}/revoke", "/workspaces/default/audit",
             "/no/such/page"]
    seen = 0
    for path in pages:
        html = client.get(path).text
        assert f'<body hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'>' in html, path
        for form in FORM_RE.findall(html):
            method = re.search(r'method="(\w+)"', form)
            if method and method.group(1).lower() == "post":
                seen += 1
                assert f'<input type="hidden" name="csrf_token" value="{token}">' in form, (path, form[:200])
            else:  # a GET form never puts the token in a URL
                assert "csrf_token" not in form, (path, form[:200])
    assert seen >= 15
    anonymous = TestClient(client.app)
    html = anonymous.get("/login").text
    [form] = FORM_RE.findall(html)
    assert 'name="csrf_token"' in form
