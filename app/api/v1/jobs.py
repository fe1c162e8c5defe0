"""``/api/v1/jobs``: the state of a solve or an analysis (status, progress, the plan or the
result when done) and cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.api.v1.deps import (
    MAX_ID,
    WRITE_PROBLEMS,
    ApiProblem,
    Caller,
    Db,
    IdempotencyKey,
    Result,
    idempotent,
    problems,
    record,
)
from app.api.v1.workspaces import utc
from app.jobs import service as jobs_svc
from app.models import Job
from app.services.access import job_for

router = APIRouter(tags=["solves"])

JobId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1], description="The job's id.")]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def job_url(job_id: int) -> str:
    return f"/api/v1/jobs/{job_id}"


def plan_url(plan_id: int) -> str:
    return f"/api/v1/plans/{plan_id}"


JOB_EXAMPLE = {
    "id": 57, "kind": "plan", "status": "succeeded", "progress": 1.0, "message": "Done", "attempts": 0,
    "queue_position": 0, "cancel_requested": False, "design_id": 12, "created_at": "2026-12-03T10:02:11Z",
    "started_at": "2026-12-03T10:02:11Z", "finished_at": "2026-12-03T10:02:13Z", "url": "/api/v1/jobs/57",
    "cancel_url": "/api/v1/jobs/57/cancel", "design_url": "/api/v1/designs/12", "plan_id": 31,
    "plan_url": "/api/v1/plans/31", "error": None, "result": None,
}


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: int
    kind: str = Field(description=("`plan`: a solve of a design; `curve`: a cost-versus-deadline analysis; "
                                   "`sensitivity`: the ±20 % scenarios (see `POST …/designs/{id}/analyses`)."))
    status: JobStatus = Field(description="queued → running → succeeded | failed | cancelled.")
    progress: float = Field(ge=0, le=1, description="0 to 1.")
    message: str = Field(description="What the job is doing, for people.")
    attempts: int = Field(description="Runs that ended without a result (a worker stopped); retried up to a limit.")
    queue_position: int = Field(description="Queued jobs ahead of this one (0 when next or not queued).")
    cancel_requested: bool
    design_id: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str
    cancel_url: str
    design_url: str
    plan_id: int | None = Field(description="The plan, once the job succeeded.")
    plan_url: str | None
    error: str | None = Field(description="Why the job failed (when `status` is `failed`).")
    result: dict[str, Any] | None = Field(
        default=None,
        description=("An analysis's outcome once it succeeded (null otherwise, and for plan jobs: see `plan_url`). "
                     "`curve`: `points` (per deadline factor: `factor`, `deadline_days` per training run, `status`, "
                     "`total_cost` and `npv` in USD or null without a plan, `peak_gpus`, `explanation`, `seconds`), "
                     "`factors`, `snapshot_id`, `time_limit_s` (per solve), `gap`. `sensitivity`: `sensitivity` "
                     "(`base_objective`, `objective_kind`, `scenarios` with `name`, `label`, `status`, `objective`, "
                     "`total_cost`, `change_pct`, `cost_by_kind`, `explanation`), `snapshot_id`, `time_limit_s`, "
                     "`gap`."))


def job_out(session: Session, job: Job) -> JobOut:
    return JobOut(
        id=job.id, kind=job.kind, status=job.status, progress=max(0.0, min(1.0, job.progress or 0.0)),
        message=job.message or "", attempts=job.attempts,
        queue_position=jobs_svc.queue_position(session, job) if job.status == jobs_svc.QUEUED else 0,
        cancel_requested=job.cancel_requested, design_id=job.design_id, created_at=utc(job.created_at),
        started_at=utc(job.started_at), finished_at=utc(job.finished_at), url=job_url(job.id),
        cancel_url=job_url(job.id) + "/cancel", design_url=f"/api/v1/designs/{job.design_id}",
        plan_id=job.result_plan_id, plan_url=plan_url(job.result_plan_id) if job.result_plan_id else None,
        error=job.error if job.status == jobs_svc.FAILED else None,
        result=job.result if job.status == jobs_svc.SUCCEEDED else None,
    )


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A solve's status, progress and plan",
            description=("Poll until `status` is `succeeded` (then follow `plan_url`, or read `result` for an "
                         "analysis), `failed` (see `error`) or `cancelled`."),
            responses=problems(404))
def get_job(session: Db, principal: Caller, job_id: JobId):
    job, _design = job_for(session, principal, job_id)
    session.refresh(job)
    return job_out(session, job)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a solve",
             description=("A queued job is cancelled at once; a running one is flagged (`cancel_requested`) "
                          "and stops at its next step. Cancelling a cancelled job changes nothing; a job that "
                          "already succeeded or failed is a 409 problem."),
             responses=problems(*WRITE_PROBLEMS, 409, _409="The job already succeeded or failed."))
def cancel_job(request: Request, session: Db, principal: Caller, job_id: JobId,
               idempotency_key: IdempotencyKey = None):
    def work() -> Result:
        job, design = job_for(session, principal, job_id, "editor")
        session.refresh(job)
        if job.status in (jobs_svc.SUCCEEDED, jobs_svc.FAILED):
            raise ApiProblem(409, f"The job has already {job.status}; there is nothing to cancel.")
        job = jobs_svc.request_cancel(session, job.id) or job
        record(request, session, principal, "plan.cancel", workspace_id=design.workspace_id, target=f"job:{job.id}",
               design_id=design.id)
        return Result(200, job_out(session, job))

    return idempotent(request, session, principal, idempotency_key, None, work)
