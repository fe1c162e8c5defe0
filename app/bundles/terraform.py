"""Terraform bundle (AWS) and the bill of materials for own servers.

:func:`render_terraform` turns a :class:`~app.bundles.context.BundleContext` into a Terraform
root module under ``terraform/``:

* one VPC + EKS cluster per AWS region the plan uses (``terraform-aws-modules/vpc/aws`` and
  ``terraform-aws-modules/eks/aws``, pinned), one provider alias per region;
* one EKS managed node group per plan node group (instance type, ON_DEMAND/SPOT, sizes,
  GPU AMI type, ``archplan.io/capacity-type`` / ``archplan.io/gpu-model`` labels and
  ``nvidia.com/gpu`` + ``archplan.io/capacity-type`` NoSchedule taints), plus a small
  untainted system node group for cluster add-ons;
* ``reserved`` node groups run ON_DEMAND inside targeted ``aws_ec2_capacity_reservation``
  resources sized to the plan's reserved instance count;
* S3 buckets (from ``spec.architecture.storage``, or raw/features/models by default) with a
  rotating KMS key, SSE-KMS, versioning, public access block, lifecycle rules and server
  access logging; IRSA roles for the training and serving service accounts; an AWS Budget;
  provider ``default_tags`` carrying the plan id, snapshot id and design.

Safety: every value reaches HCL through the ``| hcl`` encoder (quoted, escaped,
interpolation disabled). Terraform identifiers (resource and module names) are derived
here from validated data and checked against ``[a-z][a-z0-9_]*``. The design name itself
appears only as an encoded string (``local.design_name``, the ``design_name`` output and,
reduced to the characters AWS accepts in tags, the ``archplan:design-name`` tag).

The output is already in ``terraform fmt`` layout: templates are written in canonical
form and :func:`align_hcl` aligns the ``=`` of consecutive one-line attributes the way
``terraform fmt`` does.

:func:`render_bom` writes ``private-servers/bom.csv`` and ``private-servers/bom.md`` for the
plan's own servers, with power and rack figures from the catalog snapshot.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from app.bundles.context import BomLine, BundleContext, NodeGroup
from app.bundles.render import environment, md
from app.requirements.spec import StorageBucket

# --------------------------------------------------------------------------- pinned versions
# Released versions, checked against public sources when chosen: hashicorp/aws 5.100.0 (the
# last 5.x line); terraform-aws-modules/eks 20.37.1 (v20 argument names: cluster_name,
# cluster_version, eks_managed_node_groups; v20.37.1 caps hashicorp/aws below 6.0) and
# terraform-aws-modules/vpc 5.21.0 (v5, hashicorp/aws 5.x) both run on it; hashicorp/tls and
# hashicorp/time are pinned because the EKS module needs them.

TERRAFORM_REQUIRED_VERSION = ">= 1.5.7, < 2.0.0"
PROVIDERS: dict[str, tuple[str, str]] = {
    "aws": ("hashicorp/aws", "5.100.0"),
    "random": ("hashicorp/random", "3.7.2"),
    "time": ("hashicorp/time", "0.13.1"),  # required by the EKS module
    "tls": ("hashicorp/tls", "4.1.0"),  # required by the EKS module (OIDC thumbprint)
}
VPC_MODULE = ("terraform-aws-modules/vpc/aws", "5.21.0")
EKS_MODULE = ("terraform-aws-modules/eks/aws", "20.37.1")
KUBERNETES_VERSION = "1.34"

# Label/taint contract shared with the Helm bundle.
CAPACITY_LABEL = "archplan.io/capacity-type"
GPU_MODEL_LABEL = "archplan.io/gpu-model"
CAPACITY_LABEL_VALUES = {"on_demand": "on-demand", "spot": "spot", "reserved": "reserved"}
EKS_CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "spot": "SPOT", "reserved": "ON_DEMAND"}

# Which buckets each service account may touch, by bucket purpose.
TRAINING_READ = ("raw", "features", "checkpoints", "models")
TRAINING_WRITE = ("checkpoints", "models", "logs")
TRAINING_DELETE = ("checkpoints",)
SERVING_READ = ("models",)

DEFAULT_BUCKETS = (
    StorageBucket(name="raw", purpose="raw", versioning=True),
    StorageBucket(name="features", purpose="features", versioning=True),
    StorageBucket(name="models", purpose="models", versioning=True),
)

# checkov checks skipped in the generated HCL, with the reason (also listed in the README).
SKIP_REPLICATION = ("CKV_AWS_144", "Cross-region replication is a deliberate opt-in: it doubles "
                    "storage cost and may move data out of the allowed jurisdictions")
SKIP_EVENTS = ("CKV2_AWS_62", "No consumer for S3 event notifications in this design")
SKIP_NO_VERSIONING = ("CKV_AWS_21", "Versioning disabled by the workload spec for this bucket "
                      "(storage[].versioning: false)")
SKIP_LOG_LOGGING = ("CKV_AWS_18", "This is the access-log target bucket; logging it into itself "
                    "would loop")
SKIP_MODULE_HASH = ("CKV_TF_1", "Terraform Registry module pinned to an exact version; registry "
                    "sources cannot take a commit hash (vendor the module or use a reviewed git "
                    "commit if your policy requires it)")
SKIP_AZ_IDENTITY = ("CKV_AWS_394", "The data source only lists candidate zones: the VPC uses "
                    "var.availability_zones when set, else the first three zone names in sorted "
                    "order, which zones added later (later letters) do not change")
SKIP_LOG_KMS = ("CKV_AWS_145", "S3 server access logging only delivers to SSE-S3 (AES256) "
                "target buckets, not SSE-KMS")

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")

Files = dict[str, str]


# --------------------------------------------------------------------------- HCL layout


def _balanced(text: str) -> bool:
    """True if brackets outside string literals are balanced (the value fits on the line)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth == 0 and not in_string


