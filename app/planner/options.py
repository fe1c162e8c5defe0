"""Purchase options: every eligible catalog offering × purchase option, then pruned.

:func:`candidate_options` turns a price snapshot and a demand profile into
:class:`Candidate` records — one per (offering or server, purchase option) that can serve
at least one demand class — and :func:`prune_dominated` drops the ones that can never be
part of a cheaper plan. :mod:`app.planner.build` turns the survivors into a
:class:`~app.planner.problem.CapacityProblem`.

Purchase options built from the catalog
=======================================
* ``on_demand`` — the offering's on-demand hourly price, paid per instance-hour used.
  Latency-bound serving classes get their own ``-always-on`` variant counted in whole
  instances (a service cannot run on a fraction of an instance).
* ``spot`` — the spot hourly price, only for interruptible classes, with the interruption
  overhead and availability of :class:`PlannerSettings`.
* ``reserved`` — every commitment price of kind ``reserved`` (term, payment option):
  ``upfront`` at purchase plus the recurring hourly rate for every hour of the term, paid
  used or not. A month of a term counts 730 h (8,760 h / 12), so a term's total is exact.
  Upfront options are dropped when the spec forbids upfront payments.
* ``private`` — a server SKU at a site whose every needed figure is sourced: purchase price
  (upfront capex), useful life (term), lead time, residual value, and per month: power
  (typical kW × PUE × $/kWh × 730 h), colocation (max kW × $/kW-month), support
  (% of price per year / 12) and staff (site $/FTE-month × FTE per server, a planner
  assumption). Only when the spec allows capex. SKUs or sites with a missing figure, or
  priced in another currency without an exchange rate, are skipped with the reason.
Capacity blocks (short fixed-date reservations) and savings plans are not in the bundled
snapshot for GPU instances, so no such options are built.

Eligibility
===========
A candidate serves a class when its GPU has the memory and precision throughput the class
needs (:meth:`DemandClass.can_run_on`), it has the interconnect (``multi_node`` classes
need an 8-GPU NVLink node), its region or site passes the class's compliance filter
(jurisdictions, regions, frameworks; ``private_only`` admits own servers only;
``dedicated_tenancy`` admits own servers only, because the snapshot has no
dedicated-tenancy prices), and spot only serves interruptible classes. Performance per
unit is in the class's reference GPUs: ``GPUs per unit × throughput ratio``.

Dominance pruning
=================
Only uncapped candidates are compared, and only within one purchase structure (kind,
term, lead time, payment option). Candidate B is dropped when some A serves every class B
serves and

* usage options (continuous hours): A costs no more per unit of performance for each of
  B's classes (the cheapest way to buy a reference-GPU-hour never needs B);
* committed options and always-on serving instances (integer units): some whole number
  k of A units deliver at least B's performance for each class and cost no more than one
  B unit in every money component (upfront, recurring, usage, net of residual) with no
  longer lead time — k A units replace one B unit in any plan (k = 1 is the plain case).

Exact ties keep the candidate with the smaller id, so pruning is deterministic.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.schema import Offering, PrivateServerSku, SiteProfile, Snapshot
from app.planner.demand import DemandClass, DemandProfile, IneligibleGpuError
from app.requirements.spec import WorkloadSpec

HOURS_PER_TERM_MONTH = 730.0  # 8,760 h / 12: a reservation month, so a term's total is exact

PurchaseKind = Literal["on_demand", "spot", "reserved", "private"]


class PlannerSettings(BaseModel):
    """Planner assumptions that are not catalog figures. Every value is shown on the plan."""

    model_config = ConfigDict(extra="forbid")

    spot_interruption_overhead: float = Field(
        0.10, ge=0, le=2,
        description=(
            "Extra work spot needs to deliver the same result (re-done work since the last "
            "checkpoint, restarts). An archplan assumption, not a measured figure: set "
            "your own from your checkpoint interval and the market's interruption rate."
        ),
    )
    spot_availability: float = Field(
        1.0, gt=0, le=1,
        description="Share of a spot offering's cap that can be obtained (with spot_max_gpus).",
    )
    spot_max_gpus_per_offering: int | None = Field(
        None, ge=1, description="Cap on GPUs of one spot offering at a time (None = no cap)."
    )
    max_gpus_per_region: int | None = Field(
        None, ge=1, description="Cap on GPUs in any one provider region at a time (None = no cap)."
    )
    max_private_servers_per_site: int | None = Field(None, ge=1)
    private_staff_fte_per_server: float = Field(
        0.05, ge=0,
        description=(
            "Operations staff per owned server (0.05 = one FTE per 20 servers). An archplan "
            "assumption, not a sourced figure: set your own."
        ),
    )
    fx_usd_per: dict[str, float] = Field(
        default_factory=dict,
        description="Exchange rates to USD for sites priced in other currencies, e.g. {'EUR': 1.08}.",
    )
    horizon_end: Literal[
        "full_term_at_purchase_even_beyond_horizon", "prorata_with_terminal_value",
        "forbid_past_horizon",
    ] = Field(
        "full_term_at_purchase_even_beyond_horizon",
        description=(
            "Commitments running past the horizon: charge them in full (default, the cash "
            "you actually commit), charge in-horizon months and credit the depreciated "
            "value, or forbid them."
        ),
    )
    objective: Literal["npv", "nominal"] = "npv"
    providers: list[str] | None = Field(None, description="Restrict to these providers.")
    purchase_kinds: list[PurchaseKind] | None = Field(
        None, description="Restrict purchase options (baselines use this)."
    )
    reserved_term_months: list[int] | None = Field(None, description="Restrict reservation terms.")
    prune: bool = True
    solver: Literal["highs", "cbc"] = "highs"
    time_limit_s: float = Field(60.0, gt=0)
    gap: float = Field(1e-4, ge=0, description="Relative MIP gap at which a solve stops.")


@dataclass(frozen=True)
class Candidate:
    """One purchasable option for the planner, in catalog terms."""

    id: str
    kind: PurchaseKind
    provider: str
    region: str  # region, or site id for own servers
    item: str  # instance type or server SKU id
    gpu_model: str
    gpus_per_unit: float
    performance: dict[str, float]  # class id -> reference GPUs per unit
    usage_hourly: float = 0.0  # on-demand / spot: per instance-hour used
    monthly: float = 0.0  # reserved / private: per active unit-month
    upfront: float = 0.0
    term_months: int = 1
    lead_time_months: int = 0
    residual_value: float = 0.0
    recurring: dict[str, float] = field(default_factory=dict)
    payment_option: str | None = None
    offering_class: str | None = None
    max_units: int | None = None
    pool: str | None = None  # limiting set for region / site caps
    jurisdiction: str | None = None
    estimate: bool = False
    sources: tuple[str, ...] = ()
    always_on: bool = False  # usage option serving latency-bound classes in whole instances

    @property
    def committed(self) -> bool:
        return self.kind in ("reserved", "private")

    @property
    def integer(self) -> bool:
        """Whole units: commitments, servers, and always-on serving instances."""
        return self.committed or self.always_on

    @property
    def capped(self) -> bool:
        return self.max_units is not None or self.pool is not None

    def structure(self) -> tuple:
        return (self.kind, self.term_months, self.lead_time_months, self.payment_option, self.always_on)


@dataclass
class OptionSet:
    candidates: list[Candidate]
    considered: int
    pruned: int = 0
    skipped: list[str] = field(default_factory=list)  # reasons an offering / SKU was left out

    def counts_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for c in self.candidates:
            out[c.kind] += 1
        return dict(sorted(out.items()))


def _multi_node_capable(o: Offering) -> bool:
    return o.interconnect == "nvlink" and o.gpu_count >= 8 and o.gpu_fraction == 1


def _performance(
    classes: Sequence[DemandClass], snapshot: Snapshot, gpu_model: str, gpus: float,
    *, jurisdiction_ok, multi_node_ok: bool, interruptible_only: bool,
) -> dict[str, float]:
    gpu = snapshot.gpu(gpu_model)
    perf: dict[str, float] = {}
    for dc in classes:
        if interruptible_only and not dc.interruptible:
            continue
        if dc.interconnect == "multi_node" and not multi_node_ok:
            continue
        if not jurisdiction_ok(dc):
            continue
        try:
            ratio = dc.throughput_ratio(gpu)
        except (IneligibleGpuError, ValueError):
            continue
        perf[dc.id] = round(gpus * ratio, 9)
    return perf


def candidate_options(
    spec: WorkloadSpec, demand: DemandProfile, snapshot: Snapshot, settings: PlannerSettings,
) -> OptionSet:
    """Every eligible (offering or server, purchase option) for the profile's classes."""
    classes = [cd.demand_class for cd in demand.classes]
    active = {cd.demand_class.id for cd in demand.classes if cd.total_gpu_hours > 0}
    classes = [c for c in classes if c.id in active]
    latency = {c.id: c.latency_bound for c in classes}
    kinds = set(settings.purchase_kinds or ("on_demand", "spot", "reserved", "private"))
    out = OptionSet(candidates=[], considered=0)
    regions = {(r.provider, r.region): r for r in snapshot.regions}

    for o in snapshot.priced_gpu_offerings():
        if settings.providers is not None and o.provider not in settings.providers:
            continue
        region = regions.get((o.provider, o.region))
        jurisdiction = region.jurisdiction if region else None
        programs = region.compliance_programs if region else []
        key = f"{o.provider}/{o.region}"

        def region_ok(dc: DemandClass, key=key, jurisdiction=jurisdiction, programs=programs) -> bool:
            if dc.dedicated_tenancy:
                return False
            if jurisdiction is None and dc.allowed_jurisdictions:
                return False
            return dc.allows_region(key, jurisdiction or "", programs)

        gpus = o.effective_gpus
        pool = key if settings.max_gpus_per_region else None
        base = dict(provider=o.provider, region=o.region, item=o.instance_type,
                    gpu_model=o.gpu_model, gpus_per_unit=gpus, pool=pool,
                    jurisdiction=jurisdiction, sources=tuple(o.sources))
        perf = _performance(classes, snapshot, o.gpu_model, gpus, jurisdiction_ok=region_ok,
                            multi_node_ok=_multi_node_capable(o), interruptible_only=False)
        if not perf:
            continue
        if "on_demand" in kinds and o.on_demand_hourly:
            # Latency-bound serving runs whole instances all the time; everything else may
            # use any number of instance-hours.
            serving = {c: v for c, v in perf.items() if latency[c]}
            batch = {c: v for c, v in perf.items() if not latency[c]}
            for part, always_on, suffix in ((batch, False, ""), (serving, True, "-always-on")):
                if part:
                    out.considered += 1
                    out.candidates.append(Candidate(
                        id=f"{o.key}/on_demand{suffix}", kind="on_demand", performance=part,
                        usage_hourly=o.on_demand_hourly, always_on=always_on, **base))
        if "spot" in kinds and o.spot_hourly:
            spot_perf = {c: v for c, v in perf.items()
                         if next(dc for dc in classes if dc.id == c).interruptible}
            if spot_perf:
                out.considered += 1
                cap = None
                if settings.spot_max_gpus_per_offering:
                    cap = max(1, math.floor(settings.spot_max_gpus_per_offering / gpus))
                out.candidates.append(Candidate(
                    id=f"{o.key}/spot", kind="spot", performance=spot_perf,
                    usage_hourly=o.spot_hourly, max_units=cap, **base))
        if "reserved" in kinds:
            for cp in o.commitments:
                if cp.kind != "reserved" or cp.term_months is None:
                    continue
                if settings.reserved_term_months and cp.term_months not in settings.reserved_term_months:
                    continue
                upfront = cp.upfront_usd or 0.0
                if upfront > 0 and not spec.cost.upfront_payments_allowed:
                    out.skipped.append(f"{o.key} {cp.term_months}-month {cp.payment_option}: upfront payments not allowed")
                    continue
                hourly = cp.hourly_usd if cp.hourly_usd is not None else (
                    cp.effective_hourly_usd if upfront == 0 else None)
                if hourly is None:
                    out.skipped.append(f"{o.key} reserved: no recurring hourly rate")
                    continue
                out.considered += 1
                out.candidates.append(Candidate(
                    id=f"{o.key}/reserved-{cp.term_months}m-{cp.payment_option}"
                       + (f"-{cp.offering_class}" if cp.offering_class else ""),
                    kind="reserved", performance=perf, monthly=round(hourly * HOURS_PER_TERM_MONTH, 6),
                    upfront=upfront, term_months=cp.term_months, payment_option=cp.payment_option,
                    offering_class=cp.offering_class, estimate=cp.estimate,
                    **{**base, "sources": tuple(dict.fromkeys((*o.sources, cp.source)))}))

    if "private" in kinds:
        if not spec.cost.capex_allowed:
            out.skipped.append("own servers: the spec does not allow capex")
        else:
            for sku in snapshot.private_servers:
                for site in snapshot.sites:
                    cand = _private_candidate(sku, site, classes, snapshot, settings, out.skipped)
                    if cand is not None:
                        out.considered += 1
                        out.candidates.append(cand)

    out.candidates.sort(key=lambda c: c.id)
    return out


