"""Designs over the API on SQLite and PostgreSQL: create, read, replace, patch, delete,
pagination, validation problems with field paths, audit events with the key as actor."""

from __future__ import annotations

import copy

from sqlmodel import select

from app.models import AuditEvent, Design
from tests.api.conftest import PROBLEM, SMALL_SPEC, World


def _create(world: World, name: str | None = None, spec=None, headers=None) -> dict:
    body = {"spec": spec or SMALL_SPEC, **({"name": name} if name is not None else {})}
    r = world.client.post(f"/api/v1/workspaces/{world.a.workspace_id}/designs", json=body,
                          headers=headers or world.a.write)
    assert r.status_code == 201, r.text
    return r.json()


def test_crud_round_trip(world: World) -> None:
    c, a = world.client, world.a
    created = _create(world, name="Chatbot (cloud only)")
    did = created["id"]
    assert created["name"] == "Chatbot (cloud only)" and created["workspace_id"] == a.workspace_id
    assert created["url"] == f"/api/v1/designs/{did}" and created["latest_plan"] is None
    assert created["spec"]["lifecycle"] == {"start_month": "2027-01", "horizon_months": 12,
                                            "retraining_cadence": {"kind": "once", "n": None}}
    assert created["solves_url"] == f"/api/v1/designs/{did}/solves"

    r = c.get(f"/api/v1/designs/{did}", headers=a.read)
    assert r.status_code == 200 and r.json() == created

    # Without a name the spec's name is used.
    assert _create(world)["name"] == "Support chatbot"

    # PUT replaces the spec (and keeps the name when none is given).
    spec = copy.deepcopy(SMALL_SPEC)
    spec["lifecycle"]["horizon_months"] = 6
    r = c.put(f"/api/v1/designs/{did}", json={"spec": spec}, headers=a.write)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["lifecycle"]["horizon_months"] == 6 and r.json()["name"] == "Chatbot (cloud only)"

    # PATCH renames only.
    r = c.patch(f"/api/v1/designs/{did}", json={"name": "  Chatbot v2 "}, headers=a.write)
    assert r.status_code == 200 and r.json()["name"] == "Chatbot v2"
    assert r.json()["spec"]["lifecycle"]["horizon_months"] == 6
    assert c.get(f"/api/v1/designs/{did}", headers=a.read).json()["name"] == "Chatbot v2"

    r = c.delete(f"/api/v1/designs/{did}", headers=a.write)
    assert r.status_code == 204 and r.content == b""
    r = c.get(f"/api/v1/designs/{did}", headers=a.read)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["detail"] == "No such design."
    with world.session() as s:
        assert s.get(Design, did) is None


def test_pagination_newest_first_with_cursor(world: World) -> None:
    ids = [_create(world, name=f"Design {i}")["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}/designs", params=params,
                             headers=world.a.read)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 2
        seen += [d["id"] for d in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3

    # A cursor is bound to its listing: the plans of a design do not take it.
    r = world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}/designs", params={"limit": 2},
                         headers=world.a.read)
    cursor = r.json()["next_cursor"]
    r = world.client.get(f"/api/v1/designs/{ids[0]}/plans", params={"cursor": cursor}, headers=world.a.read)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.cursor"
    r = world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}/designs", params={"cursor": "%%%"},
                         headers=world.a.read)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"] == [{"field": "query.cursor", "message": "not a cursor returned by this API",
                                   "type": "value_error"}]
    r = world.client.get(f"/api/v1/workspaces/{world.a.workspace_id}/designs", params={"limit": 0},
                         headers=world.a.read)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"


def test_validation_problems_name_each_field(world: World) -> None:
    c, url = world.client, f"/api/v1/workspaces/{world.a.workspace_id}/designs"
    spec = copy.deepcopy(SMALL_SPEC)
    spec["lifecycle"]["horizon_months"] = 999
    spec["performance"]["inference"][0]["always_on_gpus"] = 0
    r = c.post(url, json={"spec": spec}, headers=world.a.write)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 422 and body["title"] == "Validation failed" and body["instance"] == url
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"spec.lifecycle.horizon_months", "spec.performance.inference.0.always_on_gpus"}

    # Cross-field rules point at their field too.
    spec = copy.deepcopy(SMALL_SPEC)
    spec["performance"]["inference"][0]["per_gpu_rps"] = 3
    r = c.post(url, json={"spec": spec}, headers=world.a.write)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"spec.performance.inference.0.always_on_gpus"}

    r = c.post(url, json={"spec": SMALL_SPEC, "name": "two\nlines"}, headers=world.a.write)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    r = c.post(url, json={"spec": SMALL_SPEC, "colour": "red"}, headers=world.a.write)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = c.post(url, content=b"{not json", headers={**world.a.write, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM

    did = _create(world)["id"]
    r = c.patch(f"/api/v1/designs/{did}", json={}, headers=world.a.write)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "(body)"
    r = c.put(f"/api/v1/designs/{did}", json={"spec": spec}, headers=world.a.write)
    assert r.status_code == 422
    with world.session() as s:
        assert s.get(Design, did).spec["performance"]["inference"][0]["per_gpu_rps"] is None  # unchanged


def test_writes_are_audited_with_the_key_as_actor(world: World) -> None:
    did = _create(world, name="Audited")["id"]
    world.client.patch(f"/api/v1/designs/{did}", json={"name": "Audited 2"}, headers=world.a.write)
    world.client.delete(f"/api/v1/designs/{did}", headers=world.a.write)
    with world.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.workspace_id == world.a.workspace_id)
                        .order_by(AuditEvent.id)).all()
    trail = [(e.action, e.target) for e in events]
    assert trail == [("design.create", f"design:{did}"), ("design.update", f"design:{did}"),
                     ("design.delete", f"design:{did}")]
    assert all(e.actor.startswith("key:") and e.actor_label.startswith("API key Team A automation")
               and e.detail["via"] == "api" for e in events)
    assert events[1].detail["fields"] == ["name"]
