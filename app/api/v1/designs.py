"""``/api/v1/…/designs``: designs (a WorkloadSpec and a name) in a workspace, their solves
and their plans.

Writes need the ``editor`` role (an API key with the write scope). A solve is a job: ``POST
…/solves`` answers 202 at once with the job's URL in ``Location``; poll the job until its
plan is ready.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.v1.deps import (
    BODY_PROBLEMS,
    MAX_ID,
    WRITE_PROBLEMS,
    ApiProblem,
    Caller,
    CursorParam,
    Db,
    IdempotencyKey,
    LimitParam,
    Result,
    decode_cursor,
    idempotent,
    invalid,
    page,
    problems,
    record,
)
from app.api.v1.jobs import JOB_EXAMPLE, JobOut, job_out, job_url, plan_url
from app.api.v1.workspaces import WorkspaceId, utc
from app.models import Design
from app.requirements.spec import SpecError, WorkloadSpec
from app.services import designs as svc
from app.services.access import design_for, workspace_for

router = APIRouter(tags=["designs"])

DesignId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1], description="The design's id.")]

SPEC_EXAMPLE: dict[str, Any] = {
    "schema_version": "1",
    "name": "Support chatbot",
    "performance": {
        "training": [{"name": "finetune", "reference_gpu": "A100-80GB", "gpu_hours": 400, "deadline_days": 14}],
        "inference": [{"name": "chat", "reference_gpu": "L4", "always_on_gpus": 2}],
    },
    "lifecycle": {"start_month": "2027-01", "horizon_months": 12},
}


DESIGN_BODY_EXAMPLES = {"small": {"summary": "A fine-tuning run and an always-on chat service",
                                  "value": {"name": "Support chatbot (cloud only)", "spec": SPEC_EXAMPLE}}}


def design_url(design_id: int) -> str:
    return f"/api/v1/designs/{design_id}"


# --------------------------------------------------------------------------- models


class DesignIn(BaseModel):
    """A new design, or the full replacement of one (``PUT``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Support chatbot (cloud only)", "spec": SPEC_EXAMPLE}]})

    name: str | None = Field(default=None, max_length=200,
                             description="1-200 characters on one line. Default: the spec's `name` (on `PUT`: "
                                         "the design keeps its name).")
    spec: WorkloadSpec = Field(description="The requirements (the same schema as the YAML files in `examples/`).")


DesignBody = Annotated[DesignIn, Body(openapi_examples=DESIGN_BODY_EXAMPLES)]


class DesignPatch(BaseModel):
    """Change the name, the spec, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Support chatbot v2"}]})

    name: str | None = Field(default=None, max_length=200)
    spec: WorkloadSpec | None = None


class PlanSummaryOut(BaseModel):
    id: int
    design_id: int
    status: str = Field(description="optimal | feasible | infeasible | unbounded | error", examples=["optimal"])
    total_cost: float | None = Field(description="Nominal USD over the horizon.", examples=[9550.15])
    snapshot_id: str = Field(examples=["2026-11-24-e097c5bd2c58"])
    created_at: datetime
    url: str


class DesignSummaryOut(BaseModel):
    id: int
    workspace_id: int
    name: str
    created_at: datetime
    updated_at: datetime
    url: str
    latest_plan: PlanSummaryOut | None


DESIGN_EXAMPLE = {
    "id": 12, "workspace_id": 1, "name": "Support chatbot (cloud only)", "created_at": "2026-12-03T10:01:00Z",
    "updated_at": "2026-12-03T10:01:00Z", "url": "/api/v1/designs/12", "latest_plan": None,
    "spec": SPEC_EXAMPLE, "plans_url": "/api/v1/designs/12/plans", "solves_url": "/api/v1/designs/12/solves",
    "workspace_url": "/api/v1/workspaces/1",
}


class DesignOut(DesignSummaryOut):
    model_config = ConfigDict(json_schema_extra={"examples": [DESIGN_EXAMPLE]})

    spec: dict[str, Any] = Field(description="The stored WorkloadSpec (every field, defaults filled in).")
    plans_url: str
    solves_url: str
    workspace_url: str


class DesignPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{k: v for k, v in DESIGN_EXAMPLE.items() if k not in ("spec", "plans_url", "solves_url",
                                                                       "workspace_url")}],
        "next_cursor": "eyJsIjoiZGVzaWduczoxIiwiaSI6MTJ9",
    }]})

    items: list[DesignSummaryOut] = Field(description="Newest first.")
    next_cursor: str | None


class PlanPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"id": 31, "design_id": 12, "status": "optimal", "total_cost": 9550.15,
                   "snapshot_id": "2026-11-24-e097c5bd2c58", "created_at": "2026-12-03T10:02:13Z",
                   "url": "/api/v1/plans/31"}],
        "next_cursor": None,
    }]})

    items: list[PlanSummaryOut] = Field(description="Newest first.")
    next_cursor: str | None


class SolveIn(BaseModel):
    """Optional solver settings; an empty body (or none) uses the server's."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"time_limit_s": 30}]})

    solver: Literal["highs", "cbc"] | None = Field(default=None, description="Default: the server's solver.")
    time_limit_s: float | None = Field(default=None, gt=0, le=3600,
                                       description="Solver time limit; at most the server's limit.")


# --------------------------------------------------------------------------- helpers


def plan_summary_out(p: svc.PlanSummary) -> PlanSummaryOut:
    return PlanSummaryOut(id=p.id, design_id=p.design_id, status=p.status, total_cost=p.total_cost,
                          snapshot_id=p.snapshot_id, created_at=utc(p.created_at), url=plan_url(p.id))


def design_out(session: Any, design: Design) -> DesignOut:
    latest = svc.latest_plan(session, design.id)
    url = design_url(design.id)
    return DesignOut(id=design.id, workspace_id=design.workspace_id, name=design.name,
                     created_at=utc(design.created_at), updated_at=utc(design.updated_at), url=url,
                     latest_plan=plan_summary_out(latest) if latest else None, spec=design.spec,
                     plans_url=url + "/plans", solves_url=url + "/solves",
                     workspace_url=f"/api/v1/workspaces/{design.workspace_id}")


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return svc.clean_name(value)
    except svc.InvalidNameError as exc:
        raise invalid("name", str(exc)) from None


def _dotted(path: str) -> str:
    """``a[0].b`` (spec issue paths) as ``a.0.b`` (the API's field paths)."""
    return path.replace("[", ".").replace("]", "")


def spec_problem(exc: SpecError, detail: str) -> ApiProblem:
    return ApiProblem(422, detail, title="Validation failed", errors=[
        {"field": "spec" + ("." + _dotted(i.path) if i.path else ""), "message": i.message, "type": i.type}
        for i in exc.issues])


def _wake_runner(request: Request) -> None:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()


# --------------------------------------------------------------------------- designs


@router.get("/workspaces/{workspace_id}/designs", response_model=DesignPage,
            summary="The workspace's designs, newest first", responses=problems(404))
def list_designs(session: Db, principal: Caller, workspace_id: WorkspaceId, limit: LimitParam = 20,
                 cursor: CursorParam = None):
    ws, _role = workspace_for(session, principal, workspace_id)
    listing = f"designs:{ws.id}"
    before = decode_cursor(cursor, listing)
    found = svc.list_designs_page(session, ws.id, limit=limit + 1, before_id=before)
    items, next_cursor = page(found, limit, listing, lambda d: d.id)
    return DesignPage(items=[DesignSummaryOut(
        id=d.id, workspace_id=ws.id, name=d.name, created_at=utc(d.created_at), updated_at=utc(d.updated_at),
        url=design_url(d.id), latest_plan=plan_summary_out(d.last_plan) if d.last_plan else None,
    ) for d in items], next_cursor=next_cursor)


@router.post("/workspaces/{workspace_id}/designs", response_model=DesignOut, status_code=201,
             summary="Create a design from a WorkloadSpec",
             description="201 with the design and its URL in `Location`. Invalid specs are 422 problems naming "
                         "each field (`spec.lifecycle.horizon_months`, …).",
             responses={**problems(*BODY_PROBLEMS, 409, _409="The first request with this Idempotency-Key is "
                                                               "still being answered."),
                        201: {"headers": {"Location": {"description": "The design's URL.",
                                                       "schema": {"type": "string"}}}}})
def create_design(request: Request, session: Db, principal: Caller, workspace_id: WorkspaceId, body: DesignBody,
                  idempotency_key: IdempotencyKey = None):
    def work() -> Result:
        ws, _role = workspace_for(session, principal, workspace_id, "editor")
        design = svc.create_design(session, ws.id, body.spec, _name(body.name))
        record(request, session, principal, "design.create", workspace_id=ws.id, target=f"design:{design.id}",
               name=design.name)
        return Result(201, design_out(session, design), {"Location": design_url(design.id)})

    return idempotent(request, session, principal, idempotency_key, body, work)


@router.get("/designs/{design_id}", response_model=DesignOut, summary="One design with its spec",
            responses=problems(404))
def get_design(session: Db, principal: Caller, design_id: DesignId):
    return design_out(session, design_for(session, principal, design_id))


@router.put("/designs/{design_id}", response_model=DesignOut, summary="Replace a design's spec (and name)",
            responses=problems(*BODY_PROBLEMS))
def replace_design(request: Request, session: Db, principal: Caller, design_id: DesignId, body: DesignBody):
    design = design_for(session, principal, design_id, "editor")
    name = _name(body.name)
    design = svc.update_design(session, design, spec=body.spec, name=name)
    record(request, session, principal, "design.update", workspace_id=design.workspace_id,
           target=f"design:{design.id}", fields=["spec", *(["name"] if name else [])])
    return design_out(session, design)


@router.patch("/designs/{design_id}", response_model=DesignOut, summary="Change a design's name and/or spec",
              responses=problems(*BODY_PROBLEMS))
def update_design(request: Request, session: Db, principal: Caller, design_id: DesignId,
                  body: Annotated[DesignPatch, Body(openapi_examples={
                      "rename": {"summary": "Rename", "value": {"name": "Support chatbot v2"}},
                      "respec": {"summary": "Replace the spec", "value": {"spec": SPEC_EXAMPLE}}})]):
    design = design_for(session, principal, design_id, "editor")
    if body.name is None and body.spec is None:
        raise invalid("(body)", "give `name`, `spec` or both")
    name = _name(body.name)
    design = svc.update_design(session, design, spec=body.spec, name=name)
    record(request, session, principal, "design.update", workspace_id=design.workspace_id,
           target=f"design:{design.id}",
           fields=[f for f, v in (("name", body.name), ("spec", body.spec)) if v is not None])
    return design_out(session, design)


@router.delete("/designs/{design_id}", status_code=204, response_class=Response,
               summary="Delete a design with its plans and jobs", responses=problems(*WRITE_PROBLEMS))
def delete_design(request: Request, session: Db, principal: Caller, design_id: DesignId):
    design = design_for(session, principal, design_id, "editor")
    workspace_id, name, did = design.workspace_id, design.name, design.id
    svc.delete_design(session, design)
    record(request, session, principal, "design.delete", workspace_id=workspace_id, target=f"design:{did}",
           name=name)
    return Response(status_code=204)


# --------------------------------------------------------------------------- solves and plans


@router.post("/designs/{design_id}/solves", response_model=JobOut, status_code=202, tags=["solves"],
             summary="Solve the design: queue a job",
             description=("202 Accepted at once with the job (its URL also in `Location`); poll `GET "
                          "/api/v1/jobs/{job_id}` until it succeeds, then read `plan_url`. While a solve of the "
                          "same spec is queued or running, that job is returned instead of a second one."),
             responses={**problems(*BODY_PROBLEMS, 409, _422="The request, or the design's stored spec, is not "
                                                               "valid: `errors` names each field.",
                                   _409="The first request with this Idempotency-Key is still being answered."),
                        202: {"headers": {"Location": {"description": "The job's URL.",
                                                       "schema": {"type": "string"}}},
                              "content": {"application/json": {"example": {**JOB_EXAMPLE, "status": "queued",
                                                                            "progress": 0.0, "plan_id": None,
                                                                            "plan_url": None,
                                                                            "message": "Waiting for a worker",
                                                                            "started_at": None,
                                                                            "finished_at": None}}}}})
def solve_design(request: Request, session: Db, principal: Caller, design_id: DesignId,
                 body: SolveIn | None = None, idempotency_key: IdempotencyKey = None):
    body = body or SolveIn()

    def work() -> Result:
        design = design_for(session, principal, design_id, "editor")
        settings = request.app.state.settings
        limit = min(body.time_limit_s or settings.solver_time_limit_s, settings.solver_time_limit_s)
        try:
            job, created = svc.enqueue_plan(session, design, solver=body.solver or settings.solver, time_limit_s=limit)
        except SpecError as exc:
            raise spec_problem(exc, "The design's stored spec is not valid; replace it (PUT) before solving.") from None
        if created:
            _wake_runner(request)
        record(request, session, principal, "plan.solve", workspace_id=design.workspace_id,
               target=f"design:{design.id}", job_id=job.id, new_job=created)
        return Result(202, job_out(session, job), {"Location": job_url(job.id)})

    return idempotent(request, session, principal, idempotency_key, body, work)


@router.get("/designs/{design_id}/plans", response_model=PlanPage, summary="The design's plans, newest first",
            responses=problems(404))
def list_plans(session: Db, principal: Caller, design_id: DesignId, limit: LimitParam = 20,
               cursor: CursorParam = None):
    design = design_for(session, principal, design_id)
    listing = f"plans:{design.id}"
    before = decode_cursor(cursor, listing)
    found = svc.list_plans_page(session, design.id, limit=limit + 1, before_id=before)
    items, next_cursor = page(found, limit, listing, lambda p: p.id)
    return PlanPage(items=[plan_summary_out(p) for p in items], next_cursor=next_cursor)
