"""YAML parsing: strict documents, helpful errors, lossless round trips."""

from __future__ import annotations

import pytest

from app.requirements import SpecError, WorkloadSpec

DOC = """\
schema_version: 1
name: yaml demo
performance:
  training:
    - name: pretrain
      reference_gpu: H100
      model_params: 7e9          # YAML 1.1 would read this as a string
      training_tokens: 2.0e+12
      deadline_days: 30
      checkpointable: true
lifecycle:
  start_month: 2027-03           # stays a string (no timestamp resolution)
  horizon_months: 6
  retraining_cadence: quarterly  # shorthand for {kind: quarterly}
compliance:
  allowed_jurisdictions: [NO, EU]  # Norway, not the boolean false
"""


def test_yaml_1_2_scalars() -> None:
    spec = WorkloadSpec.from_yaml(DOC)
    run = spec.performance.training[0]
    assert run.model_params == 7e9 and run.training_tokens == 2e12
    assert spec.lifecycle.start_month == "2027-03"
    assert spec.lifecycle.retraining_cadence.kind == "quarterly"
    assert spec.compliance.allowed_jurisdictions == ["NO", "EU"]


def test_round_trip_is_lossless() -> None:
    spec = WorkloadSpec.from_yaml(DOC)
    text = spec.to_yaml()
    assert WorkloadSpec.from_yaml(text) == spec
    assert "NO" in text and "'NO'" in text  # quoted so that YAML 1.1 readers keep it a string
    assert WorkloadSpec.from_yaml(WorkloadSpec.from_yaml(text).to_yaml()).to_yaml() == text


def test_syntax_error_reports_line() -> None:
    with pytest.raises(SpecError) as info:
        WorkloadSpec.from_yaml("name: [unclosed\nlifecycle: {}\n")
    assert "line" in str(info.value)
    assert info.value.issues[0].type == "yaml_syntax"


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(SpecError, match="duplicate key 'name'"):
        WorkloadSpec.from_yaml("name: a\nname: b\n")


def test_aliases_are_rejected() -> None:
    with pytest.raises(SpecError, match="aliases"):
        WorkloadSpec.from_yaml("a: &x [1, 2]\nb: *x\n")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text", "42"])
def test_document_must_be_a_mapping(text: str) -> None:
    with pytest.raises(SpecError, match="mapping"):
        WorkloadSpec.from_yaml(text)


def test_too_large_document() -> None:
    with pytest.raises(SpecError, match="too large"):
        WorkloadSpec.from_yaml("#" * 600_000)


def test_python_tags_are_not_constructed() -> None:
    with pytest.raises(SpecError):
        WorkloadSpec.from_yaml("name: !!python/object/apply:os.system ['true']\n")


def test_validation_errors_from_yaml_name_paths() -> None:
    bad = DOC.replace("deadline_days: 30", "deadline_days: -1").replace(
        "horizon_months: 6", "horizon_months: 0"
    )
    with pytest.raises(SpecError) as info:
        WorkloadSpec.from_yaml(bad)
    assert set(info.value.paths) == {
        "performance.training[0].deadline_days",
        "lifecycle.horizon_months",
    }
