"""Stored plans as files: the purchase schedule (rows, CSV) and the deployable bundles (zip).

The pages and the REST API both serve these, so they share one implementation: the same
plan gives the same CSV bytes and the same zip bytes (and so the same ETag) on either face.
No FastAPI here; :class:`ExportRefused` says in a sentence why a plan cannot be exported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from app.bundles.context import bundle_context
from app.bundles.package import bundle_names, render_all, render_bundle, to_zip
from app.models import Plan as PlanRow
from app.models import PriceSnapshot
from app.planner.plan import Plan
from app.requirements.spec import WorkloadSpec

__all__ = [
    "ALL_BUNDLES",
    "BUNDLE_LABELS",
    "EXPORTABLE_STATUSES",
    "SCHEDULE_CSV_COLUMNS",
    "BundleFile",
    "ExportRefused",
    "LruCache",
    "PlanUnreadable",
    "RepresentationCache",
    "available_bundles",
    "csv_safe",
    "export_bundle",
    "export_refusal",
    "plan_model",
    "row_spec",
    "schedule_csv",
    "schedule_filename",
    "schedule_rows",
    "snapshot_date",
    "strong_etag",
]

ALL_BUNDLES = "all"
EXPORTABLE_STATUSES = ("optimal", "feasible")
BUNDLE_LABELS = {
    "airflow": "Airflow DAG", "helm": "Helm chart", "private-servers": "Own servers (bill of materials)",
    "purchase-schedule": "Purchase schedule (CSV, JSON)", "terraform": "Terraform (AWS)",
    ALL_BUNDLES: "All bundles",
}
SCHEDULE_CSV_COLUMNS = (
    "purchase_month", "in_service_month", "kind", "provider", "region", "item", "gpu_model", "gpus_per_unit",
    "quantity", "term_months", "payment_option", "lead_time_months", "upfront_usd_per_unit",
    "monthly_usd_per_unit", "total_usd", "option",
)


class PlanUnreadable(ValueError):
    """The stored plan was written in a format this version cannot read."""


class ExportRefused(ValueError):
    """The plan cannot be exported; the message says why and what to do."""


def strong_etag(data: bytes) -> str:
    """A strong entity tag of a representation's bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


class LruCache:
    """Values that never change for their key, kept per process; least recently used first
    out once the summed ``cost`` of the values exceeds ``capacity`` (a value costing more
    than ``capacity`` is returned, not kept).

    Only what is the same for every reader may go in: access is still checked on every
    request, before the cache is asked.
    """

    def __init__(self, capacity: int, cost: Callable[[Any], int] = lambda _value: 1) -> None:
        self.capacity = capacity
        self.cost = cost
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value for ``key``; ``make()`` builds it when it is not kept."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        value = make()  # outside the lock: two first readers may both build it, the same value
        cost = self.cost(value)
        if cost <= self.capacity:
            with self._lock:
                if key not in self._items:
                    self._items[key] = (value, cost)
                    self._used += cost
                while self._used > self.capacity:
                    _old, (_value, old_cost) = self._items.popitem(last=False)
                    self._used -= old_cost
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0


