"""Who may do what, for every route family, on SQLite and PostgreSQL: no key and revoked or
unknown keys are 401; another workspace's ids are 404 and never show its data; a read-only
key cannot write (403); the audit log is for signed-in admins; browsers need the CSRF header."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import select

from app.auth import CSRF_HEADER, SESSION_COOKIE, csrf_token_for
from app.models import ApiKey, Design, Job, Membership, User
from app.services import accounts as acc
from tests.api.conftest import PROBLEM, SMALL_SPEC, N, World, bearer

SECRET_NAME = "Team A secret roadmap"


@dataclass
class Ids:
    workspace: int
    design: int
    job: int
    plan: int
    plan2: int


def _setup(world: World, small_plan) -> Ids:
    design = world.design(world.a, name=SECRET_NAME)
    plan = world.store_plan(design.id, small_plan)
    plan2 = world.store_plan(design.id, small_plan)
    r = world.client.post(f"/api/v1/designs/{design.id}/solves", headers=world.a.write)
    assert r.status_code == 202
    return Ids(world.a.workspace_id, design.id, r.json()["id"], plan, plan2)


def _routes(i: Ids) -> list[tuple[str, str, dict]]:
    """(method, url, request kwargs) for every route family that names a workspace's resource."""
    w, d, j, p = i.workspace, i.design, i.job, i.plan
    return [
        ("GET", f"/api/v1/workspaces/{w}", {}),
        ("GET", f"/api/v1/workspaces/{w}/designs", {}),
        ("POST", f"/api/v1/workspaces/{w}/designs", {"json": {"spec": SMALL_SPEC}}),
        ("GET", f"/api/v1/workspaces/{w}/audit", {}),
        ("GET", f"/api/v1/designs/{d}", {}),
        ("PUT", f"/api/v1/designs/{d}", {"json": {"spec": SMALL_SPEC, "name": "Taken over"}}),
        ("PATCH", f"/api/v1/designs/{d}", {"json": {"name": "Taken over"}}),
        ("DELETE", f"/api/v1/designs/{d}", {}),
        ("POST", f"/api/v1/designs/{d}/solves", {}),
        ("GET", f"/api/v1/designs/{d}/plans", {}),
        ("GET", f"/api/v1/jobs/{j}", {}),
        ("POST", f"/api/v1/jobs/{j}/cancel", {}),
        ("GET", f"/api/v1/plans/{p}", {}),
        ("GET", f"/api/v1/plans/{p}/schedule", {"headers": {"Accept": "text/csv"}}),
        ("GET", f"/api/v1/plans/{p}/bundles", {}),
        ("GET", f"/api/v1/plans/{p}/bundles/terraform", {}),
        ("GET", f"/api/v1/comparisons?plan_id={p}&plan_id={i.plan2}", {}),
    ]


WRITES = {"POST", "PUT", "PATCH", "DELETE"}
CATALOG = [("GET", "/api/v1/offerings", {}), ("GET", "/api/v1/snapshots", {}),
           ("GET", "/api/v1/snapshots/current", {}), ("GET", "/api/v1/workspaces", {})]


def _call(world: World, method: str, url: str, kw: dict, headers: dict | None):
    kw = dict(kw)
    merged = {**kw.pop("headers", {}), **(headers or {})}
    return world.client.request(method, url, headers=merged, **kw)


def _unchanged(world: World, ids: Ids) -> None:
    with world.session() as s:
        design = s.get(Design, ids.design)
        assert design is not None and design.name == SECRET_NAME
        assert s.get(Job, ids.job).status == "queued"
        assert len(s.exec(select(Design)).all()) == 1
        assert len(s.exec(select(Job)).all()) == 1


def test_every_route_needs_credentials(world: World, small_plan) -> None:
    ids = _setup(world, small_plan)
    unknown = bearer("ap_" + "x" * 43)
    for method, url, kw in _routes(ids) + CATALOG:
        for headers in (None, bearer(world.a.revoked_key), unknown, {"Authorization": "Basic YTpi"}):
            r = _call(world, method, url, kw, headers)
            assert r.status_code == 401, (method, url, headers, r.status_code)
            assert r.headers["content-type"] == PROBLEM and r.headers["www-authenticate"].startswith("Bearer")
            assert SECRET_NAME not in r.text
    _unchanged(world, ids)


