"""The procrastinate transport: wake-ups that tell ``archplan worker`` processes which job to run.

Used when ``ARCHPLAN_JOB_BACKEND=procrastinate`` (PostgreSQL only). The ``job`` table stays the
record of every job — status, progress, attempts, heartbeat, result, cancel — and the pages
and the API read only that. A procrastinate job (task :data:`TASK`, arguments
``{"job_id": N}``, queueing lock ``archplan-job-N``) is just a wake-up: the worker that fetches
it claims row N with :func:`app.jobs.service.claim`, and does nothing when the row is no
longer queued (cancelled meanwhile, or already run after a duplicate wake-up).

When wake-ups are deferred
==========================
* **After the commit.** :func:`app.jobs.service.enqueue` calls :func:`defer_after_commit`:
  when a transport is installed for the session's database in this process
  (:func:`install`; the app does it at start, each worker too), the new job's id is noted
  on the session and deferred once the transaction that created the row has committed —
  in a short transaction of its own. A rollback forgets it: a worker is never woken for a
  row it cannot see, and a row that was never committed is never announced.
* **Outbox scan.** :meth:`ProcrastinateQueue.dispatch_pending` defers a wake-up for every
  queued row that has none waiting or being handled by a live worker. Workers run it at
  start and at every heartbeat, so a row whose wake-up was lost — the process died between
  commit and defer, the defer failed, the job was queued again after a lapsed heartbeat or
  given back by a stopping worker — is announced again. The queueing lock keeps a row to
  one waiting wake-up.

A wake-up fetched by a worker that was then killed stays ``doing`` in procrastinate's
table; the job row itself is recovered through its heartbeat (requeued, attempts + 1), and
:meth:`ProcrastinateQueue.tidy_stalled` marks such orphaned wake-ups failed.

procrastinate is imported only when a transport is created: the embedded default never
loads it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger("archplan.jobs")

TASK = "archplan.run_job"
QUEUE = "archplan"
LOCK_PREFIX = "archplan-job-"
TABLE_PREFIX = "procrastinate_"

_PENDING = "archplan_jobs_to_defer"
_HOOKED = "archplan_defer_hooked"

_installed: dict[str, ProcrastinateQueue] = {}
_installed_lock = threading.Lock()


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object``: procrastinate's tables are its own, not models."""
    return not (name or "").startswith(TABLE_PREFIX)


def queueing_lock(job_id: int) -> str:
    return f"{LOCK_PREFIX}{job_id}"


