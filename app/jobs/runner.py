"""Running jobs: the runner embedded in the app, and the job side of ``archplan worker``.

:class:`JobRunner` is started and stopped by the app's lifespan. With
``ARCHPLAN_JOB_BACKEND=embedded`` (the default) it runs ``settings.job_workers`` threads (0
disables it) that each claim the oldest queued job (:func:`app.jobs.service.claim_next`),
run its handler, and sleep ``job_poll_s`` when the queue is empty (:meth:`JobRunner.wake`
cuts the sleep short after an enqueue). One more thread, the *ticker*, refreshes the
heartbeat of the jobs this runner is running every ``job_heartbeat_s`` (a solve does not
report progress while the solver works) and requeues other runners' jobs whose heartbeat
lapsed. At start the ticker first recovers jobs left ``running`` by a process that died.

With ``ARCHPLAN_JOB_BACKEND=procrastinate`` the app's runner runs no job: it installs the
procrastinate transport so that enqueued jobs are announced to the workers after their
commit (:mod:`app.jobs.queue`). Each ``archplan worker`` (:mod:`app.jobs.worker`) has a
runner of its own: procrastinate wakes it for a job id and :meth:`JobRunner.run_job` claims
and runs that job; its ticker also re-announces queued jobs that have no wake-up waiting.

Tests call :meth:`JobRunner.run_one` to run the next job synchronously in their own thread.

Handlers
========
A handler gets a :class:`JobContext` and returns nothing; it reports progress through
:meth:`JobContext.progress` (which raises :class:`JobCancelled` once a cancel was requested,
and :class:`~app.jobs.service.JobLost` when the job was taken away), and records its outcome
itself (``plan``: saves the plan and marks the job succeeded in one transaction). An
exception escaping a handler fails the job with the message of a :class:`JobError`, or a
generic sentence for anything else (the traceback goes to the log, never to users).

Solves in a child process
=========================
A handler runs its long computation with :meth:`JobContext.call`. With
``ARCHPLAN_JOB_ISOLATION=process`` (the default) the function runs in a child process
(started from a ``forkserver`` that has the planner imported, so a start costs a fork): its
progress reports come back over a pipe and are recorded as usual, and the child is killed
— with its process group, e.g. a CBC solver — as soon as a cancel is requested, the runner
stops (the job is given back to the queue), or one step runs longer than its limit (the
solver's time limit plus a margin: the job fails saying so). A child that dies (e.g. out of
memory) fails the job readably instead of taking the runner with it. With ``thread`` the
function runs in the runner's thread, and a cancel takes effect at the next progress report.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.jobs import service as jobs
from app.models import Design, Job
from app.settings import Settings

log = logging.getLogger("archplan.jobs")

GENERIC_FAILURE = ("The planner failed unexpectedly; the error has been logged. "
                   "Try again, or change the requirements.")


class JobCancelled(Exception):
    """Raised from a progress report once a cancel was requested: the handler stops."""


class JobError(Exception):
    """A failure whose message is meant for users (no internals)."""


class JobInterrupted(Exception):
    """The runner is stopping: the job goes back to the queue for another run."""


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
        """Record progress and refresh the heartbeat; raise :class:`JobCancelled` if a cancel was
        requested, :class:`JobInterrupted` if the runner is stopping."""
        if self.runner.stopping:
            raise JobInterrupted
        with Session(self.engine) as session:
            cancel = jobs.touch(session, self.job_id, self.worker, progress=fraction, message=message)
        if cancel:
            raise JobCancelled

    def check_cancel(self) -> None:
        """Refresh the heartbeat; raise as :meth:`progress` does."""
        if self.runner.stopping:
            raise JobInterrupted
        with Session(self.engine) as session:
            cancel = jobs.touch(session, self.job_id, self.worker)
        if cancel:
            raise JobCancelled

    def call(self, fn: Callable[..., Any], *args: Any, step_limit_s: float) -> Any:
        """``fn(*args, progress=…)`` in a child process or in this thread (see the module docstring).

        ``fn`` must be a module-level function and its arguments and result picklable. A
        step — the time between two progress reports — longer than ``step_limit_s`` is
        stopped (with process isolation) and fails the job.
        """
        return self.runner.call(self, fn, args, step_limit_s)


Handler = Callable[[JobContext], None]


# --------------------------------------------------------------------------- the plan handler


STEP_MARGIN_S = 10.0


def solve_plan(spec: Any, snapshot: Any, settings: Any, *, progress: Callable[[float, str], None]) -> Any:
    """The solve of a plan job (run by :meth:`JobContext.call`, in a child process by default)."""
    import app.planner.plan as plan_mod
    from app.planner.demand import DemandError
    from app.requirements.spec import SpecError

    try:
        return plan_mod.make_plan(spec, snapshot, settings, progress=progress)
    except (DemandError, SpecError) as exc:
        detail = exc.args[0] if exc.args else str(exc)
        raise JobError(f"These requirements cannot be planned with the price catalog: {detail}") from None


def design_inputs(ctx: JobContext, doing: str) -> tuple[Any, Any]:
    """The spec captured in a design job's payload, validated, and the design's planning
    snapshot (current prices with its workspace's custom prices); :class:`JobError` when the
    spec no longer validates or the design was deleted. ``doing``: "planning", "analysing"…"""
    from app.requirements.spec import WorkloadSpec, issues_from_validation_error
    from app.services import designs as design_svc

    try:
        spec = WorkloadSpec.model_validate(ctx.payload.get("spec") or {})
    except ValidationError as exc:
        issues = issues_from_validation_error(exc)
        raise JobError(f"The requirements are not valid; fix them and save before {doing}: "
                       + "; ".join(str(i) for i in issues[:5])) from None
    ctx.progress(0.0, "Loading the price catalog")
    with Session(ctx.engine) as session:
        design = session.get(Design, ctx.design_id) if ctx.design_id is not None else None
        if design is None:
            raise JobError("The design was deleted.")
        snapshot = design_svc.planning_snapshot(session, design.workspace_id)
        session.commit()  # no transaction stays open during the solves
    return spec, snapshot


def run_plan_job(ctx: JobContext) -> None:
    """Solve the design's spec captured in the payload and store the plan (kind ``plan``)."""
    # Imported here: the planner (PuLP, HiGHS) loads only when a job runs.
    from app.services import designs as design_svc

    payload = ctx.payload
    spec, snapshot = design_inputs(ctx, "planning")
    time_limit_s = float(payload.get("time_limit_s") or ctx.settings.solver_time_limit_s)
    settings = design_svc.planner_settings(payload.get("solver") or ctx.settings.solver, time_limit_s)
    # One step is building the model or one solve (each bounded by the solver's time limit).
    plan = ctx.call(solve_plan, spec, snapshot, settings, step_limit_s=time_limit_s * 1.5 + STEP_MARGIN_S)
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


def _lazy(module: str, name: str) -> Handler:
    """A handler imported when its first job runs (keeps the app's start light)."""

    def handler(ctx: JobContext) -> None:
        import importlib

        getattr(importlib.import_module(module), name)(ctx)

    handler.__name__ = name
    return handler


HANDLERS: dict[str, Handler] = {
    "plan": run_plan_job,
    # What-if analyses of a design (app.jobs.analysis): results stored in ``job.result``.
    "curve": _lazy("app.jobs.analysis", "run_curve_job"),
    "sensitivity": _lazy("app.jobs.analysis", "run_sensitivity_job"),
    # A price refresh from a provider's public API (app.jobs.refresh): a new current snapshot.
    "refresh": _lazy("app.jobs.refresh", "run_refresh_job"),
}


# --------------------------------------------------------------------------- child processes

_mp_lock = threading.Lock()
_mp: Any = None


def _mp_context() -> Any:
    """The ``forkserver`` context whose server has the planner imported (started once).

    ``app.cli`` too: a child re-imports the parent's main module, usually the ``archplan``
    command, and finds it imported already.
    """
    global _mp
    with _mp_lock:
        if _mp is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["app.cli", "app.jobs.runner", "app.planner.plan"])
            _mp = ctx
        return _mp


