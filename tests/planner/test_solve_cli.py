"""``archplan solve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "reference_cases"
runner = CliRunner()


def test_solve_prints_a_table() -> None:
    r = runner.invoke(cli, ["solve", str(DATA / "awsome-t11-one-instance-type.yaml")])
    assert r.exit_code == 0, r.output
    assert "optimal" in r.output
    assert "84" in r.output
    assert "a_reserved" in r.output


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_solve_json(solver: str) -> None:
    r = runner.invoke(
        cli, ["solve", str(DATA / "malloovia-problem1.yaml"), "--json", "--solver", solver]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "optimal"
    assert out["objective"] == 178
    assert out["bound"] <= 178 and 0 <= out["gap"] < 1e-5
    units = {o["name"]: o for o in out["options"]}
    assert units["m3large_r"]["purchased_by_class"] == {"app0": 3, "app1": 3}
    assert units["m3large_r"]["active"] == [6, 6, 6, 6]
    assert units["m3large"]["usage_units"] == [0, 1, 0, 0]


def test_solve_relax() -> None:
    r = runner.invoke(cli, ["solve", str(DATA / "malloovia-problem1.yaml"), "--json", "--relax"])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["relaxed"] is True
    assert out["objective"] == pytest.approx(149.928)


def test_schema_needs_no_path() -> None:
    r = runner.invoke(cli, ["solve", "--schema"])
    assert r.exit_code == 0
    schema = json.loads(r.stdout)
    assert schema["title"] == "CapacityProblem"


def test_missing_path() -> None:
    assert runner.invoke(cli, ["solve"]).exit_code == 2


def test_bad_input_exits_2_and_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "demand": {"a": [1, 2]},
                "options": [{"name": "r", "kind": "reserved", "price_per_period": 1}],
            }
        )
    )
    r = runner.invoke(cli, ["solve", str(bad)])
    assert r.exit_code == 2
    assert "options[0].term_periods" in r.output
    r = runner.invoke(cli, ["solve", str(bad), "--json"])
    assert r.exit_code == 2
    assert json.loads(r.stdout)["field"] == "options[0].term_periods"


def test_infeasible_exits_0_with_the_explanation(tmp_path: Path) -> None:
    problem = {
        "demand": {"train": [10]},
        "peak": {"train": [512]},
        "limiting_sets": [{"name": "aws-us", "max_units": 256}],
        "options": [{"name": "od", "kind": "on_demand", "price_per_period": 1,
                     "performance": {"train": 1}, "limits": {"limiting_sets": ["aws-us"]}}],
    }  # fmt: skip
    path = tmp_path / "inf.json"
    path.write_text(json.dumps(problem))
    r = runner.invoke(cli, ["solve", str(path), "--json"])
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["status"] == "infeasible"
    assert "aws-us" in out["explanation"]
    assert any(s["shortfall"] == 256 for s in out["shortfalls"])
    human = runner.invoke(cli, ["solve", str(path)])
    assert human.exit_code == 0
    assert "raise the max units (at the peak) of limiting set 'aws-us' by 256" in human.output


def test_unknown_solver_is_bad_input() -> None:
    r = runner.invoke(cli, ["solve", str(DATA / "malloovia-problem1.yaml"), "--solver", "gurobi"])
    assert r.exit_code == 2
