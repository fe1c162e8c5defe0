"""``/designs/{id}/tradeoffs``: cost versus deadline, and what-if controls.

* ``GET /designs/{id}/tradeoffs`` — the page: controls (demand scale, GPU utilization,
  price changes per purchase option type, spot interruption overhead, a GPU cap per
  region, deadline factors) and the results. With htmx the results load into the page
  (``…/tradeoffs/curve``) and the controls re-solve and redraw in place; without
  JavaScript the form is a GET of this page, which shows the analyses of the submitted
  controls (and refreshes itself while they are computed).
  Demand, utilization and price changes apply together to one copy of the problem
  (:func:`app.services.estimate.adjusted_problem`): each point is a single re-solve.
* ``GET /designs/{id}/tradeoffs/curve`` — the cost-versus-deadline fragment: each deadline
  factor (at most six) re-solves the adjusted problem, with a time limit per solve.
* ``GET /designs/{id}/tradeoffs/sensitivity`` — the planner's ±20 % scenarios with the
  adjusted settings.

Analyses are jobs
=================
Each analysis is a durable job (:mod:`app.services.analyses`, run by the job runner:
:mod:`app.jobs.analysis`) found by the hash of its inputs: the same controls find the same
job — queued, running or done — instead of solving again, so a repeated GET (a reload, a
bookmark, another tab) costs nothing once the result exists. A fragment answers with

* the result (the same templates and figures as ever) once the job succeeded;
* while it is queued or running: a progress panel (message, queue position, progress bar
  and — for editors — Cancel, which posts to the design's job-cancel route) that polls its
  own URL with the job's id (``?job=…&seen=…``) every second, swapping itself for the next
  state (204 while nothing changed);
* a failed or cancelled job: what happened and "Try again" (a failed or cancelled job is
  never reused, so asking again without the job's id runs it again).

Without JavaScript the page does the same for the submitted controls and, while a job is
pending, refreshes itself every two seconds (``<meta http-equiv="refresh">`` naming the
jobs, so a job that fails meanwhile is shown, not silently asked for again).

An analysis stores nothing but a cached computation, so everyone who can read the design
may ask for one (GET, like the page); cancelling is a change and needs the editor role.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth import WebUser
from app.jobs import service as jobs_svc
from app.models import Design, Job, Workspace
from app.planner.analysis import DEADLINE_FACTORS
from app.planner.options import PlannerSettings
from app.requirements.spec import SpecError, WorkloadSpec
from app.services import access, analyses
from app.services import accounts as acc
from app.services import designs as svc
from app.services import estimate as est_svc
from app.web.deps import FormGuard, PageUser
from app.web.designs import HELPERS
from app.web.templating import templates

router = APIRouter(include_in_schema=False, dependencies=[FormGuard])
log = logging.getLogger("archplan.web.tradeoffs")

JOB_POLL = "every 1s"
#: The fragment URL's last segment, and the page's query parameter naming a pending job, per kind.
SEGMENTS = {analyses.CURVE_JOB: "curve", analyses.SENSITIVITY_JOB: "sensitivity"}
PAGE_JOB_PARAMS = {analyses.CURVE_JOB: "curve_job", analyses.SENSITIVITY_JOB: "sensitivity_job"}

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
    elif any(f is None or not analyses.MIN_FACTOR <= f <= analyses.MAX_FACTOR for f in factors):
        c.errors["factors"] = (f"Each factor must be a number between {analyses.MIN_FACTOR:g} and "
                               f"{analyses.MAX_FACTOR:g} (1 = the deadlines as required).")
    elif len(set(factors)) > est_svc.MAX_CURVE_POINTS:
        c.errors["factors"] = f"At most {est_svc.MAX_CURVE_POINTS} points: each one is a full re-plan."
    if not c.errors:
        c.adjustments = est_svc.Adjustments(
            demand_scale=demand / 100, utilization=utilization / 100, price_factors=prices,
            spot_interruption_overhead=overhead / 100, max_gpus_per_region=cap)
        c.factors = sorted({float(f) for f in factors if f is not None})
    return c


# --------------------------------------------------------------------------- loading


@dataclass
class Loaded:
    design: Design
    spec: WorkloadSpec | None
    spec_error: str | None
    snapshot_id: str | None
    latest_cost: float | None
    latest_plan_id: int | None
    can_edit: bool


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
        snapshot_id = svc.planning_snapshot(session, ws.id).snapshot_id if spec is not None else None
        latest = svc.list_plans(session, design.id, limit=1)
        cost = latest[0].total_cost if latest and latest[0].status in ("optimal", "feasible") else None
        session.expunge(design)
        session.commit()
    return Loaded(design=design, spec=spec, spec_error=error, snapshot_id=snapshot_id, latest_cost=cost,
                  latest_plan_id=latest[0].id if latest else None,
                  can_edit=acc.role_at_least(web.role_in(design.workspace_id), "editor"))


# --------------------------------------------------------------------------- analyses


@dataclass
class AnalysisView:
    """One analysis as the page shows it: its job and, once it succeeded, the result."""

    kind: str
    job: Job
    state: str  # done | pending | failed | cancelled
    percent: int = 0
    message: str = ""
    position: int = 0
    seen: str = ""
    poll_url: str = ""
    again_url: str = ""  # the fragment without the job: asks again
    retry_url: str = ""  # the page (without JavaScript)
    cancel_url: str = ""
    can_cancel: bool = False
    target: str = ""
    poll: str = JOB_POLL
    result: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def pending(self) -> bool:
        return self.state == "pending"


def _with_query(path: str, query: str, **extra: Any) -> str:
    more = urlencode({k: v for k, v in extra.items() if v is not None})
    joined = "&".join(q for q in (query, more) if q)
    return f"{path}?{joined}" if joined else path


def _analysis(request: Request, loaded: Loaded, controls: Controls, kind: str, job_ref: str | None) -> AnalysisView:
    """Find (``job_ref``: the job being polled) or start the analysis of ``controls``; runs in a
    worker thread."""
    assert loaded.spec is not None and loaded.snapshot_id is not None
    settings = request.app.state.settings
    design = loaded.design
    factors = controls.factors if kind == analyses.CURVE_JOB else None
    payload = analyses.analysis_payload(kind, loaded.spec, controls.adjustments, factors, solver=settings.solver,
                                        server_limit_s=settings.solver_time_limit_s,
                                        snapshot_id=loaded.snapshot_id)
    key = analyses.dedupe_key(payload, kind)
    with Session(request.app.state.engine) as session:
        job = None
        if job_ref and job_ref.isdigit() and len(job_ref) < 12:
            job = jobs_svc.get_job(session, int(job_ref), design_id=design.id)
            if job is not None and (job.kind != kind or job.dedupe_key != key):
                job = None  # another analysis (the controls or the spec changed): ask for this one
        if job is None:
            job = analyses.request_analysis(session, design, kind, loaded.spec, controls.adjustments, factors,
                                            settings, snapshot_id=loaded.snapshot_id)
            session.commit()
            session.refresh(job)
        view = _view(session, loaded, controls, kind, job)
        session.expunge(job)
    if job.status == jobs_svc.QUEUED:
        runner = getattr(request.app.state, "job_runner", None)
        if runner is not None:
            runner.wake()
    return view


def _view(session: Session, loaded: Loaded, controls: Controls, kind: str, job: Job) -> AnalysisView:
    design_id = loaded.design.id
    fragment = f"/designs/{design_id}/tradeoffs/{SEGMENTS[kind]}"
    page = _with_query(f"/designs/{design_id}/tradeoffs", controls.query,
                       sensitivity="1" if kind == analyses.SENSITIVITY_JOB else None)
    view = AnalysisView(kind=kind, job=job, state="pending", again_url=_with_query(fragment, controls.query),
                        retry_url=page, cancel_url=f"/designs/{design_id}/jobs/{job.id}/cancel",
                        can_cancel=loaded.can_edit, target=f"#{SEGMENTS[kind]}-results")
    if job.status == jobs_svc.SUCCEEDED:
        view.state = "done"
        view.result = (_curve_result(loaded, job) if kind == analyses.CURVE_JOB else _sensitivity_result(job))
    elif job.status == jobs_svc.FAILED:
        view.state = "failed"
    elif job.status == jobs_svc.CANCELLED:
        view.state = "cancelled"
    else:
        view.position = jobs_svc.queue_position(session, job) if job.status == jobs_svc.QUEUED else 0
        view.percent = round(max(0.0, min(1.0, job.progress or 0.0)) * 100)
        message = job.message or "Waiting for a worker"
        if view.position:
            message += f" ({view.position} job{'s' if view.position != 1 else ''} ahead)"
        view.message = message
        state = f"{job.status}|{view.percent}|{message}|{job.cancel_requested}"
        view.seen = hashlib.sha256(state.encode()).hexdigest()[:12]
        view.poll_url = _with_query(fragment, controls.query, job=job.id, seen=view.seen)
    return view


def _curve_result(loaded: Loaded, job: Job) -> dict[str, Any]:
    """What ``_curve.html`` shows, from the job's stored points."""
    points = analyses.curve_points(job)
    stored = job.result or {}
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
    return {"points": points, "rows": rows, "chart": chart, "base": base,
            "has_runs": bool(loaded.spec is not None and loaded.spec.performance.training),
            "infeasible": [r for r in rows if not r["p"].ok],
            "time_limit_s": stored.get("time_limit_s") or (job.payload or {}).get("time_limit_s"),
            "gap": stored.get("gap", analyses.WHAT_IF_GAP)}


