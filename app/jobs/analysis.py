"""The handlers of what-if analysis jobs (kinds ``curve`` and ``sensitivity``).

A job is queued by :func:`app.services.analyses.request_analysis` with every input in its
payload: the validated spec (as JSON), the adjustments, the deadline factors (curve), the
solver, the per-solve time limit and gap. The handler loads the design (a deleted design
fails the job readably), takes the design's planning snapshot as a plan job does, runs the
computation through :meth:`~app.jobs.runner.JobContext.call` — in a child process by
default, so a cancel or an overrun stops it at once — reporting progress per curve point or
per scenario, and stores the outcome as JSON in ``job.result`` in the same transaction that
marks the job succeeded:

* ``curve``: ``{"points": [CurvePoint…], "factors": […], "snapshot_id", "time_limit_s", "gap"}``
* ``sensitivity``: ``{"sensitivity": Sensitivity, "snapshot_id", "time_limit_s", "gap"}``

:func:`app.services.analyses.curve_points` and :func:`~app.services.analyses.sensitivity_result`
rebuild the objects from it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from app.catalog.schema import Snapshot
from app.jobs import service as jobs
from app.jobs.runner import JobContext, JobError, design_inputs
from app.models import Design
from app.planner.demand import DemandError
from app.planner.options import PlannerSettings
from app.requirements.spec import SpecError, WorkloadSpec
from app.services import estimate as est

log = logging.getLogger("archplan.jobs")

#: A step (one curve point or one scenario) may take its solve's time limit × 1.5 plus this
#: (building the model; the scenarios' first step also copies the problem for each scenario).
STEP_MARGIN_S = 30.0


def _cannot_plan(exc: Exception) -> JobError:
    detail = exc.args[0] if exc.args else str(exc)
    return JobError(f"These requirements cannot be planned with the price catalog: {detail}")


# --------------------------------------------------------------------------- computations (child process)


def compute_curve(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings, adjustments: est.Adjustments,
                  factors: list[float], time_limit_s: float, *, progress: est.Progress) -> list[dict[str, Any]]:
    """The deadline curve's points as JSON (run by :meth:`JobContext.call`)."""
    try:
        points = est.deadline_curve(spec, snapshot, settings, adjustments, factors, time_limit_s=time_limit_s,
                                    budget_s=None, progress=progress)
    except (DemandError, SpecError) as exc:
        raise _cannot_plan(exc) from None
    return [p.model_dump(mode="json") for p in points]


def compute_sensitivity(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings,
                        adjustments: est.Adjustments, *, progress: est.Progress) -> dict[str, Any]:
    """The ±20 % scenarios as JSON (run by :meth:`JobContext.call`)."""
    try:
        result = est.scenario_sensitivity(spec, snapshot, settings, adjustments, progress=progress)
    except (DemandError, SpecError) as exc:
        raise _cannot_plan(exc) from None
    return result.model_dump(mode="json")


# --------------------------------------------------------------------------- handlers


def _inputs(ctx: JobContext) -> tuple[WorkloadSpec, est.Adjustments, Snapshot, PlannerSettings, float]:
    """The payload's spec and adjustments, the design's planning snapshot and the settings."""
    from app.services import designs as design_svc

    payload = ctx.payload
    try:
        adjustments = est.Adjustments.model_validate(payload.get("adjustments") or {})
    except ValidationError:
        raise JobError("The what-if changes of this analysis are not valid; ask for it again.") from None
    spec, snapshot = design_inputs(ctx, "analysing")
    time_limit_s = float(payload.get("time_limit_s") or ctx.settings.solver_time_limit_s)
    settings = design_svc.planner_settings(payload.get("solver") or ctx.settings.solver, time_limit_s)
    if payload.get("gap") is not None:
        settings = settings.model_copy(update={"gap": float(payload["gap"])})
    return spec, adjustments, snapshot, settings, time_limit_s


def _finish(ctx: JobContext, result: dict[str, Any], message: str) -> None:
    """Store ``result`` and mark the job succeeded in one transaction."""
    ctx.check_cancel()
    with Session(ctx.engine) as session:
        if ctx.design_id is None or session.get(Design, ctx.design_id) is None:
            raise JobError("The design was deleted.")
        if jobs.succeed(session, ctx.job_id, ctx.worker, result=result, message=message):
            session.commit()
            log.info("job %s: %s of design %s ready", ctx.job_id, ctx.kind, ctx.design_id)
            return
        session.rollback()  # cancelled or taken away at the last moment: nothing is kept
    ctx.check_cancel()
    raise jobs.JobLost(f"job {ctx.job_id} lost its claim before it could be saved")


def run_curve_job(ctx: JobContext) -> None:
    """Re-solve the design's spec for each deadline factor of the payload (kind ``curve``)."""
    spec, adjustments, snapshot, settings, time_limit_s = _inputs(ctx)
    factors = [float(f) for f in ctx.payload.get("factors") or [1.0]]
    points = ctx.call(compute_curve, spec, snapshot, settings, adjustments, factors, time_limit_s,
                      step_limit_s=time_limit_s * 1.5 + STEP_MARGIN_S)
    ok = sum(1 for p in points if p.get("status") in ("optimal", "feasible"))
    _finish(ctx, {"points": points, "factors": factors, "snapshot_id": snapshot.snapshot_id,
                  "time_limit_s": time_limit_s, "gap": settings.gap},
            f"Curve ready: {ok} of {len(points)} point{'s' if len(points) != 1 else ''} with a plan")


def run_sensitivity_job(ctx: JobContext) -> None:
    """Re-solve the design's spec under the planner's ±20 % scenarios (kind ``sensitivity``)."""
    spec, adjustments, snapshot, settings, time_limit_s = _inputs(ctx)
    result = ctx.call(compute_sensitivity, spec, snapshot, settings, adjustments,
                      step_limit_s=time_limit_s * 1.5 + STEP_MARGIN_S)
    n = len(result.get("scenarios") or [])
    _finish(ctx, {"sensitivity": result, "snapshot_id": snapshot.snapshot_id, "time_limit_s": time_limit_s,
                  "gap": settings.gap},
            f"Scenarios ready: {n} re-solved against the base case")
