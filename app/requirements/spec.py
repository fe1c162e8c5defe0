"""The workload requirements schema (``WorkloadSpec``), version ``"1"``.

One pydantic v2 model is shared by the browser form, the REST API and YAML files. It
describes *what* a user needs (compute, growth, time frame, money, compliance and the
architecture pieces used to generate deployment bundles); it holds no prices and knows
no GPU figures - GPU model names are plain strings resolved later against the catalog.

Sections
========

``performance``
    Training runs and inference services. A training run is sized either as
    ``gpu_hours`` measured on a ``reference_gpu`` or as ``model_params`` x
    ``training_tokens``; the latter becomes GPU-hours with the usual dense-transformer
    estimate of 6·N·D training FLOPs divided by the reference GPU's peak dense throughput
    (BF16, or FP8 when ``precision: fp8``) times ``utilization`` (model FLOPs utilization,
    MFU). Inference services are sized as always-on GPUs or as requests/s divided by
    requests/s per GPU.
``scale``
    Growth of inference load per year, seasonality, scale-down steps, retirement.
``lifecycle``
    Start month, horizon (1-60 months) and retraining cadence.
``cost``
    Budget caps, NPV discount rate, whether upfront payments / own servers are allowed.
``compliance``
    Data classification, frameworks, allowed jurisdictions / regions, tenancy. See
    :class:`Compliance` for the cross-field rules and the *effective* jurisdictions a
    planner must honour.
``architecture``
    Data sources (with quality expectations), pipeline stages, storage, orchestrator and
    serving configuration, used to generate Terraform / Helm / Airflow bundles.

Defaults and their sources
==========================

* ``utilization`` omitted = :data:`DEFAULT_MFU` = 0.40 (the field stays ``None`` so that it
  only appears when set; it is refused with ``gpu_hours`` sizing, where it would have no
  effect; see :attr:`TrainingRun.effective_utilization`). Public model FLOPs utilization figures for
  large dense-transformer training: PaLM 540B reached 46.2 % MFU on 6144 TPU v4 chips
  (Chowdhery et al., "PaLM: Scaling Language Modeling with Pathways", 2022,
  arXiv:2204.02311); Llama 3 405B reached 38-43 % BF16 MFU on 8K-16K H100 GPUs
  (380-430 TFLOPs/GPU, Llama Team, "The Llama 3 Herd of Models", 2024,
  arXiv:2407.21783, Table 4). 0.40 sits inside the Llama 3 range on the same hardware
  generation as most current offers. These figures are BF16; FP8 runs usually reach a
  smaller fraction of the (twice as high) FP8 peak, so set ``utilization`` explicitly for
  ``precision: fp8``.
* ``discount_rate_annual`` = :data:`DEFAULT_DISCOUNT_RATE` = 0.08: an assumed nominal
  corporate cost of capital (WACC-style hurdle rate) for comparing upfront payments,
  commitments and capex with pay-as-you-go spend. It is a planning convention, not a
  sourced figure - replace it with your organisation's rate.

Identifiers
===========

Names that become identifiers in generated bundles (training runs, services, data sources,
stages, buckets) must be DNS-1123 labels: lowercase letters, digits and ``-``, starting
with a letter, ending with a letter or digit, at most 63 characters. They are then valid
as Kubernetes names, Helm release names, Terraform resource names and Airflow task ids;
generators that need Python/SQL identifiers replace ``-`` with ``_`` (injective, since
``_`` is not allowed). The free-text ``name`` and ``description`` may contain anything.

Errors
======

Validation errors carry pydantic ``loc`` paths, including for cross-field rules (they are
raised as line errors at the offending field). :func:`load_spec` and
:meth:`WorkloadSpec.from_yaml` raise :class:`SpecError` whose message lists every issue as
``path: message``, e.g. ``lifecycle.horizon_months: Input should be less than or equal to
60``. Pydantic validates bottom-up: a rule spanning several fields or sections is checked
once the parts it reads are valid, so fixing field errors can reveal further issues.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.jurisdictions import Jurisdiction

__all__ = [
    "ADEQUACY_JURISDICTIONS",
    "DEFAULT_DISCOUNT_RATE",
    "DEFAULT_MFU",
    "EEA_JURISDICTIONS",
    "SCHEMA_VERSION",
    "Architecture",
    "Autoscaling",
    "ColumnSpec",
    "Compliance",
    "Cost",
    "DataClassification",
    "DataQuality",
    "DataSource",
    "Framework",
    "InferenceService",
    "Interconnect",
    "Jurisdiction",
    "Lifecycle",
    "Orchestrator",
    "Performance",
    "Pipeline",
    "PipelineStage",
    "Precision",
    "RetrainingCadence",
    "Scale",
    "ScaleStep",
    "Seasonality",
    "ServingConfig",
    "SpecError",
    "SpecIssue",
    "StorageBucket",
    "TrainingRun",
    "WorkloadSpec",
    "add_months",
    "format_loc",
    "issues_from_validation_error",
    "load_spec",
    "month_index",
    "spec_json_schema",
]

SCHEMA_VERSION: Final = "1"

#: Default model FLOPs utilization for 6·N·D sizing (see module docstring for sources).
DEFAULT_MFU: Final = 0.40
#: Default annual discount rate for NPV (an assumption; see module docstring).
DEFAULT_DISCOUNT_RATE: Final = 0.08

#: Largest YAML document accepted by :meth:`WorkloadSpec.from_yaml` (characters).
MAX_YAML_CHARS: Final = 512_000

# --------------------------------------------------------------------------- enums



#: GDPR applies inside the EEA: the EU member states plus Norway (Iceland and
#: Liechtenstein have no cloud regions in the catalog).
EEA_JURISDICTIONS: Final[tuple[str, ...]] = ("EU", "NO")

#: Jurisdictions with a European Commission adequacy decision under GDPR Art. 45 that
#: appear in :data:`Jurisdiction` (Commission "Adequacy decisions" page: Andorra,
#: Argentina, Canada (commercial organisations), Faroe Islands, Guernsey, Israel, Isle of
#: Man, Japan, Jersey, New Zealand, Republic of Korea, Switzerland, the United Kingdom,
#: the United States (only organisations certified under the EU-US Data Privacy
#: Framework) and Uruguay). The US is deliberately *not* listed: its adequacy covers only
#: DPF-certified organisations, so a spec must declare ``gdpr_transfer_mechanism: dpf``
#: (or ``scc`` / ``bcr``) to allow it.
ADEQUACY_JURISDICTIONS: Final[tuple[str, ...]] = ("UK", "CH", "CA", "JP", "KR", "NZ", "IL")

Framework = Literal[
    "HIPAA",
    "GDPR",
    "FedRAMP-Moderate",
    "FedRAMP-High",
    "SOC2",
    "PCI-DSS",
    "ISO27001",
    "HITRUST",
    "C5",
]
"""Compliance frameworks. Names match the catalog's region ``compliance_programs``.
``FedRAMP`` (without level) is accepted on input and read as ``FedRAMP-Moderate``."""

DataClassification = Literal["public", "internal", "confidential", "restricted", "phi", "pci"]
"""Sensitivity of the data the workload processes, lowest to highest. ``phi`` (protected
health information) and ``pci`` (cardholder data) are ``restricted`` data that also name
the regulation that governs them."""

Precision = Literal["bf16", "fp8"]
Interconnect = Literal["none", "multi_node"]
"""``none``: GPUs of one node (or independent replicas) suffice; ``multi_node``: the job
spans nodes and needs a fast GPU fabric (InfiniBand / RoCE / EFA class)."""

CadenceKind = Literal["once", "monthly", "quarterly", "yearly", "every_n_months"]
InferenceMode = Literal["latency_bound", "batch"]
StageKind = Literal["ingest", "validate", "train", "evaluate", "register", "deploy"]
StorageClass = Literal["standard", "infrequent_access", "archive"]
DataFormat = Literal[
    "parquet",
    "csv",
    "jsonl",
    "json",
    "avro",
    "orc",
    "delta",
    "iceberg",
    "tfrecord",
    "webdataset",
    "images",
    "audio",
    "video",
    "text",
    "pdf",
    "dicom",
    "hl7-fhir",
    "sql-table",
    "other",
]
ColumnType = Literal["string", "int", "float", "bool", "timestamp", "date", "binary"]
ServingFramework = Literal["vllm", "triton", "tgi", "torchserve", "kserve", "ray-serve", "custom"]

_CLASSIFICATION_RANK: Final[dict[str, int]] = {
    "public": 0,
    "internal": 1,
    "confidential": 2,
    "restricted": 3,
    "phi": 3,
    "pci": 3,
}

# --------------------------------------------------------------------------- constrained strings

IDENTIFIER_PATTERN: Final = r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
COLUMN_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
GPU_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
REGION_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$"
MONTH_PATTERN: Final = r"^\d{4}-(0[1-9]|1[0-2])$"

_IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
_COLUMN_RE = re.compile(COLUMN_PATTERN)
_GPU_RE = re.compile(GPU_PATTERN)
_REGION_RE = re.compile(REGION_PATTERN)
_MONTH_RE = re.compile(MONTH_PATTERN)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_CRON_PRESETS: Final = frozenset({"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly"})


def _identifier(value: str) -> str:
    if not _IDENTIFIER_RE.match(value):
        raise PydanticCustomError(
            "identifier",
            "must be a lowercase identifier (letters, digits and '-', starting with a letter, "
            "ending with a letter or digit, at most 63 characters), got '{value}'",
            {"value": value},
        )
    return value


def _column(value: str) -> str:
    if not _COLUMN_RE.match(value):
        raise PydanticCustomError(
            "column_name",
            "must be a column/option name (letters, digits and '_', not starting with a "
            "digit, at most 128 characters), got '{value}'",
            {"value": value},
        )
    return value


def _gpu_name(value: str) -> str:
    if not _GPU_RE.match(value):
        raise PydanticCustomError(
            "gpu_name",
            "must be a GPU model name such as 'H100' or 'A100-80GB' (letters, digits, '.', "
            "'_' and '-'), got '{value}'",
            {"value": value},
        )
    return value


def _region_key(value: str) -> str:
    if not _REGION_RE.match(value):
        raise PydanticCustomError(
            "region_key",
            "must be a region key 'provider/region' in lowercase, e.g. 'aws/eu-central-1', "
            "got '{value}'",
            {"value": value},
        )
    return value


def _month(value: str) -> str:
    if not _MONTH_RE.match(value) or not 2000 <= int(value[:4]) <= 2100:
        raise PydanticCustomError(
            "month",
            "must be a month 'YYYY-MM' between 2000-01 and 2100-12, got '{value}'",
            {"value": value},
        )
    return value


def _free_text(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank", {})
    return value


def _no_control_chars(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise PydanticCustomError("control_chars", "must not contain control characters", {})
    return value


Identifier = Annotated[
    str,
    AfterValidator(_identifier),
    Field(max_length=63, json_schema_extra={"pattern": IDENTIFIER_PATTERN}),
]
ColumnName = Annotated[
    str,
    AfterValidator(_column),
    Field(max_length=128, json_schema_extra={"pattern": COLUMN_PATTERN}),
]
GpuName = Annotated[
    str, AfterValidator(_gpu_name), Field(max_length=64, json_schema_extra={"pattern": GPU_PATTERN})
]
RegionKey = Annotated[
    str,
    AfterValidator(_region_key),
    Field(max_length=129, json_schema_extra={"pattern": REGION_PATTERN}),
]
Month = Annotated[
    str,
    AfterValidator(_month),
    Field(max_length=7, json_schema_extra={"pattern": MONTH_PATTERN}, examples=["2027-01"]),
]
OptionValue = str | bool | int | float


# --------------------------------------------------------------------------- months


def month_index(start: str, month: str) -> int:
    """Number of months from ``start`` to ``month`` (both ``YYYY-MM``); negative if earlier.

    >>> month_index("2026-11", "2027-02")
    3
    """
    sy, sm = int(start[:4]), int(start[5:7])
    y, m = int(month[:4]), int(month[5:7])
    return (y - sy) * 12 + (m - sm)


def add_months(start: str, months: int) -> str:
    """``start`` (``YYYY-MM``) plus ``months`` months, as ``YYYY-MM``.

    >>> add_months("2026-11", 3)
    '2027-02'
    """
    total = int(start[:4]) * 12 + int(start[5:7]) - 1 + months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem in a spec: ``path`` is the dotted field path (``""`` for the document)."""

    path: str
    message: str
    type: str = "value_error"

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.message}"