_ATTR_LINE = re.compile(
    r'^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\]|\\.)*") *=(?!=) *(?P<value>.*)$')


def align_hcl(text: str) -> str:
    """Align ``=`` in runs of consecutive one-line attributes at the same indentation, as
    ``terraform fmt`` does (blank lines, comments, blocks and multi-line values end a run)."""
    lines = text.split("\n")
    out: list[str] = []
    run: list[tuple[str, str, str]] = []

    def flush() -> None:
        width = max((len(k) for _, k, _ in run), default=0)
        out.extend(f"{indent}{key.ljust(width)} = {value}" for indent, key, value in run)
        run.clear()

    for line in lines:
        m = _ATTR_LINE.match(line)
        if m and m["value"] and _balanced(m["value"]):
            if run and run[0][0] != m["indent"]:
                flush()
            run.append((m["indent"], m["key"], m["value"]))
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


# --------------------------------------------------------------------------- naming


def _ident(text: str) -> str:
    """A Terraform identifier from catalog/spec names: ``us-east-1`` -> ``us_east_1``."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not out or not out[0].isalpha():
        out = f"x_{out}"
    if not _IDENT.match(out):  # pragma: no cover - the substitution guarantees it
        raise ValueError(f"cannot derive a Terraform identifier from {text!r}")
    return out


def _short(name: str, limit: int) -> str:
    """``name`` if it fits in ``limit`` characters, else a truncated form with a hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:limit - 7].rstrip('-')}-{digest}"


def tag_value(text: str, fallback: str) -> str:
    """``text`` reduced to what AWS accepts in tag values everywhere (letters, digits,
    spaces and ``_ . : / = + - @``), whitespace folded, at most 256 characters."""
    kept = "".join(ch if (unicodedata.category(ch)[0] in "LN" or ch in "_.:/=+-@") else " "
                   for ch in text)
    folded = " ".join(kept.split())[:256].strip()
    return folded or fallback


def _bucket_prefix(slug: str, bucket: str) -> str:
    """S3 bucket name without the random suffix: ``<slug>-<bucket>`` in at most 54
    characters (the 8-hex-digit suffix and its hyphen bring it to 63)."""
    name = _short(f"{slug}-{bucket}", 54).strip("-")
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")):
        name = _short(f"b-{name}", 54)
    return name


# --------------------------------------------------------------------------- view model


@dataclass
class _NodeGroupView:
    key: str
    capacity_type: str
    eks_capacity_type: str
    capacity_label: str
    instance_type: str
    gpu_model: str
    gpus_per_node: int
    ami_type: str
    accelerator_taint: str
    min_size: int
    max_size: int
    desired_size: int
    reserved_instances: int
    offering: str  # identifier of the instance-type offering data source / locals
    reservation: str | None  # identifier of the capacity reservation


@dataclass
class _RegionView:
    region: str
    ident: str
    cluster_name: str
    vpc_name: str
    vpc_cidr: str
    node_groups: list[_NodeGroupView] = field(default_factory=list)
    offerings: list[tuple[str, str]] = field(default_factory=list)  # (identifier, instance type)

    @property
    def reservations(self) -> list[_NodeGroupView]:
        return [g for g in self.node_groups if g.reservation]


