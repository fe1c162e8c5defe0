"""One test per source-data quirk: the correction is applied, noted and recorded."""

from __future__ import annotations

import pytest

from app.catalog import Snapshot
from app.catalog.build import (
    Q_AWS_FRACTIONAL,
    Q_AWS_NAME_MISMATCH,
    Q_AZURE_H100_SPOT,
    Q_AZURE_ND96_COUNT,
    Q_AZURE_PROMO,
    Q_GCP_A4_HOST_ZERO,
    Q_GCP_G4_FRACTION,
    Q_LAMBDA_MEMORY,
    Q_TPU_PLACEHOLDER,
    q_empty_price,
    q_spot_not_below,
)
from app.catalog.schema import Correction

from .conftest import read_reference


def _correction(snapshot: Snapshot, qid: str) -> Correction:
    matches = [c for c in snapshot.corrections if c.id == qid]
    assert len(matches) == 1, qid
    return matches[0]


def test_gcp_a2_highgpu_8g_is_host_plus_accelerator(snapshot: Snapshot) -> None:
    o = snapshot.offering("gcp/us-central1/a2-highgpu-8g")
    assert o.on_demand_hourly == pytest.approx(5.91582 + 23.47126)
    assert o.on_demand_hourly == 29.38708
    assert (o.gpu_model, o.gpu_count, o.gpu_memory_gb) == ("A100-40GB", 8, 40.0)
    assert any("5.91582" in n and "23.47126" in n for n in o.notes)
    assert "pkb-gce-gpu-machine-types" in o.sources


def test_gcp_a4_host_zero_price_comes_from_b200_row(snapshot: Snapshot) -> None:
    acc = {
        r["Region"]: float(r["Price"])
        for r in read_reference("gcp_accelerators.csv")
        if r["AcceleratorName"] == "B200" and r["AcceleratorCount"] == "8"
    }
    c = _correction(snapshot, Q_GCP_A4_HOST_ZERO)
    assert len(c.keys) == len(acc) == 10
    for region, price in acc.items():
        o = snapshot.offering(f"gcp/{region}/a4-highgpu-8g")
        assert o.on_demand_hourly == pytest.approx(price)
        assert o.gpu_model == "B200" and o.gpu_count == 8
        assert any("0.0" in n for n in o.notes)


def test_gcp_g4_full_price_on_host_and_fractional_types_dropped(snapshot: Snapshot) -> None:
    host = {
        (r["InstanceType"], r["Region"]): float(r["Price"])
        for r in read_reference("gcp_gpu_host_vms.csv")
    }
    o = snapshot.offering("gcp/us-central1/g4-standard-48")
    assert o.on_demand_hourly == pytest.approx(host[("g4-standard-48", "us-central1")])
    assert (o.gpu_model, o.gpu_count, o.gpu_memory_gb) == ("RTX-PRO-6000", 1, 96.0)
    assert snapshot.offering("gcp/us-central1/g4-standard-384").gpu_count == 8

    c = _correction(snapshot, Q_GCP_G4_FRACTION)
    assert c.action == "dropped_row" and c.source == "gke-autopilot-gpus"
    assert "gcp/us-central1/g4-standard-12" in c.keys and len(c.keys) == 24
    assert not [
        o
        for o in snapshot.offerings
        if o.instance_type in {"g4-standard-6", "g4-standard-12", "g4-standard-24"}
    ]


def test_gcp_tpu_v6e_700_placeholder_is_not_a_price(snapshot: Snapshot) -> None:
    c = _correction(snapshot, Q_TPU_PLACEHOLDER)
    assert c.raw_value == "700.0" and c.action == "dropped_value"
    assert len(c.keys) == 12
    o = snapshot.offering("gcp/us-central2/tpu-v6e-1")
    assert o.on_demand_hourly is None and o.spot_hourly is None
    assert o.accelerator_kind == "tpu" and o.gpu_model == "TPU-v6e"
    assert any("700.0 placeholder" in n for n in o.notes)
    # real price kept, placeholder spot dropped
    keep = snapshot.offering("gcp/southamerica-west1/tpu-v6e-1")
    assert keep.on_demand_hourly == pytest.approx(2.7) and keep.spot_hourly is None
    assert all(o.on_demand_hourly != 700.0 and o.spot_hourly != 700.0 for o in snapshot.offerings)
    assert o not in snapshot.priced_gpu_offerings()


