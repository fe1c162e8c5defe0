"""What-if analyses of a design as durable jobs: the cost-versus-deadline curve and the
planner's ±20 % scenarios.

No FastAPI here. :func:`request_analysis` finds or queues the job of one analysis (the web
trade-offs page and ``POST /api/v1/designs/{id}/analyses`` share it); the job runner runs
it (:mod:`app.jobs.analysis`) and stores the outcome as JSON in ``job.result``;
:func:`curve_points` and :func:`sensitivity_result` rebuild the objects the pages show.

Finding the same analysis again
===============================
An analysis stores nothing but a cached computation, so asking twice for the same one must
not solve twice. Its **dedupe key** is the SHA-256 (64 hex characters) of the canonical JSON
of everything the result depends on: the kind, the validated spec, the adjustments, the
deadline factors, the solver, the per-solve time limit and gap, and the id of the planning
snapshot (the current prices with the workspace's custom prices). :func:`request_analysis`
returns the newest queued, running or succeeded job with that key; a failed or cancelled one
is not reused, so asking again runs it again.

Inputs are normalised before hashing, so equivalent requests share a job: factors are
sorted and deduplicated (a design without training runs has the single factor 1: deadlines
do not apply), price factors of 1 and a spot overhead equal to the planner's default are
dropped, and the scenarios keep only the adjustments they use (spot overhead, region cap).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session

from app.jobs import service as jobs_svc
from app.models import Design, Job
from app.planner.analysis import DEADLINE_FACTORS, Sensitivity
from app.planner.options import PlannerSettings
from app.requirements.spec import WorkloadSpec
from app.services import designs as design_svc
from app.services.estimate import MAX_CURVE_POINTS, Adjustments, CurvePoint

__all__ = [
    "CURVE_JOB",
    "CURVE_SOLVE_LIMIT_S",
    "KINDS",
    "MAX_FACTOR",
    "MIN_FACTOR",
    "SENSITIVITY_JOB",
    "SENSITIVITY_SOLVE_LIMIT_S",
    "WHAT_IF_GAP",
    "analysis_payload",
    "canonical_adjustments",
    "curve_points",
    "dedupe_key",
    "find_or_enqueue",
    "normalise_factors",
    "request_analysis",
    "sensitivity_result",
    "solve_time_limit",
]

CURVE_JOB = "curve"
SENSITIVITY_JOB = "sensitivity"
KINDS = (CURVE_JOB, SENSITIVITY_JOB)

#: Time limit of one solve of a curve point, and of one scenario (seconds; at most the server's limit).
CURVE_SOLVE_LIMIT_S = 5.0
SENSITIVITY_SOLVE_LIMIT_S = 3.0
#: Relative optimality gap of the what-if solves (the plan itself is solved tighter).
WHAT_IF_GAP = 0.005
#: Deadline factors accepted (1 = the deadlines as required).
MIN_FACTOR, MAX_FACTOR = 0.05, 10.0

_DEFAULT_SPOT_OVERHEAD = PlannerSettings().spot_interruption_overhead


def normalise_factors(factors: Iterable[float]) -> list[float]:
    """The distinct factors, sorted; ``ValueError`` (a readable message) if one is out of range
    or there are none or more than :data:`MAX_CURVE_POINTS`."""
    out = sorted({float(f) for f in factors})
    if not out:
        raise ValueError("give at least one deadline factor, e.g. 0.5, 1, 2")
    if any(not MIN_FACTOR <= f <= MAX_FACTOR for f in out):
        raise ValueError(f"each deadline factor must be between {MIN_FACTOR:g} and {MAX_FACTOR:g} "
                         "(1 = the deadlines as required)")
    if len(out) > MAX_CURVE_POINTS:
        raise ValueError(f"at most {MAX_CURVE_POINTS} distinct deadline factors: each one is a full re-plan")
    return out


def canonical_adjustments(kind: str, adj: Adjustments) -> dict[str, Any]:
    """``adj`` as JSON without the changes that change nothing for ``kind`` (see the module doc)."""
    data = adj.model_dump(mode="json")
    data["price_factors"] = {k: float(v) for k, v in sorted(data["price_factors"].items()) if v != 1.0}
    overhead = data.get("spot_interruption_overhead")
    if overhead is not None and abs(overhead - _DEFAULT_SPOT_OVERHEAD) < 1e-12:
        data["spot_interruption_overhead"] = None
    if kind == SENSITIVITY_JOB:  # the scenarios apply the settings only (scenario_sensitivity)
        data = {"spot_interruption_overhead": data["spot_interruption_overhead"],
                "max_gpus_per_region": data["max_gpus_per_region"]}
    return Adjustments.model_validate(data).model_dump(mode="json")


def solve_time_limit(kind: str, server_limit_s: float) -> float:
    """The time limit of one solve of the analysis ``kind`` (at most the server's)."""
    own = CURVE_SOLVE_LIMIT_S if kind == CURVE_JOB else SENSITIVITY_SOLVE_LIMIT_S
    return min(float(server_limit_s), own)


def dedupe_key(payload: dict[str, Any], kind: str) -> str:
    """SHA-256 hex (64 characters) of the canonical JSON of what the result depends on."""
    keyed = {name: payload.get(name) for name in
             ("spec", "adjustments", "factors", "solver", "time_limit_s", "gap", "snapshot_id")}
    text = json.dumps({"kind": kind, **keyed}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:64]


def analysis_payload(kind: str, spec: WorkloadSpec, adjustments: Adjustments, factors: Sequence[float] | None,
                     *, solver: str, server_limit_s: float, snapshot_id: str) -> dict[str, Any]:
    """The job's payload: every input, normalised (see the module doc)."""
    if kind not in KINDS:
        raise ValueError(f"unknown analysis {kind!r}")
    if kind == CURVE_JOB:
        factors = normalise_factors(factors if factors is not None else DEADLINE_FACTORS)
        if not spec.performance.training:
            factors = [1.0]  # no training runs: deadlines do not apply, the curve is one point
    else:
        factors = []
    return {"spec": spec.model_dump(mode="json"), "adjustments": canonical_adjustments(kind, adjustments),
            "factors": factors, "solver": solver, "time_limit_s": solve_time_limit(kind, server_limit_s),
            "gap": WHAT_IF_GAP, "snapshot_id": snapshot_id}


def request_analysis(session: Session, design: Design, kind: str, spec: WorkloadSpec, adjustments: Adjustments,
                     factors: Sequence[float] | None, settings: Any, *, snapshot_id: str | None = None) -> Job:
    """The job of this analysis: a queued, running or succeeded one with the same inputs, or a
    new queued one — added to the caller's transaction, which commits it (and then wakes the
    runner: :meth:`app.jobs.runner.JobRunner.wake`).

    ``settings`` gives ``solver`` and ``solver_time_limit_s`` (the app's settings);
    ``snapshot_id`` is the id of the design's planning snapshot when the caller has it
    already (:func:`app.services.designs.planning_snapshot`). Raises ``ValueError`` for an
    unknown kind or unusable factors.
    """
    return find_or_enqueue(session, design, kind, spec, adjustments, factors, settings, snapshot_id=snapshot_id)[0]


def find_or_enqueue(session: Session, design: Design, kind: str, spec: WorkloadSpec, adjustments: Adjustments,
                    factors: Sequence[float] | None, settings: Any, *,
                    snapshot_id: str | None = None) -> tuple[Job, bool]:
    """:func:`request_analysis`, and whether the job is new."""
    if snapshot_id is None:
        snapshot_id = design_svc.planning_snapshot(session, design.workspace_id).snapshot_id
    payload = analysis_payload(kind, spec, adjustments, factors, solver=settings.solver,
                               server_limit_s=settings.solver_time_limit_s, snapshot_id=snapshot_id)
    key = dedupe_key(payload, kind)
    found = jobs_svc.find_reusable(session, design.id, kind, key)
    if found is not None:
        return found, False
    job = jobs_svc.enqueue(session, kind, design_id=design.id, payload=payload, dedupe_key=key)
    return job, True


# --------------------------------------------------------------------------- results


def curve_points(job: Job) -> list[CurvePoint]:
    """The points of a succeeded curve job, as :func:`app.services.estimate.deadline_curve` made them."""
    return [CurvePoint.model_validate(p) for p in (job.result or {}).get("points", [])]


def sensitivity_result(job: Job) -> Sensitivity:
    """The scenarios of a succeeded sensitivity job."""
    return Sensitivity.model_validate((job.result or {})["sensitivity"])
