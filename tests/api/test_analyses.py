"""What-if analyses over the API: ``POST /api/v1/designs/{id}/analyses`` answers 202 with the
job (``Location``), the same request finds the same job, the polled job carries its
``result``; inputs are checked (422 problems), writes need the write scope, other
workspaces' designs are not found."""

from __future__ import annotations

import pytest

from app.planner.analysis import Sensitivity
from app.services.estimate import CurvePoint
from tests.api.conftest import PROBLEM, World


def _analyse(world: World, did: int, body: dict, headers=None, **kw):
    return world.client.post(f"/api/v1/designs/{did}/analyses", json=body, headers=headers or world.a.write, **kw)


def test_a_curve_is_accepted_then_polled_to_its_result(world: World) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    body = {"kind": "deadline_curve", "factors": [1, 0.5], "adjustments": {"demand_scale": 1.2}}
    r = _analyse(world, did, body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}" == job["url"]
    assert (job["kind"], job["status"], job["design_id"], job["result"]) == ("curve", "queued", did, None)
    assert job["plan_url"] is None and job["error"] is None

    # Asked again (factors in another order): the same job, not a second one.
    again = _analyse(world, did, {**body, "factors": [0.5, 1, 0.5]})
    assert again.status_code == 202 and again.json()["id"] == job["id"]

    assert world.run_jobs() == [job["id"]]
    done = c.get(r.headers["location"], headers=a.read)
    assert done.status_code == 200
    out = done.json()
    assert out["status"] == "succeeded" and out["progress"] == 1.0 and out["plan_id"] is None
    points = [CurvePoint.model_validate(p) for p in out["result"]["points"]]
    assert [p.factor for p in points] == [0.5, 1.0] and all(p.ok for p in points)
    assert out["result"]["factors"] == [0.5, 1.0] and out["result"]["time_limit_s"] == 5.0
    assert points[0].peak_gpus > points[1].peak_gpus  # half the time needs more GPUs at once

    # Done: asking again returns the finished job with its result, nothing runs.
    third = _analyse(world, did, body)
    assert third.json()["id"] == job["id"] and third.json()["result"] == out["result"]
    assert world.run_jobs() == []


def test_sensitivity_result_rebuilds_the_scenarios(sqlite_world: World) -> None:
    world = sqlite_world
    did = world.design(world.a).id
    r = _analyse(world, did, {"kind": "sensitivity", "adjustments": {"spot_interruption_overhead": 0.3}})
    assert r.status_code == 202 and r.json()["kind"] == "sensitivity"
    assert world.run_jobs() == [r.json()["id"]]
    out = world.client.get(r.headers["location"], headers=world.a.read).json()
    sens = Sensitivity.model_validate(out["result"]["sensitivity"])
    assert sens.base_objective and any(s.label == "Demand +20 %" for s in sens.scenarios)


def test_plan_jobs_have_no_result(sqlite_world: World) -> None:
    world = sqlite_world
    did = world.design(world.a).id
    r = world.client.post(f"/api/v1/designs/{did}/solves", headers=world.a.write)
    assert r.status_code == 202 and r.json()["result"] is None
    world.run_jobs()
    out = world.client.get(r.headers["location"], headers=world.a.read).json()
    assert out["status"] == "succeeded" and out["plan_url"] and out["result"] is None


def test_a_failed_analysis_runs_again_when_asked(sqlite_world: World) -> None:
    from app.jobs import service as jobs_svc

    world = sqlite_world
    did = world.design(world.a).id
    first = _analyse(world, did, {"kind": "deadline_curve", "factors": [1]}).json()
    with world.session() as s:
        assert jobs_svc.claim(s, first["id"], "host:1:test")
        assert jobs_svc.fail(s, first["id"], "host:1:test", "The solve did not finish in time.")
    failed = world.client.get(first["url"], headers=world.a.read).json()
    assert (failed["status"], failed["error"], failed["result"]) == ("failed", "The solve did not finish in time.", None)
    again = _analyse(world, did, {"kind": "deadline_curve", "factors": [1]})
    assert again.status_code == 202 and again.json()["id"] != first["id"] and again.json()["status"] == "queued"


