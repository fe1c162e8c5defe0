"""``archplan worker``: a process that runs jobs from PostgreSQL, woken through procrastinate.

Run one or more with ``ARCHPLAN_JOB_BACKEND=procrastinate`` (the app then runs no job
itself). Each worker:

* runs a procrastinate worker on the ``archplan`` queue whose one task,
  ``archplan.run_job(job_id)``, claims that row of the ``job`` table and runs it with the
  same handlers as the embedded runner (:meth:`app.jobs.runner.JobRunner.run_job`), up to
  ``concurrency`` jobs at once, each solve in a child process by default;
* refreshes the heartbeat of the jobs it runs, requeues jobs whose heartbeat lapsed (a
  worker that was killed: ``attempts`` + 1, failed after ``ARCHPLAN_JOB_MAX_ATTEMPTS``) and
  announces queued jobs that have no wake-up waiting (the outbox scan,
  :meth:`app.jobs.queue.ProcrastinateQueue.dispatch_pending`), every
  ``ARCHPLAN_JOB_HEARTBEAT_S``;
* marks failed the wake-ups that killed workers left ``doing`` (procrastinate's own table).

SIGTERM or SIGINT stops it: running solves are stopped and their jobs given back to the
queue (not counted as an attempt), for another worker or the next start. A run can never
record its result after losing its claim, so a job is never finished twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import make_engine
from app.jobs.queue import QUEUE, TASK, ProcrastinateQueue, install, uninstall
from app.jobs.runner import Handler, JobRunner, warm_up
from app.settings import Settings

log = logging.getLogger("archplan.jobs")

STOP_GRACE_S = 10.0


class WorkerError(RuntimeError):
    """The worker cannot start (configuration or database); the message says what to do."""


def check_database(engine) -> None:
    """Raise :class:`WorkerError` unless the database is reachable and has the queue's tables."""
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT to_regclass('procrastinate_jobs'), to_regclass('job')")).one()
    except SQLAlchemyError as exc:
        raise WorkerError(f"cannot reach the database: {exc.__class__.__name__}: "
                          f"{str(getattr(exc, 'orig', exc)).strip()}") from exc
    if found[0] is None or found[1] is None:
        raise WorkerError("the database has no job queue tables; run `archplan db upgrade` first.")


def run_worker(settings: Settings, *, concurrency: int = 1, name: str = "worker",
               handlers: dict[str, Handler] | None = None) -> None:
    """Run a worker in this process until SIGTERM or SIGINT (see the module docstring)."""
    asyncio.run(serve(settings, concurrency=concurrency, name=name, handlers=handlers))


async def serve(settings: Settings, *, concurrency: int = 1, name: str = "worker",
                handlers: dict[str, Handler] | None = None, stop: asyncio.Event | None = None) -> None:
    """The worker's run loop; returns once ``stop`` is set (or SIGTERM/SIGINT in the main thread)."""
    if settings.job_backend != "procrastinate":
        raise WorkerError("archplan worker runs jobs for ARCHPLAN_JOB_BACKEND=procrastinate; set it (and a "
                          "PostgreSQL ARCHPLAN_DATABASE_URL) for the app and its workers.")
    engine = make_engine(settings.database_url)
    try:
        await asyncio.to_thread(check_database, engine)
        await _serve(engine, settings, concurrency, name, handlers, stop or asyncio.Event())
    finally:
        engine.dispose()


async def _serve(engine, settings: Settings, concurrency: int, name: str, handlers: dict[str, Handler] | None,
                 stop: asyncio.Event) -> None:
    runner = JobRunner(engine, settings, workers=0, handlers=handlers, name=name)
    runner.release_message = "Waiting for a worker (a worker stopped)"
    queue = ProcrastinateQueue(engine, stale_after_s=settings.job_stale_after_s, pool_max_size=concurrency + 4)
    runner.queue = queue

    def run_job(job_id: int) -> None:
        runner.run_job(job_id, name)

    queue.app.task(name=TASK, queue=QUEUE)(run_job)

    loop = asyncio.get_running_loop()
    # procrastinate runs each job in the loop's default executor: room for all of them at once.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=concurrency + 4, thread_name_prefix=name))
    signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    install(queue)
    try:
        async with queue.app.open_async():
            runner.start_ticker()  # heartbeats, recovery and the outbox scan, at once and then every beat
            if settings.job_isolation == "process":
                await asyncio.to_thread(warm_up)
            worker = asyncio.create_task(queue.app.run_worker_async(
                queues=[QUEUE], name=name, concurrency=concurrency, install_signal_handlers=False,
                delete_jobs="successful", listen_notify=True,
                fetch_job_polling_interval=settings.job_poll_s, abort_job_polling_interval=settings.job_stale_after_s,
                update_heartbeat_interval=settings.job_heartbeat_s, stalled_worker_timeout=settings.job_stale_after_s,
                shutdown_graceful_timeout=STOP_GRACE_S,
            ), name="procrastinate worker")
            tidy = asyncio.create_task(_tidy_loop(queue, settings), name="tidy wake-ups")
            stopped = asyncio.create_task(stop.wait())
            log.info("archplan worker %s running up to %d job(s) at once", name, concurrency)
            try:
                await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                log.info("archplan worker %s stopping", name)
                # Stop the solves and give their jobs back first, so procrastinate's shutdown is quick.
                await asyncio.to_thread(runner.stop, STOP_GRACE_S)
                for task in (tidy, stopped, worker):
                    task.cancel()
                for task in (tidy, stopped):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                try:
                    await worker
                except asyncio.CancelledError:
                    pass
                except Exception as exc:
                    log.exception("the procrastinate worker failed")
                    raise WorkerError(f"the job queue failed: {exc.__class__.__name__}: {exc}") from exc
            if not stop.is_set():
                raise WorkerError("the procrastinate worker stopped on its own; see the log above.")
    finally:
        uninstall(queue)
        for sig in signals:
            loop.remove_signal_handler(sig)
    log.info("archplan worker %s stopped", name)


async def _tidy_loop(queue: ProcrastinateQueue, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.job_stale_after_s)
        try:
            # Twice the job timeout: bookkeeping only, never ahead of a worker that is just slow.
            await queue.tidy_stalled(2 * settings.job_stale_after_s)
        except Exception:
            log.exception("could not tidy the wake-ups of stopped workers")
