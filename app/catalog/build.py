"""Build the bundled snapshot from ``pricing_data/``.

    python -m app.catalog.build            # write pricing_data/snapshot.json + SOURCES.md
    python -m app.catalog.build --check    # exit 1 if the committed files differ

Inputs (all in ``pricing_data/``):

* ``reference/*.csv`` - raw provider rows copied verbatim from public catalogs;
* ``sources.yaml``, ``gpus.yaml``, ``regions.yaml``, ``private_cloud.yaml`` - curated,
  every figure with a source id;
* ``build_config.yaml`` - snapshot date, GCP machine -> GPU mapping, explicit
  corrections, interconnect rules, known gaps.

Every change made to a raw row is a *quirk* handled explicitly below and recorded as a
:class:`~app.catalog.schema.Correction` (plus a short note on the affected offering), so
nothing is fixed silently. The output is deterministic: lists are sorted and floats are
rounded to 6 decimals, so rebuilding gives byte-identical files.
"""

from __future__ import annotations

import argparse
import ast
import csv
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml

from app.catalog.gpus import CANONICAL_ACCELERATORS, normalize_accelerator_name
from app.catalog.schema import (
    CommitmentPrice,
    Correction,
    Figure,
    GpuModel,
    Offering,
    PrivateServerSku,
    Region,
    SiteProfile,
    Snapshot,
    Source,
    compute_snapshot_id,
    snapshot_json,
)
from app.requirements.spec import Framework

__all__ = ["DATA_DIR", "build_snapshot", "main", "render_sources_md"]

DATA_DIR = Path(__file__).resolve().parents[2] / "pricing_data"
MIB_PER_GB = 1024.0

# Quirk ids (also used in tests).
Q_TPU_PLACEHOLDER = "gcp-tpu-v6e-700-placeholder"
Q_AZURE_ND96_COUNT = "azure-nd96isr-h100-v5-gpu-count"
Q_AZURE_H100_SPOT = "azure-h100-v5-spot-equals-on-demand"
Q_AZURE_PROMO = "azure-promo-skus-dropped"
Q_LAMBDA_MEMORY = "lambda-total-gpu-memory-is-per-gpu"
Q_AWS_NAME_MISMATCH = "aws-accelerator-name-mismatch"
Q_AWS_FRACTIONAL = "aws-fractional-gpu"
Q_AWS_TRN2_MEMORY = "aws-trainium2-device-memory"
Q_GCP_G4_FRACTION = "gcp-g4-fractional-unknown"
Q_GCP_NO_ACCEL_ROW = "gcp-missing-accelerator-row"
Q_GCP_A4_HOST_ZERO = "gcp-a4-host-price-zero"
Q_GCP_SPOT_MISSING = "gcp-spot-component-missing"
Q_AWS_RI_UNMATCHED = "aws-ri-without-offering"
Q_AZURE_NO_MEMORY = "azure-gpu-memory-from-model"


def q_empty_price(provider: str) -> str:
    return f"{provider}-empty-on-demand-price"


def q_spot_not_below(provider: str) -> str:
    return f"{provider}-spot-not-below-on-demand"


# --------------------------------------------------------------------------- helpers


def _yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _num(raw: str | None) -> float | None:
    """Parse a CSV number; '' -> None (the source left it empty)."""
    if raw is None or raw.strip() == "":
        return None
    return float(raw)


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def _gb(mib: float | None) -> float | None:
    return None if mib is None else round(mib / MIB_PER_GB, 2)


@dataclass
class _Quirk:
    provider: str
    field: str
    action: str
    reason: str
    raw_value: str | None = None
    new_value: str | None = None
    source: str | None = None
    keys: set[str] = field(default_factory=set)


class _Recorder:
    """Collects corrections (one per quirk id, with every affected key)."""

    def __init__(self) -> None:
        self.quirks: dict[str, _Quirk] = {}

    def add(self, qid: str, key: str, **kw: Any) -> None:
        q = self.quirks.get(qid)
        if q is None:
            q = self.quirks[qid] = _Quirk(**kw)
        q.keys.add(key)

    def corrections(self) -> list[Correction]:
        return [
            Correction(
                id=qid,
                provider=q.provider,
                keys=sorted(q.keys),
                field=q.field,
                action=q.action,
                raw_value=q.raw_value,
                new_value=q.new_value,  # type: ignore[arg-type]
                reason=q.reason,
                source=q.source,
            )
            for qid, q in sorted(self.quirks.items())
        ]


