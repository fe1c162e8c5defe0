"""``/api/v1/comparisons``: 2-4 plans side by side, with each one's difference to the first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.v1.deps import MAX_ID, Caller, Db, invalid, problems
from app.api.v1.jobs import plan_url
from app.api.v1.workspaces import utc
from app.services import comparisons as cmp
from app.services import plans as plans_svc
from app.services.access import plan_for

router = APIRouter(tags=["plans"])


class ComparedPlan(BaseModel):
    plan_id: int
    design_id: int
    design_name: str
    workspace_id: int
    status: str
    solved: bool = Field(description="Optimal or feasible with a cost; unsolved plans have null figures.")
    snapshot_id: str
    months: list[str] = Field(description="The plan's horizon.")
    best_single_strategy: str | None
    created_at: datetime
    url: str


class FigureOut(BaseModel):
    key: str = Field(examples=["total_cost"])
    label: str = Field(examples=["Total cost"])
    unit: Literal["usd", "ratio"]
    better: Literal["lower", "higher"] | None = Field(description="Which direction is better (null: neither).")
    values: list[float | None] = Field(description="One per plan, in the order asked for.")
    difference: list[float | None] = Field(description="Each value minus the first plan's.")
    difference_pct: list[float | None] = Field(description="The difference as a percentage of the first value.")
    best: list[int] = Field(description="Indexes of the best values (empty when all are equal or `better` is null).")


class ComparisonOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plans": [
            {"plan_id": 31, "design_id": 12, "design_name": "Support chatbot (cloud only)", "workspace_id": 1,
             "status": "optimal", "solved": True, "snapshot_id": "2026-11-24-e097c5bd2c58",
             "months": ["2027-01", "2027-02"], "best_single_strategy": "all_reserved_1y",
             "created_at": "2026-12-03T10:02:13Z", "url": "/api/v1/plans/31"},
            {"plan_id": 35, "design_id": 14, "design_name": "Support chatbot (hybrid)", "workspace_id": 1,
             "status": "optimal", "solved": True, "snapshot_id": "2026-11-24-e097c5bd2c58",
             "months": ["2027-01", "2027-02"], "best_single_strategy": "all_reserved_1y",
             "created_at": "2026-12-03T10:05:40Z", "url": "/api/v1/plans/35"},
        ],
        "same_snapshot": True,
        "figures": [{"key": "total_cost", "label": "Total cost", "unit": "usd", "better": "lower",
                     "values": [9550.15, 8120.0], "difference": [0.0, -1430.15], "difference_pct": [0.0, -14.9754],
                     "best": [1]}],
    }]})

    plans: list[ComparedPlan]
    same_snapshot: bool = Field(description="False: the plans were priced from different snapshots.")
    figures: list[FigureOut]


@router.get("/comparisons", response_model=ComparisonOut, summary="Compare 2-4 plans side by side",
            description=("`GET /api/v1/comparisons?plan_id=31&plan_id=35`: total cost, NPV, run-rate, gap, "
                         "savings and purchase mix of each plan, the best marked, the differences against "
                         "the first plan."),
            responses=problems(404))
def compare_plans(session: Db, principal: Caller,
                  plan_id: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Query(
                      description=f"{cmp.MIN_PLANS}-{cmp.MAX_PLANS} plan ids (repeat the parameter).")]):
    ids = list(dict.fromkeys(plan_id))
    if not cmp.MIN_PLANS <= len(ids) <= cmp.MAX_PLANS:
        raise invalid("query.plan_id", f"give {cmp.MIN_PLANS} to {cmp.MAX_PLANS} different plan ids "
                                       f"(got {len(ids)})", "count")
    rows = [plan_for(session, principal, pid) for pid in ids]
    plans = []
    for row, _design in rows:
        try:
            plans.append(plans_svc.plan_model(row))
        except plans_svc.PlanUnreadable:
            plans.append(None)
    out = []
    for (row, design), plan in zip(rows, plans, strict=True):
        out.append(ComparedPlan(
            plan_id=row.id, design_id=design.id, design_name=design.name, workspace_id=design.workspace_id,
            status=row.status, solved=cmp.is_solved(plan), snapshot_id=row.snapshot_id,
            months=plan.months if plan else [], best_single_strategy=plan.best_single_strategy if plan else None,
            created_at=utc(row.created_at), url=plan_url(row.id)))
    figures = [FigureOut(key=f.key, label=f.label, unit=f.unit, better=f.better, values=f.values,
                         difference=f.difference, difference_pct=f.difference_pct, best=f.best)
               for f in cmp.compare_figures(plans)]
    return ComparisonOut(plans=out, same_snapshot=len({r.snapshot_id for r, _ in rows}) == 1, figures=figures)
