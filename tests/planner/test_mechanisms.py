"""Each mechanism of the capacity model on a small problem whose answer is checked by hand."""

from __future__ import annotations

import math

import pytest

from app.planner import solver as solver_mod
from app.planner.solver import SolveResult, solve
from tests.planner.factories import catalog_like, make, od, reserved

SOLVERS = ["highs", "cbc"]


def _plan(r: SolveResult) -> dict:
    """The result without timings, for run-to-run comparisons."""
    return r.model_dump(exclude={"build_seconds", "solve_seconds", "total_seconds"})


# --------------------------------------------------------------------------- reservations


@pytest.mark.parametrize("solver", SOLVERS)
def test_reservation_bought_in_any_period_is_active_for_its_term(solver: str) -> None:
    # 1 unit needed in each of 6 periods; a 3-period reservation (3 x $4 = $12) beats
    # on-demand ($10 per period) as soon as it is used twice.
    p = make(
        demand={"a": [1, 1, 1, 1, 1, 1]},
        options=[
            od(price=10, performance={"a": 1}),
            reserved(price=4, term=3, performance={"a": 1}),
        ],
    )
    r = solve(p, solver=solver)
    assert r.objective == 24
    res = r.option("res")
    assert res.purchased == [1, 0, 0, 1, 0, 0]
    assert res.active == [1, 1, 1, 1, 1, 1]
    assert res.cost_by_period == [4, 4, 4, 4, 4, 4]  # paid per period of the term


@pytest.mark.parametrize("solver", SOLVERS)
def test_reservation_is_paid_whether_used_or_not(solver: str) -> None:
    # demand only in periods 0..3: a second reservation would be idle for two of its
    # three paid periods, so one period goes on-demand: 12 + 10
    p = make(
        demand={"a": [1, 1, 1, 1, 0, 0]},
        options=[
            od(price=10, performance={"a": 1}),
            reserved(price=4, term=3, performance={"a": 1}),
        ],
        model_flags={"commitment_charge": "full_term_at_purchase_even_beyond_horizon"},
    )
    r = solve(p, solver=solver)
    assert r.objective == 22
    assert sum(r.option("res").purchased) == 1
    assert sum(r.option("od").usage_units) == 1
    # a unit needed only in the last period: a reservation ($3 x 3) is still cheaper than
    # on-demand ($10) even though two of its paid periods fall after the horizon
    late = {
        "demand": {"a": [0, 0, 0, 0, 0, 1]},
        "options": [od(price=10, performance={"a": 1}),
                    reserved(price=3, term=3, performance={"a": 1}, purchase_periods=[5])],
    }  # fmt: skip
    full = {"commitment_charge": "full_term_at_purchase_even_beyond_horizon"}
    r = solve(make(**late, model_flags=full), solver=solver)
    assert r.objective == 9 and r.option("res").purchased == [0, 0, 0, 0, 0, 1]
    assert r.option("res").cost_after_horizon == 6
    prorata = make(**late, model_flags={"commitment_charge": "prorata_with_terminal_value"})
    assert solve(prorata, solver=solver).objective == 3


def test_lead_time_delays_service() -> None:
    p = make(
        demand={"a": [1, 1, 1, 1]},
        options=[
            od(price=10, performance={"a": 1}),
            reserved(price=1, term=3, lead_time_periods=1, performance={"a": 1}),
        ],
    )
    r = solve(p)
    res = r.option("res")
    assert res.purchased == [1, 0, 0, 0]  # ordered in 0, in service 1..3
    assert res.active == [0, 1, 1, 1]
    assert r.option("od").usage_units == [1, 0, 0, 0]
    assert r.objective == 10 + 3


def test_fixed_for_horizon_per_app_dedicates_units_to_a_class() -> None:
    # two classes needing 0.5 unit each: one unit shared (time_shared) vs one per class
    base = {
        "demand": {"a": [0.5, 0.5], "b": [0.5, 0.5]},
        "options": [reserved(price=1, term=2, performance={"a": 1, "b": 1})],
    }
    shared = solve(make(**base))
    assert shared.objective == 2
    fixed = solve(make(**base, model_flags={"reserved_mode": "fixed_for_horizon_per_app"}))
    assert fixed.objective == 4
    assert fixed.option("res").purchased_by_class == {"a": 1, "b": 1}


