"""Solves in a child process (``ARCHPLAN_JOB_ISOLATION=process``): progress comes back, and a
cancel, the step limit or a stopping runner end the child — with a program it started —
while failures stay readable. Handlers here call ``JobContext.call`` with the functions in
``tests/jobs/child_work.py``; one test shows a real plan job solving outside this process."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.jobs import service as jobs
from app.jobs.runner import GENERIC_FAILURE, JobRunner
from app.models import Design
from app.services import designs as design_svc
from tests.conftest import make_settings
from tests.jobs import child_work
from tests.jobs.rows import job_row as _job

LONG_S = 600.0  # far longer than any test: only a kill ends these children


def _gone(pid: int) -> bool:
    """The process has exited (absent, or a zombie waiting for its parent to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def runner(engine: Engine) -> JobRunner:
    settings = make_settings(engine.url.render_as_string(hide_password=False), job_workers=0, job_poll_s=0.1)
    return JobRunner(engine, settings)


def _enqueue(engine: Engine, kind: str) -> int:
    with Session(engine) as s:
        job_id = jobs.enqueue(s, kind).id
        s.commit()
    return job_id


def _run_in_background(runner: JobRunner) -> threading.Thread:
    t = threading.Thread(target=runner.run_one, daemon=True)
    t.start()
    return t


def _pids(engine: Engine, job_id: int) -> tuple[int, int]:
    """Wait until the child reported its pid and its program's pid in the job's message."""
    found: list[re.Match] = []

    def reported() -> bool:
        m = re.fullmatch(r"working pid=(\d+) solver=(\d+)", _job(engine, job_id).message or "")
        if m:
            found.append(m)
        return bool(m)

    _wait_for(reported)
    return int(found[0][1]), int(found[0][2])


def test_progress_and_result_come_back_from_the_child(engine: Engine, runner: JobRunner) -> None:
    results: list[dict] = []
    runner.handlers["sum"] = lambda ctx: results.append(
        ctx.call(child_work.report_then_return, [1, 2, 3], step_limit_s=LONG_S))
    job_id = _enqueue(engine, "sum")
    assert runner.run_one() == job_id
    [result] = results
    assert result["sum"] == 6 and result["pid"] != os.getpid()
    row = _job(engine, job_id)
    assert (row.progress, row.message) == (1.0, "step 3")  # the child's last report, recorded by the parent


def test_solves_run_at_a_lower_cpu_priority(engine: Engine, runner: JobRunner) -> None:
    """The child (and a solver it starts) runs ``job_nice`` steps below the app, so requests are
    answered first when both want the same cores."""
    results: list[dict] = []
    runner.handlers["priority"] = lambda ctx: results.append(ctx.call(child_work.report_priority, step_limit_s=LONG_S))
    assert runner.settings.job_nice == 10  # the default
    job_id = _enqueue(engine, "priority")
    assert runner.run_one() == job_id
    own = os.nice(0)
    assert results == [{"child": min(19, own + 10), "solver": min(19, own + 10)}]


def test_cancel_kills_the_child_and_its_solver(engine: Engine, runner: JobRunner) -> None:
    runner.handlers["sleep"] = lambda ctx: ctx.call(child_work.sleep_with_a_solver, LONG_S, step_limit_s=LONG_S)
    job_id = _enqueue(engine, "sleep")
    t = _run_in_background(runner)
    child, solver = _pids(engine, job_id)
    assert not _gone(child) and not _gone(solver)
    with Session(engine) as s:
        jobs.request_cancel(s, job_id)
    t.join(60)
    assert not t.is_alive()
    row = _job(engine, job_id)
    assert (row.status, row.message) == ("cancelled", "Cancelled")
    assert _gone(child)
    _wait_for(lambda: _gone(solver))  # killed with the child's process group, reaped by init


def test_a_step_past_its_limit_is_stopped_and_fails_readably(engine: Engine, runner: JobRunner) -> None:
    runner.handlers["sleep"] = lambda ctx: ctx.call(child_work.sleep_with_a_solver, LONG_S, step_limit_s=3.0)
    job_id = _enqueue(engine, "sleep")
    t = _run_in_background(runner)
    child, solver = _pids(engine, job_id)
    t.join(60)
    row = _job(engine, job_id)
    assert row.status == "failed"
    assert row.error.startswith("The solve did not finish in time (one step ran longer than 3 s")
    assert _gone(child)
    _wait_for(lambda: _gone(solver))


def test_a_stopping_runner_gives_the_job_back(engine: Engine, runner: JobRunner) -> None:
    runner.handlers["sleep"] = lambda ctx: ctx.call(child_work.sleep_with_a_solver, LONG_S, step_limit_s=LONG_S)
    job_id = _enqueue(engine, "sleep")
    t = _run_in_background(runner)
    child, _solver = _pids(engine, job_id)
    runner.stop(timeout=30)
    t.join(60)
    row = _job(engine, job_id)
    assert (row.status, row.worker, row.attempts) == ("queued", None, 0)  # not counted as an attempt
    assert row.message == "Waiting for a worker (the server restarted)"
    assert _gone(child)


def test_failures_in_the_child_are_readable(engine: Engine, runner: JobRunner, caplog) -> None:
    runner.handlers["unexpected"] = lambda ctx: ctx.call(child_work.raise_unexpected, step_limit_s=LONG_S)
    runner.handlers["invalid"] = lambda ctx: ctx.call(child_work.raise_job_error, step_limit_s=LONG_S)
    runner.handlers["die"] = lambda ctx: ctx.call(child_work.die, step_limit_s=LONG_S)
    unexpected, invalid, died = (_enqueue(engine, k) for k in ("unexpected", "invalid", "die"))
    with caplog.at_level(logging.INFO, logger="archplan.jobs"):
        for _ in range(3):
            runner.run_one()
    assert (_job(engine, unexpected).status, _job(engine, unexpected).error) == ("failed", GENERIC_FAILURE)
    logged = "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records)
    assert "secret internals at /srv/solver.py line 7" in logged and "in the solve process" in logged
    assert _job(engine, invalid).error == "These requirements cannot be planned: no GPU has 4000 GB."
    row = _job(engine, died)
    assert row.status == "failed" and row.error.startswith("The planner process stopped unexpectedly")
    assert "exit code 9" in logged


def test_a_plan_job_solves_outside_this_process(engine: Engine, session: Session, design: Design,
                                                runner: JobRunner, monkeypatch) -> None:
    import app.planner.plan as plan_mod

    def not_here(*_a, **_k):
        raise AssertionError("the plan was solved in the runner's process")

    monkeypatch.setattr(plan_mod, "make_plan", not_here)
    job, _ = design_svc.enqueue_plan(session, design)
    assert runner.run_one() == job.id
    row = _job(engine, job.id)
    assert (row.status, row.message) == ("succeeded", "Plan ready") and row.result_plan_id is not None
