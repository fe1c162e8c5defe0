"""Parse and validate a price import file (pure: no DB, no web).

Two formats are accepted:

**A full snapshot** (``.json``): the document :func:`app.catalog.schema.dump_snapshot`
writes. An empty ``snapshot_id`` is computed; a given one must match the content.

**A CSV of offerings** (``.csv``, UTF-8, header row, comma-separated), applied on top of a
base snapshot (normally the current one) to form a new snapshot dated today. A row whose
``provider/region/instance_type`` exists in the base replaces that offering (its
commitment prices are kept unless the row gives ``reserved_*`` prices); other rows are
added. For a replaced offering, optional columns *absent from the file* keep the base
values, while an empty cell in a present column means "none" (e.g. no spot price).
Columns (names are case-insensitive; order is free):

====================  ========  ====================================================
column                required  meaning
====================  ========  ====================================================
provider              yes       ``aws``, ``azure``, ``gcp``, ``lambda``, … (lower case)
region                yes       provider region, e.g. ``us-east-1``
instance_type         yes       e.g. ``p5.48xlarge``
gpu_model             yes       accelerator name; aliases accepted (``A100`` → A100-40GB)
gpu_count             yes       accelerators per instance (integer ≥ 1)
on_demand_hourly      yes       USD per instance-hour (> 0)
source_name           yes       where the prices come from (e.g. "Vendor quote Q-123")
source_url            yes       address of the source
source_date           yes       as-of date: YYYY, YYYY-MM or YYYY-MM-DD
gpu_memory_gb         no        memory per accelerator, GB (> 0)
gpu_fraction          no        fraction of one GPU (0 < f ≤ 1, default 1)
vcpus                 no        vCPUs (> 0)
ram_gb                no        host memory, GB (> 0)
spot_hourly           no        USD per instance-hour (> 0)
reserved_1y_hourly    no        1-year no-upfront reserved, USD per instance-hour (> 0)
reserved_3y_hourly    no        3-year no-upfront reserved, USD per instance-hour (> 0)
interconnect          no        e.g. ``nvlink``, ``pcie``
country               new reg.  ISO-3166 alpha-2; required when the region is not in the base
jurisdiction          new reg.  ``US``, ``EU``, ``UK``, …; required when the region is new
compliance_programs   no        ``;``-separated programs for a new region (``HIPAA;GDPR``)
note                  no        free text kept on the offering
====================  ========  ====================================================

Rows are numbered like a spreadsheet: the header is row 1, the first offering row 2.
Every problem in the file is reported (row, column, message) in one
:class:`ImportValidationError`; nothing is returned unless the whole file is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from datetime import date
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from app.catalog.gpus import (
    CANONICAL_ACCELERATORS,
    UnknownAcceleratorError,
    normalize_accelerator_name,
)
from app.catalog.schema import (
    CommitmentPrice,
    Jurisdiction,
    Offering,
    Snapshot,
    compute_snapshot_id,
)

__all__ = [
    "CSV_COLUMNS",
    "CSV_REQUIRED",
    "ImportIssue",
    "ImportValidationError",
    "apply_offerings_csv",
    "parse_import",
    "parse_snapshot_json",
    "read_import_file",
]

CSV_REQUIRED: tuple[str, ...] = (
    "provider", "region", "instance_type", "gpu_model", "gpu_count", "on_demand_hourly",
    "source_name", "source_url", "source_date",
)
CSV_OPTIONAL: tuple[str, ...] = (
    "gpu_memory_gb", "gpu_fraction", "vcpus", "ram_gb", "spot_hourly", "reserved_1y_hourly",
    "reserved_3y_hourly", "interconnect", "country", "jurisdiction", "compliance_programs", "note",
)
CSV_COLUMNS: tuple[str, ...] = CSV_REQUIRED + CSV_OPTIONAL
MAX_BYTES = 20 * 1024 * 1024

_PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_JURISDICTIONS = set(get_args(Jurisdiction))
_KEPT_WHEN_ABSENT = ("gpu_memory_gb", "gpu_fraction", "vcpus", "ram_gb", "spot_hourly", "interconnect")


class ImportIssue(BaseModel):
    """One problem: ``row`` (1 = header; None = whole file), ``column`` and a message."""

    row: int | None = None
    column: str | None = None
    message: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where) or 'file'}: {self.message}"


class ImportValidationError(ValueError):
    """The file was refused; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ImportIssue]):
        self.issues = issues
        shown = "; ".join(str(i) for i in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"{len(issues)} problem(s) in the import file: {shown}{more}")


# --------------------------------------------------------------------------- entry points


