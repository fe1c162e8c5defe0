"""``app.jobs.service`` on SQLite and on a real PostgreSQL: the life cycle of a job, atomic
claiming, fenced writes, cancellation and recovery of jobs whose heartbeat lapsed."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.jobs import service as jobs
from app.models import Design, Job, utcnow
from app.models import Plan as PlanRow
from tests.jobs.rows import job_row as _job


def _enqueue(engine: Engine, n: int = 1, design_id: int | None = None) -> list[int]:
    with Session(engine) as s:
        ids = [jobs.enqueue(s, "plan", design_id=design_id, payload={"n": i}).id for i in range(n)]
        s.commit()
    return ids


def _plan_row(session: Session, design: Design) -> int:
    row = PlanRow(design_id=design.id, snapshot_id="snap", status="optimal", total_cost=1.0, spec={}, result={})
    session.add(row)
    session.commit()
    return row.id


def test_enqueue_claim_progress_finish(engine: Engine, session: Session, design: Design) -> None:
    # enqueue joins the caller's transaction: nobody can claim the job before the commit.
    job = jobs.enqueue(session, "plan", design_id=design.id, payload={"spec": {"name": "x"}})
    assert job.id is not None and job.status == "queued" and job.attempts == 0
    with Session(engine) as other:
        assert jobs.claim_next(other, "w-early") is None
    session.commit()
    assert jobs.active_job(session, design.id).id == job.id
    assert jobs.queue_position(session, job) == 0

    with Session(engine) as s:
        claimed = jobs.claim_next(s, "w1")
    assert claimed is not None and claimed.id == job.id
    row = _job(engine, job.id)
    assert (row.status, row.worker, row.progress, row.message) == ("running", "w1", 0.0, "Starting")
    assert row.started_at is not None and row.heartbeat_at is not None and row.payload == {"spec": {"name": "x"}}
    with Session(engine) as s:
        assert jobs.claim_next(s, "w2") is None  # nothing else is queued

    with Session(engine) as s:
        cancel = jobs.touch(s, job.id, "w1", progress=0.1, message="Solving (4 options, 3 months)")
    assert cancel is False
    row2 = _job(engine, job.id)
    assert (row2.progress, row2.message) == (0.1, "Solving (4 options, 3 months)")
    assert row2.heartbeat_at >= row.heartbeat_at

    plan_id = _plan_row(session, design)
    with Session(engine) as s:
        assert jobs.succeed(s, job.id, "w1", result_plan_id=plan_id, message="Plan ready")
        assert _job(engine, job.id).status == "running"  # not committed yet: the caller commits
        s.commit()
    done = _job(engine, job.id)
    assert (done.status, done.progress, done.result_plan_id, done.message) == ("succeeded", 1.0, plan_id, "Plan ready")
    assert done.finished_at is not None and done.error is None
    assert jobs.active_job(session, design.id) is None
    assert [j.id for j in jobs.list_jobs(session, design.id)] == [job.id]


def test_writes_are_fenced_by_the_claim(engine: Engine) -> None:
    [job_id] = _enqueue(engine)
    with Session(engine) as s:
        assert jobs.claim_next(s, "owner").id == job_id
    with Session(engine) as s:
        with pytest.raises(jobs.JobLost):
            jobs.touch(s, job_id, "someone-else", progress=0.5)
        assert jobs.succeed(s, job_id, "someone-else") is False
        s.rollback()
        assert jobs.fail(s, job_id, "someone-else", "no") is False
        assert jobs.mark_cancelled(s, job_id, "someone-else") is False
    assert _job(engine, job_id).status == "running"
    with Session(engine) as s:
        assert jobs.fail(s, job_id, "owner", "The requirements cannot be planned.")
    row = _job(engine, job_id)
    assert (row.status, row.error) == ("failed", "The requirements cannot be planned.")
    with Session(engine) as s, pytest.raises(jobs.JobLost):  # finished: no more writes
        jobs.touch(s, job_id, "owner")


def test_the_same_job_is_claimed_once(engine: Engine) -> None:
    [job_id] = _enqueue(engine)
    with Session(engine) as a, Session(engine) as b:
        assert jobs.claim(a, job_id, "a") is True
        assert jobs.claim(b, job_id, "b") is False  # the conditional UPDATE changed no row
    assert _job(engine, job_id).worker == "a"


def test_concurrent_claimers_never_share_a_job(engine: Engine) -> None:
    ids = _enqueue(engine, 12)
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        got: list[int] = []
        try:
            start.wait()
            with Session(engine) as s:
                while (job := jobs.claim_next(s, name)) is not None:
                    got.append(job.id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        claimed[name] = got

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    every = [i for got in claimed.values() for i in got]
    assert sorted(every) == ids  # each job exactly once
    for name, got in claimed.items():
        assert all(_job(engine, i).worker == name for i in got)


@pytest.mark.postgres
def test_postgres_claimers_skip_locked_rows(pg_server) -> None:
    from app.db import make_engine
    from app.migrations import upgrade

    url = pg_server.create_database("skip")
    upgrade(url)
    engine = make_engine(url)
    try:
        first, second = _enqueue(engine, 2)
        with Session(engine) as holder:
            # Another claimant holds the oldest row locked (mid-claim)...
            holder.exec(select(Job.id).where(Job.id == first).with_for_update()).one()
            with Session(engine) as s:
                s.execute(text("SET lock_timeout = '2s'"))  # fail, not hang, if it waited
                job = jobs.claim_next(s, "skipper")
            assert job is not None and job.id == second  # ...so this one skips it without waiting
            holder.rollback()
        with Session(engine) as s:
            assert jobs.claim_next(s, "later").id == first
    finally:
        engine.dispose()


def test_stale_heartbeat_requeues_then_fails(engine: Engine) -> None:
    [job_id] = _enqueue(engine)
    t0 = utcnow()
    with Session(engine) as s:
        jobs.claim_next(s, "crashed-1", now=t0)
        # a fresh heartbeat is left alone
        assert not jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t0 + timedelta(seconds=10))
        sweep = jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t0 + timedelta(seconds=31))
    assert sweep.requeued == [job_id] and not sweep.failed
    row = _job(engine, job_id)
    assert (row.status, row.attempts, row.worker, row.heartbeat_at) == ("queued", 1, None, None)
    assert "attempt 2 of 3" in row.message

    t1 = t0 + timedelta(minutes=5)
    with Session(engine) as s:
        assert jobs.claim_next(s, "crashed-2", now=t1).id == job_id
    with Session(engine) as s, pytest.raises(jobs.JobLost):
        jobs.touch(s, job_id, "crashed-1")  # the first run cannot come back and write
    with Session(engine) as s:
        assert jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t1 + timedelta(minutes=1)).requeued == [job_id]
        t2 = t1 + timedelta(minutes=5)
        jobs.claim_next(s, "crashed-3", now=t2)
        sweep = jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t2 + timedelta(minutes=1))
    assert sweep.failed == [job_id] and not sweep.requeued
    row = _job(engine, job_id)
    assert (row.status, row.attempts) == ("failed", 3) and row.finished_at is not None
    assert "stopped responding 3 times" in row.error and "Traceback" not in row.error


def test_a_heartbeat_keeps_a_job(engine: Engine) -> None:
    [job_id] = _enqueue(engine)
    t0 = utcnow()
    with Session(engine) as s:
        jobs.claim_next(s, "alive", now=t0)
        jobs.touch(s, job_id, "alive", now=t0 + timedelta(seconds=25))
        assert not jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t0 + timedelta(seconds=40))
    assert _job(engine, job_id).status == "running"


def test_cancel_a_queued_or_a_running_job(engine: Engine, session: Session, design: Design) -> None:
    queued, running = _enqueue(engine, 2, design.id)
    job = jobs.request_cancel(session, queued)
    assert (job.status, job.cancel_requested) == ("cancelled", True) and job.finished_at is not None
    with Session(engine) as s:
        assert jobs.claim_next(s, "w").id == running  # the cancelled one is never run
    job = jobs.request_cancel(session, running)
    assert (job.status, job.cancel_requested, job.message) == ("running", True, "Cancelling…")
    with Session(engine) as s:
        assert jobs.touch(s, running, "w", progress=0.5, message="Baseline: all on-demand") is True
        plan_id = _plan_row(s, design)
        assert jobs.succeed(s, running, "w", result_plan_id=plan_id) is False  # a cancel wins over a late result
        s.rollback()
        assert jobs.mark_cancelled(s, running, "w")
    row = _job(engine, running)
    assert (row.status, row.result_plan_id) == ("cancelled", None)
    assert jobs.request_cancel(session, running).status == "cancelled"  # finished jobs stay as they are
    assert jobs.request_cancel(session, 999_999) is None


def test_stale_job_with_a_pending_cancel_is_cancelled(engine: Engine) -> None:
    [job_id] = _enqueue(engine)
    t0 = utcnow()
    with Session(engine) as s:
        jobs.claim_next(s, "gone", now=t0)
        jobs.request_cancel(s, job_id)
        sweep = jobs.requeue_stale(s, stale_after_s=30, max_attempts=3, now=t0 + timedelta(minutes=2))
    assert sweep.cancelled == [job_id]
    assert _job(engine, job_id).status == "cancelled"


def test_release_and_queue_position(engine: Engine) -> None:
    a, b, c = _enqueue(engine, 3)
    with Session(engine) as s:
        assert jobs.queue_position(s, s.get(Job, c)) == 2
        assert jobs.claim_next(s, "w").id == a
        assert jobs.queue_position(s, s.get(Job, c)) == 1
        assert jobs.release(s, a, "w", "Waiting for a worker (the server restarted)")
        assert jobs.release(s, a, "w") is False
    row = _job(engine, a)
    assert (row.status, row.attempts, row.worker) == ("queued", 0, None)  # a release is not an attempt


def test_jobs_go_with_their_design(engine: Engine, session: Session, design: Design) -> None:
    from app.services import designs as design_svc

    [job_id] = _enqueue(engine, 1, design.id)
    design_svc.delete_design(session, design)
    with Session(engine) as s:
        assert s.get(Job, job_id) is None
