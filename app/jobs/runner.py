"""The job runner embedded in the app: a few threads that claim queued jobs and run them.

:class:`JobRunner` is started and stopped by the app's lifespan (``settings.job_workers``
threads; 0 disables it, e.g. when a separate worker process runs the jobs). Each worker
thread claims the oldest queued job (:func:`app.jobs.service.claim_next`), runs its
handler, and sleeps ``job_poll_s`` when the queue is empty (:meth:`JobRunner.wake` cuts the
sleep short after an enqueue). One more thread, the *ticker*, refreshes the heartbeat of
the jobs this runner is running every ``job_heartbeat_s`` (a solve does not report progress
while the solver works, and the solver releases the GIL) and requeues other runners' jobs
whose heartbeat lapsed. At start the ticker first recovers jobs left ``running`` by a
process that died.

Tests call :meth:`JobRunner.run_one` to run the next job synchronously in their own thread.

Handlers
========
A handler gets a :class:`JobContext` and returns nothing; it reports progress through
:meth:`JobContext.progress` (which raises :class:`JobCancelled` once a cancel was requested,
and :class:`~app.jobs.service.JobLost` when the job was taken away), and records its outcome
itself (``plan``: saves the plan and marks the job succeeded in one transaction). An
exception escaping a handler fails the job with the message of a :class:`JobError`, or a
generic sentence for anything else (the traceback goes to the log, never to users).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.jobs import service as jobs
from app.models import Design
from app.settings import Settings

log = logging.getLogger("archplan.jobs")

GENERIC_FAILURE = ("The planner failed unexpectedly; the error has been logged. "
                   "Try again, or change the requirements.")


class JobCancelled(Exception):
    """Raised from a progress report once a cancel was requested: the handler stops."""


class JobError(Exception):
    """A failure whose message is meant for users (no internals)."""


@dataclass
class JobContext:
    """What a handler gets: the job as claimed, and a way to report progress."""

    runner: JobRunner
    job_id: int
    worker: str
    kind: str
    design_id: int | None
    payload: dict[str, Any]

    @property
    def engine(self) -> Engine:
        return self.runner.engine

    @property
    def settings(self) -> Settings:
        return self.runner.settings

    def progress(self, fraction: float, message: str) -> None:
        """Record progress and refresh the heartbeat; raise :class:`JobCancelled` if asked to stop."""
        with Session(self.engine) as session:
            cancel = jobs.touch(session, self.job_id, self.worker, progress=fraction, message=message)
        if cancel:
            raise JobCancelled

    def check_cancel(self) -> None:
        with Session(self.engine) as session:
            cancel = jobs.touch(session, self.job_id, self.worker)
        if cancel:
            raise JobCancelled


Handler = Callable[[JobContext], None]


# --------------------------------------------------------------------------- the plan handler


def run_plan_job(ctx: JobContext) -> None:
    """Solve the design's spec captured in the payload and store the plan (kind ``plan``)."""
    # Imported here: the planner (PuLP, HiGHS) loads only when a job runs.
    from app.planner.demand import DemandError
    from app.planner.plan import make_plan
    from app.requirements.spec import SpecError, WorkloadSpec, issues_from_validation_error
    from app.services import designs as design_svc

    payload = ctx.payload
    try:
        spec = WorkloadSpec.model_validate(payload.get("spec") or {})
    except ValidationError as exc:
        issues = issues_from_validation_error(exc)
        raise JobError("The requirements are not valid; fix them and save before planning: "
                       + "; ".join(str(i) for i in issues[:5])) from None
    ctx.progress(0.0, "Loading the price catalog")
    with Session(ctx.engine) as session:
        design = session.get(Design, ctx.design_id) if ctx.design_id is not None else None
        if design is None:
            raise JobError("The design was deleted.")
        snapshot = design_svc.planning_snapshot(session, design.workspace_id)
        session.commit()  # no transaction stays open during the solve
    settings = design_svc.planner_settings(payload.get("solver") or ctx.settings.solver,
                                           float(payload.get("time_limit_s") or ctx.settings.solver_time_limit_s))
    try:
        plan = make_plan(spec, snapshot, settings, progress=ctx.progress)
    except (DemandError, SpecError) as exc:
        detail = exc.args[0] if exc.args else str(exc)
        raise JobError(f"These requirements cannot be planned with the price catalog: {detail}") from None
    ctx.check_cancel()
    with Session(ctx.engine) as session:
        design = session.get(Design, ctx.design_id)
        if design is None:
            raise JobError("The design was deleted.")
        row = design_svc.save_plan(session, design, spec, plan, commit=False)
        label = {"optimal": "Plan ready", "feasible": "Plan ready (not proven optimal)"}.get(
            plan.status, f"No plan meets the requirements ({plan.status})")
        if jobs.succeed(session, ctx.job_id, ctx.worker, result_plan_id=row.id, message=label):
            session.commit()
            log.info("job %s: design %s planned: plan %s %s in %.2f s", ctx.job_id, design.id, row.id,
                     plan.status, plan.total_seconds)
            return
        session.rollback()  # cancelled or taken away at the last moment: the plan is not kept
    ctx.check_cancel()
    raise jobs.JobLost(f"job {ctx.job_id} lost its claim before it could be saved")


HANDLERS: dict[str, Handler] = {"plan": run_plan_job}


