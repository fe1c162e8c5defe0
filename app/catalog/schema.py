"""Snapshot format of the price catalog (pydantic v2).

A *snapshot* is one self-contained, versioned JSON document holding everything the
planner needs to price capacity:

* ``sources``         - every public page / data file a figure was taken from, with its date;
* ``gpus``            - accelerator models with peak *dense* datasheet figures;
* ``regions``         - provider regions with country, jurisdiction and compliance programs;
* ``offerings``       - priced cloud instance types (on-demand, spot, commitments);
* ``private_servers`` - on-premises server SKUs (capex, power, life, ...);
* ``sites``           - places to run private servers (PUE, electricity, colocation, staff);
* ``corrections``     - every change the build applied to the raw source rows.

Rules that hold for every snapshot (enforced by the validators below):

* every price is finite and > 0 where given (``None`` means "not known / not priced",
  never zero);
* every ``source`` / ``sources`` entry names a :class:`Source` in ``Snapshot.sources``;
* every offering's ``gpu_model`` names a :class:`GpuModel` in ``Snapshot.gpus``
  (canonical names only, see ``app.catalog.gpus``);
* offering keys (``provider/region/instance_type``) are unique.

Units: money is USD; hourly prices are USD per instance-hour; memory in GB is the
provider-reported size converted with 1 GB = 1024 MiB (i.e. GiB, as providers label it).

``Offering.price_scope == "accelerator_only"`` marks GCP GPUs that attach to a general VM
and are priced without that host; they are not "priced" for planning. Site money figures
are in ``SiteProfile.currency`` (no FX rate is bundled). ``None`` always means "not
sourced" - never a guessed value.

Non-GPU accelerators (TPU, AWS Inferentia/Trainium, Habana Gaudi, FPGAs) are kept as
offerings with ``accelerator_kind != "gpu"`` so that nothing in the source data is lost,
but :meth:`Snapshot.priced_gpu_offerings` (what the planner uses) returns GPUs only.

Serialisation is deterministic: :func:`dump_snapshot` writes sorted keys and the build
sorts every list, so rebuilding from the same inputs gives byte-identical files. The
``snapshot_id`` is ``"<created>-<sha12>"`` where ``sha12`` is the first 12 hex digits of
the SHA-256 of the canonical JSON of the snapshot with ``snapshot_id`` blanked.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.jurisdictions import Jurisdiction

__all__ = [
    "DEFAULT_SNAPSHOT_PATH",
    "AcceleratorKind",
    "CommitmentKind",
    "CommitmentPrice",
    "Correction",
    "Figure",
    "GpuModel",
    "Offering",
    "PaymentOption",
    "PrivateServerSku",
    "Region",
    "SiteProfile",
    "Snapshot",
    "Source",
    "compute_snapshot_id",
    "dump_snapshot",
    "load_snapshot",
    "snapshot_json",
]

#: The bundled snapshot (``pricing_data/snapshot.json`` at the repository root).
DEFAULT_SNAPSHOT_PATH = Path(__file__).resolve().parents[2] / "pricing_data" / "snapshot.json"

SCHEMA_VERSION = 1

# A date as precise as the source allows: "2026", "2026-01" or "2026-01-21".
_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")

AcceleratorKind = Literal["gpu", "tpu", "neuron", "hpu", "fpga"]
"""``gpu`` NVIDIA/AMD GPUs; ``tpu`` Google TPU; ``neuron`` AWS Inferentia/Trainium;
``hpu`` Habana Gaudi; ``fpga`` AWS F1/F2 FPGAs."""

CommitmentKind = Literal["reserved", "savings_plan", "committed_use", "capacity_block"]
PaymentOption = Literal["no_upfront", "partial_upfront", "all_upfront"]



def _check_date(value: str) -> str:
    if not _DATE_RE.match(value):
        raise ValueError(f"date must be YYYY, YYYY-MM or YYYY-MM-DD, got {value!r}")
    return value


def _check_price(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 (or None if unknown), got {value!r}")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- provenance


class Source(_Model):
    """A public page or data file that figures were taken from."""

    id: str = Field(description="Stable short id, referenced by figures/offerings.")
    name: str
    url: str = Field(description="Address actually read (page URL or repo@commit:path).")
    date: str = Field(
        description="As-of date of the data/publication, as precise as the source states "
        "(YYYY, YYYY-MM or YYYY-MM-DD)."
    )
    date_note: str | None = Field(default=None, description="How `date` was determined.")
    retrieved: str = Field(description="Date the copy used here was read.")
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"invalid source id {v!r}")
        return v

    @field_validator("date", "retrieved")
    @classmethod
    def _date(cls, v: str) -> str:
        return _check_date(v)


class Figure(_Model):
    """One sourced number (private-cloud inputs). Ranges carry ``low``/``high``;
    ``value`` is then the point value the planner uses (stated in ``note``)."""

    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    estimate: bool = Field(
        default=False,
        description="True if the figure is an analyst estimate or derived by us, "
        "not a published list price / measured value.",
    )
    source: str = Field(description="Source id.")
    date: str = Field(description="As-of date of the figure.")
    note: str | None = None

    @field_validator("date")
    @classmethod
    def _date(cls, v: str) -> str:
        return _check_date(v)

    @model_validator(mode="after")
    def _range(self) -> Figure:
        for name in ("value", "low", "high"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ValueError(f"Figure.{name} must be finite and >= 0, got {v!r}")
        if self.low is not None and self.low > self.value:
            raise ValueError("Figure.low must be <= value")
        if self.high is not None and self.high < self.value:
            raise ValueError("Figure.high must be >= value")
        return self

    @property
    def is_range(self) -> bool:
        return self.low is not None or self.high is not None


class Correction(_Model):
    """A change the build applied to raw source data (kept so every change is traceable)."""

    id: str = Field(description="Quirk id, e.g. 'azure-nd96isr-h100-gpu-count'.")
    provider: str
    keys: list[str] = Field(description="Affected offering keys or raw row ids.")
    field: str = Field(description="Field changed, or 'row' if rows were dropped.")
    action: Literal["corrected", "dropped_value", "dropped_row", "normalized", "flagged"]
    raw_value: str | None = None
    new_value: str | None = None
    reason: str
    source: str | None = Field(default=None, description="Source id supporting the change.")


# --------------------------------------------------------------------------- hardware


class GpuModel(_Model):
    """An accelerator model with peak *dense* (no structured sparsity) datasheet figures
    per device. ``None`` = not supported (e.g. FP8 before Hopper/Ada) or not sourced;
    ``spec_note`` says which."""

    name: str = Field(description="Canonical name, e.g. 'H100', 'A100-80GB'.")
    kind: AcceleratorKind = "gpu"
    vendor: str
    variant: str | None = Field(
        default=None, description="Form factor/variant the figures are for."
    )
    memory_gb: float | None = Field(default=None, description="Vendor nominal memory per device.")
    bf16_dense_tflops: float | None = None
    fp16_dense_tflops: float | None = Field(
        default=None, description="FP16 tensor dense; for pre-Ampere GPUs without BF16."
    )
    fp8_dense_tflops: float | None = None
    fp32_tflops: float | None = None
    memory_bandwidth_tbps: float | None = None
    interconnect: str | None = Field(default=None, description="e.g. 'nvlink4-900GBps', 'pcie4'.")
    tdp_w: float | None = None
    sources: list[str] = Field(default_factory=list)
    spec_note: str | None = None

    @model_validator(mode="after")
    def _positive(self) -> GpuModel:
        for name in (
            "memory_gb",
            "bf16_dense_tflops",
            "fp16_dense_tflops",
            "fp8_dense_tflops",
            "fp32_tflops",
            "memory_bandwidth_tbps",
            "tdp_w",
        ):
            _check_price(getattr(self, name), f"GpuModel.{name}")
        return self

    @property
    def training_dense_tflops(self) -> float | None:
        """Best 16-bit dense tensor throughput (BF16, else FP16) for 6·N·D conversions."""
        return self.bf16_dense_tflops or self.fp16_dense_tflops


class Region(_Model):
    """A provider region and the legal facts the planner filters on."""

    provider: str
    region: str
    location: str | None = Field(default=None, description="City / area as the provider names it.")
    country: str | None = Field(
        default=None, description="ISO-3166 alpha-2 code; None if no source states it."
    )
    jurisdiction: Jurisdiction | None = Field(
        default=None, description="None if not sourced (filter such regions out, do not guess)."
    )
    compliance_programs: list[str] = Field(
        default_factory=list,
        description="Programs a workload can rely on in this region, e.g. 'HIPAA', "
        "'FedRAMP-Moderate', 'FedRAMP-High', 'GDPR'. Only sourced entries.",
    )
    sources: list[str] = Field(default_factory=list)
    note: str | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.region}"

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Z]{2}", v):
            raise ValueError(f"country must be ISO-3166 alpha-2, got {v!r}")
        return v


# --------------------------------------------------------------------------- cloud prices


class CommitmentPrice(_Model):
    """A committed-capacity price for one offering.

    ``effective_hourly_usd`` = ``hourly_usd`` + ``upfront_usd`` / hours in term; it is the
    number to compare with on-demand. For ``capacity_block`` the term is chosen at booking
    (1-182 days on AWS), so ``term_months`` is None and the whole fee is paid upfront.
    """

    kind: CommitmentKind
    term_months: int | None = Field(default=None, ge=1)
    payment_option: PaymentOption
    offering_class: str | None = Field(
        default=None, description="'standard' / 'convertible' (AWS RI), plan type, ..."
    )
    upfront_usd: float | None = Field(default=None, description="Per instance, whole term.")
    hourly_usd: float | None = Field(default=None, description="Recurring per instance-hour.")
    effective_hourly_usd: float
    estimate: bool = Field(
        default=False, description="True if derived by us from a published discount rate."
    )
    source: str
    date: str
    note: str | None = None

    @field_validator("date")
    @classmethod
    def _date(cls, v: str) -> str:
        return _check_date(v)

    @model_validator(mode="after")
    def _prices(self) -> CommitmentPrice:
        _check_price(self.effective_hourly_usd, "effective_hourly_usd")
        _check_price(self.hourly_usd, "hourly_usd")
        if self.upfront_usd is not None and (
            not math.isfinite(self.upfront_usd) or self.upfront_usd < 0
        ):
            raise ValueError("upfront_usd must be finite and >= 0")
        if self.kind != "capacity_block" and self.term_months is None:
            raise ValueError(f"{self.kind} commitment needs term_months")
        return self


class Offering(_Model):
    """One instance type in one region of one provider.

    ``gpu_*`` fields describe the accelerator whatever its kind (GPU, TPU chip, Neuron
    device, ...). ``gpu_count`` is the number of physical devices the instance uses;
    fractional-GPU instances (AWS g6f/gr6f) have ``gpu_count`` 1 and ``gpu_fraction`` < 1,
    so ``effective_gpus`` = ``gpu_count * gpu_fraction``. ``gpu_memory_gb`` is per device
    as the provider reports it (for fractions: the slice's memory).
    ``on_demand_hourly`` None = not priced in the source (kept, but not 'priced').
    """

    provider: str
    region: str
    instance_type: str
    accelerator_kind: AcceleratorKind
    gpu_model: str = Field(description="Canonical accelerator name (see Snapshot.gpus).")
    gpu_count: int = Field(ge=1)
    gpu_fraction: float = Field(default=1.0, gt=0, le=1)
    gpu_memory_gb: float | None = None
    vcpus: float | None = None
    ram_gb: float | None = None
    interconnect: str | None = Field(
        default=None,
        description="Class string: 'pcie', 'nvlink', 'nvlink+efa-3200', 'nvlink+ib-3200', "
        "'ici' (TPU), ...; None if not known.",
    )
    on_demand_hourly: float | None = None
    spot_hourly: float | None = None
    price_scope: Literal["instance", "accelerator_only"] = Field(
        default="instance",
        description="'accelerator_only': the price covers the attached accelerators only "
        "(GCP N1-attachable GPUs); the host VM price is not in the snapshot.",
    )
    commitments: list[CommitmentPrice] = Field(default_factory=list)
    sources: list[str] = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Offering:
        _check_price(self.on_demand_hourly, "on_demand_hourly")
        _check_price(self.spot_hourly, "spot_hourly")
        for name in ("gpu_memory_gb", "vcpus", "ram_gb"):
            _check_price(getattr(self, name), name)
        # Imported lazily: gpus.py is plain data and must stay importable on its own.
        from app.catalog.gpus import CANONICAL_ACCELERATORS

        kind = CANONICAL_ACCELERATORS.get(self.gpu_model)
        if kind is None:
            raise ValueError(
                f"unknown GPU/accelerator model {self.gpu_model!r}; use a canonical name "
                "(app.catalog.gpus.normalize_accelerator_name)"
            )
        if kind != self.accelerator_kind:
            raise ValueError(
                f"{self.gpu_model!r} is a {kind!r}, not accelerator_kind {self.accelerator_kind!r}"
            )
        return self

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.region}/{self.instance_type}"

    @property
    def is_gpu(self) -> bool:
        return self.accelerator_kind == "gpu"

    @property
    def is_priced(self) -> bool:
        """True if the whole instance has an on-demand price."""
        return self.on_demand_hourly is not None and self.price_scope == "instance"

    @property
    def effective_gpus(self) -> float:
        return self.gpu_count * self.gpu_fraction

    def commitment(
        self,
        kind: CommitmentKind,
        term_months: int | None = None,
        payment_option: PaymentOption | None = None,
    ) -> CommitmentPrice | None:
        """First commitment matching the given filters, or None."""
        for c in self.commitments:
            if c.kind != kind:
                continue
            if term_months is not None and c.term_months != term_months:
                continue
            if payment_option is not None and c.payment_option != payment_option:
                continue
            return c
        return None


# --------------------------------------------------------------------------- private cloud


class PrivateServerSku(_Model):
    """A purchasable GPU server (one node)."""

    id: str
    name: str
    gpu_model: str
    gpu_count: int = Field(ge=1)
    purchase_price: Figure = Field(description="USD per server, incl. what `note` says.")
    power_typical_kw: Figure | None = None
    power_max_kw: Figure | None = None
    rack_units: int | None = Field(default=None, ge=1)
    lead_time_months: Figure | None = None
    useful_life_years: Figure | None = None
    residual_value_pct: Figure | None = Field(
        default=None, description="% of purchase price at end of useful life."
    )
    support_pct_per_year: Figure | None = Field(
        default=None, description="% of purchase price per year."
    )
    notes: list[str] = Field(default_factory=list)

    FIGURE_FIELDS: ClassVar[tuple[str, ...]] = (
        "purchase_price",
        "power_typical_kw",
        "power_max_kw",
        "lead_time_months",
        "useful_life_years",
        "residual_value_pct",
        "support_pct_per_year",
    )

    def figures(self) -> dict[str, Figure]:
        """Figures that are present (None = not sourced)."""
        return {k: v for k in self.FIGURE_FIELDS if (v := getattr(self, k)) is not None}

    def missing_figures(self) -> list[str]:
        return [k for k in self.FIGURE_FIELDS if getattr(self, k) is None]


class SiteProfile(_Model):
    """A place to run private servers (colocation or own facility).

    Money figures are in ``currency`` (ISO 4217); the snapshot bundles no FX rate, so a
    planner comparing sites must convert explicitly. ``None`` = not sourced.
    """

    id: str
    name: str
    country: str
    jurisdiction: Jurisdiction
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    pue: Figure
    electricity_per_kwh: Figure | None = Field(default=None, description="currency per kWh")
    colocation_per_kw_month: Figure | None = Field(
        default=None, description="currency per kW of IT capacity per month"
    )
    staff_per_fte_month: Figure | None = Field(
        default=None, description="currency per full-time technician per month (salary)"
    )
    notes: list[str] = Field(default_factory=list)

    FIGURE_FIELDS: ClassVar[tuple[str, ...]] = (
        "pue",
        "electricity_per_kwh",
        "colocation_per_kw_month",
        "staff_per_fte_month",
    )
    MONEY_FIELDS: ClassVar[tuple[str, ...]] = (
        "electricity_per_kwh",
        "colocation_per_kw_month",
        "staff_per_fte_month",
    )

    @model_validator(mode="after")
    def _currency_units(self) -> SiteProfile:
        for name in self.MONEY_FIELDS:
            fig = getattr(self, name)
            if fig is not None and not fig.unit.startswith(self.currency):
                raise ValueError(f"{self.id}.{name}: unit {fig.unit!r} is not in {self.currency}")
        return self

    def figures(self) -> dict[str, Figure]:
        """Figures that are present (None = not sourced)."""
        return {k: v for k in self.FIGURE_FIELDS if (v := getattr(self, k)) is not None}

    def missing_figures(self) -> list[str]:
        return [k for k in self.FIGURE_FIELDS if getattr(self, k) is None]


# --------------------------------------------------------------------------- snapshot


class Snapshot(_Model):
    """The whole catalog. Build with ``python -m app.catalog.build``; load with
    :func:`load_snapshot`."""

    schema_version: int = SCHEMA_VERSION
    snapshot_id: str = Field(description="'<created>-<sha12>' content hash, see module doc.")
    created: str = Field(description="Snapshot date (YYYY-MM-DD).")
    description: str | None = None
    sources: list[Source]
    gpus: list[GpuModel]
    regions: list[Region]
    offerings: list[Offering]
    private_servers: list[PrivateServerSku] = Field(default_factory=list)
    sites: list[SiteProfile] = Field(default_factory=list)
    corrections: list[Correction] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list, description="Known missing data.")

    @field_validator("created")
    @classmethod
    def _created(cls, v: str) -> str:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            raise ValueError("created must be YYYY-MM-DD")
        return v

    @model_validator(mode="after")
    def _references(self) -> Snapshot:
        src = {s.id for s in self.sources}
        if len(src) != len(self.sources):
            raise ValueError("duplicate source ids")
        gpu_names = {g.name for g in self.gpus}
        if len(gpu_names) != len(self.gpus):
            raise ValueError("duplicate GPU model names")

        def need(ids: list[str] | str | None, where: str) -> None:
            for i in [ids] if isinstance(ids, str) else ids or []:
                if i not in src:
                    raise ValueError(f"{where}: unknown source id {i!r}")

        for g in self.gpus:
            need(g.sources, f"gpu {g.name}")
        region_keys = set()
        for r in self.regions:
            need(r.sources, f"region {r.key}")
            region_keys.add(r.key)
        keys: set[str] = set()
        for o in self.offerings:
            if o.key in keys:
                raise ValueError(f"duplicate offering key {o.key}")
            keys.add(o.key)
            need(o.sources, o.key)
            for c in o.commitments:
                need(c.source, f"{o.key} commitment")
            if o.gpu_model not in gpu_names:
                raise ValueError(f"{o.key}: GPU model {o.gpu_model!r} not in snapshot.gpus")
            if f"{o.provider}/{o.region}" not in region_keys:
                raise ValueError(f"{o.key}: region not in snapshot.regions")
        for item in [*self.private_servers, *self.sites]:
            for name, fig in item.figures().items():
                need(fig.source, f"{item.id}.{name}")
        for s in self.private_servers:
            if s.gpu_model not in gpu_names:
                raise ValueError(f"server {s.id}: GPU model {s.gpu_model!r} not in snapshot.gpus")
        for c in self.corrections:
            need(c.source, f"correction {c.id}")
        return self

    # -- lookups -------------------------------------------------------------------

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s
        raise KeyError(source_id)

    def gpu(self, name: str) -> GpuModel:
        for g in self.gpus:
            if g.name == name:
                return g
        raise KeyError(name)

    def region(self, provider: str, region: str) -> Region:
        for r in self.regions:
            if r.provider == provider and r.region == region:
                return r
        raise KeyError(f"{provider}/{region}")

    def offering(self, key: str) -> Offering:
        for o in self.offerings:
            if o.key == key:
                return o
        raise KeyError(key)

    def priced_gpu_offerings(self) -> list[Offering]:
        """GPU offerings with an on-demand price (what the planner optimises over)."""
        return [o for o in self.offerings if o.is_gpu and o.is_priced]

    def counts_by_provider(self) -> dict[str, dict[str, int]]:
        """Per provider: ``offerings``, ``gpu_offerings``, ``priced_gpu_offerings``,
        ``accelerator_only_priced`` (GCP GPUs priced without their host VM), ``unpriced``
        (no on-demand price at all), ``with_spot``, ``with_commitments``."""
        out: dict[str, Counter[str]] = {}
        for o in self.offerings:
            c = out.setdefault(o.provider, Counter())
            c["offerings"] += 1
            c["gpu_offerings"] += o.is_gpu
            c["priced_gpu_offerings"] += o.is_gpu and o.is_priced
            c["accelerator_only_priced"] += (
                o.price_scope == "accelerator_only" and o.on_demand_hourly is not None
            )
            c["unpriced"] += o.on_demand_hourly is None
            c["with_spot"] += o.spot_hourly is not None
            c["with_commitments"] += bool(o.commitments)
        keys = (
            "offerings",
            "gpu_offerings",
            "priced_gpu_offerings",
            "accelerator_only_priced",
            "unpriced",
            "with_spot",
            "with_commitments",
        )
        return {p: {k: c[k] for k in keys} for p, c in sorted(out.items())}


# --------------------------------------------------------------------------- (de)serialise


def snapshot_json(snapshot: Snapshot | dict[str, Any]) -> str:
    """Canonical JSON text: sorted keys, 1-space indent, trailing newline."""
    data = snapshot.model_dump(mode="json") if isinstance(snapshot, Snapshot) else snapshot
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def compute_snapshot_id(snapshot: Snapshot) -> str:
    """``'<created>-<sha12>'`` over the canonical JSON with ``snapshot_id`` blanked."""
    data = snapshot.model_dump(mode="json")
    data["snapshot_id"] = ""
    digest = hashlib.sha256(snapshot_json(data).encode("utf-8")).hexdigest()
    return f"{snapshot.created}-{digest[:12]}"


def dump_snapshot(snapshot: Snapshot, path: str | Path) -> Path:
    """Write ``snapshot`` deterministically (caller sorts lists; the build does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(snapshot_json(snapshot), encoding="utf-8")
    return path


def load_snapshot(path: str | Path | None = None, *, verify_id: bool = True) -> Snapshot:
    """Load and validate a snapshot (default: the bundled ``pricing_data/snapshot.json``).

    With ``verify_id`` the content hash is checked against ``snapshot_id``.
    """
    path = Path(path) if path is not None else DEFAULT_SNAPSHOT_PATH
    snap = Snapshot.model_validate_json(path.read_text(encoding="utf-8"))
    if verify_id and compute_snapshot_id(snap) != snap.snapshot_id:
        raise ValueError(f"{path}: snapshot_id does not match its content")
    return snap


# Annotated alias some callers like for FastAPI/typer signatures (no import of either here).
SnapshotId = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}-[0-9a-f]{12}$")]