def warm_up() -> None:
    """Start the forkserver now (it imports the planner meanwhile), not at the first solve."""
    _mp_context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _child_main(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], nice: int = 0) -> None:
    """Body of a job's child process: run ``fn``, send its progress and its outcome."""
    os.setpgid(0, 0)  # its own process group: killing it also stops a solver it started
    if nice:
        # Lower priority (inherited by a solver it starts): requests are answered before solves.
        os.nice(nice)
    conn.send(("started", os.getpid()))

    def progress(fraction: float, message: str) -> None:
        conn.send(("progress", fraction, message))

    try:
        result = fn(*args, progress=progress)
        outcome: tuple[Any, ...] = ("result", result)
    except BaseException as exc:  # reported to the parent, which decides
        text = "".join(traceback.format_exception(exc))
        outcome = ("raised", exc, text) if _roundtrips(exc) else ("crashed", text)
    try:
        conn.send(outcome)
    except Exception:  # the result itself cannot be sent
        conn.send(("crashed", traceback.format_exc()))
    conn.close()


def _roundtrips(exc: BaseException) -> bool:
    """Can ``exc`` be sent to the parent as it is (same type and message after pickling)?"""
    try:
        again = pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return type(again) is type(exc) and str(again) == str(exc)


def _kill(proc: Any) -> None:
    """Kill a child that is still running, with its process group (a solver it started)."""
    if proc.pid is None or not proc.is_alive():
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()