class SpecError(ValueError):
    """A spec could not be parsed or validated. ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[SpecIssue], source: str | None = None) -> None:
        self.issues: list[SpecIssue] = list(issues)
        self.source = source
        head = f"invalid workload spec{f' {source}' if source else ''}"
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"{head}:\n{lines}" if lines else head)

    @property
    def paths(self) -> list[str]:
        return [issue.path for issue in self.issues]


def format_loc(loc: Iterable[int | str]) -> str:
    """Render a pydantic ``loc`` as a dotted path: ``("a", 0, "b")`` -> ``"a[0].b"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def issues_from_validation_error(exc: ValidationError) -> list[SpecIssue]:
    """Convert a pydantic :class:`ValidationError` into :class:`SpecIssue` items."""
    issues = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        issues.append(SpecIssue(path=format_loc(err["loc"]), message=msg, type=err["type"]))
    return issues


_Loc = tuple[int | str, ...]


def _raise_issues(title: str, issues: list[tuple[_Loc, str, Any]]) -> None:
    """Raise a pydantic ValidationError whose line errors sit at the given locations.

    Raised from a model validator, pydantic prefixes each ``loc`` with the model's own
    position, so REST clients and :class:`SpecError` get exact field paths for
    cross-field rules too.
    """
    if not issues:
        return
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("cross_field", "{detail}", {"detail": message}),
                loc=loc,
                input=value,
            )
            for loc, message, value in issues
        ],
    )


