"""Bundle packaging: purchase schedule CSV/JSON, deterministic zips, the export command."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.bundles.context import bundle_context, plan_id, slugify
from app.bundles.package import render_bundle, to_zip
from app.bundles.procurement import COLUMNS, schedule_rows
from app.bundles.render import hcl, md, py, yaml_scalar
from app.catalog import load_snapshot
from app.planner.plan import make_plan
from app.requirements import load_example

ROOT = Path(__file__).resolve().parents[2]
NASTY = ['a"b\n${x}{{ y }}', "'; rm -rf /"]


@pytest.fixture(scope="module")
def planned():
    spec = load_example("llm-finetune-hipaa")
    return spec, make_plan(spec, load_snapshot())


def test_schedule_csv_and_json_carry_the_same_rows(planned) -> None:
    spec, plan = planned
    ctx = bundle_context(spec, plan)
    files = render_bundle(ctx, "purchase-schedule")
    rows = list(csv.DictReader(io.StringIO(files["purchase-schedule/schedule.csv"])))
    data = json.loads(files["purchase-schedule/schedule.json"])
    assert data["columns"] == COLUMNS and list(rows[0]) == COLUMNS
    assert len(rows) == len(data["rows"]) == len(schedule_rows(plan)) > 0
    assert data["plan_id"] == ctx.plan_id and data["snapshot_id"] == plan.snapshot_id
    reserved = [r for r in rows if r["purchase_option"] == "reserved"]
    assert reserved and all(r["term_months"] == "12" for r in reserved)
    total = sum(float(r["total_usd"]) for r in rows)
    assert total == pytest.approx(plan.total_cost, rel=0.02)  # commitments past the horizon included


def test_same_plan_gives_byte_identical_zip(planned) -> None:
    spec, plan = planned
    a = bundle_context(spec, plan)
    b = bundle_context(spec, plan.model_copy(update={"solve_seconds": 99.0, "total_seconds": 99.0}))
    assert a.plan_id == b.plan_id
    za = to_zip(render_bundle(a, "purchase-schedule"), root="x")
    zb = to_zip(render_bundle(b, "purchase-schedule"), root="x")
    assert za == zb
    with zipfile.ZipFile(io.BytesIO(za)) as zf:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())


def test_names_are_slugged_for_identifiers() -> None:
    assert slugify('a"b\n${x}{{ y }}') == "a-b-x-y"
    assert slugify("'; rm -rf /") == "rm-rf"
    assert slugify("!!!") == "design"


@pytest.mark.parametrize("name", NASTY)
def test_encoders_keep_names_inert(name: str) -> None:
    import ast

    import hcl2
    import yaml

    assert ast.literal_eval(py(name)) == name
    assert yaml.safe_load(f"key: {yaml_scalar(name)}\n") == {"key": name}
    parsed = hcl2.loads(f"x = {hcl(name)}\n")
    assert "${x}" not in hcl(name) or "$${x}" in hcl(name)
    # python-hcl2 returns the literal as written; decoding it gives the name back, with
    # Terraform's `$${` escape standing for a literal `${`.
    assert json.loads(parsed["x"]).replace("$${", "${") == name
    assert "\n" not in md(name) and "`" not in md(name).replace("\\`", "")


@pytest.mark.parametrize("name", NASTY)
def test_schedule_files_with_hostile_design_name(planned, name: str) -> None:
    spec, plan = planned
    ctx = bundle_context(spec.model_copy(update={"name": name}), plan)
    files = render_bundle(ctx, "purchase-schedule")
    assert json.loads(files["purchase-schedule/schedule.json"])["plan_id"] == plan_id(plan)
    assert list(csv.DictReader(io.StringIO(files["purchase-schedule/schedule.csv"])))


def test_export_cli_writes_a_deterministic_zip(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("archplan"))
    env = {**os.environ, "ARCHPLAN_ENVIRONMENT": "test"}
    outs = []
    for i in range(2):
        out = tmp_path / f"b{i}.zip"
        r = subprocess.run([exe, "export", "examples/llm-finetune-hipaa.yaml", "--out", str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    with zipfile.ZipFile(io.BytesIO(outs[0])) as zf:
        names = zf.namelist()
    assert any(n.endswith("purchase-schedule/schedule.csv") for n in names)
    r = subprocess.run([exe, "export", "examples/llm-finetune-hipaa.yaml", "--out", str(tmp_path / "x.zip"),
                        "--bundle", "nope"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Unknown bundle" in r.stderr
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("name", NASTY)
def test_dockerfile_label_is_hadolint_clean_and_unexpanded(tmp_path: Path, name: str) -> None:
    from app.bundles.render import dockerfile_label

    label = dockerfile_label(name)
    assert "${" not in label.replace("\\${", "")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.11.11-slim-bookworm\nLABEL org.opencontainers.image.title={label}\n"
                          "USER 10001:10001\n")
    hadolint = Path(sys.executable).with_name("hadolint")
    r = subprocess.run([str(hadolint), "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