@pytest.mark.parametrize("body, field", [
    ({"kind": "deadline_curve", "factors": [0.01, 1]}, "factors.0"),
    ({"kind": "deadline_curve", "factors": [1, 11]}, "factors.1"),
    ({"kind": "deadline_curve", "factors": []}, "factors"),
    ({"kind": "deadline_curve", "factors": [0.25, 0.5, 0.75, 1, 1.5, 2, 3]}, "factors"),
    ({"kind": "curve"}, "kind"),
    ({}, "kind"),
    ({"kind": "sensitivity", "adjustments": {"utilization": 2}}, "adjustments.utilization"),
    ({"kind": "sensitivity", "adjustments": {"demand_scale": 0}}, "adjustments.demand_scale"),
    ({"kind": "sensitivity", "adjustments": {"price_factors": {"gold": 1.1}}}, "adjustments.price_factors.gold.[key]"),
    ({"kind": "sensitivity", "adjustments": {"price_factors": {"spot": -1}}}, "adjustments.price_factors.spot"),
    ({"kind": "sensitivity", "adjustments": {"max_gpus_per_region": 0}}, "adjustments.max_gpus_per_region"),
    ({"kind": "sensitivity", "adjustments": {"discount": 0.5}}, "adjustments.discount"),
    ({"kind": "sensitivity", "extra": 1}, "extra"),
])
def test_inputs_are_checked(sqlite_world: World, body: dict, field: str) -> None:
    world = sqlite_world
    did = world.design(world.a).id
    r = _analyse(world, did, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["status"] == 422 and problem["title"] == "Validation failed"
    assert field in [e["field"] for e in problem["errors"]], problem["errors"]
    with world.session() as s:
        from sqlmodel import select

        from app.models import Job

        assert s.exec(select(Job)).all() == []  # nothing was queued


def test_too_many_distinct_factors_are_named(sqlite_world: World) -> None:
    world = sqlite_world
    did = world.design(world.a).id
    r = _analyse(world, did, {"kind": "deadline_curve", "factors": [0.25, 0.5, 0.75, 1, 1.5, 2, 3]})
    assert r.status_code == 422 and "at most 6 distinct factors" in r.json()["errors"][0]["message"]
    # Repeats are not points: six distinct among more values are fine.
    r = _analyse(world, did, {"kind": "deadline_curve", "factors": [0.25, 0.5, 0.75, 1, 1.5, 2, 2, 1]})
    assert r.status_code == 202


def test_read_keys_viewers_and_other_workspaces(sqlite_world: World) -> None:
    world = sqlite_world
    mine, theirs = world.design(world.a).id, world.design(world.b).id
    r = _analyse(world, mine, {"kind": "sensitivity"}, headers=world.a.read)
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    r = _analyse(world, theirs, {"kind": "sensitivity"})
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    r = _analyse(world, 2**31 - 1, {"kind": "sensitivity"})
    assert r.status_code == 404
    # B's job is not A's to read either.
    job = _analyse(world, theirs, {"kind": "sensitivity"}, headers=world.b.write).json()
    assert world.client.get(job["url"], headers=world.a.read).status_code == 404
    assert world.client.get(job["url"], headers=world.b.read).status_code == 200


def test_an_idempotency_key_replays_the_first_answer(sqlite_world: World) -> None:
    world = sqlite_world
    did = world.design(world.a).id
    body = {"kind": "deadline_curve", "factors": [1]}
    key = {**world.a.write, "Idempotency-Key": "analysis-0001"}
    first = _analyse(world, did, body, headers=key)
    replay = _analyse(world, did, body, headers=key)
    assert first.status_code == replay.status_code == 202
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == first.json()
    other = _analyse(world, did, {**body, "factors": [2]}, headers=key)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "header.idempotency-key"


def test_the_operation_is_documented(sqlite_world: World) -> None:
    doc = sqlite_world.client.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/designs/{design_id}/analyses"]["post"]
    assert "202" in op["responses"] and "Location" in op["responses"]["202"]["headers"]
    assert {"403", "404", "422"} <= set(op["responses"])
    job = doc["components"]["schemas"]["JobOut"]["properties"]
    assert "result" in job and "points" in job["result"]["description"]
    body = doc["components"]["schemas"]["AnalysisIn"]["properties"]
    assert all(body[name].get("description") for name in ("kind", "adjustments", "factors"))