@dataclass
class _Draft:
    """Mutable offering under construction."""

    provider: str
    region: str
    instance_type: str
    gpu_model: str
    gpu_count: int
    gpu_fraction: float = 1.0
    gpu_memory_gb: float | None = None
    vcpus: float | None = None
    ram_gb: float | None = None
    interconnect: str | None = None
    on_demand_hourly: float | None = None
    spot_hourly: float | None = None
    price_scope: str = "instance"
    commitments: list[CommitmentPrice] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.region}/{self.instance_type}"

    def to_offering(self) -> Offering:
        return Offering(
            provider=self.provider,
            region=self.region,
            instance_type=self.instance_type,
            accelerator_kind=CANONICAL_ACCELERATORS[self.gpu_model],  # type: ignore[arg-type]
            gpu_model=self.gpu_model,
            gpu_count=self.gpu_count,
            gpu_fraction=self.gpu_fraction,
            gpu_memory_gb=self.gpu_memory_gb,
            vcpus=self.vcpus,
            ram_gb=self.ram_gb,
            interconnect=self.interconnect,
            on_demand_hourly=_r(self.on_demand_hourly),
            spot_hourly=_r(self.spot_hourly),
            price_scope=self.price_scope,  # type: ignore[arg-type]
            commitments=sorted(
                self.commitments,
                key=lambda c: (c.kind, c.term_months or 0, c.payment_option, c.source),
            ),
            sources=sorted(self.sources),
            notes=sorted(set(self.notes)),
        )


# --------------------------------------------------------------------------- builder


