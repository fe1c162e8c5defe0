"""Shared builders for demand tests."""

from __future__ import annotations

import copy
from typing import Any

from app.planner.demand import GpuPerf
from app.requirements import WorkloadSpec

#: Dense datasheet-style figures (TFLOPs BF16, TFLOPs FP8, GB). Test inputs only.
GPUS: dict[str, GpuPerf] = {
    "H100": GpuPerf(bf16_dense_tflops=989.0, fp8_dense_tflops=1979.0, memory_gb=80),
    "A100-80GB": GpuPerf(bf16_dense_tflops=312.0, fp8_dense_tflops=None, memory_gb=80),
    "A100-40GB": GpuPerf(bf16_dense_tflops=312.0, fp8_dense_tflops=None, memory_gb=40),
    "L4": GpuPerf(bf16_dense_tflops=121.0, fp8_dense_tflops=242.0, memory_gb=24),
}


def make_spec(
    training: list[dict[str, Any]] | None = None,
    inference: list[dict[str, Any]] | None = None,
    *,
    start: str = "2027-01",
    horizon: int = 12,
    cadence: Any = "once",
    **sections: Any,
) -> WorkloadSpec:
    data: dict[str, Any] = {
        "schema_version": "1",
        "name": "test",
        "performance": {
            "training": copy.deepcopy(training or []),
            "inference": copy.deepcopy(inference or []),
        },
        "lifecycle": {
            "start_month": start,
            "horizon_months": horizon,
            "retraining_cadence": cadence,
        },
    }
    data.update(sections)
    return WorkloadSpec.model_validate(data)


def run(name: str = "job", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": name, "reference_gpu": "H100", "deadline_days": 10}
    if "model_params" not in fields:
        base["gpu_hours"] = 1000.0
    base.update(fields)
    return base


def service(name: str = "api", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": name, "reference_gpu": "L4"}
    if "requests_per_second" not in fields:
        base["always_on_gpus"] = 1
    base.update(fields)
    return base
