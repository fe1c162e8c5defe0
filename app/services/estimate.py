"""Quick cost estimates and what-if re-solves for the wizard and the trade-offs page.

No FastAPI here: plain functions of a :class:`WorkloadSpec`, a price :class:`Snapshot` and
:class:`PlannerSettings`. The wizard's live estimate runs in a web worker thread; the
what-if re-solves run as jobs (:mod:`app.jobs.analysis`, requested through
:mod:`app.services.analyses`).

Live estimate (:func:`quick_estimate`)
======================================
A range for the cost of the cheapest plan, cheap enough to recompute as the user types:

* **Demand** — the planner's own demand profile (:func:`~app.planner.demand.build_demand`):
  reference-GPU-hours and peak concurrent GPUs per demand class.
* **Upper bound** — all demand on the cheapest *eligible* on-demand offering of each class
  (after the planner's eligibility filters and dominance pruning): batch and training
  classes at ``GPU-hours × $/reference-GPU-hour``; latency-bound classes in whole
  always-on instances, ``ceil(peak / GPUs per instance) × $/instance-hour × hours`` each
  month. That is a feasible plan when no cap or budget binds, so the optimum costs no more.
* **Lower bound** — the LP relaxation of the planner's model (every integer variable made
  continuous: fractional reservations and servers) with the nominal objective, solved by
  the same code as the plan (:func:`~app.planner.solver.solve` with ``relax=True``) under a
  time limit. No plan, whatever it buys, costs less. Skipped when the model is large
  (options × months × classes above :data:`LP_MAX_SIZE`), or when the server is busy.

Both bounds are nominal USD over the horizon (commitments charged for their full term),
the same basis as a plan's "Total cost". The plan itself minimises NPV when the discount
rate is positive, so its nominal total can exceed the bounds slightly.

What-if (:class:`Adjustments`, :func:`deadline_curve`)
======================================================
Demand scale, GPU utilization, price multipliers per purchase option type, the spot
interruption overhead and a per-region GPU cap, all applied to one copy of the planner's
problem (:func:`adjusted_problem`); :func:`deadline_curve` re-solves it for up to
:data:`MAX_CURVE_POINTS` deadline factors, each solve with a time limit (and the whole curve
within an optional time budget), reporting progress before each point.

* **Demand scale** multiplies every class's energy demand (reference-GPU-hours) and peak.
* **Utilization** ``u`` (0.1–1) is the share of paid GPU time that does useful work
  (restarts after failures, stragglers, waiting on data, gaps between jobs). Training and
  batch classes (not latency-bound) need ``1/u`` times the GPU-hours for the same work and,
  to keep the same deadlines and batch windows, ``1/u`` times the concurrent GPUs: their
  demand and peak are divided by ``u``. Latency-bound serving is left as required: it is
  sized by its peak concurrent GPUs (``always_on_gpus``, or requests per second over the
  measured requests per GPU) and those GPUs are paid for every hour they are held, busy or
  idle, so its idle time is already in the cost; a lower throughput per serving GPU is a
  demand change (the demand scale).
* **Prices**: every money figure of the options of a purchase option type is multiplied.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from app.catalog.schema import Snapshot
from app.planner.analysis import DEADLINE_FACTORS, Sensitivity, sensitivity, with_deadline_factor
from app.planner.build import BuiltProblem, build_problem
from app.planner.demand import DemandError
from app.planner.options import PlannerSettings
from app.planner.problem import CapacityProblem
from app.planner.solver import SolveResult, solve
from app.requirements.spec import WorkloadSpec

__all__ = [
    "LP_MAX_SIZE",
    "LP_TIME_LIMIT_S",
    "MAX_CURVE_POINTS",
    "OPTION_KINDS",
    "Adjustments",
    "ClassEstimate",
    "CurvePoint",
    "Estimate",
    "RefGpuTotal",
    "adjusted_problem",
    "adjusted_settings",
    "deadline_curve",
    "quick_estimate",
    "scenario_sensitivity",
]

#: Largest model (options × months × demand classes) whose LP relaxation the live estimate solves.
LP_MAX_SIZE = 120_000
#: Time limit of the live estimate's LP relaxation (seconds).
LP_TIME_LIMIT_S = 1.5
#: Points on a cost-versus-deadline curve.
MAX_CURVE_POINTS = 6
OPTION_KINDS = ("on_demand", "spot", "reserved", "private")

#: ``progress(fraction, message)``: what a long computation reports between its steps.
Progress = Callable[[float, str], None]

_lp_slots = threading.BoundedSemaphore(2)  # concurrent LP estimates; more wait, then skip
_cache_lock = threading.Lock()
_cache: OrderedDict[str, Estimate] = OrderedDict()
_CACHE_SIZE = 64


# --------------------------------------------------------------------------- live estimate


@dataclass(frozen=True)
class ClassEstimate:
    id: str
    label: str
    reference_gpu: str
    gpu_hours: float
    peak_gpus: int
    latency_bound: bool
    od_rate: float | None = None  # cheapest eligible on-demand $ per reference-GPU-hour
    od_option: str | None = None  # "p5.48xlarge · aws us-east-1"
    upper: float | None = None


@dataclass(frozen=True)
class RefGpuTotal:
    reference_gpu: str
    gpu_hours: float
    peak_gpus: int  # largest monthly sum of the peaks of the classes on this reference GPU


@dataclass
class Estimate:
    """What :func:`quick_estimate` found. ``status``: ``ok``, ``no_demand`` or ``demand_error``."""

    status: str
    snapshot_id: str
    start_month: str
    end_month: str
    months: int
    classes: list[ClassEstimate] = field(default_factory=list)
    by_reference_gpu: list[RefGpuTotal] = field(default_factory=list)
    upper: float | None = None
    upper_note: str | None = None
    lower: float | None = None
    lower_status: str = "not_run"  # ok | skipped_large | busy | time_limit | infeasible | error | no_capacity | not_run
    lower_note: str | None = None
    lower_explanation: list[str] = field(default_factory=list)
    budget_notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (field path, message)
    options_in_model: int = 0
    model_size: int = 0
    lp_seconds: float | None = None
    seconds: float = 0.0
    cached: bool = False

    @property
    def total_gpu_hours(self) -> float:
        return sum(c.gpu_hours for c in self.classes)

    @property
    def spread(self) -> float | None:
        """Upper bound over lower bound, minus one (``0.25`` = the range is 25 % wide)."""
        if self.upper is None or not self.lower:
            return None
        return self.upper / self.lower - 1.0


def _spec_key(spec: WorkloadSpec, snapshot: Snapshot, *parts: Any) -> str:
    text = json.dumps([spec.model_dump(mode="json"), snapshot.snapshot_id, len(snapshot.offerings), *parts],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _where(c: Any) -> str:
    return f"{c.item} · {c.provider} {c.region}"


def _upper_bounds(built: BuiltProblem) -> tuple[list[ClassEstimate], list[float] | None, list[str]]:
    """Per class: the all-on-demand cost at the cheapest eligible offering; and per month."""
    hours = list(built.demand.hours_in_month)
    T = len(hours)
    monthly: list[float] | None = [0.0] * T
    missing: list[str] = []
    out = []
    on_demand = [c for c in built.options.candidates if c.kind == "on_demand" and c.usage_hourly > 0]
    for cd in built.demand.classes:
        if cd.total_gpu_hours <= 0:
            continue
        dc = cd.demand_class
        cands = [c for c in on_demand if c.performance.get(cd.id, 0) > 0]
        rate = option = upper = None
        if cands:
            best = min(cands, key=lambda c: (c.usage_hourly / c.performance[cd.id], c.id))
            rate, option = best.usage_hourly / best.performance[cd.id], _where(best)
            if dc.latency_bound:
                # Whole always-on instances covering each month's peak, every hour of the month.
                upper = 0.0
                for t in range(T):
                    peak = cd.peak_gpus[t] if t < len(cd.peak_gpus) else 0
                    if peak <= 0:
                        continue
                    month = min(math.ceil(peak / c.performance[cd.id] - 1e-9) * c.usage_hourly * hours[t]
                                for c in cands)
                    upper += month
                    if monthly is not None:
                        monthly[t] += month
            else:
                upper = cd.total_gpu_hours * rate
                if monthly is not None:
                    for t, h in enumerate(cd.gpu_hours[:T]):
                        monthly[t] += h * rate
        else:
            missing.append(dc.label())
            monthly = None
        out.append(ClassEstimate(
            id=cd.id, label=dc.label(), reference_gpu=dc.reference_gpu, gpu_hours=cd.total_gpu_hours,
            peak_gpus=cd.max_peak_gpus, latency_bound=dc.latency_bound, od_rate=rate, od_option=option,
            upper=None if upper is None else round(upper, 2)))
    return out, monthly, missing


def _by_reference_gpu(built: BuiltProblem) -> list[RefGpuTotal]:
    hours: dict[str, float] = defaultdict(float)
    peaks: dict[str, list[float]] = {}
    T = built.demand.horizon_months
    for cd in built.demand.classes:
        ref = cd.demand_class.reference_gpu
        hours[ref] += cd.total_gpu_hours
        row = peaks.setdefault(ref, [0.0] * T)
        for t, p in enumerate(cd.peak_gpus[:T]):
            row[t] += p
    return [RefGpuTotal(reference_gpu=r, gpu_hours=round(hours[r], 2), peak_gpus=int(max(peaks[r], default=0)))
            for r in sorted(hours) if hours[r] > 0]


def _explanation_lines(result: SolveResult, limit: int = 6) -> list[str]:
    """The solver's infeasibility explanation: the worst month of each (kind, name)."""
    if result.shortfalls:
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for s in result.shortfalls:
            groups[(s.kind, s.name)].append(s)
        lines = []
        for items in groups.values():
            worst = max(items, key=lambda s: s.shortfall)
            lines.append(worst.message + (f" ({len(items)} months fall short)" if len(items) > 1 else ""))
        return lines[:limit]
    text = result.explanation or result.message or ""
    return [ln.strip().removeprefix("- ") for ln in text.splitlines() if ln.strip()][:limit]


