"""Jobs in the database: enqueue, claim, report progress, finish, cancel, recover.

Every function takes a :class:`~sqlmodel.Session` first. No FastAPI and no threads here: the
embedded runner (:mod:`app.jobs.runner`), the web pages and ``archplan worker``
(:mod:`app.jobs.worker`) share these functions, and they behave the same on SQLite and
PostgreSQL.

Life cycle
==========
``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``

* :func:`enqueue` adds a ``queued`` job **in the caller's transaction** (it only flushes):
  no runner sees the job before the caller commits. With the procrastinate backend the job
  is also announced to the workers once that transaction commits, never before and never
  after a rollback (:mod:`app.jobs.queue`).
* :func:`claim_next` moves the oldest ``queued`` job to ``running`` for one claimant and
  records the claim's token in ``worker``. Every later write of that run (:func:`touch`,
  :func:`succeed`, :func:`fail`, :func:`mark_cancelled`, :func:`release`) is conditional on
  ``status = 'running' AND worker = <token>``, so a run that lost its claim (requeued after
  a lapsed heartbeat, then claimed again) can never overwrite the newer run.
* :func:`touch` refreshes ``heartbeat_at`` (and progress/message) and tells the runner
  whether a cancel was requested; :func:`request_cancel` cancels a queued job at once and
  flags a running one (its runner stops at the next progress report).
* :func:`requeue_stale`: a ``running`` job whose heartbeat is older than ``stale_after_s``
  goes back to ``queued`` with ``attempts + 1``; when that reaches ``max_attempts`` it is
  ``failed`` instead (and ``cancelled`` if a cancel was pending).

Atomic claiming
===============
The claimant reads the oldest queued id, then runs
``UPDATE job SET status='running', worker=:token … WHERE id=:id AND status='queued'`` and
owns the job iff that updated one row.

* PostgreSQL: the read is ``SELECT … FOR UPDATE SKIP LOCKED`` in the same transaction, so
  concurrent claimants lock different rows and never wait for each other; the conditional
  UPDATE is a second guard.
* SQLite has no row locks (``FOR UPDATE`` is not rendered): writers are serialised by the
  database lock, and the conditional UPDATE makes the first writer win — a claimant whose
  UPDATE changed no row tries the next candidate.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from app.jobs import queue
from app.models import Job, utcnow

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "JobLost",
    "StaleSweep",
    "active_job",
    "claim",
    "claim_next",
    "enqueue",
    "fail",
    "find_reusable",
    "get_job",
    "list_jobs",
    "mark_cancelled",
    "new_worker_token",
    "progress_of",
    "queue_position",
    "release",
    "request_cancel",
    "requeue_stale",
    "succeed",
    "touch",
]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
MESSAGE_CHARS = 500
ERROR_CHARS = 4000


class JobLost(RuntimeError):
    """The run no longer owns its job (requeued, cancelled or finished elsewhere)."""


def _msg(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def new_worker_token(name: str = "worker") -> str:
    """A token unique to one claim: host, process, runner thread and a random suffix."""
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{name[:40]}:{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- create and read


def enqueue(session: Session, kind: str, *, design_id: int | None = None, payload: dict[str, Any] | None = None,
            message: str = "Waiting for a worker", dedupe_key: str | None = None) -> Job:
    """Add a queued job to the caller's transaction (flushed for its id, not committed).

    With a procrastinate transport installed, its wake-up is deferred after the commit.
    ``dedupe_key`` (a hash of the inputs) lets :func:`find_reusable` find it again.
    """
    job = Job(kind=kind, status=QUEUED, design_id=design_id, payload=dict(payload or {}), message=_msg(message),
              dedupe_key=dedupe_key)
    session.add(job)
    session.flush()
    queue.defer_after_commit(session, job.id)
    return job


def get_job(session: Session, job_id: int, *, design_id: int | None = None) -> Job | None:
    """The job ``job_id`` (None if it does not exist or belongs to another design)."""
    job = session.get(Job, job_id)
    if job is None or (design_id is not None and job.design_id != design_id):
        return None
    session.refresh(job)  # another process may have moved it on since it was loaded
    return job


def list_jobs(session: Session, design_id: int, limit: int = 20) -> list[Job]:
    """The design's jobs, newest first."""
    return list(session.exec(select(Job).where(Job.design_id == design_id)
                             .order_by(col(Job.id).desc()).limit(limit)).all())


