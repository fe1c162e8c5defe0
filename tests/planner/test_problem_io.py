"""Reading, writing and validating CapacityProblem files; errors name the field path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from app.planner.problem import CapacityProblem, ProblemInputError
from app.planner.problem_io import (
    dump_problem,
    load_problem,
    parse_problem,
    problem_json_schema,
    problem_to_dict,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "reference_cases"
CASES = sorted(DATA.glob("*.yaml"))

GOOD: dict[str, Any] = {
    "periods": 2,
    "demand": {"a": [1, 2]},
    "limiting_sets": [{"name": "pool", "max_units": 10}],
    "options": [
        {"name": "od", "kind": "on_demand", "price_per_period": 1, "performance": {"a": 1},
         "limits": {"limiting_sets": ["pool"]}},
        {"name": "res", "kind": "reserved", "price_per_period": 1, "term_periods": 2,
         "performance": {"a": 1}},
    ],
}  # fmt: skip


def _bad(change: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(GOOD))
    data.update(top)
    for path, value in (change or {}).items():
        node: Any = data
        keys = path.split("/")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


_DELETE = object()


def test_good_problem_parses() -> None:
    p = parse_problem(GOOD)
    assert p.n_periods == 2 and [o.name for o in p.options] == ["od", "res"]


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (_bad({"options/1/term_periods": _DELETE}), "options[1].term_periods", "required"),
        (_bad({"options/0/price_per_period": "abc"}), "options[0].price_per_period", "number"),
        (_bad({"options/0/price_per_period": -1}), "options[0].price_per_period", "greater than or equal to 0"),
        (_bad({"options/0/kind": "lease"}), "options[0].kind", "on_demand"),
        (_bad({"options/0/performance": {"zzz": 1}}), "options[0].performance.zzz", "unknown class"),
        (_bad({"options/0/limits/limiting_sets": ["nope"]}), "options[0].limits.limiting_sets[0]",
         "unknown limiting set"),
        (_bad({"options/1/name": "od"}), "options[1].name", "duplicate"),
        (_bad({"demand/a": [1, 2, 3]}), "demand.a", "periods is 2"),
        (_bad({"demand/a": [1, "x"]}), "demand.a", "number"),
        (_bad(period_hours=[1, -1]), "period_hours[1]", "> 0"),
        (_bad(optionz=[]), "optionz", "unknown field"),
        (_bad({"options/0/upfront": 5}), "options[0].upfront", "paid per use"),
        (_bad({"options/0/kind": "savings_plan", "options/0/term_periods": 2}), "options[0].rates",
         "needs rates"),
        (_bad(model_flags={"commitment_charge": "sometimes"}), "model_flags.commitment_charge",
         "full_term_at_purchase_even_beyond_horizon"),
        (_bad(model_flags={"reserved_mode": "fixed_for_horizon_per_app"},
              options=[{"name": "r", "kind": "reserved", "term_periods": 1, "performance": {"a": 1}}]),
         "options[0].term_periods", "covering the horizon"),
        (_bad(peak={"b": [1, 1]}), "peak.b", "unknown class"),
        (_bad(budget={"per_period": [1]}), "budget.per_period", "periods is 2"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ProblemInputError) as info:
        parse_problem(data)
    assert info.value.path == path
    assert words in info.value.message
    assert str(info.value).startswith(path)


def test_nested_model_still_raises_a_pydantic_error() -> None:
    # ProblemInputError is a ValueError, so the model stays usable inside other models
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CapacityProblem.model_validate(_bad({"options/1/term_periods": _DELETE}))


def test_load_reports_file_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("demand: [1, 2\n")
    with pytest.raises(ProblemInputError, match="invalid YAML"):
        load_problem(broken)
    with pytest.raises(ProblemInputError, match="cannot read"):
        load_problem(tmp_path / "missing.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ProblemInputError, match="must be a mapping"):
        load_problem(tmp_path / "list.json")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_round_trip(path: Path, suffix: str, tmp_path: Path) -> None:
    problem = load_problem(path)
    out = tmp_path / f"copy{suffix}"
    dump_problem(problem, out)
    again = load_problem(out)
    assert again == problem
    assert problem_to_dict(again) == problem_to_dict(problem)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_json_schema_accepts_the_reference_cases(path: Path) -> None:
    schema = problem_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_json_schema_rejects_unknown_fields() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_bad(optionz=[]), problem_json_schema())


def test_model_flags_of_the_cases_map_onto_fields() -> None:
    flags = {p.stem: load_problem(p).model_flags for p in CASES}
    m = flags["malloovia-problem1"]
    assert m.reserved_mode == "fixed_for_horizon_per_app"
    assert m.on_demand_mode == "per_period_per_app"
    assert m.commitment_charge == "price_per_period_times_periods"
    a = flags["awsome-t02-on-demand-reserved"]
    assert a.reserved_mode == "purchase_any_period_rolling_term"
    assert a.commitment_charge == "full_term_at_purchase_even_beyond_horizon"
    assert a.savings_plan_commitment_integer is True