@dataclass
class _BucketView:
    ident: str
    name: str
    purpose: str
    name_prefix: str
    log_prefix: str
    versioning: bool
    retention_days: int | None
    transition: tuple[str, int] | None
    skips: list[tuple[str, str]]


def _accelerator(instance_type: str) -> tuple[str, bool]:
    """(vendor, is_arm) for an EC2 instance type, from its family name."""
    family = instance_type.split(".")[0]
    m = re.match(r"^[a-z]+\d+([a-z]*)", family)
    arm = bool(m and "g" in m.group(1)) or "-gb" in family  # g5g (Graviton), p6e-gb200 (Grace)
    if family.startswith(("inf", "trn")):
        return "neuron", arm
    if family.startswith("g4ad"):
        return "amd", arm
    if family.startswith(("f1", "f2", "dl1", "vt1")):
        return "other", arm
    return "nvidia", arm


def _ami_type(instance_type: str) -> tuple[str, str]:
    """(EKS AMI type, accelerator taint key) for a node group's instance type."""
    vendor, arm = _accelerator(instance_type)
    arch = "ARM_64" if arm else "x86_64"
    if vendor == "nvidia":
        return f"AL2023_{arch}_NVIDIA", "nvidia.com/gpu"
    if vendor == "neuron":
        return "AL2023_x86_64_NEURON", "aws.amazon.com/neuron"
    return f"AL2023_{arch}_STANDARD", "amd.com/gpu" if vendor == "amd" else "archplan.io/accelerator"


def _node_group_view(region: str, g: NodeGroup, used: set[str]) -> _NodeGroupView:
    if not _INSTANCE_TYPE.match(g.instance_type):
        raise ValueError(f"unexpected instance type {g.instance_type!r}")
    key = _short(g.name, 30)
    n = 2
    while key in used:
        key = _short(f"{g.name}-{n}", 30)
        n += 1
    used.add(key)
    ami, taint = _ami_type(g.instance_type)
    offering = f"{_ident(region)}_{_ident(g.instance_type)}"
    reserved = g.capacity_type == "reserved" and g.reserved_instances > 0
    return _NodeGroupView(
        key=key, capacity_type=g.capacity_type, eks_capacity_type=EKS_CAPACITY_TYPES[g.capacity_type],
        capacity_label=CAPACITY_LABEL_VALUES[g.capacity_type], instance_type=g.instance_type,
        gpu_model=g.gpu_model, gpus_per_node=g.gpus_per_node, ami_type=ami, accelerator_taint=taint,
        min_size=g.min_size, max_size=max(g.max_size, g.min_size, 1), desired_size=g.desired_size,
        reserved_instances=g.reserved_instances if reserved else 0, offering=offering,
        reservation=f"{offering}_reserved" if reserved else None)


def _regions(ctx: BundleContext) -> list[_RegionView]:
    names = sorted({g.region for g in ctx.node_groups})
    out = []
    for i, region in enumerate(names):
        if not _REGION.match(region):
            raise ValueError(f"unexpected AWS region {region!r}")
        view = _RegionView(region=region, ident=_ident(region),
                           cluster_name=_short(f"{ctx.slug}-{region}", 100),
                           vpc_name=_short(f"{ctx.slug}-{region}", 100), vpc_cidr=f"10.{i}.0.0/16")
        used: set[str] = set()
        for g in ctx.node_groups:
            if g.region == region:
                view.node_groups.append(_node_group_view(region, g, used))
        seen: dict[str, str] = {}
        for g in view.node_groups:
            seen.setdefault(g.offering, g.instance_type)
        view.offerings = sorted(seen.items())
        out.append(view)
    idents = [r.ident for r in out]
    if len(set(idents)) != len(idents):  # pragma: no cover - region codes map injectively
        raise ValueError("AWS regions map to clashing Terraform identifiers")
    return out


def _buckets(ctx: BundleContext) -> list[_BucketView]:
    out = []
    for b in ctx.spec.architecture.storage or DEFAULT_BUCKETS:
        transition = None
        if b.storage_class == "infrequent_access" and (b.retention_days is None or b.retention_days > 30):
            transition = ("STANDARD_IA", 30)
        elif b.storage_class == "archive":
            transition = ("GLACIER_IR", 0)
        skips = [SKIP_REPLICATION, SKIP_EVENTS] + ([] if b.versioning else [SKIP_NO_VERSIONING])
        out.append(_BucketView(ident=_ident(b.name), name=b.name, purpose=b.purpose,
                               name_prefix=_bucket_prefix(ctx.slug, b.name), log_prefix=f"{b.name}/",
                               versioning=b.versioning, retention_days=b.retention_days,
                               transition=transition, skips=skips))
    idents = [b.ident for b in out] + ["access_logs"]
    if len(set(idents)) != len(idents):
        raise ValueError("bucket names map to clashing Terraform identifiers")
    return out


