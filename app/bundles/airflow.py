"""The Airflow bundle: one DAG per workload plus a small, dependency-free ``pipeline`` package.

Files (under ``airflow/``):

* ``dags/<slug>_pipeline.py`` — the DAG (Airflow 3, ``airflow.sdk``): ingest -> validate ->
  train -> evaluate -> register -> deploy, from ``architecture.pipeline.stages`` (with their
  ``depends_on``) or, when no stages are given, the default chain described in
  :func:`default_stages`. Scheduled on the retraining cadence, ``catchup=False``, retries
  from the orchestrator, ``start_date`` = first day of the spec's start month (UTC), tagged
  with the plan id.
* ``pipeline/data_quality.py`` — the spec's expectations per data source as a Python
  literal and the checks that enforce them on plain rows (list of dicts / CSV reader).
* ``pipeline/stages.py`` and ``pipeline/k8s.py`` — what each task does; training and
  deployment go to Kubernetes through small documented functions (no cncf provider needed
  to import the DAG).
* ``docker/train.Dockerfile``, ``train/``, ``tests/`` (``unittest`` only) and ``README.md``.

Every value from the spec enters the Python files through ``| py`` only; the name appears
in them only as a string literal.

Schedule rule: the cron of the training runs the pipeline trains (the most frequent one
when they differ; the lifecycle cadence when the pipeline trains nothing). A cadence of
``once`` becomes ``"@once"`` — or ``None`` (manual trigger only) when the orchestrator's
own schedule is ``null``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from app.bundles.context import CADENCE_CRON, BundleContext
from app.bundles.render import environment

SUBDIR = "airflow"

_STATIC = {
    "airflow/pipeline/__init__.py": "pipeline/__init__.py.j2",
    "airflow/pipeline/stages.py": "pipeline/stages.py.j2",
    "airflow/pipeline/k8s.py": "pipeline/k8s.py.j2",
    "airflow/train/__init__.py": "train/__init__.py.j2",
    "airflow/train/__main__.py": "train/__main__.py.j2",
    "airflow/tests/__init__.py": "tests/__init__.py.j2",
    "airflow/tests/test_data_quality.py": "tests/test_data_quality.py.j2",
    "airflow/tests/test_stages.py": "tests/test_stages.py.j2",
    "airflow/docker/requirements-train.txt": "docker/requirements-train.txt.j2",
}


def _plain(value: Any) -> Any:
    """Plain data for ``| py``: non-finite floats (``.inf`` bounds) become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def component_name(full: str, workload: str, limit: int = 63) -> str:
    """The Helm chart's ``archplan.componentName`` (same rule as the scaffold's
    ``pipeline/k8s.py``), for the README's table; ``full`` is the chart's fullname, which is
    the slug when the release is named after the chart."""
    name = f"{full}-{workload}"
    if len(name) <= limit:
        return name
    cut = name[: limit - 9]
    return (cut[:-1] if cut.endswith("-") else cut) + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def training_object(full: str, run: str, scheduled: bool) -> tuple[str, str]:
    """(kind, name) of the chart's object for a training run: CronJob, or Job when once."""
    return ("CronJob", component_name(full, run, 52)) if scheduled else ("Job", component_name(full, run))


def _months_between_runs(cron: str | None) -> float:
    """How often a context cron (``0 3 1 <month> *``) fires, in months; ``None`` = never again."""
    if cron is None:
        return math.inf
    month = cron.split()[3]
    if month == "*":
        return 1
    if month.startswith("*/"):
        return int(month[2:])
    return 12


def dag_schedule(ctx: BundleContext, trained_runs: list[str]) -> str | None:
    """The DAG's schedule: see the module docstring."""
    jobs = [j for j in ctx.training_jobs if j.name in trained_runs] or ctx.training_jobs
    if jobs:
        cron = min((j.schedule for j in jobs), key=_months_between_runs)
    else:
        cadence = ctx.spec.lifecycle.retraining_cadence
        cron = (f"0 3 1 */{cadence.n} *" if cadence.kind == "every_n_months"
                else CADENCE_CRON.get(cadence.kind))
    if cron is None:
        return None if ctx.spec.architecture.orchestrator.schedule is None else "@once"
    return cron


