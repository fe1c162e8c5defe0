"""Workspace custom prices applied on top of a snapshot (pure functions, no DB).

Two kinds of custom price:

* :class:`CustomDiscount` - a negotiated discount in percent on a provider's prices,
  optionally only for one *instance family* and/or one *purchase option*. An instance
  family matches an instance type that equals it or starts with it followed by ``.``,
  ``-`` or ``_`` (case-insensitive): ``p5`` matches ``p5.48xlarge`` but not
  ``p5en.48xlarge``; ``a2-highgpu`` matches ``a2-highgpu-8g``; ``Standard_ND96isr_H100``
  matches ``Standard_ND96isr_H100_v5``. For each price the **most specific** matching
  discount applies (family + option, then family, then option, then provider-wide);
  discounts never stack.
* :class:`CustomOffering` - a private price entry (an instance the workspace negotiated).
  It replaces the snapshot's offering with the same key, or adds one. Custom offerings
  are not discounted again.

:func:`apply_custom_prices` never changes the snapshot it is given: it returns a new
:class:`~app.catalog.schema.Snapshot` whose id is ``<base id>+custom-<sha10>`` (hash of
the custom prices), whose changed offerings carry a note saying what was applied and cite
the workspace's custom-price source.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.catalog.gpus import (
    CANONICAL_ACCELERATORS,
    UnknownAcceleratorError,
    normalize_accelerator_name,
)
from app.catalog.schema import (
    CommitmentKind,
    CommitmentPrice,
    Jurisdiction,
    Offering,
    PaymentOption,
    Snapshot,
)

__all__ = [
    "CUSTOM_SOURCE_ID",
    "HOURS_PER_MONTH",
    "PURCHASE_OPTIONS",
    "CustomCommitment",
    "CustomDiscount",
    "CustomOffering",
    "PurchaseOption",
    "apply_custom_prices",
    "custom_prices_digest",
    "family_matches",
]

CUSTOM_SOURCE_ID = "workspace-custom-prices"
HOURS_PER_MONTH = 730.0  # 8,760 h / 12, the convention providers use for monthly figures

PurchaseOption = Literal["on_demand", "spot", "reserved", "savings_plan", "committed_use", "capacity_block"]
PURCHASE_OPTIONS: tuple[str, ...] = PurchaseOption.__args__  # type: ignore[attr-defined]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CustomDiscount(_Model):
    """A negotiated discount on list prices."""

    provider: str = Field(min_length=1, max_length=20, examples=["aws"])
    percent: float = Field(gt=0, lt=100, description="Discount in percent of the list price.", examples=[12.5])
    instance_family: str | None = Field(
        default=None, max_length=80, description="e.g. 'p5' (AWS), 'a3-highgpu' (GCP); None = every type.",
    )
    purchase_option: PurchaseOption | None = Field(default=None, description="None = every price.")
    note: str | None = Field(default=None, max_length=500)

    @field_validator("instance_family")
    @classmethod
    def _family(cls, v: str | None) -> str | None:
        v = (v or "").strip()
        return v or None

    def scope(self) -> str:
        parts = [self.provider]
        if self.instance_family:
            parts.append(f"family {self.instance_family}")
        if self.purchase_option:
            parts.append(self.purchase_option.replace("_", "-"))
        return ", ".join(parts)


class CustomCommitment(_Model):
    """A negotiated committed price; ``effective_hourly_usd`` is derived."""

    kind: CommitmentKind = "reserved"
    term_months: int = Field(ge=1, le=120)
    payment_option: PaymentOption = "no_upfront"
    hourly_usd: float = Field(default=0, ge=0)
    upfront_usd: float = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _some_price(self) -> CustomCommitment:
        if self.hourly_usd <= 0 and self.upfront_usd <= 0:
            raise ValueError("a commitment needs hourly_usd or upfront_usd > 0")
        return self

    @property
    def effective_hourly_usd(self) -> float:
        return self.hourly_usd + self.upfront_usd / (self.term_months * HOURS_PER_MONTH)


class CustomOffering(_Model):
    """A private price for one instance type in one region."""

    provider: str = Field(min_length=1, max_length=20, examples=["aws"])
    region: str = Field(min_length=1, max_length=60, examples=["us-east-1"])
    instance_type: str = Field(min_length=1, max_length=80, examples=["p5.48xlarge"])
    gpu_model: str = Field(description="Canonical or alias accelerator name.", examples=["H100"])
    gpu_count: int = Field(ge=1, examples=[8])
    gpu_fraction: float = Field(default=1.0, gt=0, le=1)
    gpu_memory_gb: float | None = Field(default=None, gt=0)
    vcpus: float | None = Field(default=None, gt=0)
    ram_gb: float | None = Field(default=None, gt=0)
    interconnect: str | None = None
    on_demand_hourly: float = Field(gt=0, description="Negotiated USD per instance-hour.", examples=[41.0])
    spot_hourly: float | None = Field(default=None, gt=0)
    commitments: list[CustomCommitment] = Field(default_factory=list)
    as_of: str = Field(default_factory=lambda: date.today().isoformat(), description="Date the price holds from.")
    reference: str | None = Field(default=None, max_length=200, description="Contract or quote reference.")
    # Only needed when the region is not in the snapshot.
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    jurisdiction: Jurisdiction | None = None
    compliance_programs: list[str] = Field(default_factory=list)

    @field_validator("gpu_model")
    @classmethod
    def _gpu(cls, v: str) -> str:
        try:
            return normalize_accelerator_name(v)
        except UnknownAcceleratorError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, v: str) -> str:
        date.fromisoformat(v)
        return v

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.region}/{self.instance_type}"


def family_matches(family: str | None, instance_type: str) -> bool:
    """True if ``instance_type`` belongs to ``family`` (None matches everything)."""
    if not family:
        return True
    f, t = family.lower(), instance_type.lower()
    return t == f or (t.startswith(f) and t[len(f)] in ".-_")


def _best_discount(discounts: list[CustomDiscount], offering: Offering, option: str) -> CustomDiscount | None:
    best: tuple[tuple[bool, bool], CustomDiscount] | None = None
    for d in discounts:
        if d.provider != offering.provider:
            continue
        if d.purchase_option is not None and d.purchase_option != option:
            continue
        if not family_matches(d.instance_family, offering.instance_type):
            continue
        rank = (d.instance_family is not None, d.purchase_option is not None)
        if best is None or rank > best[0]:
            best = (rank, d)
    return best[1] if best else None


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else round(value * factor, 6)


def _discounted(offering: Offering, discounts: list[CustomDiscount]) -> dict | None:
    """The offering's record with discounts applied, or None if none applies."""
    record = offering.model_dump(mode="json")
    applied: list[str] = []
    for field, option in (("on_demand_hourly", "on_demand"), ("spot_hourly", "spot")):
        if record[field] is None:
            continue
        d = _best_discount(discounts, offering, option)
        if d:
            record[field] = _scaled(record[field], 1 - d.percent / 100)
            applied.append(f"{d.percent:g}% on {option.replace('_', '-')} ({d.scope()})")
    for i, c in enumerate(offering.commitments):
        d = _best_discount(discounts, offering, c.kind)
        if not d:
            continue
        f = 1 - d.percent / 100
        rec = record["commitments"][i]
        for name in ("hourly_usd", "upfront_usd", "effective_hourly_usd"):
            rec[name] = _scaled(rec[name], f)
        label = f"{d.percent:g}% on {c.kind.replace('_', '-')} ({d.scope()})"
        if label not in applied:
            applied.append(label)
    if not applied:
        return None
    record["notes"] = [*record["notes"], "Workspace negotiated discount: " + "; ".join(applied) + "."]
    if CUSTOM_SOURCE_ID not in record["sources"]:
        record["sources"] = [*record["sources"], CUSTOM_SOURCE_ID]
    return record


