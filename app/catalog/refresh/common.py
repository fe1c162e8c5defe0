"""Shared merge logic for provider price refreshes.

A refresh turns a *base* :class:`~app.catalog.schema.Snapshot` plus freshly fetched
provider prices into a **new** snapshot. It never mutates the base and it is
all-or-nothing: :func:`merge_refresh` returns a complete, validated snapshot with a new
``snapshot_id`` or raises :class:`RefreshError`. The provider adapters (``aws.py``,
``azure.py``) only fetch and parse; everything that decides what ends up in the
snapshot lives here so both providers behave the same way.

Merge rules (for the refreshed provider, inside the refreshed regions = the *scope*):

* **matched** ``(region, instance_type)`` keys keep every hardware field of the base
  offering; ``on_demand_hourly`` is replaced by the fresh value (``None`` if the provider
  no longer lists an on-demand price), ``spot_hourly`` is replaced when the adapter fetched
  spot prices for that region (otherwise the base value is kept and a warning says so),
  ``reserved`` commitments are replaced by the fresh ones while other commitment kinds
  (savings plans, capacity blocks, ...) are kept. The new source ids are appended to the
  offering's ``sources``. Counted as ``updated`` when a price changed, else ``unchanged``.
* **new** keys are added only when the accelerator is known: first from the same
  instance type elsewhere in the base snapshot (hardware fields copied), else from the
  adapter's hint (e.g. AWS family + ``gpu`` count attribute) if it names a *GPU* model that
  is in ``base.gpus``. Anything else is reported in ``warnings`` and not added - the
  accelerator is never guessed. New keys need their region in ``base.regions`` (country
  and jurisdiction are not in the price APIs, so regions are never invented either).
* base keys **absent** from the fresh data are removed (the provider no longer sells that
  type there) and the removal is recorded as a :class:`Correction`. Two guards keep a
  broken response from wiping the catalog: a region that returned no usable rows at all
  keeps its base offerings (warning), and removing more than ``max_removed_fraction`` of
  a region's offerings (or of the whole scope; at least ``MIN_REMOVED_FOR_GUARD``)
  raises :class:`RefreshError`.
* keys whose fresh row was present but unusable are kept exactly as in the base
  (``skipped``) with a warning and a correction.

Other providers' offerings, regions, GPUs, private servers and sites are copied as-is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from app.catalog.schema import (
    CommitmentPrice,
    Correction,
    Snapshot,
    Source,
    compute_snapshot_id,
)

__all__ = [
    "HOURS_PER_TERM_MONTHS",
    "FreshData",
    "FreshPrice",
    "Hardware",
    "RefreshError",
    "RefreshResult",
    "backoff_seconds",
    "check_regions",
    "hardware_from_base",
    "merge_refresh",
    "positive_price",
    "resolve_new_hardware",
]

#: Hours in a commitment term (365-day years, as AWS and Azure amortise).
HOURS_PER_TERM_MONTHS: dict[int, float] = {12: 8760.0, 36: 26280.0}

#: Refuse a refresh that would drop more than this share of the refreshed scope.
MAX_REMOVED_FRACTION = 0.5
#: ... but only once at least this many offerings would go (tiny scopes are not suspicious).
MIN_REMOVED_FOR_GUARD = 3


class RefreshError(Exception):
    """A refresh could not produce a complete snapshot. ``str(err)`` is user-readable."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


@dataclass(frozen=True)
class RefreshResult:
    """Outcome of one provider refresh.

    ``added``/``updated``/``unchanged``/``removed`` count offerings of the refreshed
    provider in the refreshed regions; ``skipped`` counts base offerings kept as they were
    because their fresh data was unusable or their region returned nothing (see
    ``warnings``). ``source`` is the primary new :class:`Source`; ``extra_sources`` holds
    any further new sources (AWS spot prices come from a second API).
    """

    snapshot: Snapshot
    added: int
    updated: int
    unchanged: int
    removed: int
    warnings: list[str]
    source: Source
    skipped: int = 0
    extra_sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Hardware:
    """Hardware fields needed to create a new :class:`Offering`."""

    accelerator_kind: str
    gpu_model: str
    gpu_count: int
    gpu_fraction: float = 1.0
    gpu_memory_gb: float | None = None
    vcpus: float | None = None
    ram_gb: float | None = None
    interconnect: str | None = None
    origin: str = ""  # human-readable provenance of these fields, used in the offering note