class _Builder:
    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir
        self.ref = data_dir / "reference"
        self.cfg = _yaml(data_dir / "build_config.yaml")
        self.rec = _Recorder()
        self.drafts: dict[str, _Draft] = {}
        self.gpu_specs = {g["name"]: g for g in _yaml(data_dir / "gpus.yaml")}
        self.compliance_gaps: list[str] = []  # filled by regions() from regions.yaml

    # -- shared ------------------------------------------------------------------

    def _put(self, d: _Draft) -> None:
        if d.key in self.drafts:
            raise ValueError(f"duplicate offering {d.key}")
        self.drafts[d.key] = d

    def _empty_price(self, d: _Draft, source: str) -> None:
        self.rec.add(
            q_empty_price(d.provider),
            d.key,
            provider=d.provider,
            field="on_demand_hourly",
            action="flagged",
            reason="On-demand price is empty in the source catalog; the "
            "offering is kept as unpriced (not counted as a priced GPU offering).",
            source=source,
        )
        d.notes.append("no on-demand price in the source (unpriced)")

    def _interconnect(self, provider: str, instance_type: str, gpu: str, count: int) -> str | None:
        if count <= 1:
            return "single"
        for rule in self.cfg["interconnect_rules"]:
            if rule["provider"] == provider and re.search(rule["pattern"], instance_type):
                return str(rule["value"])
        if gpu in self.cfg["pcie_only_gpus"]:
            return "pcie"
        return None

    # -- AWS ---------------------------------------------------------------------

    def aws(self) -> None:
        src = "skypilot-v9-aws"
        for row in _csv(self.ref / "aws_gpu_vms.csv"):
            itype, region, raw_name = row["InstanceType"], row["Region"], row["AcceleratorName"]
            key = f"aws/{region}/{itype}"
            gpu = normalize_accelerator_name(raw_name)
            info = ast.literal_eval(row["GpuInfo"]) if row["GpuInfo"].strip() else {}
            gpus = info.get("Gpus") or [{}]
            g0 = gpus[0]
            notes: list[str] = []

            info_name = g0.get("Name")
            if info_name and normalize_accelerator_name(info_name) != gpu:
                # e.g. p3dn: AcceleratorName 'V100-32GB' vs GpuInfo 'V100'; p4de 'A100-80GB'
                # vs 'A100'. AcceleratorName (with memory suffix) is the precise one; the
                # GpuInfo memory size confirms it.
                self.rec.add(
                    Q_AWS_NAME_MISMATCH,
                    key,
                    provider="aws",
                    field="gpu_model",
                    action="normalized",
                    raw_value=None,
                    new_value=None,
                    reason="AcceleratorName and GpuInfo.Name disagree (V100-32GB vs V100, "
                    "A100-80GB vs A100); the canonical model is taken from AcceleratorName, "
                    "whose memory suffix matches GpuInfo.MemoryInfo.",
                    source="pricing-reference-readme",
                )
                notes.append(
                    f"GPU name normalized: AcceleratorName {raw_name!r} vs GpuInfo {info_name!r} -> {gpu}"
                )
            elif info_name and info_name != raw_name:
                notes.append(f"GPU name normalized: {raw_name!r} / {info_name!r} -> {gpu}")

            raw_count = float(row["AcceleratorCount"])
            count, fraction = int(raw_count), 1.0
            if raw_count < 1:
                partition = float(g0.get("GpuPartitionSize", raw_count))
                count, fraction = int(g0.get("LogicalGpuCount", 1)), partition
                self.rec.add(
                    Q_AWS_FRACTIONAL,
                    key,
                    provider="aws",
                    field="gpu_count",
                    action="normalized",
                    reason="Fractional-GPU instance (g6f/gr6f): AcceleratorCount < 1 is "
                    "stored as gpu_count=LogicalGpuCount (1) and gpu_fraction=GpuPartitionSize.",
                    source=src,
                )
                notes.append(f"fractional GPU: AcceleratorCount {raw_count} -> 1 x {fraction}")
            elif raw_count != count:
                raise ValueError(f"{key}: non-integer accelerator count {raw_count}")

            mem_mib = (g0.get("MemoryInfo") or {}).get("SizeInMiB")
            mem = _gb(mem_mib)
            if gpu == "Trainium2" and mem is not None:
                self.rec.add(
                    Q_AWS_TRN2_MEMORY,
                    key,
                    provider="aws",
                    field="gpu_memory_gb",
                    action="dropped_value",
                    raw_value=f"{mem_mib} MiB",
                    new_value=None,
                    reason="The catalog gives 524288 MiB per Trainium2 device, which is not "
                    "plausible per chip; value dropped.",
                    source=src,
                )
                notes.append("per-device memory dropped (implausible source value)")
                mem = None

            d = _Draft(
                provider="aws",
                region=region,
                instance_type=itype,
                gpu_model=gpu,
                gpu_count=count,
                gpu_fraction=fraction,
                gpu_memory_gb=mem,
                vcpus=_num(row["vCPUs"]),
                ram_gb=_num(row["MemoryGiB"]),
                interconnect=self._interconnect("aws", itype, gpu, count)
                if CANONICAL_ACCELERATORS[gpu] == "gpu"
                else None,
                on_demand_hourly=_num(row["Price"]),
                spot_hourly=_num(row["SpotPrice"]),
                sources={src},
                notes=notes,
            )
            if d.on_demand_hourly is None:
                self._empty_price(d, src)
            self._put(d)

    def aws_commitments(self) -> None:
        ri_src, cb_src = "vantage-aws-ri-2026-01", "aws-capacity-blocks-mirror-2024"
        for row in _csv(self.ref / "aws_reserved_reference.csv"):
            key = f"aws/{row['region']}/{row['instance_type']}"
            if (row["term_years"], row["payment_option"], row["upfront_usd"]) != (
                "1",
                "no_upfront",
                "0",
            ):
                raise ValueError(f"unexpected RI row {row}")
            d = self.drafts.get(key)
            if d is None:
                self.rec.add(
                    Q_AWS_RI_UNMATCHED,
                    key,
                    provider="aws",
                    field="row",
                    action="dropped_row",
                    reason="RI row for an instance type/region that is not in "
                    "aws_gpu_vms.csv (e.g. dl2q, excluded there; or a region the catalog "
                    "copy does not list); nothing to attach it to.",
                    source=ri_src,
                )
                continue
            eff = float(row["effective_hourly_usd"])
            d.commitments.append(
                CommitmentPrice(
                    kind="reserved",
                    term_months=12,
                    payment_option="no_upfront",
                    offering_class="standard",
                    upfront_usd=0.0,
                    hourly_usd=eff,
                    effective_hourly_usd=eff,
                    estimate=False,
                    source=ri_src,
                    date=row["source_data_date"],
                    note="Linux, Standard RI, 1 year, no upfront (vantage field "
                    "yrTerm1Standard.noUpfront). Same-source on-demand: "
                    f"{row['ondemand_hourly_usd_same_source']}.",
                )
            )
            d.sources.add(ri_src)
        for row in _csv(self.ref / "aws_capacity_blocks_reference.csv"):
            key = f"aws/{row['region']}/{row['instance_type']}"
            d = self.drafts[key]
            d.commitments.append(
                CommitmentPrice(
                    kind="capacity_block",
                    term_months=None,
                    payment_option="all_upfront",
                    offering_class=None,
                    upfront_usd=None,
                    hourly_usd=None,
                    effective_hourly_usd=float(row["effective_instance_hourly_usd"]),
                    estimate=False,
                    source=cb_src,
                    date="2024",
                    note="Capacity Block reservation fee per instance-hour, paid upfront for the "
                    "booked duration (1-182 days); OS fee extra. Late-2024 price from a "
                    f"third-party mirror. {row['note']}",
                )
            )
            d.sources.add(cb_src)

    # -- GCP ---------------------------------------------------------------------

    def gcp(self) -> None:
        src = "skypilot-v9-gcp"
        gcfg = self.cfg["gcp_machine_types"]
        accels = _csv(self.ref / "gcp_accelerators.csv")
        index: dict[tuple[str, int, str], dict[str, str]] = {}
        for row in accels:
            k = (row["AcceleratorName"], int(row["AcceleratorCount"]), row["Region"])
            if k in index:
                raise ValueError(f"duplicate GCP accelerator row {k}")
            index[k] = row

        for row in _csv(self.ref / "gcp_gpu_host_vms.csv"):
            machine, region = row["InstanceType"], row["Region"]
            key = f"gcp/{region}/{machine}"
            if machine in gcfg["fractional_unknown"]:
                self.rec.add(
                    Q_GCP_G4_FRACTION,
                    key,
                    provider="gcp",
                    field="row",
                    action="dropped_row",
                    reason="G4 machine types with 'less than one GPU' (GKE docs); the GPU "
                    "fraction is not stated in any source consulted, so the offering cannot "
                    "be described without guessing - dropped.",
                    source="gke-autopilot-gpus",
                )
                continue
            m = gcfg["machines"][machine]
            family = next(f for f in gcfg["sources_by_family"] if machine.startswith(f))
            d = _Draft(
                provider="gcp",
                region=region,
                instance_type=machine,
                gpu_model=m["gpu"],
                gpu_count=int(m["count"]),
                vcpus=_num(row["vCPUs"]),
                ram_gb=_num(row["MemoryGiB"]),
                interconnect=self._interconnect("gcp", machine, m["gpu"], int(m["count"])),
                sources={src, *gcfg["sources_by_family"][family]},
            )
            host_od, host_spot = _num(row["Price"]), _num(row["SpotPrice"])
            if m["accelerator"] is None:
                d.gpu_memory_gb = float(m["gpu_memory_gb"])
                d.on_demand_hourly, d.spot_hourly = host_od, host_spot
                d.notes.append("host row carries the full VM price (no accelerator row)")
            else:
                acc = index.get((m["accelerator"], int(m["count"]), region))
                if acc is None:
                    self.rec.add(
                        Q_GCP_NO_ACCEL_ROW,
                        key,
                        provider="gcp",
                        field="on_demand_hourly",
                        action="dropped_value",
                        reason="Host row has no accelerator row with the matching GPU count "
                        "in the same region, so the VM price (host + accelerator) is "
                        "unknown; offering kept unpriced.",
                        source=src,
                    )
                    d.notes.append("no matching accelerator row in this region (unpriced)")
                    self._put(d)
                    continue
                info = ast.literal_eval(acc["GpuInfo"])
                d.gpu_memory_gb = _gb(info["Gpus"][0]["MemoryInfo"]["SizeInMiB"])
                acc_od, acc_spot = _num(acc["Price"]), _num(acc["SpotPrice"])
                if host_od == 0.0:
                    self.rec.add(
                        Q_GCP_A4_HOST_ZERO,
                        key,
                        provider="gcp",
                        field="on_demand_hourly",
                        action="flagged",
                        reason="a4-highgpu-8g host rows are 0.0 in the source; the B200 "
                        "accelerator row carries the whole price (VM = 0.0 + accelerator).",
                        source="pricing-reference-readme",
                    )
                    d.notes.append("host row price is 0.0; accelerator row carries the price")
                d.on_demand_hourly = None if host_od is None or acc_od is None else host_od + acc_od
                d.notes.append(
                    f"price = host {row['Price']} + {m['accelerator']} x{m['count']} "
                    f"accelerator {acc['Price']}"
                )
                if host_spot is None or acc_spot is None:
                    if acc_od is not None:
                        self.rec.add(
                            Q_GCP_SPOT_MISSING,
                            key,
                            provider="gcp",
                            field="spot_hourly",
                            action="flagged",
                            reason="Host or accelerator spot price empty in the source; "
                            "combined spot unknown.",
                            source=src,
                        )
                    d.spot_hourly = None
                elif (acc_od is not None and acc_spot > acc_od) or (
                    host_od is not None and host_spot > host_od
                ):
                    self._drop_spot_above(d, f"accelerator spot {acc_spot} > on-demand {acc_od}")
                    d.spot_hourly = None
                else:
                    d.spot_hourly = host_spot + acc_spot
            if d.on_demand_hourly is None:
                self._empty_price(d, src)
            self._put(d)

        # Accelerator-only rows: TPUs (full price) and N1-attachable GPUs.
        for row in accels:
            name, count, region = (
                row["AcceleratorName"],
                int(row["AcceleratorCount"]),
                row["Region"],
            )
            od, spot = _num(row["Price"]), _num(row["SpotPrice"])
            if name.startswith("tpu-"):
                tensorcores = int(name.rsplit("-", 1)[1])
                d = _Draft(
                    provider="gcp",
                    region=region,
                    instance_type=name,
                    gpu_model=normalize_accelerator_name(name),
                    gpu_count=tensorcores,
                    sources={src, "xpk-system-characteristics"},
                    notes=[f"TPU slice {name}: gpu_count = {tensorcores} TensorCores"],
                )
                key = d.key
                for fld, val in (("on_demand_hourly", od), ("spot_hourly", spot)):
                    if val == 700.0:
                        self.rec.add(
                            Q_TPU_PLACEHOLDER,
                            key,
                            provider="gcp",
                            field="price",
                            action="dropped_value",
                            raw_value="700.0",
                            new_value=None,
                            reason="700.0 is the source's placeholder for TPU v6e in regions "
                            "where it is unavailable - not a price.",
                            source="pricing-reference-readme",
                        )
                        d.notes.append(f"{fld} 700.0 placeholder dropped")
                        val = None
                    setattr(d, fld, val)
                if d.on_demand_hourly is None and od != 700.0:
                    self._empty_price(d, src)
                self._put(d)
            elif name in self.cfg["gcp_machine_types"]["attachable_only"]:
                gpu = normalize_accelerator_name(name)
                info = ast.literal_eval(row["GpuInfo"])
                d = _Draft(
                    provider="gcp",
                    region=region,
                    instance_type=f"accelerator/{name}x{count}",
                    gpu_model=gpu,
                    gpu_count=count,
                    gpu_memory_gb=_gb(info["Gpus"][0]["MemoryInfo"]["SizeInMiB"]),
                    interconnect=self._interconnect("gcp", name, gpu, count),
                    on_demand_hourly=od,
                    spot_hourly=spot,
                    price_scope="accelerator_only",
                    sources={src},
                    notes=["price covers the attached GPUs only; host VM not included"],
                )
                if spot is not None and od is not None and spot > od:
                    self._drop_spot_above(d, f"spot {spot} > on-demand {od}")
                    d.spot_hourly = None
                if od is None:
                    self._empty_price(d, src)
                self._put(d)

    def _drop_spot_above(self, d: _Draft, detail: str) -> None:
        self.rec.add(
            q_spot_not_below(d.provider),
            d.key,
            provider=d.provider,
            field="spot_hourly",
            action="dropped_value",
            reason="Spot price is not below on-demand in the source (single-zone snapshot "
            "or rounding); treated as unknown.",
            source="pricing-reference-readme",
        )
        d.notes.append(f"spot dropped: {detail}")

    # -- Azure -------------------------------------------------------------------

    def azure(self) -> None:
        src = "skypilot-v6-azure"
        fixes = self.cfg["azure_gpu_count_corrections"]
        for row in _csv(self.ref / "azure_gpu_vms.csv"):
            itype, region = row["InstanceType"], row["Region"]
            key = f"azure/{region}/{itype}"
            if itype.endswith("_Promo"):
                self.rec.add(
                    Q_AZURE_PROMO,
                    key,
                    provider="azure",
                    field="row",
                    action="dropped_row",
                    reason="Historical promotional SKU (_Promo) in the stale v6 catalog; not "
                    "orderable at that price today - dropped.",
                    source="pricing-reference-readme",
                )
                continue
            gpu = normalize_accelerator_name(row["AcceleratorName"])
            count = int(row["AcceleratorCount"])
            notes: list[str] = []
            srcs = {src}
            if itype in fixes:
                fix = fixes[itype]
                self.rec.add(
                    Q_AZURE_ND96_COUNT,
                    key,
                    provider="azure",
                    field="gpu_count",
                    action="corrected",
                    raw_value=str(count),
                    new_value=str(fix["count"]),
                    reason="Source says 12 accelerators; Azure's VM size data lists "
                    "Standard_ND96isr_H100_v5 with 8 GPUs.",
                    source=fix["sources"][0],
                )
                notes.append(f"GPU count corrected {count} -> {fix['count']} (Azure VM size data)")
                count = int(fix["count"])
                srcs.update(fix["sources"])
            od, spot = _num(row["Price"]), _num(row["SpotPrice"])
            if gpu == "H100" and od is not None and spot is not None and spot == od:
                self.rec.add(
                    Q_AZURE_H100_SPOT,
                    key,
                    provider="azure",
                    field="spot_hourly",
                    action="dropped_value",
                    reason="H100 v5 rows have spot = on-demand in the source, which is not a "
                    "spot price; spot treated as unknown.",
                    source="pricing-reference-readme",
                )
                notes.append("spot dropped: equals on-demand in the source")
                spot = None
            spec = self.gpu_specs[gpu]
            mem = spec.get("memory_gb")
            if mem is not None:
                self.rec.add(
                    Q_AZURE_NO_MEMORY,
                    key,
                    provider="azure",
                    field="gpu_memory_gb",
                    action="normalized",
                    reason="The Azure catalog has no GPU memory; per-GPU memory is taken "
                    "from the GPU model's sourced nominal memory.",
                    source=None,
                )
                notes.append("gpu_memory_gb from the GPU model spec (not in the Azure catalog)")
                srcs.update(spec.get("sources", []))
            d = _Draft(
                provider="azure",
                region=region,
                instance_type=itype,
                gpu_model=gpu,
                gpu_count=count,
                gpu_memory_gb=float(mem) if mem is not None else None,
                vcpus=_num(row["vCPUs"]),
                ram_gb=_num(row["MemoryGiB"]),
                interconnect=self._interconnect("azure", itype, gpu, count),
                on_demand_hourly=od,
                spot_hourly=spot,
                sources=srcs,
                notes=notes,
            )
            if od is None:
                self._empty_price(d, src)
            self._put(d)

    # -- Lambda ------------------------------------------------------------------

    def lambda_(self) -> None:
        src = "skypilot-v9-lambda"
        for row in _csv(self.ref / "lambda_gpu_vms.csv"):
            itype, region = row["InstanceType"], row["Region"]
            key = f"lambda/{region}/{itype}"
            raw = row["AcceleratorName"]
            gpu = normalize_accelerator_name(
                "H100-PCIe" if raw == "H100" and "pcie" in itype else raw
            )
            count = int(float(row["AcceleratorCount"]))
            info = ast.literal_eval(row["GpuInfo"])
            per_gpu_mib = info["Gpus"][0]["MemoryInfo"]["SizeInMiB"]
            total_mib = info.get("TotalGpuMemoryInMiB")
            notes = [
                (
                    "Lambda lists every type in every region at one price; a row does not "
                    "imply regional availability"
                ),
            ]
            if count > 1 and total_mib == per_gpu_mib:
                self.rec.add(
                    Q_LAMBDA_MEMORY,
                    key,
                    provider="lambda",
                    field="gpu_memory_gb",
                    action="normalized",
                    reason="TotalGpuMemoryInMiB equals the per-GPU size for multi-GPU types; "
                    "gpu_memory_gb is taken per GPU from MemoryInfo.SizeInMiB and the total "
                    "field is ignored.",
                    source="pricing-reference-readme",
                )
                notes.append(f"TotalGpuMemoryInMiB {total_mib} is per-GPU; ignored")
            if gpu != raw:
                notes.append(f"GPU name normalized: {raw!r} -> {gpu}")
            d = _Draft(
                provider="lambda",
                region=region,
                instance_type=itype,
                gpu_model=gpu,
                gpu_count=count,
                gpu_memory_gb=_gb(per_gpu_mib),
                vcpus=_num(row["vCPUs"]),
                ram_gb=_num(row["MemoryGiB"]),
                interconnect=self._interconnect("lambda", itype, gpu, count),
                on_demand_hourly=_num(row["Price"]),
                spot_hourly=_num(row["SpotPrice"]),
                sources={src},
                notes=notes,
            )
            if d.on_demand_hourly is None:
                self._empty_price(d, src)
            self._put(d)

    # -- finishing -----------------------------------------------------------------

    def spot_sanity(self) -> None:
        """Generic rule for every provider: spot >= on-demand is not a spot price."""
        for d in self.drafts.values():
            if (
                d.spot_hourly is not None
                and d.on_demand_hourly is not None
                and round(d.spot_hourly, 6) >= round(d.on_demand_hourly, 6)
            ):
                self._drop_spot_above(
                    d, f"spot {d.spot_hourly:g} >= on-demand {d.on_demand_hourly:g}"
                )
                d.spot_hourly = None

    def regions(self, used: set[tuple[str, str]], source_ids: set[str]) -> list[Region]:
        """Regions from ``regions.yaml``.

        Compliance programs come from ``defaults.<provider>.compliance`` (programs that hold
        in every region of the provider) plus ``regions.<provider>.<region>.compliance``
        (regional programs), each a mapping ``program -> [source ids]``;
        ``compliance_exclude`` removes a provider-level program from one region. Programs
        must be spelled as in :data:`app.requirements.spec.Framework` and each needs at
        least one source from ``sources.yaml``; the sources are added to the region's
        sources and named per program in its note. ``compliance_gaps`` go to
        :attr:`Snapshot.gaps`.
        """
        frameworks = set(get_args(Framework))
        data = _yaml(self.dir / "regions.yaml")
        self.compliance_gaps = [str(g) for g in data.get("compliance_gaps", [])]
        out: list[Region] = []
        for provider, regs in sorted(data["regions"].items()):
            base = data["defaults"][provider]
            for name, attrs in sorted(regs.items()):
                attrs = attrs or {}
                key = f"{provider}/{name}"
                srcs = list(attrs.get("sources", base["sources"]))
                programs: dict[str, set[str]] = {}
                for mapping in (base.get("compliance") or {}, attrs.get("compliance") or {}):
                    for prog, sids in mapping.items():
                        programs.setdefault(prog, set()).update(sids or [])
                for prog in attrs.get("compliance_exclude", []):
                    if programs.pop(prog, None) is None:
                        raise ValueError(f"{key}: compliance_exclude {prog!r} is not tagged")
                for prog, sids in sorted(programs.items()):
                    if prog not in frameworks:
                        raise ValueError(f"{key}: unknown compliance program {prog!r}")
                    if not sids or not sids <= source_ids:
                        raise ValueError(f"{key}: {prog} needs known sources, got {sorted(sids)}")
                    srcs += sids
                note = attrs.get("note", base.get("note"))
                if programs:
                    cites = "; ".join(
                        f"{p} [{', '.join(sorted(s))}]" for p, s in sorted(programs.items())
                    )
                    note = f"{note} Compliance: {cites}." if note else f"Compliance: {cites}."
                out.append(
                    Region(
                        provider=provider,
                        region=name,
                        location=attrs.get("location"),
                        country=attrs.get("country"),
                        jurisdiction=attrs.get("jurisdiction"),
                        compliance_programs=sorted(programs),
                        sources=sorted(set(srcs)),
                        note=note,
                    )
                )
        have = {(r.provider, r.region) for r in out}
        missing = used - have
        if missing:
            raise ValueError(f"regions.yaml lacks {sorted(missing)}")
        return out


