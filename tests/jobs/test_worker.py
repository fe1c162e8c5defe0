"""``archplan worker`` on a real PostgreSQL: jobs enqueued through the service are announced
after their commit (never on rollback) and run by worker processes; a worker killed mid-job
has its job run again by another worker, once; queued and running jobs can be cancelled.

The workers are real processes: the ``archplan worker`` command, and
``tests/jobs/holding_worker.py`` (the same run loop with a plan handler that holds its job
while a file exists) where a test needs a job to stay running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import make_engine
from app.jobs import queue as job_queue
from app.jobs import service as jobs
from app.jobs.runner import JobRunner
from app.migrations import upgrade
from app.models import Design, Job
from app.services import designs as design_svc
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import make_settings
from tests.jobs.rows import job_row as _job
from tests.jobs.rows import plan_rows as _plans

pytestmark = pytest.mark.postgres

# Short, yet far from what a busy test machine could miss between two heartbeats.
TIMING = {"job_heartbeat_s": 0.25, "job_stale_after_s": 5.0, "job_poll_s": 0.2}


@pytest.fixture
def pg_url(pg_server) -> str:
    url = pg_server.create_database("wk")
    upgrade(url)
    return url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(url=pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def queue_settings(pg_url: str) -> Settings:
    return make_settings(pg_url, job_backend="procrastinate", **TIMING)


@pytest.fixture
def app_runner(pg_engine: Engine, queue_settings: Settings) -> Iterator[JobRunner]:
    """The app's runner with the procrastinate backend: it runs nothing, it announces."""
    runner = JobRunner(pg_engine, queue_settings)
    runner.start()
    yield runner
    runner.stop()


def _design(engine: Engine, example: str = "research-burst-deadline") -> Design:
    with Session(engine) as s:
        ws = design_svc.get_or_create_workspace(s)
        design = design_svc.create_design_from_example(s, ws.id, example)
        s.expunge(design)
        return design


def _enqueue_plan(engine: Engine, design: Design) -> int:
    with Session(engine) as s:
        job, created = design_svc.enqueue_plan(s, s.get(Design, design.id))
        assert created
        return job.id