START_LIMIT_S = 120.0  # for a child process to start running, before the step clock starts


class ChildCrashed(RuntimeError):
    """The child process raised something that could not be sent back as it is."""


# --------------------------------------------------------------------------- the runner


class JobRunner:
    """Claims and runs jobs in ``workers`` threads, or for a worker (see the module docstring)."""

    def __init__(self, engine: Engine, settings: Settings, *, workers: int | None = None,
                 handlers: dict[str, Handler] | None = None, name: str = "runner"):
        self.engine = engine
        self.settings = settings
        self.workers = settings.job_workers if workers is None else workers
        if settings.job_backend == "procrastinate" and workers is None:
            self.workers = 0  # `archplan worker` processes run the jobs
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.name = name
        self.queue: Any = None  # the procrastinate transport, with that backend
        self.release_message = "Waiting for a worker (the server restarted)"
        self._installed_queue = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: dict[int, str] = {}  # job id -> claim token, for the heartbeat
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        """Start the worker threads and the ticker (nothing when ``workers`` is 0).

        With the procrastinate backend: install the transport that announces enqueued jobs.
        """
        if self.settings.job_backend == "procrastinate" and self.queue is None:
            from app.jobs.queue import ProcrastinateQueue, install

            self.queue = ProcrastinateQueue(self.engine, stale_after_s=self.settings.job_stale_after_s)
            install(self.queue)
            self._installed_queue = True
            log.info("jobs are run by `archplan worker` processes (procrastinate queue)")
        if self.workers <= 0 or self._threads:
            return
        self._stop.clear()
        self.start_ticker()
        if self.settings.job_isolation == "process":
            threading.Thread(target=self._warm_up, name=f"{self.name}-warm-up", daemon=True).start()
        for i in range(self.workers):
            self._threads.append(threading.Thread(target=self._work_loop, args=(f"{self.name}-{i + 1}",),
                                                  name=f"{self.name}-{i + 1}", daemon=True))
            self._threads[-1].start()
        log.info("job runner started with %d worker thread(s)", self.workers)

    def start_ticker(self) -> None:
        """Start only the ticker: heartbeats of running jobs, recovery, and (with a
        transport) re-announcing queued jobs. ``archplan worker`` runs jobs through
        :meth:`run_job`."""
        self._stop.clear()
        ticker = threading.Thread(target=self._tick_loop, name=f"{self.name}-ticker", daemon=True)
        self._threads.append(ticker)
        ticker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` for running ones, then give them back to the queue.

        Solves in child processes are stopped at once and their jobs given back.
        """
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    break
            time.sleep(0.02)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            leftover = dict(self._active)
        for job_id, worker in leftover.items():
            self._release(job_id, worker, self.release_message)
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._installed_queue:
            from app.jobs.queue import uninstall

            uninstall(self.queue)
            self.queue = None
            self._installed_queue = False

    def _warm_up(self) -> None:
        try:
            warm_up()
        except Exception:  # the first solve tries again, and reports
            log.warning("could not start the solve processes' server", exc_info=True)

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
            ctx = self._context(job, worker)
        self._execute(ctx)
        return ctx.job_id

    def run_job(self, job_id: int, worker_name: str = "worker") -> bool:
        """Claim the job ``job_id`` and run it in this thread (a worker woken for it).

        False, doing nothing, when the job is not queued any more (cancelled, or run already
        after a duplicate wake-up) or the runner is stopping.
        """
        if self._stop.is_set():
            return False
        worker = jobs.new_worker_token(worker_name)
        with Session(self.engine) as session:
            if not jobs.claim(session, job_id, worker):
                log.debug("job %s is not queued any more; nothing to run", job_id)
                return False
            job = session.get(Job, job_id)
            if job is None:  # deleted with its design in between
                return False
            session.refresh(job)
            ctx = self._context(job, worker)
        self._execute(ctx)
        return True

    def call(self, ctx: JobContext, fn: Callable[..., Any], args: tuple[Any, ...], step_limit_s: float) -> Any:
        """Run a handler's computation (see :meth:`JobContext.call`)."""
        if self.settings.job_isolation == "thread":
            return fn(*args, progress=ctx.progress)
        return self._call_in_child(ctx, fn, args, step_limit_s)

    # ------------------------------------------------------------------ internals

    def _context(self, job: Job, worker: str) -> JobContext:
        return JobContext(runner=self, job_id=job.id, worker=worker, kind=job.kind, design_id=job.design_id,
                          payload=dict(job.payload or {}))

    def _call_in_child(self, ctx: JobContext, fn: Callable[..., Any], args: tuple[Any, ...],
                       step_limit_s: float) -> Any:
        mp = _mp_context()
        receiver, sender = mp.Pipe(duplex=False)
        proc = mp.Process(target=_child_main, args=(sender, fn, args, self.settings.job_nice),
                          name=f"archplan-job-{ctx.job_id}",
                          daemon=True)
        proc.start()
        sender.close()
        # The step clock starts once the child runs: a slow start on a busy machine is not the solver's.
        step_deadline = time.monotonic() + START_LIMIT_S
        started = False
        try:
            while True:
                wait = max(0.0, min(self.settings.job_poll_s, step_deadline - time.monotonic()))
                if receiver.poll(wait):
                    try:
                        message = receiver.recv()
                    except EOFError:
                        proc.join(5)
                        log.error("job %s: the solve process ended without an answer (exit code %s)",
                                  ctx.job_id, proc.exitcode)
                        raise JobError("The planner process stopped unexpectedly (it may have run out of "
                                       "memory). Try again, or reduce the horizon or the options.") from None
                    kind = message[0]
                    if kind == "started":
                        started = True
                        step_deadline = time.monotonic() + step_limit_s
                    elif kind == "progress":
                        ctx.progress(message[1], message[2])
                        step_deadline = time.monotonic() + step_limit_s
                    elif kind == "result":
                        return message[1]
                    elif kind == "raised":
                        exc = message[1]
                        if not isinstance(exc, JobError):
                            exc.add_note(f"in the solve process:\n{message[2]}")
                        raise exc
                    else:
                        raise ChildCrashed(f"in the solve process:\n{message[1]}")
                elif self._stop.is_set():
                    raise JobInterrupted
                elif time.monotonic() >= step_deadline and not started:
                    log.error("job %s: the solve process did not start in %.0f s", ctx.job_id, START_LIMIT_S)
                    raise JobError("The planner process did not start in time (the server is overloaded). "
                                   "Try again later.")
                elif time.monotonic() >= step_deadline:
                    log.warning("job %s: a step ran longer than %.0f s; its process was stopped",
                                ctx.job_id, step_limit_s)
                    raise JobError(f"The solve did not finish in time (one step ran longer than "
                                   f"{step_limit_s:.0f} s, past the solver's time limit). Try again, or "
                                   "simplify the requirements.")
                else:
                    ctx.check_cancel()
        finally:
            receiver.close()
            _kill(proc)
            proc.join(5)

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
        except JobInterrupted:
            self._release(ctx.job_id, ctx.worker, self.release_message)
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

    def _release(self, job_id: int, worker: str, message: str) -> None:
        try:
            with Session(self.engine) as session:
                if jobs.release(session, job_id, worker, message):
                    log.warning("job %s given back to the queue (the runner is stopping)", job_id)
        except Exception:
            log.exception("could not give job %s back to the queue", job_id)

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
                if self.queue is not None:
                    self.queue.dispatch_pending()
            except Exception:
                if first:
                    log.warning("could not recover interrupted jobs (is the database migrated?)", exc_info=True)
                else:
                    log.exception("could not requeue jobs with a lapsed heartbeat or announce queued ones")
            first = False
