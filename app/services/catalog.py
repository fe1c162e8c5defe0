"""Price catalog in the database: versioned snapshots, catalog queries, workspace custom prices.

Snapshots are immutable. :func:`import_snapshot` writes one in a single transaction (the
snapshot row, every offering with its denormalised filter columns, and the switch of the
*current* flag) and commits; on any failure it rolls back, so the previous current snapshot
stays current and nothing is half-written. Write functions here commit their own unit of
work; read functions never write.

Effective prices per GPU-hour divide the instance-hour price by the offering's effective
GPUs (``gpu_count * gpu_fraction``). *Best reserved* is the cheapest effective hourly price
among ``reserved``, ``savings_plan`` and ``committed_use`` commitments (capacity blocks are
short bookings, not reservations, and are left out).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import and_, case, func, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.catalog.custom import CustomDiscount, CustomOffering, apply_custom_prices
from app.catalog.schema import CommitmentPrice, Offering, Region, Snapshot, load_snapshot
from app.models import CustomDiscount as CustomDiscountRow
from app.models import CustomOffering as CustomOfferingRow
from app.models import PriceOffering, PriceSnapshot, Workspace

__all__ = [
    "RESERVED_KINDS",
    "SORTS",
    "FilterOptions",
    "OfferingFilters",
    "OfferingView",
    "SnapshotNotFoundError",
    "SnapshotSummary",
    "add_custom_discount",
    "add_custom_offering",
    "count_offerings",
    "current_snapshot",
    "delete_custom_discount",
    "delete_custom_offering",
    "ensure_bundled_snapshot",
    "filter_options",
    "get_snapshot",
    "get_snapshot_row",
    "import_snapshot",
    "invalid_filters",
    "list_custom_discounts",
    "list_custom_offerings",
    "list_offerings",
    "list_snapshots",
    "offering_views",
    "snapshot_for_workspace",
    "snapshot_summary",
    "workspace_custom_prices",
]

log = logging.getLogger("archplan.catalog")

RESERVED_KINDS = frozenset({"reserved", "savings_plan", "committed_use"})
SortKey = Literal["on_demand", "spot", "reserved"]
SORTS: dict[str, Any] = {
    "on_demand": PriceOffering.od_gpu_hourly,
    "spot": PriceOffering.spot_gpu_hourly,
    "reserved": PriceOffering.reserved_gpu_hourly,
}
SORT_LABELS = {"on_demand": "On-demand", "spot": "Spot", "reserved": "Best reserved"}
_INSERT_CHUNK = 500


class SnapshotNotFoundError(LookupError):
    """No snapshot with that id (or no current snapshot)."""


# --------------------------------------------------------------------------- import


def _best_reserved(o: Offering) -> CommitmentPrice | None:
    best = None
    for c in o.commitments:
        if c.kind in RESERVED_KINDS and (best is None or c.effective_hourly_usd < best.effective_hourly_usd):
            best = c
    return best


def _per_gpu(price: float | None, gpus: float) -> float | None:
    return None if price is None or gpus <= 0 else price / gpus


def _offering_row(o: Offering, region: Region | None, snapshot_pk: int) -> dict[str, Any]:
    gpus = o.effective_gpus
    reserved = _best_reserved(o)
    return {
        "snapshot_pk": snapshot_pk,
        "provider": o.provider,
        "region": o.region,
        "instance_type": o.instance_type,
        "gpu_model": o.gpu_model,
        "gpu_count": o.gpu_count,
        "gpu_memory_gb": o.gpu_memory_gb,
        "on_demand_hourly": o.on_demand_hourly,
        "spot_hourly": o.spot_hourly,
        "accelerator_kind": o.accelerator_kind,
        "price_scope": o.price_scope,
        "effective_gpus": gpus,
        "vcpus": o.vcpus,
        "ram_gb": o.ram_gb,
        "jurisdiction": region.jurisdiction if region else None,
        "country": region.country if region else None,
        "compliance_tags": "".join(f"|{p}" for p in region.compliance_programs) + "|"
        if region and region.compliance_programs else "",
        "od_gpu_hourly": _per_gpu(o.on_demand_hourly, gpus),
        "spot_gpu_hourly": _per_gpu(o.spot_hourly, gpus),
        "reserved_gpu_hourly": _per_gpu(reserved.effective_hourly_usd if reserved else None, gpus),
        "data": o.model_dump(mode="json"),
    }


def _chunks(items: Sequence[Any], size: int) -> Iterable[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _by_snapshot_id(session: Session, snapshot_id: str) -> PriceSnapshot | None:
    return session.exec(select(PriceSnapshot).where(PriceSnapshot.snapshot_id == snapshot_id)).first()


def _demote_current(session: Session) -> None:
    session.execute(
        update(PriceSnapshot).where(col(PriceSnapshot.is_current)).values(is_current=False)
    )


def import_snapshot(
    session: Session,
    snapshot: Snapshot,
    *,
    origin: str,
    label: str = "",
    make_current: bool = True,
    base_snapshot_id: str | None = None,
) -> PriceSnapshot:
    """Store ``snapshot`` (atomically) and return its row.

    Idempotent: a snapshot whose ``snapshot_id`` is already stored is not written again;
    the existing row is returned (and made current if ``make_current``).
    """
    existing = _by_snapshot_id(session, snapshot.snapshot_id)
    if existing is not None:
        if make_current and not existing.is_current:
            try:
                _demote_current(session)
                existing.is_current = True
                session.add(existing)
                session.commit()
            except Exception:
                session.rollback()
                raise
            session.refresh(existing)
        return existing

    regions = {r.key: r for r in snapshot.regions}
    try:
        if make_current:
            _demote_current(session)
        row = PriceSnapshot(
            snapshot_id=snapshot.snapshot_id,
            label=label[:200],
            origin=origin[:40],
            is_current=make_current,
            offering_count=len(snapshot.offerings),
            snapshot_date=snapshot.created,
            base_snapshot_id=base_snapshot_id,
            data=snapshot.model_dump(mode="json", exclude={"offerings"}),
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        for chunk in _chunks(snapshot.offerings, _INSERT_CHUNK):
            session.execute(
                insert(PriceOffering),
                [_offering_row(o, regions.get(f"{o.provider}/{o.region}"), row.id) for o in chunk],
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        # A concurrent import of the same snapshot won the race: return its row.
        winner = _by_snapshot_id(session, snapshot.snapshot_id)
        if winner is not None:
            return winner
        raise
    except BaseException:
        session.rollback()
        raise
    session.refresh(row)
    log.info("imported snapshot %s (%d offerings, origin %s)", row.snapshot_id, row.offering_count, origin)
    return row


def ensure_bundled_snapshot(session: Session, path: str | Path | None = None) -> PriceSnapshot | None:
    """Import the bundled snapshot (or ``path``) if the database has no snapshot at all.

    Returns the new row, or None when a snapshot was already there.
    """
    if session.exec(select(PriceSnapshot.id).limit(1)).first() is not None:
        return None
    return import_snapshot(session, load_snapshot(path), origin="bundled", label="Bundled snapshot")


# --------------------------------------------------------------------------- reading snapshots


def current_snapshot(session: Session) -> PriceSnapshot | None:
    return session.exec(select(PriceSnapshot).where(col(PriceSnapshot.is_current))).first()


def list_snapshots(session: Session) -> list[PriceSnapshot]:
    """Every stored snapshot, newest import first."""
    return list(session.exec(select(PriceSnapshot).order_by(col(PriceSnapshot.id).desc())).all())


def get_snapshot_row(session: Session, snapshot_id: str | None = None) -> PriceSnapshot:
    """The row of ``snapshot_id`` (None or ``"current"``: the current snapshot).

    A unique prefix of a snapshot id is accepted too (handy on the command line).
    """
    if snapshot_id in (None, "", "current"):
        row = current_snapshot(session)
        if row is None:
            raise SnapshotNotFoundError("there is no current price snapshot; import one first")
        return row
    row = _by_snapshot_id(session, snapshot_id)
    if row is None and len(snapshot_id) >= 6:
        matches = session.exec(
            select(PriceSnapshot).where(col(PriceSnapshot.snapshot_id).startswith(snapshot_id, autoescape=True))
            .limit(2)
        ).all()
        if len(matches) == 1:
            row = matches[0]
    if row is None:
        raise SnapshotNotFoundError(f"no price snapshot {snapshot_id!r}")
    return row


_cache_lock = threading.Lock()
_snapshot_cache: OrderedDict[str, Snapshot] = OrderedDict()
_options_cache: OrderedDict[str, FilterOptions] = OrderedDict()
_CACHE_SIZE = 4


def _cache_get(cache: OrderedDict, key: str) -> Any:
    with _cache_lock:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value


def _cache_put(cache: OrderedDict, key: str, value: Any) -> None:
    with _cache_lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def get_snapshot(session: Session, snapshot_id: str | None = None) -> Snapshot:
    """The domain :class:`Snapshot` rebuilt from the rows (None: the current one).

    Snapshots are immutable and their id is a content hash, so rebuilt snapshots are cached.
    """
    row = get_snapshot_row(session, snapshot_id)
    cached = _cache_get(_snapshot_cache, row.snapshot_id)
    if cached is not None:
        return cached
    records = session.exec(
        select(PriceOffering.data).where(PriceOffering.snapshot_pk == row.id).order_by(col(PriceOffering.id))
    ).all()
    snap = Snapshot.model_validate({**row.data, "offerings": list(records)})
    _cache_put(_snapshot_cache, row.snapshot_id, snap)
    return snap


@dataclass(frozen=True)
class SnapshotSummary:
    snapshot_id: str
    created: str
    label: str
    origin: str
    is_current: bool
    offering_count: int
    imported_at: Any
    base_snapshot_id: str | None
    description: str | None
    offerings_by_provider: dict[str, int]
    """Provider → priced GPU offerings (``Snapshot.priced_gpu_offerings``: GPUs with an
    on-demand price for the whole instance)."""
    sources: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


def snapshot_summary(session: Session, row: PriceSnapshot, *, with_sources: bool = True) -> SnapshotSummary:
    counts = session.exec(
        select(PriceOffering.provider, func.count())
        .where(PriceOffering.snapshot_pk == row.id, PriceOffering.accelerator_kind == "gpu",
               PriceOffering.price_scope == "instance", col(PriceOffering.on_demand_hourly).is_not(None))
        .group_by(PriceOffering.provider)
        .order_by(PriceOffering.provider)
    ).all()
    data = row.data or {}
    return SnapshotSummary(
        snapshot_id=row.snapshot_id,
        created=row.snapshot_date or data.get("created", ""),
        label=row.label,
        origin=row.origin,
        is_current=row.is_current,
        offering_count=row.offering_count,
        imported_at=row.created_at,
        base_snapshot_id=row.base_snapshot_id,
        description=data.get("description"),
        offerings_by_provider={p: n for p, n in counts},
        sources=list(data.get("sources", [])) if with_sources else [],
        gaps=list(data.get("gaps", [])),
    )


# --------------------------------------------------------------------------- catalog queries


@dataclass(frozen=True)
class OfferingFilters:
    """Filters of the catalog page and ``GET /api/v1/offerings`` (empty = no filter).

    Values within one filter are alternatives (OR); compliance programs must all hold (AND).
    """

    gpu_models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()
    compliance: tuple[str, ...] = ()
    min_gpu_memory_gb: float | None = None
    accelerator_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class FilterOptions:
    """The values a snapshot actually has, for select boxes and validation."""

    gpu_models: list[str]
    providers: list[str]
    jurisdictions: list[str]
    compliance: list[str]


def filter_options(session: Session, row: PriceSnapshot) -> FilterOptions:
    cached = _cache_get(_options_cache, row.snapshot_id)
    if cached is not None:
        return cached

    def distinct(column: Any) -> list[str]:
        values = session.exec(
            select(column).where(PriceOffering.snapshot_pk == row.id, column.is_not(None)).distinct()
        ).all()
        return sorted(v for v in values if v)

    programs: set[str] = set()
    for tags in distinct(PriceOffering.compliance_tags):
        programs.update(t for t in tags.split("|") if t)
    options = FilterOptions(
        gpu_models=distinct(PriceOffering.gpu_model),
        providers=distinct(PriceOffering.provider),
        jurisdictions=distinct(PriceOffering.jurisdiction),
        compliance=sorted(programs),
    )
    _cache_put(_options_cache, row.snapshot_id, options)
    return options


def invalid_filters(options: FilterOptions, filters: OfferingFilters) -> list[tuple[str, str]]:
    """``(field, message)`` for every filter value the snapshot does not have."""
    problems = []
    for name, label, values, known in (
        ("gpu_model", "GPU model", filters.gpu_models, options.gpu_models),
        ("provider", "provider", filters.providers, options.providers),
        ("jurisdiction", "jurisdiction", filters.jurisdictions, options.jurisdictions),
        ("compliance", "compliance program", filters.compliance, options.compliance),
    ):
        for v in values:
            if v not in known:
                problems.append((name, f"Unknown {label} {v!r} in this snapshot; expected one of: "
                                       + ", ".join(known)))
    if filters.min_gpu_memory_gb is not None and filters.min_gpu_memory_gb < 0:
        problems.append(("min_gpu_memory_gb", "must be 0 or more"))
    return problems


def _filtered(snapshot_pk: int, filters: OfferingFilters):
    conditions = [PriceOffering.snapshot_pk == snapshot_pk]
    if filters.gpu_models:
        conditions.append(col(PriceOffering.gpu_model).in_(filters.gpu_models))
    if filters.providers:
        conditions.append(col(PriceOffering.provider).in_(filters.providers))
    if filters.jurisdictions:
        conditions.append(col(PriceOffering.jurisdiction).in_(filters.jurisdictions))
    for program in filters.compliance:
        conditions.append(col(PriceOffering.compliance_tags).contains(f"|{program}|", autoescape=True))
    if filters.min_gpu_memory_gb:
        conditions.append(col(PriceOffering.gpu_memory_gb) >= filters.min_gpu_memory_gb)
    if filters.accelerator_kinds:
        conditions.append(col(PriceOffering.accelerator_kind).in_(filters.accelerator_kinds))
    return conditions


def count_offerings(session: Session, row: PriceSnapshot, filters: OfferingFilters) -> int:
    return session.exec(select(func.count()).select_from(PriceOffering).where(*_filtered(row.id, filters))).one()


def list_offerings(
    session: Session,
    row: PriceSnapshot,
    filters: OfferingFilters,
    *,
    sort: str = "on_demand",
    limit: int = 50,
    offset: int = 0,
    after: tuple[float | None, int] | None = None,
) -> list[PriceOffering]:
    """Offerings sorted by ``sort`` $/GPU-hour ascending (unpriced last, then by id).

    Page either with ``offset`` or with ``after`` = ``(sort value, id)`` of the last row seen
    (keyset pagination, stable while browsing).
    """
    sort_col = SORTS[sort]
    null_rank = case((sort_col.is_(None), 1), else_=0)
    query = select(PriceOffering).where(*_filtered(row.id, filters))
    if after is not None:
        value, last_id = after
        if value is None:
            query = query.where(sort_col.is_(None), PriceOffering.id > last_id)
        else:
            query = query.where(or_(sort_col.is_(None), sort_col > value,
                                    and_(sort_col == value, PriceOffering.id > last_id)))
    query = query.order_by(null_rank, sort_col, col(PriceOffering.id)).limit(limit)
    if offset:
        query = query.offset(offset)
    return list(session.exec(query).all())


@dataclass
class OfferingView:
    """One catalog row ready to display or serialise."""

    id: int
    key: str
    provider: str
    region: str
    instance_type: str
    accelerator_kind: str
    price_scope: str
    gpu_model: str
    gpu_count: int
    gpu_fraction: float
    effective_gpus: float
    gpu_memory_gb: float | None
    vcpus: float | None
    ram_gb: float | None
    interconnect: str | None
    jurisdiction: str | None
    country: str | None
    compliance_programs: list[str]
    on_demand_hourly: float | None
    spot_hourly: float | None
    best_reserved_hourly: float | None
    best_reserved_terms: str | None
    on_demand_per_gpu_hour: float | None
    spot_per_gpu_hour: float | None
    reserved_per_gpu_hour: float | None
    commitments: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    notes: list[str]

    def sort_value(self, sort: str) -> float | None:
        return {"on_demand": self.on_demand_per_gpu_hour, "spot": self.spot_per_gpu_hour,
                "reserved": self.reserved_per_gpu_hour}[sort]


def _terms(c: CommitmentPrice) -> str:
    term = f"{c.term_months // 12}y" if c.term_months and c.term_months % 12 == 0 else (
        f"{c.term_months}m" if c.term_months else "")
    return " ".join(p for p in (c.kind.replace("_", " "), term, c.payment_option.replace("_", " ")) if p)


def offering_views(row: PriceSnapshot, offerings: Iterable[PriceOffering]) -> list[OfferingView]:
    sources = {s["id"]: s for s in (row.data or {}).get("sources", [])}
    views = []
    for r in offerings:
        o = Offering.model_validate(r.data)
        best = _best_reserved(o)
        views.append(OfferingView(
            id=r.id or 0, key=o.key, provider=o.provider, region=o.region, instance_type=o.instance_type,
            accelerator_kind=o.accelerator_kind, price_scope=o.price_scope, gpu_model=o.gpu_model, gpu_count=o.gpu_count,
            gpu_fraction=o.gpu_fraction, effective_gpus=o.effective_gpus, gpu_memory_gb=o.gpu_memory_gb,
            vcpus=o.vcpus, ram_gb=o.ram_gb, interconnect=o.interconnect, jurisdiction=r.jurisdiction,
            country=r.country, compliance_programs=[t for t in r.compliance_tags.split("|") if t],
            on_demand_hourly=o.on_demand_hourly, spot_hourly=o.spot_hourly,
            best_reserved_hourly=best.effective_hourly_usd if best else None,
            best_reserved_terms=_terms(best) if best else None,
            on_demand_per_gpu_hour=r.od_gpu_hourly, spot_per_gpu_hour=r.spot_gpu_hourly,
            reserved_per_gpu_hour=r.reserved_gpu_hourly,
            commitments=[c.model_dump(mode="json") for c in o.commitments],
            sources=[{"id": s, "name": sources.get(s, {}).get("name", s), "url": sources.get(s, {}).get("url"),
                      "date": sources.get(s, {}).get("date")} for s in o.sources],
            notes=list(o.notes),
        ))
    return views


# --------------------------------------------------------------------------- custom prices


def _discount_from_row(r: CustomDiscountRow) -> CustomDiscount:
    return CustomDiscount(provider=r.provider, percent=r.percent, instance_family=r.instance_family or None,
                          purchase_option=r.purchase_option or None, note=r.note or None)


def _require_workspace(session: Session, workspace_id: int) -> Workspace:
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        raise LookupError(f"no workspace {workspace_id}")
    return ws


def add_custom_discount(session: Session, workspace_id: int, discount: CustomDiscount) -> CustomDiscountRow:
    """Add a discount; one with the same scope (provider, family, option) is replaced."""
    _require_workspace(session, workspace_id)
    family, option = discount.instance_family or "", discount.purchase_option or ""
    row = session.exec(select(CustomDiscountRow).where(
        CustomDiscountRow.workspace_id == workspace_id, CustomDiscountRow.provider == discount.provider,
        CustomDiscountRow.instance_family == family, CustomDiscountRow.purchase_option == option,
    )).first() or CustomDiscountRow(workspace_id=workspace_id, provider=discount.provider,
                                    instance_family=family, purchase_option=option, percent=discount.percent)
    row.percent = discount.percent
    row.note = discount.note or ""
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def list_custom_discounts(session: Session, workspace_id: int) -> list[CustomDiscountRow]:
    return list(session.exec(select(CustomDiscountRow).where(CustomDiscountRow.workspace_id == workspace_id)
                             .order_by(CustomDiscountRow.provider, CustomDiscountRow.instance_family,
                                       CustomDiscountRow.purchase_option)).all())


def delete_custom_discount(session: Session, workspace_id: int, discount_id: int) -> bool:
    row = session.get(CustomDiscountRow, discount_id)
    if row is None or row.workspace_id != workspace_id:
        return False
    session.delete(row)
    session.commit()
    return True


def add_custom_offering(session: Session, workspace_id: int, offering: CustomOffering) -> CustomOfferingRow:
    """Add a private price; one for the same provider/region/instance type is replaced."""
    _require_workspace(session, workspace_id)
    row = session.exec(select(CustomOfferingRow).where(
        CustomOfferingRow.workspace_id == workspace_id, CustomOfferingRow.provider == offering.provider,
        CustomOfferingRow.region == offering.region, CustomOfferingRow.instance_type == offering.instance_type,
    )).first() or CustomOfferingRow(workspace_id=workspace_id, provider=offering.provider,
                                    region=offering.region, instance_type=offering.instance_type)
    row.data = offering.model_dump(mode="json")
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def list_custom_offerings(session: Session, workspace_id: int) -> list[CustomOfferingRow]:
    return list(session.exec(select(CustomOfferingRow).where(CustomOfferingRow.workspace_id == workspace_id)
                             .order_by(CustomOfferingRow.provider, CustomOfferingRow.region,
                                       CustomOfferingRow.instance_type)).all())


def delete_custom_offering(session: Session, workspace_id: int, offering_id: int) -> bool:
    row = session.get(CustomOfferingRow, offering_id)
    if row is None or row.workspace_id != workspace_id:
        return False
    session.delete(row)
    session.commit()
    return True


def workspace_custom_prices(session: Session, workspace_id: int) -> tuple[list[CustomDiscount], list[CustomOffering]]:
    discounts = [_discount_from_row(r) for r in list_custom_discounts(session, workspace_id)]
    offerings = [CustomOffering.model_validate(r.data) for r in list_custom_offerings(session, workspace_id)]
    return discounts, offerings


def snapshot_for_workspace(session: Session, workspace_id: int, snapshot_id: str | None = None) -> Snapshot:
    """The snapshot (default: current) with the workspace's custom prices applied."""
    ws = _require_workspace(session, workspace_id)
    discounts, offerings = workspace_custom_prices(session, workspace_id)
    return apply_custom_prices(get_snapshot(session, snapshot_id), discounts, offerings, workspace=ws.slug)