def test_another_workspaces_ids_are_not_found(world: World, small_plan) -> None:
    ids = _setup(world, small_plan)
    for method, url, kw in _routes(ids):
        for headers in (world.b.write, world.b.read):
            r = _call(world, method, url, kw, headers)
            assert r.status_code == 404, (method, url, r.status_code, r.text)
            assert r.headers["content-type"] == PROBLEM and SECRET_NAME not in r.text
            body = r.json()
            assert body["status"] == 404 and set(body) <= {"type", "title", "status", "detail", "instance"}
    _unchanged(world, ids)
    # Ids that exist answer exactly like ids that do not.
    missing = world.client.get("/api/v1/designs/999999", headers=world.b.read)
    hidden = world.client.get(f"/api/v1/designs/{ids.design}", headers=world.b.read)
    assert missing.json()["detail"] == hidden.json()["detail"] == "No such design."
    # A comparison mixing one's own plan with another workspace's is refused as a whole.
    own = world.store_plan(world.design(world.b).id, small_plan)
    r = world.client.get(f"/api/v1/comparisons?plan_id={own}&plan_id={ids.plan}", headers=world.b.read)
    assert r.status_code == 404 and SECRET_NAME not in r.text
    # The workspace list shows one's own only.
    listed = world.client.get("/api/v1/workspaces", headers=world.b.read).json()["items"]
    assert [w["id"] for w in listed] == [world.b.workspace_id] and listed[0]["role"] == "viewer"


def test_a_read_only_key_reads_but_cannot_write(world: World, small_plan) -> None:
    ids = _setup(world, small_plan)
    for method, url, kw in _routes(ids):
        r = _call(world, method, url, kw, world.a.read)
        if url.endswith("/audit"):
            assert r.status_code == 403  # keys never read the audit log
        elif method in WRITES:
            assert r.status_code == 403, (method, url, r.status_code)
            assert r.headers["content-type"] == PROBLEM and "read scope" in r.json()["detail"]
        else:
            assert r.status_code == 200, (method, url, r.status_code, r.text)
    _unchanged(world, ids)
    assert world.client.get("/api/v1/workspaces", headers=world.a.read).json()["items"][0]["role"] == "viewer"
    assert world.client.get("/api/v1/workspaces", headers=world.a.write).json()["items"][0]["role"] == "editor"


def test_a_key_revoked_after_use_is_refused(world: World, monkeypatch) -> None:
    url = f"/api/v1/workspaces/{world.a.workspace_id}"
    assert world.client.get(url, headers=world.a.write).status_code == 200
    with world.session() as s:  # revoked by another process (replica): this one kept the key a while
        key = s.exec(select(ApiKey).where(ApiKey.name == "Team A automation")).one()
        acc.revoke_api_key(s, world.a.workspace_id, key.id)
    kept_s = world.client.app.state.settings.api_key_cache_s
    assert 0 < kept_s <= 5
    now = acc.time.monotonic()
    monkeypatch.setattr(acc.time, "monotonic", lambda: now + kept_s + 0.1)
    r = world.client.get(url, headers=world.a.write)
    assert r.status_code == 401 and r.json()["detail"] == "The API key is unknown or revoked."


def _sign_in(world: World, user_id: int) -> tuple[str, str]:
    with world.session() as s:
        user = s.get(User, user_id)
        token = acc.start_session(s, user, days=1)
    csrf = csrf_token_for(world.client.app.state.settings.secret_key, token)
    return token, csrf