def find_reusable(session: Session, design_id: int | None, kind: str, dedupe_key: str) -> Job | None:
    """The newest job of ``kind`` for the same inputs that is queued, running or succeeded
    (a failed or cancelled one is not reused: asking again runs it again)."""
    q = select(Job).where(Job.kind == kind, Job.dedupe_key == dedupe_key,
                          col(Job.status).in_((QUEUED, RUNNING, SUCCEEDED)))
    q = q.where(col(Job.design_id).is_(None) if design_id is None else Job.design_id == design_id)
    return session.exec(q.order_by(col(Job.id).desc()).limit(1)).first()


def active_job(session: Session, design_id: int, kind: str | None = None) -> Job | None:
    """The design's newest queued or running job, if any."""
    q = select(Job).where(Job.design_id == design_id, col(Job.status).in_(ACTIVE))
    if kind is not None:
        q = q.where(Job.kind == kind)
    return session.exec(q.order_by(col(Job.id).desc()).limit(1)).first()


@dataclass(frozen=True)
class Progress:
    """How a job's progress reads to people: active or not, queue position, percent, message."""

    active: bool
    position: int
    percent: int
    message: str


def progress_of(session: Session, job: Job) -> Progress:
    """The job's progress as pages show it (the queue position is counted for queued jobs)."""
    position = queue_position(session, job) if job.status == QUEUED else 0
    percent = round(max(0.0, min(1.0, job.progress or 0.0)) * 100)
    message = job.message or ("Waiting for a worker" if job.status == QUEUED else "")
    if job.status == QUEUED and position:
        message += f" ({position} job{'s' if position != 1 else ''} ahead)"
    return Progress(active=job.status in ACTIVE, position=position, percent=percent, message=message)


def queue_position(session: Session, job: Job) -> int:
    """How many queued jobs are ahead of ``job`` (0 when it is next, or not queued)."""
    if job.status != QUEUED:
        return 0
    return session.exec(select(func.count()).select_from(Job)
                        .where(Job.status == QUEUED, col(Job.id) < job.id)).one()


# --------------------------------------------------------------------------- claim


