"""Sensitivity of a plan and the cost-versus-deadline trade-off.

Every scenario re-solves the whole optimisation — the plan may change shape, not only its
price — and reports the objective next to the base case:

* demand ±20 % (every class, every month);
* prices per option type ±20 % (on-demand, spot, reservations, own servers: every money
  component of those options);
* spot interruption overhead 0 % and 30 % (instead of the assumption in the settings).

The trade-off curve scales every training run's deadline by a list of factors (default
¼, ½, ¾, 1, 1½, 2 — six points) and re-plans; shorter deadlines need more concurrent GPUs,
which matters once commitments, caps or budgets bind. Points that cannot be met are kept,
with the planner's explanation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from app.catalog.schema import Snapshot
from app.planner.build import build_problem
from app.planner.options import PlannerSettings
from app.planner.plan import make_plan
from app.planner.problem import CapacityProblem
from app.planner.solver import solve
from app.requirements.spec import WorkloadSpec

DEADLINE_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


class Scenario(BaseModel):
    name: str
    label: str
    status: str
    objective: float | None
    total_cost: float | None
    change_pct: float | None = Field(None, description="Objective change against the base case.")
    cost_by_kind: dict[str, float] = Field(default_factory=dict)
    explanation: str | None = None


class Sensitivity(BaseModel):
    base_objective: float | None
    objective_kind: str
    scenarios: list[Scenario]


class TradeoffPoint(BaseModel):
    factor: float
    deadline_days: dict[str, float] = Field(description="Per training run.")
    status: str
    total_cost: float | None
    npv: float | None
    peak_gpus: int = Field(description="Largest monthly peak, reference GPUs, all classes.")
    explanation: str | None = None


def _scale_prices(problem: CapacityProblem, kind: str, factor: float) -> CapacityProblem:
    p = problem.model_copy(deep=True)
    for o in p.options:
        if o.kind == kind:
            o.usage_price *= factor
            o.price_per_period *= factor
            o.upfront *= factor
            o.residual_value *= factor
            o.recurring_costs = {k: v * factor for k, v in o.recurring_costs.items()}
    return p


def _scale_demand(problem: CapacityProblem, factor: float) -> CapacityProblem:
    p = problem.model_copy(deep=True)
    p.demand = {k: [x * factor for x in v] if isinstance(v, list) else v * factor for k, v in p.demand.items()}
    if p.peak:
        p.peak = {k: [(x or 0) * factor for x in v] if isinstance(v, list) else v * factor for k, v in p.peak.items()}
    return p


def _spot_overhead(problem: CapacityProblem, overhead: float) -> CapacityProblem:
    p = problem.model_copy(deep=True)
    for o in p.options:
        if o.kind == "spot":
            o.interruption_overhead = overhead
    return p


def sensitivity(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings | None = None,
                *, progress: Callable[[int, int], None] | None = None) -> Sensitivity:
    """Re-solve the plan under each scenario of the module docstring."""
    settings = settings or PlannerSettings()
    built = build_problem(spec, snapshot, settings)
    base = built.problem
    variants: list[tuple[str, str, CapacityProblem]] = [
        ("demand-20", "Demand −20 %", _scale_demand(base, 0.8)),
        ("demand+20", "Demand +20 %", _scale_demand(base, 1.2)),
    ]
    kinds = sorted({o.kind for o in base.options})
    for kind in kinds:
        label = kind.replace("_", "-")
        variants.append((f"{kind}-price-20", f"{label} prices −20 %", _scale_prices(base, kind, 0.8)))
        variants.append((f"{kind}-price+20", f"{label} prices +20 %", _scale_prices(base, kind, 1.2)))
    if "spot" in kinds:
        variants.append(("spot-overhead-0", "Spot interruptions cost nothing", _spot_overhead(base, 0.0)))
        variants.append(("spot-overhead-30", "Spot interruptions cost 30 % extra work", _spot_overhead(base, 0.3)))

    def run(problem: CapacityProblem):
        return solve(problem, solver=settings.solver, time_limit=settings.time_limit_s, gap=settings.gap)

    total = len(variants) + 1
    base_result = run(base)
    if progress:
        progress(1, total)
    scenarios = []
    for i, (name, label, problem) in enumerate(variants, start=2):
        r = run(problem)
        by_kind: dict[str, float] = {}
        for o in r.options:
            if o.cost:
                by_kind[o.kind] = round(by_kind.get(o.kind, 0.0) + o.cost, 2)
        change = None
        if r.objective is not None and base_result.objective:
            change = round((r.objective - base_result.objective) / base_result.objective * 100, 2)
        scenarios.append(Scenario(
            name=name, label=label, status=r.status,
            objective=round(r.objective, 2) if r.objective is not None else None,
            total_cost=round(r.total_nominal_cost, 2) if r.total_nominal_cost is not None else None,
            change_pct=change, cost_by_kind=dict(sorted(by_kind.items())),
            explanation=(r.explanation or "").splitlines()[0] if r.status not in ("optimal", "feasible") else None,
        ))
        if progress:
            progress(i, total)
    return Sensitivity(base_objective=round(base_result.objective, 2) if base_result.objective is not None else None,
                       objective_kind=base_result.objective_kind, scenarios=scenarios)


def with_deadline_factor(spec: WorkloadSpec, factor: float) -> WorkloadSpec:
    """The spec with every training run's deadline multiplied by ``factor``."""
    runs = [r.model_copy(update={"deadline_days": max(0.01, round(r.deadline_days * factor, 4))})
            for r in spec.performance.training]
    perf = spec.performance.model_copy(update={"training": runs})
    return spec.model_copy(update={"performance": perf})


def deadline_tradeoff(spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings | None = None,
                      factors: Sequence[float] = DEADLINE_FACTORS,
                      *, progress: Callable[[int, int], None] | None = None) -> list[TradeoffPoint]:
    """Cost of the optimal plan for each deadline factor (see the module docstring)."""
    settings = settings or PlannerSettings()
    points = []
    for i, f in enumerate(sorted(set(factors)), start=1):
        s = with_deadline_factor(spec, f)
        plan = make_plan(s, snapshot, settings, baselines=False)
        peak = max((max(d["peak_gpus"] or [0]) for d in plan.demand), default=0)
        ok = plan.status in ("optimal", "feasible")
        points.append(TradeoffPoint(
            factor=f, deadline_days={r.name: r.deadline_days for r in s.performance.training},
            status=plan.status, total_cost=plan.total_cost if ok else None, npv=plan.npv if ok else None,
            peak_gpus=peak, explanation=None if ok else (plan.explanation or plan.message),
        ))
        if progress:
            progress(i, len(factors))
    return points