def _private_candidate(
    sku: PrivateServerSku, site: SiteProfile, classes: Sequence[DemandClass], snapshot: Snapshot,
    settings: PlannerSettings, skipped: list[str],
) -> Candidate | None:
    label = f"own {sku.id} at {site.id}"
    missing = list(sku.missing_figures()) + [f"site {m}" for m in site.missing_figures()
                                             if not (m == "staff_per_fte_month"
                                                     and settings.private_staff_fte_per_server == 0)]
    if missing:
        skipped.append(f"{label}: not sourced: {', '.join(missing)}")
        return None
    fx = 1.0
    if site.currency != "USD":
        if site.currency not in settings.fx_usd_per:
            skipped.append(f"{label}: site prices are in {site.currency}; give an exchange rate "
                           f"(fx_usd_per.{site.currency}) to plan it")
            return None
        fx = settings.fx_usd_per[site.currency]

    def ok(dc: DemandClass) -> bool:
        return site.jurisdiction is not None and dc.allows_private_site(site.jurisdiction)

    perf = _performance(classes, snapshot, sku.gpu_model, sku.gpu_count, jurisdiction_ok=ok,
                        multi_node_ok=sku.gpu_count >= 8, interruptible_only=False)
    if not perf:
        return None
    price = sku.purchase_price.value
    assert sku.power_typical_kw and sku.power_max_kw and sku.useful_life_years  # checked above
    assert sku.lead_time_months and sku.residual_value_pct and sku.support_pct_per_year
    assert site.pue and site.electricity_per_kwh and site.colocation_per_kw_month
    recurring = {
        "power": sku.power_typical_kw.value * site.pue.value * site.electricity_per_kwh.value
        * HOURS_PER_TERM_MONTH * fx,
        "colocation": sku.power_max_kw.value * site.colocation_per_kw_month.value * fx,
        "support": price * sku.support_pct_per_year.value / 100 / 12,
    }
    if settings.private_staff_fte_per_server and site.staff_per_fte_month:
        recurring["staff"] = site.staff_per_fte_month.value * settings.private_staff_fte_per_server * fx
    recurring = {k: round(v, 6) for k, v in recurring.items()}
    estimate = any(f is not None and f.estimate for f in (*sku.figures().values(), *site.figures().values()))
    sources = sorted({f.source for f in (*sku.figures().values(), *site.figures().values()) if f})
    return Candidate(
        id=f"private/{site.id}/{sku.id}", kind="private", provider="private", region=site.id,
        item=sku.id, gpu_model=sku.gpu_model, gpus_per_unit=sku.gpu_count, performance=perf,
        upfront=price, recurring=recurring, monthly=0.0,
        term_months=max(1, round(sku.useful_life_years.value * 12)),
        lead_time_months=max(0, math.ceil(sku.lead_time_months.value)),
        residual_value=round(price * sku.residual_value_pct.value / 100, 2),
        pool=site.id if settings.max_private_servers_per_site else None,
        jurisdiction=site.jurisdiction, estimate=estimate, sources=tuple(sources),
    )