def read_import_file(path: str | Path, *, base: Snapshot | None, today: date | None = None) -> Snapshot:
    """Read ``path`` (``.json`` snapshot or ``.csv`` offerings) and return the new snapshot."""
    path = Path(path)
    if not path.is_file():
        raise ImportValidationError([ImportIssue(message=f"no such file: {path}")])
    if path.stat().st_size > MAX_BYTES:
        raise ImportValidationError([ImportIssue(message=f"file is larger than {MAX_BYTES // 2**20} MB")])
    return parse_import(path.read_bytes(), filename=path.name, base=base, today=today)


def parse_import(
    content: bytes | str, *, filename: str, base: Snapshot | None, today: date | None = None
) -> Snapshot:
    """Parse an import file's content; the format comes from the extension, else the content."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportValidationError(
                [ImportIssue(message=f"not UTF-8 text (byte {exc.start})")]
            ) from None
    else:
        text = content.lstrip("\ufeff")
    suffix = Path(filename).suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{")):
        return parse_snapshot_json(text)
    if base is None:
        raise ImportValidationError([ImportIssue(
            message="a CSV of offerings is applied on top of the current snapshot, and there is "
            "none yet: import a full snapshot first (e.g. `archplan pricing import --bundled`)"
        )])
    return apply_offerings_csv(text, base, filename=filename, today=today)


# --------------------------------------------------------------------------- JSON


def parse_snapshot_json(text: str) -> Snapshot:
    """Validate a full snapshot document; every schema error becomes an issue."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportValidationError(
            [ImportIssue(row=exc.lineno, message=f"invalid JSON: {exc.msg} (column {exc.colno})")]
        ) from None
    if not isinstance(data, dict):
        raise ImportValidationError([ImportIssue(message="a snapshot must be a JSON object")])
    given_id = data.get("snapshot_id") or ""
    data = {**data, "snapshot_id": given_id or "pending"}
    try:
        snap = Snapshot.model_validate(data)
    except ValidationError as exc:
        raise ImportValidationError(_issues_from_pydantic(exc)) from None
    computed = compute_snapshot_id(snap.model_copy(update={"snapshot_id": ""}))
    if given_id and given_id != computed:
        raise ImportValidationError([ImportIssue(
            column="snapshot_id",
            message=f"snapshot_id {given_id!r} does not match the content (expected {computed!r}); "
            "leave it empty to have it computed",
        )])
    return snap.model_copy(update={"snapshot_id": computed})


def _issues_from_pydantic(exc: ValidationError) -> list[ImportIssue]:
    issues = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        row = None
        if len(loc) >= 2 and loc[0] == "offerings" and isinstance(loc[1], int):
            row = loc[1] + 1  # the n-th offering, 1-based
            loc = ["offerings", *loc[2:]]
        column = ".".join(str(p) for p in loc) or None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        issues.append(ImportIssue(row=row, column=column, message=msg))
    return issues


# --------------------------------------------------------------------------- CSV


def _number(raw: str, column: str, row: int, issues: list[ImportIssue], *, required: bool,
            integer: bool = False, upper: float | None = None) -> float | None:
    value = (raw or "").strip()
    if not value:
        if required:
            issues.append(ImportIssue(row=row, column=column, message="is required"))
        return None
    try:
        number = float(value.replace("$", "").replace(",", "")) if not integer else float(value)
    except ValueError:
        issues.append(ImportIssue(row=row, column=column, message=f"not a number: {value!r}"))
        return None
    if not math.isfinite(number):
        issues.append(ImportIssue(row=row, column=column, message=f"not a finite number: {value!r}"))
        return None
    if number <= 0:
        issues.append(ImportIssue(row=row, column=column, message=f"must be greater than 0, got {value}"))
        return None
    if integer and number != int(number):
        issues.append(ImportIssue(row=row, column=column, message=f"must be a whole number, got {value}"))
        return None
    if upper is not None and number > upper:
        issues.append(ImportIssue(row=row, column=column, message=f"must be at most {upper:g}, got {value}"))
        return None
    return int(number) if integer else number


def _source_id(name: str, url: str, when: str) -> str:
    digest = hashlib.sha256(f"{name}\n{url}\n{when}".encode()).hexdigest()
    return f"import-{digest[:10]}"


