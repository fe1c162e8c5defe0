"""``/workspaces``: create and switch, members and roles, API keys (secret shown once),
the audit log, and hostile names shown as text."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import col, select

from app.models import ApiKey, AuditEvent, AuthSession, Design, Membership, Workspace
from app.requirements.examples import example_text, load_example
from app.services import accounts as acc
from app.services import designs as svc
from tests.signin import make_user, make_workspace
from tests.signin import with_session as _with
from tests.web_designs.conftest import import_bundled

XSS = "<script>alert(1)</script>"
XSS_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _audit(settings) -> list[AuditEvent]:
    return _with(settings, lambda s: list(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()))


def _ws(settings, slug: str) -> Workspace:
    return _with(settings, lambda s: s.exec(select(Workspace).where(Workspace.slug == slug)).one())


def test_list_create_and_switch(client: TestClient, settings) -> None:
    page = client.get("/workspaces")
    assert page.status_code == 200 and "Default workspace" in page.text and ">current</span>" in page.text
    assert 'aria-current="page"' in page.text  # the nav's workspace link
    r = client.post("/workspaces", data={"name": "  "})
    assert r.status_code == 422 and "Give the workspace a name." in r.text
    r = client.post("/workspaces", data={"name": "Research Lab"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/workspaces/research-lab/members?created=1"
    lab = _ws(settings, "research-lab")
    [m] = _with(settings, lambda s: list(s.exec(select(Membership).where(Membership.workspace_id == lab.id)).all()))
    assert m.role == "admin"
    # The new workspace is the current one: designs made now land there.
    designs = client.get("/designs").text
    assert "the workspace <strong>Research Lab</strong>" in designs and "No designs yet." in designs
    r = client.post("/designs/from-example", data={"example": "research-burst-deadline"}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    assert _with(settings, lambda s: s.get(Design, did).workspace_id) == lab.id
    # Switch back: the list shows the default workspace's designs again.
    r = client.post("/workspaces/default/switch", data={"next": "/compare"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/compare"
    designs = client.get("/designs").text
    assert "the workspace <strong>Default workspace</strong>" in designs and f'href="/designs/{did}"' not in designs
    [session_row] = _with(settings, lambda s: list(s.exec(select(AuthSession)).all()))
    assert session_row.workspace_id == _ws(settings, "default").id
    r = client.post("/workspaces/research-lab/switch", data={"next": "https://evil.example/"},
                    follow_redirects=False)
    assert r.headers["location"] == "/designs"
    # Not a member: no such workspace.
    _other_id, other_slug = make_workspace(settings, "Someone else's")
    assert client.post(f"/workspaces/{other_slug}/switch", follow_redirects=False).status_code == 404
    assert client.post("/workspaces/no-such/switch", follow_redirects=False).status_code == 404
    created = [e for e in _audit(settings) if e.action == "workspace.create"]
    assert len(created) == 1 and created[0].workspace_id == lab.id and created[0].detail["slug"] == "research-lab"


def test_a_removed_membership_falls_back_to_another_workspace(client: TestClient, settings) -> None:
    client.post("/workspaces", data={"name": "Short lived"})
    ws = _ws(settings, "short-lived")
    uid = _with(settings, lambda s: acc.get_user_by_email(s, "ada@example.com").id)
    make_user(settings, "helper@example.com", workspace=None)
    _with(settings, lambda s: acc.add_member(s, ws.id, "helper@example.com", "admin"))
    _with(settings, lambda s: acc.remove_member(s, ws.id, uid))  # another admin takes ada out
    html = client.get("/designs").text  # the session's workspace is checked on every request
    assert "the workspace <strong>Default workspace</strong>" in html


def test_admins_manage_members(client: TestClient, settings) -> None:
    make_user(settings, "bob@example.com", workspace=None)
    page = client.get("/workspaces/default/members").text
    assert "ada@example.com" in page and 'id="add-email"' in page
    r = client.post("/workspaces/default/members", data={"email": "nobody@example.com", "role": "viewer"})
    assert r.status_code == 422 and "No user has that e-mail address" in r.text
    r = client.post("/workspaces/default/members", data={"email": "bob@example.com", "role": "owner"})
    assert r.status_code == 422 and "Choose a role" in r.text
    r = client.post("/workspaces/default/members", data={"email": "Bob@Example.com", "role": "viewer"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/workspaces/default/members?saved=added").text
    assert "Member added." in page and "bob@example.com" in page
    r = client.post("/workspaces/default/members", data={"email": "bob@example.com", "role": "editor"})
    assert r.status_code == 422 and "already a member (viewer)" in r.text
    bob = _with(settings, lambda s: acc.get_user_by_email(s, "bob@example.com").id)
    ada = _with(settings, lambda s: acc.get_user_by_email(s, "ada@example.com").id)
    assert client.post(f"/workspaces/default/members/{bob}/role", data={"role": "editor"},
                       follow_redirects=False).status_code == 303
    # The last admin stays.
    r = client.post(f"/workspaces/default/members/{ada}/role", data={"role": "viewer"})
    assert r.status_code == 422 and "keeps at least one admin" in r.text
    r = client.post(f"/workspaces/default/members/{ada}/remove")
    assert r.status_code == 422 and "keeps at least one admin" in r.text
    assert client.post("/workspaces/default/members/99999/remove").status_code == 404
    assert client.post(f"/workspaces/default/members/{bob}/remove", follow_redirects=False).status_code == 303
    assert "bob@example.com" not in client.get("/workspaces/default/members").text
    events = [(e.action, e.target, e.detail) for e in _audit(settings) if e.action.startswith("member.")]
    assert events == [("member.add", f"user:{bob}", {"email": "bob@example.com", "role": "viewer"}),
                      ("member.role", f"user:{bob}", {"email": "bob@example.com", "from": "viewer", "to": "editor"}),
                      ("member.remove", f"user:{bob}", {"email": "bob@example.com"})]


def test_others_see_members_read_only(make_client, settings) -> None:
    editor = make_client("eddie@example.com", role="editor")
    page = editor.get("/workspaces/default/members")
    assert page.status_code == 200 and "eddie@example.com" in page.text
    assert 'action="/workspaces/default/members' not in page.text and 'id="add-email"' not in page.text
    assert "Only the workspace's admins change its members." in page.text
    me = _with(settings, lambda s: acc.get_user_by_email(s, "eddie@example.com").id)
    for path, data in (("/workspaces/default/members", {"email": "eddie@example.com", "role": "admin"}),
                       (f"/workspaces/default/members/{me}/role", {"role": "admin"}),
                       (f"/workspaces/default/members/{me}/remove", {}),
                       ("/workspaces/default/keys", {"name": "k", "scopes": "read write"})):
        r = editor.post(path, data=data)
        assert r.status_code == 403 and "this needs admin" in r.text, path
    assert editor.get("/workspaces/default/audit").status_code == 403
    keys = editor.get("/workspaces/default/keys")
    assert keys.status_code == 200 and 'id="key-name"' not in keys.text


def test_api_key_secret_is_shown_once(client: TestClient, settings) -> None:
    r = client.post("/workspaces/default/keys", data={"name": "", "scopes": "read"})
    assert r.status_code == 422 and "Give the key a name" in r.text
    r = client.post("/workspaces/default/keys", data={"name": "x", "scopes": "write"})
    assert r.status_code == 422 and "Choose the scopes" in r.text
    r = client.post("/workspaces/default/keys", data={"name": "procurement sync", "scopes": "read write"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-key-secret" type="text" readonly value="(ap_[^"]+)"', r.text).group(1)
    assert "shown only on this page" in r.text
    [key] = _with(settings, lambda s: list(s.exec(select(ApiKey)).all()))
    assert key.scopes == "read write" and secret.startswith(key.prefix) and secret not in key.key_hash
    assert _with(settings, lambda s: acc.lookup_api_key(s, secret).id) == key.id  # the secret works
    bearer = {"Authorization": f"Bearer {secret}"}
    api = client.get("/api/v1/workspaces", headers=bearer)
    assert api.status_code == 200  # used once: this process now keeps the key (settings.api_key_cache_s)
    listing = client.get("/workspaces/default/keys").text
    assert secret not in listing and f"<code>{key.prefix}…</code>" in listing and "procurement sync" in listing
    assert ">active</span>" in listing and "ada@example.com" in listing
    for path in ("/workspaces", "/workspaces/default/members", "/workspaces/default/audit"):
        assert secret not in client.get(path).text
    # Revoke: a confirmation page, then the revoke.
    confirm = client.get(f"/workspaces/default/keys/{key.id}/revoke")
    assert confirm.status_code == 200 and "Revoke the API key “procurement sync”?" in confirm.text
    assert _with(settings, lambda s: s.get(ApiKey, key.id).revoked_at) is None  # looking changes nothing
    r = client.post(f"/workspaces/default/keys/{key.id}/revoke", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/workspaces/default/keys?revoked=1"
    listing = client.get("/workspaces/default/keys?revoked=1").text
    assert ">revoked</span>" in listing and "The key is revoked" in listing
    assert f'/keys/{key.id}/revoke"' not in listing
    assert _with(settings, lambda s: acc.lookup_api_key(s, secret)) is None
    # Revoked through this process: refused at once, not after the kept copy's time.
    assert settings.api_key_cache_s > 0
    api = client.get("/api/v1/workspaces", headers=bearer)
    assert api.status_code == 401, api.text
    assert client.post(f"/workspaces/default/keys/{key.id}/revoke", follow_redirects=False).status_code == 303
    assert client.post("/workspaces/default/keys/99999/revoke").status_code == 404
    actions = [(e.action, e.target) for e in _audit(settings) if e.action.startswith("key.")]
    assert actions == [("key.create", f"key:{key.id}"), ("key.revoke", f"key:{key.id}")]
    assert all(secret not in str(e.detail) for e in _audit(settings))


def test_keys_of_another_workspace_cannot_be_revoked(client: TestClient, settings) -> None:
    other_id, other_slug = make_workspace(settings, "Other")
    _secret, key = _with(settings, lambda s: acc.create_api_key(s, other_id, "theirs", "read"))
    assert client.post(f"/workspaces/default/keys/{key.id}/revoke").status_code == 404
    assert client.post(f"/workspaces/{other_slug}/keys/{key.id}/revoke").status_code == 404
    assert _with(settings, lambda s: s.get(ApiKey, key.id).revoked_at) is None


def test_the_audit_log_pages_newest_first(client: TestClient, settings) -> None:
    r = client.post("/designs/from-example", data={"example": "research-burst-deadline"}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    client.post(f"/designs/{did}/rename", data={"name": "Renamed"})
    client.post(f"/designs/{did}/duplicate")
    page = client.get("/workspaces/default/audit").text
    rows = re.findall(r"<td><code>([\w.]+)</code></td>", page)
    assert rows == ["design.duplicate", "design.rename", "design.create"]
    assert "ada@example.com" in page and "testclient" in page and "Older events" not in page
    ws_id = _ws(settings, "default").id
    _with(settings, lambda s: [acc.record(s, None, "test.event", workspace_id=ws_id, target=f"n:{i}", commit=False)
                               for i in range(60)] and s.commit())
    client.post("/workspaces", data={"name": "Elsewhere"})  # its events are its own
    first = client.get("/workspaces/default/audit").text
    assert first.count("<tr>") == 51  # header + 50
    assert "<code>n:59</code>" in first and "<code>n:10</code>" in first and "<code>n:9</code>" not in first
    older = re.search(r'href="(/workspaces/default/audit\?before=\d+)">Older events', first).group(1)
    second = client.get(older).text
    assert "<code>n:9</code>" in second and "<code>n:0</code>" in second and "design.create" in second
    assert "Older events" not in second and "Newest events" in second
    # Another workspace's events are not in this one.
    assert "workspace.create" not in first + second


def test_changes_from_the_pages_are_audited(client: TestClient, settings, bundled) -> None:
    import_bundled(settings.database_url, bundled)
    r = client.post("/designs/from-example", data={"example": "llm-finetune-hipaa"}, follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    client.post(f"/designs/{did}/spec", data={"spec_yaml": example_text("llm-finetune-hipaa")})
    job_url = client.post(f"/designs/{did}/plan", follow_redirects=False).headers["location"]
    client.post(f"/designs/{did}/plan")  # the same job again: not a new solve
    assert client.app.state.job_runner.run_one() is not None
    plan_url = client.get(job_url, follow_redirects=False).headers["location"]
    pid = int(plan_url.rsplit("/", 1)[1])
    assert client.get(plan_url + "/schedule.csv").status_code == 200
    zipped = client.get(plan_url + "/bundles/helm.zip")
    assert client.get(plan_url + "/bundles/helm.zip",
                      headers={"If-None-Match": zipped.headers["etag"]}).status_code == 304  # not a new export
    client.post(f"/designs/{did}/delete")
    events = [(e.action, e.target) for e in _audit(settings) if not e.action.startswith("user.")]
    assert events == [("design.create", f"design:{did}"), ("design.update", f"design:{did}"),
                      ("plan.solve", f"design:{did}"), ("schedule.export", f"plan:{pid}"),
                      ("bundle.export", f"plan:{pid}"), ("design.delete", f"design:{did}")]
    ws_id = _ws(settings, "default").id
    assert all(e.workspace_id == ws_id and e.actor.startswith("user:") for e in _audit(settings)
               if not e.action.startswith("user."))


def test_hostile_names_are_text(client: TestClient, settings) -> None:
    r = client.post("/workspaces", data={"name": XSS}, follow_redirects=False)
    slug = r.headers["location"].split("/")[2]
    assert slug == "script-alert-1-script"
    r = client.post("/designs/from-example", data={"example": "research-burst-deadline", "name": XSS},
                    follow_redirects=False)
    did = int(r.headers["location"].rsplit("/", 1)[1])
    _with(settings, lambda s: svc.create_design(s, _ws(settings, slug).id, load_example("llm-finetune-hipaa"),
                                                 'a"><img src=x onerror=alert(2)>'))
    pages = ["/workspaces", f"/workspaces/{slug}/members", f"/workspaces/{slug}/keys", f"/workspaces/{slug}/audit",
             "/designs", f"/designs/{did}", f"/designs/{did}/delete", "/compare", f"/designs/{did}/wizard"]
    for path in pages:
        html = client.get(path).text
        assert XSS not in html and "<img src=x" not in html, path
        assert XSS_TEXT in html, path
    assert "&lt;img src=x onerror=alert(2)&gt;" in client.get("/designs").text
