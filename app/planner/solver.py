r"""MILP for a :class:`~app.planner.problem.CapacityProblem`, built with PuLP, solved with HiGHS.

Notation
========
``t = 0..T-1`` periods of ``H_t`` hours (``H_t = H_{T-1}`` after the horizon), ``c`` demand
classes, ``o`` options, ``perf[o,c]`` capacity of one unit of ``o`` for ``c`` (0 = not
eligible; spot needs an interruptible class), ``eff[o] = 1/(1+interruption_overhead)``
for spot, 1 otherwise. ``E[c,t]`` energy demand (demand_unit-hours), ``P[c,t]`` peak.

Variables (all >= 0; integer where the problem says so, continuous with ``relax=True``)
=========
* usage options (on_demand, spot): ``x[o,c,t]`` average units of ``o`` running for ``c`` in
  ``t`` (= hours used / ``H_t``); with ``on_demand_mode: per_period`` and integer counts, a
  paid integer count ``n[o,t] >= sum_c x[o,c,t]`` (x continuous).
* reserved / private, ``purchase_any_period_rolling_term``: ``b[o,s]`` units bought in ``s``;
  units in service ``act[o,t] = sum_{s : s+L <= t < s+L+m} b[o,s]`` (lead time ``L``, term
  ``m``): a unit ordered in ``s`` serves in ``s+L .. s+L+m-1``. ``act`` is used as that window
  sum directly when it has at most ``ACT_INLINE_MAX`` terms, otherwise through a variable
  defined by it (fewer nonzeros; the dual simplex handles these much better than a
  period-to-period recursion). A single-class option serves with ``act`` directly. Units
  serving several classes are split between them: with ``committed_assignment:
  dedicated``, by whole units ``a[o,c,t]``, ``sum_c a[o,c,t] <= act[o,t]``; time-shared
  (default), by ``z[g,c,t]`` per group ``g`` of options whose per-class performance vectors
  are proportional (``perf[o,c] = s_o * v_c``, e.g. one GPU model under several terms and
  providers): ``sum_c z[g,c,t] <= sum_{o in g} s_o * act[o,t]``, class ``c`` receiving
  ``v_c * z[g,c,t]`` -- exactly a per-option split, with far fewer columns.
* reserved / private, ``fixed_for_horizon_per_app``: ``nf[o,c]`` units bought in period 0
  for class ``c`` and dedicated to it, in service from ``L`` to the horizon end.
* savings plans: ``k[p,s]`` committed units ($ per period or per hour) bought in ``s``;
  ``sact[p,t]`` active commitment (same window sums); coverage ``cov[p,l,t]`` units covered
  on lane ``l`` = (class ``c``, served with the plan's performance) or (usage option ``o``,
  class ``c``: the plan pays for that option's usage, which keeps its caps):
  ``sum_l rate_l * H_t * cov[p,l,t] <= scale_t * sact[p,t]`` (``scale_t = 1`` for "$ per
  period", ``H_t`` for "$ per hour").
* peak coverage by usage-priced capacity: ``y[u,c,t]`` concurrent units of usage source ``u``
  (a usage option, or a savings plan's class lane) at the peak of ``c`` in ``t``. Spot has
  no ``y`` for a latency-bound class. If the class has ``peak_hours > 0``:
  ``H_t * (x + cov)[u,c,t] >= peak_hours * y[u,c,t]`` (the peak units are paid at least that
  long). When an uncapped usage source with ``peak_hours = 0`` can serve ``c``, the peak of
  ``c`` is satisfiable for free and its rows are omitted. Sources without their own cap
  (and ``peak_hours = 0``) are interchangeable up to performance, so they are pooled: one
  ``Y[g,c,t]`` per group of equal capped limiting sets, counted with the best performance
  in the group (an exact aggregation).

Exact reductions: a usage variable ``x[o,c,t]`` is dropped when another continuous, uncapped
usage option in the same capped limiting sets delivers at least as much per unit at no
higher cost per delivered capacity (it can replace ``o`` in any plan without breaking a
constraint or costing more).

Constraints
===========
* energy (scaled by ``1/H_t``):
  ``sum perf*eff*(x + cov) + sum perf*(a | act | nf) + sum v*z >= E[c,t]/H_t``
* peak: ``sum perf*(y | Y) + sum perf*(a | act | nf) >= P[c,t]`` (committed units count once
  per period: a unit's share in ``c`` at the peak is its assignment ``a``)
* option cap: units of ``o`` (``act``, ``sum_c nf``, ``n`` or ``sum_c x + cov`` on it; and
  separately ``sum_c y``) ``<= max_units[o,t]`` (times ``availability`` for spot)
* limiting sets: the same unit counts over member options ``<= max_units[t]``, and
  ``sum cores[o] * units <= max_cores[t]``; evaluated with average units, and -- when
  usage capacity counts toward a peak -- at the peak (committed units in service plus the
  ``y``/``Y`` units)
* budgets: total cost (nominal or NPV) ``<= total``; gross cash spent in period ``t``
  (upfront, instalments, commitments, recurring, usage due in ``t``) ``<= per_period[t]``

Objective and money
===================
Every decision carries cash flows. A usage unit-period costs
``usage_price*H_t + price_per_period``. A purchase of a committed unit (or one committed
$ of a savings plan) in ``s`` with service ``[d, e) = [s+L, s+L+m)`` carries: ``upfront`` at
the start of ``s`` (or, if financed, instalments at the end of ``s .. s+N-1``); recurring
``price_per_period + sum(recurring_costs)`` per service period (per hour for "$ per hour"
savings plans); ``residual_value`` credited at the end of the term. The horizon-end
convention (``model_flags.commitment_charge``) decides what happens when ``e > T``:

* ``full_term_at_purchase_even_beyond_horizon`` -- all flows of the whole term count
  (the post-horizon ones are reported as ``cost_after_horizon``);
* ``prorata_with_terminal_value`` -- recurring flows count only inside the horizon, the
  financed balance is paid off at the end of ``T-1``, and the unit's value at the horizon
  end, ``V = capex - (capex - residual) * age/m`` (linear depreciation), is credited then;
* ``forbid_past_horizon`` -- purchases whose term would end after ``T`` are not allowed;
* ``price_per_period_times_periods`` -- recurring flows count only inside the horizon;
  upfront and instalments in full; no terminal value.

The objective is the sum of these flows: nominal, or NPV with a cash flow at the start of
period ``k`` discounted by ``(1+r)**-k`` (upfront at the start of its period, per-period
flows at the end of it unless ``objective.per_period_flows: start``, credits at the end of
the period in which they occur). Both totals are always reported.

Tie-breaking: each cost coefficient is multiplied by ``1 + TIE_BREAK * w`` with
``w in (0, 1]`` growing with the option's position in the list and the period, so that,
between equal-cost plans, earlier-listed options and earlier periods win. The reported
objective is the exact cost of the plan (without the perturbation); the reported bound is
the solver's bound divided by ``1 + TIE_BREAK`` (all cost coefficients are >= 0), so it
remains a valid lower bound. Model build order is deterministic and both solvers are
deterministic, so results are identical run to run.

Status: "optimal", "feasible" (stopped by a limit with an incumbent, not proven), "infeasible"
(with an elastic-relaxation explanation), "unbounded", "error". The bound comes from HiGHS's
``mip_dual_bound``, from CBC's log when it stops early, and equals the objective for an LP.

Infeasibility is explained by two elastic relaxations of the same model: (A) penalised
slack on every demand and peak row (hard limits) gives, per class and period, how much
cannot be supplied; (B) penalised slack on every cap and budget row (hard demand) gives
which limits must be raised and by how much. If (B) is infeasible, no raise helps and the
reason is structural (no eligible option, lead time, purchase periods, forbidden terms).
Slack is weighted by ``1/max(1, |rhs|)`` so the smallest *relative* relaxation is found.

Speed: variables and rows are built once from precomputed index lists and handed to
HiGHS in a single ``passModel`` call (see :class:`_HiGHS`); build and solve times are
reported in the result.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pulp
from pydantic import BaseModel, Field

from app.planner.problem import (
    CapacityProblem,
    Option,
    expand_per_period,
)

__all__ = [
    "TIE_BREAK",
    "ModelStats",
    "OptionResult",
    "Shortfall",
    "SolveResult",
    "SolveStatus",
    "build_model",
    "solve",
]

TIE_BREAK = 1e-6
"""Largest relative perturbation of a cost coefficient used for deterministic tie-breaking."""

SolveStatus = Literal["optimal", "feasible", "infeasible", "unbounded", "error"]
_TOL = 1e-7
ACT_INLINE_MAX = 4
"""Units in service are window sums of purchases; longer windows get a defining variable."""
_CATEGORIES = ("upfront", "financing", "commitment", "recurring", "usage", "residual")


# ============================================================================ results


class Shortfall(BaseModel):
    """One requirement that cannot be met, or one limit that must be raised."""

    kind: Literal[
        "energy_demand",
        "peak_demand",
        "option_units",
        "option_peak_units",
        "pool_units",
        "pool_cores",
        "pool_peak_units",
        "pool_peak_cores",
        "budget_total",
        "budget_period",
    ]
    name: str = Field(description="Class, option, limiting set, or 'budget'.")
    period: int | None = None
    required: float = Field(description="Demand, or the level the limit would need.")
    available: float = Field(description="What can be supplied, or the current limit.")
    shortfall: float = Field(description="How much to relax the demand or raise the limit.")
    unit: str
    message: str


class OptionResult(BaseModel):
    """The plan for one option. Lists have one entry per period."""

    name: str
    kind: str
    purchased: list[float] = Field(
        description="Units (savings plans: committed $) ordered in each period."
    )
    purchased_by_class: dict[str, float] | None = Field(
        None, description="fixed_for_horizon_per_app: units bought at period 0 per class."
    )
    active: list[float] = Field(
        description="Units in service (committed), committed $ active (savings plans), "
        "or units paid (usage)."
    )
    usage_units: list[float] = Field(description="Usage options: average units running.")
    usage_hours: list[float] = Field(description="Usage options: unit-hours used.")
    covered_by_savings_plans: list[float] = Field(
        description="Usage options: average units whose usage a savings plan pays."
    )
    assigned: dict[str, list[float]] = Field(
        description="Units serving each class (committed: assignment; usage: running; "
        "savings plans: covered)."
    )
    peak_units: dict[str, list[float]] = Field(
        default_factory=dict, description="Usage capacity counted toward a class's peak."
    )
    cost: float = Field(description="Nominal cost (net of credits).")
    npv: float
    cost_by_category: dict[str, float]
    cost_by_period: list[float]
    cost_after_horizon: float


class ModelStats(BaseModel):
    variables: int
    integer_variables: int
    constraints: int
    nonzeros: int


class SolveResult(BaseModel):
    """Outcome of :func:`solve`. Money is in the problem's currency; periods are 0-based."""

    status: SolveStatus
    message: str = ""
    solver: str
    relaxed: bool
    objective_kind: Literal["nominal", "npv"]
    objective: float | None = Field(None, description="Exact cost of the plan (nominal or NPV).")
    bound: float | None = Field(None, description="Proven lower bound on the optimal objective.")
    gap: float | None = Field(None, description="(objective - bound) / |objective|.")
    total_nominal_cost: float | None = None
    npv: float | None = None
    cost_by_period: list[float] = Field(default_factory=list)
    cost_after_horizon: float = 0.0
    cost_by_category: dict[str, float] = Field(default_factory=dict)
    cost_by_period_category: dict[str, list[float]] = Field(default_factory=dict)
    options: list[OptionResult] = Field(
        default_factory=list, description="Options the plan uses (all of them with all_options)."
    )
    shortfalls: list[Shortfall] = Field(default_factory=list)
    explanation: str | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    total_seconds: float = 0.0
    stats: ModelStats | None = None

    def option(self, name: str) -> OptionResult:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)