def quick_estimate(
    spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings | None = None, *,
    lp: bool = True, lp_time_limit: float = LP_TIME_LIMIT_S, lp_max_size: int = LP_MAX_SIZE,
) -> Estimate:
    """Demand totals and a lower/upper bound on the cost of the cheapest plan (see module doc)."""
    t0 = time.perf_counter()
    settings = (settings or PlannerSettings()).model_copy(update={"objective": "nominal"})
    key = _spec_key(spec, snapshot, settings.model_dump(mode="json"), lp, lp_time_limit, lp_max_size)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is not None:
        est = Estimate(**{**hit.__dict__, "cached": True, "seconds": time.perf_counter() - t0})
        return est

    lc = spec.lifecycle
    est = Estimate(status="ok", snapshot_id=snapshot.snapshot_id, start_month=lc.start_month,
                   end_month=lc.end_month, months=lc.horizon_months)
    try:
        built = build_problem(spec, snapshot, settings)
    except DemandError as exc:
        est.status = "demand_error"
        text = str(exc.args[0]) if exc.args else str(exc)
        path, _, message = text.partition(": ")
        est.problems.append((path, message) if message and "." in path else ("", text))
        est.seconds = time.perf_counter() - t0
        return est  # not cached: the catalog may gain the GPU

    est.warnings = list(built.demand.warnings)
    est.by_reference_gpu = _by_reference_gpu(built)
    est.options_in_model = len(built.problem.options)
    est.classes, monthly, missing = _upper_bounds(built)
    if not built.problem.demand:
        est.status = "no_demand"
        est.upper = est.lower = 0.0
        est.lower_status = "ok"
        est.seconds = time.perf_counter() - t0
        _remember(key, est)
        return est

    if missing:
        est.upper_note = "no eligible on-demand offering for " + "; ".join(missing)
    else:
        est.upper = round(sum(c.upper or 0.0 for c in est.classes), 2)
    cost = spec.cost
    if est.upper is not None and cost.total_budget and est.upper > cost.total_budget:
        est.budget_notes.append(
            f"All on-demand would exceed the total budget of ${cost.total_budget:,.0f}: the plan has to "
            "commit to reservations or own servers, and may not fit at all.")
    if monthly is not None and cost.monthly_budget:
        over = [t for t, v in enumerate(monthly) if v > cost.monthly_budget + 0.01]
        if over:
            est.budget_notes.append(
                f"All on-demand would exceed the monthly budget of ${cost.monthly_budget:,.0f} in "
                f"{len(over)} month{'s' if len(over) != 1 else ''}.")

    served = {k for c in built.options.candidates for k in c.performance}
    unserved = [cd.demand_class.label() for cd in built.demand.classes
                if cd.total_gpu_hours > 0 and cd.id not in served]
    n_classes = max(1, len(built.problem.demand))
    est.model_size = est.options_in_model * built.problem.periods * n_classes
    if unserved:
        est.lower_status = "no_capacity"
        est.lower_note = "No eligible capacity in the price catalog for " + "; ".join(unserved) + "."
    elif not lp:
        est.lower_status = "not_run"
    elif est.model_size > lp_max_size:
        est.lower_status = "skipped_large"
        est.lower_note = (f"The model is large ({est.options_in_model} options × {built.problem.periods} months × "
                          f"{n_classes} demand classes), so the lower bound is skipped here; "
                          "planning finds the exact optimum.")
    elif not _lp_slots.acquire(timeout=2.0):
        est.lower_status = "busy"
        est.lower_note = "The server is busy; the lower bound was skipped this time."
    else:
        try:
            t1 = time.perf_counter()
            result = solve(built.problem, solver=settings.solver, relax=True, time_limit=lp_time_limit)
            est.lp_seconds = round(time.perf_counter() - t1, 4)
        finally:
            _lp_slots.release()
        if result.status == "optimal" and result.total_nominal_cost is not None:
            est.lower_status = "ok"
            est.lower = round(result.total_nominal_cost, 2)
            if est.upper is not None and est.lower > est.upper:  # caps or budgets bind: no on-demand plan fits
                est.upper_note = "all on-demand does not meet the caps or budgets"
                est.upper = None
        elif result.status == "infeasible":
            est.lower_status = "infeasible"
            est.lower_note = "No plan can meet these requirements, not even with fractional purchases."
            est.lower_explanation = _explanation_lines(result)
        elif result.status == "feasible" or est.lp_seconds >= lp_time_limit * 0.95:
            est.lower_status = "time_limit"
            est.lower_note = f"The LP relaxation did not finish within {lp_time_limit:g} s."
        else:
            est.lower_status = "error"
            est.lower_note = f"The LP relaxation failed ({result.status}: {result.message})."
    est.seconds = time.perf_counter() - t0
    if est.lower_status != "busy":
        _remember(key, est)
    return est