def libpq_conninfo(url: str) -> str:
    """The libpq URI of a ``postgresql+psycopg://`` SQLAlchemy URL (for procrastinate's pool)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("the procrastinate job queue needs a PostgreSQL database")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


class ProcrastinateQueue:
    """Defers and tidies wake-ups for the job rows of one PostgreSQL database."""

    def __init__(self, engine: Engine, *, stale_after_s: float = 30.0, pool_max_size: int = 4):
        import procrastinate

        self.engine = engine
        self.stale_after_s = stale_after_s
        conninfo = libpq_conninfo(_key(engine))
        #: The worker's app (asynchronous; its pool opens only in ``archplan worker``).
        self.app: procrastinate.App = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=max(2, pool_max_size)),
        )
        # Defers go through connections of our engine, synchronously: this app never opens a pool.
        self._deferrer: procrastinate.App = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo),
        )

    # ------------------------------------------------------------------ defer

    def defer(self, job_ids: Iterable[int]) -> list[int]:
        """Defer one wake-up per job id, each in its own transaction; the ids deferred.

        An id that already has a wake-up waiting is skipped (its queueing lock).
        """
        from procrastinate.exceptions import AlreadyEnqueued

        deferred: list[int] = []
        for job_id in job_ids:
            try:
                with self.engine.begin() as conn:
                    self._deferrer.configure_task(
                        TASK, queue=QUEUE, queueing_lock=queueing_lock(job_id),
                        connection=conn.connection.driver_connection,
                    ).defer(job_id=int(job_id))
            except AlreadyEnqueued:
                continue
            deferred.append(int(job_id))
        return deferred

    def pending(self, limit: int = 500) -> list[int]:
        """Queued job rows that need a wake-up, oldest first.

        A row needs none while its wake-up waits (``todo``) or is being handled by a live
        worker (``doing``, the worker's heartbeat younger than ``stale_after_s``: it is about
        to claim the row, or to finish after giving it back). A wake-up left ``doing`` by a
        killed worker does not count.
        """
        with Session(self.engine) as session:
            rows = session.execute(text(
                "SELECT j.id FROM job j WHERE j.status = 'queued' AND NOT EXISTS ("
                " SELECT 1 FROM procrastinate_jobs p"
                " LEFT JOIN procrastinate_workers w ON w.id = p.worker_id"
                " WHERE p.status IN ('todo', 'doing') AND p.task_name = :task"
                " AND p.queueing_lock = :prefix || j.id::text"
                " AND (p.status = 'todo' OR w.last_heartbeat > now() - make_interval(secs => :stale)))"
                " ORDER BY j.id LIMIT :limit"
            ), {"prefix": LOCK_PREFIX, "task": TASK, "stale": self.stale_after_s, "limit": limit}).scalars().all()
        return [int(r) for r in rows]

    def dispatch_pending(self) -> list[int]:
        """The outbox scan: defer a wake-up for every queued row that has none waiting."""
        deferred = self.defer(self.pending())
        if deferred:
            log.info("deferred wake-ups for queued jobs %s", deferred)
        return deferred

    # ------------------------------------------------------------------ tidy

    async def tidy_stalled(self, seconds_since_heartbeat: float) -> list[int]:
        """Mark failed the wake-ups fetched by workers that stopped beating (killed).

        Only procrastinate's own bookkeeping: their job rows are requeued through the job
        heartbeat. Returns the ids of the procrastinate jobs marked.
        """
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(task_name=TASK, seconds_since_heartbeat=seconds_since_heartbeat)
        done: list[int] = []
        for job in stalled:
            try:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            except Exception:  # finished meanwhile by its worker, or tidied by another one
                log.debug("wake-up %s was not tidied", job.id, exc_info=True)
                continue
            done.append(int(job.id))
        if done:
            log.warning("wake-ups %s belonged to workers that stopped; their jobs are recovered by heartbeat", done)
        return done


# --------------------------------------------------------------------------- after commit


def install(queue: ProcrastinateQueue) -> None:
    """Defer wake-ups after commit for jobs enqueued in this process on ``queue``'s database."""
    with _installed_lock:
        _installed[_key(queue.engine)] = queue


def uninstall(queue: ProcrastinateQueue) -> None:
    with _installed_lock:
        if _installed.get(_key(queue.engine)) is queue:
            del _installed[_key(queue.engine)]


def installed_for(engine: Engine) -> ProcrastinateQueue | None:
    with _installed_lock:
        return _installed.get(_key(engine))


def defer_after_commit(session: Session, job_id: int) -> None:
    """Announce ``job_id`` once ``session``'s transaction commits (nothing on rollback).

    Nothing happens when no transport is installed for the session's database (the
    embedded runner finds queued rows itself).
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or installed_for(bind.engine) is None:
        return
    session.info.setdefault(_PENDING, []).append(int(job_id))
    if not session.info.get(_HOOKED):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_HOOKED] = True


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_PENDING, None)
    if not ids:
        return
    queue = installed_for(session.get_bind().engine)
    if queue is None:
        return
    try:
        queue.defer(ids)
    except Exception:
        # The rows are committed and stay queued: a worker's outbox scan announces them.
        log.warning("could not defer wake-ups for jobs %s; a worker's next scan picks them up", ids,
                    exc_info=True)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