def _stage(name: str, kind: str, depends_on: list[str], *, source: str | None = None,
           training_run: str | None = None, service: str | None = None,
           options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "kind": kind, "depends_on": list(depends_on), "source": source,
            "training_run": training_run, "service": service, "options": dict(options or {})}


def default_stages(ctx: BundleContext) -> list[dict[str, Any]]:
    """The chain used when the spec lists no pipeline stages:

    ``ingest-<source>`` per data source -> ``validate-<source>`` per source with quality
    expectations -> ``train-<run>`` per training run (after every source) -> ``evaluate``
    -> ``register`` -> ``deploy-<service>`` per inference service. Without training runs
    the chain ends after validation.
    """
    out: list[dict[str, Any]] = []
    last_per_source: list[str] = []
    for src in ctx.spec.architecture.data_sources:
        out.append(_stage(f"ingest-{src.name}", "ingest", [], source=src.name))
        last = f"ingest-{src.name}"
        if src.quality is not None:
            out.append(_stage(f"validate-{src.name}", "validate", [last], source=src.name))
            last = f"validate-{src.name}"
        last_per_source.append(last)
    if not ctx.training_jobs:
        return out
    trains = []
    for job in ctx.training_jobs:
        trains.append(f"train-{job.name}")
        out.append(_stage(trains[-1], "train", last_per_source, training_run=job.name))
    out.append(_stage("evaluate", "evaluate", trains))
    out.append(_stage("register", "register", ["evaluate"]))
    for svc in ctx.inference_services:
        out.append(_stage(f"deploy-{svc.name}", "deploy", ["register"], service=svc.name))
    return out


def _declared_stages(ctx: BundleContext) -> list[dict[str, Any]]:
    pipeline = ctx.spec.architecture.pipeline
    by_name = {s.name: s for s in pipeline.stages}
    return [_stage(s.name, s.kind, s.depends_on, source=s.source, training_run=s.training_run,
                   service=s.service, options=s.options)
            for s in (by_name[n] for n in pipeline.topological_order())]


def _ancestors(stages: list[dict[str, Any]]) -> dict[str, list[str]]:
    deps = {s["name"]: s["depends_on"] for s in stages}
    out: dict[str, list[str]] = {}

    def visit(name: str) -> list[str]:
        if name not in out:
            seen: list[str] = []
            for d in deps[name]:
                for a in [*visit(d), d]:
                    if a not in seen:
                        seen.append(a)
            out[name] = seen
        return out[name]

    for name in deps:
        visit(name)
    return out


def dag_stages(ctx: BundleContext) -> list[dict[str, Any]]:
    """Stages with everything their task needs (sources, jobs, services, upstream runs)."""
    spec = ctx.spec
    stages = _declared_stages(ctx) if spec.architecture.pipeline.stages else default_stages(ctx)
    sources = {d.name: d for d in spec.architecture.data_sources}
    runs = {r.name: r for r in spec.performance.training}
    jobs = {j.name: j for j in ctx.training_jobs}
    ancestors = _ancestors(stages)
    by_name = {s["name"]: s for s in stages}
    out = []
    for s in stages:
        up = [by_name[a] for a in ancestors[s["name"]]]
        up_runs = [r for a in up if a["kind"] == "train"
                   for r in ([a["training_run"]] if a["training_run"] else list(jobs))]
        up_runs = list(dict.fromkeys(up_runs))
        kind = s["kind"]
        task: dict[str, Any] = {"name": s["name"], "kind": kind, "depends_on": s["depends_on"],
                                "options": s["options"]}
        if kind == "ingest":
            names = [s["source"]] if s["source"] else list(sources)
        elif kind == "validate":
            names = ([s["source"]] if s["source"] else
                     list(dict.fromkeys(n for a in up if a["kind"] == "ingest"
                                        for n in ([a["source"]] if a["source"] else list(sources))))
                     or list(sources))
        if kind in ("ingest", "validate"):
            task["sources"] = [{"name": n, "kind": sources[n].kind, "format": sources[n].format,
                                "location": sources[n].location} for n in names]
        elif kind == "train":
            names = [s["training_run"]] if s["training_run"] else list(jobs)
            task["jobs"] = [{"name": n, "scheduled": jobs[n].schedule is not None,
                             "gpus": jobs[n].gpus, "capacity_type": jobs[n].capacity_type,
                             "checkpointable": jobs[n].checkpointable,
                             "deadline_days": runs[n].deadline_days}
                            for n in names if n in jobs]
            days = [j["deadline_days"] for j in task["jobs"] if j["deadline_days"]]
            task["timeout_hours"] = round(max(days) * 24, 2) if days else None
        elif kind in ("evaluate", "register"):
            task["training_runs"] = up_runs
        elif kind == "deploy":
            task["services"] = [s["service"]] if s["service"] else [i.name for i in ctx.inference_services]
            task["training_runs"] = up_runs
        out.append(_plain(task))
    return out