def test_empty_prices_are_unpriced_and_counted_separately(snapshot: Snapshot) -> None:
    aws = _correction(snapshot, q_empty_price("aws"))
    empty = {
        f"aws/{r['Region']}/{r['InstanceType']}"
        for r in read_reference("aws_gpu_vms.csv")
        if not r["Price"].strip()
    }
    assert set(aws.keys) == empty and len(empty) == 19
    o = snapshot.offering("aws/us-east-2/p5e.48xlarge")
    assert o.on_demand_hourly is None and not o.is_priced
    assert o not in snapshot.priced_gpu_offerings()
    az = _correction(snapshot, q_empty_price("azure"))
    assert "azure/westus/Standard_NV4as_v4" in az.keys
    counts = snapshot.counts_by_provider()
    assert counts["aws"]["unpriced"] == 19 and counts["azure"]["unpriced"] == 4


def test_azure_nd96isr_h100_v5_gpu_count_corrected(snapshot: Snapshot) -> None:
    raw = [
        r
        for r in read_reference("azure_gpu_vms.csv")
        if r["InstanceType"] == "Standard_ND96isr_H100_v5"
    ]
    assert raw and {r["AcceleratorCount"] for r in raw} == {"12"}
    c = _correction(snapshot, Q_AZURE_ND96_COUNT)
    assert (c.raw_value, c.new_value, c.action) == ("12", "8", "corrected")
    assert c.source == "aspire-azure-vm-sizes"
    for r in raw:
        o = snapshot.offering(f"azure/{r['Region']}/Standard_ND96isr_H100_v5")
        assert o.gpu_count == 8
        assert "aspire-azure-vm-sizes" in o.sources
        assert any("12 -> 8" in n for n in o.notes)


def test_azure_h100_v5_spot_equal_to_on_demand_is_unknown(snapshot: Snapshot) -> None:
    c = _correction(snapshot, Q_AZURE_H100_SPOT)
    assert len(c.keys) == 11
    o = snapshot.offering("azure/eastus/Standard_NC40ads_H100_v5")
    assert o.on_demand_hourly == pytest.approx(6.98) and o.spot_hourly is None
    assert any("spot dropped" in n for n in o.notes)
    # other Azure spot prices are kept
    assert snapshot.offering("azure/centralus/Standard_NC12s_v3").spot_hourly == pytest.approx(
        0.788424
    )


def test_azure_promo_skus_dropped(snapshot: Snapshot) -> None:
    c = _correction(snapshot, Q_AZURE_PROMO)
    raw = {
        f"azure/{r['Region']}/{r['InstanceType']}"
        for r in read_reference("azure_gpu_vms.csv")
        if r["InstanceType"].endswith("_Promo")
    }
    assert set(c.keys) == raw and c.action == "dropped_row"
    assert not [o for o in snapshot.offerings if o.instance_type.endswith("_Promo")]