def _remember(key: str, est: Estimate) -> None:
    with _cache_lock:
        _cache[key] = est
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


# --------------------------------------------------------------------------- what-if


class Adjustments(BaseModel):
    """Changes applied to the planner's problem before re-solving."""

    demand_scale: float = Field(1.0, gt=0, le=10, description="Multiplies every class's demand and peak.")
    utilization: float = Field(
        1.0, ge=0.1, le=1.0,
        description="Share of paid GPU time doing useful work; divides the demand and peak of every "
                    "class that is not latency-bound (see the module doc).")
    price_factors: dict[str, float] = Field(
        default_factory=dict, description="Purchase option type -> multiplier of every money figure.")
    spot_interruption_overhead: float | None = Field(None, ge=0, le=2)
    max_gpus_per_region: int | None = Field(None, ge=1)

    @property
    def is_neutral(self) -> bool:
        return (self.demand_scale == 1.0 and self.utilization == 1.0
                and all(v == 1.0 for v in self.price_factors.values())
                and self.spot_interruption_overhead is None and self.max_gpus_per_region is None)


def adjusted_settings(settings: PlannerSettings, adj: Adjustments) -> PlannerSettings:
    update: dict[str, Any] = {}
    if adj.spot_interruption_overhead is not None:
        update["spot_interruption_overhead"] = adj.spot_interruption_overhead
    if adj.max_gpus_per_region is not None:
        update["max_gpus_per_region"] = adj.max_gpus_per_region
    return settings.model_copy(update=update)


