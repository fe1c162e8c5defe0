"""What-if analyses as jobs (kinds ``curve`` and ``sensitivity``): queued once per distinct
request, run with ``run_one()`` (in a child process, as in production, unless a test needs
its own thread), progress per point or scenario, results stored as JSON that rebuild the
objects the pages show, readable failures, cancel."""

from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.catalog.schema import Snapshot, load_snapshot
from app.jobs import analysis as analysis_jobs
from app.jobs import service as jobs
from app.jobs.runner import JobContext, JobError, JobRunner
from app.models import Design, Job
from app.planner.analysis import Sensitivity
from app.requirements.spec import WorkloadSpec
from app.services import analyses
from app.services import designs as design_svc
from app.services import estimate as est
from tests.api.conftest import SMALL_SPEC
from tests.conftest import make_settings
from tests.jobs.rows import job_row as _job


@pytest.fixture(scope="module")
def bundled() -> Snapshot:
    return load_snapshot()


def _settings(engine: Engine, **kw):
    return make_settings(engine.url.render_as_string(hide_password=False), job_workers=0, **kw)


@pytest.fixture
def runner(engine: Engine) -> JobRunner:
    settings = _settings(engine)
    assert settings.job_isolation == "process"
    return JobRunner(engine, settings)


@pytest.fixture
def thread_runner(engine: Engine) -> JobRunner:
    return JobRunner(engine, _settings(engine, job_isolation="thread"))


def _ask(session: Session, design: Design, kind: str, runner: JobRunner, adj: est.Adjustments | None = None,
         factors=None) -> Job:
    job = analyses.request_analysis(session, design, kind, design_svc.design_spec(design), adj or est.Adjustments(),
                                    factors, runner.settings)
    session.commit()
    session.refresh(job)
    return job


def _record_progress(monkeypatch, on_touch=None) -> list[tuple[float, str]]:
    """Record every progress report (optionally acting on it) while keeping the real writes."""
    seen: list[tuple[float, str]] = []
    real = jobs.touch

    def touch(session, job_id, worker, *, progress=None, message=None, now=None):
        if progress is not None:
            seen.append((progress, message))
            if on_touch is not None:
                on_touch(job_id, message)
        return real(session, job_id, worker, progress=progress, message=message, now=now)

    monkeypatch.setattr(jobs, "touch", touch)
    return seen


def test_a_curve_job_stores_points_that_rebuild_the_curve(engine: Engine, session: Session, design: Design,
                                                         runner: JobRunner, bundled: Snapshot, monkeypatch) -> None:
    adj = est.Adjustments(demand_scale=1.2, price_factors={"on_demand": 1.1})
    job = _ask(session, design, "curve", runner, adj, [1, 0.5, 1])
    assert (job.kind, job.status, job.payload["factors"]) == ("curve", "queued", [0.5, 1.0])
    reports = _record_progress(monkeypatch)

    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.progress, row.error) == ("succeeded", 1.0, None)
    assert row.message == "Curve ready: 2 of 2 points with a plan"
    messages = [m for _, m in reports]
    assert messages[0] == "Loading the price catalog"
    assert "Point 1 of 2: deadline ×0.5" in messages and "Point 2 of 2: deadline ×1" in messages
    assert json.loads(json.dumps(row.result)) == row.result  # plain JSON
    assert row.result["snapshot_id"] == bundled.snapshot_id and row.result["time_limit_s"] == 5.0

    points = analyses.curve_points(row)
    settings = design_svc.planner_settings("highs", 5.0).model_copy(update={"gap": analyses.WHAT_IF_GAP})
    direct = est.deadline_curve(design_svc.design_spec(design), bundled, settings, adj, [0.5, 1])
    assert all(isinstance(p, est.CurvePoint) for p in points)
    assert [p.model_dump(exclude={"seconds"}) for p in points] == [p.model_dump(exclude={"seconds"}) for p in direct]
    assert all(p.ok for p in points) and points[0].peak_gpus > points[1].peak_gpus


