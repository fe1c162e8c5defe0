"""Properties on small random problems (hypothesis, derandomized, no deadline)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.planner.problem import CapacityProblem
from app.planner.solver import SolveResult, solve

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REL = 1e-5  # tie-break perturbation (1e-6) and float noise


@st.composite
def problems(draw: st.DrawFn) -> CapacityProblem:
    T = draw(st.integers(1, 4))
    hours = draw(st.sampled_from([1.0, 10.0, [10.0, 12.0, 11.0, 9.0][:T]]))
    n_cls = draw(st.integers(1, 2))
    classes = [f"c{i}" for i in range(n_cls)]
    demand = {c: [draw(st.integers(0, 12)) for _ in range(T)] for c in classes}
    class_info = {
        c: {"interruptible": draw(st.booleans()), "latency_bound": draw(st.booleans())}
        for c in classes
    }
    peak = None
    if draw(st.booleans()):
        peak = {c: [draw(st.integers(0, 15)) for _ in range(T)] for c in classes}
    perf = {c: draw(st.sampled_from([1.0, 2.0, 0.5])) for c in classes}
    options: list[dict[str, Any]] = [
        # always there, uncapped, serves everything: the all-on-demand baseline
        {"name": "od", "kind": "on_demand", "price_per_period": draw(st.sampled_from([5.0, 10.0])),
         "performance": perf, "limits": {"max_units": draw(st.sampled_from([None, None, 8]))}},
    ]  # fmt: skip
    if draw(st.booleans()):
        options.append(
            {"name": "res", "kind": "reserved", "price_per_period": draw(st.sampled_from([2.0, 4.0, 6.0])),
             "upfront": draw(st.sampled_from([0.0, 5.0])), "term_periods": draw(st.integers(1, T + 1)),
             "performance": {c: draw(st.sampled_from([1.0, 2.0])) for c in classes}}
        )  # fmt: skip
    if draw(st.booleans()):
        options.append(
            {"name": "spot", "kind": "spot", "price_per_period": 2.0,
             "interruption_overhead": draw(st.sampled_from([0.0, 0.25])),
             "availability": draw(st.sampled_from([0.5, 1.0])),
             "limits": {"max_units": draw(st.sampled_from([2, 6]))}, "performance": perf}
        )  # fmt: skip
    if draw(st.booleans()):
        options.append(
            {"name": "sp", "kind": "savings_plan", "price_per_period": 1.0,
             "term_periods": draw(st.integers(1, T + 1)), "rates": {"od": draw(st.sampled_from([0.6, 0.8]))},
             "commitment_unit": draw(st.sampled_from(["$ per period", "$ per hour"]))}
        )  # fmt: skip
    if draw(st.booleans()):
        options.append(
            {"name": "srv", "kind": "private", "upfront": draw(st.sampled_from([10.0, 30.0])),
             "term_periods": draw(st.integers(1, 6)), "lead_time_periods": draw(st.integers(0, 1)),
             "residual_value": draw(st.sampled_from([0.0, 5.0])), "recurring_costs": {"power": 1.0},
             "performance": {c: 2.0 for c in classes}, "limits": {"limiting_sets": ["site"]}}
        )  # fmt: skip
    return CapacityProblem.model_validate(
        {
            "periods": T,
            "period_hours": hours,
            "demand": demand,
            "peak": peak,
            "classes": class_info,
            "limiting_sets": [{"name": "site", "max_units": draw(st.sampled_from([None, 3]))}],
            "options": options,
            "objective": {
                "kind": draw(st.sampled_from(["nominal", "npv"])),
                "discount_rate_per_period": draw(st.sampled_from([0.0, 0.05])),
            },
            "model_flags": {
                "commitment_charge": draw(st.sampled_from([
                    "full_term_at_purchase_even_beyond_horizon", "prorata_with_terminal_value",
                    "forbid_past_horizon", "price_per_period_times_periods"])),
                "integer": draw(st.booleans()),
                "committed_assignment": draw(st.sampled_from(["time_shared", "dedicated"])),
                "on_demand_mode": draw(st.sampled_from(["per_period_per_app", "per_period"])),
                "savings_plan_commitment_integer": draw(st.booleans()),
            },
        }
    )  # fmt: skip


def _all_on_demand(p: CapacityProblem) -> float:
    """Cost of serving everything with the uncapped on-demand option alone."""
    o = p.option_by_name("od")
    hours = p.hours()
    unit_cost = [o.price_per_period + o.usage_price * h for h in hours]
    integer = p.model_flags.integer
    shared = p.model_flags.on_demand_mode == "per_period"
    energy = p.energy_demand()
    peak = p.peak_demand()
    total = 0.0
    for t in range(p.n_periods):
        need = {c: energy[c][t] / hours[t] / o.performance[c] for c in p.class_names}
        for c in peak:
            need[c] = max(need[c], 0.0)  # usage capacity covers peaks for free (uncapped)
        if integer and shared:
            units = math.ceil(sum(need.values()) - 1e-9)
        elif integer:
            units = sum(math.ceil(v - 1e-9) for v in need.values())
        else:
            units = sum(need.values())
        total += units * unit_cost[t]
    return total


def _objective_of(p: CapacityProblem, r: SolveResult) -> float:
    assert r.objective is not None
    return r.objective


def _check_plan(p: CapacityProblem, r: SolveResult) -> None:
    """The reported plan serves the energy demand and its costs add up."""
    assert r.total_nominal_cost is not None
    assert sum(o.cost for o in r.options) == pytest.approx(r.total_nominal_cost, rel=1e-9, abs=1e-6)
    assert sum(r.cost_by_period) + r.cost_after_horizon == pytest.approx(
        r.total_nominal_cost, rel=1e-9, abs=1e-6
    )
    hours = p.hours()
    energy = p.energy_demand()
    od = p.option_by_name("od")
    for c in p.class_names:
        for t in range(p.n_periods):
            supplied = 0.0
            for res in r.options:
                units = res.assigned.get(c, [0.0] * p.n_periods)[t]
                opt = p.option_by_name(res.name)
                if opt.kind == "savings_plan":
                    perf, eff = od.performance[c], 1.0  # the plans here cover `od`
                else:
                    perf = opt.performance.get(c, 0.0)
                    eff = 1 / (1 + opt.interruption_overhead)
                supplied += units * perf * eff * hours[t]
            assert supplied >= energy[c][t] - 1e-6 * max(1.0, energy[c][t])
    # peaks: committed units assigned to the class plus usage units counted at its peak
    peak = p.peak_demand()
    od_opt = p.option_by_name("od")
    for c, need in peak.items():
        for t in range(p.n_periods):
            supplied = 0.0
            for res in r.options:
                opt = p.option_by_name(res.name)
                perf = opt.performance.get(c, 0.0) if opt.kind != "savings_plan" else 0.0
                if opt.kind in ("reserved", "private"):
                    supplied += res.assigned.get(c, [0.0] * p.n_periods)[t] * perf
                else:
                    y = res.peak_units.get(c, [0.0] * p.n_periods)[t]
                    if opt.kind == "spot" and p.class_info(c).latency_bound:
                        assert y == 0
                    supplied += y * perf
            # an uncapped on-demand option covers any peak at no extra cost (no rows)
            free = od_opt.limits.max_units is None and od_opt.performance.get(c, 0) > 0
            if not free:
                assert supplied >= need[t] - 1e-6 * max(1.0, need[t]), (c, t)


@SETTINGS
@given(problems())
def test_never_dearer_than_all_on_demand(p: CapacityProblem) -> None:
    r = solve(p, gap=1e-9)
    if p.option_by_name("od").limits.max_units is not None and r.status == "infeasible":
        assert r.shortfalls and r.explanation
        return
    assert r.status == "optimal"
    _check_plan(p, r)
    baseline = _all_on_demand(p)
    if p.objective.kind == "nominal" and p.option_by_name("od").limits.max_units is None:
        assert r.objective <= baseline * (1 + REL) + 1e-6
    # the optimum is never above any single option used alone (when that is feasible)
    for o in p.options:
        try:
            alone = CapacityProblem.model_validate({**p.model_dump(), "options": [o.model_dump()]})
        except ValueError:
            continue  # e.g. a savings plan without the option it pays for
        ra = solve(alone, gap=1e-9, explain=False)
        if ra.status == "optimal":
            assert _objective_of(p, r) <= _objective_of(alone, ra) * (1 + REL) + 1e-6


@SETTINGS
@given(problems(), st.sampled_from(["highs", "cbc"]))
def test_bound_never_exceeds_objective_and_lp_below_milp(p: CapacityProblem, solver: str) -> None:
    r = solve(p, solver=solver, gap=1e-9, explain=False)
    if r.status == "infeasible":
        assert solve(p, solver=solver, relax=True, explain=False).status in (
            "optimal",
            "infeasible",
        )
        return
    assert r.status == "optimal"
    assert r.bound is not None and r.bound <= r.objective
    assert 0 <= r.gap <= 1e-5
    lp = solve(p, solver=solver, relax=True)
    assert lp.status == "optimal"
    assert lp.bound == lp.objective
    assert lp.objective <= r.objective * (1 + REL) + 1e-6


@SETTINGS
@given(problems(), st.floats(0.3, 1.5), st.floats(1.0, 3.0))
def test_raising_a_budget_never_raises_cost(
    p: CapacityProblem, frac: float, raise_by: float
) -> None:
    free = solve(p, gap=1e-9, explain=False)
    if free.status == "infeasible":
        return
    assert free.status == "optimal"
    peak_spend = max(free.cost_by_period) if free.cost_by_period else 0.0
    results = []
    for factor in (frac, frac * raise_by):
        budget = {"per_period": max(peak_spend, 1.0) * factor}
        q = p.model_copy(update={"budget": CapacityProblem.model_validate(
            {**p.model_dump(), "budget": budget}).budget})  # fmt: skip
        results.append(solve(q, gap=1e-9, explain=False))
    low, high = results
    if low.status == "optimal":
        assert high.status == "optimal"
        assert high.objective <= low.objective * (1 + REL) + 1e-6
    assert high.status in ("optimal", "infeasible")
    if high.status == "optimal":
        assert free.objective <= high.objective * (1 + REL) + 1e-6
