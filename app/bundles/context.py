"""What every bundle is rendered from: validated, derived data — never raw templates of
user text. :func:`bundle_context` turns a spec and its plan into a :class:`BundleContext`.

Derived facts:

* ``slug``: a DNS-1123 label from the design name (lowercase letters, digits, hyphens;
  at most 40 characters) — the only form of the name used in identifiers. The name itself
  appears only as an encoded string (descriptions, tags, labels' annotations).
* ``plan_id``: ``plan-<sha12>`` of the plan's canonical JSON, so the same plan always gives
  the same id (and byte-identical bundles).
* AWS node groups: one per (region, capacity type, instance type) the plan uses on AWS —
  ``on_demand`` and ``spot`` from pay-per-use lines, ``reserved`` from reservations (with
  the number of instances to reserve); sizes are the plan's peak instance counts.
* Capacity on other providers and own servers is listed as not generated, so a platform
  team sees what the Terraform does not cover.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Literal

from pydantic import BaseModel, Field

from app.planner.plan import Plan
from app.requirements.spec import WorkloadSpec

CapacityType = Literal["on_demand", "spot", "reserved"]

CADENCE_CRON = {
    "once": None,
    "monthly": "0 3 1 * *",
    "quarterly": "0 3 1 */3 *",
    "yearly": "0 3 1 1 *",
}


class NodeGroup(BaseModel):
    name: str
    region: str
    capacity_type: CapacityType
    instance_type: str
    gpu_model: str
    gpus_per_node: int
    min_size: int
    max_size: int
    desired_size: int
    reserved_instances: int = Field(0, description="Instances to hold as capacity reservations.")


class OtherCapacity(BaseModel):
    provider: str
    region: str
    item: str
    kind: str
    quantity: float
    note: str


class BomLine(BaseModel):
    server_model: str
    site: str
    gpu_model: str
    gpus_per_server: float
    quantity: int
    order_month: str
    in_service_month: str | None
    lead_time_months: int
    unit_price_usd: float
    monthly_running_usd: float
    power_typical_kw: float | None = None
    power_max_kw: float | None = None
    rack_units: int | None = None


class TrainingJob(BaseModel):
    name: str
    schedule: str | None = Field(description="Cron for the retraining cadence; None = run once.")
    gpus: int
    capacity_type: CapacityType
    checkpointable: bool


class InferenceService(BaseModel):
    name: str
    min_replicas: int
    max_replicas: int
    gpus_per_replica: int
    capacity_type: CapacityType


class BundleContext(BaseModel):
    design_name: str
    slug: str
    plan_id: str
    snapshot_id: str
    status: str
    aws_region: str
    node_groups: list[NodeGroup]
    other_capacity: list[OtherCapacity]
    bom: list[BomLine]
    training_jobs: list[TrainingJob]
    inference_services: list[InferenceService]
    monthly_budget_usd: float
    total_cost_usd: float
    spec: WorkloadSpec
    plan: Plan


def slugify(name: str, *, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:max_len].strip("-")
    return slug or "design"


def plan_id(plan: Plan) -> str:
    canonical = json.dumps(plan.model_dump(mode="json", exclude={"build_seconds", "solve_seconds",
                                                                "total_seconds"}),
                           sort_keys=True, separators=(",", ":"))
    return "plan-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _parse_option(option: str) -> tuple[str, str, str, str]:
    provider, region, item, purchase = (option.split("/") + ["", "", "", ""])[:4]
    return provider, region, item, purchase


def _node_groups(plan: Plan) -> tuple[list[NodeGroup], list[OtherCapacity]]:
    groups: dict[tuple[str, str, str], NodeGroup] = {}
    other: list[OtherCapacity] = []
    hours = 730.0
    for u in plan.usage:
        provider, region, item, _ = _parse_option(u.option)
        gpus = max(1, round(u.gpus_per_unit))
        peak_nodes = max(1, math.ceil(max(u.gpu_hours_by_month or [0]) / hours / max(u.gpus_per_unit, 1e-9)))
        if provider != "aws":
            other.append(OtherCapacity(provider=provider, region=region, item=item, kind=u.kind,
                                       quantity=round(u.instance_hours, 1),
                                       note="instance-hours over the horizon"))
            continue
        key = (region, u.kind, item)
        g = groups.get(key)
        if g is None:
            groups[key] = NodeGroup(
                name=f"{u.kind.replace('_', '-')}-{item.replace('.', '-')}"[:63], region=region,
                capacity_type=u.kind, instance_type=item, gpu_model=u.gpu_model, gpus_per_node=gpus,
                min_size=0, max_size=peak_nodes, desired_size=0)
        else:
            g.max_size = max(g.max_size, peak_nodes)
    # Reservations: the most instances of a type held at the same time.
    active: dict[tuple[str, str], list[int]] = {}
    horizon = max(len(plan.months), 1)
    for s in plan.schedule:
        if s.kind != "reserved":
            continue
        if s.provider != "aws":
            other.append(OtherCapacity(provider=s.provider, region=s.region, item=s.item, kind=s.kind,
                                       quantity=s.quantity, note=f"{s.term_months}-month reservation from {s.purchase_month}"))
            continue
        row = active.setdefault((s.region, s.item), [0] * horizon)
        start = s.purchase_period + s.lead_time_months
        for t in range(start, min(horizon, start + s.term_months)):
            row[t] += s.quantity
    reserved = {k: max(v) for k, v in active.items() if max(v) > 0}
    for (region, item), count in sorted(reserved.items()):
        line = next(s for s in plan.schedule if s.region == region and s.item == item)
        groups[(region, "reserved", item)] = NodeGroup(
            name=f"reserved-{item.replace('.', '-')}"[:63], region=region, capacity_type="reserved",
            instance_type=item, gpu_model=line.gpu_model, gpus_per_node=max(1, round(line.gpus_per_unit)),
            min_size=count, max_size=count, desired_size=count, reserved_instances=count)
    return [groups[k] for k in sorted(groups)], other


def _bom(plan: Plan, spec: WorkloadSpec) -> list[BomLine]:
    out = []
    for s in plan.schedule:
        if s.kind != "private":
            continue
        out.append(BomLine(
            server_model=s.item, site=s.region, gpu_model=s.gpu_model, gpus_per_server=s.gpus_per_unit,
            quantity=s.quantity, order_month=s.purchase_month, in_service_month=s.in_service_month,
            lead_time_months=s.lead_time_months, unit_price_usd=s.upfront_usd,
            monthly_running_usd=s.monthly_usd))
    return out


def bundle_context(spec: WorkloadSpec, plan: Plan) -> BundleContext:
    """Everything the bundles need, derived once (see the module docstring)."""
    groups, other = _node_groups(plan)
    regions = sorted({g.region for g in groups})
    aws_region = regions[0] if regions else "us-east-1"
    default_type: CapacityType = next((g.capacity_type for g in groups if g.capacity_type == "reserved"),
                                      groups[0].capacity_type if groups else "on_demand")
    cadence = spec.lifecycle.retraining_cadence
    jobs = []
    for run in spec.performance.training:
        c = run.retraining_cadence or cadence
        cron = CADENCE_CRON.get(c.kind) if c.kind != "every_n_months" else f"0 3 1 */{c.n} *"
        jobs.append(TrainingJob(
            name=run.name, schedule=cron, gpus=8 if run.interconnect == "multi_node" else 1,
            capacity_type="spot" if run.checkpointable and any(g.capacity_type == "spot" for g in groups)
            else default_type,
            checkpointable=run.checkpointable))
    services = []
    autoscale = {s.service: s.autoscaling for s in spec.architecture.serving}
    for svc in spec.performance.inference:
        a = autoscale.get(svc.name)
        base = svc.always_on_gpus or max(1, math.ceil((svc.requests_per_second or 0) / (svc.per_gpu_rps or 1)))
        lo = getattr(a, "min_replicas", None) or max(1, base)
        hi = max(lo, getattr(a, "max_replicas", None) or lo * 2)
        services.append(InferenceService(name=svc.name, min_replicas=lo, max_replicas=hi, gpus_per_replica=1,
                                         capacity_type="on_demand" if svc.mode == "latency_bound" or not groups
                                         else default_type))
    monthly = max(plan.cost_by_month or [0.0])
    if spec.cost.monthly_budget:
        monthly = min(monthly, spec.cost.monthly_budget) if monthly else spec.cost.monthly_budget
    return BundleContext(
        design_name=spec.name, slug=slugify(spec.name), plan_id=plan_id(plan), snapshot_id=plan.snapshot_id,
        status=plan.status, aws_region=aws_region, node_groups=groups, other_capacity=other,
        bom=_bom(plan, spec), training_jobs=jobs, inference_services=services,
        monthly_budget_usd=round(monthly, 2), total_cost_usd=plan.total_cost or 0.0, spec=spec, plan=plan,
    )