def _custom_record(c: CustomOffering, replaces: Offering | None) -> dict:
    commitments = [
        CommitmentPrice(
            kind=cc.kind, term_months=cc.term_months, payment_option=cc.payment_option,
            hourly_usd=cc.hourly_usd or None, upfront_usd=cc.upfront_usd,
            effective_hourly_usd=round(cc.effective_hourly_usd, 6), source=CUSTOM_SOURCE_ID,
            date=c.as_of, note="Negotiated price.",
        ).model_dump(mode="json")
        for cc in c.commitments
    ]
    note = "Workspace private price" + (f" ({c.reference})" if c.reference else "")
    if replaces is not None and replaces.on_demand_hourly is not None:
        note += f"; replaces list on-demand ${replaces.on_demand_hourly:,.4g}/h"
    return {
        "provider": c.provider, "region": c.region, "instance_type": c.instance_type,
        "accelerator_kind": CANONICAL_ACCELERATORS[c.gpu_model], "gpu_model": c.gpu_model,
        "gpu_count": c.gpu_count, "gpu_fraction": c.gpu_fraction, "gpu_memory_gb": c.gpu_memory_gb,
        "vcpus": c.vcpus, "ram_gb": c.ram_gb, "interconnect": c.interconnect,
        "on_demand_hourly": c.on_demand_hourly, "spot_hourly": c.spot_hourly, "price_scope": "instance",
        "commitments": commitments, "sources": [CUSTOM_SOURCE_ID], "notes": [note + "."],
    }


