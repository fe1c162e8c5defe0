"""The generic, unit-agnostic capacity-purchase problem (``CapacityProblem``).

A :class:`CapacityProblem` says *what must be served* (demand per class per period, and
optionally a peak per class per period), *what can be bought* (options: on-demand, spot,
reserved, savings plans, private servers) and *under which conventions* (``model_flags``,
``objective``, ``budget``). It knows nothing about GPUs, clouds or months: a "unit" is
whatever one purchasable thing is (a VM, a GPU server, one dollar of commitment) and
demand is in whatever unit the caller chooses (``demand_unit``). The same format
expresses archplan's monthly GPU plans and the published textbook cases in
``tests/data/reference_cases`` (which it reads unmodified).

Time
====
``periods`` periods numbered ``0 .. periods-1``; period ``t`` lasts ``period_hours[t]``
hours (a number = every period the same; a list = one length per period, e.g. calendar
months). Periods after the horizon (needed when a commitment runs past it) are assumed
to last as long as the last period.

Demand and supply
=================
* ``demand[c][t]`` -- the *energy* class ``c`` needs in period ``t``, in
  ``demand_unit``-hours (``demand_basis: energy``, default), or a *level* to hold during
  the whole period (``demand_basis: level``; energy = level x period_hours). With
  1-hour periods (the reference cases) both readings coincide.
* ``peak[c][t]`` (optional) -- concurrent capacity class ``c`` needs at its peak in period
  ``t``, in the same capacity unit as ``performance``.
* ``performance[c]`` of an option -- capacity of *one unit* for class ``c``; values for
  different classes are *alternatives* (a unit serves one class at a time), not additive.
  ``capacity_per_unit`` gives one figure for every eligible class when ``performance``
  is empty. A committed/owned unit active in period ``t`` supplies ``performance[c]``
  concurrent capacity and ``performance[c] * period_hours[t]`` energy. Usage-priced units
  (on-demand, spot, savings-plan coverage) are counted as *average units running* in the
  period (``hours used / period_hours``) and pay per use; they may also cover a class's
  peak through separate peak variables bounded by the option's caps (see solver).
* Spot: only classes with ``interruptible: true`` may use it; it needs
  ``(1 + interruption_overhead)`` x the hours to deliver the same work, at most
  ``availability x max_units`` units are obtainable, and it never counts toward the peak
  of a ``latency_bound`` class.

Money
=====
Per option and per unit: ``usage_price`` (per unit-hour used) and ``price_per_period``
(for usage options: per unit-period used; for reserved/private: per active unit-period,
paid used or not; for savings plans: per committed dollar per period), ``upfront``
(per unit, at purchase; financed over ``financing.periods`` instead when ``financing``
is set), ``recurring_costs`` (named per-unit per-active-period costs, e.g. power,
colocation, support, staff), ``residual_value`` (per unit at the end of its term).
See :mod:`app.planner.solver` for the exact objective and the horizon-end conventions.

Every convention that the published cases switch on is a field of ``model_flags`` --
nothing is special-cased in code. Validation errors name the field path (see
:class:`ProblemInputError`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)

__all__ = [
    "COMMITTED_KINDS",
    "USAGE_KINDS",
    "Budget",
    "CapacityProblem",
    "DemandClass",
    "Financing",
    "LimitingSet",
    "ModelFlags",
    "ObjectiveSpec",
    "Option",
    "OptionKind",
    "OptionLimits",
    "PerPeriod",
    "ProblemInputError",
    "expand_per_period",
]

OptionKind = Literal["on_demand", "spot", "reserved", "savings_plan", "private"]
USAGE_KINDS: frozenset[str] = frozenset({"on_demand", "spot"})
COMMITTED_KINDS: frozenset[str] = frozenset({"reserved", "private"})

CommitmentCharge = Literal[
    "full_term_at_purchase_even_beyond_horizon",
    "prorata_with_terminal_value",
    "forbid_past_horizon",
    "price_per_period_times_periods",
]
CommitMode = Literal["purchase_any_period_rolling_term", "fixed_for_horizon_per_app"]


class ProblemInputError(ValueError):
    """Bad problem input; ``path`` names the offending field (e.g. ``options[2].term_periods``).

    A ``ValueError`` so that pydantic reports it as a validation error when the model is
    nested in another model; :func:`app.planner.problem_io.parse_problem` unwraps it.
    """

    def __init__(self, path: str, message: str, *, errors: list[tuple[str, str]] | None = None):
        self.path = path
        self.message = message
        self.errors = errors if errors is not None else [(path, message)]
        text = f"{path}: {message}" if path else message
        if len(self.errors) > 1:
            text += "".join(f"\n  {p or '<root>'}: {m}" for p, m in self.errors[1:])
        super().__init__(text)


# --------------------------------------------------------------------------- per period


def _per_period(value: Any) -> float | list[float | None]:
    """A number (same every period) or a list with one number (or null) per period."""
    if isinstance(value, bool):
        raise ValueError("must be a number or a list of numbers, not a boolean")  # noqa: TRY004
    if isinstance(value, (int, float)):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError("must be finite")
        return f
    if isinstance(value, (list, tuple)):
        out: list[float | None] = []
        for i, item in enumerate(value):
            if item is None:
                out.append(None)
                continue
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ValueError(f"item [{i}] must be a number or null, got {item!r}")  # noqa: TRY004
            f = float(item)
            if not math.isfinite(f):
                raise ValueError(f"item [{i}] must be finite")
            out.append(f)
        return out
    raise ValueError(f"must be a number or a list of numbers, got {type(value).__name__}")


PerPeriod = Annotated[
    float | list[float | None],
    PlainValidator(_per_period, json_schema_input_type=float | list[float | None]),
]
"""A number (same value every period) or one value per period (``null`` = no value)."""


def expand_per_period(value: float | list[float | None] | None, periods: int) -> list[float | None]:
    """Expand a :data:`PerPeriod` value to a list of ``periods`` entries."""
    if value is None:
        return [None] * periods
    if isinstance(value, list):
        return list(value)
    return [float(value)] * periods


# --------------------------------------------------------------------------- parts


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class DemandClass(_Model):
    """Properties of a demand class (a workload / "app")."""

    description: str | None = None
    interruptible: bool = Field(False, description="May run on spot (interruptible) capacity.")
    latency_bound: bool = Field(
        False, description="Spot capacity never counts toward this class's peak."
    )
    peak_hours: float = Field(
        0.0,
        ge=0,
        description=(
            "Hours per period the peak lasts. Usage-priced units that cover the peak are "
            "then paid for at least that long (0 = peak coverage by usage options costs "
            "nothing beyond the energy they deliver)."
        ),
    )


class LimitingSet(_Model):
    """A cap (pool: provider, region, site...) evaluated every period over member options.

    Counts every unit of the member options that is active (committed) or running
    (usage; average over the period, and separately the units covering a peak).
    ``null`` = no cap.
    """

    name: str = Field(min_length=1)
    description: str | None = None
    max_units: PerPeriod | None = Field(
        None, validation_alias=AliasChoices("max_units", "max_vms"), description="Max units."
    )
    max_cores: PerPeriod | None = Field(None, description="Max sum of units x option.cores.")
    members: list[str] = Field(
        default_factory=list,
        description="Option names (in addition to options naming this set in limits.limiting_sets).",
    )


class OptionLimits(_Model):
    max_units: PerPeriod | None = Field(
        None,
        validation_alias=AliasChoices("max_units", "max_vms"),
        description="Max units of this option active/running in any period (null = no cap).",
    )
    limiting_sets: list[str] = Field(default_factory=list)


class Financing(_Model):
    """Capex (``upfront``) paid in equal instalments instead of at purchase.

    Instalment ``A = upfront * r / (1 - (1 + r) ** -periods)`` (``upfront / periods`` when
    ``r = 0``), due at the end of the purchase period and of the next ``periods - 1``.
    """

    periods: int = Field(ge=1)
    rate_per_period: float = Field(0.0, ge=0)

    def instalment(self, principal: float) -> float:
        r, n = self.rate_per_period, self.periods
        if r == 0:
            return principal / n
        return principal * r / (1.0 - (1.0 + r) ** (-n))

    def balance_after(self, principal: float, paid: int) -> float:
        """Outstanding principal after ``paid`` instalments."""
        r, n = self.rate_per_period, self.periods
        paid = max(0, min(paid, n))
        if r == 0:
            return principal * (n - paid) / n
        a = self.instalment(principal)
        rem = n - paid
        return a * (1.0 - (1.0 + r) ** (-rem)) / r


class Option(_Model):
    """One purchasable option. Prices are per unit (per committed $ for savings plans)."""

    name: str = Field(min_length=1)
    kind: OptionKind
    description: str | None = None
    market: str | None = Field(None, description="Informational (e.g. reserved market).")
    provider: str | None = None
    region: str | None = None
    site: str | None = None

    usage_price: float = Field(0.0, ge=0, description="Usage options: price per unit-hour used.")
    price_per_period: float = Field(
        0.0,
        ge=0,
        description=(
            "Usage options: price per unit-period used. Reserved/private: recurring price "
            "per active unit-period, paid used or not. Savings plan: price per committed "
            "dollar per period (normally 1)."
        ),
    )
    upfront: float = Field(0.0, ge=0, description="Paid per unit at purchase (or financed).")
    term_periods: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("term_periods", "useful_life_periods"),
        description="Commitment term / useful life in periods (committed options, savings plans).",
    )
    lead_time_periods: int = Field(
        0, ge=0, description="Ordered in t, usable from t + lead_time_periods."
    )
    purchase_periods: list[int] | None = Field(
        None, description="Periods in which this option may be bought (default: any)."
    )

    performance: dict[str, float] = Field(
        default_factory=dict, description="Capacity of one unit per class (alternatives)."
    )
    capacity_per_unit: float | None = Field(
        None, gt=0, description="Capacity for every eligible class when performance is empty."
    )
    eligible_classes: list[str] | None = Field(
        None, description="Restrict the classes this option may serve."
    )
    cores: float = Field(1.0, ge=0, description="Cores per unit, for limiting-set max_cores.")
    limits: OptionLimits = Field(default_factory=OptionLimits)
    integer: bool | None = Field(
        None, description="Integer unit counts (default: model_flags.integer)."
    )

    # spot
    interruption_overhead: float = Field(
        0.0, ge=0, description="Spot: needs (1 + overhead) x hours for the same work."
    )
    availability: float = Field(
        1.0, gt=0, le=1, description="Spot: at most availability x max_units units obtainable."
    )

    # private / owned
    recurring_costs: dict[str, float] = Field(
        default_factory=dict,
        description="Named costs per active unit per period (power, colocation, staff...).",
    )
    financing: Financing | None = None
    residual_value: float = Field(
        0.0, ge=0, description="Value per unit at the end of its term (salvage)."
    )

    # savings plans
    rates: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Savings plan: price per unit-hour of covered usage, keyed by class (the plan "
            "then serves that class with its own performance) or by a usage option name "
            "(the plan pays for that option's usage)."
        ),
    )
    commitment_unit: Literal["$ per period", "$ per hour"] = Field(
        "$ per period",
        description="Savings plan: one committed unit buys $1 of usage per period or per hour.",
    )
    commitment_integer: bool | None = Field(
        None, description="Savings plan: integer commitment (default: model_flags)."
    )

    @property
    def is_usage(self) -> bool:
        return self.kind in USAGE_KINDS

    @property
    def is_committed(self) -> bool:
        return self.kind in COMMITTED_KINDS

    @property
    def is_savings_plan(self) -> bool:
        return self.kind == "savings_plan"

    @property
    def recurring_per_period(self) -> float:
        """Recurring cost per active unit per period (committed options)."""
        return self.price_per_period + sum(self.recurring_costs.values())


class Budget(_Model):
    """Spending caps.

    ``total`` caps the total cost (nominal or NPV per ``basis``; the same accounting as
    the reported totals, credits included). ``per_period`` caps the gross cash spent in
    each period of the horizon (upfront, instalments, commitments, recurring and usage
    charges due in that period; residual-value credits are not netted).
    """

    total: float | None = Field(None, ge=0)
    per_period: PerPeriod | None = None
    basis: Literal["nominal", "npv"] = "nominal"


class ObjectiveSpec(_Model):
    """What to minimise.

    ``npv`` discounts a cash flow due at the start of period ``k`` by ``(1+r)**-k``;
    upfront/capex is due at the start of its purchase period; per-period flows (usage,
    commitments, recurring, instalments) at the end of their period (or the start, with
    ``per_period_flows: start``); residual and terminal values at the end of the period
    in which the unit's term ends, or of the last horizon period.
    """

    kind: Literal["nominal", "npv"] = "nominal"
    discount_rate_per_period: float = Field(0.0, ge=0, lt=1)
    per_period_flows: Literal["end", "start"] = "end"


class ModelFlags(_Model):
    """The model's conventions, as explicit switches (the reference cases' ``model_flags``)."""

    reserved_mode: CommitMode = Field(
        "purchase_any_period_rolling_term",
        description=(
            "purchase_any_period_rolling_term: units bought in any period t, active for "
            "term_periods from t + lead time. fixed_for_horizon_per_app: one count per "
            "(option, class) bought at period 0, dedicated to that class, constant for the "
            "horizon (term must cover it)."
        ),
    )
    private_mode: CommitMode = Field(
        "purchase_any_period_rolling_term", description="As reserved_mode, for private options."
    )
    on_demand_mode: Literal["per_period_per_app", "per_period"] = Field(
        "per_period_per_app",
        description=(
            "Usage options: per_period_per_app = an integer count per (option, class, "
            "period); per_period = an integer count per (option, period) shared by classes. "
            "Identical for single-class options and for continuous counts."
        ),
    )
    commitment_charge: CommitmentCharge = Field(
        "prorata_with_terminal_value",
        validation_alias=AliasChoices("commitment_charge", "horizon_end"),
        description=(
            "Horizon-end convention for terms running past the last period: "
            "full_term_at_purchase_even_beyond_horizon = charge the whole commitment; "
            "prorata_with_terminal_value = charge in-horizon periods and credit the "
            "depreciated value at the horizon end; forbid_past_horizon = terms must end "
            "within the horizon; price_per_period_times_periods = recurring charged for "
            "in-horizon periods only, upfront in full, no terminal value."
        ),
    )
    savings_plan_commitment_integer: bool = Field(
        False, description="Savings-plan commitments in whole $ (default for all plans)."
    )
    integer: bool = Field(True, description="Integer unit counts (default for all options).")
    committed_assignment: Literal["time_shared", "dedicated"] = Field(
        "time_shared",
        description=(
            "Committed units serving several classes: time_shared = split fractionally "
            "between classes within a period; dedicated = whole units per class (integer)."
        ),
    )


# --------------------------------------------------------------------------- problem


class CapacityProblem(_Model):
    """A capacity-purchase problem. See the module docstring for the meaning of fields."""

    format_version: int = 1
    name: str = "capacity-problem"
    description: str | None = None
    source: str | None = None

    periods: int | None = Field(
        None, ge=1, description="Number of periods (default: length of the demand lists)."
    )
    period_hours: PerPeriod = Field(1.0, description="Hours per period (number or list).")
    period_labels: list[str] | None = Field(None, description="Names of periods for messages.")

    demand_unit: str = "units"
    peak_unit: str = "concurrent units"
    demand_basis: Literal["energy", "level"] = "energy"
    demand: dict[str, PerPeriod] = Field(description="Per class, per period.")
    peak: dict[str, PerPeriod] | None = Field(None, description="Peak concurrent capacity.")
    classes: dict[str, DemandClass] = Field(
        default_factory=dict, description="Class properties (classes default to plain)."
    )

    limiting_sets: list[LimitingSet] = Field(default_factory=list)
    options: list[Option]
    budget: Budget | None = None
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    model_flags: ModelFlags = Field(default_factory=ModelFlags)

    # documentation carried by the reference cases (not used by the model)
    conventions: str | None = Field(None, description="Conventions in prose.")
    expected: dict[str, Any] | None = Field(None, description="Known result, for tests.")
    verified_by_independent_model: bool | None = None
    independent_value: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    # ------------------------------------------------------------------ derived

    @property
    def n_periods(self) -> int:
        assert self.periods is not None
        return self.periods

    @property
    def class_names(self) -> list[str]:
        """Demand classes in a deterministic order: demand keys, then extra declared ones."""
        names = list(self.demand)
        names += [c for c in self.classes if c not in self.demand]
        return names

    def class_info(self, name: str) -> DemandClass:
        return self.classes.get(name) or DemandClass()

    def hours(self) -> list[float]:
        return [float(h) for h in expand_per_period(self.period_hours, self.n_periods)]  # type: ignore[arg-type]

    def energy_demand(self) -> dict[str, list[float]]:
        """Energy (demand_unit-hours) per class per period."""
        hours = self.hours()
        out: dict[str, list[float]] = {}
        for c in self.class_names:
            vals = expand_per_period(self.demand.get(c, 0.0), self.n_periods)
            v = [float(x or 0.0) for x in vals]
            if self.demand_basis == "level":
                v = [x * h for x, h in zip(v, hours)]
            out[c] = v
        return out

    def peak_demand(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for c, val in (self.peak or {}).items():
            out[c] = [float(x or 0.0) for x in expand_per_period(val, self.n_periods)]
        return out

    def period_label(self, t: int) -> str:
        if self.period_labels and t < len(self.period_labels):
            return f"period {t} ({self.period_labels[t]})"
        return f"period {t}"

    def option_by_name(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)

    # ------------------------------------------------------------------ validation

    @model_validator(mode="after")
    def _check(self) -> CapacityProblem:
        errors = _cross_field_errors(self)
        if errors:
            path, msg = errors[0]
            raise ProblemInputError(path, msg, errors=errors)
        return self


def _cross_field_errors(p: CapacityProblem) -> list[tuple[str, str]]:
    """Checks that span several fields; returns ``(path, message)`` pairs."""
    errs: list[tuple[str, str]] = []

    def err(path: str, msg: str) -> None:
        errs.append((path, msg))

    if not p.demand:
        err("demand", "at least one demand class is required")
        return errs

    # periods
    lengths = {c: len(v) for c, v in p.demand.items() if isinstance(v, list)}
    if p.periods is None:
        if lengths:
            p.periods = max(lengths.values())
        else:
            err("periods", "required when every demand is a single number")
            return errs
    T = p.periods
    for c, n in lengths.items():
        if n != T:
            err(f"demand.{c}", f"has {n} values but periods is {T}")

    def check_pp(path: str, value: Any, *, positive: bool = False, allow_none: bool = True) -> None:
        if value is None:
            return
        vals = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) != T:
            err(path, f"has {len(value)} values but periods is {T}")
        for i, v in enumerate(vals):
            sub = f"{path}[{i}]" if isinstance(value, list) else path
            if v is None:
                if not allow_none:
                    err(sub, "must be a number")
                continue
            if positive and v <= 0:
                err(sub, f"must be > 0, got {v:g}")
            elif v < 0:
                err(sub, f"must be >= 0, got {v:g}")

    check_pp("period_hours", p.period_hours, positive=True, allow_none=False)
    for c, v in p.demand.items():
        check_pp(f"demand.{c}", v, allow_none=False)
    if p.period_labels is not None and len(p.period_labels) != T:
        err("period_labels", f"has {len(p.period_labels)} labels but periods is {T}")

    classes = set(p.class_names)  # declared classes without demand have zero demand
    for c, v in (p.peak or {}).items():
        if c not in classes:
            err(f"peak.{c}", f"unknown class {c!r} (classes: {sorted(classes)})")
        check_pp(f"peak.{c}", v, allow_none=False)

    # limiting sets
    ls_names: dict[str, int] = {}
    for i, ls in enumerate(p.limiting_sets):
        if ls.name in ls_names:
            err(f"limiting_sets[{i}].name", f"duplicate limiting set name {ls.name!r}")
        ls_names[ls.name] = i
        check_pp(f"limiting_sets[{i}].max_units", ls.max_units)
        check_pp(f"limiting_sets[{i}].max_cores", ls.max_cores)

    # options
    names: dict[str, int] = {}
    for i, o in enumerate(p.options):
        if o.name in names:
            err(f"options[{i}].name", f"duplicate option name {o.name!r}")
        names[o.name] = i
    usage_names = {o.name for o in p.options if o.is_usage}
    for i, ls in enumerate(p.limiting_sets):
        for j, m in enumerate(ls.members):
            if m not in names:
                err(f"limiting_sets[{i}].members[{j}]", f"unknown option {m!r}")

    flags = p.model_flags
    for i, o in enumerate(p.options):
        base = f"options[{i}]"
        for c, v in o.performance.items():
            if c not in classes:
                err(f"{base}.performance.{c}", f"unknown class {c!r} (classes: {sorted(classes)})")
            elif v < 0 or not math.isfinite(v):
                err(f"{base}.performance.{c}", f"must be a finite number >= 0, got {v}")
        for j, c in enumerate(o.eligible_classes or []):
            if c not in classes:
                err(f"{base}.eligible_classes[{j}]", f"unknown class {c!r}")
        for j, s in enumerate(o.limits.limiting_sets):
            if s not in ls_names:
                err(f"{base}.limits.limiting_sets[{j}]", f"unknown limiting set {s!r}")
        check_pp(f"{base}.limits.max_units", o.limits.max_units)
        for j, s in enumerate(o.purchase_periods or []):
            if not 0 <= s < T:
                err(f"{base}.purchase_periods[{j}]", f"must be in 0..{T - 1}, got {s}")
        for k, v in o.recurring_costs.items():
            if v < 0 or not math.isfinite(v):
                err(f"{base}.recurring_costs.{k}", f"must be a finite number >= 0, got {v}")

        if o.is_usage:
            if o.upfront:
                err(f"{base}.upfront", f"{o.kind} options are paid per use; upfront must be 0")
            if o.term_periods not in (None, 1):
                err(f"{base}.term_periods", f"{o.kind} options have no term (use 1 or omit)")
            if o.financing is not None:
                err(f"{base}.financing", "only private options can be financed")
            if o.residual_value:
                err(f"{base}.residual_value", f"{o.kind} options have no residual value")
            if o.rates:
                err(f"{base}.rates", "rates apply to savings_plan options only")
        else:
            if o.term_periods is None:
                err(f"{base}.term_periods", f"required for {o.kind} options")
            if o.usage_price:
                err(f"{base}.usage_price", f"{o.kind} options have no usage price")
        if o.kind != "spot":
            if o.interruption_overhead:
                err(f"{base}.interruption_overhead", "applies to spot options only")
            if o.availability != 1.0:
                err(f"{base}.availability", "applies to spot options only")
        if o.financing is not None and o.kind != "private":
            err(f"{base}.financing", "only private options can be financed")
        if o.is_committed and o.residual_value > o.upfront + 1e-12:
            err(
                f"{base}.residual_value",
                f"residual value {o.residual_value:g} exceeds the capex/upfront {o.upfront:g}",
            )
        if o.is_savings_plan:
            if not o.rates:
                err(f"{base}.rates", "a savings plan needs rates per class or per usage option")
            if o.residual_value:
                err(f"{base}.residual_value", "savings plans have no residual value")
            for k, r in o.rates.items():
                if r <= 0 or not math.isfinite(r):
                    err(f"{base}.rates.{k}", f"must be a finite number > 0, got {r}")
                if k in classes:
                    if o.performance.get(k, o.capacity_per_unit or 0.0) <= 0:
                        err(
                            f"{base}.performance.{k}",
                            f"savings plan rate for class {k!r} needs a performance for it",
                        )
                elif k not in usage_names:
                    err(
                        f"{base}.rates.{k}",
                        f"{k!r} is neither a class nor an on_demand/spot option",
                    )
        elif o.recurring_costs and o.is_usage:
            err(f"{base}.recurring_costs", "usage options pay per use; use price_per_period")
        if o.is_committed:
            mode = flags.reserved_mode if o.kind == "reserved" else flags.private_mode
            if mode == "fixed_for_horizon_per_app" and o.term_periods is not None:
                if o.lead_time_periods >= T:
                    err(f"{base}.lead_time_periods", "lead time leaves no period to use the unit")
                elif o.term_periods < T - o.lead_time_periods:
                    err(
                        f"{base}.term_periods",
                        f"{o.kind}_mode fixed_for_horizon_per_app needs a term covering the "
                        f"horizon ({T - o.lead_time_periods} periods), got {o.term_periods}",
                    )
    if p.budget is not None:
        check_pp("budget.per_period", p.budget.per_period)
    return errs