# --------------------------------------------------------------------------- pruning


def _usage_cost_vector(c: Candidate, classes: Iterable[str]) -> tuple[float, ...]:
    return tuple(c.usage_hourly / c.performance[k] if k in c.performance else math.inf for k in classes)


def _dominates_usage(a: Candidate, b: Candidate, classes: Sequence[str]) -> bool:
    if not set(b.performance) <= set(a.performance):
        return False
    return all(a.usage_hourly / a.performance[k] <= b.usage_hourly / b.performance[k] + 1e-12
               for k in b.performance)


def _dominates_committed(a: Candidate, b: Candidate) -> bool:
    if not set(b.performance) <= set(a.performance):
        return False
    if any(a.performance[k] < b.performance[k] - 1e-9 for k in b.performance):
        return False
    if a.always_on:
        return a.usage_hourly <= b.usage_hourly + 1e-12
    a_rec = a.monthly + sum(a.recurring.values())
    b_rec = b.monthly + sum(b.recurring.values())
    return (a.upfront - a.residual_value <= b.upfront - b.residual_value + 1e-9
            and a.upfront <= b.upfront + 1e-9 and a_rec <= b_rec + 1e-9)


def _k_units(a: Candidate, b: Candidate) -> int | None:
    """How many units of ``a`` deliver at least one unit of ``b`` for every class of ``b``."""
    if not set(b.performance) <= set(a.performance):
        return None
    return max(math.ceil(b.performance[k] / a.performance[k] - 1e-9) for k in b.performance)


