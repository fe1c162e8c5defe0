"""Fixtures for the price-refresh tests: a small, valid base snapshot built from the schema
classes (independent of the bundled snapshot), recorded provider responses and helpers.

All figures in the base snapshot are test data (a few copied from
``pricing_data/reference``); nothing here is a real price source.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.catalog.schema import (
    CommitmentPrice,
    GpuModel,
    Offering,
    Region,
    Snapshot,
    Source,
    compute_snapshot_id,
    snapshot_json,
)

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
TODAY = date(2026, 11, 24)


def recorded(provider: str, name: str) -> dict[str, Any]:
    """The ``response`` of a recorded fixture file (its ``_note`` is documentation only)."""
    doc = json.loads((RECORDED / provider / name).read_text(encoding="utf-8"))
    assert doc["_note"].startswith("SYNTHETIC TEST FIXTURE")
    return doc["response"]


def _src(id_: str, name: str) -> Source:
    return Source(id=id_, name=name, url=f"test://{id_}", date="2025", retrieved="2026-11-24")


def _gpu(name: str, memory: float) -> GpuModel:
    return GpuModel(name=name, vendor="NVIDIA", memory_gb=memory, sources=["test-gpu-specs"])


def _region(provider: str, region: str, location: str, country: str = "US") -> Region:
    return Region(
        provider=provider,
        region=region,
        location=location,
        country=country,
        jurisdiction="US",
        sources=["test-regions"],
    )


def _off(provider: str, region: str, itype: str, gpu: str, count: int, **kw: Any) -> Offering:
    kind = kw.pop("accelerator_kind", "gpu")
    return Offering(
        provider=provider,
        region=region,
        instance_type=itype,
        accelerator_kind=kind,
        gpu_model=gpu,
        gpu_count=count,
        sources=kw.pop("sources", [f"test-{provider}-catalog"]),
        **kw,
    )


def build_base_snapshot() -> Snapshot:
    ri_1y = CommitmentPrice(
        kind="reserved",
        term_months=12,
        payment_option="no_upfront",
        offering_class="standard",
        upfront_usd=0.0,
        hourly_usd=13.921094,
        effective_hourly_usd=13.921094,
        source="test-aws-ri",
        date="2026-01-21",
    )
    offerings = [
        _off(
            "aws",
            "us-east-1",
            "p4d.24xlarge",
            "A100-40GB",
            8,
            gpu_memory_gb=40,
            vcpus=96,
            ram_gb=1152,
            interconnect="nvlink+efa-400",
            on_demand_hourly=21.957642,
            spot_hourly=8.0087,
            commitments=[ri_1y],
            sources=["test-aws-catalog", "test-aws-ri"],
        ),
        _off(
            "aws",
            "us-east-1",
            "g5.xlarge",
            "A10G",
            1,
            gpu_memory_gb=22.35,
            vcpus=4,
            ram_gb=16,
            interconnect="pcie",
            on_demand_hourly=1.006,
            spot_hourly=0.4328,
            commitments=[
                ri_1y.model_copy(update={"hourly_usd": 0.63378, "effective_hourly_usd": 0.63378})
            ],
        ),
        _off(
            "aws",
            "us-east-1",
            "p5.48xlarge",
            "H100",
            8,
            gpu_memory_gb=80,
            vcpus=192,
            ram_gb=2048,
            interconnect="nvlink+efa-3200",
            on_demand_hourly=55.04,
            commitments=[
                CommitmentPrice(
                    kind="capacity_block",
                    payment_option="all_upfront",
                    effective_hourly_usd=39.33,
                    source="test-aws-cb",
                    date="2024",
                )
            ],
            sources=["test-aws-catalog", "test-aws-cb"],
        ),
        _off(
            "aws",
            "us-east-1",
            "p3.2xlarge",
            "V100-16GB",
            1,
            vcpus=8,
            ram_gb=61,
            on_demand_hourly=3.06,
        ),
        _off(
            "aws",
            "us-west-2",
            "p4d.24xlarge",
            "A100-40GB",
            8,
            gpu_memory_gb=40,
            vcpus=96,
            ram_gb=1152,
            on_demand_hourly=21.95764,
            spot_hourly=10.6942,
        ),
        _off(
            "azure",
            "eastus",
            "Standard_NC24ads_A100_v4",
            "A100-80GB",
            1,
            gpu_memory_gb=80,
            vcpus=24,
            ram_gb=220,
            on_demand_hourly=3.673,
            spot_hourly=0.444433,
        ),
        _off(
            "azure",
            "eastus",
            "Standard_NC4as_T4_v3",
            "T4",
            1,
            vcpus=4,
            ram_gb=28,
            on_demand_hourly=0.526,
            spot_hourly=0.062699,
        ),
        _off(
            "azure",
            "westus2",
            "Standard_NC24ads_A100_v4",
            "A100-80GB",
            1,
            gpu_memory_gb=80,
            vcpus=24,
            ram_gb=220,
            on_demand_hourly=3.673,
            spot_hourly=0.615962,
        ),
        _off(
            "azure",
            "westus2",
            "Standard_ND96asr_v4",
            "A100-40GB",
            8,
            gpu_memory_gb=40,
            vcpus=96,
            ram_gb=900,
            interconnect="nvlink+ib-1600",
            on_demand_hourly=27.197,
            spot_hourly=2.99167,
        ),
        _off(
            "gcp",
            "us-central1",
            "a2-highgpu-8g",
            "A100-40GB",
            8,
            vcpus=96,
            ram_gb=680,
            on_demand_hourly=29.387,
        ),
    ]
    snap = Snapshot(
        snapshot_id="pending",
        created="2026-11-01",
        description="test base snapshot (test data, not real prices)",
        sources=[
            _src("test-aws-catalog", "test AWS catalog"),
            _src("test-aws-ri", "test AWS RI data"),
            _src("test-aws-cb", "test AWS capacity blocks"),
            _src("test-azure-catalog", "test Azure catalog"),
            _src("test-gcp-catalog", "test GCP catalog"),
            _src("test-gpu-specs", "test GPU specs"),
            _src("test-regions", "test regions"),
        ],
        gpus=[
            _gpu("A100-40GB", 40),
            _gpu("A100-80GB", 80),
            _gpu("A10G", 24),
            _gpu("H100", 80),
            _gpu("L40S", 48),
            _gpu("T4", 16),
            _gpu("V100-16GB", 16),
        ],
        regions=[
            _region("aws", "us-east-1", "US East (N. Virginia)"),
            _region("aws", "us-west-2", "US West (Oregon)"),
            _region("azure", "eastus", "US East"),
            _region("azure", "westus2", "US West 2"),
            _region("gcp", "us-central1", "Iowa"),
        ],
        offerings=sorted(offerings, key=lambda o: (o.provider, o.region, o.instance_type)),
    )
    return snap.model_copy(update={"snapshot_id": compute_snapshot_id(snap)})


@pytest.fixture
def base() -> Snapshot:
    return build_base_snapshot()


@pytest.fixture
def base_json(base: Snapshot) -> str:
    return snapshot_json(base)


class SleepRecorder:
    """Injectable ``sleep`` that records the requested waits instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def offerings_of(snap: Snapshot, provider: str, region: str | None = None) -> dict[str, dict]:
    return {
        o.key: o.model_dump(mode="json")
        for o in snap.offerings
        if o.provider == provider and (region is None or o.region == region)
    }