def _figure(d: dict[str, Any] | None) -> Figure | None:
    return None if d is None else Figure(**d)


def _servers(data: dict[str, Any]) -> list[PrivateServerSku]:
    out = []
    for s in data["servers"]:
        s = dict(s)
        for k in PrivateServerSku.FIGURE_FIELDS:
            if k in s:
                s[k] = _figure(s[k])
        out.append(PrivateServerSku(**s))
    return sorted(out, key=lambda x: x.id)


def _sites(data: dict[str, Any]) -> list[SiteProfile]:
    out = []
    for s in data["sites"]:
        s = dict(s)
        for k in SiteProfile.FIGURE_FIELDS:
            if k in s:
                s[k] = _figure(s[k])
        out.append(SiteProfile(**s))
    return sorted(out, key=lambda x: x.id)


def build_snapshot(data_dir: Path = DATA_DIR) -> Snapshot:
    """Build the snapshot from ``data_dir`` (pure: reads files, returns a Snapshot)."""
    b = _Builder(data_dir)
    b.aws()
    b.gcp()
    b.azure()
    b.lambda_()
    b.aws_commitments()
    b.spot_sanity()

    offerings = sorted((d.to_offering() for d in b.drafts.values()), key=lambda o: o.key)
    gpus = sorted((GpuModel(**g) for g in b.gpu_specs.values()), key=lambda g: g.name)
    if {g.name for g in gpus} != set(CANONICAL_ACCELERATORS):
        raise ValueError("gpus.yaml and app.catalog.gpus.CANONICAL_ACCELERATORS differ")
    sources = sorted((Source(**s) for s in _yaml(data_dir / "sources.yaml")), key=lambda s: s.id)
    private = _yaml(data_dir / "private_cloud.yaml")
    used_regions = {(o.provider, o.region) for o in offerings}
    regions = b.regions(used_regions, {s.id for s in sources})  # also reads compliance_gaps

    draft = Snapshot(
        snapshot_id="pending",
        created=str(b.cfg["created"]),
        description=" ".join(str(b.cfg["description"]).split()),
        sources=sources,
        gpus=gpus,
        regions=regions,
        offerings=offerings,
        private_servers=_servers(private),
        sites=_sites(private),
        corrections=b.rec.corrections(),
        gaps=[*b.cfg["gaps"], *b.compliance_gaps],
    )
    return draft.model_copy(update={"snapshot_id": compute_snapshot_id(draft)})