def test_on_demand_mode_per_period_shares_one_integer_count() -> None:
    base = {
        "demand": {"a": [0.5], "b": [0.5]},
        "options": [od(price=10, performance={"a": 1, "b": 1})],
    }
    assert solve(make(**base)).objective == 20  # per_period_per_app: a whole unit per class
    shared = solve(make(**base, model_flags={"on_demand_mode": "per_period"}))
    assert shared.objective == 10
    assert shared.option("od").active == [1]


# --------------------------------------------------------------------------- savings plans


@pytest.mark.parametrize("unit", ["$ per hour", "$ per period"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_savings_plan_discounts_eligible_usage(solver: str, unit: str) -> None:
    # 10-hour periods, 50 unit-hours per period = 5 units. On-demand $2/unit-hour costs
    # 2 x 10 x 5 x 2 periods = $200. A plan covering that option at $1.2/unit-hour needs
    # $6/h (= $60 per period) committed for 2 periods: $120.
    commit = 6 if unit == "$ per hour" else 60
    p = make(
        period_hours=10,
        demand={"a": [50, 50]},
        options=[
            {"name": "od", "kind": "on_demand", "usage_price": 2, "performance": {"a": 1}},
            {"name": "sp", "kind": "savings_plan", "price_per_period": 1, "term_periods": 2,
             "rates": {"od": 1.2}, "commitment_unit": unit},
        ],
    )  # fmt: skip
    r = solve(p, solver=solver)
    assert r.objective == pytest.approx(120)
    assert r.option("sp").purchased == [commit, 0]
    assert r.option("sp").active == [commit, commit]
    assert r.option("od").covered_by_savings_plans == [5, 5]
    assert r.option("od").cost == 0
    assert r.cost_by_category == {"commitment": pytest.approx(120)}


def test_savings_plan_only_partly_used_is_still_paid() -> None:
    # demand 5 units then 0: a 2-period plan would pay $6 twice for one period of use
    # (12 > 10 on-demand), so on-demand wins
    p = make(
        demand={"a": [5, 0]},
        options=[
            od(price=2, performance={"a": 1}),
            {"name": "sp", "kind": "savings_plan", "price_per_period": 1, "term_periods": 2,
             "rates": {"od": 1.2}, "commitment_integer": True},
        ],
        model_flags={"commitment_charge": "full_term_at_purchase_even_beyond_horizon"},
    )  # fmt: skip
    r = solve(p)
    assert r.objective == 10
    assert "sp" not in {o.name for o in r.options}


# --------------------------------------------------------------------------- spot

_SPOT = {"name": "spot", "kind": "spot", "price_per_period": 4, "performance": {"train": 1}}


def test_spot_needs_overhead_hours_and_respects_availability() -> None:
    # 10 units of work; spot needs 1.25x hours, at most 0.5 x 8 = 4 spot units obtainable:
    # 4 spot units deliver 3.2, on-demand the remaining 6.8 -> 16 + 68
    p = make(
        demand={"train": [10]},
        classes={"train": {"interruptible": True}},
        options=[
            od(price=10, performance={"train": 1}),
            {
                **_SPOT,
                "interruption_overhead": 0.25,
                "availability": 0.5,
                "limits": {"max_units": 8},
            },
        ],
        model_flags={"integer": False},
    )
    r = solve(p)
    assert r.option("spot").usage_units == [pytest.approx(4)]
    assert r.option("od").usage_units == [pytest.approx(6.8)]
    assert r.objective == pytest.approx(84)


def test_spot_alone_pays_the_overhead() -> None:
    p = make(
        demand={"train": [10]},
        classes={"train": {"interruptible": True}},
        options=[od(price=10, performance={"train": 1}), {**_SPOT, "interruption_overhead": 0.25}],
        model_flags={"integer": False},
    )
    r = solve(p)
    assert r.option("spot").usage_hours == [pytest.approx(12.5)]
    assert r.objective == pytest.approx(50)


def test_spot_serves_only_interruptible_classes() -> None:
    p = make(
        demand={"train": [10]},
        options=[od(price=10, performance={"train": 1}), _SPOT],  # class not interruptible
    )
    r = solve(p)
    assert r.objective == 100
    assert [o.name for o in r.options] == ["od"]


@pytest.mark.parametrize("latency_bound", [True, False])
def test_spot_never_counts_toward_a_latency_bound_peak(latency_bound: bool) -> None:
    # energy 2 unit-hours, peak 10 units; on-demand capped at 4 units, spot uncapped and
    # cheap. Latency-bound: spot cannot cover the peak, so 6 reserved units ($8) are
    # needed (they also serve the energy). Otherwise spot covers the peak for free.
    p = make(
        demand={"serve": [2]},
        peak={"serve": [10]},
        classes={"serve": {"interruptible": True, "latency_bound": latency_bound}},
        options=[
            od(price=10, performance={"serve": 1}, limits={"max_units": 4}),
            {**_SPOT, "price_per_period": 1, "performance": {"serve": 1}},
            reserved(price=8, term=1, performance={"serve": 1}),
        ],
    )
    r = solve(p)
    if latency_bound:
        assert r.option("res").purchased == [6]
        assert r.objective == 48
        assert r.option("od").peak_units == {"serve": [4]}
    else:
        assert r.objective == 2
        assert "res" not in {o.name for o in r.options}


def test_peak_hours_make_usage_peak_units_paid() -> None:
    # peak 4 units lasting 10 h of a 100-h period, energy 40 unit-hours: with
    # peak_hours=10 the 4 on-demand units covering the peak are paid >= 10 h each (40)
    p = make(
        period_hours=100,
        demand={"s": [40]},
        peak={"s": [4]},
        classes={"s": {"peak_hours": 10}},
        options=[{"name": "od", "kind": "on_demand", "usage_price": 1, "performance": {"s": 1},
                  "integer": False, "limits": {"max_units": 100}}],
    )  # fmt: skip
    r = solve(p)
    assert r.objective == pytest.approx(40)
    p2 = p.model_copy(update={"demand": {"s": [10]}})
    assert solve(p2).objective == pytest.approx(40)  # energy alone would cost 10


# --------------------------------------------------------------------------- private / owned

_SERVER = {
    "name": "srv", "kind": "private", "upfront": 120, "term_periods": 6, "lead_time_periods": 2,
    "residual_value": 30, "recurring_costs": {"power": 3, "colocation": 2},
    "performance": {"a": 1},
}  # fmt: skip


def _private(convention: str, **server: object) -> SolveResult:
    p = make(
        demand={"a": [1, 1, 1, 1, 1, 1]},
        options=[od(price=100, performance={"a": 1}), {**_SERVER, **server}],
        model_flags={"commitment_charge": convention},
    )
    return solve(p)


def test_private_lead_time_and_residual_value_prorata() -> None:
    # ordered in 0, serves 2..5 (on-demand covers 0 and 1). At the horizon end the server
    # is 4 of 6 periods old: value 120 - (120 - 30) * 4/6 = 60, credited.
    r = _private("prorata_with_terminal_value")
    srv = r.option("srv")
    assert srv.purchased == [1, 0, 0, 0, 0, 0]
    assert srv.active == [0, 0, 1, 1, 1, 1]
    assert srv.cost_by_category == {"upfront": 120, "recurring": 20, "residual": -60}
    assert srv.cost == 80
    assert r.option("od").usage_units == [1, 1, 0, 0, 0, 0]
    assert r.objective == 280


def test_horizon_end_conventions() -> None:
    # full term: 120 + 5 x 6 periods - 30 salvage at the end of life (period 7, after the
    # horizon) = 120; recurring and salvage after the horizon are reported separately
    full = _private("full_term_at_purchase_even_beyond_horizon")
    assert full.objective == 200 + 120
    assert full.option("srv").cost_after_horizon == 10 - 30
    # forbid: a 6-period life starting in period 2 ends after the horizon -> on-demand only
    forbid = _private("forbid_past_horizon")
    assert forbid.objective == 600
    assert "srv" not in {o.name for o in forbid.options}
    # a shorter life fits: bought in 0, serves 2..5, salvage 30 at the end
    fits = _private("forbid_past_horizon", term_periods=4)
    assert fits.objective == 200 + 120 + 20 - 30
    # in-horizon recurring only, upfront in full, no terminal value
    ppp = _private("price_per_period_times_periods")
    assert ppp.objective == 200 + 120 + 20


def test_financed_capex() -> None:
    # 120 over 4 periods at 10%: instalment 120*0.1/(1-1.1**-4) = 37.856...
    a = 120 * 0.1 / (1 - 1.1**-4)
    r = _private(
        "full_term_at_purchase_even_beyond_horizon",
        financing={"periods": 4, "rate_per_period": 0.1},
    )
    srv = r.option("srv")
    assert srv.cost_by_category["financing"] == pytest.approx(4 * a)
    assert srv.cost_by_period[:4] == [pytest.approx(a)] * 2 + [pytest.approx(a + 5)] * 2
    # prorata: instalments in the horizon, the balance is paid off at its end
    r2 = _private("prorata_with_terminal_value", financing={"periods": 10, "rate_per_period": 0.0})
    assert r2.option("srv").cost_by_category["financing"] == pytest.approx(120)
    # last period: instalment 12 + payoff of the balance 48 + recurring 5 - value 60
    assert r2.option("srv").cost_by_period[-1] == pytest.approx(12 + 48 + 5 - 60)


# --------------------------------------------------------------------------- budgets


def _budget(**budget: object) -> SolveResult:
    # reservation: $90 upfront for 3 periods; on-demand $40 per period
    p = make(
        demand={"a": [1, 1, 1]},
        options=[od(price=40, performance={"a": 1}),
                 {"name": "res", "kind": "reserved", "upfront": 90, "term_periods": 3, "performance": {"a": 1}}],
        budget=budget or None,
    )  # fmt: skip
    return solve(p)


def test_per_period_budget_forbids_a_large_upfront() -> None:
    assert _budget().objective == 90
    capped = _budget(per_period=50)
    assert capped.status == "optimal"
    assert capped.objective == 120
    assert max(capped.cost_by_period) <= 50


def test_total_budget_below_the_optimum_is_explained() -> None:
    r = _budget(total=60)
    assert r.status == "infeasible"
    budget = [s for s in r.shortfalls if s.kind == "budget_total"]
    assert len(budget) == 1
    assert budget[0].shortfall == pytest.approx(30)
    assert budget[0].available == 60 and budget[0].required == pytest.approx(90)
    assert "raise the total budget by 30" in (r.explanation or "")


# --------------------------------------------------------------------------- NPV


def test_npv_discounts_per_period_flows_at_period_end() -> None:
    # reserved: $190 upfront (start of period 0) for 2 periods; on-demand $100 per period
    # paid at the end of each period. Nominal: 190 < 200. NPV at 10%:
    # 100/1.1 + 100/1.21 = 173.55 < 190.
    base = {
        "demand": {"a": [1, 1]},
        "options": [od(price=100, performance={"a": 1}),
                    {"name": "res", "kind": "reserved", "upfront": 190, "term_periods": 2,
                     "performance": {"a": 1}}],
    }  # fmt: skip
    nominal = solve(make(**base, objective={"discount_rate_per_period": 0.1}))
    assert nominal.objective == 190
    assert nominal.npv == pytest.approx(190)  # upfront at the start of period 0
    npv = solve(make(**base, objective={"kind": "npv", "discount_rate_per_period": 0.1}))
    assert npv.objective_kind == "npv"
    assert npv.objective == pytest.approx(100 / 1.1 + 100 / 1.21)
    assert npv.total_nominal_cost == 200
    # per-period flows at the start of the period: 100 + 100/1.1 = 190.9 > 190
    start = solve(
        make(
            **base,
            objective={"kind": "npv", "discount_rate_per_period": 0.1, "per_period_flows": "start"},
        )
    )
    assert start.objective == pytest.approx(190)


# --------------------------------------------------------------------------- determinism


def test_ties_are_broken_deterministically() -> None:
    # two identical options: the first listed wins, with either solver, every run
    opts = [
        od("first", price=10, performance={"a": 1}),
        od("second", price=10, performance={"a": 1}),
    ]
    p = make(demand={"a": [3, 3]}, options=opts)
    runs = [_plan(solve(p)) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert [o["name"] for o in runs[0]["options"]] == ["first"]
    assert [o.name for o in solve(p, solver="cbc").options] == ["first"]
    swapped = make(demand={"a": [3, 3]}, options=opts[::-1])
    assert [o.name for o in solve(swapped).options] == ["second"]


def test_same_plan_run_to_run_on_a_larger_problem() -> None:
    p = catalog_like(n_gpu=4, periods=6)
    a, b = _plan(solve(p)), _plan(solve(p))
    assert a == b


# --------------------------------------------------------------------------- infeasibility


def test_infeasible_peak_explains_the_exact_shortfall() -> None:
    p = make(
        demand={"train-h100": [10, 10, 10, 10]},
        peak={"train-h100": [8, 8, 8, 512]},
        limiting_sets=[{"name": "aws-us", "max_units": 256}],
        options=[od("h100-od", price=30, performance={"train-h100": 1},
                    limits={"limiting_sets": ["aws-us"]})],
    )  # fmt: skip
    for solver in SOLVERS:
        r = solve(p, solver=solver)
        assert r.status == "infeasible"
        assert r.objective is None
        (demand,) = [s for s in r.shortfalls if s.kind == "peak_demand"]
        assert (
            demand.name,
            demand.period,
            demand.required,
            demand.available,
            demand.shortfall,
        ) == (
            "train-h100",
            3,
            512,
            256,
            256,
        )
        (cap,) = [s for s in r.shortfalls if s.kind.startswith("pool")]
        assert (cap.name, cap.period, cap.available, cap.required, cap.shortfall) == (
            "aws-us",
            3,
            256,
            512,
            256,
        )
        text = r.explanation or ""
        assert "class train-h100 needs 512 concurrent units at its peak in period 3" in text
        assert "raise the max units (at the peak) of limiting set 'aws-us' by 256" in text
        assert "relax the demand by 256" in text


def test_structural_infeasibility_names_the_lead_time() -> None:
    p = make(
        demand={"a": [1, 1, 1]},
        options=[{**_SERVER, "term_periods": 3}],
    )
    r = solve(p)
    assert r.status == "infeasible"
    assert [(s.period, s.shortfall) for s in r.shortfalls] == [(0, 1), (1, 1)]
    assert "no cap or budget increase helps" in (r.explanation or "")
    assert "lead time" in (r.explanation or "")


def test_no_eligible_option_is_explained() -> None:
    r = solve(make(demand={"a": [1], "b": [2]}, options=[od(performance={"a": 1})]))
    assert r.status == "infeasible"
    assert [(s.name, s.shortfall) for s in r.shortfalls] == [("b", 2)]
    assert "no option can serve class b" in (r.explanation or "")


# --------------------------------------------------------------------------- status reporting


@pytest.mark.parametrize("solver", SOLVERS)
def test_time_limited_run_reports_feasible_with_bound_and_gap(solver: str) -> None:
    p = catalog_like(n_gpu=6, periods=24)
    r = solve(p, solver=solver, time_limit=1.0, gap=0.0)
    assert r.status == "feasible"
    assert r.objective is not None and r.bound is not None
    assert r.bound < r.objective
    assert r.gap == pytest.approx((r.objective - r.bound) / r.objective)
    assert r.gap > 0
    assert "not proven optimal" in r.message


def test_stop_without_any_plan_is_an_error_not_infeasible(monkeypatch: pytest.MonkeyPatch) -> None:
    original = solver_mod._HiGHS.callSolver

    def no_time(self, lp):
        lp.solverModel.setOptionValue("time_limit", 1e-9)
        original(self, lp)

    monkeypatch.setattr(solver_mod._HiGHS, "callSolver", no_time)
    r = solve(catalog_like(n_gpu=6, periods=24))
    assert r.status == "error"
    assert "without a feasible plan" in r.message
    assert r.objective is None


def test_highs_failure_falls_back_to_cbc(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulp

    def boom(*args, **kwargs):
        raise pulp.PulpSolverError("mocked HiGHS failure")

    monkeypatch.setattr(solver_mod, "_run_highs", boom)
    r = solve(make(demand={"a": [1]}, options=[od(performance={"a": 1})]))
    assert r.status == "optimal" and r.solver == "cbc"
    assert "HiGHS failed" in r.message


def test_lp_relaxation_bound_equals_objective() -> None:
    p = catalog_like(n_gpu=3, periods=6)
    lp = solve(p, relax=True)
    mip = solve(p)
    assert lp.status == "optimal" and lp.relaxed
    assert lp.bound == lp.objective
    assert lp.stats is not None and lp.stats.integer_variables == 0
    assert lp.objective <= mip.objective + 1e-6
    assert mip.bound is not None and mip.bound <= mip.objective


# --------------------------------------------------------------------------- time units


def test_period_lengths_scale_hourly_prices_and_energy() -> None:
    # months of 720 and 744 h; 1 unit all month long; $2/unit-hour on-demand
    p = make(
        period_hours=[720, 744],
        demand_basis="level",
        demand={"a": [1, 1]},
        options=[{"name": "od", "kind": "on_demand", "usage_price": 2, "performance": {"a": 1}}],
    )
    r = solve(p)
    assert r.objective == 2 * (720 + 744)
    assert r.option("od").usage_hours == [720, 744]


def test_energy_demand_in_unit_hours() -> None:
    p = make(
        period_hours=[720],
        demand={"a": [360]},
        options=[{"name": "od", "kind": "on_demand", "usage_price": 2, "performance": {"a": 1},
                  "integer": False}],
    )  # fmt: skip
    r = solve(p)
    assert r.option("od").usage_units == [0.5]
    assert r.objective == 720
    assert math.isclose(r.option("od").usage_hours[0], 360)
