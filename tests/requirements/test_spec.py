"""WorkloadSpec validation: field paths, strictness, cross-field rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from app.requirements import SpecError, WorkloadSpec, load_spec, spec_json_schema
from app.requirements.spec import RetrainingCadence, add_months, format_loc, month_index

BASE: dict[str, Any] = {
    "schema_version": "1",
    "name": "demo",
    "performance": {
        "training": [
            {"name": "train", "reference_gpu": "H100", "gpu_hours": 100, "deadline_days": 2},
        ],
        "inference": [
            {"name": "api", "reference_gpu": "L4", "always_on_gpus": 2},
        ],
    },
    "lifecycle": {"start_month": "2027-01", "horizon_months": 12},
}


def spec_dict(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        data[key] = value
    return data


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    """path -> message for every validation error."""
    with pytest.raises(ValidationError) as info:
        WorkloadSpec.model_validate(data)
    return {format_loc(e["loc"]): e["msg"] for e in info.value.errors()}


# --------------------------------------------------------------------------- basics


def test_minimal_spec_defaults() -> None:
    spec = WorkloadSpec.model_validate(BASE)
    assert spec.cost.discount_rate_annual == 0.08
    assert spec.cost.currency == "USD"
    assert spec.performance.training[0].utilization is None
    assert spec.performance.training[0].effective_utilization == 0.40
    assert spec.lifecycle.retraining_cadence.kind == "once"
    assert spec.compliance.effective_jurisdictions() == []
    assert spec.lifecycle.end_month == "2027-12"
    assert spec.slug() == "demo"


def test_schema_version_literal() -> None:
    assert WorkloadSpec.model_validate(spec_dict(schema_version=1)).schema_version == "1"
    assert "schema_version" in errors_of(spec_dict(schema_version="2"))
    data = spec_dict()
    del data["schema_version"]
    assert "schema_version" in errors_of(data)


def test_horizon_out_of_range_names_the_path() -> None:
    errs = errors_of(spec_dict(lifecycle={"start_month": "2027-01", "horizon_months": 61}))
    assert list(errs) == ["lifecycle.horizon_months"]
    errs = errors_of(spec_dict(lifecycle={"start_month": "2027-13", "horizon_months": 0}))
    assert set(errs) == {"lifecycle.horizon_months", "lifecycle.start_month"}


def test_spec_error_message_lists_paths() -> None:
    text = (
        WorkloadSpec.model_validate(BASE)
        .to_yaml()
        .replace("horizon_months: 12", "horizon_months: 99")
    )
    with pytest.raises(SpecError) as info:
        WorkloadSpec.from_yaml(text, source="demo.yaml")
    assert info.value.paths == ["lifecycle.horizon_months"]
    assert "demo.yaml" in str(info.value)
    assert "lifecycle.horizon_months: Input should be less than or equal to 60" in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["lifecycle"].update(horizon=3), "lifecycle.horizon"),
        (
            lambda d: d["performance"]["training"][0].update(gpu_houres=3),
            "performance.training[0].gpu_houres",
        ),
        (lambda d: d.update(cost={"currency": "EUR"}), "cost.currency"),
        (lambda d: d.update(compliance={"frameworks": ["HIPPA"]}), "compliance.frameworks[0]"),
    ],
)
def test_unknown_fields_and_values_are_refused(mutate: Any, path: str) -> None:
    data = spec_dict()
    mutate(data)
    assert path in errors_of(data)


def test_identifiers_are_constrained_but_free_text_is_not() -> None:
    data = spec_dict()
    data["performance"]["training"][0]["name"] = "Train Job"
    errs = errors_of(data)
    assert "performance.training[0].name" in errs
    assert "lowercase identifier" in errs["performance.training[0].name"]
    for bad in ("-x", "x-", "x_y", "a" * 64, "1x"):
        data["performance"]["training"][0]["name"] = bad
        assert "performance.training[0].name" in errors_of(data)
    free = spec_dict(
        name="Ünïcode <script>alert('x')</script> \"quoted\" ${var} 🚀",
        description="anything: {{ jinja }} $(shell) `tick`\n\tmore",
    )
    spec = WorkloadSpec.model_validate(free)
    assert WorkloadSpec.from_yaml(spec.to_yaml()) == spec
    assert spec.slug() == "n-code-script-alert-x-script-quoted-var"
    assert WorkloadSpec.model_validate(spec_dict(name="2027 plan")).slug() == "w-2027-plan"
    assert "name" in errors_of(spec_dict(name="   "))


def test_gpu_and_region_names() -> None:
    data = spec_dict()
    data["performance"]["training"][0]["reference_gpu"] = "H100 SXM"
    assert "performance.training[0].reference_gpu" in errors_of(data)
    errs = errors_of(spec_dict(compliance={"allowed_regions": ["eu-central-1"]}))
    assert "compliance.allowed_regions[0]" in errs


# --------------------------------------------------------------------------- performance


def test_training_run_sizing_is_either_or() -> None:
    data = spec_dict()
    run = data["performance"]["training"][0]
    run.update(model_params=7e9, training_tokens=1e11)
    assert "performance.training[0].gpu_hours" in errors_of(data)
    del run["gpu_hours"]
    spec = WorkloadSpec.model_validate(data)
    assert spec.performance.training[0].training_flops == pytest.approx(6 * 7e9 * 1e11)
    del run["training_tokens"]
    assert "performance.training[0].training_tokens" in errors_of(data)
    del run["model_params"]
    assert "performance.training[0].gpu_hours" in errors_of(data)


def test_utilization_only_with_flops_sizing() -> None:
    data = spec_dict()
    data["performance"]["training"][0]["utilization"] = 0.5
    assert "performance.training[0].utilization" in errors_of(data)
    data["performance"]["training"][0]["utilization"] = 0
    assert "performance.training[0].utilization" in errors_of(data)


def test_interconnect_accepts_bool() -> None:
    data = spec_dict()
    data["performance"]["training"][0]["interconnect"] = True
    assert WorkloadSpec.model_validate(data).performance.training[0].interconnect == "multi_node"


def test_inference_sizing_and_mode_rules() -> None:
    data = spec_dict()
    svc = data["performance"]["inference"][0]
    svc["requests_per_second"] = 10
    assert "performance.inference[0].always_on_gpus" in errors_of(data)
    del svc["always_on_gpus"]
    assert "performance.inference[0].per_gpu_rps" in errors_of(data)
    svc["per_gpu_rps"] = 4
    assert WorkloadSpec.model_validate(data).performance.inference[0].base_gpus == 2.5
    svc["interruptible"] = True
    assert "performance.inference[0].interruptible" in errors_of(data)
    svc["interruptible"] = False
    svc["duty_cycle"] = 0.5
    assert "performance.inference[0].duty_cycle" in errors_of(data)
    svc["mode"] = "batch"
    svc["interruptible"] = True
    WorkloadSpec.model_validate(data)


def test_needs_some_work_and_unique_names() -> None:
    assert "performance.training" in errors_of(spec_dict(performance={}))
    data = spec_dict()
    data["performance"]["inference"][0]["name"] = "train"
    assert "performance.inference[0].name" in errors_of(data)
    data = spec_dict()
    data["performance"]["training"].append(dict(data["performance"]["training"][0]))
    assert "performance.training[1].name" in errors_of(data)


# --------------------------------------------------------------------------- lifecycle / scale


def test_cadence_shorthand_and_n() -> None:
    assert RetrainingCadence.model_validate("quarterly").period_months == 3
    assert RetrainingCadence(kind="every_n_months", n=5).run_months(1, 12) == [1, 6, 11]
    assert RetrainingCadence(kind="once").run_months(4, 12) == [4]
    assert RetrainingCadence(kind="monthly").run_months(12, 12) == []
    lc = {
        "start_month": "2027-01",
        "horizon_months": 12,
        "retraining_cadence": {"kind": "every_n_months"},
    }
    assert "lifecycle.retraining_cadence.n" in errors_of(spec_dict(lifecycle=lc))
    lc["retraining_cadence"] = {"kind": "monthly", "n": 2}
    assert "lifecycle.retraining_cadence.n" in errors_of(spec_dict(lifecycle=lc))


def test_month_helpers() -> None:
    assert add_months("2026-11", 2) == "2027-01"
    assert add_months("2027-01", -1) == "2026-12"
    assert month_index("2026-11", "2027-01") == 2


def test_seasonality_rules() -> None:
    scale = {"seasonality": {"multipliers": {13: 2.0}}}
    assert "scale.seasonality.multipliers[13]" in errors_of(spec_dict(scale=scale))
    scale = {"seasonality": {"multipliers": {12: 2.0}, "peak_months": [12], "peak_factor": 2}}
    assert "scale.seasonality.multipliers" in errors_of(spec_dict(scale=scale))
    scale = {"seasonality": {"peak_months": [11, 12]}}
    assert "scale.seasonality.peak_factor" in errors_of(spec_dict(scale=scale))
    spec = WorkloadSpec.model_validate(
        spec_dict(scale={"seasonality": {"peak_months": [12], "peak_factor": 1.5}})
    )
    assert spec.scale.seasonality is not None
    assert spec.scale.seasonality.factor(12) == 1.5 and spec.scale.seasonality.factor(1) == 1.0


def test_months_must_fall_in_the_horizon() -> None:
    errs = errors_of(spec_dict(scale={"retire_month": "2027-01"}))
    assert "scale.retire_month" in errs
    assert "scale.retire_month" in errors_of(spec_dict(scale={"retire_month": "2028-02"}))
    WorkloadSpec.model_validate(spec_dict(scale={"retire_month": "2028-01"}))  # right after the end
    data = spec_dict(scale={"retire_month": "2027-06"})
    data["performance"]["training"][0]["start_month"] = "2027-07"
    data["performance"]["inference"][0]["start_month"] = "2026-12"
    errs = errors_of(data)
    assert {"performance.training[0].start_month", "performance.inference[0].start_month"} <= set(
        errs
    )
    errs = errors_of(
        spec_dict(
            scale={
                "scale_down": [
                    {"from_month": "2027-05", "factor": 0.5},
                    {"from_month": "2027-03", "factor": 0.2},
                ]
            }
        )
    )
    assert "scale.scale_down[1].from_month" in errs


# --------------------------------------------------------------------------- compliance


def comp(**fields: Any) -> dict[str, Any]:
    return spec_dict(compliance=fields)


def test_phi_needs_hipaa_and_hipaa_is_not_public() -> None:
    assert "compliance.frameworks" in errors_of(comp(data_classification="phi"))
    assert "compliance.frameworks" in errors_of(
        comp(data_classification="pci", frameworks=["SOC2"])
    )
    assert "compliance.data_classification" in errors_of(
        comp(data_classification="public", frameworks=["HIPAA"])
    )
    spec = WorkloadSpec.model_validate(comp(data_classification="phi", frameworks=["HIPAA"]))
    assert spec.compliance.attested_frameworks() == ["HIPAA"]
    assert spec.compliance.sensitivity_rank == 3


def test_gdpr_defaults_and_transfers() -> None:
    spec = WorkloadSpec.model_validate(comp(frameworks=["GDPR"]))
    assert spec.compliance.effective_jurisdictions() == ["EU", "NO"]
    assert spec.compliance.attested_frameworks() == []
    # adequacy countries need no transfer mechanism
    WorkloadSpec.model_validate(comp(frameworks=["GDPR"], allowed_jurisdictions=["EU", "UK", "CH"]))
    errs = errors_of(comp(frameworks=["GDPR"], allowed_jurisdictions=["EU", "US"]))
    assert (
        "compliance.gdpr_transfer_mechanism" in errs
        and "US" in errs["compliance.gdpr_transfer_mechanism"]
    )
    WorkloadSpec.model_validate(
        comp(frameworks=["GDPR"], allowed_jurisdictions=["EU", "US"], gdpr_transfer_mechanism="dpf")
    )
    errs = errors_of(
        comp(frameworks=["GDPR"], allowed_jurisdictions=["US", "IN"], gdpr_transfer_mechanism="dpf")
    )
    assert "IN" in errs["compliance.gdpr_transfer_mechanism"]
    WorkloadSpec.model_validate(
        comp(frameworks=["GDPR"], allowed_jurisdictions=["IN"], gdpr_transfer_mechanism="scc")
    )
    # explicit regions replace the jurisdiction default
    spec = WorkloadSpec.model_validate(
        comp(frameworks=["GDPR"], allowed_regions=["aws/eu-central-1"])
    )
    assert spec.compliance.effective_jurisdictions() == []


def test_fedramp_rules() -> None:
    spec = WorkloadSpec.model_validate(comp(frameworks=["FedRAMP"]))
    assert spec.compliance.frameworks == ["FedRAMP-Moderate"]
    assert spec.compliance.effective_jurisdictions() == ["US"]
    assert "compliance.allowed_jurisdictions" in errors_of(
        comp(frameworks=["FedRAMP-High"], allowed_jurisdictions=["US", "EU"])
    )
    assert "compliance.allowed_jurisdictions" in errors_of(
        comp(frameworks=["FedRAMP-High", "GDPR"])
    )


def test_private_only_rules() -> None:
    assert "compliance.allowed_regions" in errors_of(
        comp(private_only=True, allowed_regions=["aws/us-east-1"])
    )
    assert "cost.capex_allowed" in errors_of(comp(private_only=True))
    WorkloadSpec.model_validate(
        spec_dict(compliance={"private_only": True}, cost={"capex_allowed": True})
    )


def test_duplicate_compliance_entries() -> None:
    assert "compliance.allowed_jurisdictions[1]" in errors_of(
        comp(allowed_jurisdictions=["US", "US"])
    )


# --------------------------------------------------------------------------- architecture


def arch(**fields: Any) -> dict[str, Any]:
    return spec_dict(architecture=fields)


SOURCE = {
    "name": "raw",
    "kind": "private",
    "format": "parquet",
    "size_gb": 10,
    "location": "s3://b/p",
}


def test_pipeline_references_and_cycles() -> None:
    stages = [
        {"name": "a", "kind": "ingest", "source": "raw"},
        {"name": "b", "kind": "train", "training_run": "train", "depends_on": ["a"]},
        {"name": "c", "kind": "deploy", "service": "api", "depends_on": ["b"]},
    ]
    spec = WorkloadSpec.model_validate(arch(data_sources=[SOURCE], pipeline={"stages": stages}))
    assert spec.architecture.pipeline.topological_order() == ["a", "b", "c"]

    bad = copy.deepcopy(stages)
    bad[0]["depends_on"] = ["c"]
    errs = errors_of(arch(data_sources=[SOURCE], pipeline={"stages": bad}))
    assert (
        "architecture.pipeline.stages[0].depends_on" in errs
        and "cycle" in errs["architecture.pipeline.stages[0].depends_on"]
    )

    bad = copy.deepcopy(stages)
    bad[1]["depends_on"] = ["zzz"]
    bad[1]["training_run"] = "nope"
    bad[2]["service"] = "nope"
    errs = errors_of(arch(data_sources=[SOURCE], pipeline={"stages": bad}))
    assert "architecture.pipeline.stages[1].depends_on[0]" in errs
    bad[1]["depends_on"] = ["a"]
    bad[0]["source"] = "nope"
    assert "architecture.pipeline.stages[0].source" in errors_of(
        arch(data_sources=[SOURCE], pipeline={"stages": bad})
    )
    bad[0]["source"] = "raw"
    errs = errors_of(arch(data_sources=[SOURCE], pipeline={"stages": bad}))
    assert {
        "architecture.pipeline.stages[1].training_run",
        "architecture.pipeline.stages[2].service",
    } <= set(errs)

    wrong_kind = [{"name": "a", "kind": "evaluate", "source": "raw"}]
    assert "architecture.pipeline.stages[0].source" in errors_of(
        arch(data_sources=[SOURCE], pipeline={"stages": wrong_kind})
    )


def test_data_quality_rules() -> None:
    src = dict(SOURCE, quality={"completeness_min_pct": 101})
    assert "architecture.data_sources[0].quality.completeness_min_pct" in errors_of(
        arch(data_sources=[src])
    )
    # Rules inside one model are reported together; rules of an enclosing model run once
    # the parts are valid (pydantic validates bottom-up).
    cols = [
        {"name": "age", "type": "int", "min": 10, "max": 5},
        {"name": "note", "type": "string", "min": 1},
    ]
    errs = errors_of(arch(data_sources=[dict(SOURCE, quality={"columns": cols})]))
    assert {
        "architecture.data_sources[0].quality.columns[0].max",
        "architecture.data_sources[0].quality.columns[1].min",
    } <= set(errs)
    cols = [{"name": "age", "type": "int"}, {"name": "age", "type": "string"}]
    errs = errors_of(arch(data_sources=[dict(SOURCE, quality={"columns": cols})]))
    assert "architecture.data_sources[0].quality.columns[1].name" in errs
    assert "architecture.data_sources[0].quality.columns[0].name" in errors_of(
        arch(
            data_sources=[dict(SOURCE, quality={"columns": [{"name": "bad name", "type": "int"}]})]
        )
    )


def test_private_data_must_be_in_allowed_jurisdictions() -> None:
    data = arch(data_sources=[dict(SOURCE, jurisdiction="US")])
    data["compliance"] = {"frameworks": ["GDPR"]}
    assert "architecture.data_sources[0].jurisdiction" in errors_of(data)
    data["architecture"]["data_sources"][0]["kind"] = "public"
    WorkloadSpec.model_validate(data)


def test_serving_rules() -> None:
    errs = errors_of(arch(serving=[{"service": "nope"}]))
    assert "architecture.serving[0].service" in errs
    errs = errors_of(
        arch(serving=[{"service": "api", "autoscaling": {"min_replicas": 0, "max_replicas": 2}}])
    )
    assert "architecture.serving[0].autoscaling.min_replicas" in errs
    errs = errors_of(
        arch(serving=[{"service": "api", "autoscaling": {"min_replicas": 5, "max_replicas": 2}}])
    )
    assert "architecture.serving[0].autoscaling.max_replicas" in errs


def test_orchestrator_schedule() -> None:
    for ok in ("@daily", "0 3 * * 1-5", "*/15 * * * *", None):
        WorkloadSpec.model_validate(arch(orchestrator={"schedule": ok}))
    for bad in ("daily", "0 3 * *", "0 3 * * * *", "0 3 * * $(x)"):
        assert "architecture.orchestrator.schedule" in errors_of(
            arch(orchestrator={"schedule": bad})
        )


def test_storage_rules() -> None:
    assert "architecture.storage[0].retention_days" in errors_of(
        arch(storage=[{"name": "b", "retention_days": 0}])
    )
    assert "architecture.storage[1].name" in errors_of(arch(storage=[{"name": "b"}, {"name": "b"}]))


# --------------------------------------------------------------------------- schema / files


def test_json_schema() -> None:
    schema = spec_json_schema()
    assert schema["additionalProperties"] is False
    assert {"schema_version", "name", "performance", "lifecycle"} <= set(schema["required"])
    defs = schema["$defs"]
    assert {"TrainingRun", "InferenceService", "Compliance", "Architecture"} <= set(defs)
    assert defs["TrainingRun"]["properties"]["name"]["pattern"].startswith("^[a-z]")
    assert defs["Lifecycle"]["properties"]["horizon_months"]["maximum"] == 60
    assert defs["TrainingRun"]["additionalProperties"] is False


def test_load_spec_errors(tmp_path: Any) -> None:
    with pytest.raises(SpecError, match="cannot read file"):
        load_spec(tmp_path / "missing.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("schema_version: '1'\nname: x\n")
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert {"performance", "lifecycle"} <= set(info.value.paths)
    assert str(p) in str(info.value)


def test_json_schema_accepts_the_examples() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from app.requirements import list_examples, load_example

    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for example in list_examples():
        data = load_example(example.name).model_dump(mode="json")
        assert not list(validator.iter_errors(data)), example.name