class _Issues(list[tuple[_Loc, str, Any]]):
    """Collects cross-field problems inside a validator, then raises them together."""

    def add(self, loc: _Loc | str, message: str, value: Any = None) -> None:
        self.append(((loc,) if isinstance(loc, str) else loc, message, value))


# --------------------------------------------------------------------------- base


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


def _unique(names: Sequence[str]) -> list[int]:
    """Indexes of entries whose name repeats an earlier one."""
    seen: set[str] = set()
    dups = []
    for i, name in enumerate(names):
        if name in seen:
            dups.append(i)
        seen.add(name)
    return dups


# --------------------------------------------------------------------------- lifecycle


class RetrainingCadence(_Strict):
    """How often training runs repeat. ``every_n_months`` needs ``n``.

    A bare string (``"quarterly"``) is accepted as shorthand for ``{kind: quarterly}``.
    """

    kind: CadenceKind = "once"
    n: int | None = Field(
        default=None, ge=1, le=60, description="Months between runs for every_n_months."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"kind": data}
        return data

    @model_validator(mode="after")
    def _check_n(self) -> RetrainingCadence:
        if self.kind == "every_n_months" and self.n is None:
            _raise_issues(
                "RetrainingCadence",
                [(("n",), "every_n_months needs n (months between runs)", None)],
            )
        if self.kind != "every_n_months" and self.n is not None:
            _raise_issues(
                "RetrainingCadence",
                [(("n",), f"n is only used with kind every_n_months, not {self.kind}", self.n)],
            )
        return self

    @property
    def period_months(self) -> int | None:
        """Months between consecutive runs; ``None`` for ``once``."""
        return {"once": None, "monthly": 1, "quarterly": 3, "yearly": 12}.get(self.kind, self.n)

    def run_months(self, first: int, end: int) -> list[int]:
        """Month indexes (relative to the horizon start) at which runs start, from
        ``first`` up to but excluding ``end``.

        >>> RetrainingCadence(kind="quarterly").run_months(0, 12)
        [0, 3, 6, 9]
        """
        if first >= end:
            return []
        period = self.period_months
        if period is None:
            return [first]
        return list(range(first, end, period))


class Lifecycle(_Strict):
    """Planning window and retraining cadence."""

    start_month: Month = Field(description="First month of the horizon, YYYY-MM.")
    horizon_months: int = Field(ge=1, le=60, description="Number of months planned (1-60).")
    retraining_cadence: RetrainingCadence = Field(
        default_factory=RetrainingCadence,
        description="Default cadence for training runs (a run may override it).",
    )

    @property
    def end_month(self) -> str:
        """Last month of the horizon (inclusive), YYYY-MM."""
        return add_months(self.start_month, self.horizon_months - 1)

    def months(self) -> list[str]:
        """Every month of the horizon, YYYY-MM."""
        return [add_months(self.start_month, i) for i in range(self.horizon_months)]


# --------------------------------------------------------------------------- performance


