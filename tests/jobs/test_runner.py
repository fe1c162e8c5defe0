"""The embedded runner: plan jobs run synchronously with ``run_one()`` (no sleeping), their
progress, cancellation, readable failures, recovery at start-up and a clean shutdown.

``runner`` solves in a child process (the default); ``thread_runner`` solves in its own
thread, for the tests that replace the planner in this process."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.jobs import service as jobs
from app.jobs.runner import GENERIC_FAILURE, JobContext, JobRunner
from app.models import Design, utcnow
from app.requirements.examples import example_text
from app.services import designs as design_svc
from tests.conftest import make_settings
from tests.jobs.rows import job_row as _job
from tests.jobs.rows import plan_rows as _plans


@pytest.fixture
def runner(engine: Engine) -> JobRunner:
    settings = make_settings(str(engine.url.render_as_string(hide_password=False)), job_workers=0)
    assert settings.job_isolation == "process"
    return JobRunner(engine, settings)


@pytest.fixture
def thread_runner(engine: Engine) -> JobRunner:
    settings = make_settings(engine.url.render_as_string(hide_password=False), job_workers=0,
                             job_isolation="thread")
    return JobRunner(engine, settings)


def _record_touches(monkeypatch, on_touch=None) -> list[tuple[float | None, str | None]]:
    """Record every progress report (and optionally act on it) while keeping the real writes."""
    seen: list[tuple[float | None, str | None]] = []
    real = jobs.touch

    def touch(session, job_id, worker, *, progress=None, message=None, now=None):
        if progress is not None:
            seen.append((progress, message))
            if on_touch is not None:
                on_touch(job_id, progress, message)
        return real(session, job_id, worker, progress=progress, message=message, now=now)

    monkeypatch.setattr(jobs, "touch", touch)
    return seen


def test_run_one_plans_and_links_the_plan(engine: Engine, session: Session, design: Design, runner: JobRunner,
                                          monkeypatch) -> None:
    assert runner.run_one() is None  # nothing queued
    job, created = design_svc.enqueue_plan(session, design)
    assert created and job.status == "queued" and job.payload["spec"]["name"] == design.spec["name"]
    again, created = design_svc.enqueue_plan(session, design)
    assert again.id == job.id and not created  # the same request is not queued twice
    reports = _record_touches(monkeypatch)

    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.progress, row.message, row.error) == ("succeeded", 1.0, "Plan ready", None)
    [plan] = _plans(engine, design.id)
    assert row.result_plan_id == plan.id and plan.status == "optimal" and plan.spec == job.payload["spec"]
    messages = [m for _p, m in reports]
    assert messages[0] == "Loading the price catalog"
    assert any(m.startswith("Solving (") and "options" in m and "months)" in m for m in messages)
    assert "Baseline: all on-demand" in messages
    fractions = [p for p, _m in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert runner.run_one() is None


def test_cancel_while_solving_saves_no_plan(engine: Engine, session: Session, design: Design,
                                            runner: JobRunner, monkeypatch) -> None:
    job, _ = design_svc.enqueue_plan(session, design)

    def cancel_on_solving(job_id, _progress, message):
        if message and message.startswith("Baseline"):
            with Session(engine) as s:
                jobs.request_cancel(s, job_id)

    _record_touches(monkeypatch, cancel_on_solving)
    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.cancel_requested, row.result_plan_id) == ("cancelled", True, None)
    assert _plans(engine, design.id) == []


def test_cancel_after_the_solve_saves_no_plan(engine: Engine, session: Session, design: Design,
                                              thread_runner: JobRunner, monkeypatch) -> None:
    import app.planner.plan as plan_mod

    job, _ = design_svc.enqueue_plan(session, design)
    original = plan_mod.make_plan

    def make_plan_then_cancel(*args, **kwargs):
        plan = original(*args, **kwargs)
        with Session(engine) as s:
            jobs.request_cancel(s, job.id)  # pressed while the result was on its way
        return plan

    monkeypatch.setattr(plan_mod, "make_plan", make_plan_then_cancel)
    assert thread_runner.run_one() == job.id
    assert _job(engine, job.id).status == "cancelled"
    assert _plans(engine, design.id) == []


def test_requirements_the_catalog_cannot_serve_fail_readably(engine: Engine, session: Session,
                                                             runner: JobRunner) -> None:
    ws = design_svc.get_or_create_workspace(session)
    text = example_text("research-burst-deadline").replace("min_gpu_memory_gb: 80", "min_gpu_memory_gb: 4000")
    design = design_svc.create_design(session, ws.id, design_svc.parse_spec_text(text))
    job, _ = design_svc.enqueue_plan(session, design)
    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert row.status == "failed" and row.finished_at is not None
    assert row.error.startswith("These requirements cannot be planned with the price catalog:")
    assert "min_gpu_memory_gb 4000" in row.error and "Traceback" not in row.error
    assert _plans(engine, design.id) == []


def test_an_unexpected_error_is_logged_not_shown(engine: Engine, session: Session, design: Design,
                                                 thread_runner: JobRunner, monkeypatch, caplog) -> None:
    import app.planner.plan as plan_mod

    def broken(*_a, **_k):
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(plan_mod, "make_plan", broken)
    job, _ = design_svc.enqueue_plan(session, design)
    with caplog.at_level(logging.ERROR, logger="archplan.jobs"):
        assert thread_runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.error) == ("failed", GENERIC_FAILURE)
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_a_deleted_design_takes_its_queued_job(engine: Engine, session: Session, design: Design,
                                               runner: JobRunner) -> None:
    design_svc.enqueue_plan(session, design)
    design_svc.delete_design(session, design)
    assert runner.run_one() is None


def test_orphaned_running_jobs_are_requeued_at_start_up(engine: Engine, session: Session, design: Design,
                                                        runner: JobRunner) -> None:
    job, _ = design_svc.enqueue_plan(session, design)
    long_ago = utcnow() - timedelta(minutes=10)
    with Session(engine) as s:
        assert jobs.claim(s, job.id, "host:1234:crashed", now=long_ago)  # a process that died mid-solve
    sweep = runner.recover()
    assert sweep.requeued == [job.id]
    row = _job(engine, job.id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert runner.run_one() == job.id
    assert _job(engine, job.id).status == "succeeded"


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_threaded_runner_recovers_runs_and_stops(engine: Engine, session: Session, design: Design) -> None:
    """start() recovers orphans and runs them in its own threads; stop() gives back what it could not finish."""
    orphan, _ = design_svc.enqueue_plan(session, design)
    with Session(engine) as s:
        jobs.claim(s, orphan.id, "host:99:crashed", now=utcnow() - timedelta(minutes=10))
    release = threading.Event()
    started = threading.Event()

    def blocking(ctx: JobContext) -> None:
        started.set()
        release.wait(10)
        ctx.progress(0.5, "too late")  # the job was given back meanwhile: JobLost, logged

    settings = make_settings(engine.url.render_as_string(hide_password=False), job_workers=1, job_poll_s=0.05,
                             job_heartbeat_s=0.05)
    runner = JobRunner(engine, settings)
    runner.handlers["slow"] = blocking
    runner.start()
    try:
        _wait_for(lambda: _job(engine, orphan.id).status == "succeeded")
        assert _job(engine, orphan.id).attempts == 1
        with Session(engine) as s:
            slow_id = jobs.enqueue(s, "slow", design_id=design.id).id
            s.commit()
        runner.wake()
        assert started.wait(10)
        first_beat = _job(engine, slow_id).heartbeat_at
        _wait_for(lambda: _job(engine, slow_id).heartbeat_at > first_beat)  # the ticker keeps it alive
    finally:
        runner.stop(timeout=0.2)
    row = _job(engine, slow_id)
    assert (row.status, row.worker, row.attempts) == ("queued", None, 0)  # given back, not counted
    release.set()
    _wait_for(lambda: not runner.running)
    assert _job(engine, slow_id).status == "queued"  # the old run could not write after losing it


def test_job_timing_settings_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least twice"):
        make_settings("sqlite://", job_heartbeat_s=20, job_stale_after_s=30)
    assert make_settings("sqlite://").job_workers == 1


def test_the_procrastinate_backend_needs_postgresql() -> None:
    from pydantic import ValidationError

    defaults = make_settings("sqlite://")
    assert (defaults.job_backend, defaults.job_isolation) == ("embedded", "process")
    with pytest.raises(ValidationError, match="ARCHPLAN_JOB_BACKEND=procrastinate needs PostgreSQL"):
        make_settings("sqlite:///var/archplan.db", job_backend="procrastinate")
    assert make_settings("postgresql+psycopg://u@db/archplan", job_backend="procrastinate").job_backend == "procrastinate"
