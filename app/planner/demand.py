"""Monthly GPU demand derived from a :class:`~app.requirements.spec.WorkloadSpec`.

:func:`build_demand` turns a spec plus GPU performance figures into a
:class:`DemandProfile`: for every month of the horizon and every *demand class*, the
GPU-hours and the peak number of concurrent GPUs needed.

Demand classes
==============

A :class:`DemandClass` says what capacity may serve a share of the demand: a reference GPU
and precision (for throughput normalisation), minimum GPU memory, interconnect need,
whether the work is interruptible (checkpointable training / retryable batch may use
spot), whether it is latency-bound (serving: spot never counts toward its peak), and the
compliance filters (jurisdictions, regions, attested frameworks, private-only, dedicated
tenancy). Runs and services with identical requirements are merged into one class; class
ids are derived from the requirements, so they are deterministic, and classes are sorted
by id.

Units and conversion
====================

GPU-hours and peaks are in **reference-GPU** units of the class (``reference_gpu`` at
``precision``). To express them on another GPU model, scale by the ratio of peak dense
throughput at the class precision (:meth:`DemandClass.gpu_hours_on`,
:meth:`ClassDemand.gpu_hours_on`, :meth:`ClassDemand.peak_gpus_on`)::

    hours_on_target = reference_hours * reference_tflops / target_tflops
    gpus_on_target  = ceil(reference_gpus * reference_tflops / target_tflops)

This is exact for compute-bound training sized by 6·N·D at the same MFU and an
approximation for memory-bandwidth-bound serving; the planner may apply its own
per-GPU factors instead. A target GPU with less memory than ``min_gpu_memory_gb`` or no
figure for the class precision cannot serve the class.

Time model
==========

* Months are calendar months from ``lifecycle.start_month``; ``hours_in_month`` is the
  actual number of days x 24 (a flat 730 h would misstate February by ~8 %). Every
  hour figure below uses the same calendar.
* **Training**: each run repeats at the retraining cadence from its start month (first
  month of the horizon by default). An instance starts at the beginning of its month and
  runs on P = ceil(H / deadline_hours) concurrent GPUs for H / P hours, where H is the
  run's reference-GPU-hours. The effective deadline is ``deadline_days`` x 24, capped so
  the instance ends before the next instance of the same run, the end of the horizon
  and the retirement month (each cap is reported in ``warnings``). GPU-hours are split
  over the months the instance overlaps; the peak of each overlapped month gains P.
  Because every instance starts at a month boundary, all instances active in a month
  are active together at its start, so summing their P is the exact concurrent peak.
* **Inference**: GPUs in month m = ceil(base x growth x season x scale-down), where base
  is ``always_on_gpus`` or ``requests_per_second / per_gpu_rps``, growth =
  (1 + g/100) ** (months since go-live / 12), season is the month-of-year multiplier
  and scale-down the latest step in effect. GPU-hours = GPUs x hours_in_month x
  ``duty_cycle``; the peak is GPUs. Zero before go-live and from ``retire_month`` on.

This module depends only on the requirements schema, not on the price catalog: GPU
figures come in as a mapping ``name -> GpuPerfLike`` (the catalog's ``GpuModel`` fits).
"""

from __future__ import annotations

import calendar
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.requirements.spec import (
    Compliance,
    DataClassification,
    Interconnect,
    Precision,
    TrainingRun,
    WorkloadSpec,
    add_months,
    month_index,
)

__all__ = [
    "ClassDemand",
    "DemandClass",
    "DemandError",
    "DemandProfile",
    "GpuPerf",
    "GpuPerfLike",
    "IneligibleGpuError",
    "TrainingInstance",
    "UnknownGpuError",
    "build_demand",
    "calendar_hours",
    "training_gpu_hours",
]

#: Relative tolerance used when rounding GPU counts up (absorbs float noise such as
#: 100 / 0.1 / 1000 = 1000.0000000000001 without hiding a real fraction).
_CEIL_RTOL: Final = 1e-9
#: GPUs per node assumed when warning about multi-GPU runs without a fabric.
_GPUS_PER_NODE: Final = 8


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _CEIL_RTOL * max(1.0, abs(x))))