# ============================================================================ money


@dataclass(frozen=True, slots=True)
class _Flow:
    """``amount`` per unit in each period ``first .. stop-1`` (x H_k when ``hourly``)."""

    category: str
    first: int
    stop: int
    amount: float
    hourly: bool
    timing: Literal["start", "end"]


class _Weights:
    """Prefix sums of per-period factors so that any flow is valued in O(1)."""

    def __init__(self, hours: list[float], horizon: int, rate: float):
        self.hours = hours
        self.horizon = horizon
        n = len(hours)
        start = [(1.0 + rate) ** (-k) for k in range(n)]
        end = [(1.0 + rate) ** (-(k + 1)) for k in range(n)]

        def prefix(values: list[float]) -> list[float]:
            out = [0.0]
            acc = 0.0
            for v in values:
                acc += v
                out.append(acc)
            return out

        self.start = start
        self.end = end
        self._p = {
            (False, False, "start"): prefix([1.0] * n),
            (False, True, "start"): prefix(hours),
            (False, False, "end"): prefix([1.0] * n),
            (False, True, "end"): prefix(hours),
            (True, False, "start"): prefix(start),
            (True, True, "start"): prefix([h * f for h, f in zip(hours, start)]),
            (True, False, "end"): prefix(end),
            (True, True, "end"): prefix([h * f for h, f in zip(hours, end)]),
        }

    def value(self, f: _Flow, npv: bool) -> float:
        p = self._p[(npv, f.hourly, f.timing)]
        return f.amount * (p[f.stop] - p[f.first])

    def per_period(self, f: _Flow) -> Iterator[tuple[int, float]]:
        for k in range(f.first, f.stop):
            yield k, f.amount * (self.hours[k] if f.hourly else 1.0)


# ============================================================================ model


@dataclass
class _Row:
    kind: str
    name: str
    period: int | None
    rhs: float
    unit: str
    scale: float  # multiply slack by this to express it in `unit`
    classes: tuple[str, ...]
    members: tuple[int, ...] = ()
    slack: pulp.LpVariable | None = None


@dataclass
class _Lane:
    target: int | None  # usage option index, or None for a class lane of the plan itself
    cls: str
    perf: float
    eff: float
    rate: float


@dataclass
class _OptVars:
    buy: dict[int, pulp.LpVariable] = field(default_factory=dict)
    buy_c: dict[str, pulp.LpVariable] = field(default_factory=dict)
    act: dict[int, Expr] = field(default_factory=dict)  # units (committed $) in service
    asg: dict[tuple[str, int], pulp.LpVariable] = field(default_factory=dict)
    use: dict[tuple[str, int], pulp.LpVariable] = field(default_factory=dict)
    use_n: dict[int, pulp.LpVariable] = field(default_factory=dict)
    peak: dict[tuple[str, int], pulp.LpVariable] = field(default_factory=dict)
    lanes: list[_Lane] = field(default_factory=list)
    cov: dict[tuple[int, int], pulp.LpVariable] = field(default_factory=dict)
    flows: dict[str, list[_Flow]] = field(default_factory=dict)  # var name -> flows per unit
    service: tuple[int, int] | None = None  # fixed mode: [d, min(e,T))
    split: tuple[int, float] | None = None  # (shared split group, capacity scale s_o)


Expr = dict[pulp.LpVariable, float]


def _add(expr: Expr, var: pulp.LpVariable, coef: float) -> None:
    expr[var] = expr.get(var, 0.0) + coef


def _addx(expr: Expr, other: Expr, coef: float) -> None:
    for var, k in other.items():
        expr[var] = expr.get(var, 0.0) + k * coef


@dataclass
class BuiltModel:
    """A built PuLP model plus what is needed to read a plan back from it."""

    problem: CapacityProblem
    prob: pulp.LpProblem
    relaxed: bool
    elastic: str | None
    ovars: list[_OptVars]
    rows: list[_Row]
    cost_nominal: Expr
    cost_npv: Expr
    weights: _Weights
    integer_vars: int
    build_seconds: float
    split_vars: dict[tuple[int, str, int], pulp.LpVariable] = field(default_factory=dict)
    split_members: list[list[tuple[int, float]]] = field(default_factory=list)