def _dominates_k_units(a: Candidate, b: Candidate) -> bool:
    """k whole units of ``a`` replace one unit of ``b`` at no greater cost in every component."""
    k = _k_units(a, b)
    if k is None or k < 1:
        return False
    eps = 1e-9
    return (k * a.upfront <= b.upfront + eps
            and k * (a.upfront - a.residual_value) <= b.upfront - b.residual_value + eps
            and k * (a.monthly + sum(a.recurring.values())) <= b.monthly + sum(b.recurring.values()) + eps
            and k * a.usage_hourly <= b.usage_hourly + eps
            and a.lead_time_months <= b.lead_time_months)


def prune_dominated(options: OptionSet) -> OptionSet:
    """Drop candidates that another candidate dominates (see the module docstring)."""
    keep: list[Candidate] = []
    groups: dict[tuple, list[Candidate]] = defaultdict(list)
    for c in options.candidates:
        if c.capped:
            keep.append(c)
        else:
            groups[c.structure()].append(c)
    pruned = 0
    for group in groups.values():
        classes = sorted({k for c in group for k in c.performance})
        if group[0].integer:
            # A dominator serves a superset of classes and is no dearer, so this order puts
            # it before everything it dominates.
            order = sorted(group, key=lambda c: (-len(c.performance), c.upfront - c.residual_value,
                                                 c.monthly + sum(c.recurring.values()) + c.usage_hourly,
                                                 -sum(c.performance.values()), c.id))
            frontier: list[Candidate] = []
            for c in order:
                if any(_dominates_committed(a, c) for a in frontier):
                    pruned += 1
                else:
                    frontier.append(c)
            # Second pass over the survivors: k smaller units that replace a bigger one.
            survivors = []
            for i, c in enumerate(frontier):
                if any(_dominates_k_units(a, c) and not (_dominates_k_units(c, a) and c.id < a.id)
                       for j, a in enumerate(frontier) if j != i):
                    pruned += 1
                else:
                    survivors.append(c)
            frontier = survivors
        else:
            order = sorted(group, key=lambda c: (-len(c.performance),
                                                 sum(v for v in _usage_cost_vector(c, classes)
                                                     if v != math.inf), c.id))
            frontier = []
            for c in order:
                if any(_dominates_usage(a, c, classes) for a in frontier):
                    pruned += 1
                else:
                    frontier.append(c)
        keep.extend(frontier)
    keep.sort(key=lambda c: c.id)
    return OptionSet(candidates=keep, considered=options.considered,
                     pruned=options.pruned + pruned, skipped=options.skipped)