def test_a_sensitivity_job_stores_the_scenarios(engine: Engine, session: Session, design: Design,
                                                thread_runner: JobRunner, bundled: Snapshot, monkeypatch) -> None:
    adj = est.Adjustments(spot_interruption_overhead=0.3, demand_scale=2.0)  # demand: not a scenario setting
    job = _ask(session, design, "sensitivity", thread_runner, adj)
    assert job.payload["adjustments"]["demand_scale"] == 1.0 and job.payload["factors"] == []
    assert job.payload["adjustments"]["spot_interruption_overhead"] == 0.3
    reports = _record_progress(monkeypatch)

    assert thread_runner.run_one() == job.id
    row = _job(engine, job.id)
    assert row.status == "succeeded", row.error
    sens = analyses.sensitivity_result(row)
    assert isinstance(sens, Sensitivity)
    settings = design_svc.planner_settings("highs", 3.0).model_copy(update={"gap": analyses.WHAT_IF_GAP})
    direct = est.scenario_sensitivity(design_svc.design_spec(design), bundled, settings, adj)
    assert [s.label for s in sens.scenarios] == [s.label for s in direct.scenarios]
    assert sens.base_objective == direct.base_objective
    assert [s.objective for s in sens.scenarios] == [s.objective for s in direct.scenarios]
    total = len(sens.scenarios) + 1
    messages = [m for _, m in reports]
    assert "Building the problem and solving the base case" in messages
    assert f"Solved 1 of {total} scenarios (the base case first)" in messages
    assert f"Solved {total} of {total} scenarios (the base case first)" in messages
    assert row.message == f"Scenarios ready: {total - 1} re-solved against the base case"


def test_the_same_analysis_is_one_job_until_it_fails(engine: Engine, session: Session, design: Design,
                                                     thread_runner: JobRunner) -> None:
    first = _ask(session, design, "curve", thread_runner, factors=[1])
    assert _ask(session, design, "curve", thread_runner, factors=[1.0]).id == first.id  # queued: reused
    # The default spot overhead and price factors of 1 change nothing: the same job.
    same = est.Adjustments(spot_interruption_overhead=0.1, price_factors={"spot": 1.0})
    assert _ask(session, design, "curve", thread_runner, same, factors=[1]).id == first.id
    other = _ask(session, design, "curve", thread_runner, factors=[0.5])
    sens = _ask(session, design, "sensitivity", thread_runner)
    assert len({first.id, other.id, sens.id}) == 3
    assert thread_runner.run_one() == first.id
    assert _ask(session, design, "curve", thread_runner, factors=[1]).id == first.id  # succeeded: reused

    with Session(engine) as s:  # the next one fails
        assert jobs.claim(s, other.id, "host:1:test")
        assert jobs.fail(s, other.id, "host:1:test", "boom")
    again = _ask(session, design, "curve", thread_runner, factors=[0.5])
    assert again.id not in (first.id, other.id) and again.status == "queued"

    # Other prices (another planning snapshot id): another job.
    spec = design_svc.design_spec(design)
    moved = analyses.request_analysis(session, design, "curve", spec, est.Adjustments(), [1], thread_runner.settings,
                                      snapshot_id="another-snapshot")
    session.commit()
    assert moved.id != first.id and moved.payload["snapshot_id"] == "another-snapshot"


def test_the_key_covers_every_input(design: Design) -> None:
    spec = design_svc.design_spec(design)
    base = dict(solver="highs", server_limit_s=60.0, snapshot_id="s1")
    key = analyses.dedupe_key(analyses.analysis_payload("curve", spec, est.Adjustments(), [1], **base), "curve")
    assert len(key) == 64 and int(key, 16) >= 0
    changed = [
        analyses.analysis_payload("curve", spec, est.Adjustments(utilization=0.9), [1], **base),
        analyses.analysis_payload("curve", spec, est.Adjustments(), [1, 2], **base),
        analyses.analysis_payload("curve", spec, est.Adjustments(), [1], **{**base, "solver": "cbc"}),
        analyses.analysis_payload("curve", spec, est.Adjustments(), [1], **{**base, "server_limit_s": 2.0}),
        analyses.analysis_payload("curve", spec, est.Adjustments(), [1], **{**base, "snapshot_id": "s2"}),
        analyses.analysis_payload("curve", WorkloadSpec.model_validate({**spec.model_dump(mode="json"),
                                                                        "name": "renamed"}),
                                  est.Adjustments(), [1], **base),
    ]
    keys = {analyses.dedupe_key(p, "curve") for p in changed}
    assert key not in keys and len(keys) == len(changed)
    assert analyses.dedupe_key(changed[0], "sensitivity") != analyses.dedupe_key(changed[0], "curve")


