"""Catalog × purchase options: eligibility, compliance filtering and dominance pruning."""

from __future__ import annotations

import pytest

from app.planner.build import build_problem, gpu_table, monthly_rate
from app.planner.demand import build_demand
from app.planner.options import PlannerSettings, candidate_options, prune_dominated
from app.planner.solver import solve
from app.requirements import load_example
from app.requirements.spec import WorkloadSpec


def spec_from(**overrides) -> WorkloadSpec:
    base = {
        "schema_version": "1",
        "name": "t",
        "lifecycle": {"start_month": "2027-01", "horizon_months": 12},
        "performance": {
            "training": [{"name": "ft", "reference_gpu": "H100", "gpu_hours": 2000, "deadline_days": 10,
                          "checkpointable": True}],
            "inference": [{"name": "api", "reference_gpu": "L4", "always_on_gpus": 2}],
        },
    }
    for path, value in overrides.items():
        node = base
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return WorkloadSpec.model_validate(base)


def options_for(spec, snapshot, **settings):
    demand = build_demand(spec, gpu_table(snapshot))
    return demand, candidate_options(spec, demand, snapshot, PlannerSettings(**settings))


def test_spot_only_for_interruptible_classes(snapshot) -> None:
    demand, opts = options_for(spec_from(), snapshot)
    interruptible = {cd.id for cd in demand.classes if cd.demand_class.interruptible}
    assert interruptible  # the checkpointable run
    spot = [c for c in opts.candidates if c.kind == "spot"]
    assert spot
    for c in spot:
        assert set(c.performance) <= interruptible


def test_memory_and_multi_node_eligibility(snapshot) -> None:
    spec = spec_from(**{"performance.training": [{
        "name": "big", "reference_gpu": "H100", "gpu_hours": 5000, "deadline_days": 5,
        "min_gpu_memory_gb": 80, "interconnect": "multi_node"}], "performance.inference": []})
    demand, opts = options_for(spec, snapshot)
    (cls,) = demand.classes
    assert opts.candidates
    for c in opts.candidates:
        gpu = snapshot.gpu(c.gpu_model)
        assert gpu.memory_gb >= 80
        if c.kind != "private":
            off = snapshot.offering(f"{c.provider}/{c.region}/{c.item}")
            assert off.interconnect == "nvlink" and off.gpu_count >= 8


def test_jurisdiction_filter(snapshot) -> None:
    spec = spec_from(**{"compliance.allowed_jurisdictions": ["EU"]})
    _, opts = options_for(spec, snapshot)
    assert opts.candidates
    for c in opts.candidates:
        assert c.jurisdiction == "EU", c.id


def test_private_only_without_capex_has_no_options_and_says_why(snapshot) -> None:
    spec = spec_from(**{"compliance.private_only": True, "cost.capex_allowed": True})
    _, opts = options_for(spec, snapshot)
    assert all(c.kind == "private" for c in opts.candidates)


def test_upfront_forbidden_drops_upfront_commitments(snapshot) -> None:
    spec = spec_from(**{"cost.upfront_payments_allowed": False})
    _, opts = options_for(spec, snapshot)
    assert all(c.upfront == 0 for c in opts.candidates if c.kind == "reserved")


def test_pruning_reports_counts_and_keeps_the_optimum(snapshot) -> None:
    spec = load_example("research-burst-deadline")
    pruned = build_problem(spec, snapshot, PlannerSettings(prune=True))
    full = build_problem(spec, snapshot, PlannerSettings(prune=False))
    assert pruned.options.pruned > 0
    assert len(pruned.problem.options) + pruned.options.pruned == len(full.problem.options)
    a = solve(pruned.problem, gap=0)
    b = solve(full.problem, gap=0, time_limit=120)
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-6)


def test_pruning_is_deterministic(snapshot) -> None:
    spec = spec_from()
    demand, opts = options_for(spec, snapshot)
    first = [c.id for c in prune_dominated(opts).candidates]
    second = [c.id for c in prune_dominated(opts).candidates]
    assert first == second


def test_monthly_rate() -> None:
    assert monthly_rate(0.0) == 0.0
    assert (1 + monthly_rate(0.08)) ** 12 == pytest.approx(1.08)