class _Builder:
    def __init__(self, problem: CapacityProblem, *, relax: bool, elastic: str | None):
        self.p = problem
        self.relax = relax
        self.elastic = elastic
        self.flags = problem.model_flags
        self.T = problem.n_periods
        self.H = problem.hours()
        self.classes = problem.class_names
        self.E = problem.energy_demand()
        self.P = problem.peak_demand()
        self.n_opts = len(problem.options)
        self.opt_index = {o.name: i for i, o in enumerate(problem.options)}
        self.prob = pulp.LpProblem(re.sub(r"[^A-Za-z0-9_]", "_", problem.name) or "capacity")
        self.ovars = [_OptVars() for _ in problem.options]
        self.rows: list[_Row] = []
        self.cost_nom: Expr = {}
        self.cost_npv: Expr = {}
        self.pert: dict[pulp.LpVariable, float] = {}
        self.act_defs: list[pulp.LpVariable] = []
        self.split_groups: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
        self.split_vars: dict[tuple[int, str, int], pulp.LpVariable] = {}
        self.n_int = 0
        self.n_rows = 0
        # contributions
        self.energy: dict[tuple[str, int], Expr] = {}
        self.peak: dict[tuple[str, int], Expr] = {}
        self.units_avg: dict[tuple[int, int], Expr] = {}
        self.units_peak: dict[tuple[int, int], Expr] = {}  # per-source peak units (y)
        self.pool_peak_units: dict[tuple[int, int], Expr] = {}  # pooled peak units (Y)
        self.pool_peak_cores: dict[tuple[int, int], Expr] = {}
        self.spend: dict[int, Expr] = {}
        self.want_spend = bool(problem.budget and problem.budget.per_period is not None)
        max_extent = 1
        for o in problem.options:
            ext = (o.lead_time_periods or 0) + (o.term_periods or 1)
            if o.financing is not None:
                ext = max(ext, o.financing.periods)
            max_extent = max(max_extent, ext)
        n_ext = self.T + max_extent + 2
        hours_ext = self.H + [self.H[-1]] * (n_ext - self.T)
        self.W = _Weights(hours_ext, self.T, problem.objective.discount_rate_per_period)
        self.pp_timing: Literal["start", "end"] = problem.objective.per_period_flows
        self.pp_factor = self.W.end if self.pp_timing == "end" else self.W.start
        self._pools_of: dict[int, list[int]] = {i: [] for i in range(self.n_opts)}
        for j, ls in enumerate(problem.limiting_sets):
            members = {self.opt_index[m] for m in ls.members}
            for i, o in enumerate(problem.options):
                if ls.name in o.limits.limiting_sets:
                    members.add(i)
            for i in sorted(members):
                self._pools_of[i].append(j)
        self.pool_members = [
            sorted(i for i in range(self.n_opts) if j in self._pools_of[i])
            for j in range(len(problem.limiting_sets))
        ]

    # ------------------------------------------------------------------ helpers

    def _int(self, o: Option) -> bool:
        if self.relax:
            return False
        return self.flags.integer if o.integer is None else o.integer

    def _var(self, name: str, integer: bool) -> pulp.LpVariable:
        if integer:
            self.n_int += 1
        return pulp.LpVariable(
            name, lowBound=0, cat=pulp.LpInteger if integer else pulp.LpContinuous
        )

    def _cost(self, var: pulp.LpVariable, nominal: float, npv: float, o_idx: int, t: int) -> None:
        if nominal == 0.0 and npv == 0.0:
            return
        self.cost_nom[var] = self.cost_nom.get(var, 0.0) + nominal
        self.cost_npv[var] = self.cost_npv.get(var, 0.0) + npv
        self.pert[var] = (o_idx + (t + 1) / (self.T + 1)) / max(self.n_opts, 1)

    def perf(self, o: Option, c: str) -> float:
        """Capacity of one unit of ``o`` for class ``c`` (0 = cannot serve it)."""
        if o.eligible_classes is not None and c not in o.eligible_classes:
            return 0.0
        if o.kind == "spot" and not self.p.class_info(c).interruptible:
            return 0.0
        if o.performance:
            return float(o.performance.get(c, 0.0))
        return float(o.capacity_per_unit or 0.0)

    def eff(self, o: Option) -> float:
        return 1.0 / (1.0 + o.interruption_overhead) if o.kind == "spot" else 1.0

    def peak_ok(self, o: Option, c: str) -> bool:
        """May usage capacity of ``o`` count toward the peak of ``c``?"""
        return not (o.kind == "spot" and self.p.class_info(c).latency_bound)

    def cap(self, o: Option) -> list[float | None]:
        caps = expand_per_period(o.limits.max_units, self.T)
        if o.kind == "spot":
            caps = [None if v is None else v * o.availability for v in caps]
        return caps

    def _capped(self, i: int) -> bool:
        o = self.p.options[i]
        if any(v is not None for v in self.cap(o)):
            return True
        for j in self._pools_of[i]:
            ls = self.p.limiting_sets[j]
            for val in (ls.max_units, ls.max_cores):
                if any(v is not None for v in expand_per_period(val, self.T)):
                    if val is ls.max_cores and o.cores == 0:
                        continue
                    return True
        return False

    def commit_mode(self, o: Option) -> str:
        if o.kind == "reserved":
            return self.flags.reserved_mode
        if o.kind == "private":
            return self.flags.private_mode
        return "purchase_any_period_rolling_term"

    def purchase_periods(self, o: Option) -> list[int]:
        """Periods in which ``o`` may usefully be bought (rolling mode)."""
        L, m = o.lead_time_periods, o.term_periods or 1
        allowed = o.purchase_periods if o.purchase_periods is not None else range(self.T)
        out = []
        for s in sorted(set(allowed)):
            if s + L >= self.T:
                continue  # would never serve inside the horizon
            if self.flags.commitment_charge == "forbid_past_horizon" and s + L + m > self.T:
                continue
            out.append(s)
        return out

    def purchase_flows(self, o: Option, s: int) -> list[_Flow]:
        """Cash flows of one unit (one committed $) of ``o`` ordered in ``s``."""
        T, conv = self.T, self.flags.commitment_charge
        L, m = o.lead_time_periods, o.term_periods or 1
        d, e = s + L, s + L + m
        within = conv in ("prorata_with_terminal_value", "price_per_period_times_periods")
        rec_stop = min(e, T) if within else e
        flows: list[_Flow] = []
        capex = o.upfront
        if capex > 0:
            if o.financing is None:
                flows.append(_Flow("upfront", s, s + 1, capex, False, "start"))
            else:
                fin = o.financing
                a = fin.instalment(capex)
                if conv == "prorata_with_terminal_value" and s + fin.periods > T:
                    if T > s:
                        flows.append(_Flow("financing", s, T, a, False, "end"))
                    bal = fin.balance_after(capex, T - s)
                    flows.append(_Flow("financing", T - 1, T, bal, False, "end"))
                else:
                    flows.append(_Flow("financing", s, s + fin.periods, a, False, "end"))
        if rec_stop > d:
            hourly = o.is_savings_plan and o.commitment_unit == "$ per hour"
            if o.price_per_period:
                cat = "recurring" if o.kind == "private" else "commitment"
                flows.append(_Flow(cat, d, rec_stop, o.price_per_period, hourly, self.pp_timing))
            other = sum(o.recurring_costs.values())
            if other:
                flows.append(_Flow("recurring", d, rec_stop, other, False, self.pp_timing))
        res = o.residual_value
        if e <= T or conv == "full_term_at_purchase_even_beyond_horizon":
            if res > 0:
                flows.append(_Flow("residual", e - 1, e, -res, False, "end"))
        elif conv == "prorata_with_terminal_value":
            age = min(max(0, T - d), m)
            value = capex - (capex - res) * age / m
            if value > 0:
                flows.append(_Flow("residual", T - 1, T, -value, False, "end"))
        return flows

    def _purchase_cost(
        self, var: pulp.LpVariable, ov: _OptVars, flows: list[_Flow], i: int, s: int
    ) -> None:
        nom = sum(self.W.value(f, False) for f in flows)
        npv = sum(self.W.value(f, True) for f in flows)
        ov.flows[var.name] = flows
        self._cost(var, nom, npv, i, s)
        if self.want_spend:
            for f in flows:
                if f.amount <= 0 or f.category in ("commitment", "recurring"):
                    continue  # credits are not spend; recurring goes through `act`
                for k, amt in self.W.per_period(f):
                    if k < self.T:
                        _add(self.spend.setdefault(k, {}), var, amt)

    def _row(
        self,
        kind: str,
        name: str,
        period: int | None,
        expr: Expr,
        sense: int,
        rhs: float,
        *,
        unit: str = "",
        scale: float = 1.0,
        classes: tuple[str, ...] = (),
        members: tuple[int, ...] = (),
        elastic_group: str | None = None,
    ) -> None:
        row = _Row(kind, name, period, rhs, unit, scale, classes, members)
        e = pulp.LpAffineExpression(expr)
        if elastic_group is not None and elastic_group == self.elastic:
            slack = pulp.LpVariable(f"slack_{len(self.rows)}", lowBound=0)
            e[slack] = 1.0 if sense > 0 else -1.0
            row.slack = slack
        self.rows.append(row)
        self.n_rows += 1
        c = pulp.LpConstraint(
            e,
            pulp.LpConstraintGE
            if sense > 0
            else (pulp.LpConstraintLE if sense < 0 else pulp.LpConstraintEQ),
            rhs=rhs,
        )
        self.prob.addConstraint(c, f"r{self.n_rows}")

    def _eq(self, expr: Expr) -> None:
        self.n_rows += 1
        c = pulp.LpConstraint(pulp.LpAffineExpression(expr), pulp.LpConstraintEQ, rhs=0.0)
        self.prob.addConstraint(c, f"r{self.n_rows}")

    def _le0(self, expr: Expr) -> None:
        self.n_rows += 1
        c = pulp.LpConstraint(pulp.LpAffineExpression(expr), pulp.LpConstraintLE, rhs=0.0)
        self.prob.addConstraint(c, f"r{self.n_rows}")

    # ------------------------------------------------------------------ build

    def build(self) -> BuiltModel:
        t0 = time.perf_counter()
        p = self.p
        # usage sources able to cover a class's peak for free (no cap, no peak_hours)
        self.free_peak: dict[str, bool] = {}
        for c in self.P:
            free = False
            if self.p.class_info(c).peak_hours == 0:
                for i, o in enumerate(p.options):
                    if (
                        o.is_usage
                        and self.perf(o, c) > 0
                        and self.peak_ok(o, c)
                        and not self._capped(i)
                    ):
                        free = True
                        break
                    if (
                        o.is_savings_plan
                        and c in o.rates
                        and self.perf(o, c) > 0
                        and not self._capped(i)
                    ):
                        free = True
                        break
            self.free_peak[c] = free

        self.pool_capped = [
            any(v is not None for v in expand_per_period(ls.max_units, self.T))
            or any(v is not None for v in expand_per_period(ls.max_cores, self.T))
            for ls in p.limiting_sets
        ]
        self.pool_core_capped = [
            any(v is not None for v in expand_per_period(ls.max_cores, self.T))
            for ls in p.limiting_sets
        ]
        self.x_pruned = self._prune_usage()
        for i, o in enumerate(p.options):
            if o.is_usage:
                self._usage(i, o)
            elif o.is_committed:
                self._committed(i, o)
        for i, o in enumerate(p.options):
            if o.is_savings_plan:
                self._savings_plan(i, o)
        self._shared_splits()
        self._peak_sources()
        self._demand_rows()
        self._cap_rows()
        self._budget_rows()
        self._objective()
        build_seconds = time.perf_counter() - t0
        return BuiltModel(
            problem=p,
            prob=self.prob,
            relaxed=self.relax,
            elastic=self.elastic,
            ovars=self.ovars,
            rows=self.rows,
            cost_nominal=self.cost_nom,
            cost_npv=self.cost_npv,
            weights=self.W,
            integer_vars=self.n_int,
            build_seconds=build_seconds,
            split_vars=self.split_vars,
            split_members=list(self.split_groups.values()),
        )

    def _usage(self, i: int, o: Option) -> None:
        ov = self.ovars[i]
        T, H = self.T, self.H
        cls = [(c, self.perf(o, c)) for c in self.classes]
        cls = [(c, pf) for c, pf in cls if pf > 0]
        integer = self._int(o)
        shared = integer and len(cls) > 1 and self.flags.on_demand_mode == "per_period"
        eff = self.eff(o)
        for t in range(T):
            unit_cost = o.usage_price * H[t] + o.price_per_period
            units = self.units_avg.setdefault((i, t), {})
            if shared:
                n = self._var(f"n_{i}_{t}", True)
                ov.use_n[t] = n
                self._cost(n, unit_cost, unit_cost * self.pp_factor[t], i, t)
                units[n] = 1.0
                if self.want_spend and unit_cost:
                    _add(self.spend.setdefault(t, {}), n, unit_cost)
                link: Expr = {n: -1.0}
            for c, pf in cls:
                if (i, c, t) in self.x_pruned:
                    continue
                x = self._var(f"x_{i}_{self.classes.index(c)}_{t}", integer and not shared)
                ov.use[(c, t)] = x
                _add(self.energy.setdefault((c, t), {}), x, pf * eff)
                if shared:
                    link[x] = 1.0
                else:
                    self._cost(x, unit_cost, unit_cost * self.pp_factor[t], i, t)
                    units[x] = 1.0
                    if self.want_spend and unit_cost:
                        _add(self.spend.setdefault(t, {}), x, unit_cost)
            if shared:
                self._le0(link)

    def _committed(self, i: int, o: Option) -> None:
        ov = self.ovars[i]
        T = self.T
        cls = [(c, self.perf(o, c)) for c in self.classes]
        cls = [(c, pf) for c, pf in cls if pf > 0]
        integer = self._int(o)
        L, m = o.lead_time_periods, o.term_periods or 1
        recurring = o.recurring_per_period
        if self.commit_mode(o) == "fixed_for_horizon_per_app":
            d = L
            stop = T
            ov.service = (d, stop)
            flows = self.purchase_flows(o, 0)
            for c, pf in cls:
                v = self._var(f"nf_{i}_{self.classes.index(c)}", integer)
                ov.buy_c[c] = v
                self._purchase_cost(v, ov, flows, i, 0)
                for t in range(d, stop):
                    _add(self.energy.setdefault((c, t), {}), v, pf)
                    if c in self.P:
                        _add(self.peak.setdefault((c, t), {}), v, pf)
                    _add(self.units_avg.setdefault((i, t), {}), v, 1.0)
                    if self.want_spend and recurring:
                        _add(self.spend.setdefault(t, {}), v, recurring)
            return
        periods = self.purchase_periods(o)
        if not periods or not cls:
            return
        for s in periods:
            b = self._var(f"b_{i}_{s}", integer)
            ov.buy[s] = b
            self._purchase_cost(b, ov, self.purchase_flows(o, s), i, s)
        self._activity(ov, L, m)
        single = len(cls) == 1
        dedicated = self.flags.committed_assignment == "dedicated" and integer
        group: tuple[Any, ...] | None = None
        if not single and not dedicated:
            # time-shared units whose performance vectors are proportional share one split
            scale = max(pf for _, pf in cls)
            group = tuple((c, round(pf / scale, 12)) for c, pf in cls)
            self.split_groups.setdefault(group, []).append((i, scale))
        for t, act in ov.act.items():
            _addx(self.units_avg.setdefault((i, t), {}), act, 1.0)
            if self.want_spend and recurring:
                _addx(self.spend.setdefault(t, {}), act, recurring)
            if single:
                c, pf = cls[0]
                _addx(self.energy.setdefault((c, t), {}), act, pf)
                if c in self.P:
                    _addx(self.peak.setdefault((c, t), {}), act, pf)
                continue
            if group is not None:
                continue
            link: Expr = {v: -k for v, k in act.items()}
            for c, pf in cls:
                a = self._var(f"a_{i}_{self.classes.index(c)}_{t}", dedicated)
                ov.asg[(c, t)] = a
                link[a] = 1.0
                _add(self.energy.setdefault((c, t), {}), a, pf)
                if c in self.P:
                    _add(self.peak.setdefault((c, t), {}), a, pf)
            self._le0(link)

    def _shared_splits(self) -> None:
        """Class split of time-shared committed capacity, per group of proportional options.

        Options whose per-class performance vectors are proportional (``perf[o,c] =
        s_o * v_c``: the same hardware bought under different terms, providers or sizes)
        pool their capacity ``sum_o s_o * act[o,t]`` and split it once:
        ``sum_c z[g,c,t] <= sum_o s_o * act[o,t]``, class ``c`` receiving ``v_c * z[g,c,t]``.
        Exactly equivalent to one split per option, with far fewer columns. The plan
        reports each option's share in proportion to its capacity.
        """
        for g, (group, members) in enumerate(self.split_groups.items()):
            periods = sorted({t for i, _ in members for t in self.ovars[i].act})
            for t in periods:
                link: Expr = {}
                for i, scale in members:
                    act = self.ovars[i].act.get(t)
                    if act:
                        _addx(link, act, -scale)
                if not link:
                    continue
                for c, v in group:
                    z = pulp.LpVariable(f"z_{g}_{self.classes.index(c)}_{t}", lowBound=0)
                    self.split_vars[(g, c, t)] = z
                    link[z] = 1.0
                    _add(self.energy.setdefault((c, t), {}), z, v)
                    if c in self.P:
                        _add(self.peak.setdefault((c, t), {}), z, v)
                self._le0(link)
            for i, scale in members:
                self.ovars[i].split = (g, scale)

    def _activity(self, ov: _OptVars, lead: int, term: int) -> None:
        """Units in service: ``act[t] = sum of buy[s] for s + lead <= t < s + lead + term``.

        Kept as expressions (window sums) rather than variables linked by a recursion:
        the dual simplex handles the wider rows much better than long equality chains.
        """
        if not ov.buy:
            return
        first = min(ov.buy) + lead
        for t in range(first, self.T):
            expr: Expr = {}
            for s in range(max(0, t - lead - term + 1), t - lead + 1):
                b = ov.buy.get(s)
                if b is not None:
                    expr[b] = 1.0
            if not expr:
                continue
            if len(expr) <= ACT_INLINE_MAX:
                ov.act[t] = expr
            else:
                act = pulp.LpVariable(f"act_{len(self.act_defs)}", lowBound=0)
                self.act_defs.append(act)
                self._eq({act: 1.0, **{b: -1.0 for b in expr}})
                ov.act[t] = {act: 1.0}

    def _savings_plan(self, i: int, o: Option) -> None:
        ov = self.ovars[i]
        _T, H = self.T, self.H
        k_int = not self.relax and (
            o.commitment_integer
            if o.commitment_integer is not None
            else self.flags.savings_plan_commitment_integer
        )
        cov_int = self._int(o)
        for key, rate in o.rates.items():
            if key in self.classes:
                pf = self.perf(o, key)
                if pf > 0:
                    ov.lanes.append(_Lane(None, key, pf, 1.0, rate))
            else:
                j = self.opt_index[key]
                tgt = self.p.options[j]
                for c in self.classes:
                    pf = self.perf(tgt, c)
                    if pf > 0:
                        ov.lanes.append(_Lane(j, c, pf, self.eff(tgt), rate))
        periods = self.purchase_periods(o)
        if not periods or not ov.lanes:
            return
        for s in periods:
            k = self._var(f"k_{i}_{s}", k_int)
            ov.buy[s] = k
            self._purchase_cost(k, ov, self.purchase_flows(o, s), i, s)
        self._activity(ov, o.lead_time_periods, o.term_periods or 1)
        hourly = o.commitment_unit == "$ per hour"
        for t, sact in ov.act.items():
            scale = H[t] if hourly else 1.0
            recurring = o.price_per_period * scale
            if self.want_spend and recurring:
                _addx(self.spend.setdefault(t, {}), sact, recurring)
            # sum_l rate_l * H_t * cov_l <= scale_t * sact, divided by H_t for scaling
            link: Expr = {v: -k * scale / H[t] for v, k in sact.items()}
            for li, lane in enumerate(ov.lanes):
                v = self._var(f"cov_{i}_{li}_{t}", cov_int)
                ov.cov[(li, t)] = v
                link[v] = lane.rate
                _add(self.energy.setdefault((lane.cls, t), {}), v, lane.perf * lane.eff)
                owner = i if lane.target is None else lane.target
                _add(self.units_avg.setdefault((owner, t), {}), v, 1.0)
            self._le0(link)

    def _peak_sources(self) -> None:
        """Variables for usage-priced capacity counted toward class peaks.

        A source is a usage option or a savings plan's class lane. Sources with their own
        cap, or serving a class with ``peak_hours > 0`` (their peak units are tied to
        their hours), get one ``y`` per (source, class, period). The others are
        interchangeable up to their performance: they are pooled by (capped limiting
        sets, cores, integrality) into one ``Y`` per (group, class, period) that counts
        with the best performance in the group -- exactly equivalent, far fewer columns.
        """
        if not self.P:
            return
        H = self.H
        for c in self.classes:
            if c not in self.P or self.free_peak[c]:
                continue
            ci = self.classes.index(c)
            ph = self.p.class_info(c).peak_hours
            groups: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
            for i, o in enumerate(self.p.options):
                ov = self.ovars[i]
                if o.is_usage:
                    pf = self.perf(o, c)
                elif o.is_savings_plan:
                    pf = max(
                        (ln.perf for ln in ov.lanes if ln.target is None and ln.cls == c),
                        default=0.0,
                    )
                else:
                    continue
                if pf <= 0 or not self.peak_ok(o, c):
                    continue
                integer = self._int(o)
                if ph == 0 and not any(v is not None for v in self.cap(o)):
                    groups.setdefault((self._pool_key(i), integer), []).append((i, pf))
                    continue
                for t in range(self.T):
                    if self.P[c][t] <= 0:
                        continue
                    y = self._var(f"y_{i}_{ci}_{t}", integer)
                    ov.peak[(c, t)] = y
                    _add(self.peak.setdefault((c, t), {}), y, pf)
                    _add(self.units_peak.setdefault((i, t), {}), y, 1.0)
                    if ph > 0:
                        link: Expr = {y: ph}
                        if o.is_usage:
                            x = ov.use.get((c, t))
                            if x is not None:
                                _add(link, x, -H[t])
                            # savings-plan coverage of this option's usage also counts
                            for sp in self.ovars:
                                for li, ln in enumerate(sp.lanes):
                                    if ln.target == i and ln.cls == c and (li, t) in sp.cov:
                                        _add(link, sp.cov[(li, t)], -H[t])
                        else:
                            for li, ln in enumerate(ov.lanes):
                                if ln.target is None and ln.cls == c and (li, t) in ov.cov:
                                    _add(link, ov.cov[(li, t)], -H[t])
                        self._le0(link)
            for g, (((pools, cores), integer), members) in enumerate(groups.items()):
                best_i, best_pf = max(members, key=lambda m: (m[1], -m[0]))
                for t in range(self.T):
                    if self.P[c][t] <= 0:
                        continue
                    y = self._var(f"Y_{ci}_{g}_{t}", integer)
                    self.ovars[best_i].peak[(c, t)] = y
                    _add(self.peak.setdefault((c, t), {}), y, best_pf)
                    for j in pools:
                        _add(self.pool_peak_units.setdefault((j, t), {}), y, 1.0)
                        if cores is not None:
                            _add(self.pool_peak_cores.setdefault((j, t), {}), y, cores)

    def _pool_key(self, i: int) -> tuple[tuple[int, ...], float | None]:
        """Capped limiting sets of option ``i`` and, if any caps cores, its cores."""
        pools = tuple(j for j in self._pools_of[i] if self.pool_capped[j])
        cores = self.p.options[i].cores if any(self.pool_core_capped[j] for j in pools) else None
        return pools, cores

    def _prune_usage(self) -> set[tuple[int, str, int]]:
        """Usage variables ``x[o,c,t]`` that an exact dominance argument makes redundant.

        Among continuous, uncapped usage options with the same capped limiting sets (and
        cores, when a set caps cores), and whose hours are not tied to peak variables,
        ``o`` is dominated for class ``c`` in period ``t`` by ``o'`` if ``o'`` delivers at
        least as much per unit (``perf * eff``: fewer units against every cap) at no
        higher cost per delivered capacity. Replacing ``o`` by ``o'`` never breaks a
        constraint and never costs more, so ``x[o,c,t]`` can be dropped.
        """
        pruned: set[tuple[int, str, int]] = set()
        for c in self.classes:
            if c in self.P and not self.free_peak[c] and self.p.class_info(c).peak_hours > 0:
                continue
            groups: dict[tuple[Any, ...], list[tuple[int, float, Option]]] = {}
            for i, o in enumerate(self.p.options):
                if not o.is_usage or self._int(o) or any(v is not None for v in self.cap(o)):
                    continue
                ep = self.perf(o, c) * self.eff(o)
                if ep > 0:
                    groups.setdefault(self._pool_key(i), []).append((i, ep, o))
            for (pools, _cores), members in groups.items():
                if len(members) < 2:
                    continue
                for t in range(self.T):
                    h = self.H[t]
                    cands = [
                        (i, ep, (o.usage_price * h + o.price_per_period) / ep)
                        for i, ep, o in members
                    ]
                    if not pools:  # nothing counts units: only the cost per capacity matters
                        keep = min(cands, key=lambda m: (m[2], m[0]))[0]
                        pruned.update((i, c, t) for i, _, _ in cands if i != keep)
                        continue
                    cands.sort(key=lambda m: (-m[1], m[2], m[0]))
                    best = math.inf
                    for i, _ep, unit in cands:
                        if best == math.inf or unit < best - 1e-12 * abs(best):
                            best = unit
                        else:
                            pruned.add((i, c, t))
        return pruned

    def _demand_rows(self) -> None:
        unit_e = self.p.demand_unit
        level = self.p.demand_basis == "level"
        for c in self.classes:
            for t in range(self.T):
                need = self.E[c][t]
                if need > _TOL:
                    h = self.H[t]
                    self._row(
                        "energy_demand",
                        c,
                        t,
                        self.energy.get((c, t), {}),
                        1,
                        need / h,
                        unit=unit_e,
                        scale=1.0 if level else h,
                        classes=(c,),
                        elastic_group="demand",
                    )
            if c in self.P and not self.free_peak[c]:
                for t in range(self.T):
                    need = self.P[c][t]
                    if need > _TOL:
                        self._row(
                            "peak_demand",
                            c,
                            t,
                            self.peak.get((c, t), {}),
                            1,
                            need,
                            unit=self.p.peak_unit,
                            classes=(c,),
                            elastic_group="demand",
                        )

    def _served(self, idx: list[int]) -> tuple[str, ...]:
        out = []
        for c in self.classes:
            for i in idx:
                o = self.p.options[i]
                if o.is_savings_plan:
                    ok = any(ln.cls == c for ln in self.ovars[i].lanes)
                else:
                    ok = self.perf(o, c) > 0
                if ok:
                    out.append(c)
                    break
        return tuple(out)

    def _cap_rows(self) -> None:
        p = self.p
        for i, o in enumerate(p.options):
            caps = self.cap(o)
            served = self._served([i])
            for t in range(self.T):
                cap = caps[t]
                if cap is None:
                    continue
                avg = self.units_avg.get((i, t))
                if avg:
                    self._row(
                        "option_units",
                        o.name,
                        t,
                        avg,
                        -1,
                        cap,
                        unit="units",
                        classes=served,
                        members=(i,),
                        elastic_group="limits",
                    )
                pk = self.units_peak.get((i, t))
                if pk:
                    self._row(
                        "option_peak_units",
                        o.name,
                        t,
                        pk,
                        -1,
                        cap,
                        unit="units",
                        classes=served,
                        members=(i,),
                        elastic_group="limits",
                    )
        for j, ls in enumerate(p.limiting_sets):
            members = self.pool_members[j]
            if not members:
                continue
            served = self._served(members)
            mu = expand_per_period(ls.max_units, self.T)
            mc = expand_per_period(ls.max_cores, self.T)
            for t in range(self.T):
                for cap, weight_of, kind in (
                    (mu[t], None, "pool_units"),
                    (mc[t], "cores", "pool_cores"),
                ):
                    if cap is None:
                        continue
                    avg: Expr = {}
                    # at the peak: committed units in service + usage units counted
                    # toward peaks (per-source y and pooled Y)
                    extra = (self.pool_peak_cores if weight_of else self.pool_peak_units).get(
                        (j, t), {}
                    )
                    peak: Expr = dict(extra)
                    has_peak = bool(extra)
                    for i in members:
                        o = p.options[i]
                        w = o.cores if weight_of else 1.0
                        if w == 0:
                            continue
                        a = self.units_avg.get((i, t), {})
                        _addx(avg, a, w)
                        if o.is_committed:
                            _addx(peak, a, w)
                        else:
                            pk = self.units_peak.get((i, t))
                            if pk:
                                has_peak = True
                                _addx(peak, pk, w)
                    unit = "cores" if weight_of else "units"
                    if avg:
                        self._row(
                            kind,
                            ls.name,
                            t,
                            avg,
                            -1,
                            cap,
                            unit=unit,
                            classes=served,
                            members=tuple(members),
                            elastic_group="limits",
                        )
                    if has_peak:
                        self._row(
                            kind.replace("pool_", "pool_peak_"),
                            ls.name,
                            t,
                            peak,
                            -1,
                            cap,
                            unit=unit,
                            classes=served,
                            members=tuple(members),
                            elastic_group="limits",
                        )

    def _budget_rows(self) -> None:
        b = self.p.budget
        if b is None:
            return
        everyone = tuple(self.classes)
        if b.total is not None:
            costs = self.cost_npv if b.basis == "npv" else self.cost_nom
            self._row(
                "budget_total",
                "budget",
                None,
                dict(costs),
                -1,
                b.total,
                unit="$",
                classes=everyone,
                elastic_group="limits",
            )
        if b.per_period is not None:
            caps = expand_per_period(b.per_period, self.T)
            for t in range(self.T):
                if caps[t] is None:
                    continue
                self._row(
                    "budget_period",
                    "budget",
                    t,
                    self.spend.get(t, {}),
                    -1,
                    caps[t],
                    unit="$",
                    classes=everyone,
                    elastic_group="limits",
                )

    def _objective(self) -> None:
        if self.elastic is not None:
            obj: Expr = {}
            for r in self.rows:
                if r.slack is not None:
                    obj[r.slack] = 1.0 / max(abs(r.rhs), 1.0)
            self.prob.setObjective(pulp.LpAffineExpression(obj))
            return
        costs = self.cost_npv if self.p.objective.kind == "npv" else self.cost_nom
        obj = {v: c * (1.0 + TIE_BREAK * self.pert.get(v, 0.0)) for v, c in costs.items()}
        self.prob.setObjective(pulp.LpAffineExpression(obj))