def _factor_label(p: est_svc.CurvePoint) -> str:
    """``×0.5 · 7 d``: the factor and the longest run's deadline."""
    if not p.deadline_days:
        return f"×{p.factor:g}"
    longest = max(p.deadline_days.values())
    days = f"{longest:.1f}".rstrip("0").rstrip(".")
    return f"×{p.factor:g} · {days} d"


def _sensitivity_result(job: Job) -> dict[str, Any]:
    """What ``_sensitivity.html`` shows, from the job's stored scenarios."""
    result = analyses.sensitivity_result(job)
    largest = max((abs(s.change_pct) for s in result.scenarios if s.change_pct is not None), default=0.0)
    return {"sens": result, "largest": largest or 1.0}


# --------------------------------------------------------------------------- routes


def _ctx(request: Request, **extra: Any) -> dict[str, Any]:
    return {"active": "designs", **HELPERS, "kind_labels": KIND_LABELS, "request": request,
            "max_points": est_svc.MAX_CURVE_POINTS, "labels": LABELS, **extra}


def _not_found(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "designs/not_found.html", {"active": "designs", "what": "design"},
                                      status_code=404)


def _fragment(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(templates.env.get_template(template).render(_ctx(request, **context)))


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k in FIELDS}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


@router.get("/designs/{design_id}/tradeoffs", response_class=HTMLResponse)
async def tradeoffs_page(request: Request, web: PageUser, design_id: str):
    loaded = await run_in_threadpool(_load, request, web, design_id)
    if loaded is None:
        return _not_found(request)
    params = _params(request)
    controls = parse_controls(params)
    ctx = _ctx(request, design=loaded.design, loaded=loaded, controls=controls, curve=None, sensitivity=None,
               defaults=DEFAULTS, spot_default=DEFAULT_SPOT_OVERHEAD_PCT, refresh_url=None)
    status = 200
    if controls.errors:
        status = 422
    elif params and loaded.spec is not None:  # a submitted form without JavaScript: the analyses, or their jobs
        q = request.query_params
        views = {analyses.CURVE_JOB: await run_in_threadpool(_analysis, request, loaded, controls,
                                                               analyses.CURVE_JOB, q.get("curve_job"))}
        if q.get("sensitivity") == "1":
            views[analyses.SENSITIVITY_JOB] = await run_in_threadpool(
                _analysis, request, loaded, controls, analyses.SENSITIVITY_JOB, q.get("sensitivity_job"))
        ctx["curve"] = views[analyses.CURVE_JOB]
        ctx["sensitivity"] = views.get(analyses.SENSITIVITY_JOB)
        if any(v.pending for v in views.values()):
            ctx["refresh_url"] = _with_query(
                f"/designs/{loaded.design.id}/tradeoffs", controls.query,
                sensitivity="1" if analyses.SENSITIVITY_JOB in views else None,
                **{PAGE_JOB_PARAMS[k]: v.job.id for k, v in views.items()})
    return templates.TemplateResponse(request, "tradeoffs/tradeoffs.html", ctx, status_code=status)