def test_audit_log_is_for_signed_in_admins(world: World) -> None:
    c, a = world.client, world.a
    first, did = (c.post(f"/api/v1/workspaces/{a.workspace_id}/designs", json={"spec": SMALL_SPEC},
                         headers=a.write).json()["id"] for _ in range(2))
    url = f"/api/v1/workspaces/{a.workspace_id}/audit"
    r = c.get(url, headers=a.write)
    assert r.status_code == 403 and "API keys" in r.json()["detail"]
    assert c.get(f"/api/v1/workspaces/{world.b.workspace_id}/audit", headers=a.write).status_code == 404

    token, _ = _sign_in(world, a.user_id)
    c.cookies.set(SESSION_COOKIE, token)
    try:
        r = c.get(url, params={"limit": 1})
        assert r.status_code == 200, r.text
        [event] = r.json()["items"]
        assert event["action"] == "design.create" and event["target"] == f"design:{did}"
        assert event["actor"].startswith("key:") and event["detail"]["via"] == "api"
        r = c.get(url, params={"limit": 1, "cursor": r.json()["next_cursor"]})
        assert [e["target"] for e in r.json()["items"]] == [f"design:{first}"] and r.json()["next_cursor"] is None
        assert c.get(f"/api/v1/workspaces/{world.b.workspace_id}/audit").status_code == 404
        with world.session() as s:  # an editor (not admin) may not read it
            m = s.exec(select(Membership).where(Membership.user_id == a.user_id)).one()
            m.role = "editor"
            s.add(m)
            s.commit()
        r = c.get(url)
        assert r.status_code == 403 and "admin" in r.json()["detail"]
    finally:
        c.cookies.clear()


def test_a_signed_in_browser_needs_the_csrf_header_to_write(world: World) -> None:
    c, a = world.client, world.a
    token, csrf = _sign_in(world, a.user_id)
    c.cookies.set(SESSION_COOKIE, token)
    try:
        listed = c.get("/api/v1/workspaces").json()["items"]
        assert [(w["id"], w["role"]) for w in listed] == [(a.workspace_id, "admin")]
        url = f"/api/v1/workspaces/{a.workspace_id}/designs"
        r = c.post(url, json={"spec": SMALL_SPEC})
        assert r.status_code == 403 and CSRF_HEADER in r.json()["detail"]
        r = c.post(url, json={"spec": SMALL_SPEC}, headers={CSRF_HEADER: "0" * 64})
        assert r.status_code == 403
        r = c.post(url, json={"spec": SMALL_SPEC}, headers={CSRF_HEADER: csrf})
        assert r.status_code == 201
        assert c.get(f"/api/v1/workspaces/{world.b.workspace_id}/designs").status_code == 404
    finally:
        c.cookies.clear()
    with world.session() as s:
        assert len(s.exec(select(Design)).all()) == 1


@pytest.mark.parametrize("scopes,role", [("read", "viewer"), ("read write", "editor")])
def test_key_scopes_map_to_roles(sqlite_world: World, scopes: str, role: str) -> None:
    world = sqlite_world
    with world.session() as s:
        secret, _ = acc.create_api_key(s, world.a.workspace_id, "probe", scopes)
    r = world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}", headers=bearer(secret))
    assert r.status_code == 200 and r.json()["role"] == role
    r = world.client.post(f"/api/v1/workspaces/{world.a.workspace_id}/designs", json={"spec": SMALL_SPEC},
                          headers=bearer(secret))
    assert r.status_code == (201 if role == "editor" else 403)


def test_a_viewer_member_cannot_write_through_the_browser(sqlite_world: World) -> None:
    world = sqlite_world
    with world.session() as s:
        viewer = acc.create_user(s, "vi@example.com", "correct horse battery", scrypt_n=N)
        acc.add_member(s, world.a.workspace_id, "vi@example.com", "viewer")
        vid = viewer.id
    token, csrf = _sign_in(world, vid)
    world.client.cookies.set(SESSION_COOKIE, token)
    try:
        r = world.client.post(f"/api/v1/workspaces/{world.a.workspace_id}/designs", json={"spec": SMALL_SPEC},
                              headers={CSRF_HEADER: csrf})
        assert r.status_code == 403 and "viewer" in r.json()["detail"]
        assert world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}/designs").status_code == 200
    finally:
        world.client.cookies.clear()
