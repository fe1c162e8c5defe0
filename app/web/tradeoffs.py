"""``/designs/{id}/tradeoffs``: cost versus deadline, and what-if controls.

* ``GET /designs/{id}/tradeoffs`` — the page: controls (demand scale, GPU utilization,
  price changes per purchase option type, spot interruption overhead, a GPU cap per
  region, deadline factors) and the results. With htmx the results load into the page
  (``…/tradeoffs/curve``) and the controls re-solve and redraw in place; without
  JavaScript the form is a GET of this page, which then solves before it answers.
  Demand, utilization and price changes apply together to one copy of the problem
  (:func:`app.services.estimate.adjusted_problem`): each point is a single re-solve.
* ``GET /designs/{id}/tradeoffs/curve`` — the cost-versus-deadline fragment: each deadline
  factor (at most six) re-solves the adjusted problem in a worker thread, with a time limit
  per solve and for the whole curve.
* ``GET /designs/{id}/tradeoffs/sensitivity`` — the planner's ±20 % scenarios with the
  adjusted settings.

Everything is read-only (nothing is stored), so GET is the right verb and a result can be
bookmarked. At most :data:`MAX_CONCURRENT` what-if computations run at a time.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth import WebUser
from app.catalog.schema import Snapshot
from app.models import Design, Workspace
from app.planner.analysis import DEADLINE_FACTORS
from app.planner.demand import DemandError
from app.planner.options import PlannerSettings
from app.requirements.spec import SpecError, WorkloadSpec
from app.services import access
from app.services import accounts as acc
from app.services import designs as svc
from app.services import estimate as est_svc
from app.web.deps import FormGuard, PageUser
from app.web.designs import HELPERS
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])
log = logging.getLogger("archplan.web.tradeoffs")

MAX_CONCURRENT = 2
SOLVE_TIME_LIMIT_S = 5.0
CURVE_BUDGET_S = 40.0
SENSITIVITY_TIME_LIMIT_S = 3.0
WHAT_IF_GAP = 0.005
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)

KIND_LABELS = {"on_demand": "On-demand", "spot": "Spot", "reserved": "Reserved", "private": "Own servers"}
DEFAULT_SPOT_OVERHEAD_PCT = round(PlannerSettings().spot_interruption_overhead * 100, 4)


# --------------------------------------------------------------------------- controls


@dataclass
class Controls:
    raw: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    adjustments: est_svc.Adjustments = field(default_factory=est_svc.Adjustments)
    factors: list[float] = field(default_factory=lambda: list(DEADLINE_FACTORS))

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in self.raw.items() if v != ""})

    def describe(self) -> list[str]:
        a = self.adjustments
        out = []
        if a.demand_scale != 1.0:
            out.append(f"demand × {a.demand_scale:g}")
        if a.utilization != 1.0:
            out.append(f"GPU utilization {a.utilization * 100:g} %")
        for k, f in a.price_factors.items():
            if f != 1.0:
                out.append(f"{KIND_LABELS[k].lower()} prices {'+' if f > 1 else '−'}{abs(f - 1) * 100:g} %")
        if a.spot_interruption_overhead is not None and \
                abs(a.spot_interruption_overhead * 100 - DEFAULT_SPOT_OVERHEAD_PCT) > 1e-9:
            out.append(f"spot interruption overhead {a.spot_interruption_overhead * 100:g} %")
        if a.max_gpus_per_region is not None:
            out.append(f"at most {a.max_gpus_per_region:,} GPUs per region")
        return out


LABELS = {"demand_pct": "Demand scale (%)", "utilization_pct": "GPU utilization (%)",
          "price_on_demand": "On-demand", "price_spot": "Spot", "price_reserved": "Reserved",
          "price_private": "Own servers", "spot_overhead": "Spot interruption overhead (%)",
          "region_cap": "GPU cap per region", "factors": "Deadline factors"}
FIELDS = ("demand_pct", "utilization_pct", "price_on_demand", "price_spot", "price_reserved", "price_private",
          "spot_overhead", "region_cap", "factors")
DEFAULTS = {"demand_pct": "100", "utilization_pct": "100", "price_on_demand": "0", "price_spot": "0",
            "price_reserved": "0", "price_private": "0", "spot_overhead": f"{DEFAULT_SPOT_OVERHEAD_PCT:g}",
            "region_cap": "", "factors": ", ".join(f"{f:g}" for f in DEADLINE_FACTORS)}


def _num(text: str) -> float | None:
    try:
        value = float(text.strip().replace(",", "").replace("%", "").replace("−", "-"))
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def parse_controls(params: dict[str, str]) -> Controls:
    raw = {k: (params.get(k) if params.get(k) is not None else DEFAULTS[k])[:200] for k in FIELDS}
    c = Controls(raw=raw)
    demand = _num(raw["demand_pct"])
    if demand is None or not 10 <= demand <= 500:
        c.errors["demand_pct"] = "Enter a demand scale between 10 and 500 %."
    utilization = _num(raw["utilization_pct"]) if raw["utilization_pct"].strip() else 100.0
    if utilization is None or not 10 <= utilization <= 100:
        c.errors["utilization_pct"] = "Enter a utilization between 10 and 100 %."
    prices: dict[str, float] = {}
    for kind in KIND_LABELS:
        v = _num(raw[f"price_{kind}"]) if raw[f"price_{kind}"].strip() else 0.0
        if v is None or not -90 <= v <= 300:
            c.errors[f"price_{kind}"] = "Enter a change between −90 and +300 %."
        else:
            prices[kind] = 1 + v / 100
    overhead = _num(raw["spot_overhead"]) if raw["spot_overhead"].strip() else DEFAULT_SPOT_OVERHEAD_PCT
    if overhead is None or not 0 <= overhead <= 200:
        c.errors["spot_overhead"] = "Enter an overhead between 0 and 200 %."
    cap: int | None = None
    if raw["region_cap"].strip():
        v = _num(raw["region_cap"])
        if v is None or v < 1 or v != int(v) or v > 10_000_000:
            c.errors["region_cap"] = "Enter a whole number of GPUs (1 or more), or leave it blank for no cap."
        else:
            cap = int(v)
    parts = [p for p in re.split(r"[,;\s]+", raw["factors"]) if p]
    factors = [_num(p) for p in parts]
    if not parts:
        c.errors["factors"] = "Enter at least one deadline factor, e.g. 0.5, 1, 2."
    elif any(f is None or not 0.05 <= f <= 10 for f in factors):
        c.errors["factors"] = "Each factor must be a number between 0.05 and 10 (1 = the deadlines as required)."
    elif len(set(factors)) > est_svc.MAX_CURVE_POINTS:
        c.errors["factors"] = f"At most {est_svc.MAX_CURVE_POINTS} points: each one is a full re-plan."
    if not c.errors:
        c.adjustments = est_svc.Adjustments(
            demand_scale=demand / 100, utilization=utilization / 100, price_factors=prices,
            spot_interruption_overhead=overhead / 100, max_gpus_per_region=cap)
        c.factors = sorted({float(f) for f in factors if f is not None})
    return c


# --------------------------------------------------------------------------- work


@dataclass
class Loaded:
    design: Design
    spec: WorkloadSpec | None
    spec_error: str | None
    snapshot: Snapshot | None
    latest_cost: float | None
    latest_plan_id: int | None


def _load(request: Request, web: WebUser, design_id: str) -> Loaded | None:
    """The design if the signed-in user may read it (its own workspace decides), else None."""
    if not (design_id.isdigit() and len(design_id) < 12):
        return None
    with Session(request.app.state.engine) as session:
        try:
            design = access.design_for(session, web.principal, int(design_id))
        except acc.NotFound:
            return None
        ws = session.get(Workspace, design.workspace_id)
        try:
            spec, error = svc.design_spec(design), None
        except SpecError as exc:
            spec, error = None, "; ".join(str(i) for i in exc.issues[:3])
        snapshot = svc.planning_snapshot(session, ws.id) if spec is not None else None
        latest = svc.list_plans(session, design.id, limit=1)
        cost = latest[0].total_cost if latest and latest[0].status in ("optimal", "feasible") else None
        session.expunge(design)
        session.commit()
    return Loaded(design=design, spec=spec, spec_error=error, snapshot=snapshot, latest_cost=cost,
                  latest_plan_id=latest[0].id if latest else None)


def _settings(request: Request, time_limit: float) -> PlannerSettings:
    app_settings = request.app.state.settings
    s = svc.planner_settings(app_settings.solver, min(app_settings.solver_time_limit_s, time_limit))
    return s.model_copy(update={"gap": WHAT_IF_GAP})


def _curve(request: Request, loaded: Loaded, controls: Controls) -> dict[str, Any]:
    """Runs in a worker thread."""
    assert loaded.spec is not None and loaded.snapshot is not None
    has_runs = bool(loaded.spec.performance.training)
    factors = controls.factors if has_runs else [1.0]
    if not _slots.acquire(timeout=20):
        return {"busy": True}
    try:
        points = est_svc.deadline_curve(loaded.spec, loaded.snapshot, _settings(request, SOLVE_TIME_LIMIT_S),
                                        controls.adjustments, factors, time_limit_s=SOLVE_TIME_LIMIT_S,
                                        budget_s=CURVE_BUDGET_S)
    except DemandError as exc:
        return {"error": str(exc)}
    finally:
        _slots.release()
    base = next((p for p in points if p.factor == 1.0 and p.ok), None)
    chart = {
        "labels": [_factor_label(p) for p in points],
        "cost": [p.total_cost if p.ok else None for p in points],
        "peak": [p.peak_gpus for p in points],
        "status": [p.status for p in points],
        "base_index": next((i for i, p in enumerate(points) if p.factor == 1.0), None),
    }
    rows = []
    for p in points:
        change = None
        if base and p.ok and base.total_cost:
            change = (p.total_cost - base.total_cost) / base.total_cost * 100
        rows.append({"p": p, "label": _factor_label(p), "change": change})
    return {"points": points, "rows": rows, "chart": chart, "base": base, "has_runs": has_runs,
            "infeasible": [r for r in rows if not r["p"].ok]}


def _factor_label(p: est_svc.CurvePoint) -> str:
    """``×0.5 · 7 d``: the factor and the longest run's deadline."""
    if not p.deadline_days:
        return f"×{p.factor:g}"
    longest = max(p.deadline_days.values())
    days = f"{longest:.1f}".rstrip("0").rstrip(".")
    return f"×{p.factor:g} · {days} d"