# --------------------------------------------------------------------------- SOURCES.md


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_sources_md(snapshot: Snapshot) -> str:
    """SOURCES.md: every source with its date, what cites it, corrections and gaps."""
    cited: dict[str, set[str]] = {s.id: set() for s in snapshot.sources}
    for o in snapshot.offerings:
        for sid in o.sources:
            cited[sid].add(f"offerings:{o.provider}")
        for c in o.commitments:
            cited[c.source].add(f"commitments:{o.provider}")
    for g in snapshot.gpus:
        for sid in g.sources:
            cited[sid].add("gpus")
    for r in snapshot.regions:
        for sid in r.sources:
            cited[sid].add(f"regions:{r.provider}")
    for item in [*snapshot.private_servers, *snapshot.sites]:
        for fig in item.figures().values():
            cited[fig.source].add(f"private:{item.id}")
    for c in snapshot.corrections:
        if c.source:
            cited[c.source].add("corrections")

    counts = snapshot.counts_by_provider()
    lines = [
        "# Price catalog sources",
        "",
        "Generated by `python -m app.catalog.build` from `pricing_data/sources.yaml`; do not edit",
        "by hand. Snapshot `" + snapshot.snapshot_id + "` (created " + snapshot.created + ").",
        "",
        "Every figure in `snapshot.json` names one of these sources by id. `date` is the as-of",
        "date of the data (as precise as the source states; see the note when it had to be",
        "inferred); `retrieved` is when the copy used here was read.",
        "",
        "## Counts",
        "",
        "| provider | offerings | GPU offerings | priced GPU offerings | accelerator-only priced | unpriced | with spot | with commitments |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p, c in counts.items():
        lines.append(
            f"| {p} | {c['offerings']} | {c['gpu_offerings']} | {c['priced_gpu_offerings']} | "
            f"{c['accelerator_only_priced']} | {c['unpriced']} | {c['with_spot']} | {c['with_commitments']} |"
        )
    total = len(snapshot.priced_gpu_offerings())
    lines += [
        "",
        f"Priced GPU offerings in total: **{total}**.",
        "",
        "## Sources",
        "",
        "| id | date | retrieved | cited by | name / address | note |",
        "|---|---|---|---|---|---|",
    ]
    for s in snapshot.sources:
        date = s.date + (f" ({_md_escape(s.date_note)})" if s.date_note else "")
        lines.append(
            f"| `{s.id}` | {date} | {s.retrieved} | {', '.join(sorted(cited[s.id])) or '-'} | "
            f"{_md_escape(s.name)}<br>{_md_escape(s.url)} | {_md_escape(s.note or '')} |"
        )
    lines += [
        "",
        "## Corrections applied by the build",
        "",
        "| id | provider | action | field | rows | reason |",
        "|---|---|---|---|---|---|",
    ]
    for c in snapshot.corrections:
        change = f" ({c.raw_value} -> {c.new_value})" if c.raw_value or c.new_value else ""
        lines.append(
            f"| `{c.id}` | {c.provider} | {c.action}{_md_escape(change)} | {c.field} | "
            f"{len(c.keys)} | {_md_escape(c.reason)} |"
        )
    lines += ["", "## Gaps", ""]
    lines += [f"- {_md_escape(g)}" for g in snapshot.gaps]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def _outputs(snapshot: Snapshot) -> dict[str, str]:
    return {"snapshot.json": snapshot_json(snapshot), "SOURCES.md": render_sources_md(snapshot)}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--check", action="store_true", help="verify committed files are current")
    args = parser.parse_args(list(argv) if argv is not None else None)

    snapshot = build_snapshot(args.data_dir)
    stale = []
    for name, text in _outputs(snapshot).items():
        path = args.data_dir / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} - run python -m app.catalog.build", file=sys.stderr)
        return 1
    counts = snapshot.counts_by_provider()
    print(
        f"{snapshot.snapshot_id}: {len(snapshot.offerings)} offerings, "
        f"{len(snapshot.priced_gpu_offerings())} priced GPU offerings "
        + ", ".join(f"{p}={c['priced_gpu_offerings']}" for p, c in counts.items())
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
