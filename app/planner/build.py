"""From requirements and a price snapshot to a generic :class:`CapacityProblem`.

Periods are the calendar months of the spec's horizon (``period_hours`` = actual hours of
each month). Demand classes are the :class:`~app.planner.demand.DemandProfile` classes:
energy demand in reference-GPU-hours, peak in concurrent reference GPUs. Each surviving
:class:`~app.planner.options.Candidate` becomes one :class:`~app.planner.problem.Option`
named by its candidate id; usage options have continuous hours, committed options
(reservations, own servers) integer units. Region and site caps become limiting sets that
count GPUs (``cores`` = GPUs per unit).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog.schema import Snapshot
from app.planner import problem as cp
from app.planner.demand import DemandProfile, build_demand
from app.planner.options import (
    Candidate,
    OptionSet,
    PlannerSettings,
    candidate_options,
    prune_dominated,
)
from app.requirements.spec import WorkloadSpec


@dataclass
class BuiltProblem:
    problem: cp.CapacityProblem
    demand: DemandProfile
    options: OptionSet
    by_name: dict[str, Candidate]


def monthly_rate(annual: float) -> float:
    """Monthly discount rate equivalent to an annual rate: (1 + r)^(1/12) - 1."""
    return (1.0 + annual) ** (1.0 / 12.0) - 1.0


def gpu_table(snapshot: Snapshot) -> dict:
    return {g.name: g for g in snapshot.gpus}


def _option(c: Candidate) -> cp.Option:
    common = dict(
        name=c.id, provider=c.provider, region=c.region, performance=dict(c.performance),
        cores=c.gpus_per_unit,
        limits=cp.OptionLimits(max_units=c.max_units, limiting_sets=[c.pool] if c.pool else []),
        description=f"{c.item} ({c.gpus_per_unit:g}× {c.gpu_model}) {c.kind}",
    )
    if c.kind in ("on_demand", "spot"):
        return cp.Option(kind=c.kind, usage_price=c.usage_hourly, integer=c.always_on, **common)
    if c.kind == "reserved":
        return cp.Option(kind="reserved", price_per_period=c.monthly, upfront=c.upfront,
                         term_periods=c.term_months, integer=True, **common)
    return cp.Option(kind="private", upfront=c.upfront, recurring_costs=dict(c.recurring),
                     term_periods=c.term_months, lead_time_periods=c.lead_time_months,
                     residual_value=c.residual_value, integer=True, site=c.region, **common)


def build_problem(
    spec: WorkloadSpec, snapshot: Snapshot, settings: PlannerSettings | None = None,
    *, demand: DemandProfile | None = None, demand_scale: float = 1.0,
) -> BuiltProblem:
    """Build the capacity problem for ``spec`` priced from ``snapshot``."""
    settings = settings or PlannerSettings()
    demand = demand or build_demand(spec, gpu_table(snapshot))
    options = candidate_options(spec, demand, snapshot, settings)
    if settings.prune:
        options = prune_dominated(options)
    classes = {cd.id: cd for cd in demand.classes if cd.total_gpu_hours > 0}

    pools = sorted({c.pool for c in options.candidates if c.pool})
    limiting_sets = []
    for pool in pools:
        if pool.startswith(tuple(f"{p}/" for p in ("aws", "gcp", "azure", "lambda"))):
            limiting_sets.append(cp.LimitingSet(name=pool, max_cores=settings.max_gpus_per_region,
                                                description=f"GPUs in {pool}"))
        else:
            limiting_sets.append(cp.LimitingSet(name=pool, max_units=settings.max_private_servers_per_site,
                                                description=f"servers at site {pool}"))

    rate = monthly_rate(spec.cost.discount_rate_annual)
    budget = None
    if spec.cost.total_budget or spec.cost.monthly_budget:
        budget = cp.Budget(total=spec.cost.total_budget, per_period=spec.cost.monthly_budget,
                           basis="nominal")
    problem = cp.CapacityProblem(
        name=spec.name[:200] or "plan",
        description=f"GPU capacity plan for {spec.name!r}",
        periods=demand.horizon_months,
        period_hours=list(demand.hours_in_month),
        period_labels=list(demand.months),
        demand_unit="reference GPUs",
        peak_unit="concurrent reference GPUs",
        demand={k: [h * demand_scale for h in cd.gpu_hours] for k, cd in classes.items()},
        peak={k: [p * demand_scale for p in cd.peak_gpus] for k, cd in classes.items()},
        classes={
            k: cp.DemandClass(description=cd.demand_class.label(),
                              interruptible=cd.demand_class.interruptible,
                              latency_bound=cd.demand_class.latency_bound)
            for k, cd in classes.items()
        },
        limiting_sets=limiting_sets,
        options=[_option(c) for c in options.candidates],
        budget=budget,
        objective=cp.ObjectiveSpec(kind=settings.objective if rate > 0 else "nominal",
                                   discount_rate_per_period=rate),
        model_flags=cp.ModelFlags(
            reserved_mode="purchase_any_period_rolling_term",
            private_mode="purchase_any_period_rolling_term",
            on_demand_mode="per_period_per_app",
            commitment_charge=settings.horizon_end,
            integer=True,
        ),
        metadata={"snapshot_id": snapshot.snapshot_id},
    )
    # Spot: interruption overhead and availability are per option.
    for o in problem.options:
        if o.kind == "spot":
            o.interruption_overhead = settings.spot_interruption_overhead
            o.availability = settings.spot_availability
    return BuiltProblem(problem=problem, demand=demand, options=options,
                        by_name={c.id: c for c in options.candidates})