def build_model(
    problem: CapacityProblem,
    *,
    relax: bool = False,
    elastic: Literal["demand", "limits"] | None = None,
) -> BuiltModel:
    """Build the PuLP model of ``problem`` (see the module docstring for the math).

    ``elastic="demand"`` adds penalised slack to demand and peak rows (minimising the
    relative shortfall, costs ignored); ``elastic="limits"`` does the same for caps and
    budgets. Used to explain infeasibility.
    """
    return _Builder(problem, relax=relax, elastic=elastic).build()


# ============================================================================ solvers


_HIGHS_BANNER_SHOWN = False


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (HiGHS prints a banner there when its first instance is made).

    Used once per process, around an empty ``highspy.Highs()``; whatever else writes to
    fd 1 in that instant is lost, which is why it is kept that short.
    """
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _HiGHS(pulp.HiGHS):  # type: ignore[misc,valid-type]
    """``pulp.HiGHS`` (highspy API), with two changes.

    * stdout stays clean when ``msg=False`` (HiGHS prints a banner on first use);
    * the model is passed to HiGHS in one ``passModel`` call with row-wise arrays,
      instead of one ``addCol``/``addRow`` call per column and row (several times faster
      on catalog-sized models). Indices are set exactly as PuLP's own implementation
      does, so PuLP reads the solution back unchanged.
    """

    def createAndConfigureSolver(self, lp: pulp.LpProblem) -> None:
        global _HIGHS_BANNER_SHOWN
        if not self.msg and not _HIGHS_BANNER_SHOWN:
            import highspy

            with _quiet_stdout():
                highspy.Highs()
        _HIGHS_BANNER_SHOWN = True
        super().createAndConfigureSolver(lp)

    def buildSolverModel(self, lp: pulp.LpProblem) -> None:
        import highspy
        import numpy as np

        inf = highspy.kHighsInf
        variables = lp.variables()
        n = len(variables)
        for i, var in enumerate(variables):
            var.index = i
        obj_mult = -1.0 if lp.sense == pulp.LpMaximize else 1.0
        objective = lp.objective or {}
        cost = np.fromiter((obj_mult * objective.get(v, 0.0) for v in variables), float, n)
        lower = np.fromiter(
            (-inf if v.lowBound is None else v.lowBound for v in variables), float, n
        )
        upper = np.fromiter((inf if v.upBound is None else v.upBound for v in variables), float, n)
        integrality = np.fromiter(
            (1 if (v.cat == pulp.LpInteger and self.mip) else 0 for v in variables), np.int32, n
        )
        starts: list[int] = []
        index: list[int] = []
        value: list[float] = []
        row_lower: list[float] = []
        row_upper: list[float] = []
        for i, constraint in enumerate(lp._constraints.values()):
            constraint.index = i
            starts.append(len(index))
            for var, coef in constraint.items():
                if coef != 0:
                    index.append(var.index)
                    value.append(coef)
            lb = constraint.getLb()
            ub = constraint.getUb()
            row_lower.append(-inf if lb is None else lb)
            row_upper.append(inf if ub is None else ub)
        m = len(starts)
        status = lp.solverModel.passModel(
            n,
            m,
            len(index),
            int(highspy.MatrixFormat.kRowwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            cost,
            lower,
            upper,
            np.asarray(row_lower, dtype=float),
            np.asarray(row_upper, dtype=float),
            np.asarray(starts, dtype=np.int32),
            np.asarray(index, dtype=np.int32),
            np.asarray(value, dtype=float),
            integrality,
        )
        if status == highspy.HighsStatus.kError:
            raise pulp.PulpSolverError("HiGHS rejected the model (passModel)")


@dataclass
class _Run:
    status: SolveStatus | Literal["infeasible_or_unbounded"]
    solver: str
    bound: float | None  # solver bound on the (perturbed) objective, MIP only
    message: str
    seconds: float


def _solver_key(name: str) -> str:
    key = name.strip().lower()
    if key in ("highs", "highs_api", "highspy"):
        return "highs"
    if key in ("cbc", "pulp_cbc_cmd", "coin", "coin_cmd"):
        return "cbc"
    raise ValueError(f"unknown solver {name!r}; use 'highs' or 'cbc'")


def _run(
    prob: pulp.LpProblem,
    solver: str,
    *,
    is_mip: bool,
    time_limit: float | None,
    gap: float | None,
    threads: int | None,
    msg: bool,
) -> _Run:
    key = _solver_key(solver)
    if key == "highs":
        try:
            return _run_highs(
                prob, is_mip=is_mip, time_limit=time_limit, gap=gap, threads=threads, msg=msg
            )
        except (pulp.PulpSolverError, ImportError, RuntimeError) as exc:
            run = _run_cbc(
                prob, is_mip=is_mip, time_limit=time_limit, gap=gap, threads=threads, msg=msg
            )
            run.message = f"HiGHS failed ({exc}); solved with CBC instead. {run.message}".strip()
            return run
    return _run_cbc(prob, is_mip=is_mip, time_limit=time_limit, gap=gap, threads=threads, msg=msg)


def _run_highs(
    prob: pulp.LpProblem,
    *,
    is_mip: bool,
    time_limit: float | None,
    gap: float | None,
    threads: int | None,
    msg: bool,
) -> _Run:
    import highspy

    solver = _HiGHS(msg=msg, timeLimit=time_limit, gapRel=gap, threads=threads)
    if not solver.available():
        raise pulp.PulpSolverError("highspy is not installed")
    t0 = time.perf_counter()
    prob.solve(solver)
    seconds = time.perf_counter() - t0
    h = prob.solverModel
    ms = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    has_solution = int(info.primal_solution_status) == 2
    bound: float | None = None
    if is_mip:
        b = float(info.mip_dual_bound)
        bound = b if math.isfinite(b) else None
    message = ""
    if ms == S.kOptimal:
        status: Any = "optimal"
    elif ms == S.kInfeasible:
        status = "infeasible"
    elif ms == S.kUnboundedOrInfeasible:
        status = "infeasible_or_unbounded"
    elif ms == S.kUnbounded:
        status = "unbounded"
    elif prob.sol_status == pulp.LpSolutionIntegerFeasible and has_solution:
        status = "feasible"
        message = (
            f"stopped by {h.modelStatusToString(ms).lower()}; best plan found is not proven optimal"
        )
    else:
        status = "error"
        message = f"HiGHS stopped ({h.modelStatusToString(ms)}) without a feasible plan"
    return _Run(status, "highs", bound, message, seconds)


_CBC_BOUND = re.compile(r"^(?:Lower bound|Best possible):\s*([-+0-9.eE]+)", re.MULTILINE)
_CBC_PARTIAL = re.compile(r"best possible\s*([-+0-9.eE]+)")


def _run_cbc(
    prob: pulp.LpProblem,
    *,
    is_mip: bool,
    time_limit: float | None,
    gap: float | None,
    threads: int | None,
    msg: bool,
) -> _Run:
    with tempfile.TemporaryDirectory(prefix="archplan-cbc-") as tmp:
        log_path = os.path.join(tmp, "cbc.log")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            solver = pulp.PULP_CBC_CMD(
                msg=False,
                timeLimit=time_limit,
                gapRel=gap,
                threads=threads,
                logPath=log_path,
            )
        if not solver.available():
            raise pulp.PulpSolverError("CBC is not available")
        t0 = time.perf_counter()
        prob.solve(solver)
        seconds = time.perf_counter() - t0
        try:
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                log = fh.read()
        except OSError:
            log = ""
    if msg:
        print(log)
    bound: float | None = None
    ss = prob.sol_status
    if is_mip and ss != pulp.LpSolutionOptimal:
        # stopped early: the final summary's "Lower bound:", else the last progress line
        matches = _CBC_BOUND.findall(log) or _CBC_PARTIAL.findall(log)
        if matches:
            try:
                bound = float(matches[-1])
            except ValueError:
                bound = None
    message = ""
    if ss == pulp.LpSolutionOptimal:
        status: Any = "optimal"
    elif ss == pulp.LpSolutionIntegerFeasible:
        status = "feasible"
        message = "CBC stopped by a limit; best plan found is not proven optimal"
    elif ss == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
        status = "infeasible"
    elif ss == pulp.LpSolutionUnbounded or prob.status == pulp.LpStatusUnbounded:
        status = "unbounded"
    else:
        status = "error"
        message = (
            f"CBC stopped ({pulp.LpStatus.get(prob.status, prob.status)}) without a feasible plan"
        )
    return _Run(status, "cbc", bound, message, seconds)


# ============================================================================ reading a plan


def _values(prob: pulp.LpProblem) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in prob.variables():
        x = v.varValue
        if x is None:
            x = 0.0
        if v.cat == pulp.LpInteger:
            r = round(x)
            if abs(x - r) <= 1e-6:
                x = float(r)
        if abs(x) < 1e-9:
            x = 0.0
        out[v.name] = float(x)
    return out


def _stats(prob: pulp.LpProblem, n_int: int) -> ModelStats:
    nnz = sum(len(c) for c in prob.constraints.values())
    return ModelStats(
        variables=len(prob.variables()),
        integer_variables=n_int,
        constraints=len(prob.constraints),
        nonzeros=nnz,
    )


def _r(x: float) -> float:
    """Round for reporting (kills float noise such as 279.99999999997)."""
    y = round(x, 9)
    return 0.0 if y == 0 else y


class _CostAcc:
    """Costs of one option: by category, by period, after the horizon, nominal and NPV.

    Also adds into the plan-wide ``by_period_cat`` / ``after_cat`` tallies.
    """

    def __init__(
        self,
        weights: _Weights,
        horizon: int,
        by_period_cat: dict[str, list[float]],
        after_cat: dict[str, float],
    ):
        self.W = weights
        self.T = horizon
        self.by_period_cat = by_period_cat
        self.after_cat = after_cat
        self.cat = dict.fromkeys(_CATEGORIES, 0.0)
        self.per = [0.0] * horizon
        self.after = 0.0
        self.nom = 0.0
        self.npv = 0.0

    def flows(self, flows: list[_Flow], qty: float) -> None:
        for f in flows:
            for k, amt in self.W.per_period(f):
                a = amt * qty
                self.cat[f.category] += a
                if k < self.T:
                    self.per[k] += a
                    self.by_period_cat[f.category][k] += a
                else:
                    self.after += a
                    self.after_cat[f.category] += a
            self.nom += self.W.value(f, False) * qty
            self.npv += self.W.value(f, True) * qty

    def usage(self, t: int, amount: float, factor: float) -> None:
        self.cat["usage"] += amount
        self.per[t] += amount
        self.by_period_cat["usage"][t] += amount
        self.nom += amount
        self.npv += amount * factor


def _plan(model: BuiltModel, vals: dict[str, float], all_options: bool) -> dict[str, Any]:
    p = model.problem
    T = p.n_periods
    H = p.hours()
    W = model.weights
    classes = p.class_names
    by_period_cat = {cat: [0.0] * T for cat in _CATEGORIES}
    after_cat = dict.fromkeys(_CATEGORIES, 0.0)
    options: list[OptionResult] = []
    total_nom = 0.0
    total_npv = 0.0
    covered: dict[int, list[float]] = {}
    for i, ov in enumerate(model.ovars):
        for (li, t), v in ov.cov.items():
            tgt = ov.lanes[li].target
            if tgt is not None:
                covered.setdefault(tgt, [0.0] * T)[t] += vals.get(v.name, 0.0)
    pp = W.end if p.objective.per_period_flows == "end" else W.start
    act_of = [
        [sum(vals.get(v.name, 0.0) * k for v, k in ov.act.get(t, {}).items()) for t in range(T)]
        for ov in model.ovars
    ]
    for i, (o, ov) in enumerate(zip(p.options, model.ovars)):
        acc = _CostAcc(W, T, by_period_cat, after_cat)
        purchased = [0.0] * T
        active = [0.0] * T
        usage_units = [0.0] * T
        assigned: dict[str, list[float]] = {}
        peak_units: dict[str, list[float]] = {}
        by_class: dict[str, float] | None = None
        if o.is_usage:
            for (c, t), v in ov.use.items():
                q = vals.get(v.name, 0.0)
                if q:
                    assigned.setdefault(c, [0.0] * T)[t] += q
                    usage_units[t] += q
            paid = [0.0] * T
            if ov.use_n:
                for t, v in ov.use_n.items():
                    paid[t] = vals.get(v.name, 0.0)
            else:
                paid = list(usage_units)
            for t in range(T):
                if paid[t]:
                    unit_cost = o.usage_price * H[t] + o.price_per_period
                    acc.usage(t, unit_cost * paid[t], pp[t])
            active = paid
        elif o.is_committed and ov.buy_c:
            by_class = {}
            d, stop = ov.service or (0, T)
            for c, v in ov.buy_c.items():
                q = vals.get(v.name, 0.0)
                by_class[c] = q
                if q:
                    purchased[0] += q
                    acc.flows(ov.flows.get(v.name, []), q)
                    for t in range(d, stop):
                        active[t] += q
                        assigned.setdefault(c, [0.0] * T)[t] += q
        else:
            for s, v in ov.buy.items():
                q = vals.get(v.name, 0.0)
                purchased[s] = q
                if q:
                    acc.flows(ov.flows.get(v.name, []), q)
            active = list(act_of[i])
            if o.is_committed:
                if ov.split is not None:
                    # this option's share of its group's split, in its own units
                    g, _scale = ov.split
                    for t in range(T):
                        if not active[t]:
                            continue
                        cap = sum(sc * act_of[j][t] for j, sc in model.split_members[g])
                        if cap <= 0:
                            continue
                        for c in classes:
                            z = model.split_vars.get((g, c, t))
                            q = vals.get(z.name, 0.0) if z is not None else 0.0
                            if q:
                                share = q * active[t] / cap
                                assigned.setdefault(c, [0.0] * T)[t] += share
                elif ov.asg:
                    for (c, t), v in ov.asg.items():
                        q = vals.get(v.name, 0.0)
                        if q:
                            assigned.setdefault(c, [0.0] * T)[t] += q
                else:
                    cls = [c for c in classes if _perf_of(p, o, c) > 0]
                    if len(cls) == 1 and any(active):
                        assigned[cls[0]] = list(active)
            else:  # savings plan: what it covers, per class
                for (li, t), v in ov.cov.items():
                    q = vals.get(v.name, 0.0)
                    if q:
                        assigned.setdefault(ov.lanes[li].cls, [0.0] * T)[t] += q
        for (c, t), v in ov.peak.items():
            q = vals.get(v.name, 0.0)
            if q:
                peak_units.setdefault(c, [0.0] * T)[t] = q
        total_nom += acc.nom
        total_npv += acc.npv
        used = (
            any(purchased)
            or any(active)
            or any(usage_units)
            or acc.nom != 0
            or any(any(v) for v in assigned.values())
            or any(any(v) for v in peak_units.values())
            or any(covered.get(i, ()))
        )
        if not (used or all_options):
            continue
        options.append(
            OptionResult(
                name=o.name,
                kind=o.kind,
                purchased=[_r(x) for x in purchased],
                purchased_by_class=None
                if by_class is None
                else {k: _r(v) for k, v in by_class.items()},
                active=[_r(x) for x in active],
                usage_units=[_r(x) for x in usage_units],
                usage_hours=[_r(x * h) for x, h in zip(usage_units, H)],
                covered_by_savings_plans=[_r(x) for x in covered.get(i, [0.0] * T)],
                assigned={c: [_r(x) for x in v] for c, v in assigned.items()},
                peak_units={c: [_r(x) for x in v] for c, v in peak_units.items()},
                cost=_r(acc.nom),
                npv=_r(acc.npv),
                cost_by_category={k: _r(v) for k, v in acc.cat.items() if v},
                cost_by_period=[_r(x) for x in acc.per],
                cost_after_horizon=_r(acc.after),
            )
        )
    cost_by_period = [sum(by_period_cat[c][t] for c in _CATEGORIES) for t in range(T)]
    cost_by_category = {
        c: _r(sum(by_period_cat[c]) + after_cat[c])
        for c in _CATEGORIES
        if sum(by_period_cat[c]) + after_cat[c]
    }
    return {
        "total_nominal_cost": _r(total_nom),
        "npv": _r(total_npv),
        "cost_by_period": [_r(x) for x in cost_by_period],
        "cost_after_horizon": _r(sum(after_cat.values())),
        "cost_by_category": cost_by_category,
        "cost_by_period_category": {
            c: [_r(x) for x in v] for c, v in by_period_cat.items() if any(v)
        },
        "options": options,
    }


def _perf_of(p: CapacityProblem, o: Option, c: str) -> float:
    if o.eligible_classes is not None and c not in o.eligible_classes:
        return 0.0
    if o.kind == "spot" and not p.class_info(c).interruptible:
        return 0.0
    if o.performance:
        return float(o.performance.get(c, 0.0))
    return float(o.capacity_per_unit or 0.0)


# ============================================================================ infeasibility


def _fmt(x: float) -> str:
    if abs(x - round(x)) < 1e-6:
        return f"{round(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _slack_rows(model: BuiltModel, vals: dict[str, float]) -> list[tuple[_Row, float]]:
    out = []
    for r in model.rows:
        if r.slack is None:
            continue
        s = vals.get(r.slack.name, 0.0)
        if s > 1e-6 * max(1.0, abs(r.rhs)):
            out.append((r, s))
    return out


def _qty(x: float, unit: str) -> str:
    """'1 unit', '3 units', '2.5 GPU-hours'."""
    if unit.endswith("s") and abs(x - 1) < 1e-9 and unit in ("units", "cores", "concurrent units"):
        unit = unit[:-1]
    return f"{_fmt(x)} {unit}".strip()


def _demand_shortfall(p: CapacityProblem, r: _Row, s: float) -> Shortfall:
    when = p.period_label(r.period or 0)
    req = r.rhs * r.scale
    short = s * r.scale
    what = "at its peak " if r.kind == "peak_demand" else ""
    msg = (
        f"class {r.name} needs {_qty(req, r.unit)} {what}in {when}; only {_fmt(req - short)} "
        f"can be supplied (short by {_fmt(short)})"
    )
    return Shortfall(
        kind=r.kind,  # type: ignore[arg-type]
        name=r.name,
        period=r.period,
        required=_r(req),
        available=_r(req - short),
        shortfall=_r(short),
        unit=r.unit,
        message=msg,
    )


_LIMIT_WORDS = {
    "option_units": "max units of option",
    "option_peak_units": "max units (at the peak) of option",
    "pool_units": "max units of limiting set",
    "pool_cores": "max cores of limiting set",
    "pool_peak_units": "max units (at the peak) of limiting set",
    "pool_peak_cores": "max cores (at the peak) of limiting set",
}


def _limit_raise(p: CapacityProblem, r: _Row, s: float) -> Shortfall:
    if r.kind == "budget_total":
        msg = f"raise the total budget by {_fmt(s)} (from {_fmt(r.rhs)} to {_fmt(r.rhs + s)})"
    elif r.kind == "budget_period":
        msg = (
            f"raise the budget of {p.period_label(r.period or 0)} by {_fmt(s)} "
            f"(from {_fmt(r.rhs)} to {_fmt(r.rhs + s)})"
        )
    else:
        what = _LIMIT_WORDS.get(r.kind, r.kind)
        msg = (
            f"raise the {what} '{r.name}' by {_qty(s, r.unit)} in {p.period_label(r.period or 0)} "
            f"(from {_fmt(r.rhs)} to {_fmt(r.rhs + s)})"
        )
    return Shortfall(
        kind=r.kind,  # type: ignore[arg-type]
        name=r.name,
        period=r.period,
        required=_r(r.rhs + s),
        available=_r(r.rhs),
        shortfall=_r(s),
        unit=r.unit,
        message=msg,
    )


def _structural_hint(model: BuiltModel, c: str, t: int, peak: bool) -> str:
    """Why no cap or budget increase helps class ``c`` in period ``t``."""
    p = model.problem
    info = p.class_info(c)
    eligible: list[str] = []
    usable: list[str] = []
    excluded_spot = False
    for i, o in enumerate(p.options):
        ov = model.ovars[i]
        if o.is_savings_plan:
            serves = any(ln.cls == c for ln in ov.lanes)
        else:
            serves = _perf_of(p, o, c) > 0
            spot_capable = (
                o.kind == "spot" and (o.performance.get(c, o.capacity_per_unit or 0) or 0) > 0
            )
            if spot_capable and (not info.interruptible or (peak and info.latency_bound)):
                excluded_spot = True
                serves = serves and not (peak and info.latency_bound)
        if not serves:
            continue
        eligible.append(o.name)
        if o.is_usage:
            usable.append(o.name)
        elif o.is_committed and ov.buy_c:
            if ov.service and ov.service[0] <= t < ov.service[1]:
                usable.append(o.name)
        elif t in ov.act:
            # in service in t only if some purchase period covers it
            L, m = o.lead_time_periods, o.term_periods or 1
            if any(s + L <= t < s + L + m for s in ov.buy):
                usable.append(o.name)
    spot_note = ""
    if excluded_spot:
        spot_note = (
            " (spot is excluded: class is latency-bound)"
            if peak and info.latency_bound
            else " (spot is excluded: class is not interruptible)"
        )
    if not eligible:
        return f"no option can serve class {c}{spot_note}"
    if not usable:
        return (
            f"none of the options able to serve class {c} ({', '.join(eligible)}) can be in "
            f"service in {p.period_label(t)} (lead time, purchase periods or "
            f"commitment_charge={p.model_flags.commitment_charge}){spot_note}"
        )
    return f"the options able to serve class {c} are limited by their own rules{spot_note}"


def _explain(
    problem: CapacityProblem, run_kwargs: dict[str, Any], relax: bool
) -> tuple[list[Shortfall], str, bool]:
    """Elastic relaxation. Returns (shortfalls, explanation, really_infeasible)."""
    a = build_model(problem, relax=relax, elastic="demand")
    ra = _run(a.prob, is_mip=a.integer_vars > 0, **run_kwargs)
    if ra.status not in ("optimal", "feasible"):
        return (
            [],
            f"the problem is infeasible; the elastic relaxation could not be solved ({ra.status})",
            True,
        )
    va = _values(a.prob)
    demand = _slack_rows(a, va)
    if not demand:
        return [], "", False
    b = build_model(problem, relax=relax, elastic="limits")
    rb = _run(b.prob, is_mip=b.integer_vars > 0, **run_kwargs)
    raises: list[tuple[_Row, float]] = []
    limits_help = rb.status in ("optimal", "feasible")
    if limits_help:
        raises = _slack_rows(b, _values(b.prob))
    shortfalls: list[Shortfall] = []
    lines: list[str] = []
    used_raises: set[int] = set()
    raise_sf = {id(r): _limit_raise(problem, r, s) for r, s in raises}
    for r, s in demand:
        sf = _demand_shortfall(problem, r, s)
        relevant = [
            rr
            for rr, _ in raises
            if (rr.period is None or rr.period == r.period) and r.name in rr.classes
        ]
        parts = []
        for rr in relevant:
            parts.append(raise_sf[id(rr)].message)
            used_raises.add(id(rr))
        relax_txt = f"relax the demand by {_qty(sf.shortfall, sf.unit)}"
        if parts:
            remedy = " — " + "; ".join(parts) + f"; or {relax_txt}"
        elif limits_help and raises:
            remedy = f" — raise the limits listed below, or {relax_txt}"
        else:
            hint = _structural_hint(a, r.name, r.period or 0, r.kind == "peak_demand")
            remedy = f" — no cap or budget increase helps: {hint}; {relax_txt}"
        sf.message = sf.message + remedy
        shortfalls.append(sf)
        lines.append(sf.message)
    for rr, _ in raises:
        shortfalls.append(raise_sf[id(rr)])
        if id(rr) not in used_raises:
            lines.append(raise_sf[id(rr)].message)
    head = "Infeasible: the demand cannot be met."
    if len(demand) > 1:
        head += (
            " The shortfalls below are one smallest combination (relative to each demand);"
            " classes that share capped options could trade them."
        )
    if limits_help and raises:
        head += " Raising all the limits named below by the amounts shown makes it feasible."
    return shortfalls, head + "\n" + "\n".join(f"- {ln}" for ln in lines), True


# ============================================================================ entry point


def solve(
    problem: CapacityProblem,
    *,
    solver: str = "highs",
    relax: bool = False,
    time_limit: float | None = None,
    gap: float | None = None,
    threads: int | None = None,
    explain: bool = True,
    all_options: bool = False,
    msg: bool = False,
) -> SolveResult:
    """Build and solve ``problem``.

    Args:
        solver: "highs" (default; highspy via ``pulp.HiGHS``, falls back to CBC if HiGHS
            fails) or "cbc" (``PULP_CBC_CMD``).
        relax: solve the LP relaxation (every variable continuous).
        time_limit: seconds; a time-limited run with a plan reports "feasible".
        gap: relative MIP gap at which the solver may stop (solver default if None: 1e-4
            for HiGHS, 0 for CBC).
        threads: solver threads (solver default if None).
        explain: when infeasible, run the elastic relaxation and explain the shortfall.
        all_options: list every option in the result, not only those the plan uses.
        msg: show the solver log.
    """
    t0 = time.perf_counter()
    model = build_model(problem, relax=relax)
    run_kwargs: dict[str, Any] = {
        "solver": solver,
        "time_limit": time_limit,
        "gap": gap,
        "threads": threads,
        "msg": msg,
    }
    is_mip = model.integer_vars > 0
    try:
        run = _run(model.prob, is_mip=is_mip, **run_kwargs)
    except (pulp.PulpSolverError, OSError) as exc:
        return SolveResult(
            status="error",
            message=f"solver failed: {exc}",
            solver=solver,
            relaxed=relax,
            objective_kind=problem.objective.kind,
            build_seconds=model.build_seconds,
            total_seconds=time.perf_counter() - t0,
            stats=_stats(model.prob, model.integer_vars),
        )
    base: dict[str, Any] = {
        "solver": run.solver,
        "relaxed": relax,
        "objective_kind": problem.objective.kind,
        "build_seconds": model.build_seconds,
        "solve_seconds": run.seconds,
        "stats": _stats(model.prob, model.integer_vars),
    }
    status = run.status
    if status in ("infeasible", "infeasible_or_unbounded"):
        if not explain:
            return SolveResult(
                status="infeasible",
                message="infeasible (explanation not requested)",
                total_seconds=time.perf_counter() - t0,
                **base,
            )
        shortfalls, text, really = _explain(problem, run_kwargs, relax)
        if not really:
            # the demand can be met: the solver's verdict was about unboundedness
            st: SolveStatus = "unbounded" if status == "infeasible_or_unbounded" else "error"
            return SolveResult(
                status=st,
                message="the solver reported infeasible/unbounded but every demand can be met",
                total_seconds=time.perf_counter() - t0,
                **base,
            )
        return SolveResult(
            status="infeasible",
            message=text.splitlines()[0] if text else "infeasible",
            shortfalls=shortfalls,
            explanation=text,
            total_seconds=time.perf_counter() - t0,
            **base,
        )
    if status in ("unbounded", "error"):
        return SolveResult(
            status=status,  # type: ignore[arg-type]
            message=run.message or status,
            total_seconds=time.perf_counter() - t0,
            **base,
        )
    vals = _values(model.prob)
    plan = _plan(model, vals, all_options)
    objective = plan["npv"] if problem.objective.kind == "npv" else plan["total_nominal_cost"]
    bound: float | None
    if not is_mip:
        # LP: the optimum of the perturbed LP is a vertex of the same polyhedron; the
        # bound equals the objective when optimal (and is unknown when stopped early)
        bound = objective if status == "optimal" else None
    else:
        bound = run.bound
        if bound is None and status == "optimal":
            # CBC prints no separate bound when it proves optimality: the bound is then the
            # (perturbed) objective value it proved optimal
            pert = model.prob.objective.value()
            bound = float(pert) if pert is not None else objective
        if bound is not None:
            # solver bound is on the perturbed objective, which is <= (1 + TIE_BREAK) x cost
            bound = bound / (1.0 + TIE_BREAK) if bound >= 0 else bound * (1.0 + TIE_BREAK)
            bound = min(bound, objective)
    gap_val = None
    if bound is not None:
        gap_val = 0.0 if objective == bound else (objective - bound) / max(abs(objective), 1e-9)
    return SolveResult(
        status=status,  # type: ignore[arg-type]
        message=run.message or ("optimal" if status == "optimal" else ""),
        objective=objective,
        bound=_r(bound) if bound is not None else None,
        gap=gap_val,
        total_seconds=time.perf_counter() - t0,
        **plan,
        **base,
    )
