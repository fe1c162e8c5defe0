"""Rows of the job tests, read in a session of their own (as another process would see them)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.models import Job
from app.models import Plan as PlanRow


def job_row(engine: Engine, job_id: int) -> Job:
    """The job as stored now, detached."""
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


def plan_rows(engine: Engine, design_id: int) -> list[PlanRow]:
    """The design's stored plans."""
    with Session(engine) as s:
        return list(s.exec(select(PlanRow).where(PlanRow.design_id == design_id)).all())