def custom_prices_digest(discounts: list[CustomDiscount], custom_offerings: list[CustomOffering]) -> str:
    """Stable hash of a set of custom prices (order-independent)."""
    payload = {
        "discounts": sorted(json.dumps(d.model_dump(mode="json"), sort_keys=True) for d in discounts),
        "offerings": sorted(json.dumps(o.model_dump(mode="json"), sort_keys=True) for o in custom_offerings),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def apply_custom_prices(
    snapshot: Snapshot,
    discounts: list[CustomDiscount],
    custom_offerings: list[CustomOffering],
    *,
    workspace: str = "workspace",
) -> Snapshot:
    """A new snapshot with ``discounts`` and ``custom_offerings`` applied (see module doc).

    Raises ``ValueError`` when a custom offering is in a region unknown to the snapshot and
    does not give ``country`` and ``jurisdiction``, or names an accelerator the snapshot's
    GPU list lacks.
    """
    if not discounts and not custom_offerings:
        return snapshot
    data = snapshot.model_dump(mode="json")
    gpu_names = {g.name for g in snapshot.gpus}
    region_keys = {r.key for r in snapshot.regions}
    custom_by_key: dict[str, CustomOffering] = {}
    for c in custom_offerings:
        if c.key in custom_by_key:
            raise ValueError(f"duplicate custom offering {c.key}")
        if c.gpu_model not in gpu_names:
            raise ValueError(f"{c.key}: GPU model {c.gpu_model!r} is not in the snapshot")
        if f"{c.provider}/{c.region}" not in region_keys:
            if not (c.country and c.jurisdiction):
                raise ValueError(
                    f"{c.key}: region {c.provider}/{c.region} is not in the snapshot; "
                    "give country and jurisdiction to add it"
                )
            data["regions"].append({
                "provider": c.provider, "region": c.region, "country": c.country,
                "jurisdiction": c.jurisdiction, "compliance_programs": list(c.compliance_programs),
                "sources": [CUSTOM_SOURCE_ID], "note": "Region added by a workspace private price.",
                "location": None,
            })
            region_keys.add(f"{c.provider}/{c.region}")
        custom_by_key[c.key] = c

    offerings: list[dict] = []
    for o, record in zip(snapshot.offerings, data["offerings"], strict=True):
        if o.key in custom_by_key:
            offerings.append(_custom_record(custom_by_key.pop(o.key), o))
            continue
        changed = _discounted(o, discounts) if discounts else None
        offerings.append(changed if changed is not None else record)
    offerings.extend(_custom_record(c, None) for c in custom_by_key.values())
    data["offerings"] = offerings

    as_of = max([c.as_of for c in custom_offerings] or [snapshot.created])
    data["sources"] = [s for s in data["sources"] if s["id"] != CUSTOM_SOURCE_ID]
    data["sources"].append({
        "id": CUSTOM_SOURCE_ID,
        "name": f"Custom prices of workspace {workspace}",
        "url": f"archplan:workspace/{workspace}/prices",
        "date": as_of,
        "date_note": "Latest as-of date of the workspace's private prices (or the snapshot date).",
        "retrieved": as_of,
        "note": f"{len(discounts)} negotiated discount(s), {len(custom_offerings)} private price(s).",
    })
    digest = custom_prices_digest(discounts, custom_offerings)
    data["snapshot_id"] = f"{snapshot.snapshot_id}+custom-{digest[:10]}"
    data["description"] = ((snapshot.description or "").rstrip() + f" With the custom prices of workspace "
                           f"{workspace}.").strip()
    return Snapshot.model_validate(data)