def test_gcp_spot_above_on_demand_dropped(snapshot: Snapshot) -> None:
    bad = [
        r
        for r in read_reference("gcp_accelerators.csv")
        if r["Price"]
        and r["SpotPrice"]
        and r["AcceleratorName"] == "A100-80GB"
        and float(r["SpotPrice"]) > float(r["Price"])
    ]
    assert bad, "reference data should contain the A100-80GB spot > on-demand quirk"
    r = bad[0]
    key = f"gcp/{r['Region']}/a2-ultragpu-{r['AcceleratorCount']}g"
    o = snapshot.offering(key)
    assert o.spot_hourly is None and o.on_demand_hourly is not None
    assert any("spot dropped" in n for n in o.notes)
    assert key in _correction(snapshot, q_spot_not_below("gcp")).keys
    # the generic rule holds everywhere: no spot price at or above on-demand survives
    for off in snapshot.offerings:
        if off.spot_hourly is not None and off.on_demand_hourly is not None:
            assert off.spot_hourly < off.on_demand_hourly, off.key


def test_lambda_total_gpu_memory_is_per_gpu(snapshot: Snapshot) -> None:
    raw = next(
        r for r in read_reference("lambda_gpu_vms.csv") if r["InstanceType"] == "gpu_8x_h100_sxm5"
    )
    assert "'TotalGpuMemoryInMiB': 81920" in raw["GpuInfo"]  # looks like per-GPU for 8 GPUs
    o = snapshot.offering("lambda/us-east-1/gpu_8x_h100_sxm5")
    assert o.gpu_count == 8 and o.gpu_memory_gb == 80.0  # per GPU, from MemoryInfo
    c = _correction(snapshot, Q_LAMBDA_MEMORY)
    assert o.key in c.keys
    assert "lambda/us-east-1/gpu_1x_h100_sxm5" not in c.keys  # single GPU: no quirk
    assert snapshot.offering("lambda/us-east-1/gpu_1x_h100_pcie").gpu_model == "H100-PCIe"


def test_aws_accelerator_name_mismatch_normalized(snapshot: Snapshot) -> None:
    c = _correction(snapshot, Q_AWS_NAME_MISMATCH)
    p3dn = snapshot.offering("aws/us-east-1/p3dn.24xlarge")
    p4de = snapshot.offering("aws/us-east-1/p4de.24xlarge")
    assert (p3dn.gpu_model, p3dn.gpu_memory_gb) == ("V100-32GB", 32.0)
    assert (p4de.gpu_model, p4de.gpu_memory_gb) == ("A100-80GB", 80.0)
    assert p3dn.key in c.keys and p4de.key in c.keys
    assert any("'V100-32GB'" in n and "'V100'" in n for n in p3dn.notes)
    # other raw spellings map to canonical names too
    assert snapshot.offering("aws/us-east-1/p4d.24xlarge").gpu_model == "A100-40GB"
    g7e = [o for o in snapshot.offerings if o.instance_type.startswith("g7e.")]
    assert g7e and {o.gpu_model for o in g7e} == {"RTX-PRO-6000"}
    assert {o.gpu_model for o in snapshot.offerings if o.instance_type.startswith("g5g.")} == {"T4"}


def test_aws_fractional_gpus(snapshot: Snapshot) -> None:
    c = _correction(snapshot, Q_AWS_FRACTIONAL)
    o = snapshot.offering("aws/us-east-1/g6f.large")
    assert (o.gpu_count, o.gpu_fraction, o.effective_gpus) == (1, 0.125, 0.125)
    assert o.key in c.keys


def test_gcp_attachable_gpus_priced_for_accelerator_only(snapshot: Snapshot) -> None:
    t4 = [o for o in snapshot.offerings if o.provider == "gcp" and o.gpu_model == "T4"]
    assert t4 and all(o.price_scope == "accelerator_only" for o in t4)
    assert all(o.on_demand_hourly is not None and not o.is_priced for o in t4)
    assert not set(map(id, t4)) & set(map(id, snapshot.priced_gpu_offerings()))


def test_non_gpu_accelerators_kept_but_not_planned(snapshot: Snapshot) -> None:
    kinds = {o.accelerator_kind for o in snapshot.offerings}
    assert kinds == {"gpu", "tpu", "neuron", "hpu", "fpga"}
    assert all(o.accelerator_kind == "gpu" for o in snapshot.priced_gpu_offerings())
