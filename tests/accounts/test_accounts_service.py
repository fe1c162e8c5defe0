"""Accounts service on SQLite and PostgreSQL: passwords, sessions, roles, keys, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from app.models import AuthSession, Design, Membership, Workspace
from app.services import access
from app.services import accounts as acc

N = 2**10  # cheap scrypt for tests; the default comes from the settings


def user(session, email="ana@example.com", **kw):
    return acc.create_user(session, email, "correct horse battery", scrypt_n=N, **kw)


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    a = acc.hash_password("correct horse battery", n=N)
    b = acc.hash_password("correct horse battery", n=N)
    assert a != b and a.startswith(f"scrypt${N}$8$3$")
    assert acc.verify_password("correct horse battery", a)
    assert not acc.verify_password("correct horse batterY", a)
    assert not acc.verify_password("x", "not-a-hash")
    assert "correct" not in a


def test_users_emails_and_passwords_are_checked(session) -> None:
    u = user(session, email="  Ana@Example.COM ")
    assert u.email == "ana@example.com"
    with pytest.raises(acc.AccountError, match="already exists"):
        user(session, email="ana@example.com")
    with pytest.raises(acc.AccountError, match="e-mail"):
        acc.create_user(session, "not an address", "correct horse battery", scrypt_n=N)
    with pytest.raises(acc.AccountError, match="at least 10"):
        acc.create_user(session, "bo@example.com", "short", scrypt_n=N)


def test_authenticate_and_rehash_on_stronger_settings(session) -> None:
    u = user(session)
    assert acc.authenticate(session, "ana@example.com", "wrong password!", scrypt_n=N) is None
    assert acc.authenticate(session, "nobody@example.com", "correct horse battery", scrypt_n=N) is None
    got = acc.authenticate(session, "ANA@example.com", "correct horse battery", scrypt_n=N)
    assert got is not None and got.id == u.id and got.last_login_at is not None
    got = acc.authenticate(session, "ana@example.com", "correct horse battery", scrypt_n=2 * N)
    assert got.password_hash.startswith(f"scrypt${2 * N}$")
    u.disabled = True
    session.add(u)
    session.commit()
    assert acc.authenticate(session, "ana@example.com", "correct horse battery", scrypt_n=2 * N) is None


def test_sessions_store_only_a_hash_expire_and_end(session) -> None:
    u = user(session)
    token = acc.start_session(session, u, days=1)
    row = session.exec(select(AuthSession)).one()
    assert token not in row.token_hash and len(row.token_hash) == 64
    found = acc.session_for_token(session, token)
    assert found is not None and found[1].id == u.id
    assert acc.session_for_token(session, token + "x") is None
    acc.end_session(session, token)
    assert acc.session_for_token(session, token) is None
    token = acc.start_session(session, u, days=1)
    row = session.exec(select(AuthSession)).one()
    row.expires_at = row.created_at - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert acc.session_for_token(session, token) is None
    assert session.exec(select(AuthSession)).first() is None  # expired sessions are removed


def test_first_workspace_is_created_and_roles_decide_access(session) -> None:
    ana, bo = user(session), user(session, email="bo@example.com")
    (ws, role), = acc.ensure_workspace(session, ana)
    assert role == "admin" and ws.name == "ana's workspace"
    assert acc.ensure_workspace(session, ana) == [(ws, "admin")]  # not created twice
    design = Design(workspace_id=ws.id, name="d", spec={})
    session.add(design)
    session.commit()

    bo_p = acc.Principal(user=bo)
    with pytest.raises(acc.NotFound):
        access.design_for(session, bo_p, design.id)
    acc.add_member(session, ws.id, "BO@example.com", "viewer")
    assert access.design_for(session, bo_p, design.id).id == design.id
    with pytest.raises(acc.Forbidden, match="viewer"):
        access.design_for(session, bo_p, design.id, need="editor")
    acc.set_role(session, ws.id, bo.id, "editor")
    assert access.design_for(session, bo_p, design.id, need="editor")

    with pytest.raises(acc.AccountError, match="already a member"):
        acc.add_member(session, ws.id, "bo@example.com", "viewer")
    with pytest.raises(acc.AccountError, match="No user"):
        acc.add_member(session, ws.id, "carla@example.com", "viewer")
    with pytest.raises(acc.AccountError, match="at least one admin"):
        acc.set_role(session, ws.id, ana.id, "viewer")
    with pytest.raises(acc.AccountError, match="at least one admin"):
        acc.remove_member(session, ws.id, ana.id)
    acc.remove_member(session, ws.id, bo.id)
    with pytest.raises(acc.NotFound):
        access.design_for(session, bo_p, design.id)


def test_workspace_slugs_are_unique(session) -> None:
    ana = user(session)
    a = acc.create_workspace(session, "Team X", ana)
    b = acc.create_workspace(session, "Team X", ana)
    assert a.slug == "team-x" and b.slug.startswith("team-x-") and a.slug != b.slug
    with pytest.raises(acc.AccountError):
        acc.create_workspace(session, "  ", ana)
    assert session.exec(select(Membership).where(Membership.workspace_id == b.id)).one().role == "admin"


def test_api_keys_are_hashed_scoped_and_revocable(session) -> None:
    ana = user(session)
    ws = acc.create_workspace(session, "Team", ana)
    other = acc.create_workspace(session, "Other", ana)
    secret, key = acc.create_api_key(session, ws.id, "procurement", ["read"], created_by=ana.id)
    assert secret.startswith("ap_") and secret not in key.key_hash and key.prefix == secret[:10]
    assert key.last_used_at is None
    found = acc.lookup_api_key(session, secret)
    assert found.id == key.id and found.last_used_at is not None
    p = acc.Principal(key=found)
    assert acc.workspace_role(session, p, ws.id) == "viewer"
    assert acc.workspace_role(session, p, other.id) is None
    with pytest.raises(acc.Forbidden, match="read scope"):
        acc.require_role(session, p, ws.id, "editor")
    _, writer = acc.create_api_key(session, ws.id, "ci", "write")
    assert writer.scopes == "read write"
    assert acc.workspace_role(session, acc.Principal(key=writer), ws.id) == "editor"
    acc.revoke_api_key(session, ws.id, key.id)
    assert acc.lookup_api_key(session, secret) is None
    with pytest.raises(acc.NotFound):
        acc.revoke_api_key(session, other.id, writer.id)
    with pytest.raises(acc.AccountError):
        acc.create_api_key(session, ws.id, "x", ["admin"])
    assert [k.name for k in acc.list_api_keys(session, ws.id)] == ["ci", "procurement"]  # revoked last


def test_audit_log_lists_a_workspace_newest_first(session) -> None:
    ana = user(session)
    ws = acc.create_workspace(session, "Team", ana)
    p = acc.Principal(user=ana)
    for i in range(5):
        acc.record(session, p, "design.create", workspace_id=ws.id, target=f"design:{i}", ip="10.0.0.1")
    acc.record(session, None, "user.create")
    events = acc.list_audit(session, ws.id, limit=3)
    assert [e.target for e in events] == ["design:4", "design:3", "design:2"]
    assert events[0].actor == f"user:{ana.id}" and events[0].actor_label == "ana@example.com"
    more = acc.list_audit(session, ws.id, limit=3, before_id=events[-1].id)
    assert [e.target for e in more] == ["design:1", "design:0"]
    assert session.exec(select(Workspace)).all()


def test_api_key_cache_keeps_live_keys_for_its_time_only(session, monkeypatch) -> None:
    ana = user(session)
    ws = acc.create_workspace(session, "Team", ana)
    secret, key = acc.create_api_key(session, ws.id, "poller", ["read"], created_by=ana.id)
    other_secret, other = acc.create_api_key(session, ws.id, "other", ["read"], created_by=ana.id)
    clock = [1000.0]
    monkeypatch.setattr(acc.time, "monotonic", lambda: clock[0])
    queries: list[str] = []
    cache = acc.ApiKeyCache(ttl_s=5)
    real_lookup = acc.lookup_api_key
    monkeypatch.setattr(acc, "lookup_api_key", lambda s, sec: queries.append(sec) or real_lookup(s, sec))

    first = cache.lookup(session, secret)
    assert first.id == key.id and first.workspace_id == ws.id and first.scopes == "read"
    assert first not in session  # a detached copy, shared by requests
    assert cache.lookup(session, secret) is first and queries == [secret]  # kept: no second lookup
    assert cache.lookup(session, "ap_unknown") is None and cache.lookup(session, "ap_unknown") is None
    assert queries.count("ap_unknown") == 2  # unknown keys are never kept

    acc.revoke_api_key(session, ws.id, key.id)  # revoked elsewhere: still accepted until its time is up
    clock[0] += 4.9
    assert cache.lookup(session, secret) is first
    clock[0] += 0.2
    assert cache.lookup(session, secret) is None  # looked up again: revoked

    assert cache.lookup(session, other_secret).id == other.id
    cache.forget(other.id)  # revoked through this process: forgotten at once
    acc.revoke_api_key(session, ws.id, other.id)
    assert cache.lookup(session, other_secret) is None

    off = acc.ApiKeyCache(ttl_s=0)
    _, third = acc.create_api_key(session, ws.id, "third", ["read"])
    n = len(queries)
    off.lookup(session, "ap_x")
    off.lookup(session, "ap_x")
    assert len(queries) == n + 2


def test_roles_loaded_for_a_request_answer_access_checks_without_a_query(session) -> None:
    ana = user(session)
    ws = acc.create_workspace(session, "Team", ana)
    other = acc.create_workspace(session, "Other", user(session, "bo@example.com"))
    loaded = acc.Principal(user=ana, roles=((ws.id, "viewer"),))  # as the page's sign-in check listed them
    statements: list[str] = []
    from sqlalchemy import event

    def count(*args) -> None:
        statements.append(args[2])

    event.listen(session.get_bind(), "before_cursor_execute", count)
    try:
        assert acc.workspace_role(session, loaded, ws.id) == "viewer"  # the loaded role, not the stored admin
        assert acc.workspace_role(session, loaded, other.id) is None
        with pytest.raises(acc.Forbidden):
            acc.require_role(session, loaded, ws.id, "editor")
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", count)
    assert statements == []
    assert acc.workspace_role(session, acc.Principal(user=ana), ws.id) == "admin"  # without: the database
