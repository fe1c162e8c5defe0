"""``POST /api/v1/designs/{id}/analyses``: what-if analyses of a design, as jobs.

An analysis — the cost-versus-deadline curve or the planner's ±20 % scenarios, with
optional what-if adjustments — is a job like a solve: 202 Accepted at once with the job
(its URL in ``Location``); poll ``GET /api/v1/jobs/{id}`` until it succeeds and read its
``result``. The same analysis asked again (same spec, adjustments, factors, solver settings
and prices) returns the job that computed or is computing it instead of solving twice; a
failed or cancelled one is run again (:mod:`app.services.analyses`). Needs the ``editor``
role (an API key with the write scope), as a solve does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.api.v1.deps import (
    BODY_PROBLEMS,
    Caller,
    Db,
    IdempotencyKey,
    Result,
    idempotent,
    invalid,
    problems,
    record,
)
from app.api.v1.designs import DesignId, spec_problem
from app.api.v1.jobs import JOB_EXAMPLE, JobOut, job_out, job_url
from app.requirements.spec import SpecError
from app.services import analyses
from app.services import designs as svc
from app.services.access import design_for
from app.services.estimate import MAX_CURVE_POINTS, Adjustments

router = APIRouter(tags=["solves"])

#: The API's names of the analyses, and the job kinds that compute them.
KINDS = {"deadline_curve": analyses.CURVE_JOB, "sensitivity": analyses.SENSITIVITY_JOB}

OptionKind = Literal["on_demand", "spot", "reserved", "private"]  # app.services.estimate.OPTION_KINDS
Factor = Annotated[float, Field(ge=analyses.MIN_FACTOR, le=analyses.MAX_FACTOR)]


class AdjustmentsIn(BaseModel):
    """What-if changes applied to the planner's problem before re-solving (all optional)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "demand_scale": 1.2, "utilization": 0.8, "price_factors": {"on_demand": 1.1, "spot": 0.8},
        "max_gpus_per_region": 64}]})

    demand_scale: float = Field(1.0, gt=0, le=10,
                                description="Multiplies every training run's and service's demand and peak.")
    utilization: float = Field(
        1.0, ge=0.1, le=1.0,
        description=("Share of paid GPU time doing useful work: training and batch work need 1 ÷ this × the "
                     "GPU-hours and GPUs; latency-bound services are unchanged."))
    price_factors: dict[OptionKind, Annotated[float, Field(gt=0, le=10)]] = Field(
        default_factory=dict,
        description="Per purchase option type: multiplies every money figure of its options (1.1 = 10 % dearer).")
    spot_interruption_overhead: float | None = Field(
        None, ge=0, le=2, description="Extra work spot needs for interruptions (0.1 = 10 %); default: the planner's.")
    max_gpus_per_region: int | None = Field(
        None, ge=1, le=10_000_000, description="Largest number of GPUs in any one cloud region at a time.")


class AnalysisIn(BaseModel):
    """Which analysis, and the what-if changes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "deadline_curve", "factors": [0.5, 1, 2], "adjustments": {"demand_scale": 1.2}},
        {"kind": "sensitivity"}]})

    kind: Literal["deadline_curve", "sensitivity"] = Field(
        description=("`deadline_curve`: re-plan with every training run's deadline multiplied by each factor "
                     "(job kind `curve`); `sensitivity`: the planner's scenarios — demand ±20 %, each option "
                     "type's prices ±20 %, spot interruptions 0 % and 30 % (job kind `sensitivity`)."))
    adjustments: AdjustmentsIn | None = Field(
        default=None, description=("What-if changes. The scenarios apply only `spot_interruption_overhead` and "
                                   "`max_gpus_per_region`; the curve applies them all."))
    factors: list[Factor] | None = Field(
        default=None, min_length=1, max_length=4 * MAX_CURVE_POINTS,
        description=(f"Deadline factors of the curve (1 = as required, 0.5 = half the time), at most "
                     f"{MAX_CURVE_POINTS} distinct; default 0.25, 0.5, 0.75, 1, 1.5, 2. Ignored by `sensitivity`, "
                     "and a design without training runs gets the single factor 1."))

    @field_validator("factors")
    @classmethod
    def _few_points(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(set(value)) > MAX_CURVE_POINTS:
            raise ValueError(f"at most {MAX_CURVE_POINTS} distinct factors: each one is a full re-plan")
        return value


@router.post(
    "/designs/{design_id}/analyses", response_model=JobOut, status_code=202,
    summary="Analyse the design: queue a deadline curve or the ±20 % scenarios",
    description=("202 Accepted at once with the job (its URL also in `Location`); poll `GET /api/v1/jobs/{job_id}` "
                 "until it succeeds, then read `result`. The same analysis of the same spec, prices and settings "
                 "returns the job that computed (or is computing) it instead of a new one; a failed or cancelled "
                 "one runs again."),
    responses={**problems(*BODY_PROBLEMS, 409, _422="The request, or the design's stored spec, is not valid: "
                                                    "`errors` names each field.",
                          _409="The first request with this Idempotency-Key is still being answered."),
               202: {"headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}},
                     "content": {"application/json": {"example": {
                         **JOB_EXAMPLE, "kind": "curve", "status": "queued", "progress": 0.0, "plan_id": None,
                         "plan_url": None, "message": "Waiting for a worker", "started_at": None,
                         "finished_at": None}}}}})
def request_analysis(request: Request, session: Db, principal: Caller, design_id: DesignId, body: AnalysisIn,
                     idempotency_key: IdempotencyKey = None):
    def work() -> Result:
        design = design_for(session, principal, design_id, "editor")
        try:
            adjustments = Adjustments.model_validate(body.adjustments.model_dump() if body.adjustments else {})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise invalid("adjustments." + ".".join(str(p) for p in first["loc"]), first["msg"]) from None
        try:
            spec = svc.design_spec(design)
        except SpecError as exc:
            raise spec_problem(exc, "The design's stored spec is not valid; replace it (PUT) before analysing.") \
                from None
        kind = KINDS[body.kind]
        settings = request.app.state.settings
        try:
            job, created = analyses.find_or_enqueue(session, design, kind, spec, adjustments, body.factors, settings)
        except ValueError as exc:
            raise invalid("factors", str(exc)) from None
        session.commit()
        session.refresh(job)
        if job.status == "queued":
            runner = getattr(request.app.state, "job_runner", None)
            if runner is not None:
                runner.wake()
        record(request, session, principal, "analysis.request", workspace_id=design.workspace_id,
               target=f"design:{design.id}", job_id=job.id, kind=kind, new_job=created)
        return Result(202, job_out(session, job), {"Location": job_url(job.id)})

    return idempotent(request, session, principal, idempotency_key, body, work)