def _access(buckets: list[_BucketView]) -> dict[str, list[str]]:
    """Bucket identifiers per permission (training/serving x list/read/write/delete)."""
    def having(purposes: tuple[str, ...]) -> list[str]:
        return [b.ident for b in buckets if b.purpose in purposes]

    training_read, training_write = having(TRAINING_READ), having(TRAINING_WRITE)
    return {
        "training_list": [b.ident for b in buckets if b.ident in set(training_read) | set(training_write)],
        "training_read": training_read,
        "training_write": training_write,
        "training_delete": having(TRAINING_DELETE),
        "serving_read": having(SERVING_READ),
    }


def _not_generated(ctx: BundleContext) -> list[dict[str, Any]]:
    return [o.model_dump() for o in ctx.other_capacity]


def _model(ctx: BundleContext) -> dict[str, Any]:
    regions = _regions(ctx)
    buckets = _buckets(ctx)
    log_skips = [SKIP_LOG_LOGGING, SKIP_LOG_KMS, SKIP_REPLICATION, SKIP_EVENTS]
    where: dict[tuple[str, str], list[str]] = {s: ["aws_s3_bucket.access_logs"] for s in log_skips}
    where[SKIP_MODULE_HASH] = [f"module.{kind}_{r.ident}" for r in regions for kind in ("vpc", "eks")]
    where[SKIP_AZ_IDENTITY] = [f"data.aws_availability_zones.{r.ident}" for r in regions]
    for b in buckets:
        for s in b.skips:
            where.setdefault(s, []).append(f"aws_s3_bucket.{b.ident}")
    return {
        "ctx": ctx,
        "slug": ctx.slug,
        "plan_id": ctx.plan_id,
        "snapshot_id": ctx.snapshot_id,
        "design_name": ctx.design_name,
        "design_tag": tag_value(ctx.design_name, ctx.slug),
        "primary_region": ctx.aws_region,
        "regions": regions,
        "buckets": buckets,
        "access": _access(buckets),
        "log_bucket_prefix": _bucket_prefix(ctx.slug, "access-logs"),
        "budget_name": f"{ctx.slug}-{ctx.plan_id}",
        "budget_usd": ctx.monthly_budget_usd if ctx.monthly_budget_usd > 0 else None,
        "budget_tag_filter": f"user:archplan:plan-id${ctx.plan_id}",
        "role_prefix": ctx.slug,
        "terraform_version": TERRAFORM_REQUIRED_VERSION,
        "providers": PROVIDERS,
        "vpc_module": VPC_MODULE,
        "eks_module": EKS_MODULE,
        "kubernetes_version": KUBERNETES_VERSION,
        "capacity_label": CAPACITY_LABEL,
        "gpu_model_label": GPU_MODEL_LABEL,
        "skip_log_bucket": log_skips,
        "skip_modules": [SKIP_MODULE_HASH],
        "skip_azs": [SKIP_AZ_IDENTITY],
        "skips": [(check, places, reason) for (check, reason), places in sorted(where.items())],
        "not_generated": _not_generated(ctx),
        "bom": ctx.bom,
        "dedicated_tenancy": ctx.spec.compliance.dedicated_tenancy,
        "multi_node": any(r.interconnect == "multi_node" for r in ctx.spec.performance.training),
    }


_TF_FILES = ("versions.tf", "providers.tf", "variables.tf", "main.tf", "storage.tf", "iam.tf",
             "budget.tf", "outputs.tf")


def render_terraform(ctx: BundleContext) -> Files:
    """The Terraform bundle: ``terraform/*.tf``, ``README.md`` and a tfvars example."""
    env = environment("terraform")
    if not ctx.node_groups:
        readme = env.get_template("README-no-aws.md.j2").render(
            ctx=ctx, not_generated=_not_generated(ctx), bom=ctx.bom)
        return {"terraform/README.md": readme}
    model = _model(ctx)
    files: Files = {}
    for name in _TF_FILES:
        files[f"terraform/{name}"] = align_hcl(env.get_template(f"{name}.j2").render(**model))
    for region in model["regions"]:
        text = env.get_template("region.tf.j2").render(region=region, **model)
        files[f"terraform/eks-{region.region}.tf"] = align_hcl(text)
    files["terraform/terraform.tfvars.example"] = align_hcl(
        env.get_template("terraform.tfvars.example.j2").render(**model))
    files["terraform/README.md"] = env.get_template("README.md.j2").render(**model)
    return files


