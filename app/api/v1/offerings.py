"""``/api/v1/offerings`` and ``/api/v1/snapshots``: the price catalog over JSON.

Like every ``/api/v1`` route they need a caller: an API key of any scope, or a signed-in
browser. Errors are RFC 9457 ``application/problem+json``; unknown filter values are 422
with the offending field in ``errors``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from app.api.v1.deps import current_principal, problems
from app.catalog.schema import AcceleratorKind, CommitmentPrice
from app.problems import problem_response
from app.services import catalog as svc

router = APIRouter(tags=["catalog"], dependencies=[Depends(current_principal)])


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

SortParam = Literal["on_demand", "spot", "reserved"]


# --------------------------------------------------------------------------- response models


class SourceRef(BaseModel):
    id: str = Field(examples=["skypilot-aws-v9"])
    name: str = Field(examples=["SkyPilot catalog v9, aws/vms.csv"])
    url: str | None = Field(default=None, examples=["https://github.com/skypilot-org/skypilot-catalog"])
    date: str | None = Field(default=None, description="As-of date of the source.", examples=["2025-11"])


class PerGpuHour(BaseModel):
    """Effective USD per GPU-hour (instance price / effective GPUs); null = not offered."""

    on_demand: float | None = Field(default=None, examples=[6.88])
    spot: float | None = Field(default=None, examples=[3.76])
    reserved: float | None = Field(
        default=None, description="Best reserved / savings plan / committed use.", examples=[4.75],
    )


class OfferingOut(BaseModel):
    key: str = Field(examples=["aws/us-east-1/p5.48xlarge"])
    provider: str = Field(examples=["aws"])
    region: str = Field(examples=["us-east-1"])
    instance_type: str = Field(examples=["p5.48xlarge"])
    accelerator_kind: str = Field(examples=["gpu"])
    price_scope: str = Field(
        description="'instance', or 'accelerator_only' when the price excludes the host VM.",
        examples=["instance"],
    )
    gpu_model: str = Field(examples=["H100"])
    gpu_count: int = Field(examples=[8])
    gpu_fraction: float = Field(examples=[1.0])
    effective_gpus: float = Field(examples=[8.0])
    gpu_memory_gb: float | None = Field(default=None, examples=[80])
    vcpus: float | None = Field(default=None, examples=[192])
    ram_gb: float | None = Field(default=None, examples=[2048])
    interconnect: str | None = Field(default=None, examples=["nvlink+efa-3200"])
    jurisdiction: str | None = Field(default=None, examples=["US"])
    country: str | None = Field(default=None, examples=["US"])
    compliance_programs: list[str] = Field(default_factory=list, examples=[["HIPAA"]])
    on_demand_hourly: float | None = Field(default=None, description="USD per instance-hour.", examples=[55.04])
    spot_hourly: float | None = Field(default=None, examples=[30.1])
    best_reserved_hourly: float | None = Field(default=None, examples=[38.0])
    best_reserved_terms: str | None = Field(default=None, examples=["reserved 1y no upfront"])
    per_gpu_hour: PerGpuHour
    commitments: list[CommitmentPrice] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def from_view(cls, v: svc.OfferingView) -> OfferingOut:
        data = {k: getattr(v, k) for k in cls.model_fields if k not in ("per_gpu_hour",) and hasattr(v, k)}
        return cls(**data, per_gpu_hour=PerGpuHour(
            on_demand=v.on_demand_per_gpu_hour, spot=v.spot_per_gpu_hour, reserved=v.reserved_per_gpu_hour))


class OfferingPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "snapshot_id": "2026-11-24-e7eb489d8bef", "sort": "on_demand", "total": 212,
        "items": [], "next_cursor": "eyJzIjoiMjAyNi0xMS0yNC1lN2ViNDg5ZDhiZWYiLCJpIjo0Mn0",
    }]})

    snapshot_id: str
    sort: SortParam
    total: int = Field(description="Offerings matching the filters.")
    items: list[OfferingOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class SnapshotOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "snapshot_id": "2026-11-24-e7eb489d8bef", "created": "2026-11-24", "label": "Bundled snapshot",
        "origin": "bundled", "is_current": True, "offering_count": 2128,
        "imported_at": "2026-11-24T11:40:00Z", "base_snapshot_id": None,
    }]})

    snapshot_id: str
    created: str = Field(description="The snapshot's own date.")
    label: str
    origin: str = Field(description="bundled, import-json, import-csv, refresh-aws, …")
    is_current: bool
    offering_count: int
    imported_at: datetime
    base_snapshot_id: str | None = None


class SourceOut(BaseModel):
    id: str
    name: str
    url: str
    date: str
    retrieved: str | None = None
    date_note: str | None = None
    note: str | None = None


class SnapshotDetail(SnapshotOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "snapshot_id": "2026-11-24-e7eb489d8bef", "created": "2026-11-24", "label": "Bundled snapshot",
        "origin": "bundled", "is_current": True, "offering_count": 2128,
        "imported_at": "2026-11-24T11:40:00Z", "base_snapshot_id": None,
        "description": "Bundled archplan price catalog.",
        "offerings_by_provider": {"aws": 738, "azure": 172, "gcp": 416, "lambda": 374},
        "sources": [{"id": "skypilot-aws-v9", "name": "SkyPilot catalog v9", "date": "2025-11",
                     "url": "https://github.com/skypilot-org/skypilot-catalog", "retrieved": "2026-11-24"}],
        "gaps": [],
    }]})

    description: str | None = None
    offerings_by_provider: dict[str, int] = Field(description="Provider → priced GPU offerings.")
    sources: list[SourceOut]
    gaps: list[str] = Field(default_factory=list, description="Known missing data.")


# --------------------------------------------------------------------------- helpers


class _QueryProblem(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors


def _snapshot_row(session: Session, snapshot_id: str | None):
    try:
        return svc.get_snapshot_row(session, snapshot_id)
    except svc.SnapshotNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


def _filters_digest(filters: svc.OfferingFilters, sort: str) -> str:
    raw = json.dumps([sorted(filters.gpu_models), sorted(filters.providers), sorted(filters.jurisdictions),
                      sorted(filters.compliance), filters.min_gpu_memory_gb, sorted(filters.accelerator_kinds),
                      sort])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def encode_cursor(snapshot_id: str, digest: str, value: float | None, last_id: int) -> str:
    raw = json.dumps({"s": snapshot_id, "q": digest, "v": value, "i": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(data, dict) and isinstance(data.get("s"), str) and isinstance(data.get("q"), str)
                and isinstance(data.get("i"), int) and (data.get("v") is None
                                                        or isinstance(data.get("v"), (int, float)))):
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _QueryProblem([("cursor", "not a cursor returned by this API")]) from None


def _problem_422(request: Request, errors: list[tuple[str, str]]):
    return problem_response(
        422, "The request is not valid; see `errors` for each field.", title="Validation failed",
        instance=request.url.path,
        errors=[{"field": f"query.{name}", "message": msg, "type": "value_error"} for name, msg in errors],
    )


# --------------------------------------------------------------------------- endpoints


@router.get(
    "/offerings",
    response_model=OfferingPage,
    summary="Priced offerings of a snapshot, filtered and sorted by $/GPU-hour",
    responses=problems(404, _404="No such snapshot.", _422="Unknown filter value or bad cursor: `errors` names "
                                                            "each query parameter."),
)
def list_offerings(
    request: Request,
    session: SessionDep,
    snapshot: Annotated[str | None, Query(description="Snapshot id (default: the current one).")] = None,
    gpu_model: Annotated[list[str], Query(description="GPU model(s), e.g. H100 (repeat for several).")] = [],  # noqa: B006
    provider: Annotated[list[str], Query(description="Provider(s): aws, azure, gcp, lambda, …")] = [],  # noqa: B006
    jurisdiction: Annotated[list[str], Query(description="Jurisdiction(s) of the region: US, EU, …")] = [],  # noqa: B006
    compliance: Annotated[list[str], Query(description="Compliance program(s) the region must have (all).")] = [],  # noqa: B006
    min_gpu_memory_gb: Annotated[float | None, Query(ge=0, description="Minimum memory per GPU (GB).")] = None,
    accelerator_kind: Annotated[list[AcceleratorKind], Query(
        description="gpu, tpu, neuron, hpu, fpga (default: all).")] = [],  # noqa: B006
    sort: Annotated[SortParam, Query(description="Cheapest first by on-demand, spot or best reserved $/GPU-hour; "
                                                 "offerings without that price come last.")] = "on_demand",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
):
    filters = svc.OfferingFilters(
        gpu_models=tuple(gpu_model), providers=tuple(provider), jurisdictions=tuple(jurisdiction),
        compliance=tuple(compliance), min_gpu_memory_gb=min_gpu_memory_gb,
        accelerator_kinds=tuple(accelerator_kind),
    )
    digest = _filters_digest(filters, sort)
    try:
        after = None
        if cursor:
            data = decode_cursor(cursor)
            if snapshot is not None and data["s"] != snapshot:
                raise _QueryProblem([("cursor", "the cursor belongs to another snapshot")])
            if data["q"] != digest:
                raise _QueryProblem([("cursor", "the cursor was made for other filters or another sort")])
            snapshot, after = data["s"], (data["v"], data["i"])
        row = _snapshot_row(session, snapshot)
        problems = svc.invalid_filters(svc.filter_options(session, row), filters)
        if problems:
            raise _QueryProblem(problems)
    except _QueryProblem as exc:
        return _problem_422(request, exc.errors)
    rows = svc.list_offerings(session, row, filters, sort=sort, limit=limit + 1, after=after)
    more = len(rows) > limit
    views = svc.offering_views(row, rows[:limit])
    next_cursor = None
    if more and views:
        last = views[-1]
        next_cursor = encode_cursor(row.snapshot_id, digest, last.sort_value(sort), last.id)
    return OfferingPage(
        snapshot_id=row.snapshot_id, sort=sort, total=svc.count_offerings(session, row, filters),
        items=[OfferingOut.from_view(v) for v in views], next_cursor=next_cursor,
    )


def _snapshot_out(row) -> dict[str, Any]:
    imported = row.created_at
    if imported is not None and imported.tzinfo is None:  # SQLite drops the offset; stored as UTC
        imported = imported.replace(tzinfo=UTC)
    return {
        "snapshot_id": row.snapshot_id, "created": row.snapshot_date, "label": row.label, "origin": row.origin,
        "is_current": row.is_current, "offering_count": row.offering_count, "imported_at": imported,
        "base_snapshot_id": row.base_snapshot_id,
    }


@router.get("/snapshots", response_model=list[SnapshotOut], summary="Stored price snapshots, newest first",
            responses=problems())
def list_snapshots(session: SessionDep) -> list[SnapshotOut]:
    return [SnapshotOut(**_snapshot_out(r)) for r in svc.list_snapshots(session)]


@router.get(
    "/snapshots/{snapshot_id}",
    response_model=SnapshotDetail,
    summary="One snapshot: counts per provider and sources ('current' for the current one)",
    responses=problems(404, _404="No such snapshot."),
)
def get_snapshot(session: SessionDep, snapshot_id: str) -> SnapshotDetail:
    row = _snapshot_row(session, snapshot_id)
    s = svc.snapshot_summary(session, row)
    known = set(SourceOut.model_fields)
    return SnapshotDetail(
        **_snapshot_out(row), description=s.description, offerings_by_provider=s.offerings_by_provider,
        sources=[SourceOut(**{k: v for k, v in src.items() if k in known}) for src in s.sources], gaps=s.gaps,
    )