async def _fragment_route(request: Request, web: WebUser, design_id: str, kind: str) -> Response:
    loaded = await run_in_threadpool(_load, request, web, design_id)
    if loaded is None:
        return _not_found(request)
    controls = parse_controls(_params(request))
    if controls.errors or loaded.spec is None:
        # 200 so htmx swaps it (the controls show their own errors after the form's request)
        return _fragment(request, "tradeoffs/_invalid.html", {"controls": controls, "loaded": loaded})
    view = await run_in_threadpool(_analysis, request, loaded, controls, kind, request.query_params.get("job"))
    if view.pending and _is_htmx(request) and request.query_params.get("seen") == view.seen:
        return Response(status_code=204)  # no swap: the polling goes on, nothing is re-announced
    if not view.done:
        return _fragment(request, "tradeoffs/_job.html", {"design": loaded.design, "jv": view})
    template = "tradeoffs/_curve.html" if kind == analyses.CURVE_JOB else "tradeoffs/_sensitivity.html"
    return _fragment(request, template, {"design": loaded.design, "loaded": loaded, "controls": controls,
                                         "result": view.result, "jv": view})


@router.get("/designs/{design_id}/tradeoffs/curve", response_class=HTMLResponse)
async def curve_fragment(request: Request, web: PageUser, design_id: str):
    return await _fragment_route(request, web, design_id, analyses.CURVE_JOB)


@router.get("/designs/{design_id}/tradeoffs/sensitivity", response_class=HTMLResponse)
async def sensitivity_fragment(request: Request, web: PageUser, design_id: str):
    return await _fragment_route(request, web, design_id, analyses.SENSITIVITY_JOB)