# --------------------------------------------------------------------------- BOM

BOM_COLUMNS = ["server_model", "site", "gpu_model", "gpus_per_server", "quantity", "order_month",
               "in_service_month", "lead_time_months", "unit_price_usd", "monthly_running_usd",
               "power_typical_kw", "power_max_kw", "rack_units", "total_power_max_kw",
               "total_rack_units"]


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return ""
    r = round(float(value), digits)
    return str(int(r)) if r == int(r) else repr(r)


def _money(value: float) -> str:
    return f"{value:.2f}"


def _filled(line: BomLine, skus: dict[str, Any]) -> BomLine:
    """The line with power/rack figures from the catalog where the plan left them empty."""
    sku = skus.get(line.server_model)
    if sku is None:
        return line
    update: dict[str, Any] = {}
    if line.power_typical_kw is None and sku.power_typical_kw is not None:
        update["power_typical_kw"] = sku.power_typical_kw.value
    if line.power_max_kw is None and sku.power_max_kw is not None:
        update["power_max_kw"] = sku.power_max_kw.value
    if line.rack_units is None and sku.rack_units is not None:
        update["rack_units"] = sku.rack_units
    return line.model_copy(update=update)


def bom_lines(ctx: BundleContext, snapshot: Any = None) -> list[BomLine]:
    """The plan's own-server lines with catalog power/rack figures, in order-month order."""
    if not ctx.bom:
        return []
    if snapshot is None:
        from app.catalog import load_snapshot

        snapshot = load_snapshot()
    skus = {s.id: s for s in snapshot.private_servers}
    lines = [_filled(line, skus) for line in ctx.bom]
    return sorted(lines, key=lambda b: (b.order_month, b.server_model, b.site))


def bom_rows(lines: list[BomLine]) -> list[dict[str, str]]:
    rows = []
    for b in lines:
        rows.append({
            "server_model": b.server_model, "site": b.site, "gpu_model": b.gpu_model,
            "gpus_per_server": _num(b.gpus_per_server), "quantity": str(b.quantity),
            "order_month": b.order_month, "in_service_month": b.in_service_month or "",
            "lead_time_months": str(b.lead_time_months), "unit_price_usd": _money(b.unit_price_usd),
            "monthly_running_usd": _money(b.monthly_running_usd),
            "power_typical_kw": _num(b.power_typical_kw), "power_max_kw": _num(b.power_max_kw),
            "rack_units": _num(b.rack_units),
            "total_power_max_kw": _num(None if b.power_max_kw is None else b.power_max_kw * b.quantity),
            "total_rack_units": _num(None if b.rack_units is None else b.rack_units * b.quantity),
        })
    return rows


def _bom_totals(lines: list[BomLine]) -> dict[str, Any]:
    unknown_power = sorted({b.server_model for b in lines if b.power_max_kw is None})
    unknown_rack = sorted({b.server_model for b in lines if b.rack_units is None})
    return {
        "servers": sum(b.quantity for b in lines),
        "gpus": _num(sum(b.gpus_per_server * b.quantity for b in lines)),
        "capex_usd": _money(sum(b.unit_price_usd * b.quantity for b in lines)),
        "running_usd": _money(sum(b.monthly_running_usd * b.quantity for b in lines)),
        "power_max_kw": _num(sum(b.power_max_kw * b.quantity for b in lines if b.power_max_kw is not None)),
        "rack_units": _num(sum(b.rack_units * b.quantity for b in lines if b.rack_units is not None)),
        "unknown_power": unknown_power,
        "unknown_rack": unknown_rack,
        "first_order": min(b.order_month for b in lines),
    }


def render_bom(ctx: BundleContext, snapshot: Any = None) -> Files:
    """``private-servers/bom.csv`` and ``bom.md`` for the plan's own servers. Power and rack
    figures come from ``snapshot`` (default: the bundled catalog) by server SKU id."""
    lines = bom_lines(ctx, snapshot)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=BOM_COLUMNS, lineterminator="\n")
    writer.writeheader()
    rows = bom_rows(lines)
    writer.writerows(rows)
    if not lines:
        text = f"No own servers in plan {md(ctx.plan_id)}: nothing to order.\n"
    else:
        text = environment("terraform").get_template("bom.md.j2").render(
            ctx=ctx, lines=lines, rows=rows, totals=_bom_totals(lines))
    return {"private-servers/bom.csv": buf.getvalue(), "private-servers/bom.md": text}
