"""Published capacity-purchase cases with known optimal costs.

* ``tests/data/reference_cases/*.yaml`` -- copies of the shared reference cases (read
  unmodified): ``expected.optimal_cost`` exactly, with HiGHS and CBC, and the LP
  relaxation values they give (``independent_value.lp_relaxation``), plus the
  "what other conventions would give" values of ``independent_value.sensitivity``,
  reproduced by switching the corresponding ``model_flags``.
* Further published values from the same two projects' test suites, written here in the
  CapacityProblem format (sources cited per case).
"""

from __future__ import annotations

import filecmp
import re
from pathlib import Path
from typing import Any

import pytest

from app.planner.problem import CapacityProblem
from app.planner.problem_io import load_problem
from app.planner.solver import solve

DATA = Path(__file__).resolve().parents[1] / "data" / "reference_cases"
SHARED = Path("/work/shared/reference_cases")
CASES = sorted(DATA.glob("*.yaml"))
SOLVERS = ["highs", "cbc"]


def test_the_shared_cases_are_present() -> None:
    assert {p.name for p in CASES} >= {
        "awsome-t02-on-demand-reserved.yaml",
        "awsome-t11-one-instance-type.yaml",
        "malloovia-problem1.yaml",
    }


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared reference cases not mounted")
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_copies_are_unmodified(path: Path) -> None:
    assert filecmp.cmp(path, SHARED / path.name, shallow=False)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_reproduces_expected_optimal_cost(path: Path, solver: str) -> None:
    problem = load_problem(path)
    expected = problem.expected or {}
    result = solve(problem, solver=solver)
    assert result.status == expected["status"]
    if result.status == "infeasible":
        assert result.shortfalls and result.explanation
        return
    assert result.objective == expected["optimal_cost"]  # exactly
    assert result.total_nominal_cost == expected["optimal_cost"]
    assert result.bound is not None and result.bound <= result.objective
    assert result.gap is not None and 0 <= result.gap < 1e-5
    # the reported cost breakdowns add up to the objective
    assert sum(o.cost for o in result.options) == pytest.approx(result.objective, abs=1e-9)
    assert sum(result.cost_by_period) + result.cost_after_horizon == pytest.approx(
        result.objective, abs=1e-9
    )
    assert sum(result.cost_by_category.values()) == pytest.approx(result.objective, abs=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_reproduces_lp_relaxation(path: Path, solver: str) -> None:
    problem = load_problem(path)
    lp = (problem.independent_value or {}).get("lp_relaxation") or {}
    value = lp.get(solver)
    if value is None:
        pytest.skip("the case gives no LP relaxation value")
    result = solve(problem, solver=solver, relax=True)
    assert result.status == "optimal"
    assert result.relaxed
    assert result.objective == pytest.approx(value, abs=1e-6)
    assert result.bound == result.objective  # LP: the bound is the objective


# --------------------------------------------------------------------------- sensitivity

# each phrase of independent_value.sensitivity -> the model_flags / option change it means
_SENSITIVITY: dict[str, dict[str, Any]] = {
    "savings-plan $ commitment continuous": {
        "flags": {"savings_plan_commitment_integer": False},
        "options": {"savings_plan": {"commitment_integer": False}},
    },
    "commitments prorated at the horizon end": {
        "flags": {"commitment_charge": "prorata_with_terminal_value"},
    },
    "reserved count allowed to change every period": {
        # a one-period term bought in any period = a count free to change every period;
        # still whole VMs per app (malloovia's per-app counts)
        "flags": {
            "reserved_mode": "purchase_any_period_rolling_term",
            "committed_assignment": "dedicated",
        },
        "all_reserved": {"term_periods": 1},
    },
    "reserved count shared across apps": {
        # bought once at period 0 for the horizon, whole units re-assigned between apps
        "flags": {
            "reserved_mode": "purchase_any_period_rolling_term",
            "committed_assignment": "dedicated",
        },
        "all_reserved": {"purchase_periods": [0]},
    },
}


def _sensitivity_params() -> list[Any]:
    params = []
    for path in CASES:
        problem = load_problem(path)
        for line in (problem.independent_value or {}).get("sensitivity", []):
            m = re.match(r"\s*(.*?)\s*(\(.*\))?\s*:\s*Optimal\s+([-0-9.]+)", line)
            if not m:
                continue
            params.append(
                pytest.param(path, m.group(1), float(m.group(3)), id=f"{path.stem}:{m.group(1)}")
            )
    return params


@pytest.mark.parametrize(("path", "phrase", "value"), _sensitivity_params())
def test_reproduces_sensitivity_values(path: Path, phrase: str, value: float) -> None:
    if phrase not in _SENSITIVITY:
        pytest.skip(f"no model_flags mapping written for: {phrase}")
    change = _SENSITIVITY[phrase]
    data = load_problem(path).model_dump()
    data["model_flags"].update(change.get("flags", {}))
    for opt in data["options"]:
        opt.update(change.get("options", {}).get(opt["name"], {}))
        if opt["kind"] == "reserved":
            opt.update(change.get("all_reserved", {}))
    problem = CapacityProblem.model_validate(data)
    for solver in SOLVERS:
        result = solve(problem, solver=solver)
        assert result.status == "optimal"
        assert result.objective == pytest.approx(value, abs=1e-9), solver


# --------------------------------------------------------------------------- more published values


def _awsome(
    od: dict[str, float], sp_rates: dict[str, float], term: int, demand: dict[str, list[int]]
) -> CapacityProblem:
    """AWSome-Savings ``py/build_simulation.py`` with on-demand and savings-plan configs."""
    options: list[dict[str, Any]] = [
        {
            "name": f"{k}_on_demand",
            "kind": "on_demand",
            "price_per_period": v,
            "performance": {k: 1},
        }
        for k, v in od.items()
    ]
    options.append(
        {
            "name": "savings_plan",
            "kind": "savings_plan",
            "price_per_period": 1,
            "term_periods": term,
            "rates": sp_rates,
            "performance": dict.fromkeys(sp_rates, 1),
            "commitment_integer": True,
        }
    )
    return CapacityProblem.model_validate(
        {
            "demand": demand,
            "options": options,
            "model_flags": {
                "reserved_mode": "purchase_any_period_rolling_term",
                "commitment_charge": "full_term_at_purchase_even_beyond_horizon",
                "savings_plan_commitment_integer": True,
                "integer": True,
            },
        }
    )


# ufcg-lsd/AWSome-Savings tests/test_aws_model.py (test name, on-demand $/h, savings-plan
# rate $/h per type, savings-plan duration h, demand per type per hour, published cost)
AWSOME = [
    ("test_savings_plan", {"a": 2, "b": 2}, {"a": 1, "b": 1}, 4,
     {"a": [10, 10, 5, 5], "b": [5, 5, 10, 10]}, 60),
    ("test_savings_plan_on_demand", {"a": 2, "b": 2}, {"a": 1, "b": 1}, 5,
     {"a": [10, 20, 20, 20, 20, 30], "b": [10, 20, 20, 20, 20, 30]}, 280),
    ("test_savings_plan_in_the_future", {"a": 20, "b": 20}, {"a": 1, "b": 1}, 5,
     {"a": [10, 10, 5, 5], "b": [5, 5, 10, 10]}, 75),
    ("test_savings_plan_reserve_different_durations_2", {"a": 4, "b": 4}, {"a": 1, "b": 1}, 4,
     {"a": [10, 7, 6, 12, 5, 5], "b": [5, 8, 9, 3, 4, 4]}, 96),
    ("test_savings_plan_different_prices", {"a": 4, "b": 4}, {"a": 3, "b": 1}, 4,
     {"a": [3, 4, 6, 0, 0, 0], "b": [0, 0, 0, 15, 20, 23]}, 120),
    ("test_one_instance_type", {"a": 2.2}, {"a": 1.2}, 2,
     {"a": [10, 15, 15, 10, 10, 10]}, 84),
    ("test_more_instances_total_demand", {"a": 1, "b": 1.3, "c": 2}, {"a": 0.7, "b": 0.9, "c": 1.3}, 3,
     {"a": [1, 2, 0], "b": [4, 1, 2], "c": [0, 5, 7]}, 29.9),
]  # fmt: skip


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("name", "od", "rates", "term", "demand", "cost"), AWSOME, ids=[c[0] for c in AWSOME]
)
def test_awsome_savings_plan_cases(name, od, rates, term, demand, cost, solver) -> None:
    result = solve(_awsome(od, rates, term, demand), solver=solver)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(cost, abs=1e-9)


