"""The plan: what to buy, where and when, what it costs, and how it compares.

:func:`make_plan` is the one entry point the CLI, the web pages, the API and the job runner
call: requirements + price snapshot + settings → :class:`Plan` (JSON-serialisable).

Cost categories (per month): ``capex`` (own servers' purchase net of residual value),
``commitments`` (reservations: upfront and recurring), ``on_demand``, ``spot``,
``power_colocation`` and ``support_staff`` (own servers' running costs).

Baselines are the same optimisation restricted to one purchase strategy — all on-demand,
all 1-year reserved, all 3-year reserved, all own servers — so "savings" compare like with
like. A baseline that cannot meet the requirements (e.g. no 3-year prices in the snapshot)
has cost ``None`` and a reason. The break-even month is the first month from which the
plan's cumulative cost stays at or below the all-on-demand baseline's.

Commitment utilization: committed capacity serves demand before anything paid per use, so
in each month a class's committed supply is used up to its demand; an option's utilization
is its share of that use over the capacity it had in service.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.catalog.schema import Snapshot
from app.planner.build import BuiltProblem, build_problem
from app.planner.demand import DemandProfile
from app.planner.options import PlannerSettings
from app.planner.solver import SolveResult, solve
from app.requirements.spec import WorkloadSpec

PLAN_VERSION = "1"
CATEGORIES = ("capex", "commitments", "on_demand", "spot", "power_colocation", "support_staff")
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "all_on_demand": ("All on-demand", {"purchase_kinds": ["on_demand"]}),
    "all_reserved_1y": ("All 1-year reserved", {"purchase_kinds": ["reserved"], "reserved_term_months": [12]}),
    "all_reserved_3y": ("All 3-year reserved", {"purchase_kinds": ["reserved"], "reserved_term_months": [36]}),
    "all_own_servers": ("All own servers", {"purchase_kinds": ["private"]}),
}


class ScheduleLine(BaseModel):
    """One purchase: reserve, commit or order ``quantity`` units in ``purchase_month``."""

    option: str
    kind: Literal["reserved", "private"]
    provider: str
    region: str = Field(description="Cloud region, or site id for own servers.")
    item: str = Field(description="Instance type or server model.")
    gpu_model: str
    gpus_per_unit: float
    quantity: int
    purchase_month: str
    purchase_period: int
    in_service_month: str | None
    lead_time_months: int
    term_months: int
    payment_option: str | None
    upfront_usd: float = Field(description="Per unit, at purchase.")
    monthly_usd: float = Field(description="Per unit per month in service (commitment or running costs).")
    total_usd: float = Field(description="quantity × (upfront + monthly × term − residual value).")


class UsageLine(BaseModel):
    """Capacity paid per use (on-demand, spot)."""

    option: str
    kind: Literal["on_demand", "spot"]
    provider: str
    region: str
    item: str
    gpu_model: str
    gpus_per_unit: float
    hourly_usd: float
    instance_hours: float
    gpu_hours_by_month: list[float]
    cost_usd: float


class Utilization(BaseModel):
    option: str
    by_month: list[float | None]
    average: float | None


class Baseline(BaseModel):
    name: str
    label: str
    status: str
    total_cost: float | None
    npv: float | None
    objective: float | None
    reason: str | None = None


class Plan(BaseModel):
    plan_version: str = PLAN_VERSION
    spec_name: str
    snapshot_id: str
    status: str = Field("error", description="optimal | feasible | infeasible | unbounded | error")
    message: str = ""
    explanation: str | None = None
    shortfalls: list[dict[str, Any]] = Field(default_factory=list)
    solver: str = ""
    objective_kind: str = "nominal"
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    total_cost: float | None = Field(None, description="Nominal USD, including commitments past the horizon.")
    npv: float | None = None
    cost_after_horizon: float = 0.0
    discount_rate_annual: float = 0.0
    months: list[str] = Field(default_factory=list)
    cost_by_month: list[float] = Field(default_factory=list)
    cost_by_category: dict[str, float] = Field(default_factory=dict)
    cost_by_month_category: dict[str, list[float]] = Field(default_factory=dict)
    gpus_by_kind_month: dict[str, list[float]] = Field(
        default_factory=dict, description="GPUs in service (committed) or running on average (usage)."
    )
    monthly_run_rate: float | None = Field(None, description="Average monthly cost over the horizon.")
    schedule: list[ScheduleLine] = Field(default_factory=list)
    usage: list[UsageLine] = Field(default_factory=list)
    commitment_utilization: list[Utilization] = Field(default_factory=list)
    baselines: dict[str, float | None] = Field(
        default_factory=dict,
        description="Nominal total cost of each single-strategy baseline; null where it cannot meet the requirements.",
    )
    baseline_details: dict[str, Baseline] = Field(default_factory=dict)
    baseline_cost_by_month: dict[str, list[float]] = Field(
        default_factory=dict, description="Monthly cost of each feasible baseline (for cumulative charts)."
    )
    best_single_strategy: str | None = None
    savings: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Against each feasible baseline: usd and pct (nominal)."
    )
    break_even_month: str | None = None
    demand: list[dict[str, Any]] = Field(default_factory=list)
    assumptions: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    options_considered: int = 0
    options_pruned: int = 0
    options_in_model: int = 0
    options_skipped: list[str] = Field(default_factory=list)
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    total_seconds: float = 0.0


def _unserved_classes(built: BuiltProblem) -> list[str]:
    served = {c for cand in built.options.candidates for c in cand.performance}
    return [k for k in built.problem.demand if k not in served]


def _summarise_shortfalls(result: SolveResult, months: list[str]) -> str | None:
    """One line per (kind, name): the worst month and how many months fall short."""
    if not result.shortfalls:
        return result.explanation
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for s in result.shortfalls:
        groups[(s.kind, s.name)].append(s)
    lines = []
    for (_kind, _name), items in groups.items():
        worst = max(items, key=lambda s: s.shortfall)
        extra = f" ({len(items)} months fall short)" if len(items) > 1 else ""
        lines.append(worst.message + extra)
    return "The requirements cannot all be met:\n" + "\n".join(f"- {line}" for line in lines)


def _no_capacity_explanation(built: BuiltProblem, classes: list[str], settings: PlannerSettings) -> str:
    lines = []
    only = ""
    if settings.purchase_kinds:
        only = " with only " + ", ".join(k.replace("_", "-") for k in settings.purchase_kinds) + " options"
        if settings.reserved_term_months:
            only += " (" + ", ".join(f"{m}-month" for m in settings.reserved_term_months) + " terms)"
    for k in classes:
        cd = built.demand.get(k)
        dc = cd.demand_class
        need = []
        if dc.allowed_jurisdictions:
            need.append("jurisdictions " + ", ".join(dc.allowed_jurisdictions))
        if dc.allowed_regions:
            need.append("regions " + ", ".join(dc.allowed_regions))
        if dc.frameworks_required:
            need.append("attested " + ", ".join(dc.frameworks_required))
        if dc.private_only or dc.dedicated_tenancy:
            need.append("own servers only")
        if dc.min_gpu_memory_gb:
            need.append(f"≥ {dc.min_gpu_memory_gb:g} GB per GPU")
        if dc.interconnect == "multi_node":
            need.append("8-GPU NVLink nodes for multi-node training")
        lines.append(
            f"- class {k} ({cd.total_gpu_hours:,.0f} reference GPU-hours, peak {cd.max_peak_gpus} GPUs) "
            f"has no eligible capacity in the snapshot{only}: it needs {'; '.join(need) or 'a GPU with a throughput figure'}. "
            "Relax one of these requirements, allow own servers (capex), or add custom prices."
        )
    skipped = built.options.skipped
    if skipped:
        lines.append("Options left out: " + "; ".join(skipped[:8]) + (" …" if len(skipped) > 8 else ""))
    return "No plan can meet the requirements:\n" + "\n".join(lines)


def _assumptions(spec: WorkloadSpec, settings: PlannerSettings, snapshot: Snapshot) -> list[str]:
    out = [
        f"Prices from snapshot {snapshot.snapshot_id} (created {snapshot.created}); USD.",
        "Months are calendar months; a reservation month counts 730 h (8,760 h / 12).",
        f"Objective: {'NPV' if settings.objective == 'npv' and spec.cost.discount_rate_annual > 0 else 'nominal cost'}"
        f" at an annual discount rate of {spec.cost.discount_rate_annual:.1%}.",
        f"Commitments past the horizon: {settings.horizon_end.replace('_', ' ')}.",
        f"Spot needs {settings.spot_interruption_overhead:.0%} extra work for interruptions (assumption)"
        + (f"; at most {settings.spot_availability:.0%} of a capped spot pool is obtainable" if settings.spot_availability < 1 else "")
        + ".",
        "On-demand and spot capacity are assumed obtainable when needed"
        + (f", up to {settings.max_gpus_per_region} GPUs per region" if settings.max_gpus_per_region else "")
        + ".",
        "Training compute converts between GPUs by peak dense throughput at the run's precision.",
        f"Own servers: operations staff {settings.private_staff_fte_per_server:g} FTE per server (assumption).",
    ]
    if not spec.cost.capex_allowed:
        out.append("Own servers not considered: the requirements do not allow capex.")
    if not spec.cost.upfront_payments_allowed:
        out.append("Upfront payments not allowed: only no-upfront commitments considered.")
    return out


def _categorise(built: BuiltProblem, result: SolveResult, T: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    by_cat = {c: [0.0] * T for c in CATEGORIES}
    gpus = {k: [0.0] * T for k in ("on_demand", "spot", "reserved", "private")}
    for o in result.options:
        cand = built.by_name.get(o.name)
        if cand is None:
            continue
        per = o.cost_by_period[:T]
        if cand.kind in ("on_demand", "spot"):
            for t, v in enumerate(per):
                by_cat[cand.kind][t] += v
            for t, u in enumerate(o.usage_units[:T]):
                gpus[cand.kind][t] += u * cand.gpus_per_unit
        elif cand.kind == "reserved":
            for t, v in enumerate(per):
                by_cat["commitments"][t] += v
            for t, a in enumerate(o.active[:T]):
                gpus["reserved"][t] += a * cand.gpus_per_unit
        else:
            power = cand.recurring.get("power", 0.0) + cand.recurring.get("colocation", 0.0)
            support = cand.recurring.get("support", 0.0) + cand.recurring.get("staff", 0.0)
            for t, v in enumerate(per):
                active = o.active[t] if t < len(o.active) else 0.0
                by_cat["power_colocation"][t] += active * power
                by_cat["support_staff"][t] += active * support
                by_cat["capex"][t] += v - active * (power + support)
                gpus["private"][t] += active * cand.gpus_per_unit
    return by_cat, gpus


def _utilization(built: BuiltProblem, result: SolveResult, hours: list[float]) -> list[Utilization]:
    T = len(hours)
    demand = built.problem.demand
    committed = [o for o in result.options if built.by_name.get(o.name) and built.by_name[o.name].committed]
    supply: dict[str, list[float]] = {c: [0.0] * T for c in demand}
    share: dict[tuple[str, str], list[float]] = {}
    for o in committed:
        cand = built.by_name[o.name]
        for c, units in o.assigned.items():
            row = [u * cand.performance.get(c, 0.0) * hours[t] for t, u in enumerate(units[:T])]
            share[(o.name, c)] = row
            for t, v in enumerate(row):
                supply[c][t] += v
    out = []
    for o in committed:
        cand = built.by_name[o.name]
        by_month: list[float | None] = []
        used_total = cap_total = 0.0
        for t in range(T):
            cap = o.active[t] * max(cand.performance.values()) * hours[t] if t < len(o.active) else 0.0
            if cap <= 0:
                by_month.append(None)
                continue
            used = 0.0
            for c in demand:
                s = share.get((o.name, c))
                if s and supply[c][t] > 0:
                    need = demand[c][t] if isinstance(demand[c], list) else demand[c]
                    used += s[t] * min(1.0, (need or 0.0) / supply[c][t])
            by_month.append(round(min(1.0, used / cap), 4))
            used_total += used
            cap_total += cap
        out.append(Utilization(option=o.name, by_month=by_month,
                               average=round(used_total / cap_total, 4) if cap_total else None))
    return out


def _schedule(built: BuiltProblem, result: SolveResult, months: list[str]) -> list[ScheduleLine]:
    lines = []
    for o in result.options:
        cand = built.by_name.get(o.name)
        if cand is None or not cand.committed:
            continue
        monthly = cand.monthly + sum(cand.recurring.values())
        for t, q in enumerate(o.purchased):
            n = round(q)
            if n <= 0:
                continue
            start = t + cand.lead_time_months
            lines.append(ScheduleLine(
                option=cand.id, kind=cand.kind, provider=cand.provider, region=cand.region,
                item=cand.item, gpu_model=cand.gpu_model, gpus_per_unit=cand.gpus_per_unit,
                quantity=n, purchase_month=months[t] if t < len(months) else str(t),
                purchase_period=t, in_service_month=months[start] if start < len(months) else None,
                lead_time_months=cand.lead_time_months, term_months=cand.term_months,
                payment_option=cand.payment_option, upfront_usd=round(cand.upfront, 2),
                monthly_usd=round(monthly, 2),
                total_usd=round(n * (cand.upfront + monthly * cand.term_months - cand.residual_value), 2),
            ))
    lines.sort(key=lambda s: (s.purchase_period, s.option))
    return lines


def _usage(built: BuiltProblem, result: SolveResult) -> list[UsageLine]:
    out = []
    for o in result.options:
        cand = built.by_name.get(o.name)
        if cand is None or cand.committed or sum(o.usage_hours) <= 1e-9:
            continue
        out.append(UsageLine(
            option=cand.id, kind=cand.kind, provider=cand.provider, region=cand.region, item=cand.item,
            gpu_model=cand.gpu_model, gpus_per_unit=cand.gpus_per_unit, hourly_usd=cand.usage_hourly,
            instance_hours=round(sum(o.usage_hours), 2),
            gpu_hours_by_month=[round(h * cand.gpus_per_unit, 2) for h in o.usage_hours],
            cost_usd=round(o.cost, 2),
        ))
    out.sort(key=lambda u: -u.cost_usd)
    return out


def _demand_summary(demand: DemandProfile) -> list[dict[str, Any]]:
    return [{"class_id": cd.id, "label": cd.demand_class.label(), "reference_gpu": cd.demand_class.reference_gpu,
             "gpu_hours": [round(x, 2) for x in cd.gpu_hours], "peak_gpus": cd.peak_gpus,
             "total_gpu_hours": round(cd.total_gpu_hours, 2), "max_peak_gpus": cd.max_peak_gpus}
            for cd in demand.classes]


def _warnings(plan: Plan, built: BuiltProblem, settings: PlannerSettings) -> list[str]:
    out = list(built.demand.warnings)
    spot = sum(plan.cost_by_month_category.get("spot", []))
    spot_gpu_hours = sum(sum(u.gpu_hours_by_month) for u in plan.usage if u.kind == "spot")
    all_gpu_hours = sum(sum(u.gpu_hours_by_month) for u in plan.usage) + sum(
        sum(v) * h for v, h in zip(zip(*[plan.gpus_by_kind_month.get(k, []) for k in ("reserved", "private")]),
                                    built.problem.period_hours if isinstance(built.problem.period_hours, list) else [],
                                    strict=False))
    if spot > 0 and all_gpu_hours > 0 and spot_gpu_hours / all_gpu_hours > 0.5:
        tight = [i for i in built.demand.training_instances if i.deadline_capped_by or i.duration_hours < 24 * 14]
        msg = f"{spot_gpu_hours / all_gpu_hours:.0%} of GPU-hours run on spot"
        if tight:
            msg += ("; with deadlines under two weeks, interruptions can push a run past its deadline — "
                    "check the spot interruption sensitivity")
        out.append(msg + ".")
    for u in plan.commitment_utilization:
        if u.average is not None and u.average < 0.6:
            out.append(f"{u.option} is used {u.average:.0%} of the time it is paid for.")
    if any(c.estimate for c in built.options.candidates if any(s.option == c.id for s in plan.schedule)):
        out.append("Some purchased options rest on estimated figures (see the catalog sources).")
    return out


def _solve_built(built: BuiltProblem, settings: PlannerSettings) -> SolveResult:
    return solve(built.problem, solver=settings.solver, time_limit=settings.time_limit_s, gap=settings.gap)


ProgressFn = Callable[[float, str], None]


def make_plan(
    spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings | None = None,
    *, baselines: bool = True, demand_scale: float = 1.0, progress: ProgressFn | None = None,
) -> Plan:
    """Optimise ``spec`` against ``snapshot`` and describe the result (see module docstring).

    ``progress(fraction, message)`` is called as the work advances (the plan's own solve,
    then each baseline); raising from it (e.g. on cancellation) aborts the planning.
    """
    settings = settings or PlannerSettings()
    report = progress or (lambda _f, _m: None)
    report(0.0, "Building the demand profile and options")
    t0 = time.perf_counter()
    built = build_problem(spec, snapshot, settings, demand_scale=demand_scale)
    months = list(built.demand.months)
    hours = list(built.demand.hours_in_month)
    T = len(months)
    plan = Plan(
        spec_name=spec.name, snapshot_id=snapshot.snapshot_id, months=months,
        discount_rate_annual=spec.cost.discount_rate_annual,
        assumptions=_assumptions(spec, settings, snapshot), demand=_demand_summary(built.demand),
        options_considered=built.options.considered, options_pruned=built.options.pruned,
        options_in_model=len(built.problem.options), options_skipped=built.options.skipped,
    )
    unserved = _unserved_classes(built)
    if unserved:
        plan.status = "infeasible"
        plan.explanation = _no_capacity_explanation(built, unserved, settings)
        plan.message = "No eligible capacity for some demand classes."
        plan.total_seconds = round(time.perf_counter() - t0, 4)
        return plan
    if not built.problem.demand:
        plan.status = "optimal"
        plan.message = "The requirements create no GPU demand in the horizon."
        plan.objective = plan.total_cost = plan.npv = plan.bound = 0.0
        plan.gap = 0.0
        return plan

    report(0.1, f"Solving ({len(built.problem.options)} options, {T} months)")
    result = _solve_built(built, settings)
    plan.status = result.status
    plan.message = result.message
    plan.solver = result.solver
    plan.objective_kind = result.objective_kind
    plan.build_seconds = round(result.build_seconds, 4)
    plan.solve_seconds = round(result.solve_seconds, 4)
    if result.status not in ("optimal", "feasible"):
        plan.explanation = _summarise_shortfalls(result, months)
        plan.shortfalls = [s.model_dump() for s in result.shortfalls]
        plan.total_seconds = round(time.perf_counter() - t0, 4)
        return plan

    plan.objective, plan.bound, plan.gap = result.objective, result.bound, result.gap
    plan.total_cost = round(result.total_nominal_cost or 0.0, 2)
    plan.npv = round(result.npv or 0.0, 2)
    plan.cost_after_horizon = round(result.cost_after_horizon, 2)
    by_cat, gpus = _categorise(built, result, T)
    plan.cost_by_month_category = {k: [round(x, 2) for x in v] for k, v in by_cat.items() if any(abs(x) > 1e-6 for x in v)}
    plan.cost_by_month = [round(sum(by_cat[k][t] for k in CATEGORIES), 2) for t in range(T)]
    plan.cost_by_category = {k: round(sum(v), 2) for k, v in by_cat.items() if any(abs(x) > 1e-6 for x in v)}
    if plan.cost_after_horizon:
        plan.cost_by_category["after_horizon"] = plan.cost_after_horizon
    plan.gpus_by_kind_month = {k: [round(x, 3) for x in v] for k, v in gpus.items() if any(v)}
    plan.monthly_run_rate = round(sum(plan.cost_by_month) / T, 2) if T else None
    plan.schedule = _schedule(built, result, months)
    plan.usage = _usage(built, result)
    plan.commitment_utilization = _utilization(built, result, hours)

    if baselines:
        _add_baselines(plan, spec, snapshot, settings, demand_scale, report)
    report(1.0, "Done")
    plan.warnings = _warnings(plan, built, settings)
    plan.total_seconds = round(time.perf_counter() - t0, 4)
    return plan


def _add_baselines(plan: Plan, spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings,
                   demand_scale: float, report: ProgressFn) -> None:
    od_cumulative: list[float] | None = None
    for i, (name, (label, overrides)) in enumerate(BASELINES.items()):
        report(0.5 + 0.5 * i / len(BASELINES), f"Baseline: {label.lower()}")
        s = settings.model_copy(update=overrides)
        b = make_plan(spec, snapshot, s, baselines=False, demand_scale=demand_scale)
        ok = b.status in ("optimal", "feasible")
        reason = None
        if not ok:
            first = (b.explanation or b.message or "cannot meet the requirements").splitlines()
            reason = first[1].lstrip("- ") if len(first) > 1 else first[0]
        plan.baseline_details[name] = Baseline(
            name=name, label=label, status=b.status, total_cost=b.total_cost if ok else None,
            npv=b.npv if ok else None, objective=b.objective if ok else None, reason=reason)
        plan.baselines[name] = b.total_cost if ok else None
        if ok:
            plan.baseline_cost_by_month[name] = list(b.cost_by_month)
        if name == "all_on_demand" and ok:
            acc, od_cumulative = 0.0, []
            for v in b.cost_by_month:
                acc += v
                od_cumulative.append(acc)
    feasible = {k: v for k, v in plan.baseline_details.items() if v.objective is not None}
    if feasible:
        plan.best_single_strategy = min(feasible, key=lambda k: (feasible[k].objective, k))
    for k, b in feasible.items():
        assert b.total_cost is not None
        diff = b.total_cost - (plan.total_cost or 0.0)
        plan.savings[k] = {"usd": round(diff, 2), "pct": round(diff / b.total_cost * 100, 2) if b.total_cost else 0.0}
    if od_cumulative is not None:
        acc, cum = 0.0, []
        for v in plan.cost_by_month:
            acc += v
            cum.append(acc)
        for t in range(len(cum)):
            if all(cum[u] <= od_cumulative[u] + 0.01 for u in range(t, len(cum))):
                plan.break_even_month = plan.months[t]
                break