def apply_offerings_csv(text: str, base: Snapshot, *, filename: str = "offerings.csv",
                        today: date | None = None) -> Snapshot:
    """Apply a CSV of offerings to ``base`` (see the module doc) and return the new snapshot."""
    today = today or date.today()
    issues: list[ImportIssue] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportValidationError([ImportIssue(row=1, message="the file is empty")]) from None
    except csv.Error as exc:
        raise ImportValidationError([ImportIssue(row=1, message=f"not a CSV file: {exc}")]) from None
    columns = [h.strip().lower() for h in header]
    present = set(columns)
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            issues.append(ImportIssue(row=1, column=name, message="duplicate column"))
        elif name not in CSV_COLUMNS:
            issues.append(ImportIssue(
                row=1, column=name or "(empty)",
                message="unknown column; expected some of: " + ", ".join(CSV_COLUMNS),
            ))
        seen.add(name)
    for name in CSV_REQUIRED:
        if name not in seen:
            issues.append(ImportIssue(row=1, column=name, message="required column is missing"))

    gpu_names = {g.name for g in base.gpus}
    regions = {r.key: r for r in base.regions}
    base_offerings = {o.key: o for o in base.offerings}
    new_regions: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    row_no = 1
    try:
        for values in reader:
            row_no += 1
            if not any(v.strip() for v in values):
                continue  # blank line
            if len(values) != len(columns):
                issues.append(ImportIssue(
                    row=row_no, message=f"has {len(values)} fields, the header has {len(columns)}",
                ))
                continue
            cells = {c: v.strip() for c, v in zip(columns, values, strict=True) if c in CSV_COLUMNS}
            record = _parse_row(cells, row_no, issues, present, gpu_names, regions, new_regions, today)
            if record is None:
                continue
            key = f"{record['provider']}/{record['region']}/{record['instance_type']}"
            if key in records:
                issues.append(ImportIssue(
                    row=row_no, column="instance_type",
                    message=f"duplicate offering {key} (also on row {records[key]['_row']})",
                ))
                continue
            records[key] = record
    except csv.Error as exc:
        issues.append(ImportIssue(row=row_no, message=f"malformed CSV: {exc}"))
    if row_no == 1 and not issues:
        issues.append(ImportIssue(row=2, message="no offering rows after the header"))
    if issues:
        raise ImportValidationError(issues)

    # Build the offerings; the parsed values already satisfy the schema, but validate anyway.
    built: dict[str, Offering] = {}
    for key, rec in records.items():
        src = rec.pop("_source")
        sid = _source_id(*src)
        sources[sid] = {
            "id": sid, "name": src[0], "url": src[1], "date": src[2],
            "retrieved": today.isoformat(), "note": f"Imported from {filename}.",
        }
        prev = base_offerings.get(key)
        commitments = [
            CommitmentPrice(kind="reserved", term_months=months, payment_option="no_upfront",
                            offering_class="standard" if rec["provider"] == "aws" else None,
                            upfront_usd=0, hourly_usd=price, effective_hourly_usd=price,
                            source=sid, date=src[2]).model_dump(mode="json")
            for months, price in rec.pop("_reserved")
        ]
        if not commitments and prev is not None:
            commitments = [c.model_dump(mode="json") for c in prev.commitments]
        row = rec.pop("_row")
        note = rec.pop("_note")
        if prev is not None:
            # Optional columns the file does not have keep the replaced offering's values.
            for name in _KEPT_WHEN_ABSENT:
                if name not in present:
                    rec[name] = getattr(prev, name)
        notes = [f"Imported from {filename} row {row}."] + ([note] if note else [])
        try:
            built[key] = Offering.model_validate(
                {**rec, "commitments": commitments, "sources": [sid], "notes": notes}
            )
        except ValidationError as exc:
            for issue in _issues_from_pydantic(exc):
                issues.append(ImportIssue(row=row, column=issue.column, message=issue.message))
    if issues:
        raise ImportValidationError(issues)

    offerings = [built.pop(o.key, o) for o in base.offerings]
    offerings += sorted(built.values(), key=lambda o: (o.provider, o.region, o.instance_type))
    data = base.model_dump(mode="json")
    data["offerings"] = [o.model_dump(mode="json") for o in offerings]
    data["regions"] = data["regions"] + [new_regions[k] for k in sorted(new_regions)]
    known = {s["id"] for s in data["sources"]}
    data["sources"] = data["sources"] + [sources[k] for k in sorted(sources) if k not in known]
    data["created"] = today.isoformat()
    data["description"] = (
        f"{(base.description or 'Snapshot').rstrip('.')}. With {len(records)} offering(s) "
        f"imported from {filename} on top of {base.snapshot_id}."
    )
    data["snapshot_id"] = ""
    try:
        snap = Snapshot.model_validate(data)
    except ValidationError as exc:
        raise ImportValidationError(_issues_from_pydantic(exc)) from None
    return snap.model_copy(update={"snapshot_id": compute_snapshot_id(snap)})