class TrainingRun(_Strict):
    """One training job, repeated according to the retraining cadence.

    Size it EITHER with ``gpu_hours`` (measured or estimated on ``reference_gpu``) OR with
    ``model_params`` and ``training_tokens``: GPU-hours = 6·N·D / (peak dense TFLOPs of
    ``reference_gpu`` at ``precision`` x 1e12 x ``utilization``) / 3600.
    The minimum number of concurrent GPUs is ceil(GPU-hours / (deadline_days x 24)).
    """

    name: Identifier
    reference_gpu: GpuName = Field(
        description="GPU model the size refers to: where gpu_hours were measured, or whose "
        "peak throughput converts 6·N·D FLOPs to GPU-hours."
    )
    gpu_hours: float | None = Field(
        default=None, gt=0, description="GPU-hours per run on reference_gpu."
    )
    model_params: float | None = Field(default=None, gt=0, description="N: trainable parameters.")
    training_tokens: float | None = Field(
        default=None, gt=0, description="D: tokens processed per run."
    )
    utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Model FLOPs utilization (MFU) for 6·N·D sizing only; omitted = 0.40 "
        "(PaLM 540B 46.2 %, Llama 3 405B 38-43 % BF16 MFU).",
        json_schema_extra={"x-default-when-omitted": DEFAULT_MFU},
    )
    deadline_days: float = Field(
        gt=0, le=1830, description="Each run must finish within this many days."
    )
    min_gpu_memory_gb: float = Field(
        default=0, ge=0, le=4096, description="Minimum memory per GPU."
    )
    interconnect: Interconnect = Field(default="none", description="Multi-node fast fabric needed?")
    checkpointable: bool = Field(
        default=False, description="Run survives preemption (may use spot/interruptible capacity)."
    )
    precision: Precision = "bf16"
    start_month: Month | None = Field(
        default=None, description="First run; default lifecycle.start_month."
    )
    retraining_cadence: RetrainingCadence | None = Field(
        default=None, description="Override of lifecycle.retraining_cadence for this run."
    )

    @field_validator("interconnect", mode="before")
    @classmethod
    def _bool_interconnect(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "multi_node" if value else "none"
        return value

    @model_validator(mode="after")
    def _either_size(self) -> TrainingRun:
        by_hours = self.gpu_hours is not None
        by_flops = self.model_params is not None or self.training_tokens is not None
        if by_hours and by_flops:
            _raise_issues(
                "TrainingRun",
                [
                    (
                        ("gpu_hours",),
                        "give either gpu_hours or model_params + training_tokens, not both",
                        self.gpu_hours,
                    ),
                ],
            )
        if not by_hours and not by_flops:
            _raise_issues(
                "TrainingRun",
                [
                    (
                        ("gpu_hours",),
                        "size the run with gpu_hours or with model_params + training_tokens",
                        None,
                    ),
                ],
            )
        if by_flops:
            missing = [f for f in ("model_params", "training_tokens") if getattr(self, f) is None]
            _raise_issues(
                "TrainingRun", [((f,), f"{f} is required with 6·N·D sizing", None) for f in missing]
            )
        if self.utilization is not None and by_hours:
            _raise_issues(
                "TrainingRun",
                [
                    (
                        ("utilization",),
                        "utilization only applies to model_params + training_tokens sizing",
                        self.utilization,
                    ),
                ],
            )
        return self

    @property
    def effective_utilization(self) -> float:
        """``utilization``, or :data:`DEFAULT_MFU` when omitted."""
        return DEFAULT_MFU if self.utilization is None else self.utilization

    @property
    def training_flops(self) -> float | None:
        """6·N·D, or ``None`` when sized by GPU-hours."""
        if self.model_params is None or self.training_tokens is None:
            return None
        return 6.0 * self.model_params * self.training_tokens


class InferenceService(_Strict):
    """A model-serving workload, sized EITHER as ``always_on_gpus`` OR as
    ``requests_per_second`` / ``per_gpu_rps`` (GPUs = ceil(rps / per-GPU rps), after growth
    and seasonality). Throughput figures refer to ``reference_gpu``.
    """

    name: Identifier
    reference_gpu: GpuName
    mode: InferenceMode = "latency_bound"
    always_on_gpus: int | None = Field(default=None, ge=1, le=100_000)
    requests_per_second: float | None = Field(
        default=None, gt=0, description="Load at start_month."
    )
    per_gpu_rps: float | None = Field(
        default=None,
        gt=0,
        description="Sustainable requests/s per reference GPU at the latency target.",
    )
    min_gpu_memory_gb: float = Field(default=0, ge=0, le=4096)
    precision: Precision = "bf16"
    interruptible: bool = Field(
        default=False,
        description="Batch only: jobs retry on preemption, so spot capacity may serve it.",
    )
    duty_cycle: float = Field(
        default=1.0, gt=0, le=1, description="Batch only: fraction of each month the GPUs run."
    )
    start_month: Month | None = Field(
        default=None, description="Go-live; default lifecycle.start_month."
    )

    @model_validator(mode="after")
    def _check(self) -> InferenceService:
        issues = _Issues()
        by_gpus = self.always_on_gpus is not None
        by_rps = self.requests_per_second is not None or self.per_gpu_rps is not None
        if by_gpus and by_rps:
            issues.add(
                "always_on_gpus",
                "give either always_on_gpus or requests_per_second + per_gpu_rps, not both",
                self.always_on_gpus,
            )
        elif not by_gpus and not by_rps:
            issues.add(
                "always_on_gpus",
                "size the service with always_on_gpus or with requests_per_second + per_gpu_rps",
                None,
            )
        elif by_rps:
            for f in ("requests_per_second", "per_gpu_rps"):
                if getattr(self, f) is None:
                    issues.add((f,), f"{f} is required with request-rate sizing", None)
        if self.mode == "latency_bound":
            if self.interruptible:
                issues.add(
                    "interruptible",
                    "a latency-bound service cannot run on interruptible (spot) capacity",
                    True,
                )
            if self.duty_cycle != 1.0:
                issues.add(
                    "duty_cycle",
                    "a latency-bound service is always on (duty_cycle must be 1)",
                    self.duty_cycle,
                )
        _raise_issues("InferenceService", issues)
        return self

    @property
    def base_gpus(self) -> float:
        """Reference GPUs needed at go-live before growth/seasonality (may be fractional)."""
        if self.always_on_gpus is not None:
            return float(self.always_on_gpus)
        assert self.requests_per_second is not None and self.per_gpu_rps is not None
        return self.requests_per_second / self.per_gpu_rps

    @property
    def latency_bound(self) -> bool:
        return self.mode == "latency_bound"


class Performance(_Strict):
    """What has to be computed: training runs and inference services."""

    training: list[TrainingRun] = Field(default_factory=list, max_length=100)
    inference: list[InferenceService] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> Performance:
        issues = _Issues()
        if not self.training and not self.inference:
            issues.add(
                "training", "the workload needs at least one training run or inference service", []
            )
        for i in _unique([r.name for r in self.training]):
            issues.add(
                ("training", i, "name"),
                f"duplicate training run name '{self.training[i].name}'",
                self.training[i].name,
            )
        train_names = {r.name for r in self.training}
        for i in _unique([s.name for s in self.inference]):
            issues.add(
                ("inference", i, "name"),
                f"duplicate inference service name '{self.inference[i].name}'",
                self.inference[i].name,
            )
        for i, svc in enumerate(self.inference):
            if svc.name in train_names:
                issues.add(
                    ("inference", i, "name"),
                    f"'{svc.name}' is already a training run name; names must be unique across training and inference",
                    svc.name,
                )
        _raise_issues("Performance", issues)
        return self


# --------------------------------------------------------------------------- scale


class Seasonality(_Strict):
    """Month-of-year load multipliers for inference: EITHER ``multipliers`` (month 1-12 ->
    factor, unspecified months 1.0) OR ``peak_months`` with one ``peak_factor``."""

    multipliers: dict[int, float] | None = None
    peak_months: list[int] | None = Field(default=None, min_length=1, max_length=12)
    peak_factor: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> Seasonality:
        issues = _Issues()
        if self.multipliers is not None and (
            self.peak_months is not None or self.peak_factor is not None
        ):
            issues.add(
                "multipliers",
                "give either multipliers or peak_months + peak_factor, not both",
                self.multipliers,
            )
        if self.multipliers is None and self.peak_months is None:
            issues.add("multipliers", "give multipliers or peak_months + peak_factor", None)
        for month, factor in (self.multipliers or {}).items():
            if not 1 <= month <= 12:
                issues.add(
                    ("multipliers", month), f"month-of-year must be 1-12, got {month}", month
                )
            if not (math.isfinite(factor) and 0 < factor <= 100):
                issues.add(
                    ("multipliers", month),
                    f"multiplier must be > 0 and <= 100, got {factor}",
                    factor,
                )
        if self.peak_months is not None:
            if self.peak_factor is None:
                issues.add("peak_factor", "peak_months needs peak_factor", None)
            for i, month in enumerate(self.peak_months):
                if not 1 <= month <= 12:
                    issues.add(
                        ("peak_months", i), f"month-of-year must be 1-12, got {month}", month
                    )
            for i in _unique([str(m) for m in self.peak_months]):
                issues.add(
                    ("peak_months", i),
                    f"duplicate month {self.peak_months[i]}",
                    self.peak_months[i],
                )
        elif self.peak_factor is not None and self.multipliers is None:
            issues.add("peak_months", "peak_factor needs peak_months", None)
        _raise_issues("Seasonality", issues)
        return self

    def factor(self, month_of_year: int) -> float:
        """Multiplier for a calendar month (1-12)."""
        if self.multipliers is not None:
            return self.multipliers.get(month_of_year, 1.0)
        if self.peak_months is not None and month_of_year in self.peak_months:
            return self.peak_factor or 1.0
        return 1.0


class ScaleStep(_Strict):
    """From ``from_month`` on, inference load is multiplied by ``factor`` (not cumulative:
    the latest step in effect wins)."""

    from_month: Month
    factor: float = Field(ge=0, le=100)


class Scale(_Strict):
    """How inference load evolves, and when the workload ends."""

    inference_growth_pct_per_year: float = Field(
        default=0.0,
        ge=-90,
        le=1000,
        description="Compound growth of inference load, % per year, applied monthly from "
        "each service's go-live: factor = (1 + g/100) ** (months / 12).",
    )
    seasonality: Seasonality | None = None
    scale_down: list[ScaleStep] = Field(default_factory=list, max_length=60)
    retire_month: Month | None = Field(
        default=None,
        description="First month with no demand at all (training and inference). Runs must "
        "finish before it.",
    )

    @model_validator(mode="after")
    def _check(self) -> Scale:
        issues = _Issues()
        for i in range(1, len(self.scale_down)):
            if self.scale_down[i].from_month <= self.scale_down[i - 1].from_month:
                issues.add(
                    ("scale_down", i, "from_month"),
                    "scale_down steps must be in strictly increasing month order",
                    self.scale_down[i].from_month,
                )
        _raise_issues("Scale", issues)
        return self

    def growth_factor(self, months_since_start: int) -> float:
        """Compounded growth after ``months_since_start`` months."""
        return (1.0 + self.inference_growth_pct_per_year / 100.0) ** (months_since_start / 12.0)

    def step_factor(self, month: str) -> float:
        """Scale-down multiplier in effect in ``month`` (YYYY-MM)."""
        factor = 1.0
        for step in self.scale_down:
            if step.from_month <= month:
                factor = step.factor
        return factor


# --------------------------------------------------------------------------- cost


class Cost(_Strict):
    """Money constraints and preferences (USD)."""

    currency: Literal["USD"] = "USD"
    total_budget: float | None = Field(
        default=None, gt=0, description="Cap over the whole horizon."
    )
    monthly_budget: float | None = Field(
        default=None, gt=0, description="Cap on any single month's spend."
    )
    discount_rate_annual: float = Field(
        default=DEFAULT_DISCOUNT_RATE,
        ge=0,
        lt=1,
        description="Annual rate for NPV of cash flows; default 0.08 is an assumed corporate "
        "cost of capital, replace with your own.",
    )
    upfront_payments_allowed: bool = Field(
        default=True, description="May the plan prepay commitments (all/partial upfront)?"
    )
    capex_allowed: bool = Field(
        default=False, description="May the plan buy and operate own GPU servers?"
    )

    def monthly_discount_factor(self, month: int) -> float:
        """Present-value factor for a cash flow ``month`` months after the start:
        1 / (1 + r) ** (month / 12)."""
        return 1.0 / (1.0 + self.discount_rate_annual) ** (month / 12.0)


# --------------------------------------------------------------------------- compliance


class Compliance(_Strict):
    """Where and on what the workload may run.

    Cross-field rules (validated):

    * ``phi`` data requires the ``HIPAA`` framework, ``pci`` data requires ``PCI-DSS``;
      ``HIPAA``/``PCI-DSS`` with ``public`` data is contradictory.
    * ``GDPR``: with no ``allowed_jurisdictions`` and no ``allowed_regions`` the effective
      jurisdictions default to the EEA (``EU``, ``NO``) - data residency is the safe
      reading. Explicit jurisdictions outside the EEA and the adequacy list
      (:data:`ADEQUACY_JURISDICTIONS`) need ``gdpr_transfer_mechanism`` (``dpf`` covers
      only ``US``; ``scc``/``bcr`` cover any).
    * ``FedRAMP-*``: jurisdictions must be ``US`` only (default ``US``); capacity must hold
      the authorisation (GovCloud-type regions in the catalog).
    * ``private_only`` excludes public-cloud regions, so ``allowed_regions`` must be empty.

    What a planner must honour (see :meth:`effective_jurisdictions`,
    :meth:`attested_frameworks`): a cloud region is eligible iff its jurisdiction is in the
    effective jurisdictions (when non-empty), its key is in ``allowed_regions`` (when
    non-empty) and its ``compliance_programs`` cover :meth:`attested_frameworks`
    (``FedRAMP-High`` also covers ``FedRAMP-Moderate``). ``GDPR`` is enforced through
    jurisdictions, not as a region attestation.
    """

    data_classification: DataClassification = "internal"
    frameworks: list[Framework] = Field(default_factory=list, max_length=20)
    allowed_jurisdictions: list[Jurisdiction] = Field(
        default_factory=list, description="Empty = any (subject to framework defaults)."
    )
    allowed_regions: list[RegionKey] = Field(
        default_factory=list, description="Cloud region keys 'provider/region'; empty = any."
    )
    gdpr_transfer_mechanism: Literal["none", "dpf", "scc", "bcr"] = Field(
        default="none",
        description="Legal basis for GDPR transfers outside EEA/adequate countries: EU-US Data "
        "Privacy Framework, Standard Contractual Clauses or Binding Corporate Rules.",
    )
    private_only: bool = Field(
        default=False, description="Only own/private servers, no public cloud."
    )
    dedicated_tenancy: bool = Field(
        default=False, description="No shared hardware: dedicated hosts/instances or own servers."
    )

    @field_validator("frameworks", mode="before")
    @classmethod
    def _fedramp_alias(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ["FedRAMP-Moderate" if v == "FedRAMP" else v for v in value]
        return value

    @model_validator(mode="after")
    def _check(self) -> Compliance:
        issues = _Issues()
        fw = set(self.frameworks)
        cls_ = self.data_classification
        for field, values in (
            ("frameworks", self.frameworks),
            ("allowed_jurisdictions", self.allowed_jurisdictions),
            ("allowed_regions", self.allowed_regions),
        ):
            for i in _unique(list(values)):
                issues.add((field, i), f"duplicate entry '{values[i]}'", values[i])
        if cls_ == "phi" and "HIPAA" not in fw:
            issues.add(
                "frameworks",
                "data_classification 'phi' requires the HIPAA framework",
                self.frameworks,
            )
        if cls_ == "pci" and "PCI-DSS" not in fw:
            issues.add(
                "frameworks",
                "data_classification 'pci' requires the PCI-DSS framework",
                self.frameworks,
            )
        for regulated in ("HIPAA", "PCI-DSS"):
            if regulated in fw and cls_ == "public":
                issues.add(
                    "data_classification",
                    f"{regulated} workloads handle regulated data; data_classification cannot be 'public'",
                    cls_,
                )
        fedramp = bool(fw & {"FedRAMP-Moderate", "FedRAMP-High"})
        if fedramp:
            outside = [j for j in self.allowed_jurisdictions if j != "US"]
            if outside:
                issues.add(
                    "allowed_jurisdictions",
                    f"FedRAMP workloads must stay in US jurisdiction; not allowed: {', '.join(outside)}",
                    self.allowed_jurisdictions,
                )
        if "GDPR" in fw and self.allowed_jurisdictions:
            free = set(EEA_JURISDICTIONS) | set(ADEQUACY_JURISDICTIONS)
            needs = [j for j in self.allowed_jurisdictions if j not in free]
            mech = self.gdpr_transfer_mechanism
            if mech == "none":
                uncovered = needs
            elif mech == "dpf":  # the Data Privacy Framework covers (certified) US recipients only
                uncovered = [j for j in needs if j != "US"]
            else:  # SCC / BCR can cover any destination
                uncovered = []
            if uncovered:
                issues.add(
                    "gdpr_transfer_mechanism",
                    (
                        f"GDPR: transfers to {', '.join(uncovered)} (outside the EEA and adequacy countries) "
                        "need gdpr_transfer_mechanism 'scc' or 'bcr'"
                        + ("" if uncovered != ["US"] else " (or 'dpf' for US)")
                    ),
                    mech,
                )
        if fedramp and "GDPR" in fw and not self.allowed_jurisdictions and not self.allowed_regions:
            issues.add(
                "allowed_jurisdictions",
                "GDPR defaults to EEA jurisdictions and FedRAMP to US: set allowed_jurisdictions explicitly",
                [],
            )
        if self.private_only and self.allowed_regions:
            issues.add(
                "allowed_regions",
                "private_only excludes public-cloud regions; leave allowed_regions empty",
                self.allowed_regions,
            )
        _raise_issues("Compliance", issues)
        return self

    def effective_jurisdictions(self) -> list[str]:
        """Jurisdictions capacity must be in (empty = any): the explicit list, else the
        framework default (GDPR -> EEA, FedRAMP -> US). Sorted."""
        if self.allowed_jurisdictions:
            return sorted(self.allowed_jurisdictions)
        fw = set(self.frameworks)
        if fw & {"FedRAMP-Moderate", "FedRAMP-High"}:
            return ["US"]
        if "GDPR" in fw and not self.allowed_regions:
            return sorted(EEA_JURISDICTIONS)
        return []

    def attested_frameworks(self) -> list[str]:
        """Frameworks the capacity itself must be attested for (all but GDPR, which is
        enforced through jurisdictions). Sorted."""
        return sorted(f for f in set(self.frameworks) if f != "GDPR")

    @property
    def sensitivity_rank(self) -> int:
        """0 (public) .. 3 (restricted / phi / pci)."""
        return _CLASSIFICATION_RANK[self.data_classification]


# --------------------------------------------------------------------------- architecture


class ColumnSpec(_Strict):
    """Expected column of a tabular source."""

    name: ColumnName
    type: ColumnType
    nullable: bool = True
    min: float | None = Field(default=None, description="Numeric columns: smallest allowed value.")
    max: float | None = Field(default=None, description="Numeric columns: largest allowed value.")
    allowed_values: list[str | int | float] | None = Field(
        default=None, min_length=1, max_length=1000
    )

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        issues = _Issues()
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            issues.add(
                ("min",) if self.min is not None else ("max",),
                f"min/max apply to int/float columns, not {self.type}",
                None,
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            issues.add("max", f"max ({self.max}) must be >= min ({self.min})", self.max)
        if self.allowed_values is not None:
            for i in _unique([repr(v) for v in self.allowed_values]):
                issues.add(
                    ("allowed_values", i),
                    f"duplicate value {self.allowed_values[i]!r}",
                    self.allowed_values[i],
                )
        _raise_issues("ColumnSpec", issues)
        return self


class DataQuality(_Strict):
    """Data quality expectations checked by the pipeline's validate stage."""

    completeness_min_pct: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Minimum % of non-null values in non-nullable columns / records.",
    )
    freshness_max_hours: float | None = Field(
        default=None, gt=0, description="Newest record at most this old."
    )
    row_count_min: int | None = Field(default=None, ge=0)
    columns: list[ColumnSpec] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _check(self) -> DataQuality:
        _raise_issues(
            "DataQuality",
            [
                (
                    ("columns", i, "name"),
                    f"duplicate column '{self.columns[i].name}'",
                    self.columns[i].name,
                )
                for i in _unique([c.name for c in self.columns])
            ],
        )
        return self


class DataSource(_Strict):
    """An input data set."""

    name: Identifier
    kind: Literal["public", "private"]
    format: DataFormat
    size_gb: float = Field(ge=0, description="Current size.")
    growth_gb_per_month: float = Field(default=0, ge=0)
    location: Annotated[str, AfterValidator(_no_control_chars)] = Field(
        min_length=1, max_length=1024, description="URI or description, e.g. 's3://bucket/prefix'."
    )
    jurisdiction: Jurisdiction | None = Field(
        default=None, description="Where the data resides today."
    )
    contains_personal_data: bool = False
    quality: DataQuality | None = None


class PipelineStage(_Strict):
    """A step of the ML pipeline (becomes an Airflow task).

    ``source`` links ingest/validate stages to a data source, ``training_run`` links train
    stages to a training run, ``service`` links deploy stages to an inference service.
    ``options`` are free-form scalar settings passed to the generated task.
    """

    name: Identifier
    kind: StageKind
    depends_on: list[Identifier] = Field(default_factory=list)
    source: Identifier | None = None
    training_run: Identifier | None = None
    service: Identifier | None = None
    options: dict[ColumnName, OptionValue] = Field(default_factory=dict, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> PipelineStage:
        issues = _Issues()
        allowed = {
            "source": ("ingest", "validate"),
            "training_run": ("train",),
            "service": ("deploy",),
        }
        for field, kinds in allowed.items():
            if getattr(self, field) is not None and self.kind not in kinds:
                issues.add(
                    (field,),
                    f"{field} only applies to {'/'.join(kinds)} stages, not {self.kind}",
                    getattr(self, field),
                )
        for i in _unique(self.depends_on):
            issues.add(
                ("depends_on", i),
                f"duplicate dependency '{self.depends_on[i]}'",
                self.depends_on[i],
            )
        _raise_issues("PipelineStage", issues)
        return self


class Pipeline(_Strict):
    """Ordered stages forming a DAG through ``depends_on``."""

    stages: list[PipelineStage] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _check(self) -> Pipeline:
        issues = _Issues()
        names = [s.name for s in self.stages]
        for i in _unique(names):
            issues.add(("stages", i, "name"), f"duplicate stage name '{names[i]}'", names[i])
        known = set(names)
        for i, stage in enumerate(self.stages):
            for j, dep in enumerate(stage.depends_on):
                if dep not in known:
                    issues.add(("stages", i, "depends_on", j), f"unknown stage '{dep}'", dep)
                elif dep == stage.name:
                    issues.add(
                        ("stages", i, "depends_on", j), "a stage cannot depend on itself", dep
                    )
        if not issues:
            cycle = self._find_cycle()
            if cycle:
                i = names.index(cycle[0])
                issues.add(
                    ("stages", i, "depends_on"), f"dependency cycle: {' -> '.join(cycle)}", cycle
                )
        _raise_issues("Pipeline", issues)
        return self

    def _find_cycle(self) -> list[str] | None:
        deps = {s.name: s.depends_on for s in self.stages}
        state: dict[str, int] = {}  # 1 = on stack, 2 = done
        stack: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            stack.append(node)
            for dep in deps[node]:
                if state.get(dep) == 1:
                    return [*stack[stack.index(dep) :], dep]
                if dep not in state:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            state[node] = 2
            return None

        for name in deps:
            if name not in state:
                found = visit(name)
                if found:
                    return found
        return None

    def topological_order(self) -> list[str]:
        """Stage names in dependency order (ties broken by declaration order)."""
        remaining = {s.name: set(s.depends_on) for s in self.stages}
        order: list[str] = []
        while remaining:
            ready = [s.name for s in self.stages if s.name in remaining and not remaining[s.name]]
            for name in ready:
                del remaining[name]
                order.append(name)
            for deps in remaining.values():
                deps.difference_update(ready)
        return order


class StorageBucket(_Strict):
    """An object-store location managed by the generated infrastructure."""

    name: Identifier
    purpose: Literal["raw", "features", "checkpoints", "models", "logs", "other"] = "other"
    storage_class: StorageClass = "standard"
    retention_days: int | None = Field(
        default=None, ge=1, le=36_500, description="None = keep forever."
    )
    versioning: bool = False


class Orchestrator(_Strict):
    """Pipeline orchestrator (Airflow is the only generator target today)."""

    kind: Literal["airflow"] = "airflow"
    schedule: str | None = Field(
        default="@daily",
        description="Cron expression (5 fields) or @hourly/@daily/@weekly/@monthly/@yearly/@once; None = manual.",
    )
    retries: int = Field(default=2, ge=0, le=10)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or value in _CRON_PRESETS:
            return value
        fields = value.split(" ")
        if len(fields) != 5 or not all(_CRON_FIELD_RE.match(f) for f in fields):
            raise PydanticCustomError(
                "cron",
                "must be a 5-field cron expression or one of {presets}, got '{value}'",
                {"presets": ", ".join(sorted(_CRON_PRESETS)), "value": value},
            )
        return value


class Autoscaling(_Strict):
    """Replica bounds for a serving deployment."""

    min_replicas: int = Field(default=1, ge=0, le=10_000)
    max_replicas: int = Field(default=1, ge=1, le=10_000)
    target_gpu_utilization_pct: float = Field(default=70, gt=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            _raise_issues(
                "Autoscaling",
                [
                    (
                        ("max_replicas",),
                        f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})",
                        self.max_replicas,
                    )
                ],
            )
        return self


class ServingConfig(_Strict):
    """How one inference service is deployed."""

    service: Identifier = Field(
        description="Name of an inference service in performance.inference."
    )
    framework: ServingFramework = "vllm"
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


class Architecture(_Strict):
    """Parts used to generate Terraform / Helm / Airflow bundles."""

    data_sources: list[DataSource] = Field(default_factory=list, max_length=200)
    pipeline: Pipeline = Field(default_factory=Pipeline)
    storage: list[StorageBucket] = Field(default_factory=list, max_length=100)
    orchestrator: Orchestrator = Field(default_factory=Orchestrator)
    serving: list[ServingConfig] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> Architecture:
        issues = _Issues()
        for i in _unique([d.name for d in self.data_sources]):
            issues.add(
                ("data_sources", i, "name"),
                f"duplicate data source '{self.data_sources[i].name}'",
                self.data_sources[i].name,
            )
        for i in _unique([b.name for b in self.storage]):
            issues.add(
                ("storage", i, "name"),
                f"duplicate bucket '{self.storage[i].name}'",
                self.storage[i].name,
            )
        for i in _unique([s.service for s in self.serving]):
            issues.add(
                ("serving", i, "service"),
                f"duplicate serving config for '{self.serving[i].service}'",
                self.serving[i].service,
            )
        sources = {d.name for d in self.data_sources}
        for i, stage in enumerate(self.pipeline.stages):
            if stage.source is not None and stage.source not in sources:
                issues.add(
                    ("pipeline", "stages", i, "source"),
                    f"unknown data source '{stage.source}'",
                    stage.source,
                )
        _raise_issues("Architecture", issues)
        return self


# --------------------------------------------------------------------------- the spec


class WorkloadSpec(_Strict):
    """A complete, versioned workload requirements document (schema version ``"1"``)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        validate_default=True,
        json_schema_extra={"$id": "https://archplan.dev/schemas/workload-spec-v1.json"},
    )

    schema_version: Literal["1"] = Field(description='Schema version; must be "1".')
    name: Annotated[str, AfterValidator(_free_text)] = Field(
        max_length=200, description="Free text."
    )
    description: str = Field(default="", max_length=20_000, description="Free text.")
    performance: Performance
    scale: Scale = Field(default_factory=Scale)
    lifecycle: Lifecycle
    cost: Cost = Field(default_factory=Cost)
    compliance: Compliance = Field(default_factory=Compliance)
    architecture: Architecture = Field(default_factory=Architecture)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_from_int(cls, value: Any) -> Any:
        # YAML/JSON users naturally write `schema_version: 1`.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _cross_sections(self) -> WorkloadSpec:
        issues = _Issues()
        start = self.lifecycle.start_month
        horizon = self.lifecycle.horizon_months
        end = self.lifecycle.end_month

        def in_horizon(month: str, loc: _Loc, what: str) -> None:
            idx = month_index(start, month)
            if not 0 <= idx < horizon:
                issues.add(loc, f"{what} {month} is outside the horizon {start}..{end}", month)

        retire = self.scale.retire_month
        if retire is not None:
            idx = month_index(start, retire)
            if not 1 <= idx <= horizon:
                issues.add(
                    ("scale", "retire_month"),
                    f"retire_month {retire} must be after {start} and at most one month after the horizon end {end}",
                    retire,
                )
        for i, run in enumerate(self.performance.training):
            if run.start_month is not None:
                in_horizon(
                    run.start_month, ("performance", "training", i, "start_month"), "start_month"
                )
                if retire is not None and run.start_month >= retire:
                    issues.add(
                        ("performance", "training", i, "start_month"),
                        f"start_month {run.start_month} is not before retire_month {retire}",
                        run.start_month,
                    )
        for i, svc in enumerate(self.performance.inference):
            if svc.start_month is not None:
                in_horizon(
                    svc.start_month, ("performance", "inference", i, "start_month"), "start_month"
                )
                if retire is not None and svc.start_month >= retire:
                    issues.add(
                        ("performance", "inference", i, "start_month"),
                        f"start_month {svc.start_month} is not before retire_month {retire}",
                        svc.start_month,
                    )
        for i, step in enumerate(self.scale.scale_down):
            in_horizon(step.from_month, ("scale", "scale_down", i, "from_month"), "from_month")

        services = {s.name: s for s in self.performance.inference}
        runs = {r.name for r in self.performance.training}
        for i, cfg in enumerate(self.architecture.serving):
            svc = services.get(cfg.service)
            if svc is None:
                issues.add(
                    ("architecture", "serving", i, "service"),
                    f"unknown inference service '{cfg.service}'",
                    cfg.service,
                )
            elif svc.latency_bound and cfg.autoscaling.min_replicas == 0:
                issues.add(
                    ("architecture", "serving", i, "autoscaling", "min_replicas"),
                    f"latency-bound service '{svc.name}' cannot scale to zero",
                    0,
                )
        for i, stage in enumerate(self.architecture.pipeline.stages):
            if stage.training_run is not None and stage.training_run not in runs:
                issues.add(
                    ("architecture", "pipeline", "stages", i, "training_run"),
                    f"unknown training run '{stage.training_run}'",
                    stage.training_run,
                )
            if stage.service is not None and stage.service not in services:
                issues.add(
                    ("architecture", "pipeline", "stages", i, "service"),
                    f"unknown inference service '{stage.service}'",
                    stage.service,
                )

        allowed = self.compliance.effective_jurisdictions()
        if allowed:
            for i, src in enumerate(self.architecture.data_sources):
                if (
                    src.kind == "private"
                    and src.jurisdiction is not None
                    and src.jurisdiction not in allowed
                ):
                    issues.add(
                        ("architecture", "data_sources", i, "jurisdiction"),
                        f"private data in {src.jurisdiction} but compliance allows only {', '.join(allowed)}",
                        src.jurisdiction,
                    )
        if self.compliance.private_only and not self.cost.capex_allowed:
            issues.add(
                ("cost", "capex_allowed"),
                "compliance.private_only needs own servers: set capex_allowed: true",
                False,
            )
        _raise_issues("WorkloadSpec", issues)
        return self

    # -- helpers ---------------------------------------------------------------------

    def slug(self) -> str:
        """A DNS-1123 identifier derived from ``name`` (for bundle/resource names)."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:63].rstrip("-")
        if not slug or not slug[0].isalpha():
            slug = f"w-{slug}"[:63].rstrip("-")
        return slug

    def month_of(self, month: str) -> int:
        """Index of ``month`` (YYYY-MM) in the horizon (may be out of range)."""
        return month_index(self.lifecycle.start_month, month)

    # -- YAML ------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str, *, source: str | None = None) -> WorkloadSpec:
        """Parse and validate a YAML document. Raises :class:`SpecError` naming each
        offending field path (or the YAML line/column for syntax errors)."""
        data = _parse_yaml(text, source)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(issues_from_validation_error(exc), source) from None

    def to_yaml(self) -> str:
        """Serialise as YAML; ``from_yaml(to_yaml())`` round-trips. Optional fields that are
        ``None`` by default are omitted when ``None``; other ``None`` values (e.g.
        ``orchestrator.schedule: null`` = manual) are kept."""
        data = self.model_dump(mode="json")
        _prune_default_nones(self, data)
        return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=100)


def _prune_default_nones(model: BaseModel, data: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            if field.default is None and name in data:
                del data[name]
        elif isinstance(value, BaseModel):
            _prune_default_nones(value, data[name])
        elif isinstance(value, list):
            for item, item_data in zip(value, data[name], strict=True):
                if isinstance(item, BaseModel):
                    _prune_default_nones(item, item_data)


def load_spec(path: str | Path) -> WorkloadSpec:
    """Read and validate a YAML spec file. Raises :class:`SpecError` (with the file name)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue("", f"cannot read file: {exc}", "io_error")], str(p)) from None
    return WorkloadSpec.from_yaml(text, source=str(p))


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of :class:`WorkloadSpec`, for the browser form and API docs."""
    return WorkloadSpec.model_json_schema()


# --------------------------------------------------------------------------- YAML plumbing

_BOOL_TAG = "tag:yaml.org,2002:bool"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style scalars and stricter documents:

    * only ``true``/``false`` are booleans (so the jurisdiction ``NO`` stays a string);
    * dates stay strings; ``7e9`` is a float (YAML 1.1 wants ``7.0e+9``);
    * duplicate keys and aliases (``*ref``) are rejected.
    """


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(
    loader: _SpecLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found unhashable key",
                key_node.start_mark,
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]


def _compose_node(self: _SpecLoader, parent: Any, index: Any) -> Any:
    if self.check_event(yaml.events.AliasEvent):
        event = self.peek_event()
        raise yaml.composer.ComposerError(
            None, None, "aliases (*ref) are not allowed in specs", event.start_mark
        )
    return yaml.SafeLoader.compose_node(self, parent, index)


_SpecLoader.compose_node = _compose_node  # type: ignore[method-assign]


class _SpecDumper(yaml.SafeDumper):
    """SafeDumper that indents list items under their key (readable, conventional style)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line text as a literal block (PyYAML falls back to quoting when it must).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SpecDumper.add_representer(str, _represent_str)


def _parse_yaml(text: str, source: str | None) -> Any:
    if len(text) > MAX_YAML_CHARS:
        raise SpecError(
            [
                SpecIssue(
                    "",
                    f"document too large ({len(text)} > {MAX_YAML_CHARS} characters)",
                    "too_large",
                )
            ],
            source,
        )
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # _SpecLoader is a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(
            [SpecIssue("", f"YAML syntax error{where}: {exc.problem}", "yaml_syntax")], source
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue("", f"YAML error: {exc}", "yaml_syntax")], source) from None
    if not isinstance(data, dict):
        raise SpecError(
            [SpecIssue("", "a spec must be a YAML mapping (key: value document)", "not_a_mapping")],
            source,
        )
    return data
