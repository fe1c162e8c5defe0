"""Small, valid price snapshots built from the schema classes (independent of the bundled one)."""

from __future__ import annotations

from app.catalog.schema import (
    CommitmentPrice,
    GpuModel,
    Offering,
    Region,
    Snapshot,
    Source,
    compute_snapshot_id,
)

SOURCES = [
    Source(id="aws-list", name="AWS EC2 on-demand price list", url="https://aws.amazon.com/ec2/pricing/on-demand/",
           date="2026-10-01", retrieved="2026-11-20"),
    Source(id="aws-ri", name="AWS reserved instance prices", url="github:example/aws-ri@abc:ri.json",
           date="2026-01-21", retrieved="2026-11-20"),
    Source(id="azure-retail", name="Azure Retail Prices API", url="https://prices.azure.com/api/retail/prices",
           date="2026-11-01", retrieved="2026-11-20"),
    Source(id="gcp-sku", name="GCP SKU catalog", url="https://cloud.google.com/compute/gpus-pricing",
           date="2026-09", retrieved="2026-11-20"),
]
GPUS = [
    GpuModel(name="H100", vendor="NVIDIA", memory_gb=80, bf16_dense_tflops=989, sources=["aws-list"]),
    GpuModel(name="A100-80GB", vendor="NVIDIA", memory_gb=80, bf16_dense_tflops=312, sources=["aws-list"]),
    GpuModel(name="L4", vendor="NVIDIA", memory_gb=24, bf16_dense_tflops=121, sources=["aws-list"]),
    GpuModel(name="T4", vendor="NVIDIA", memory_gb=16, fp16_dense_tflops=65, sources=["aws-list"]),
    GpuModel(name="TPU-v5e", kind="tpu", vendor="Google", memory_gb=16, bf16_dense_tflops=197, sources=["gcp-sku"]),
]
REGIONS = [
    Region(provider="aws", region="us-east-1", country="US", jurisdiction="US",
           compliance_programs=["FedRAMP-Moderate", "HIPAA"]),
    Region(provider="aws", region="eu-west-1", country="IE", jurisdiction="EU", compliance_programs=["GDPR", "HIPAA"]),
    Region(provider="azure", region="eastus", country="US", jurisdiction="US",
           compliance_programs=["FedRAMP-High", "HIPAA"]),
    Region(provider="gcp", region="europe-west4", country="NL", jurisdiction="EU", compliance_programs=["GDPR"]),
]


def _ri(hourly: float, months: int = 12, payment: str = "no_upfront", upfront: float = 0.0) -> CommitmentPrice:
    eff = hourly + upfront / (months * 730)
    return CommitmentPrice(kind="reserved", term_months=months, payment_option=payment, offering_class="standard",
                           upfront_usd=upfront, hourly_usd=hourly, effective_hourly_usd=round(eff, 6),
                           source="aws-ri", date="2026-01-21")


def offerings() -> list[Offering]:
    aws = {"provider": "aws", "accelerator_kind": "gpu", "sources": ["aws-list"]}
    return [
        Offering(**aws, region="us-east-1", instance_type="p5.48xlarge", gpu_model="H100", gpu_count=8,
                 gpu_memory_gb=80, vcpus=192, ram_gb=2048, interconnect="nvlink+efa-3200",
                 on_demand_hourly=55.04, spot_hourly=30.1, commitments=[_ri(38.0), _ri(26.0, 36)]),
        Offering(**aws, region="eu-west-1", instance_type="p5.48xlarge", gpu_model="H100", gpu_count=8,
                 gpu_memory_gb=80, vcpus=192, ram_gb=2048, on_demand_hourly=60.5),
        Offering(**aws, region="us-east-1", instance_type="p4de.24xlarge", gpu_model="A100-80GB", gpu_count=8,
                 gpu_memory_gb=80, vcpus=96, ram_gb=1152, on_demand_hourly=27.45, spot_hourly=12.0,
                 commitments=[_ri(19.0)]),
        Offering(**aws, region="us-east-1", instance_type="g6.xlarge", gpu_model="L4", gpu_count=1,
                 gpu_memory_gb=24, vcpus=4, ram_gb=16, on_demand_hourly=0.805, spot_hourly=0.35),
        Offering(**aws, region="eu-west-1", instance_type="g4dn.xlarge", gpu_model="T4", gpu_count=1,
                 gpu_memory_gb=16, vcpus=4, ram_gb=16, on_demand_hourly=0.587, spot_hourly=0.21),
        Offering(**aws, region="us-east-1", instance_type="g4dn.12xlarge", gpu_model="T4", gpu_count=4,
                 gpu_memory_gb=16, vcpus=48, ram_gb=192),  # unpriced
        Offering(provider="azure", region="eastus", instance_type="Standard_ND96isr_H100_v5", accelerator_kind="gpu",
                 gpu_model="H100", gpu_count=8, gpu_memory_gb=80, vcpus=96, ram_gb=1900, on_demand_hourly=98.32,
                 spot_hourly=39.3, sources=["azure-retail"]),
        Offering(provider="azure", region="eastus", instance_type="Standard_NC4as_T4_v3", accelerator_kind="gpu",
                 gpu_model="T4", gpu_count=1, gpu_memory_gb=16, vcpus=4, ram_gb=28, on_demand_hourly=0.526,
                 sources=["azure-retail"]),
        Offering(provider="gcp", region="europe-west4", instance_type="a3-highgpu-8g", accelerator_kind="gpu",
                 gpu_model="H100", gpu_count=8, gpu_memory_gb=80, vcpus=208, ram_gb=1872, on_demand_hourly=88.25,
                 spot_hourly=29.4, sources=["gcp-sku"]),
        Offering(provider="gcp", region="europe-west4", instance_type="ct5lp-hightpu-4t", accelerator_kind="tpu",
                 gpu_model="TPU-v5e", gpu_count=4, gpu_memory_gb=16, on_demand_hourly=4.8, sources=["gcp-sku"]),
    ]


def make_snapshot(offers: list[Offering] | None = None, *, created: str = "2026-11-20",
                  description: str = "Test snapshot") -> Snapshot:
    snap = Snapshot(snapshot_id="", created=created, description=description, sources=SOURCES, gpus=GPUS,
                    regions=REGIONS, offerings=offerings() if offers is None else offers,
                    gaps=["Lambda prices not included."])
    return snap.model_copy(update={"snapshot_id": compute_snapshot_id(snap)})


def big_snapshot(n: int = 1600) -> Snapshot:
    """``n`` offerings (synthetic instance types) for import-speed tests."""
    models = [("H100", 80), ("A100-80GB", 80), ("L4", 24), ("T4", 16)]
    offers = []
    regions = [r for r in REGIONS if r.provider == "aws"]
    for i in range(n):
        gpu, mem = models[i % len(models)]
        count = (1, 2, 4, 8)[(i // 4) % 4]
        od = round(0.5 + (i % 97) * 0.37 * count, 4)
        offers.append(Offering(
            provider="aws", region=regions[i % 2].region, instance_type=f"x{i // 2}.{count}xlarge",
            accelerator_kind="gpu", gpu_model=gpu, gpu_count=count, gpu_memory_gb=mem, vcpus=8 * count,
            ram_gb=32 * count, on_demand_hourly=od, spot_hourly=round(od * 0.4, 4) if i % 3 else None,
            commitments=[_ri(round(od * 0.7, 4))] if i % 5 == 0 else [], sources=["aws-list"],
        ))
    return make_snapshot(offers, description="Big synthetic snapshot")