class RepresentationCache(LruCache):
    """The bytes and entity tag of representations that never change (a stored plan's JSON),
    at most ``max_bytes`` of them."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        super().__init__(max_bytes, cost=lambda entry: len(entry[0]))

    def get_or_make(self, key: Hashable, make: Callable[[], bytes]) -> tuple[bytes, str]:
        """``(data, etag)`` for ``key``; ``make()`` builds the bytes when they are not kept."""

        def entry() -> tuple[bytes, str]:
            data = make()
            return data, strong_etag(data)

        return super().get_or_make(key, entry)


def plan_model(row: PlanRow) -> Plan:
    """The stored plan as a :class:`Plan`; :class:`PlanUnreadable` if it no longer validates."""
    try:
        return Plan.model_validate(row.result)
    except ValidationError:
        raise PlanUnreadable("This plan was stored in a format this version of archplan cannot read; "
                             "solve the design again to get a fresh one.") from None


def row_spec(row: PlanRow) -> WorkloadSpec | None:
    """The spec stored with a plan (what was solved); None if it no longer validates."""
    try:
        return WorkloadSpec.model_validate(row.spec)
    except ValidationError:
        return None


def snapshot_date(session: Session, snapshot_id: str) -> str | None:
    """The own date of a stored price snapshot (None when it is not in the database)."""
    value = session.exec(select(PriceSnapshot.snapshot_date).where(PriceSnapshot.snapshot_id == snapshot_id)).first()
    return value or None


# --------------------------------------------------------------------------- schedule


def csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def schedule_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The purchases of a stored plan (``Plan`` JSON) as rows with :data:`SCHEDULE_CSV_COLUMNS`."""
    rows = []
    for s in result.get("schedule") or []:
        rows.append({
            "purchase_month": s.get("purchase_month"), "in_service_month": s.get("in_service_month"),
            "kind": s.get("kind"), "provider": s.get("provider"), "region": s.get("region"),
            "item": s.get("item"), "gpu_model": s.get("gpu_model"), "gpus_per_unit": s.get("gpus_per_unit"),
            "quantity": s.get("quantity"), "term_months": s.get("term_months"),
            "payment_option": s.get("payment_option"), "lead_time_months": s.get("lead_time_months"),
            "upfront_usd_per_unit": s.get("upfront_usd"), "monthly_usd_per_unit": s.get("monthly_usd"),
            "total_usd": s.get("total_usd"), "option": s.get("option"),
        })
    return rows


def schedule_csv(result: dict[str, Any]) -> str:
    """The purchase schedule as CSV (RFC 4180 line ends; formula-like text neutralised)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(SCHEDULE_CSV_COLUMNS)
    for row in schedule_rows(result):
        writer.writerow([csv_safe("" if row[c] is None else row[c]) for c in SCHEDULE_CSV_COLUMNS])
    return buf.getvalue()


def schedule_filename(design_id: int, plan_id: int) -> str:
    return f"design-{design_id}-plan-{plan_id}-schedule.csv"


# --------------------------------------------------------------------------- bundles


def available_bundles() -> list[str]:
    """Names a bundle can be asked for: each bundle, then ``all``."""
    return [*bundle_names(), ALL_BUNDLES]


@dataclass(frozen=True)
class BundleFile:
    name: str
    filename: str
    data: bytes
    etag: str


def export_refusal(row: PlanRow) -> str | None:
    """Why the plan cannot be exported, or None when it can."""
    if row.status not in EXPORTABLE_STATUSES:
        return (f"This plan is {row.status}: no capacity was chosen, so there is nothing to deploy. "
                "Relax the requirements and solve again.")
    return None


def export_bundle(row: PlanRow, name: str) -> BundleFile:
    """One bundle (or ``all``) of a feasible plan as a zip, byte-identical for the same plan.

    :class:`KeyError` for an unknown bundle name, :class:`ExportRefused` when the plan cannot
    be exported (infeasible, or stored in a format this version cannot read).
    """
    if name not in available_bundles():
        raise KeyError(name)
    reason = export_refusal(row)
    if reason:
        raise ExportRefused(reason)
    spec = row_spec(row)
    try:
        plan = plan_model(row)
    except PlanUnreadable:
        plan = None
    if spec is None or plan is None:
        raise ExportRefused("This plan was stored in a format this version of archplan cannot export. "
                            "Solve the design again to get a fresh one.")
    ctx = bundle_context(spec, plan)
    files = render_all(ctx) if name == ALL_BUNDLES else render_bundle(ctx, name)
    root = f"{ctx.slug}-{ctx.plan_id}"
    data = to_zip(files, root=root)
    filename = f"{root}{'' if name == ALL_BUNDLES else '-' + name}.zip"
    return BundleFile(name=name, filename=filename, data=data, etag=strong_etag(data))
