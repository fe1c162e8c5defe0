"""``Idempotency-Key`` on POST, on SQLite and PostgreSQL: a retry replays the first response
(and never solves or creates twice), another body under the same key is refused, failures
are not stored, concurrent requests with one key do the work once, old records expire."""

from __future__ import annotations

import copy
import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from app.models import AuditEvent, Design, IdempotencyRecord, Job, utcnow
from app.services import idempotency as idem
from tests.api.conftest import PROBLEM, SMALL_SPEC, World


def _count(world: World, model, **where) -> int:
    with world.session() as s:
        return s.exec(select(func.count()).select_from(model).filter_by(**where)).one()


def test_a_retried_solve_replays_the_first_answer_and_queues_one_job(world: World) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    headers = {**a.write, "Idempotency-Key": "solve-1"}
    first = c.post(f"/api/v1/designs/{did}/solves", headers=headers)
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    assert world.run_jobs() == [first.json()["id"]]  # the job is done: a new POST would queue another

    retry = c.post(f"/api/v1/designs/{did}/solves", headers=headers)
    assert retry.status_code == 202 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json() and retry.headers["location"] == first.headers["location"]
    assert _count(world, Job, design_id=did) == 1
    assert _count(world, AuditEvent, action="plan.solve") == 1

    # An empty JSON body is the same request as no body (the defaults).
    assert c.post(f"/api/v1/designs/{did}/solves", json={}, headers=headers).json() == first.json()
    # Without the key, or with another one, the POST solves again.
    assert c.post(f"/api/v1/designs/{did}/solves", headers=a.write).json()["id"] != first.json()["id"]
    assert _count(world, Job, design_id=did) == 2


