"""Solves and plans over the API: 202 + Location, polling the job to its plan, the plan's
figures, ETag/304, the schedule as JSON or CSV by ``Accept``, bundles, cancel, comparisons."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from sqlmodel import Session, select

from app.catalog.schema import Snapshot
from app.jobs import service as jobs_svc
from app.models import AuditEvent, Job
from app.models import Plan as PlanRow
from app.services import catalog as catalog_svc
from app.services import plans as plans_svc
from tests.api.conftest import PROBLEM, World, infeasible_spec


def _solve(world: World, did: int, headers=None, **kw):
    return world.client.post(f"/api/v1/designs/{did}/solves", headers=headers or world.a.write, **kw)


def test_solve_is_accepted_then_polled_to_its_plan(world: World, bundled: Snapshot) -> None:
    with Session(world.engine) as s:  # a stored snapshot, so the plan names its date
        catalog_svc.import_snapshot(s, bundled, origin="test")
    c, a = world.client, world.a
    did = world.design(a).id
    r = _solve(world, did)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}" == job["url"]
    assert job["status"] == "queued" and job["plan_url"] is None and job["design_id"] == did
    assert job["queue_position"] == 0 and job["attempts"] == 0 and job["error"] is None

    # Asked again while queued: the same job, not a second one.
    again = _solve(world, did)
    assert again.status_code == 202 and again.json()["id"] == job["id"]

    assert world.run_jobs() == [job["id"]]
    polled = c.get(r.headers["location"], headers=a.read)
    assert polled.status_code == 200
    done = polled.json()
    assert done["status"] == "succeeded" and done["progress"] == 1.0 and done["finished_at"]
    assert done["plan_url"] == f"/api/v1/plans/{done['plan_id']}"

    r = c.get(done["plan_url"], headers=a.read)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    plan = r.json()
    with world.session() as s:
        row = s.get(PlanRow, done["plan_id"])
        stored = plans_svc.plan_model(row)
    assert plan["status"] == "optimal" and plan["design_id"] == did and plan["workspace_id"] == a.workspace_id
    assert plan["snapshot"] == {"snapshot_id": bundled.snapshot_id, "date": bundled.created}
    fig = plan["figures"]
    assert fig["total_cost"] == stored.total_cost and fig["npv"] == stored.npv
    assert fig["monthly_run_rate"] == stored.monthly_run_rate and fig["gap"] == stored.gap
    assert [m["month"] for m in plan["monthly"]] == stored.months
    assert sum(m["cost_usd"] for m in plan["monthly"]) == pytest.approx(sum(stored.cost_by_month))
    od = next(b for b in plan["baselines"] if b["name"] == "all_on_demand")
    assert od["total_cost"] == stored.baselines["all_on_demand"]
    assert od["savings_usd"] == pytest.approx(stored.baselines["all_on_demand"] - stored.total_cost, abs=0.01)
    assert len(plan["schedule"]) == len(stored.schedule) >= 1
    assert plan["schedule_url"] == f"/api/v1/plans/{row.id}/schedule"

    # The design now names its latest plan; the plans listing has it.
    assert c.get(f"/api/v1/designs/{did}", headers=a.read).json()["latest_plan"]["id"] == row.id
    listed = c.get(f"/api/v1/designs/{did}/plans", headers=a.read).json()
    assert [p["id"] for p in listed["items"]] == [row.id] and listed["next_cursor"] is None
    with world.session() as s:
        solve_events = s.exec(select(AuditEvent).where(AuditEvent.action == "plan.solve")).all()
    assert [(e.target, e.detail["job_id"], e.actor) for e in solve_events][0][:2] == (f"design:{did}", job["id"])


def test_plan_etag_and_304(world: World, small_plan) -> None:
    c, a = world.client, world.a
    pid = world.store_plan(world.design(a).id, small_plan)
    url = f"/api/v1/plans/{pid}"
    first = c.get(url, headers=a.read)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert c.get(url, headers=a.write).headers["etag"] == etag  # stable
    r = c.get(url, headers={**a.read, "If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = c.get(url, headers={**a.read, "If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304
    r = c.get(url, headers={**a.read, "If-None-Match": '"something-else"'})
    assert r.status_code == 200 and r.json() == first.json()


def test_schedule_as_json_or_csv_by_accept(world: World, small_plan) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    pid = world.store_plan(did, small_plan)
    url = f"/api/v1/plans/{pid}/schedule"

    js = c.get(url, headers=a.read)
    assert js.status_code == 200 and js.headers["content-type"] == "application/json"
    body = js.json()
    assert body["columns"] == list(plans_svc.SCHEDULE_CSV_COLUMNS)
    assert len(body["items"]) == len(small_plan.schedule)
    assert body["items"][0]["quantity"] == small_plan.schedule[0].quantity

    r = c.get(url, headers={**a.read, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="design-{did}-plan-{pid}-schedule.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(body["items"])
    assert rows[0]["provider"] == body["items"][0]["provider"]
    assert float(rows[0]["total_usd"]) == body["items"][0]["total_usd"]
    assert r.headers["etag"] != js.headers["etag"] and "Accept" in r.headers["vary"]
    r304 = c.get(url, headers={**a.read, "Accept": "text/csv", "If-None-Match": r.headers["etag"]})
    assert r304.status_code == 304

    # q-values decide; JSON on a tie and for anything else.
    assert c.get(url, headers={**a.read, "Accept": "application/json;q=0.5, text/csv"}).text == r.text
    assert c.get(url, headers={**a.read, "Accept": "text/csv;q=0.2, application/json"}).json() == body
    assert c.get(url, headers={**a.read, "Accept": "*/*"}).json() == body
    assert c.get(url, headers={**a.read, "Accept": "text/html"}).json() == body

    with world.session() as s:
        formats = [e.detail["format"] for e in s.exec(select(AuditEvent).where(
            AuditEvent.action == "schedule.export").order_by(AuditEvent.id)).all()]
    assert formats[:2] == ["json", "csv"]


def test_bundles_zip_and_refusal_for_an_infeasible_plan(world: World, small_plan, infeasible_plan) -> None:
    c, a = world.client, world.a
    pid = world.store_plan(world.design(a).id, small_plan)
    listing = c.get(f"/api/v1/plans/{pid}/bundles", headers=a.read).json()
    names = [b["name"] for b in listing["items"]]
    assert listing["exportable"] and {"terraform", "helm", "airflow", "purchase-schedule", "all"} <= set(names)

    r = c.get(f"/api/v1/plans/{pid}/bundles/terraform", headers=a.read)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].endswith('-terraform.zip"')
    files = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(f.endswith(".tf") for f in files)
    again = c.get(f"/api/v1/plans/{pid}/bundles/terraform", headers=a.read)
    assert again.content == r.content and again.headers["etag"] == r.headers["etag"]
    assert c.get(f"/api/v1/plans/{pid}/bundles/terraform",
                 headers={**a.read, "If-None-Match": r.headers["etag"]}).status_code == 304
    everything = zipfile.ZipFile(io.BytesIO(c.get(f"/api/v1/plans/{pid}/bundles/all", headers=a.read).content))
    assert any("purchase-schedule/schedule.csv" in f for f in everything.namelist())

    r = c.get(f"/api/v1/plans/{pid}/bundles/nope", headers=a.read)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path.name"

    bad = world.store_plan(world.design(a, infeasible_spec()).id, infeasible_plan, infeasible_spec())
    r = c.get(f"/api/v1/plans/{bad}/bundles/helm", headers=a.read)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert "infeasible" in r.json()["detail"]
    listing = c.get(f"/api/v1/plans/{bad}/bundles", headers=a.read).json()
    assert listing["exportable"] is False and "infeasible" in listing["reason"]
    plan = c.get(f"/api/v1/plans/{bad}", headers=a.read).json()
    assert plan["status"] == "infeasible" and plan["explanation"] and plan["figures"]["total_cost"] is None

    with world.session() as s:
        exports = s.exec(select(AuditEvent).where(AuditEvent.action == "bundle.export")).all()
    assert [e.detail["bundle"] for e in exports] == ["terraform", "terraform", "all"]


def test_cancel_a_queued_job_and_refuse_a_finished_one(world: World) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    job = _solve(world, did).json()
    r = c.post(job["cancel_url"], headers=a.write)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["cancel_requested"]
    assert world.run_jobs() == []  # nothing left to run
    assert c.post(job["cancel_url"], headers=a.write).status_code == 200  # cancelling again changes nothing

    job = _solve(world, did).json()
    assert world.run_jobs() == [job["id"]]
    r = c.post(job["cancel_url"], headers=a.write)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM and "succeeded" in r.json()["detail"]


def test_a_running_job_is_flagged_and_a_failed_job_reports_its_error(world: World) -> None:
    c, a = world.client, world.a
    did = world.design(a).id
    job_id = _solve(world, did).json()["id"]
    with world.session() as s:
        assert jobs_svc.claim(s, job_id, "elsewhere")
        jobs_svc.touch(s, job_id, "elsewhere", progress=0.4, message="Solving")
    r = c.get(f"/api/v1/jobs/{job_id}", headers=a.read).json()
    assert r["status"] == "running" and r["progress"] == 0.4 and r["message"] == "Solving"
    r = c.post(f"/api/v1/jobs/{job_id}/cancel", headers=a.write).json()
    assert r["status"] == "running" and r["cancel_requested"] is True
    with world.session() as s:
        jobs_svc.fail(s, job_id, "elsewhere", "The planner ran out of time.")
    r = c.get(f"/api/v1/jobs/{job_id}", headers=a.read).json()
    assert r["status"] == "failed" and r["error"] == "The planner ran out of time." and r["plan_url"] is None


def test_solving_a_design_whose_stored_spec_no_longer_validates(world: World) -> None:
    did = world.design(world.a).id
    with world.session() as s:
        from app.models import Design

        d = s.get(Design, did)
        d.spec = {**d.spec, "lifecycle": {**d.spec["lifecycle"], "horizon_months": 0}}
        s.add(d)
        s.commit()
    r = _solve(world, did)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == ["spec.lifecycle.horizon_months"]
    with world.session() as s:
        assert s.exec(select(Job)).all() == []


def test_comparisons_side_by_side(world: World, small_plan, infeasible_plan) -> None:
    c, a = world.client, world.a
    cheap = small_plan.model_copy(update={"total_cost": small_plan.total_cost - 1000})
    p1 = world.store_plan(world.design(a).id, small_plan)
    p2 = world.store_plan(world.design(a).id, cheap)
    p3 = world.store_plan(world.design(a, infeasible_spec()).id, infeasible_plan, infeasible_spec())
    r = c.get("/api/v1/comparisons", params=[("plan_id", p1), ("plan_id", p2), ("plan_id", p3)], headers=a.read)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["plan_id"] for p in body["plans"]] == [p1, p2, p3]
    assert [p["solved"] for p in body["plans"]] == [True, True, False] and body["same_snapshot"]
    total = next(f for f in body["figures"] if f["key"] == "total_cost")
    assert total["values"] == [small_plan.total_cost, cheap.total_cost, None]
    assert total["difference"] == [0.0, -1000.0, None] and total["best"] == [1]
    assert total["difference_pct"][1] == pytest.approx(-1000 / small_plan.total_cost * 100, abs=1e-3)
    assert {"npv", "monthly_run_rate", "gap", "savings_vs_all_on_demand"} <= {f["key"] for f in body["figures"]}

    for params in ([("plan_id", p1)], [("plan_id", p1), ("plan_id", p1)], [("plan_id", i) for i in range(1, 6)]):
        r = c.get("/api/v1/comparisons", params=params, headers=a.read)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.plan_id"
    assert c.get("/api/v1/comparisons", headers=a.read).status_code == 422
    r = c.get("/api/v1/comparisons", params=[("plan_id", p1), ("plan_id", 999999)], headers=a.read)
    assert r.status_code == 404