@dataclass
class FreshPrice:
    """Fresh prices for one ``(region, instance_type)`` of the refreshed provider."""

    region: str
    instance_type: str
    on_demand_hourly: float | None
    reserved: list[CommitmentPrice] = field(default_factory=list)
    spot_hourly: float | None = None
    #: True when spot prices were fetched for this region (``spot_hourly`` None then means
    #: "no spot market"); False keeps the base offering's spot price.
    spot_known: bool = False
    #: Source ids backing the fresh figures of this key.
    sources: list[str] = field(default_factory=list)
    #: Adapter's own identification of the accelerator, used only for keys the base does
    #: not know; ``hint_problem`` says why there is no hint.
    hardware_hint: Hardware | None = None
    hint_problem: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.region, self.instance_type)


@dataclass
class FreshData:
    """Everything an adapter fetched, ready for :func:`merge_refresh`."""

    provider: str
    regions: list[str]
    prices: dict[tuple[str, str], FreshPrice]
    #: keys whose fresh rows were present but unusable -> reason (base offering is kept)
    unusable: dict[tuple[str, str], str]
    #: new sources, primary first
    sources: list[Source]
    corrections: list[Correction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers


def backoff_seconds(attempt: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """Exponential backoff before retry number ``attempt`` (1-based): 1, 2, 4, ... <= cap."""
    return min(cap, base * (2 ** (attempt - 1)))


def check_regions(base: Snapshot, provider: str, regions: Iterable[str] | None) -> list[str]:
    """Regions to refresh: the requested ones (each must be in ``base.regions``) or, by
    default, every region of ``provider`` in the base snapshot."""
    known = sorted({r.region for r in base.regions if r.provider == provider})
    if regions is None:
        if not known:
            raise RefreshError(
                f"the base snapshot has no {provider} regions to refresh", provider=provider
            )
        return known
    wanted = sorted(set(regions))
    if not wanted:
        raise RefreshError("no regions given to refresh", provider=provider)
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise RefreshError(
            f"{provider} region(s) {', '.join(unknown)} are not in the base snapshot; a region "
            "needs its country and jurisdiction in the catalog (pricing_data/regions.yaml) "
            "before it can be refreshed",
            provider=provider,
        )
    return wanted


def hardware_from_base(base: Snapshot, provider: str, instance_type: str) -> Hardware | None:
    """Hardware of ``instance_type`` as the base snapshot records it in any region
    (first region in sort order), or None."""
    same = sorted(
        (o for o in base.offerings if o.provider == provider and o.instance_type == instance_type),
        key=lambda o: o.region,
    )
    if not same:
        return None
    o = same[0]
    return Hardware(
        accelerator_kind=o.accelerator_kind,
        gpu_model=o.gpu_model,
        gpu_count=o.gpu_count,
        gpu_fraction=o.gpu_fraction,
        gpu_memory_gb=o.gpu_memory_gb,
        vcpus=o.vcpus,
        ram_gb=o.ram_gb,
        interconnect=o.interconnect,
        origin=f"hardware fields copied from {o.key} in the base snapshot",
    )


def resolve_new_hardware(
    base: Snapshot, provider: str, fresh: FreshPrice
) -> tuple[Hardware | None, str | None]:
    """``(hardware, None)`` if a new key can be added, else ``(None, reason)``."""
    hw = hardware_from_base(base, provider, fresh.instance_type)
    if hw is not None:
        return hw, None
    hint = fresh.hardware_hint
    if hint is None:
        return None, fresh.hint_problem or "its accelerator cannot be identified"
    if hint.accelerator_kind != "gpu":
        return None, f"it is a {hint.accelerator_kind} instance; only new GPU offerings are added"
    if hint.gpu_model not in {g.name for g in base.gpus}:
        return None, (
            f"its GPU {hint.gpu_model!r} is not in the base snapshot's GPU list "
            "(add it with sourced specs first)"
        )
    return hint, None


def _price_signature(on_demand: float | None, spot: float | None, commitments) -> tuple:
    reserved = sorted(
        (
            c.term_months or 0,
            c.payment_option,
            c.offering_class or "",
            c.upfront_usd,
            c.hourly_usd,
            c.effective_hourly_usd,
        )
        for c in commitments
        if c.kind == "reserved"
    )
    return (on_demand, spot, tuple(reserved))


def _offering_sort_key(o: dict[str, Any]) -> str:
    # same order as app.catalog.build: by offering key
    return f"{o['provider']}/{o['region']}/{o['instance_type']}"


def _sorted_commitments(commitments: Iterable[CommitmentPrice]) -> list[CommitmentPrice]:
    # app.catalog.build's order, with the offering class as final tie-break
    return sorted(
        commitments,
        key=lambda c: (
            c.kind,
            c.term_months or 0,
            c.payment_option,
            c.source,
            c.offering_class or "",
        ),
    )


# --------------------------------------------------------------------------- merge


def merge_refresh(
    base: Snapshot,
    fresh: FreshData,
    *,
    today: date,
    max_removed_fraction: float = MAX_REMOVED_FRACTION,
) -> RefreshResult:
    """Build the refreshed snapshot (see module docstring). Never mutates ``base``."""
    provider = fresh.provider
    if not fresh.sources:
        raise RefreshError("internal error: refresh recorded no source", provider=provider)
    primary = fresh.sources[0]
    new_source_ids = {s.id for s in fresh.sources}
    scope = set(fresh.regions)
    today_s = today.isoformat()
    warnings = list(fresh.warnings)
    corrections = list(fresh.corrections)

    if not fresh.prices:
        raise RefreshError(
            f"{primary.name} returned no usable {provider} prices for {', '.join(sorted(scope))}",
            provider=provider,
        )

    regions_with_rows = {k[0] for k in fresh.prices} | {k[0] for k in fresh.unusable}
    empty_regions = sorted(scope - regions_with_rows)

    added = updated = unchanged = removed = skipped = 0
    removed_keys: list[str] = []
    spot_kept: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    base_keys: set[tuple[str, str]] = set()
    in_scope = 0

    for o in base.offerings:
        data = o.model_dump(mode="python")
        if o.provider != provider or o.region not in scope:
            out.append(data)
            continue
        in_scope += 1
        key = (o.region, o.instance_type)
        base_keys.add(key)
        fp = fresh.prices.get(key)
        if fp is None:
            if key in fresh.unusable or o.region in empty_regions:
                skipped += 1
                out.append(data)
            else:
                removed += 1
                removed_keys.append(o.key)
            continue
        spot = fp.spot_hourly if fp.spot_known else o.spot_hourly
        if not fp.spot_known and o.spot_hourly is not None:
            spot_kept[o.region] = spot_kept.get(o.region, 0) + 1
        commitments = _sorted_commitments(
            [c for c in o.commitments if c.kind != "reserved"] + list(fp.reserved)
        )
        before = _price_signature(o.on_demand_hourly, o.spot_hourly, o.commitments)
        after = _price_signature(fp.on_demand_hourly, spot, commitments)
        if before == after:
            unchanged += 1
        else:
            updated += 1
        data.update(
            on_demand_hourly=fp.on_demand_hourly,
            spot_hourly=spot,
            commitments=[c.model_dump(mode="python") for c in commitments],
            sources=sorted({*o.sources, *fp.sources}),
        )
        out.append(data)

    unknown: dict[str, tuple[str, list[str]]] = {}
    outside = sorted({k[0] for k in fresh.prices} - scope)
    if outside:  # adapters filter by scope (a subset of base.regions): internal safeguard
        raise RefreshError(
            f"internal error: fresh {provider} prices for regions outside the refresh: "
            f"{', '.join(outside)}",
            provider=provider,
        )
    for key in sorted(fresh.prices):
        if key in base_keys:
            continue
        fp = fresh.prices[key]
        hw, problem = resolve_new_hardware(base, provider, fp)
        if hw is None:
            reason, regions = unknown.setdefault(fp.instance_type, (problem or "", []))
            regions.append(fp.region)
            continue
        added += 1
        # A plain dict: the final Snapshot validation below checks it (and turns any
        # problem into a RefreshError instead of a bare ValidationError).
        out.append(
            {
                "provider": provider,
                "region": fp.region,
                "instance_type": fp.instance_type,
                "accelerator_kind": hw.accelerator_kind,
                "gpu_model": hw.gpu_model,
                "gpu_count": hw.gpu_count,
                "gpu_fraction": hw.gpu_fraction,
                "gpu_memory_gb": hw.gpu_memory_gb,
                "vcpus": hw.vcpus,
                "ram_gb": hw.ram_gb,
                "interconnect": hw.interconnect,
                "on_demand_hourly": fp.on_demand_hourly,
                "spot_hourly": fp.spot_hourly if fp.spot_known else None,
                "commitments": [
                    c.model_dump(mode="python") for c in _sorted_commitments(fp.reserved)
                ],
                "sources": sorted(set(fp.sources or [primary.id])),
                "notes": [f"Added by the {primary.name} refresh of {today_s}; {hw.origin}."],
            }
        )

    for instance_type, (reason, regions) in sorted(unknown.items()):
        warnings.append(
            f"{provider}: {instance_type} is listed in {', '.join(sorted(regions))} but was not "
            f"added: {reason}"
        )
    for region in empty_regions:
        n = sum(1 for o in base.offerings if o.provider == provider and o.region == region)
        if not n:
            continue
        warnings.append(
            f"{provider}/{region}: {primary.name} returned no usable rows for this region; "
            f"its {n} base offering(s) were kept unchanged"
        )
    for region, n in sorted(spot_kept.items()):
        warnings.append(
            f"{provider}/{region}: spot prices could not be refreshed; kept the base spot "
            f"price of {n} offering(s)"
        )
    for key, reason in sorted(fresh.unusable.items()):
        if key in base_keys:
            warnings.append(
                f"{provider}/{key[0]}/{key[1]}: kept the base prices because the fresh data "
                f"was unusable ({reason})"
            )

    # Guard against a truncated/broken response: per region and overall.
    per_region: dict[str, list[int]] = {}
    for o in base.offerings:
        if o.provider == provider and o.region in scope:
            per_region.setdefault(o.region, [0, 0])[1] += 1
    for k in removed_keys:
        per_region[k.split("/")[1]][0] += 1
    checks = [(f"{provider}/{r}", n_removed, n) for r, (n_removed, n) in sorted(per_region.items())]
    checks.append((f"{provider} (all refreshed regions)", removed, in_scope))
    for where, n_removed, n in checks:
        if n_removed >= MIN_REMOVED_FOR_GUARD and n and n_removed / n > max_removed_fraction:
            raise RefreshError(
                f"{primary.name} no longer lists {n_removed} of the {n} offerings of {where} "
                f"(more than {max_removed_fraction:.0%}); this looks like an incomplete "
                "response, so the refresh was aborted",
                provider=provider,
            )
    if removed_keys:
        corrections.append(
            Correction(
                id=f"{provider}-refresh-{today_s}-not-listed",
                provider=provider,
                keys=sorted(removed_keys),
                field="row",
                action="dropped_row",
                reason=f"Not listed by the {primary.name} on {today_s} (no longer offered "
                "in that region); dropped by the price refresh.",
                source=primary.id,
            )
        )
        warnings.append(
            f"{provider}: {len(removed_keys)} offering(s) no longer listed and removed: "
            + ", ".join(sorted(removed_keys))
        )

    data = base.model_dump(mode="python")
    sources = [s for s in data["sources"] if s["id"] not in new_source_ids]
    sources.extend(s.model_dump(mode="python") for s in fresh.sources)
    sources.sort(key=lambda s: s["id"])
    base_corrections = data["corrections"]
    for c in corrections:
        cd = c.model_dump(mode="python")
        if cd not in base_corrections:
            base_corrections.append(cd)
    out.sort(key=_offering_sort_key)
    data.update(
        created=today_s,
        snapshot_id="pending",
        sources=sources,
        offerings=out,
        corrections=base_corrections,
    )
    try:
        snap = Snapshot.model_validate(data)
        snap = Snapshot.model_validate({**data, "snapshot_id": compute_snapshot_id(snap)})
    except ValidationError as exc:
        raise RefreshError(
            f"the refreshed {provider} snapshot failed validation, so it was not produced: "
            f"{_short_validation_error(exc)}",
            provider=provider,
        ) from exc
    return RefreshResult(
        snapshot=snap,
        added=added,
        updated=updated,
        unchanged=unchanged,
        removed=removed,
        warnings=warnings,
        source=primary,
        skipped=skipped,
        extra_sources=tuple(fresh.sources[1:]),
    )


def _short_validation_error(exc: ValidationError) -> str:
    errs = exc.errors()
    first = errs[0] if errs else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first.get("loc", ()))
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{where}: {first.get('msg')}{more}"


def positive_price(value: Any) -> float | None:
    """Parse a provider price string/number; None for 0, raise ValueError if not a number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a price: {value!r}")
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise ValueError(f"not a price: {value!r}")
    return f if f > 0 else None