def _wake_ups(engine: Engine) -> list[tuple]:
    """procrastinate's jobs: (status, args, queueing_lock), oldest first."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT status::text, args, queueing_lock FROM procrastinate_jobs ORDER BY id")).all()]


def _wait_for(predicate, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHPLAN_")}
    env.update(ARCHPLAN_ENVIRONMENT="test", ARCHPLAN_DATABASE_URL=url, ARCHPLAN_JOB_BACKEND="procrastinate",
               ARCHPLAN_LOG_LEVEL="INFO", **{f"ARCHPLAN_{k.upper()}": str(v) for k, v in TIMING.items()})
    return env


class Worker:
    """A worker process; killed at the end of the test whatever happened."""

    def __init__(self, args: list[str], url: str, log: Path):
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(args, env=_env(url), cwd=PROJECT_ROOT, stdout=self._out,
                                     stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def owns(self, job: Job) -> bool:
        """Is ``job``'s claim this process's (a token is host:pid:name:random)?"""
        return (job.worker or "").split(":")[1:2] == [str(self.pid)]

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)
        self._out.close()


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator:
    started: list[Worker] = []

    def start(kind: str = "cli", hold: Path | None = None) -> Worker:
        if kind == "cli":
            args = [str(Path(sys.executable).parent / "archplan"), "worker"]
        else:
            args = [sys.executable, "-m", "tests.jobs.holding_worker", str(hold)]
        worker = Worker(args, pg_url, tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
    for worker in started:  # shown by pytest when the test failed
        sys.stderr.write(f"--- {worker.log.name}\n{worker.log.read_text(errors='replace')[-6000:]}\n")


# --------------------------------------------------------------------------- refusals


def _cli_worker(url: str, **env: str) -> subprocess.CompletedProcess:
    full = {**_env(url), **env}
    return subprocess.run([str(Path(sys.executable).parent / "archplan"), "worker"], env=full, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_worker_refuses_what_it_cannot_serve(pg_server, tmp_path: Path) -> None:
    r = _cli_worker(f"sqlite:///{tmp_path / 'a.db'}", ARCHPLAN_JOB_BACKEND="embedded")
    assert r.returncode == 2 and "archplan worker runs jobs for ARCHPLAN_JOB_BACKEND=procrastinate" in r.stderr
    r = _cli_worker(pg_server.create_database("empty"))  # never migrated
    assert r.returncode == 1 and "run `archplan db upgrade` first" in r.stderr


# --------------------------------------------------------------------------- announcing


def test_a_wake_up_is_deferred_after_the_commit_and_never_on_rollback(pg_engine: Engine, app_runner: JobRunner,
                                                                      pg_url: str) -> None:
    assert app_runner.workers == 0 and not app_runner.running  # the app runs no job itself
    with Session(pg_engine) as s:
        job_id = jobs.enqueue(s, "plan").id
        assert _wake_ups(pg_engine) == []  # not before the commit
        s.rollback()
    assert _wake_ups(pg_engine) == []  # nor after a rollback
    with Session(pg_engine) as s:
        assert s.get(Job, job_id) is None
        job_id = jobs.enqueue(s, "plan").id
        s.commit()
    assert _wake_ups(pg_engine) == [("todo", {"job_id": job_id}, f"archplan-job-{job_id}")]
    assert app_runner.queue.pending() == []


def test_the_outbox_scan_announces_rows_whose_wake_up_was_lost(pg_engine: Engine, queue_settings: Settings) -> None:
    # Committed while no transport was installed: as if the process died between commit and defer.
    with Session(pg_engine) as s:
        lost = [jobs.enqueue(s, "plan").id for _ in range(2)]
        s.commit()
    assert _wake_ups(pg_engine) == []
    queue = job_queue.ProcrastinateQueue(pg_engine)
    assert queue.pending() == lost
    assert queue.dispatch_pending() == lost
    assert [w[1]["job_id"] for w in _wake_ups(pg_engine)] == lost
    assert queue.pending() == [] and queue.dispatch_pending() == []
    assert queue.defer(lost) == []  # one waiting wake-up per row: the queueing lock
    assert len(_wake_ups(pg_engine)) == 2

    # A worker fetches the first wake-up: while that worker beats, the row needs no other one...
    with pg_engine.begin() as conn:
        worker_id = conn.execute(text("SELECT worker_id FROM procrastinate_register_worker_v1()")).scalar_one()
        fetched = conn.execute(text("SELECT args FROM procrastinate_fetch_job_v2(ARRAY['archplan'], :w)"),
                               {"w": worker_id}).scalar_one()
    assert fetched == {"job_id": lost[0]}
    assert queue.pending() == []
    # ...once its heartbeat lapsed (the worker was killed), its wake-up no longer counts.
    with pg_engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"))
    assert queue.pending() == [lost[0]]


# --------------------------------------------------------------------------- running


def test_a_worker_process_runs_jobs_and_stops_cleanly(pg_engine: Engine, app_runner: JobRunner, workers) -> None:
    announced = _design(pg_engine)
    announced_job = _enqueue_plan(pg_engine, announced)
    app_runner.stop()  # the next job is committed with nobody to announce it
    unannounced = _design(pg_engine, "llm-finetune-hipaa")
    unannounced_job = _enqueue_plan(pg_engine, unannounced)
    assert [w[1]["job_id"] for w in _wake_ups(pg_engine)] == [announced_job]

    worker = workers("cli")
    for design, job_id in ((announced, announced_job), (unannounced, unannounced_job)):
        _wait_for(lambda job_id=job_id: _job(pg_engine, job_id).status not in jobs.ACTIVE, f"job {job_id}")
        row = _job(pg_engine, job_id)
        [plan] = _plans(pg_engine, design.id)
        assert (row.status, row.attempts, row.result_plan_id) == ("succeeded", 0, plan.id)
        assert worker.owns(row) and row.message.startswith("Plan ready")
    assert worker.terminate() == 0
    assert _wake_ups(pg_engine) == []  # finished wake-ups are deleted


def test_a_killed_worker_s_job_is_run_by_another_worker_once(pg_engine: Engine, app_runner: JobRunner,
                                                             workers, tmp_path: Path) -> None:
    design = _design(pg_engine)
    job_id = _enqueue_plan(pg_engine, design)
    hold = tmp_path / "hold"
    hold.touch()
    first = workers("holding", hold)
    _wait_for(lambda: first.owns(_job(pg_engine, job_id)) and _job(pg_engine, job_id).message == "Held",
              "the first worker to hold the job")
    first.kill()  # SIGKILL mid-job: no chance to give it back

    second = workers("cli")
    _wait_for(lambda: _job(pg_engine, job_id).status not in jobs.ACTIVE, "the job to finish")
    row = _job(pg_engine, job_id)
    [plan] = _plans(pg_engine, design.id)  # saved exactly once
    assert (row.status, row.attempts, row.result_plan_id) == ("succeeded", 1, plan.id)
    assert second.owns(row)
    # The wake-up the killed worker had fetched is marked failed; nothing stays "doing".
    _wait_for(lambda: [w[0] for w in _wake_ups(pg_engine)] == ["failed"], "the stale wake-up to be tidied")
    assert second.terminate() == 0
    hold.unlink()
    assert _plans(pg_engine, design.id) == [plan]


def test_cancel_a_queued_and_a_running_job(pg_engine: Engine, app_runner: JobRunner, workers,
                                           tmp_path: Path) -> None:
    queued_design, running_design = _design(pg_engine), _design(pg_engine, "llm-finetune-hipaa")
    queued = _enqueue_plan(pg_engine, queued_design)
    running = _enqueue_plan(pg_engine, running_design)
    with Session(pg_engine) as s:
        assert jobs.request_cancel(s, queued).status == "cancelled"
    hold = tmp_path / "hold"
    hold.touch()
    worker = workers("holding", hold)
    _wait_for(lambda: _job(pg_engine, running).message == "Held", "the worker to hold the running job")
    with Session(pg_engine) as s:
        assert jobs.request_cancel(s, running).cancel_requested  # flagged; the worker stops it
    _wait_for(lambda: _job(pg_engine, running).status == "cancelled", "the running job to be cancelled")
    assert worker.owns(_job(pg_engine, running))
    row = _job(pg_engine, queued)
    assert (row.status, row.started_at, row.worker) == ("cancelled", None, None)  # woken for, never run
    assert _plans(pg_engine, queued_design.id) == [] and _plans(pg_engine, running_design.id) == []
    assert worker.terminate() == 0
    assert _wake_ups(pg_engine) == []


def test_a_stopped_worker_gives_its_job_back(pg_engine: Engine, app_runner: JobRunner, workers,
                                             tmp_path: Path) -> None:
    design = _design(pg_engine)
    job_id = _enqueue_plan(pg_engine, design)
    hold = tmp_path / "hold"
    hold.touch()
    first = workers("holding", hold)
    _wait_for(lambda: _job(pg_engine, job_id).message == "Held", "the worker to hold the job")
    assert first.terminate() == 0  # SIGTERM
    row = _job(pg_engine, job_id)
    assert (row.status, row.worker, row.attempts) == ("queued", None, 0)  # given back, not an attempt
    assert _plans(pg_engine, design.id) == []
    # Its wake-up was used up; an outbox scan (the stopping worker's last, or the next worker's)
    # announces the job again, once.
    app_runner.queue.dispatch_pending()
    assert _wake_ups(pg_engine) == [("todo", {"job_id": job_id}, f"archplan-job-{job_id}")]