def _sensitivity(request: Request, loaded: Loaded, controls: Controls) -> dict[str, Any]:
    """Runs in a worker thread."""
    assert loaded.spec is not None and loaded.snapshot is not None
    if not _slots.acquire(timeout=20):
        return {"busy": True}
    try:
        result = est_svc.scenario_sensitivity(loaded.spec, loaded.snapshot,
                                              _settings(request, SENSITIVITY_TIME_LIMIT_S), controls.adjustments)
    except DemandError as exc:
        return {"error": str(exc)}
    finally:
        _slots.release()
    largest = max((abs(s.change_pct) for s in result.scenarios if s.change_pct is not None), default=0.0)
    return {"sens": result, "largest": largest or 1.0}


# --------------------------------------------------------------------------- routes


def _ctx(request: Request, **extra: Any) -> dict[str, Any]:
    return {"active": "designs", **HELPERS, "kind_labels": KIND_LABELS, "request": request,
            "max_points": est_svc.MAX_CURVE_POINTS, "labels": LABELS, "solve_limit": SOLVE_TIME_LIMIT_S, "gap": WHAT_IF_GAP, **extra}


def _not_found(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "designs/not_found.html", {"active": "designs", "what": "design"},
                                      status_code=404)


def _fragment(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(templates.env.get_template(template).render(_ctx(request, **context)))


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k in FIELDS}


