"""Workload requirements: the versioned :class:`WorkloadSpec` schema and bundled examples.

Pure domain code (pydantic + PyYAML); no web framework or database imports.
"""

from app.requirements.examples import ExampleInfo, example_path, list_examples, load_example
from app.requirements.spec import (
    DEFAULT_DISCOUNT_RATE,
    DEFAULT_MFU,
    SCHEMA_VERSION,
    Architecture,
    Compliance,
    Cost,
    InferenceService,
    Lifecycle,
    Performance,
    RetrainingCadence,
    Scale,
    Seasonality,
    SpecError,
    SpecIssue,
    TrainingRun,
    WorkloadSpec,
    load_spec,
    spec_json_schema,
)

__all__ = [
    "DEFAULT_DISCOUNT_RATE",
    "DEFAULT_MFU",
    "SCHEMA_VERSION",
    "Architecture",
    "Compliance",
    "Cost",
    "ExampleInfo",
    "InferenceService",
    "Lifecycle",
    "Performance",
    "RetrainingCadence",
    "Scale",
    "Seasonality",
    "SpecError",
    "SpecIssue",
    "TrainingRun",
    "WorkloadSpec",
    "example_path",
    "list_examples",
    "load_example",
    "load_spec",
    "spec_json_schema",
]