def test_a_retried_create_returns_the_same_design(world: World) -> None:
    c, a = world.client, world.a
    url = f"/api/v1/workspaces/{a.workspace_id}/designs"
    headers = {**a.write, "Idempotency-Key": "c0ffee-42"}
    body = {"name": "Once", "spec": SMALL_SPEC}
    first = c.post(url, json=body, headers=headers)
    # The same JSON with its keys in another order is the same body.
    reordered = {"spec": dict(reversed(list(SMALL_SPEC.items()))), "name": "Once"}
    retry = c.post(url, json=reordered, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["location"] == first.headers["location"]
    assert _count(world, Design, workspace_id=a.workspace_id) == 1
    assert _count(world, AuditEvent, action="design.create") == 1

    # Another body, or another URL, under the same key: a problem, and nothing is created.
    other = copy.deepcopy(body) | {"name": "Twice"}
    r = c.post(url, json=other, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "header.idempotency-key" and "different request" in r.json()["detail"]
    r = c.post(f"/api/v1/designs/{first.json()['id']}/solves", headers=headers)
    assert r.status_code == 422
    assert _count(world, Design, workspace_id=a.workspace_id) == 1 and _count(world, Job) == 0

    # Keys belong to their caller: another key may use the same string for its own request.
    r = c.post(f"/api/v1/workspaces/{world.b.workspace_id}/designs", json=body,
               headers={**world.b.write, "Idempotency-Key": "c0ffee-42"})
    assert r.status_code == 201 and r.json()["workspace_id"] == world.b.workspace_id
    assert "idempotent-replayed" not in r.headers


def test_failed_requests_are_not_stored(world: World) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    with world.session() as s:  # break the stored spec: the solve is refused
        d = s.get(Design, did)
        saved = d.spec
        d.spec = {**saved, "lifecycle": {**saved["lifecycle"], "horizon_months": 0}}
        s.add(d)
        s.commit()
    headers = {**a.write, "Idempotency-Key": "retry-after-fix"}
    assert c.post(f"/api/v1/designs/{did}/solves", headers=headers).status_code == 422
    assert _count(world, IdempotencyRecord) == 0
    assert c.put(f"/api/v1/designs/{did}", json={"spec": SMALL_SPEC}, headers=a.write).status_code == 200
    r = c.post(f"/api/v1/designs/{did}/solves", headers=headers)
    assert r.status_code == 202 and "idempotent-replayed" not in r.headers
    assert _count(world, Job, design_id=did) == 1


def test_bad_keys_are_validation_problems(world: World) -> None:
    url = f"/api/v1/workspaces/{world.a.workspace_id}/designs"
    for key in ("has space", "x" * 201, "é"):
        r = world.client.post(url, json={"spec": SMALL_SPEC},
                              headers={**world.a.write, "Idempotency-Key": key.encode()})
        assert r.status_code == 422, key
        assert r.json()["errors"][0]["field"] == "header.idempotency-key"
    assert _count(world, Design) == 0


def test_concurrent_requests_with_one_key_create_one_design(world: World) -> None:
    url = f"/api/v1/workspaces/{world.a.workspace_id}/designs"
    headers = {**world.a.write, "Idempotency-Key": "burst"}
    barrier = threading.Barrier(6)
    answers = []

    def post() -> None:
        barrier.wait()
        r = world.client.post(url, json={"spec": SMALL_SPEC}, headers=headers)
        answers.append((r.status_code, r.json().get("id")))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _count(world, Design) == 1
    created = {i for status, i in answers if status == 201}
    assert len(created) == 1 and {status for status, _ in answers} <= {201, 409}
    # Once the first is answered, every retry replays it.
    r = world.client.post(url, json={"spec": SMALL_SPEC}, headers=headers)
    assert r.status_code == 201 and r.json()["id"] in created


def test_racing_claims_let_exactly_one_win(engine) -> None:
    """The unique constraint decides between concurrent inserts of one (principal, key)."""
    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def claim() -> None:
        with Session(engine) as s:
            barrier.wait()
            try:
                got = idem.begin(s, "key:1", "k", method="POST", path="/p", request_hash="h")
                outcomes.append("owner" if got is None else "replay")
            except idem.KeyInProgress:
                outcomes.append("in-progress")

    threads = [threading.Thread(target=claim) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["in-progress"] * 4 + ["owner"]
    with Session(engine) as s:
        idem.finish(s, "key:1", "k", status_code=201, body={"id": 7}, headers={"Location": "/x/7"})
        stored = idem.begin(s, "key:1", "k", method="POST", path="/p", request_hash="h")
        assert stored == idem.StoredResponse(201, {"id": 7}, {"Location": "/x/7"})
        with pytest.raises(idem.KeyReused):
            idem.begin(s, "key:1", "k", method="POST", path="/p", request_hash="other")


def test_abandoned_and_expired_records(engine) -> None:
    with Session(engine) as s:
        assert idem.begin(s, "key:1", "stuck", method="POST", path="/p", request_hash="h") is None
        with pytest.raises(idem.KeyInProgress):
            idem.begin(s, "key:1", "stuck", method="POST", path="/p", request_hash="h")
        # A claim left pending by a process that stopped is taken over after the timeout.
        later = utcnow() + idem.PENDING_TIMEOUT + timedelta(seconds=1)
        assert idem.begin(s, "key:1", "stuck", method="POST", path="/p", request_hash="h", now=later) is None

        assert idem.begin(s, "key:1", "old", method="POST", path="/p", request_hash="h") is None
        idem.finish(s, "key:1", "old", status_code=201, body={}, headers={})
        # After 24 hours the key is free again, even for another request...
        tomorrow = utcnow() + idem.RETENTION + timedelta(minutes=1)
        assert idem.begin(s, "key:1", "old", method="POST", path="/q", request_hash="new", now=tomorrow) is None
        # ...and pruning removes what is older than that.
        assert idem.prune(s, now=tomorrow + idem.RETENTION + timedelta(hours=1)) == 2
        assert s.exec(select(func.count()).select_from(IdempotencyRecord)).one() == 0
