"""DemandProfile: arithmetic, time model, classes, conversion, serialisation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from app.planner.demand import (
    DemandProfile,
    GpuPerf,
    IneligibleGpuError,
    UnknownGpuError,
    build_demand,
    calendar_hours,
    training_gpu_hours,
)
from app.requirements import load_example
from app.requirements.examples import list_examples

from .helpers import GPUS, make_spec, run, service

# --------------------------------------------------------------------------- 6·N·D


def test_six_n_d_hand_checked() -> None:
    # 6 * 7e9 * 2e12 = 8.4e22 FLOPs; H100 dense BF16 989 TFLOPs at 40 % MFU
    # = 3.956e14 FLOP/s -> 2.123357e8 s -> 58,982.1 GPU-hours.
    spec = make_spec([run(model_params=7e9, training_tokens=2e12, deadline_days=60)], horizon=3)
    hours = training_gpu_hours(spec.performance.training[0], GPUS["H100"])
    assert hours == pytest.approx(8.4e22 / (989e12 * 0.40) / 3600)
    assert hours == pytest.approx(58_982.1, abs=0.1)
    profile = build_demand(spec, GPUS)
    [cls] = profile.classes
    assert cls.total_gpu_hours == pytest.approx(hours)
    # deadline 60 days = 1440 h -> ceil(58982.8 / 1440) = 41 GPUs
    assert profile.training_instances[0].concurrent_gpus == 41 == cls.max_peak_gpus


def test_fp8_uses_fp8_peak_and_custom_utilization() -> None:
    bf16 = make_spec([run(model_params=1e9, training_tokens=1e11)])
    fp8 = make_spec([run(model_params=1e9, training_tokens=1e11, precision="fp8", utilization=0.2)])
    h_bf16 = training_gpu_hours(bf16.performance.training[0], GPUS["H100"])
    h_fp8 = training_gpu_hours(fp8.performance.training[0], GPUS["H100"])
    assert h_fp8 == pytest.approx(6e20 / (1979e12 * 0.2) / 3600)
    assert h_bf16 == pytest.approx(6e20 / (989e12 * 0.4) / 3600)
    with pytest.raises(IneligibleGpuError, match="fp8"):
        build_demand(make_spec([run(reference_gpu="A100-80GB", precision="fp8")]), GPUS)


# --------------------------------------------------------------------------- deadlines


def test_deadline_sets_concurrency() -> None:
    profile = build_demand(make_spec([run(gpu_hours=1000, deadline_days=10)]), GPUS)
    [inst] = profile.training_instances
    assert inst.concurrent_gpus == math.ceil(1000 / 240) == 5
    assert inst.duration_hours == pytest.approx(200)
    assert profile.classes[0].peak_gpus[:2] == [5, 0]
    assert profile.classes[0].gpu_hours[0] == pytest.approx(1000)


def test_exact_division_does_not_round_up_float_noise() -> None:
    profile = build_demand(make_spec([run(gpu_hours=480, deadline_days=10)]), GPUS)
    assert profile.training_instances[0].concurrent_gpus == 2


def test_run_spanning_months_splits_hours() -> None:
    # 1 GPU for 45 days from 1 January: 744 h in January, 336 h in February.
    profile = build_demand(make_spec([run(gpu_hours=45 * 24, deadline_days=45)]), GPUS)
    c = profile.classes[0]
    assert c.gpu_hours[:3] == pytest.approx([744, 336, 0])
    assert c.peak_gpus[:3] == [1, 1, 0]


def test_deadline_capped_by_next_run_and_horizon() -> None:
    spec = make_spec([run(gpu_hours=1000, deadline_days=60)], cadence="monthly", horizon=3)
    profile = build_demand(spec, GPUS)
    assert [t.deadline_capped_by for t in profile.training_instances] == [
        "next_run",
        "next_run",
        "horizon_end",
    ]
    jan, feb, mar = profile.training_instances
    assert jan.deadline_hours == 744 and feb.deadline_hours == 672 and mar.deadline_hours == 744
    assert feb.concurrent_gpus == math.ceil(1000 / 672) == 2
    assert profile.classes[0].peak_gpus == [2, 2, 2]  # never two instances at once
    assert len(profile.warnings) == 3


def test_multi_gpu_without_fabric_warns() -> None:
    profile = build_demand(make_spec([run(gpu_hours=10_000, deadline_days=10)]), GPUS)
    assert any("interconnect is 'none'" in w for w in profile.warnings)
    profile = build_demand(
        make_spec([run(gpu_hours=10_000, deadline_days=10, interconnect="multi_node")]), GPUS
    )
    assert profile.warnings == []


# --------------------------------------------------------------------------- cadence


@pytest.mark.parametrize(
    ("cadence", "months"),
    [
        ("once", [0]),
        ("quarterly", [0, 3, 6, 9]),
        ("monthly", list(range(12))),
        ("yearly", [0]),
        ({"kind": "every_n_months", "n": 5}, [0, 5, 10]),
    ],
)
def test_cadence_repeats_runs(cadence: object, months: list[int]) -> None:
    profile = build_demand(make_spec([run(deadline_days=5)], cadence=cadence, horizon=12), GPUS)
    assert [profile.months.index(t.start_month) for t in profile.training_instances] == months
    assert profile.classes[0].total_gpu_hours == pytest.approx(1000 * len(months))
    assert [i for i, h in enumerate(profile.classes[0].gpu_hours) if h > 0] == months


def test_run_start_month_and_override() -> None:
    spec = make_spec(
        [
            run("a", deadline_days=5),
            run("b", deadline_days=5, start_month="2027-03", retraining_cadence="yearly"),
        ],
        cadence="quarterly",
        horizon=24,
    )
    profile = build_demand(spec, GPUS)
    starts = {(t.run, t.start_month) for t in profile.training_instances}
    assert {("b", "2027-03"), ("b", "2028-03")} <= starts
    assert sum(1 for t in profile.training_instances if t.run == "a") == 8
    assert sum(1 for t in profile.training_instances if t.run == "b") == 2


# --------------------------------------------------------------------------- inference


def test_calendar_hours() -> None:
    assert calendar_hours("2028-01", 3) == [744, 696, 744]  # 2028 is a leap year
    assert sum(calendar_hours("2027-01", 12)) == 8760


def test_always_on_inference_uses_calendar_hours() -> None:
    profile = build_demand(
        make_spec(inference=[service(always_on_gpus=2)], start="2028-01", horizon=3), GPUS
    )
    c = profile.classes[0]
    assert c.gpu_hours == [1488, 1392, 1488]
    assert c.peak_gpus == [2, 2, 2]
    assert profile.hours_in_month == [744, 696, 744]


def test_request_rate_sizing() -> None:
    profile = build_demand(
        make_spec(inference=[service(requests_per_second=10, per_gpu_rps=3)], horizon=1), GPUS
    )
    assert profile.classes[0].peak_gpus == [4]


def test_growth_compounds_monthly() -> None:
    spec = make_spec(
        inference=[service(always_on_gpus=4)],
        horizon=25,
        scale={"inference_growth_pct_per_year": 100},
    )
    peaks = build_demand(spec, GPUS).classes[0].peak_gpus
    assert peaks[0] == 4
    assert peaks[6] == math.ceil(4 * 2**0.5) == 6
    assert peaks[12] == 8 and peaks[24] == 16
    assert peaks == sorted(peaks)


def test_growth_counts_from_go_live() -> None:
    spec = make_spec(
        inference=[service(always_on_gpus=4, start_month="2027-07")],
        horizon=19,
        scale={"inference_growth_pct_per_year": 100},
    )
    peaks = build_demand(spec, GPUS).classes[0].peak_gpus
    assert peaks[:6] == [0] * 6
    assert peaks[6] == 4 and peaks[18] == 8


def test_seasonality_peak_months_and_multipliers() -> None:
    spec = make_spec(
        inference=[service(always_on_gpus=10)],
        horizon=12,
        scale={"seasonality": {"peak_months": [11, 12], "peak_factor": 1.5}},
    )
    assert build_demand(spec, GPUS).classes[0].peak_gpus == [10] * 10 + [15, 15]
    spec = make_spec(
        inference=[service(always_on_gpus=10)],
        horizon=12,
        start="2027-06",
        scale={"seasonality": {"multipliers": {1: 0.5, 7: 2.0}}},
    )
    peaks = build_demand(spec, GPUS).classes[0].peak_gpus
    assert peaks[1] == 20 and peaks[7] == 5 and peaks[0] == 10


def test_scale_down_and_retirement() -> None:
    spec = make_spec(
        [run(deadline_days=5)],
        [service(always_on_gpus=4)],
        cadence="monthly",
        horizon=12,
        scale={"scale_down": [{"from_month": "2027-04", "factor": 0.5}], "retire_month": "2027-07"},
    )
    profile = build_demand(spec, GPUS)
    infer = next(c for c in profile.classes if c.demand_class.latency_bound)
    train = next(c for c in profile.classes if not c.demand_class.latency_bound)
    assert infer.peak_gpus == [4, 4, 4, 2, 2, 2] + [0] * 6
    assert train.peak_gpus[6:] == [0] * 6 and all(p > 0 for p in train.peak_gpus[:6])
    assert len(profile.training_instances) == 6


def test_retirement_caps_a_running_instance() -> None:
    spec = make_spec(
        [run(gpu_hours=2000, deadline_days=60)], horizon=6, scale={"retire_month": "2027-02"}
    )
    [inst] = build_demand(spec, GPUS).training_instances
    assert inst.deadline_capped_by == "retirement" and inst.deadline_hours == 744
    assert inst.concurrent_gpus == math.ceil(2000 / 744)


def test_batch_duty_cycle_and_interruptible() -> None:
    spec = make_spec(
        inference=[service(always_on_gpus=4, mode="batch", duty_cycle=0.25, interruptible=True)],
        horizon=1,
    )
    [c] = build_demand(spec, GPUS).classes
    assert c.peak_gpus == [4] and c.gpu_hours == [4 * 744 * 0.25]
    assert c.demand_class.interruptible and not c.demand_class.latency_bound


# --------------------------------------------------------------------------- classes


def test_same_requirements_merge_into_one_class() -> None:
    spec = make_spec([run("a", deadline_days=5), run("b", deadline_days=5)])
    profile = build_demand(spec, GPUS)
    [c] = profile.classes
    assert c.demand_class.sources == ["training:a", "training:b"]
    assert c.peak_gpus[0] == 2 * math.ceil(1000 / 120)
    assert c.total_gpu_hours == pytest.approx(2000)


def test_batch_inference_can_share_a_class_with_training() -> None:
    spec = make_spec(
        [run("t", reference_gpu="L4", deadline_days=30)],
        [service("b", mode="batch", always_on_gpus=1)],
        horizon=1,
    )
    [c] = build_demand(spec, GPUS).classes
    assert c.demand_class.sources == ["inference:b", "training:t"]


def test_different_requirements_give_distinct_sorted_ids() -> None:
    runs = [
        run("a", min_gpu_memory_gb=80),
        run("b", min_gpu_memory_gb=40),
        run("c", checkpointable=True),
        run("d", interconnect="multi_node"),
        run("e", reference_gpu="A100-80GB"),
    ]
    profile = build_demand(make_spec(runs, [service()]), GPUS)
    ids = profile.class_ids()
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert "h100.bf16.mem80.nofabric.no-spot.throughput" in ids
    assert "l4.bf16.mem0.nofabric.no-spot.latency" in ids
    assert "h100.bf16.mem0.nofabric.spot-ok.throughput" in ids
    # declaration order does not change the result
    again = build_demand(make_spec(list(reversed(runs)), [service()]), GPUS)
    assert again.class_ids() == ids
    assert [c.total_gpu_hours for c in again.classes] == [
        c.total_gpu_hours for c in profile.classes
    ]


def test_ids_stay_unique_when_gpu_names_slug_alike() -> None:
    gpus = dict(GPUS, h100=GPUS["H100"])
    profile = build_demand(make_spec([run("a"), run("b", reference_gpu="h100")]), gpus)
    assert len(set(profile.class_ids())) == 2


def test_compliance_is_carried_by_every_class() -> None:
    spec = make_spec(
        [run()],
        [service()],
        compliance={"frameworks": ["GDPR", "ISO27001"], "dedicated_tenancy": True},
    )
    for c in build_demand(spec, GPUS).classes:
        dc = c.demand_class
        assert dc.allowed_jurisdictions == ["EU", "NO"]
        assert dc.frameworks_required == ["ISO27001"]
        assert dc.dedicated_tenancy and not dc.private_only
        assert dc.allows_region("aws/eu-central-1", "EU", ["ISO27001", "SOC2"])
        assert not dc.allows_region("aws/us-east-1", "US", ["ISO27001"])
        assert not dc.allows_region("aws/eu-west-1", "EU", ["SOC2"])
        assert dc.allows_private_site("EU") and not dc.allows_private_site("US")


def test_region_filters() -> None:
    spec = make_spec(
        [run()],
        compliance={"frameworks": ["FedRAMP-Moderate"], "allowed_regions": ["aws/us-gov-west-1"]},
    )
    dc = build_demand(spec, GPUS).classes[0].demand_class
    assert dc.allows_region("aws/us-gov-west-1", "US", ["FedRAMP-High"])  # High covers Moderate
    assert not dc.allows_region("aws/us-east-1", "US", ["FedRAMP-Moderate"])
    spec = make_spec([run()], compliance={"private_only": True}, cost={"capex_allowed": True})
    dc = build_demand(spec, GPUS).classes[0].demand_class
    assert not dc.allows_region("aws/us-east-1", "US", []) and dc.allows_private_site("US")


# --------------------------------------------------------------------------- conversion


def test_gpu_hours_on_other_models() -> None:
    profile = build_demand(
        make_spec([run(gpu_hours=989, deadline_days=30, min_gpu_memory_gb=40)], horizon=1), GPUS
    )
    c = profile.classes[0]
    assert c.gpu_hours_on(GPUS["A100-80GB"]) == pytest.approx([989 * 989 / 312])
    assert profile.gpu_hours_on(c.id, GPUS["A100-40GB"]) == pytest.approx([989 * 989 / 312])
    assert c.peak_gpus == [2]
    assert c.peak_gpus_on(GPUS["A100-80GB"]) == [math.ceil(2 * 989 / 312)]
    assert c.demand_class.gpu_hours_on(GPUS["H100"], 10) == pytest.approx(10)
    with pytest.raises(IneligibleGpuError, match="GB"):
        c.gpu_hours_on(GPUS["L4"])  # 24 GB < 40 GB
    assert not c.demand_class.can_run_on(GPUS["L4"])
    assert c.demand_class.can_run_on(GPUS["A100-40GB"])


def test_catalog_like_objects_are_accepted() -> None:
    # The catalog's GpuModel has optional fields and an FP16 fallback for old GPUs.
    v100 = SimpleNamespace(
        bf16_dense_tflops=None, fp16_dense_tflops=125.0, fp8_dense_tflops=None, memory_gb=32.0
    )
    gpus = {
        "V100-32GB": v100,
        "H100": SimpleNamespace(bf16_dense_tflops=989.0, fp8_dense_tflops=1979.0, memory_gb=80.0),
    }
    profile = build_demand(make_spec([run(reference_gpu="V100-32GB", gpu_hours=125)]), gpus)
    assert profile.classes[0].demand_class.reference_tflops == 125.0
    assert profile.classes[0].gpu_hours_on(gpus["H100"])[0] == pytest.approx(125 * 125 / 989)
    assert GpuPerf.of(v100) == GpuPerf(125.0, None, 32.0)


def test_reference_gpu_errors() -> None:
    with pytest.raises(UnknownGpuError, match=r"performance\.training\[0\]\.reference_gpu.*'B200'"):
        build_demand(make_spec([run(reference_gpu="B200")]), GPUS)
    with pytest.raises(UnknownGpuError, match=r"performance\.inference\[0\]"):
        build_demand(make_spec(inference=[service(reference_gpu="T4")]), GPUS)
    with pytest.raises(IneligibleGpuError, match="less than min_gpu_memory_gb"):
        build_demand(make_spec([run(reference_gpu="L4", min_gpu_memory_gb=80)]), GPUS)
    with pytest.raises(ValueError):
        GpuPerf(bf16_dense_tflops=0)


# --------------------------------------------------------------------------- output


def test_json_round_trip_and_totals() -> None:
    spec = make_spec([run(), run("f8", precision="fp8")], [service()], cadence="quarterly")
    profile = build_demand(spec, GPUS)
    data = profile.model_dump(mode="json")
    assert data["total_gpu_hours_by_reference_gpu"] == {
        "H100": 4000.0,
        "H100 (fp8)": 4000.0,
        "L4": 8760.0,
    }
    assert all("total_gpu_hours" in c and "max_peak_gpus" in c for c in data["classes"])
    again = DemandProfile.model_validate_json(profile.model_dump_json())
    assert again == profile
    assert build_demand(spec, GPUS).model_dump_json() == profile.model_dump_json()  # deterministic


def test_describe_is_readable() -> None:
    profile = build_demand(
        make_spec([run(deadline_days=60)], [service()], cadence="monthly", horizon=3), GPUS
    )
    text = profile.describe()
    for c in profile.classes:
        assert c.id in text
    assert "2027-03" in text and "3 runs 2027-01..2027-03" not in text  # capped instances differ
    assert "Warnings:" in text and "capped" in text
    assert text.count("\n") < 40


@pytest.mark.parametrize("name", [e.name for e in list_examples()])
def test_examples_build(name: str) -> None:
    gpus = dict(GPUS, L40S=GpuPerf(bf16_dense_tflops=362.0, fp8_dense_tflops=733.0, memory_gb=48))
    profile = build_demand(load_example(name), gpus)
    assert profile.classes and profile.describe()
    for c in profile.classes:
        assert len(c.gpu_hours) == len(profile.months) == len(c.peak_gpus)
        for h, p, cap in zip(c.gpu_hours, c.peak_gpus, profile.hours_in_month, strict=True):
            assert h <= p * cap + 1e-6


def test_hipaa_example_numbers() -> None:
    gpus = dict(GPUS, L40S=GpuPerf(bf16_dense_tflops=362.0, fp8_dense_tflops=733.0, memory_gb=48))
    profile = build_demand(load_example("llm-finetune-hipaa"), gpus)
    assert len(profile.training_instances) == 8  # quarterly over 24 months
    inst = profile.training_instances[0]
    assert inst.gpu_hours == pytest.approx(5.76e20 / (989e12 * 0.35) / 3600)
    assert inst.concurrent_gpus == 5
    api = next(c for c in profile.classes if c.demand_class.latency_bound)
    assert api.peak_gpus[0] == 0 and api.peak_gpus[1] == 3  # go-live February
    assert api.demand_class.frameworks_required == ["HIPAA", "SOC2"]
    assert api.demand_class.allowed_jurisdictions == ["US"]