# --------------------------------------------------------------------------- the runner


class JobRunner:
    """Claims and runs jobs in ``workers`` threads (see the module docstring)."""

    def __init__(self, engine: Engine, settings: Settings, *, workers: int | None = None,
                 handlers: dict[str, Handler] | None = None, name: str = "runner"):
        self.engine = engine
        self.settings = settings
        self.workers = settings.job_workers if workers is None else workers
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: dict[int, str] = {}  # job id -> claim token, for the heartbeat
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Start the worker threads and the ticker (nothing when ``workers`` is 0)."""
        if self.workers <= 0 or self._threads:
            return
        self._stop.clear()
        ticker = threading.Thread(target=self._tick_loop, name=f"{self.name}-ticker", daemon=True)
        self._threads.append(ticker)
        for i in range(self.workers):
            self._threads.append(threading.Thread(target=self._work_loop, args=(f"{self.name}-{i + 1}",),
                                                  name=f"{self.name}-{i + 1}", daemon=True))
        for t in self._threads:
            t.start()
        log.info("job runner started with %d worker thread(s)", self.workers)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` for running ones, then give them back to the queue."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftover = dict(self._active)
        for job_id, worker in leftover.items():
            try:
                with Session(self.engine) as session:
                    if jobs.release(session, job_id, worker, "Waiting for a worker (the server restarted)"):
                        log.warning("job %s given back to the queue at shutdown", job_id)
            except Exception:
                log.exception("could not give job %s back to the queue", job_id)
        self._threads = [t for t in self._threads if t.is_alive()]

    def wake(self) -> None:
        """A job was enqueued: look for it now rather than at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------------ synchronous use

    def recover(self) -> jobs.StaleSweep:
        """Requeue (or give up) running jobs whose heartbeat lapsed — e.g. left by a crash."""
        with Session(self.engine) as session:
            sweep = jobs.requeue_stale(session, stale_after_s=self.settings.job_stale_after_s,
                                       max_attempts=self.settings.job_max_attempts)
        if sweep:
            log.warning("jobs with a lapsed heartbeat: requeued %s, failed %s, cancelled %s",
                        sweep.requeued, sweep.failed, sweep.cancelled)
        return sweep

    def run_one(self, worker_name: str = "sync") -> int | None:
        """Claim the next queued job and run it in this thread; its id, or None if none was queued."""
        worker = jobs.new_worker_token(worker_name)
        with Session(self.engine) as session:
            job = jobs.claim_next(session, worker, kinds=list(self.handlers))
            if job is None:
                return None
            ctx = JobContext(runner=self, job_id=job.id, worker=worker, kind=job.kind, design_id=job.design_id,
                             payload=dict(job.payload or {}))
        self._execute(ctx)
        return ctx.job_id

    # ------------------------------------------------------------------ internals

    def _execute(self, ctx: JobContext) -> None:
        with self._lock:
            self._active[ctx.job_id] = ctx.worker
        t0 = time.perf_counter()
        try:
            handler = self.handlers.get(ctx.kind)
            if handler is None:
                raise JobError(f"This kind of job ({ctx.kind}) cannot be run here.")
            handler(ctx)
        except JobCancelled:
            with Session(self.engine) as session:
                jobs.mark_cancelled(session, ctx.job_id, ctx.worker)
            log.info("job %s cancelled after %.2f s", ctx.job_id, time.perf_counter() - t0)
        except jobs.JobLost:
            log.warning("job %s was taken away from this run (lapsed heartbeat or finished elsewhere)", ctx.job_id)
        except JobError as exc:
            self._fail(ctx, str(exc))
            log.info("job %s failed: %s", ctx.job_id, exc)
        except Exception:
            log.exception("job %s (%s) failed", ctx.job_id, ctx.kind)
            self._fail(ctx, GENERIC_FAILURE)
        finally:
            with self._lock:
                self._active.pop(ctx.job_id, None)

    def _fail(self, ctx: JobContext, message: str) -> None:
        try:
            with Session(self.engine) as session:
                jobs.fail(session, ctx.job_id, ctx.worker, message)
        except Exception:
            log.exception("could not record the failure of job %s", ctx.job_id)

    def _work_loop(self, name: str) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                ran = self.run_one(name)
                backoff = 0.0
            except Exception:
                backoff = min(30.0, max(1.0, backoff * 2))
                log.exception("job runner %s could not claim a job; retrying in %.0f s", name, backoff)
                self._stop.wait(backoff)
                continue
            if ran is None:
                self._wake.wait(self.settings.job_poll_s)

    def _tick_loop(self) -> None:
        first = True
        while not self._stop.is_set():
            if not first:
                self._stop.wait(self.settings.job_heartbeat_s)
                if self._stop.is_set():
                    return
            with self._lock:
                active = dict(self._active)
            for job_id, worker in active.items():
                try:
                    with Session(self.engine) as session:
                        jobs.touch(session, job_id, worker)
                except jobs.JobLost:
                    pass  # the worker thread finds out at its next progress report
                except Exception:
                    log.exception("heartbeat of job %s failed", job_id)
            try:
                self.recover()
            except Exception:
                if first:
                    log.warning("could not recover interrupted jobs (is the database migrated?)", exc_info=True)
                else:
                    log.exception("could not requeue jobs with a lapsed heartbeat")
            first = False