def claim(session: Session, job_id: int, worker: str, *, now: datetime | None = None) -> bool:
    """Try to move the queued job ``job_id`` to running for ``worker``; commits.

    True iff this call claimed it (the conditional UPDATE changed one row).
    """
    now = now or utcnow()
    result = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status) == QUEUED)
        .values(status=RUNNING, worker=worker, started_at=now, heartbeat_at=now, progress=0.0,
                message="Starting", finished_at=None, error=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        session.commit()
        return True
    session.rollback()
    return False


def claim_next(session: Session, worker: str, *, kinds: Iterable[str] | None = None,
               now: datetime | None = None, tries: int = 5) -> Job | None:
    """Claim the oldest queued job (of ``kinds``) for ``worker``; None when there is none.

    See the module docstring for why no two claimants get the same job.
    """
    kinds = list(kinds) if kinds is not None else None
    skip_locked = session.get_bind().dialect.name == "postgresql"
    for _ in range(tries):
        q = select(Job.id).where(Job.status == QUEUED)
        if kinds:
            q = q.where(col(Job.kind).in_(kinds))
        q = q.order_by(col(Job.id)).limit(1)
        if skip_locked:
            q = q.with_for_update(skip_locked=True)
        job_id = session.exec(q).first()
        if job_id is None:
            session.rollback()
            return None
        if claim(session, job_id, worker, now=now):
            job = session.get(Job, job_id)
            if job is not None:
                session.refresh(job)
            return job
    return None


# --------------------------------------------------------------------------- while running


def _owned(job_id: int, worker: str):
    return (col(Job.id) == job_id, col(Job.status) == RUNNING, col(Job.worker) == worker)


def touch(session: Session, job_id: int, worker: str, *, progress: float | None = None,
          message: str | None = None, now: datetime | None = None) -> bool:
    """Refresh the heartbeat (and progress/message) of ``worker``'s run; commits.

    Returns whether a cancel was requested; raises :class:`JobLost` if the run lost its claim.
    """
    values: dict[str, Any] = {"heartbeat_at": now or utcnow()}
    if progress is not None:
        values["progress"] = min(1.0, max(0.0, float(progress)))
    if message is not None:
        values["message"] = _msg(message)
    result = session.execute(update(Job).where(*_owned(job_id, worker)).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        raise JobLost(f"job {job_id} is no longer claimed by {worker}")
    cancel = bool(session.exec(select(Job.cancel_requested).where(Job.id == job_id)).one())
    session.commit()
    return cancel


def succeed(session: Session, job_id: int, worker: str, *, result_plan_id: int | None = None,
            result: dict[str, Any] | None = None, message: str = "Done", now: datetime | None = None) -> bool:
    """Mark ``worker``'s run succeeded — **without committing**, so the caller commits the
    result (e.g. the saved plan) and the job together, or rolls both back.

    False (nothing changed) if the run lost its claim or a cancel was requested meanwhile.
    """
    result = session.execute(
        update(Job).where(*_owned(job_id, worker), col(Job.cancel_requested).is_(False))
        .values(status=SUCCEEDED, progress=1.0, message=_msg(message), result_plan_id=result_plan_id,
                result=result, finished_at=now or utcnow(), heartbeat_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def fail(session: Session, job_id: int, worker: str, error: str, *, message: str = "Failed",
         now: datetime | None = None) -> bool:
    """Mark ``worker``'s run failed with a readable ``error`` (shown to users); commits."""
    result = session.execute(
        update(Job).where(*_owned(job_id, worker))
        .values(status=FAILED, error=str(error)[:ERROR_CHARS], message=_msg(message), finished_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def mark_cancelled(session: Session, job_id: int, worker: str, *, now: datetime | None = None) -> bool:
    """``worker`` stopped its run because a cancel was requested; commits."""
    result = session.execute(
        update(Job).where(*_owned(job_id, worker))
        .values(status=CANCELLED, message="Cancelled", finished_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


def release(session: Session, job_id: int, worker: str, message: str = "Waiting for a worker") -> bool:
    """Give a run's job back to the queue without counting an attempt (runner shutting down)."""
    result = session.execute(
        update(Job).where(*_owned(job_id, worker))
        .values(status=QUEUED, worker=None, started_at=None, heartbeat_at=None, progress=0.0, message=_msg(message))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount == 1


# --------------------------------------------------------------------------- cancel and recover


def request_cancel(session: Session, job_id: int, *, now: datetime | None = None) -> Job | None:
    """Cancel a queued job at once; flag a running one for its runner. Commits.

    Returns the job as it is now (finished jobs are left as they are), None if it is unknown.
    """
    now = now or utcnow()
    done = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status) == QUEUED)
        .values(status=CANCELLED, cancel_requested=True, message="Cancelled", finished_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        session.execute(
            update(Job).where(col(Job.id) == job_id, col(Job.status) == RUNNING)
            .values(cancel_requested=True, message="Cancelling…")
            .execution_options(synchronize_session=False)
        )
    session.commit()
    job = session.get(Job, job_id)
    if job is not None:
        session.refresh(job)
    return job


@dataclass
class StaleSweep:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled)


def requeue_stale(session: Session, *, stale_after_s: float, max_attempts: int,
                  now: datetime | None = None) -> StaleSweep:
    """Recover running jobs whose heartbeat lapsed (their runner crashed or hangs); commits.

    Each is queued again with ``attempts + 1``; failed once that reaches ``max_attempts``;
    cancelled if a cancel was pending. Each row is changed by a conditional UPDATE (still
    running, same claim, heartbeat still old), so concurrent sweeps and a run that comes back
    to life in between are both safe.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    last_sign = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
    rows = session.exec(select(Job.id, Job.worker, Job.attempts, Job.cancel_requested)
                        .where(Job.status == RUNNING, last_sign < cutoff).order_by(col(Job.id))).all()
    sweep = StaleSweep()
    for job_id, worker, attempts, cancel in rows:
        guard = (col(Job.id) == job_id, col(Job.status) == RUNNING, last_sign < cutoff,
                 col(Job.worker).is_(None) if worker is None else col(Job.worker) == worker)
        n = attempts + 1
        if cancel:
            values: dict[str, Any] = {"status": CANCELLED, "attempts": n, "message": "Cancelled", "finished_at": now}
            bucket = sweep.cancelled
        elif n >= max_attempts:
            values = {"status": FAILED, "attempts": n, "finished_at": now, "message": "Failed",
                      "error": (f"The planner stopped responding {n} time{'s' if n != 1 else ''} "
                                "(the server restarted or ran out of memory); the job was given up. Try again.")}
            bucket = sweep.failed
        else:
            values = {"status": QUEUED, "attempts": n, "worker": None, "started_at": None, "heartbeat_at": None,
                      "progress": 0.0,
                      "message": f"Queued again after an interrupted run (attempt {n + 1} of {max_attempts})"}
            bucket = sweep.requeued
        result = session.execute(update(Job).where(*guard).values(**values)
                                 .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            bucket.append(job_id)
    session.commit()
    return sweep