def _parse_row(
    cells: dict[str, str], row: int, issues: list[ImportIssue], present: set[str],
    gpu_names: set[str], regions: dict, new_regions: dict[str, dict[str, Any]], today: date,
) -> dict[str, Any] | None:
    """One CSV row as an offering record (plus ``_``-prefixed extras), or None if invalid."""
    before = len(issues)

    def text(column: str) -> str:
        value = cells.get(column, "")
        if column in CSV_REQUIRED and column in present and not value:
            issues.append(ImportIssue(row=row, column=column, message="is required"))
        return value

    provider = text("provider")
    if provider and not _PROVIDER_RE.match(provider):
        issues.append(ImportIssue(row=row, column="provider",
                                  message=f"must be a lower-case name like 'aws', got {provider!r}"))
    region, instance_type = text("region"), text("instance_type")
    gpu_raw = text("gpu_model")
    gpu_model = None
    if gpu_raw:
        try:
            gpu_model = normalize_accelerator_name(gpu_raw)
        except UnknownAcceleratorError:
            issues.append(ImportIssue(row=row, column="gpu_model", message=f"unknown GPU model {gpu_raw!r}"))
        else:
            if gpu_model not in gpu_names:
                issues.append(ImportIssue(
                    row=row, column="gpu_model",
                    message=f"GPU model {gpu_model!r} has no specifications in the base snapshot",
                ))
    req = "gpu_count" in present
    gpu_count = _number(cells.get("gpu_count", ""), "gpu_count", row, issues, required=req, integer=True)
    prices = {}
    for column in ("on_demand_hourly", "spot_hourly", "reserved_1y_hourly", "reserved_3y_hourly"):
        required = column == "on_demand_hourly" and column in present
        prices[column] = _number(cells.get(column, ""), column, row, issues, required=required)
    specs = {c: _number(cells.get(c, ""), c, row, issues, required=False)
             for c in ("gpu_memory_gb", "vcpus", "ram_gb")}
    fraction = _number(cells.get("gpu_fraction", ""), "gpu_fraction", row, issues, required=False, upper=1)
    src_name, src_url, src_date = text("source_name"), text("source_url"), text("source_date")
    if src_date and not _DATE_RE.match(src_date):
        issues.append(ImportIssue(row=row, column="source_date",
                                  message=f"must be YYYY, YYYY-MM or YYYY-MM-DD, got {src_date!r}"))
    elif src_date and src_date > today.isoformat()[: len(src_date)]:
        issues.append(ImportIssue(row=row, column="source_date", message=f"is in the future: {src_date}"))

    country, jurisdiction = cells.get("country", "").upper(), cells.get("jurisdiction", "").upper()
    programs = [p.strip() for p in cells.get("compliance_programs", "").split(";") if p.strip()]
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        issues.append(ImportIssue(row=row, column="country", message=f"must be ISO-3166 alpha-2, got {country!r}"))
    if jurisdiction and jurisdiction not in _JURISDICTIONS:
        issues.append(ImportIssue(row=row, column="jurisdiction", message=f"unknown jurisdiction {jurisdiction!r}"))
    region_key = f"{provider}/{region}"
    if provider and region:
        existing = regions.get(region_key)
        if existing is not None:
            if jurisdiction and jurisdiction != existing.jurisdiction:
                issues.append(ImportIssue(
                    row=row, column="jurisdiction",
                    message=f"region {region_key} is {existing.jurisdiction} in the base snapshot",
                ))
        elif region_key not in new_regions:
            if not country or not jurisdiction:
                missing = [c for c, v in (("country", country), ("jurisdiction", jurisdiction)) if not v]
                for column in missing:
                    issues.append(ImportIssue(
                        row=row, column=column,
                        message=f"region {region_key} is not in the base snapshot: give its {column}",
                    ))
            else:
                new_regions[region_key] = {
                    "provider": provider, "region": region, "location": None, "country": country,
                    "jurisdiction": jurisdiction, "compliance_programs": programs,
                    "sources": [_source_id(src_name, src_url, src_date)],
                    "note": "Region added by a CSV import.",
                }
    if len(issues) > before or not present.issuperset(CSV_REQUIRED):
        return None
    reserved = [(m, prices[c]) for m, c in ((12, "reserved_1y_hourly"), (36, "reserved_3y_hourly"))
                if prices[c] is not None]
    return {
        "provider": provider, "region": region, "instance_type": instance_type,
        "accelerator_kind": CANONICAL_ACCELERATORS[gpu_model], "gpu_model": gpu_model,
        "gpu_count": gpu_count, "gpu_fraction": fraction or 1.0, **specs,
        "interconnect": cells.get("interconnect") or None,
        "on_demand_hourly": prices["on_demand_hourly"], "spot_hourly": prices["spot_hourly"],
        "_reserved": reserved, "_source": (src_name, src_url, src_date), "_row": row,
        "_note": cells.get("note") or None,
    }
