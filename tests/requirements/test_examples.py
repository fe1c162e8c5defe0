"""The bundled examples load, validate, and round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.requirements import WorkloadSpec, list_examples, load_example, load_spec
from app.requirements.examples import EXAMPLES_DIR, example_path, example_text

REQUIRED = {
    "llm-finetune-hipaa",
    "vision-growing-inference",
    "research-burst-deadline",
    "eu-regulated-private",
}
ALL_FILES = sorted(EXAMPLES_DIR.glob("*.yaml"))


def test_required_examples_exist() -> None:
    names = {e.name for e in list_examples()}
    assert REQUIRED <= names
    assert len(names) >= 4


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_example_validates_and_round_trips(path: Path) -> None:
    spec = load_spec(path)
    assert spec.schema_version == "1"
    assert spec.description.strip(), "examples should explain themselves"
    assert WorkloadSpec.from_yaml(spec.to_yaml()) == spec
    assert WorkloadSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_example_documents_its_numbers(path: Path) -> None:
    # The brief asks for commented, plausible inputs: every example carries comments.
    comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 5


def test_example_specifics() -> None:
    hipaa = load_example("llm-finetune-hipaa")
    assert "HIPAA" in hipaa.compliance.frameworks
    assert hipaa.compliance.data_classification == "phi"
    assert hipaa.lifecycle.retraining_cadence.kind == "quarterly"
    assert hipaa.compliance.effective_jurisdictions() == ["US"]

    vision = load_example("vision-growing-inference")
    assert vision.scale.inference_growth_pct_per_year == 60
    assert any(s.latency_bound for s in vision.performance.inference)

    burst = load_example("research-burst-deadline")
    assert all(r.checkpointable for r in burst.performance.training)
    assert burst.lifecycle.retraining_cadence.kind == "once"

    eu = load_example("eu-regulated-private")
    assert eu.cost.capex_allowed
    assert eu.lifecycle.horizon_months == 36
    assert "GDPR" in eu.compliance.frameworks
    assert eu.compliance.effective_jurisdictions() == ["EU"]


def test_example_lookup_is_confined_to_the_directory() -> None:
    with pytest.raises(KeyError):
        example_path("../pyproject")
    with pytest.raises(KeyError):
        load_example("does-not-exist")
    assert "schema_version" in example_text("llm-finetune-hipaa")


def test_list_examples_other_directory(tmp_path: Path) -> None:
    assert list_examples(tmp_path) == []
    (tmp_path / "mine.yaml").write_text(example_text("research-burst-deadline"))
    [info] = list_examples(tmp_path)
    assert info.name == "mine" and info.title == "7B research LM pre-training sprint"
    assert info.summary.startswith("A university lab")