@router.get("/designs/{design_id}/tradeoffs", response_class=HTMLResponse)
async def tradeoffs_page(request: Request, web: PageUser, design_id: str):
    loaded = await run_in_threadpool(_load, request, web, design_id)
    if loaded is None:
        return _not_found(request)
    params = _params(request)
    controls = parse_controls(params)
    ctx = _ctx(request, design=loaded.design, loaded=loaded, controls=controls, curve=None, sensitivity=None,
               defaults=DEFAULTS, spot_default=DEFAULT_SPOT_OVERHEAD_PCT)
    status = 200
    if controls.errors:
        status = 422
    elif params and loaded.spec is not None:  # a submitted form without JavaScript: solve now
        ctx["curve"] = await run_in_threadpool(_curve, request, loaded, controls)
        if request.query_params.get("sensitivity") == "1":
            ctx["sensitivity"] = await run_in_threadpool(_sensitivity, request, loaded, controls)
    return templates.TemplateResponse(request, "tradeoffs/tradeoffs.html", ctx, status_code=status)


async def _fragment_route(request: Request, web: WebUser, design_id: str, template: str, work) -> HTMLResponse:
    loaded = await run_in_threadpool(_load, request, web, design_id)
    if loaded is None:
        return _not_found(request)
    controls = parse_controls(_params(request))
    if controls.errors or loaded.spec is None:
        # 200 so htmx swaps it (the controls show their own errors after the form's request)
        return _fragment(request, "tradeoffs/_invalid.html", {"controls": controls, "loaded": loaded})
    result = await run_in_threadpool(work, request, loaded, controls)
    return _fragment(request, template, {"design": loaded.design, "loaded": loaded, "controls": controls,
                                         "result": result})


@router.get("/designs/{design_id}/tradeoffs/curve", response_class=HTMLResponse)
async def curve_fragment(request: Request, web: PageUser, design_id: str):
    return await _fragment_route(request, web, design_id, "tradeoffs/_curve.html", _curve)


@router.get("/designs/{design_id}/tradeoffs/sensitivity", response_class=HTMLResponse)
async def sensitivity_fragment(request: Request, web: PageUser, design_id: str):
    return await _fragment_route(request, web, design_id, "tradeoffs/_sensitivity.html", _sensitivity)