def _scale_prices(problem: CapacityProblem, factors: dict[str, float]) -> None:
    """Multiply every money figure of the options of each kind, in place."""
    for o in problem.options:
        f = factors.get(o.kind)
        if f is None or f == 1.0:
            continue
        o.usage_price *= f
        o.price_per_period *= f
        o.upfront *= f
        o.residual_value *= f
        o.recurring_costs = {k: v * f for k, v in o.recurring_costs.items()}


def _apply_utilization(problem: CapacityProblem, utilization: float) -> None:
    """Divide the demand and peak of every class that is not latency-bound by ``utilization``,
    in place (latency-bound serving is sized by its peak and paid every hour: unchanged)."""
    if utilization == 1.0:
        return
    factor = 1.0 / utilization

    def scaled(value: Any) -> Any:
        if isinstance(value, list):
            return [None if v is None else v * factor for v in value]
        return value * factor

    for name in list(problem.demand):
        if problem.class_info(name).latency_bound:
            continue
        problem.demand[name] = scaled(problem.demand[name])
        if problem.peak and name in problem.peak:
            problem.peak[name] = scaled(problem.peak[name])


def adjusted_problem(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings,
                     adj: Adjustments) -> BuiltProblem:
    """The planner's problem for ``spec`` with every adjustment of ``adj`` applied (a fresh
    copy): settings, demand scale, utilization and prices, ready for one solve."""
    built = build_problem(spec, snapshot, adjusted_settings(settings, adj), demand_scale=adj.demand_scale)
    _apply_utilization(built.problem, adj.utilization)
    _scale_prices(built.problem, adj.price_factors)
    return built


