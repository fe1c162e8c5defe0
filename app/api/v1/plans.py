"""``/api/v1/plans``: a solved plan's figures, monthly series and purchase schedule (JSON or
CSV), and its deployable bundles (zip).

Plans never change once stored, so every representation carries a strong ``ETag`` and a
request whose ``If-None-Match`` matches gets ``304 Not Modified``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.v1.deps import (
    MAX_ID,
    ApiProblem,
    Caller,
    Db,
    IfNoneMatch,
    json_bytes,
    problems,
    record,
    tagged,
)
from app.api.v1.jobs import plan_url
from app.api.v1.workspaces import utc
from app.planner.plan import ScheduleLine, UsageLine, Utilization
from app.services import plans as plans_svc
from app.services.access import plan_for, plan_ref_for

router = APIRouter(tags=["plans"])

PlanId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1], description="The plan's id.")]
BundleName = Literal[tuple(plans_svc.available_bundles())]  # type: ignore[valid-type]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


# --------------------------------------------------------------------------- models


class SnapshotRef(BaseModel):
    snapshot_id: str = Field(examples=["2026-11-24-e097c5bd2c58"])
    date: str | None = Field(description="The snapshot's own date (null when it is not in the database).",
                             examples=["2026-11-24"])


class Figures(BaseModel):
    currency: Literal["USD"] = "USD"
    total_cost: float | None = Field(description="Nominal, commitments for their full term.", examples=[9550.15])
    npv: float | None = Field(description="Present value at `discount_rate_annual`.", examples=[9338.2])
    monthly_run_rate: float | None = Field(description="Average cost per month in the horizon.", examples=[795.85])
    objective_kind: str = Field(description="`nominal` or `npv`: what the solver minimised.", examples=["npv"])
    objective: float | None
    bound: float | None = Field(description="Proven lower bound on the objective.")
    gap: float | None = Field(description="Relative optimality gap (0 = proven optimal).", examples=[0.0])
    cost_after_horizon: float = Field(description="Commitments paid past the horizon (in `total_cost`).")
    discount_rate_annual: float
    best_single_strategy: str | None = Field(description="The cheapest baseline that meets the requirements.",
                                             examples=["all_on_demand"])
    break_even_month: str | None = Field(description="From this month on, cumulative cost stays at or below "
                                                     "all on-demand.")


class BaselineOut(BaseModel):
    name: str = Field(examples=["all_on_demand"])
    label: str = Field(examples=["All on-demand"])
    status: str
    total_cost: float | None = Field(description="Null when the strategy cannot meet the requirements.")
    npv: float | None
    reason: str | None = Field(description="Why the strategy cannot meet the requirements.")
    savings_usd: float | None = Field(description="This baseline's cost minus the plan's.")
    savings_pct: float | None = Field(description="The same as a percentage of the baseline.")


class MonthOut(BaseModel):
    month: str = Field(examples=["2027-01"])
    cost_usd: float
    cost_by_category: dict[str, float] = Field(
        description="capex, commitments, on_demand, spot, power_colocation, support_staff.")
    gpus_by_kind: dict[str, float] = Field(description="GPUs in service (committed) or running on average.")
    baseline_cost_usd: dict[str, float] = Field(description="Each feasible baseline's cost this month.")


class SolverOut(BaseModel):
    name: str = Field(examples=["highs"])
    build_seconds: float
    solve_seconds: float
    total_seconds: float
    options_considered: int
    options_in_model: int


class PlanOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 31, "design_id": 12, "workspace_id": 1, "created_at": "2026-12-03T10:02:13Z",
        "url": "/api/v1/plans/31", "design_url": "/api/v1/designs/12", "schedule_url": "/api/v1/plans/31/schedule",
        "bundles_url": "/api/v1/plans/31/bundles", "spec_name": "Support chatbot", "status": "optimal",
        "message": "optimal", "explanation": None,
        "snapshot": {"snapshot_id": "2026-11-24-e097c5bd2c58", "date": "2026-11-24"},
        "figures": {"currency": "USD", "total_cost": 9550.15, "npv": 9338.2, "monthly_run_rate": 795.85,
                    "objective_kind": "npv", "objective": 9338.2, "bound": 9338.2, "gap": 0.0,
                    "cost_after_horizon": 0.0, "discount_rate_annual": 0.08,
                    "best_single_strategy": "all_reserved_1y", "break_even_month": "2027-01"},
        "baselines": [{"name": "all_on_demand", "label": "All on-demand", "status": "optimal", "total_cost": 12890.4,
                       "npv": 12601.7, "reason": None, "savings_usd": 3340.25, "savings_pct": 25.9}],
        "cost_by_category": {"commitments": 6210.0, "on_demand": 3340.15},
        "monthly": [{"month": "2027-01", "cost_usd": 1850.3, "cost_by_category": {"commitments": 517.5,
                                                                                 "on_demand": 1332.8},
                     "gpus_by_kind": {"reserved": 2.0, "on_demand": 1.9}, "baseline_cost_usd": {"all_on_demand": 2433.1}}],
        "schedule": [], "usage": [], "commitment_utilization": [], "warnings": [], "assumptions": [],
        "solver": {"name": "highs", "build_seconds": 0.05, "solve_seconds": 0.2, "total_seconds": 1.1,
                   "options_considered": 212, "options_in_model": 18},
    }]})

    id: int
    design_id: int
    workspace_id: int
    created_at: datetime
    url: str
    design_url: str
    schedule_url: str
    bundles_url: str
    spec_name: str
    status: str = Field(description="optimal | feasible (stopped at a limit) | infeasible | unbounded | error")
    message: str
    explanation: str | None = Field(description="When infeasible: what cannot be met and what to relax.")
    snapshot: SnapshotRef
    figures: Figures
    baselines: list[BaselineOut]
    cost_by_category: dict[str, float]
    monthly: list[MonthOut]
    schedule: list[ScheduleLine] = Field(description="Purchases: reservations and own servers, by month.")
    usage: list[UsageLine] = Field(description="Capacity paid per use (on-demand, spot).")
    commitment_utilization: list[Utilization]
    warnings: list[str]
    assumptions: list[str]
    solver: SolverOut


class ScheduleRow(BaseModel):
    purchase_month: str = Field(examples=["2027-01"])
    in_service_month: str | None
    kind: str = Field(description="reserved | private", examples=["reserved"])
    provider: str = Field(examples=["aws"])
    region: str = Field(description="Cloud region, or site for own servers.", examples=["us-east-1"])
    item: str = Field(description="Instance type or server model.", examples=["g6.xlarge"])
    gpu_model: str = Field(examples=["L4"])
    gpus_per_unit: float
    quantity: int
    term_months: int
    payment_option: str | None
    lead_time_months: int
    upfront_usd_per_unit: float
    monthly_usd_per_unit: float
    total_usd: float
    option: str


class ScheduleOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": 31, "design_id": 12, "snapshot_id": "2026-11-24-e097c5bd2c58", "currency": "USD",
        "columns": list(plans_svc.SCHEDULE_CSV_COLUMNS),
        "items": [{"purchase_month": "2027-01", "in_service_month": "2027-01", "kind": "reserved", "provider": "aws",
                   "region": "us-east-1", "item": "g6.xlarge", "gpu_model": "L4", "gpus_per_unit": 1.0,
                   "quantity": 2, "term_months": 12, "payment_option": "no_upfront", "lead_time_months": 0,
                   "upfront_usd_per_unit": 0.0, "monthly_usd_per_unit": 258.75, "total_usd": 6210.0,
                   "option": "aws/us-east-1/g6.xlarge/reserved-1y-no_upfront"}],
    }]})

    plan_id: int
    design_id: int
    snapshot_id: str
    currency: Literal["USD"] = "USD"
    columns: list[str] = Field(description="The CSV columns, in order.")
    items: list[ScheduleRow]


class BundleOut(BaseModel):
    name: str = Field(examples=["terraform"])
    label: str = Field(examples=["Terraform (AWS)"])
    url: str


class BundleList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": 31, "exportable": True, "reason": None,
        "items": [{"name": "terraform", "label": "Terraform (AWS)", "url": "/api/v1/plans/31/bundles/terraform"},
                  {"name": "all", "label": "All bundles", "url": "/api/v1/plans/31/bundles/all"}],
    }]})

    plan_id: int
    exportable: bool
    reason: str | None = Field(description="Why the plan cannot be exported (when `exportable` is false).")
    items: list[BundleOut]


# --------------------------------------------------------------------------- helpers


def _at(values: list[Any] | None, i: int) -> Any:
    return values[i] if values is not None and i < len(values) else None


def plan_out(session: Any, row: Any, design: Any) -> PlanOut:
    try:
        plan = plans_svc.plan_model(row)
    except plans_svc.PlanUnreadable as exc:
        raise ApiProblem(409, str(exc)) from None
    url = plan_url(row.id)
    baselines = []
    for name, b in plan.baseline_details.items():
        saving = plan.savings.get(name) or {}
        baselines.append(BaselineOut(name=name, label=b.label, status=b.status, total_cost=b.total_cost, npv=b.npv,
                                     reason=b.reason, savings_usd=saving.get("usd"), savings_pct=saving.get("pct")))
    monthly = []
    for i, month in enumerate(plan.months):
        monthly.append(MonthOut(
            month=month, cost_usd=_at(plan.cost_by_month, i) or 0.0,
            cost_by_category={k: v[i] for k, v in plan.cost_by_month_category.items() if i < len(v)},
            gpus_by_kind={k: v[i] for k, v in plan.gpus_by_kind_month.items() if i < len(v)},
            baseline_cost_usd={k: v[i] for k, v in plan.baseline_cost_by_month.items() if i < len(v)},
        ))
    return PlanOut(
        id=row.id, design_id=row.design_id, workspace_id=design.workspace_id, created_at=utc(row.created_at),
        url=url, design_url=f"/api/v1/designs/{row.design_id}", schedule_url=url + "/schedule",
        bundles_url=url + "/bundles", spec_name=plan.spec_name, status=plan.status, message=plan.message,
        explanation=plan.explanation,
        snapshot=SnapshotRef(snapshot_id=row.snapshot_id, date=plans_svc.snapshot_date(session, row.snapshot_id)),
        figures=Figures(total_cost=plan.total_cost, npv=plan.npv, monthly_run_rate=plan.monthly_run_rate,
                        objective_kind=plan.objective_kind, objective=plan.objective, bound=plan.bound, gap=plan.gap,
                        cost_after_horizon=plan.cost_after_horizon, discount_rate_annual=plan.discount_rate_annual,
                        best_single_strategy=plan.best_single_strategy, break_even_month=plan.break_even_month),
        baselines=baselines, cost_by_category=plan.cost_by_category, monthly=monthly, schedule=plan.schedule,
        usage=plan.usage, commitment_utilization=plan.commitment_utilization, warnings=plan.warnings,
        assumptions=plan.assumptions,
        solver=SolverOut(name=plan.solver, build_seconds=plan.build_seconds, solve_seconds=plan.solve_seconds,
                         total_seconds=plan.total_seconds, options_considered=plan.options_considered,
                         options_in_model=plan.options_in_model),
    )


def _q(params: list[str]) -> float:
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def prefers_csv(accept: str | None) -> bool:
    """Does ``Accept`` rank ``text/csv`` above ``application/json`` (JSON on a tie)?"""
    if not accept:
        return False
    best: dict[str, tuple[int, float]] = {}  # media type -> (specificity, q) of the most specific match
    for part in accept.split(","):
        media, *params = (x.strip() for x in part.split(";"))
        media = media.lower()
        for target in ("text/csv", "application/json"):
            major = target.split("/")[0]
            specificity = 2 if media == target else 1 if media == f"{major}/*" else 0 if media == "*/*" else -1
            if specificity >= 0 and specificity >= best.get(target, (-1, 0.0))[0]:
                best[target] = (specificity, _q(params))
    csv_q = best.get("text/csv", (0, 0.0))[1]
    json_q = best.get("application/json", (0, 0.0))[1]
    return csv_q > 0 and csv_q > json_q


# --------------------------------------------------------------------------- endpoints

_ETAG_HEADER = {"ETag": {"description": "Strong entity tag of this representation.", "schema": {"type": "string"}}}


@router.get("/plans/{plan_id}", response_model=PlanOut, summary="A plan: figures, monthly series, purchases",
            responses={**problems(304, 404, 409, _409="The plan was stored in a format this version cannot read."),
                       200: {"headers": _ETAG_HEADER}})
def get_plan(request: Request, session: Db, principal: Caller, plan_id: PlanId, if_none_match: IfNoneMatch = None):
    ref = plan_ref_for(session, principal, plan_id)  # access, without reading the stored JSON

    def make() -> bytes:
        row, design = plan_for(session, principal, ref.plan_id)
        return json_bytes(plan_out(session, row, design))

    # A stored plan never changes: the app builds its JSON once (app.state.representations).
    data, etag = request.app.state.representations.get_or_make(("plan", ref.plan_id, ref.created_at), make)
    return tagged(data, "application/json", etag, if_none_match)


@router.get("/plans/{plan_id}/schedule", response_model=ScheduleOut,
            summary="The purchase schedule: JSON, or CSV with `Accept: text/csv`",
            description="What to reserve or buy, where, when and for how much (one row per purchase).",
            responses={**problems(304, 404),
                       200: {"headers": {**_ETAG_HEADER, "Content-Disposition": {
                           "description": "The CSV's file name (CSV only).", "schema": {"type": "string"}}},
                             "content": {"text/csv": {"schema": {"type": "string"},
                                                      "example": ",".join(plans_svc.SCHEDULE_CSV_COLUMNS) + "\r\n"}}}})
def get_schedule(request: Request, session: Db, principal: Caller, plan_id: PlanId,
                 accept: Annotated[str | None, Header(max_length=1000)] = None, if_none_match: IfNoneMatch = None):
    row, design = plan_for(session, principal, plan_id)
    if prefers_csv(accept):
        data = plans_svc.schedule_csv(row.result).encode("utf-8")
        media, fmt = CSV_MEDIA_TYPE, "csv"
        headers = {"Content-Disposition":
                   f'attachment; filename="{plans_svc.schedule_filename(design.id, row.id)}"'}
    else:
        rows = plans_svc.schedule_rows(row.result)
        data = json_bytes(ScheduleOut(plan_id=row.id, design_id=design.id, snapshot_id=row.snapshot_id,
                                      columns=list(plans_svc.SCHEDULE_CSV_COLUMNS),
                                      items=[ScheduleRow(**r) for r in rows]))
        media, fmt, headers = "application/json", "json", {}
    etag = plans_svc.strong_etag(data)
    response = tagged(data, media, etag, if_none_match, headers)
    if response.status_code == 200:
        record(request, session, principal, "schedule.export", workspace_id=design.workspace_id,
               target=f"plan:{row.id}", format=fmt)
    return response


@router.get("/plans/{plan_id}/bundles", response_model=BundleList, summary="The bundles a plan can be exported as",
            responses=problems(404))
def list_bundles(session: Db, principal: Caller, plan_id: PlanId):
    row, _design = plan_for(session, principal, plan_id)
    reason = plans_svc.export_refusal(row)
    return BundleList(plan_id=row.id, exportable=reason is None, reason=reason, items=[
        BundleOut(name=n, label=plans_svc.BUNDLE_LABELS.get(n, n), url=f"{plan_url(row.id)}/bundles/{n}")
        for n in plans_svc.available_bundles()])


@router.get("/plans/{plan_id}/bundles/{name}", response_class=Response,
            summary="One bundle (or `all`) as a zip, byte-identical for the same plan",
            responses={**problems(304, 404, 409, _409="The plan cannot be exported (e.g. it is infeasible: "
                                                      "nothing was chosen to deploy)."),
                       200: {"description": "The zip.", "headers": {**_ETAG_HEADER, "Content-Disposition": {
                           "description": "The zip's file name.", "schema": {"type": "string"}}},
                             "content": {"application/zip": {"schema": {"type": "string",
                                                                        "contentMediaType": "application/zip"}}}}})
def get_bundle(request: Request, session: Db, principal: Caller, plan_id: PlanId,
               name: Annotated[BundleName, Path(description="A bundle name, or `all`.")],
               if_none_match: IfNoneMatch = None):
    row, design = plan_for(session, principal, plan_id)
    try:
        bundle = plans_svc.export_bundle(row, name)
    except plans_svc.ExportRefused as exc:
        raise ApiProblem(409, str(exc)) from None
    response = tagged(bundle.data, "application/zip", bundle.etag, if_none_match,
                      {"Content-Disposition": f'attachment; filename="{bundle.filename}"'})
    if response.status_code == 200:
        record(request, session, principal, "bundle.export", workspace_id=design.workspace_id,
               target=f"plan:{row.id}", bundle=name)
    return response