def _malloovia(
    limiting_sets: list[dict[str, Any]], od: dict[str, Any], res: dict[str, Any]
) -> CapacityProblem:
    """asi-uniovi/malloovia tests/test_data/problems/problem{2,3}.yaml and test_malloovia.py."""
    perf = {"app0": 10, "app1": 500}
    return CapacityProblem.model_validate(
        {
            "demand": {"app0": [30, 32, 30, 30], "app1": [1003, 1200, 1194, 1003]},
            "limiting_sets": limiting_sets,
            "options": [
                {"name": "m3large", "kind": "on_demand", "price_per_period": 10, "performance": perf, **od},
                {"name": "m3large_r", "kind": "reserved", "price_per_period": 7, "term_periods": 4,
                 "performance": perf, **res},
            ],
            "model_flags": {
                "reserved_mode": "fixed_for_horizon_per_app",
                "on_demand_mode": "per_period_per_app",
                "commitment_charge": "price_per_period_times_periods",
            },
        }
    )  # fmt: skip


@pytest.mark.parametrize("solver", SOLVERS)
def test_malloovia_problem3_core_caps(solver: str) -> None:
    # TestProblemSolvingPhaseI.test_read_problem3_and_solve_it(_relaxed): 226 and 180
    p = _malloovia(
        [
            {"name": "Cloud1", "max_vms": 20, "max_cores": 20},
            {"name": "CloudR", "max_vms": 20, "max_cores": 10},
        ],
        {"cores": 2, "limits": {"max_vms": 20, "limiting_sets": ["Cloud1"]}},
        {"cores": 4, "limits": {"max_vms": 20, "limiting_sets": ["CloudR"]}},
    )
    assert solve(p, solver=solver).objective == 226
    assert solve(p, solver=solver, relax=True).objective == pytest.approx(180, abs=1e-9)