def test_a_design_without_training_runs_gets_one_point(session: Session) -> None:
    ws = design_svc.get_or_create_workspace(session)
    data = copy.deepcopy(SMALL_SPEC)
    del data["performance"]["training"]
    design = design_svc.create_design(session, ws.id, WorkloadSpec.model_validate(data))
    payload = analyses.analysis_payload("curve", design_svc.design_spec(design), est.Adjustments(), [0.5, 1, 2],
                                        solver="highs", server_limit_s=60, snapshot_id="s")
    assert payload["factors"] == [1.0]


@pytest.mark.parametrize("factors, message", [
    ([], "at least one"), ([0.01], "between 0.05 and 10"), ([11], "between 0.05 and 10"),
    ([0.5, 1, 1.5, 2, 2.5, 3, 4], "at most 6"),
])
def test_factors_are_checked(design: Design, factors, message) -> None:
    with pytest.raises(ValueError, match=message):
        analyses.analysis_payload("curve", design_svc.design_spec(design), est.Adjustments(), factors,
                                  solver="highs", server_limit_s=60, snapshot_id="s")


def test_requirements_the_catalog_cannot_price_fail_readably(engine: Engine, session: Session,
                                                             runner: JobRunner) -> None:
    ws = design_svc.get_or_create_workspace(session)
    data = copy.deepcopy(SMALL_SPEC)
    data["performance"]["training"][0]["reference_gpu"] = "Z9000"
    design = design_svc.create_design(session, ws.id, WorkloadSpec.model_validate(data))
    job = _ask(session, design, "sensitivity", runner)
    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert row.status == "failed" and row.result is None
    assert row.error.startswith("These requirements cannot be planned with the price catalog: "
                                "performance.training[0].reference_gpu: no performance figures for GPU 'Z9000'")


def test_a_deleted_design_fails_the_job_readably(engine: Engine, session: Session, design: Design,
                                                 thread_runner: JobRunner) -> None:
    payload = analyses.analysis_payload("curve", design_svc.design_spec(design), est.Adjustments(), [1],
                                        solver="highs", server_limit_s=60, snapshot_id="s")
    orphan = jobs.enqueue(session, "curve", design_id=None, payload=payload)
    session.commit()
    assert thread_runner.run_one() == orphan.id
    row = _job(engine, orphan.id)
    assert (row.status, row.error, row.result) == ("failed", "The design was deleted.", None)

    # The handler itself, for a design that is gone.
    job = _ask(session, design, "curve", thread_runner, factors=[1])
    token = jobs.new_worker_token("test")
    with Session(engine) as s:
        assert jobs.claim(s, job.id, token)
    ctx = JobContext(runner=thread_runner, job_id=job.id, worker=token, kind="curve", design_id=2**31 - 1,
                     payload=dict(job.payload))
    with pytest.raises(JobError, match="The design was deleted."):
        analysis_jobs.run_curve_job(ctx)


def test_cancel_stops_a_running_curve(engine: Engine, session: Session, design: Design, runner: JobRunner,
                                      monkeypatch) -> None:
    job = _ask(session, design, "curve", runner, factors=[0.5, 1, 2])

    def cancel_at_the_second_point(job_id: int, message: str) -> None:
        if message.startswith("Point 2 of 3"):
            with Session(engine) as s:
                jobs.request_cancel(s, job_id)

    reports = _record_progress(monkeypatch, cancel_at_the_second_point)
    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.result, row.message) == ("cancelled", None, "Cancelled")
    assert not any(m.startswith("Point 3 of 3") for _, m in reports)