class CurvePoint(BaseModel):
    factor: float
    deadline_days: dict[str, float]
    status: str = Field(description="optimal | feasible | infeasible | error | skipped | …")
    total_cost: float | None = None
    npv: float | None = None
    peak_gpus: float = Field(0, description="Largest monthly sum of peak reference GPUs over all classes.")
    explanation: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible") and self.total_cost is not None


def _peak(built: BuiltProblem) -> float:
    T = built.problem.periods
    totals = [0.0] * T
    for row in (built.problem.peak or {}).values():
        if isinstance(row, list):
            for t, v in enumerate(row[:T]):
                totals[t] += v or 0.0
    return round(max(totals, default=0.0), 2)


def deadline_curve(
    spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings, adj: Adjustments | None = None,
    factors: Sequence[float] = DEADLINE_FACTORS, *, time_limit_s: float = 5.0, budget_s: float | None = 40.0,
    progress: Progress | None = None,
) -> list[CurvePoint]:
    """Re-plan ``spec`` (with ``adj``) for each deadline factor (at most :data:`MAX_CURVE_POINTS`).

    Each solve stops after ``time_limit_s`` (its best plan so far is then reported as
    ``feasible``); points not reached within ``budget_s`` in total (None: no budget) are
    ``skipped``. ``progress(fraction, message)`` is called before each point.
    """
    adj = adj or Adjustments()
    factors = sorted(set(factors))[:MAX_CURVE_POINTS]
    t0 = time.perf_counter()
    points = []
    for i, f in enumerate(factors):
        if progress is not None:
            progress(i / len(factors), f"Point {i + 1} of {len(factors)}: deadline ×{f:g}")
        s = with_deadline_factor(spec, f)
        deadlines = {r.name: r.deadline_days for r in s.performance.training}
        if budget_s is not None and time.perf_counter() - t0 > budget_s:
            points.append(CurvePoint(factor=f, deadline_days=deadlines, status="skipped",
                                     explanation=[f"Not computed: the {budget_s:g} s time budget was used up."]))
            continue
        t1 = time.perf_counter()
        try:
            built = adjusted_problem(s, snapshot, settings, adj)
        except DemandError as exc:
            points.append(CurvePoint(factor=f, deadline_days=deadlines, status="error", explanation=[str(exc)]))
            continue
        served = {k for c in built.options.candidates for k in c.performance}
        unserved = [cd.demand_class.label() for cd in built.demand.classes
                    if cd.total_gpu_hours > 0 and cd.id not in served]
        peak = _peak(built)
        if unserved:
            points.append(CurvePoint(factor=f, deadline_days=deadlines, status="infeasible", peak_gpus=peak,
                                     explanation=[f"No eligible capacity for {u}." for u in unserved]))
            continue
        if not built.problem.demand:
            points.append(CurvePoint(factor=f, deadline_days=deadlines, status="optimal", total_cost=0.0, npv=0.0))
            continue
        r = solve(built.problem, solver=settings.solver, time_limit=time_limit_s, gap=settings.gap)
        ok = r.status in ("optimal", "feasible") and r.total_nominal_cost is not None
        points.append(CurvePoint(
            factor=f, deadline_days=deadlines, status=r.status, peak_gpus=peak,
            total_cost=round(r.total_nominal_cost, 2) if ok else None,
            npv=round(r.npv, 2) if ok and r.npv is not None else None,
            explanation=[] if ok else (_explanation_lines(r) or [r.message or r.status]),
            seconds=round(time.perf_counter() - t1, 3)))
    return points


def scenario_sensitivity(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings,
                         adj: Adjustments | None = None, *, progress: Progress | None = None) -> Sensitivity:
    """The planner's ±20 % scenarios (:func:`app.planner.analysis.sensitivity`) with the
    adjusted settings (spot overhead, region cap). Demand, utilization and price adjustments
    are not part of the settings, so the scenarios vary the requirements' own figures.

    ``progress(fraction, message)`` is called before the base case and after each solve.
    """
    counted = None
    if progress is not None:
        report = progress

        def counted(done: int, total: int) -> None:
            report(done / total, f"Solved {done} of {total} scenarios (the base case first)")

        report(0.0, "Building the problem and solving the base case")
    return sensitivity(spec, snapshot, adjusted_settings(settings, adj or Adjustments()), progress=counted)
