"""Schema validation: bad prices, unknown GPUs and dangling references are rejected."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from app.catalog import (
    CommitmentPrice,
    Figure,
    GpuModel,
    Offering,
    Region,
    SiteProfile,
    Snapshot,
    Source,
    normalize_accelerator_name,
)
from app.catalog.gpus import UnknownAcceleratorError


def _offering(**kw: Any) -> Offering:
    base: dict[str, Any] = {
        "provider": "aws",
        "region": "us-east-1",
        "instance_type": "p5.48xlarge",
        "accelerator_kind": "gpu",
        "gpu_model": "H100",
        "gpu_count": 8,
        "on_demand_hourly": 55.04,
        "sources": ["s1"],
    }
    base.update(kw)
    return Offering(**base)


@pytest.mark.parametrize("price", [-1.0, 0.0, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["on_demand_hourly", "spot_hourly"])
def test_offering_rejects_bad_prices(field: str, price: float) -> None:
    with pytest.raises(ValidationError):
        _offering(**{field: price})


def test_offering_accepts_unknown_price_as_none() -> None:
    o = _offering(on_demand_hourly=None, spot_hourly=None)
    assert not o.is_priced and o.key == "aws/us-east-1/p5.48xlarge"


@pytest.mark.parametrize("model", ["H100 80GB", "NVIDIA H100", "MI300X", "A100"])
def test_offering_rejects_non_canonical_gpu_model(model: str) -> None:
    with pytest.raises(ValidationError, match="unknown GPU"):
        _offering(gpu_model=model)


def test_offering_rejects_kind_mismatch_and_zero_gpus() -> None:
    with pytest.raises(ValidationError, match="accelerator_kind"):
        _offering(gpu_model="TPU-v5e")
    with pytest.raises(ValidationError):
        _offering(gpu_count=0)
    with pytest.raises(ValidationError):
        _offering(gpu_fraction=0)
    with pytest.raises(ValidationError):
        _offering(sources=[])


@pytest.mark.parametrize("bad", [-0.5, 0.0, math.nan])
def test_commitment_rejects_bad_prices(bad: float) -> None:
    with pytest.raises(ValidationError):
        CommitmentPrice(
            kind="reserved",
            term_months=12,
            payment_option="no_upfront",
            effective_hourly_usd=bad,
            source="s1",
            date="2026-01-21",
        )
    with pytest.raises(ValidationError):
        CommitmentPrice(
            kind="reserved",
            term_months=12,
            payment_option="no_upfront",
            effective_hourly_usd=1.0,
            upfront_usd=-1.0,
            source="s1",
            date="2026",
        )


def test_commitment_needs_a_term_except_capacity_blocks() -> None:
    with pytest.raises(ValidationError, match="term_months"):
        CommitmentPrice(
            kind="reserved",
            payment_option="no_upfront",
            effective_hourly_usd=1.0,
            source="s1",
            date="2026",
        )
    cb = CommitmentPrice(
        kind="capacity_block",
        payment_option="all_upfront",
        effective_hourly_usd=39.33,
        source="s1",
        date="2024",
    )
    assert cb.term_months is None


def test_figure_validation() -> None:
    with pytest.raises(ValidationError):
        Figure(value=math.nan, unit="USD", source="s1", date="2024")
    with pytest.raises(ValidationError):
        Figure(value=-1, unit="USD", source="s1", date="2024")
    with pytest.raises(ValidationError):
        Figure(value=5, low=6, unit="USD", source="s1", date="2024")
    with pytest.raises(ValidationError):
        Figure(value=5, high=4, unit="USD", source="s1", date="2024")
    with pytest.raises(ValidationError):
        Figure(value=5, unit="USD", source="s1", date="May 2024")
    assert Figure(value=7.5, low=6.5, high=8.5, unit="kW", source="s1", date="2024").is_range


def test_site_money_units_must_match_currency() -> None:
    pue = Figure(value=1.5, unit="ratio", source="s1", date="2024")
    with pytest.raises(ValidationError, match="not in EUR"):
        SiteProfile(
            id="x",
            name="x",
            country="DE",
            jurisdiction="EU",
            currency="EUR",
            pue=pue,
            electricity_per_kwh=Figure(value=0.1, unit="USD per kWh", source="s1", date="2024"),
        )


def test_gpu_model_rejects_non_positive_specs() -> None:
    with pytest.raises(ValidationError):
        GpuModel(name="H100", vendor="NVIDIA", bf16_dense_tflops=-1)


def _snapshot(**kw: Any) -> Snapshot:
    base: dict[str, Any] = {
        "snapshot_id": "x",
        "created": "2026-11-24",
        "sources": [Source(id="s1", name="n", url="u", date="2025", retrieved="2026-11-24")],
        "gpus": [GpuModel(name="H100", vendor="NVIDIA", sources=["s1"])],
        "regions": [
            Region(
                provider="aws", region="us-east-1", country="US", jurisdiction="US", sources=["s1"]
            )
        ],
        "offerings": [_offering()],
    }
    base.update(kw)
    return Snapshot(**base)


def test_snapshot_cross_references() -> None:
    assert _snapshot().priced_gpu_offerings()
    with pytest.raises(ValidationError, match="unknown source id"):
        _snapshot(offerings=[_offering(sources=["nope"])])
    with pytest.raises(ValidationError, match="not in snapshot.gpus"):
        _snapshot(offerings=[_offering(gpu_model="A100-80GB")])
    with pytest.raises(ValidationError, match="duplicate offering key"):
        _snapshot(offerings=[_offering(), _offering()])
    with pytest.raises(ValidationError, match="region not in snapshot.regions"):
        _snapshot(offerings=[_offering(region="eu-west-1")])
    with pytest.raises(ValidationError):
        _snapshot(created="24/11/2026")


def test_region_country_code_format() -> None:
    with pytest.raises(ValidationError):
        Region(provider="aws", region="x", country="USA", jurisdiction="US")
    assert Region(provider="lambda", region="us-east-1").country is None


def test_normalize_accelerator_names() -> None:
    assert normalize_accelerator_name("V100-32GB") == "V100-32GB"
    assert normalize_accelerator_name("V100") == "V100-16GB"
    assert normalize_accelerator_name("A100") == "A100-40GB"
    assert normalize_accelerator_name("a100-80gb") == "A100-80GB"
    assert normalize_accelerator_name("T4g") == "T4"
    assert normalize_accelerator_name("RTX PRO Server 6000") == "RTX-PRO-6000"
    assert normalize_accelerator_name("H100-MEGA") == "H100"
    assert normalize_accelerator_name("tpu-v5litepod-8") == "TPU-v5e"
    assert normalize_accelerator_name("Radeon MI25") == "Radeon-Instinct-MI25"
    with pytest.raises(UnknownAcceleratorError):
        normalize_accelerator_name("MI300X")