@pytest.mark.parametrize("relax", [False, True])
@pytest.mark.parametrize("solver", SOLVERS)
def test_malloovia_problem2_infeasible_even_relaxed(solver: str, relax: bool) -> None:
    # test_read_infeasible_problem2_and_solve_it(_relaxed)
    p = _malloovia(
        [{"name": "Cloud1", "max_vms": 1}, {"name": "CloudR", "max_vms": 1, "max_cores": 4}],
        {"limits": {"limiting_sets": ["Cloud1"]}},
        {"limits": {"max_vms": 20, "limiting_sets": ["CloudR"]}},
    )
    r = solve(p, solver=solver, relax=relax)
    assert r.status == "infeasible"
    assert r.shortfalls and r.explanation
    assert {s.name for s in r.shortfalls if s.kind.startswith("pool")} <= {"Cloud1", "CloudR"}


@pytest.mark.parametrize("solver", SOLVERS)
def test_malloovia_integer_infeasible(solver: str) -> None:
    # test_problem_with_undefined_solution: feasible as an LP, infeasible with whole VMs
    p = _malloovia(
        [
            {"name": "Cloud1", "max_vms": 20, "max_cores": 15},
            {"name": "CloudR", "max_vms": 20, "max_cores": 10},
        ],
        {"cores": 4, "limits": {"max_vms": 20, "limiting_sets": ["Cloud1"]}},
        {"cores": 4, "limits": {"max_vms": 20, "limiting_sets": ["CloudR"]}},
    )
    assert solve(p, solver=solver, relax=True).status == "optimal"
    r = solve(p, solver=solver)
    assert r.status == "infeasible"
    assert any(s.kind == "pool_cores" and s.name == "Cloud1" for s in r.shortfalls)


def test_malloovia_one_year_of_hourly_periods() -> None:
    # test_old_simple_case_one_region: 8760 hourly periods, optimum 1401600 with 2 reserved
    T = 365 * 24
    p = CapacityProblem.model_validate(
        {
            "periods": T,
            "demand": {"App0": 2000},
            "limiting_sets": [{"name": "Cloud1", "max_vms": 20}],
            "options": [
                {"name": "ondemand", "kind": "on_demand", "price_per_period": 100,
                 "performance": {"App0": 1000}, "limits": {"max_vms": 20, "limiting_sets": ["Cloud1"]}},
                {"name": "reserved", "kind": "reserved", "price_per_period": 80, "term_periods": T,
                 "performance": {"App0": 1000}, "limits": {"max_vms": 20, "limiting_sets": ["Cloud1"]}},
            ],
            "model_flags": {"reserved_mode": "fixed_for_horizon_per_app",
                            "commitment_charge": "price_per_period_times_periods"},
        }
    )  # fmt: skip
    r = solve(p)
    assert r.status == "optimal"
    assert r.objective == 1401600
    assert r.option("reserved").purchased_by_class == {"App0": 2}