def expectations(ctx: BundleContext) -> dict[str, dict[str, Any]]:
    """Data quality expectations per data source (only sources that declare any)."""
    out = {}
    for src in ctx.spec.architecture.data_sources:
        if src.quality is None:
            continue
        q = src.quality
        out[src.name] = _plain({
            "format": src.format,
            "completeness_min_pct": q.completeness_min_pct,
            "freshness_max_hours": q.freshness_max_hours,
            "row_count_min": q.row_count_min,
            "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable, "min": c.min,
                         "max": c.max, "allowed_values": c.allowed_values} for c in q.columns],
        })
    return out


def _template_context(ctx: BundleContext) -> dict[str, Any]:
    stages = dag_stages(ctx)
    trained = [j["name"] for s in stages if s["kind"] == "train" for j in s["jobs"]]
    start = ctx.spec.lifecycle.start_month
    exp = expectations(ctx)
    validated = {src["name"] for s in stages if s["kind"] == "validate" for src in s["sources"]}
    release = ctx.slug
    return {
        "ctx": ctx,
        "dag_id": f"{ctx.slug}_pipeline",
        "schedule": dag_schedule(ctx, trained),
        "start_year": int(start[:4]),
        "start_month": int(start[5:7]),
        "retries": ctx.spec.architecture.orchestrator.retries,
        "tags": ["archplan", ctx.plan_id],
        "settings": {"plan_id": ctx.plan_id, "snapshot_id": ctx.snapshot_id, "slug": ctx.slug,
                     "dag_id": f"{ctx.slug}_pipeline", "helm_chart": ctx.slug,
                     "helm_release": release, "namespace": release},
        "stages": stages,
        "expectations": exp,
        "unvalidated": [n for n in exp if n not in validated],
        "training_objects": [(j, *training_object(release, j.name, j.schedule is not None))
                             for j in ctx.training_jobs if j.name in trained],
        "deployments": [(n, component_name(release, n)) for n in dict.fromkeys(
            n for s in stages if s["kind"] == "deploy" for n in s["services"])],
        "release": release,
    }


def render_airflow(ctx: BundleContext) -> dict[str, str]:
    """``{path: text}`` of the Airflow bundle (deterministic for the same context)."""
    env = environment(SUBDIR)
    tc = _template_context(ctx)
    files = {
        f"airflow/dags/{ctx.slug}_pipeline.py": env.get_template("dag.py.j2").render(**tc),
        "airflow/pipeline/data_quality.py": env.get_template("pipeline/data_quality.py.j2").render(**tc),
        "airflow/docker/train.Dockerfile": env.get_template("docker/train.Dockerfile.j2").render(**tc),
        "airflow/README.md": env.get_template("README.md.j2").render(**tc),
    }
    for path, template in _STATIC.items():
        files[path] = env.get_template(template).render(**tc)
    return dict(sorted(files.items()))