# --------------------------------------------------------------------------- GPU figures


@runtime_checkable
class GpuPerfLike(Protocol):
    """What :func:`build_demand` needs to know about a GPU model (per device, dense, no
    sparsity). The catalog's ``GpuModel`` satisfies it; so does :class:`GpuPerf`."""

    @property
    def bf16_dense_tflops(self) -> float | None: ...

    @property
    def fp8_dense_tflops(self) -> float | None: ...

    @property
    def memory_gb(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class GpuPerf:
    """Peak dense throughput and memory of one GPU model.

    ``bf16_dense_tflops``: BF16 tensor dense peak (for pre-BF16 GPUs pass the FP16 dense
    figure); ``fp8_dense_tflops``: FP8 dense peak or ``None`` if unsupported.
    """

    bf16_dense_tflops: float
    fp8_dense_tflops: float | None = None
    memory_gb: float = 0.0

    def __post_init__(self) -> None:
        for name in ("bf16_dense_tflops", "fp8_dense_tflops", "memory_gb"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"GpuPerf.{name} must be finite and >= 0, got {value!r}")
        if self.bf16_dense_tflops <= 0:
            raise ValueError("GpuPerf.bf16_dense_tflops must be > 0")

    @classmethod
    def of(cls, gpu: GpuPerfLike) -> GpuPerf:
        """Normalise any :class:`GpuPerfLike` (falls back to ``fp16_dense_tflops`` when
        ``bf16_dense_tflops`` is missing, as for pre-Ampere GPUs in the catalog)."""
        if isinstance(gpu, GpuPerf):
            return gpu
        bf16 = gpu.bf16_dense_tflops or getattr(gpu, "fp16_dense_tflops", None)
        if not bf16:
            raise ValueError("GPU has no BF16/FP16 dense TFLOPs figure")
        return cls(
            bf16_dense_tflops=bf16,
            fp8_dense_tflops=gpu.fp8_dense_tflops or None,
            memory_gb=gpu.memory_gb or 0.0,
        )

    def tflops(self, precision: Precision) -> float | None:
        """Dense peak TFLOPs at ``precision`` (``None`` if the GPU does not support it)."""
        return self.bf16_dense_tflops if precision == "bf16" else self.fp8_dense_tflops


class DemandError(ValueError):
    """The spec cannot be turned into demand with the given GPU figures."""


class UnknownGpuError(DemandError, KeyError):
    """A reference GPU has no entry in the GPU figures mapping."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class IneligibleGpuError(DemandError):
    """A GPU cannot serve a demand class (too little memory or unsupported precision)."""


def training_gpu_hours(run: TrainingRun, gpu: GpuPerfLike) -> float:
    """Reference-GPU-hours of one instance of ``run`` on ``gpu``.

    ``gpu_hours`` as given, or 6·N·D / (peak dense FLOP/s at the run's precision x
    utilization) / 3600. Example: 7e9 params x 2e12 tokens on an H100 (989 TFLOPs BF16
    dense) at 40 % MFU = 8.4e22 / 3.956e14 / 3600 = 58,982.1 GPU-hours.
    """
    if run.gpu_hours is not None:
        return run.gpu_hours
    flops = run.training_flops
    assert flops is not None  # guaranteed by TrainingRun validation
    tflops = GpuPerf.of(gpu).tflops(run.precision)
    if not tflops:
        raise IneligibleGpuError(f"{run.reference_gpu} has no {run.precision} throughput figure")
    return flops / (tflops * 1e12 * run.effective_utilization) / 3600.0


def calendar_hours(start_month: str, months: int) -> list[float]:
    """Hours in each of ``months`` calendar months from ``start_month`` (days x 24)."""
    out = []
    for i in range(months):
        ym = add_months(start_month, i)
        out.append(24.0 * calendar.monthrange(int(ym[:4]), int(ym[5:7]))[1])
    return out


# --------------------------------------------------------------------------- output models


class _Out(BaseModel):
    # Output models: ignore unknown keys on re-load so computed fields round-trip.
    model_config = ConfigDict(extra="ignore", frozen=True)


class DemandClass(_Out):
    """What capacity may serve a share of the demand (see module docstring)."""

    id: str = Field(description="Deterministic id derived from the requirements.")
    reference_gpu: str
    precision: Precision
    reference_tflops: float = Field(description="Reference GPU dense peak at `precision`.")
    reference_memory_gb: float
    min_gpu_memory_gb: float
    interconnect: Interconnect
    interruptible: bool = Field(description="May run on spot / preemptible capacity.")
    latency_bound: bool = Field(description="Serving: spot capacity never counts toward the peak.")
    data_classification: DataClassification
    allowed_jurisdictions: list[str] = Field(description="Effective jurisdictions; empty = any.")
    allowed_regions: list[str] = Field(description="Region keys 'provider/region'; empty = any.")
    frameworks_required: list[str] = Field(
        description="Attestations the capacity must hold (GDPR excluded: enforced by jurisdictions)."
    )
    private_only: bool
    dedicated_tenancy: bool
    sources: list[str] = Field(description="'training:<run>' / 'inference:<service>' merged here.")

    # -- GPU conversion -----------------------------------------------------------------

    def throughput_ratio(self, gpu: GpuPerfLike) -> float:
        """Target peak / reference peak at the class precision (>1 = target is faster).
        Raises :class:`IneligibleGpuError` if ``gpu`` cannot serve this class."""
        perf = GpuPerf.of(gpu)
        target = perf.tflops(self.precision)
        if not target:
            raise IneligibleGpuError(
                f"class {self.id}: GPU has no {self.precision} throughput figure"
            )
        if perf.memory_gb < self.min_gpu_memory_gb:
            raise IneligibleGpuError(
                f"class {self.id}: GPU has {perf.memory_gb:g} GB < {self.min_gpu_memory_gb:g} GB required"
            )
        return target / self.reference_tflops

    def can_run_on(self, gpu: GpuPerfLike) -> bool:
        """True if ``gpu`` has the memory and precision this class needs."""
        try:
            self.throughput_ratio(gpu)
        except (IneligibleGpuError, ValueError):
            return False
        return True

    def gpu_hours_on(self, gpu: GpuPerfLike, reference_gpu_hours: float) -> float:
        """Convert reference-GPU-hours to hours on ``gpu``: hours x ref_tflops / target_tflops."""
        return reference_gpu_hours / self.throughput_ratio(gpu)

    def gpus_on(self, gpu: GpuPerfLike, reference_gpus: int) -> int:
        """Convert a reference-GPU count to a count of ``gpu`` (rounded up)."""
        return _ceil(reference_gpus / self.throughput_ratio(gpu))

    # -- compliance filters ---------------------------------------------------------------

    def allows_region(
        self, region_key: str, jurisdiction: str, compliance_programs: Iterable[str]
    ) -> bool:
        """May a public-cloud region (``provider/region``) serve this class?"""
        if self.private_only:
            return False
        if self.allowed_regions and region_key not in self.allowed_regions:
            return False
        if self.allowed_jurisdictions and jurisdiction not in self.allowed_jurisdictions:
            return False
        return _frameworks_covered(self.frameworks_required, compliance_programs)

    def allows_private_site(self, jurisdiction: str) -> bool:
        """May own servers at a site in ``jurisdiction`` serve this class? (Own servers are
        single-tenant and operated under the organisation's own attestations.)"""
        return not self.allowed_jurisdictions or jurisdiction in self.allowed_jurisdictions

    def label(self) -> str:
        """One-line human description."""
        bits = [
            f"{self.reference_gpu} {self.precision}",
            f">= {self.min_gpu_memory_gb:g} GB" if self.min_gpu_memory_gb else "any memory",
            "multi-node fabric" if self.interconnect == "multi_node" else "no fabric",
            "interruptible (spot ok)" if self.interruptible else "not interruptible",
        ]
        if self.latency_bound:
            bits.append("latency-bound")
        return ", ".join(bits)


def _frameworks_covered(required: Iterable[str], programs: Iterable[str]) -> bool:
    have = set(programs)
    if "FedRAMP-High" in have:
        have.add("FedRAMP-Moderate")
    return all(f in have for f in required)


class ClassDemand(_Out):
    """Monthly demand of one class, in reference-GPU units of that class."""

    demand_class: DemandClass
    gpu_hours: list[float] = Field(description="Reference-GPU-hours per month.")
    peak_gpus: list[int] = Field(description="Peak concurrent reference GPUs per month.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_gpu_hours(self) -> float:
        return math.fsum(self.gpu_hours)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_peak_gpus(self) -> int:
        return max(self.peak_gpus, default=0)

    @property
    def id(self) -> str:
        return self.demand_class.id

    def gpu_hours_on(self, gpu: GpuPerfLike) -> list[float]:
        """Monthly GPU-hours expressed on ``gpu`` (see :meth:`DemandClass.gpu_hours_on`)."""
        ratio = self.demand_class.throughput_ratio(gpu)
        return [h / ratio for h in self.gpu_hours]

    def peak_gpus_on(self, gpu: GpuPerfLike) -> list[int]:
        """Monthly peak concurrent GPUs expressed on ``gpu`` (rounded up)."""
        ratio = self.demand_class.throughput_ratio(gpu)
        return [_ceil(p / ratio) for p in self.peak_gpus]


class TrainingInstance(_Out):
    """One execution of a training run."""

    run: str
    repetition: int = Field(description="0 for the first run, 1 for the first retraining, ...")
    class_id: str
    start_month: str
    start_hour: float = Field(description="Hours from the start of the horizon.")
    duration_hours: float
    concurrent_gpus: int = Field(description="Reference GPUs used throughout the instance.")
    gpu_hours: float = Field(description="Reference-GPU-hours of this instance.")
    deadline_hours: float = Field(description="Effective deadline after caps.")
    deadline_capped_by: Literal["next_run", "horizon_end", "retirement"] | None = None


class DemandProfile(_Out):
    """Monthly GPU demand per class over the horizon (JSON-serialisable)."""

    spec_name: str
    start_month: str
    months: list[str]
    hours_in_month: list[float]
    classes: list[ClassDemand] = Field(description="Sorted by class id.")
    training_instances: list[TrainingInstance]
    warnings: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_gpu_hours_by_reference_gpu(self) -> dict[str, float]:
        """Reference-GPU-hours over the horizon, summed per reference GPU (and precision
        suffix for FP8 classes), since hours on different GPUs are not comparable."""
        totals: dict[str, float] = {}
        for c in self.classes:
            key = c.demand_class.reference_gpu + (
                "" if c.demand_class.precision == "bf16" else f" ({c.demand_class.precision})"
            )
            totals[key] = totals.get(key, 0.0) + c.total_gpu_hours
        return dict(sorted(totals.items()))

    @property
    def horizon_months(self) -> int:
        return len(self.months)

    def class_ids(self) -> list[str]:
        return [c.id for c in self.classes]

    def get(self, class_id: str) -> ClassDemand:
        """The class with ``class_id``. Raises :class:`KeyError`."""
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def gpu_hours_on(self, class_id: str, gpu: GpuPerfLike) -> list[float]:
        """Monthly GPU-hours of ``class_id`` expressed on ``gpu``."""
        return self.get(class_id).gpu_hours_on(gpu)

    def describe(self) -> str:
        """Human-readable summary (classes, training instances, monthly table)."""
        lines = [
            (
                f"Demand profile for {self.spec_name!r}: {self.months[0]}..{self.months[-1]} "
                f"({self.horizon_months} months, calendar hours)"
            ),
            "GPU-hours and peaks are in reference-GPU units of each class.",
            "",
            "Classes:",
        ]
        for n, c in enumerate(self.classes, 1):
            dc = c.demand_class
            active = sum(1 for h in c.gpu_hours if h > 0)
            lines.append(f"  c{n} {dc.id}")
            lines.append(f"     {dc.label()}")
            lines.append(f"     sources: {', '.join(dc.sources)}")
            lines.append(
                f"     total {c.total_gpu_hours:,.1f} {dc.reference_gpu}-hours, max peak "
                f"{c.max_peak_gpus} GPUs, active {active}/{self.horizon_months} months"
            )
        if self.classes:
            dc0 = self.classes[0].demand_class
            lines.append(
                "  compliance: "
                f"classification {dc0.data_classification}; "
                f"frameworks {', '.join(dc0.frameworks_required) or 'none'}; "
                f"jurisdictions {', '.join(dc0.allowed_jurisdictions) or 'any'}; "
                f"regions {', '.join(dc0.allowed_regions) or 'any'}"
                + ("; private only" if dc0.private_only else "")
                + ("; dedicated tenancy" if dc0.dedicated_tenancy else "")
            )
        if self.training_instances:
            lines += ["", "Training runs:"]
            # Group identical instances of a run so a monthly cadence stays one line.
            groups: dict[tuple[Any, ...], list[str]] = {}
            for t in self.training_instances:
                shape = (
                    t.run,
                    round(t.gpu_hours, 6),
                    t.concurrent_gpus,
                    round(t.duration_hours, 6),
                    round(t.deadline_hours, 6),
                    t.deadline_capped_by,
                )
                groups.setdefault(shape, []).append(t.start_month)
            for (run, gpu_h, gpus, dur, deadline, capped), starts in groups.items():
                cap = f", capped by {capped.replace('_', ' ')}" if capped else ""
                when = (
                    starts[0]
                    if len(starts) == 1
                    else f"{len(starts)} runs {starts[0]}..{starts[-1]}"
                )
                lines.append(
                    f"  {run} [{when}]: {gpu_h:,.1f} GPU-h each on {gpus} GPUs for "
                    f"{dur / 24:.1f} d (deadline {deadline / 24:.1f} d{cap})"
                )
        lines += [
            "",
            "Month     "
            + "".join(f"{f'c{n} GPU-h / peak':>24}" for n in range(1, len(self.classes) + 1)),
        ]
        for m, month in enumerate(self.months):
            cells = "".join(
                f"{f'{c.gpu_hours[m]:,.0f} / {c.peak_gpus[m]}':>24}" for c in self.classes
            )
            lines.append(f"{month}   {cells}")
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- building


@dataclass(frozen=True, slots=True)
class _ClassKey:
    reference_gpu: str
    precision: Precision
    min_gpu_memory_gb: float
    interconnect: Interconnect
    interruptible: bool
    latency_bound: bool

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.reference_gpu,
            self.precision,
            self.min_gpu_memory_gb,
            self.interconnect,
            self.interruptible,
            self.latency_bound,
        )

    def slug(self) -> str:
        gpu = re.sub(r"[^a-z0-9]+", "-", self.reference_gpu.lower()).strip("-") or "gpu"
        mem = f"{self.min_gpu_memory_gb:g}".replace(".", "p")
        return ".".join(
            [
                gpu,
                self.precision,
                f"mem{mem}",
                "fabric" if self.interconnect == "multi_node" else "nofabric",
                "spot-ok" if self.interruptible else "no-spot",
                "latency" if self.latency_bound else "throughput",
            ]
        )


class _Accumulator:
    def __init__(self, months: int) -> None:
        self.gpu_hours = [0.0] * months
        self.peak = [0] * months
        self.sources: list[str] = []


def _lookup_gpu(gpus: Mapping[str, GpuPerfLike], name: str, path: str) -> GpuPerf:
    if name not in gpus:
        known = ", ".join(sorted(gpus)) or "none"
        raise UnknownGpuError(f"{path}: no performance figures for GPU {name!r} (known: {known})")
    try:
        return GpuPerf.of(gpus[name])
    except ValueError as exc:
        raise DemandError(f"{path}: GPU {name!r}: {exc}") from None


def _check_reference(
    perf: GpuPerf, name: str, precision: Precision, min_mem: float, path: str
) -> float:
    tflops = perf.tflops(precision)
    if not tflops:
        raise IneligibleGpuError(
            f"{path}: reference GPU {name!r} has no {precision} throughput figure"
        )
    if perf.memory_gb and perf.memory_gb < min_mem:
        raise IneligibleGpuError(
            f"{path}: reference GPU {name!r} has {perf.memory_gb:g} GB, less than min_gpu_memory_gb "
            f"{min_mem:g}; pick a reference GPU that can run the workload"
        )
    return tflops


def build_demand(spec: WorkloadSpec, gpus: Mapping[str, GpuPerfLike]) -> DemandProfile:
    """Monthly demand per class for ``spec``; ``gpus`` maps GPU model name -> figures and
    must contain every ``reference_gpu`` the spec uses.

    Raises :class:`UnknownGpuError` / :class:`IneligibleGpuError` (both
    :class:`DemandError`, a ``ValueError``) with the offending field path.
    """
    lc = spec.lifecycle
    horizon = lc.horizon_months
    months = lc.months()
    hours = calendar_hours(lc.start_month, horizon)
    bounds = [0.0]
    for h in hours:
        bounds.append(bounds[-1] + h)
    end = (
        horizon
        if spec.scale.retire_month is None
        else month_index(lc.start_month, spec.scale.retire_month)
    )
    end = max(0, min(end, horizon))

    acc: dict[_ClassKey, _Accumulator] = {}
    ref_figures: dict[_ClassKey, tuple[float, float]] = {}
    instances: list[tuple[_ClassKey, dict[str, Any]]] = []
    warnings: list[str] = []

    def bucket(key: _ClassKey, source: str, tflops: float, memory: float) -> _Accumulator:
        if key not in acc:
            acc[key] = _Accumulator(horizon)
            ref_figures[key] = (tflops, memory)
        if source not in acc[key].sources:
            acc[key].sources.append(source)
        return acc[key]

    # -- training ------------------------------------------------------------------------
    for i, run in enumerate(spec.performance.training):
        path = f"performance.training[{i}]"
        perf = _lookup_gpu(gpus, run.reference_gpu, f"{path}.reference_gpu")
        tflops = _check_reference(
            perf, run.reference_gpu, run.precision, run.min_gpu_memory_gb, path
        )
        run_hours = training_gpu_hours(run, perf)
        key = _ClassKey(
            run.reference_gpu,
            run.precision,
            run.min_gpu_memory_gb,
            run.interconnect,
            run.checkpointable,
            False,
        )
        a = bucket(key, f"training:{run.name}", tflops, perf.memory_gb)
        cadence = run.retraining_cadence or lc.retraining_cadence
        first = 0 if run.start_month is None else month_index(lc.start_month, run.start_month)
        period = cadence.period_months
        deadline_h = run.deadline_days * 24.0
        for rep, s in enumerate(cadence.run_months(first, end)):
            limit, capped_by = end, ("retirement" if end < horizon else "horizon_end")
            if period is not None and s + period < limit:
                limit, capped_by = s + period, "next_run"
            window = bounds[limit] - bounds[s]
            effective = deadline_h
            cap: Literal["next_run", "horizon_end", "retirement"] | None = None
            if window < deadline_h:
                effective, cap = window, capped_by  # type: ignore[assignment]
                warnings.append(
                    f"training run {run.name!r} #{rep} ({months[s]}): deadline {run.deadline_days:g} d "
                    f"capped to {window / 24:g} d by {capped_by.replace('_', ' ')}"
                )
            p = max(1, _ceil(run_hours / effective))
            duration = min(run_hours / p, effective)
            t0, t1 = bounds[s], bounds[s] + duration
            for m in range(s, limit):
                overlap = min(bounds[m + 1], t1) - max(bounds[m], t0)
                if overlap <= 1e-9:
                    break
                a.gpu_hours[m] += run_hours * overlap / duration
                a.peak[m] += p
            if run.interconnect == "none" and p > _GPUS_PER_NODE:
                warnings.append(
                    f"training run {run.name!r} #{rep} ({months[s]}) needs {p} concurrent GPUs, more "
                    f"than one {_GPUS_PER_NODE}-GPU node, but interconnect is 'none'"
                )
            instances.append(
                (
                    key,
                    {
                        "run": run.name,
                        "repetition": rep,
                        "start_month": months[s],
                        "start_hour": t0,
                        "duration_hours": duration,
                        "concurrent_gpus": p,
                        "gpu_hours": run_hours,
                        "deadline_hours": effective,
                        "deadline_capped_by": cap,
                    },
                )
            )

    # -- inference -----------------------------------------------------------------------
    scale = spec.scale
    for i, svc in enumerate(spec.performance.inference):
        path = f"performance.inference[{i}]"
        perf = _lookup_gpu(gpus, svc.reference_gpu, f"{path}.reference_gpu")
        tflops = _check_reference(
            perf, svc.reference_gpu, svc.precision, svc.min_gpu_memory_gb, path
        )
        key = _ClassKey(
            svc.reference_gpu,
            svc.precision,
            svc.min_gpu_memory_gb,
            "none",
            svc.interruptible,
            svc.latency_bound,
        )
        a = bucket(key, f"inference:{svc.name}", tflops, perf.memory_gb)
        go_live = 0 if svc.start_month is None else month_index(lc.start_month, svc.start_month)
        for m in range(go_live, end):
            moy = int(months[m][5:7])
            load = svc.base_gpus * scale.growth_factor(m - go_live) * scale.step_factor(months[m])
            if scale.seasonality is not None:
                load *= scale.seasonality.factor(moy)
            n = _ceil(load)
            if n == 0 and load > 0:
                n = 1
            a.gpu_hours[m] += n * hours[m] * svc.duty_cycle
            a.peak[m] += n

    # -- assemble ------------------------------------------------------------------------
    ids = _class_ids(list(acc))
    comp: Compliance = spec.compliance
    common = {
        "data_classification": comp.data_classification,
        "allowed_jurisdictions": comp.effective_jurisdictions(),
        "allowed_regions": sorted(comp.allowed_regions),
        "frameworks_required": comp.attested_frameworks(),
        "private_only": comp.private_only,
        "dedicated_tenancy": comp.dedicated_tenancy,
    }
    classes = []
    for key in sorted(acc, key=lambda k: ids[k]):
        tflops, memory = ref_figures[key]
        dc = DemandClass(
            id=ids[key],
            reference_gpu=key.reference_gpu,
            precision=key.precision,
            reference_tflops=tflops,
            reference_memory_gb=memory,
            min_gpu_memory_gb=key.min_gpu_memory_gb,
            interconnect=key.interconnect,
            interruptible=key.interruptible,
            latency_bound=key.latency_bound,
            sources=sorted(acc[key].sources),
            **common,
        )
        classes.append(
            ClassDemand(demand_class=dc, gpu_hours=acc[key].gpu_hours, peak_gpus=acc[key].peak)
        )
    training = [TrainingInstance(class_id=ids[key], **fields) for key, fields in instances]
    training.sort(key=lambda t: (t.start_hour, t.run, t.repetition))
    return DemandProfile(
        spec_name=spec.name,
        start_month=lc.start_month,
        months=months,
        hours_in_month=hours,
        classes=classes,
        training_instances=training,
        warnings=warnings,
    )


def _class_ids(keys: list[_ClassKey]) -> dict[_ClassKey, str]:
    """Readable ids; if two keys slug alike (e.g. GPU names differing only in case), a
    short hash of the exact key is appended to each, keeping ids deterministic."""
    by_slug: dict[str, list[_ClassKey]] = {}
    for key in keys:
        by_slug.setdefault(key.slug(), []).append(key)
    out = {}
    for slug, group in by_slug.items():
        for key in group:
            if len(group) == 1:
                out[key] = slug
            else:
                digest = hashlib.sha256(repr(key.sort_key()).encode()).hexdigest()[:8]
                out[key] = f"{slug}.{digest}"
    return out
