"""archplan's own Helm chart, rendered by the real Helm engine (helm-python-sdk -> libhelm_c).

Three installs are rendered: the chart defaults plus the two required secret values, the
production values file (deploy/helm/values-production.yaml), and that file with an image
digest. Every manifest is validated with kubernetes-validate (strict schemas) and scanned
with checkov; the rest checks what the manifests promise.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

import app
from app.settings import Settings
from tests.deploy.chart import (
    CHART_DIR,
    DATABASE_URL,
    DIGEST,
    NAMESPACE,
    POD_KINDS,
    PRODUCTION_VALUES,
    RELEASE,
    REQUIRED,
    SECRET_KEY,
    by_kind,
    container_env,
    containers,
    merged,
    one,
    parse,
    plain_env,
    pod_spec,
    production_values,
    render,
    secret_data,
    secret_refs,
)

CHECKOV = CHART_DIR.parents[2] / ".venv-checkov" / "bin" / "checkov"
#: Newest schemas kubernetes-validate ships, and the oldest version the chart supports.
K8S_VERSIONS = ("1.37.0", "1.27.0")
HOOK_EVENTS = "pre-install,pre-upgrade"
WEB, WORKER, MIGRATE = f"{RELEASE}-web", f"{RELEASE}-worker", f"{RELEASE}-migrate"
#: Variables the image's entry point reads, not app settings.
ENTRYPOINT_VARS = {"ARCHPLAN_MIGRATE_ON_START"}


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def defaults(chart: helm.Chart) -> dict[str, Any]:
    return chart.values


@pytest.fixture(scope="module")
def variants(chart: helm.Chart) -> dict[str, dict[str, Any]]:
    """Values of the three installs every validator sees."""
    prod = production_values()
    return {
        "defaults": copy.deepcopy(REQUIRED),
        "production": prod,
        "pinned": merged(prod, {"image": {"digest": DIGEST}}),
    }


@pytest.fixture(scope="module")
def rendered(chart: helm.Chart, variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {name: render(chart, values) for name, values in variants.items()}


@pytest.fixture(scope="module")
def docs(rendered: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    return parse(rendered["defaults"])


@pytest.fixture(scope="module")
def prod_docs(rendered: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    return parse(rendered["production"])


def validate_all(docs: list[dict[str, Any]], version: str = K8S_VERSIONS[0]) -> None:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def pods(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in POD_KINDS]


# --------------------------------------------------------------------------- the chart

def test_chart_metadata_tracks_the_app() -> None:
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    assert meta["apiVersion"] == "v2" and meta["name"] == "archplan" and meta["type"] == "application"
    assert meta["appVersion"] == app.__version__


def test_values_schema_is_valid_and_documents_every_default(chart: helm.Chart, defaults: dict[str, Any]) -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(defaults)
    assert chart.schema == schema
    # Every key of values.yaml is typed, and every typed key has a default.
    assert set(schema["properties"]) - {"global"} == set(defaults)
    text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    assert helm.values_from_yaml(text) == yaml.safe_load(text) == defaults


@pytest.mark.parametrize("values", [REQUIRED, None], ids=["required-values", "bare-defaults"])
def test_helm_lint_is_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_bare_defaults_ask_for_the_secret_values(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secret\.secretKey is required"):
        render(chart)
    with pytest.raises(helm.HelmRenderError, match=r"secret\.databaseUrl is required"):
        render(chart, {"secret": {"secretKey": SECRET_KEY}})


def test_rendering_is_deterministic(chart: helm.Chart, rendered: dict[str, dict[str, str]],
                                    variants: dict[str, dict[str, Any]]) -> None:
    for name, values in variants.items():
        assert render(chart, values) == rendered[name]


# --------------------------------------------------------------------------- validity

@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", ["defaults", "production", "pinned"])
def test_manifests_validate_strictly(rendered: dict[str, dict[str, str]], variant: str, version: str) -> None:
    assert version in all_versions()
    docs = parse(rendered[variant])
    kinds = {"ConfigMap", "Deployment", "Job", "NetworkPolicy", "PodDisruptionBudget", "Service",
             "ServiceAccount"}
    kinds |= {"Secret"} if variant == "defaults" else {"HorizontalPodAutoscaler", "Ingress"}
    assert {d["kind"] for d in docs} == kinds
    for doc in docs:
        assert doc["metadata"]["namespace"] == NAMESPACE
    validate_all(docs, version)


def test_strict_validation_catches_unknown_fields(docs: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(one(docs, "Deployment", WEB))
    pod_spec(broken)["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def _strip_checkov_skips(text: str) -> str:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        annotations = doc["metadata"].get("annotations") or {}
        for key in [k for k in annotations if k.startswith("checkov.io/")]:
            del annotations[key]
    return yaml.safe_dump_all(docs, sort_keys=False)


#: The in-chart checkov skips, each with the reason written next to it in the chart.
SKIPS = {
    "CKV_K8S_35": "reads its secret settings from ARCHPLAN_* environment variables only",
    "CKV_K8S_43": "Set image.digest per install",
    "CKV_K8S_8": "The worker serves no port",
    "CKV_K8S_9": "The worker takes jobs from PostgreSQL",
}


def test_checkov_passes_and_every_skip_hides_a_real_finding(rendered: dict[str, dict[str, str]],
                                                            tmp_path: Path) -> None:
    if not CHECKOV.is_file():
        pytest.fail(f"checkov is missing: expected the checkov env at {CHECKOV} (`make test` creates it)")
    # As rendered ("chart/…"), and with the chart's checkov.io/skip annotations removed
    # ("bare/…"): the skips must hide exactly the findings they name, nothing else.
    for variant, manifests in rendered.items():
        for name, text in manifests.items():
            if name.endswith(".yaml") and text.strip():
                for tree, body in (("chart", text), ("bare", _strip_checkov_skips(text))):
                    target = tmp_path / tree / variant / name.replace("/", "_")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(body, encoding="utf-8")
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    results = report["results"]

    def tree(check: dict[str, Any]) -> str:
        return check["file_path"].strip("/").split("/")[0]

    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert [f for f in failed if f[2].startswith("/chart/")] == []
    passed_in_chart = [c for c in results["passed_checks"] if tree(c) == "chart"]
    assert len(passed_in_chart) > 400

    skipped = [c for c in results["skipped_checks"] if tree(c) == "chart"]
    assert {c["check_id"] for c in skipped} == set(SKIPS)
    for c in skipped:
        assert SKIPS[c["check_id"]] in c["check_result"]["suppress_comment"]
    hidden = {(c["check_id"], c["resource"], c["file_path"].removeprefix("/chart")) for c in skipped}
    found_bare = {(cid, res, path.removeprefix("/bare")) for cid, res, path in failed if path.startswith("/bare/")}
    assert hidden == found_bare

    def resources(check_id: str) -> set[tuple[str, str]]:
        return {(path.split("/")[1], res) for cid, res, path in hidden if cid == check_id}

    workloads = {f"Deployment.{NAMESPACE}.{WEB}", f"Deployment.{NAMESPACE}.{WORKER}", f"Job.{NAMESPACE}.{MIGRATE}"}
    # Secrets as env: every pod of every install. Digest: only while no digest is set.
    assert resources("CKV_K8S_35") == {(v, r) for v in rendered for r in workloads}
    assert resources("CKV_K8S_43") == {(v, r) for v in ("defaults", "production") for r in workloads}
    worker = {(v, f"Deployment.{NAMESPACE}.{WORKER}") for v in rendered}
    assert resources("CKV_K8S_8") == resources("CKV_K8S_9") == worker


# --------------------------------------------------------------------------- schema

@pytest.mark.parametrize("path, bad", [
    (("image", "tag"), "latest"),
    (("image", "digest"), "sha256:abc"),
    (("image", "pullPolicy"), "Sometimes"),
    (("secret", "databaseUrl"), "sqlite:////data/archplan.db"),
    (("secret", "databaseUrl"), "postgresql://archplan@db/archplan"),  # psycopg2, not in the image
    (("secret", "secretKey"), "too-short"),
    (("config", "solver"), "gurobi"),
    (("config", "logLevel"), "TRACE"),
    (("config", "sessionDays"), 365),
    (("config", "jobMaxAttempts"), 0),
    (("config", "jobIsolation"), "container"),
    (("config", "extraEnv"), {"BAD-NAME": "x"}),
    (("web", "replicaCount"), "two"),
    (("web", "autoscaling", "minReplicas"), 0),
    (("web", "resources", "limits", "cpu"), "lots"),
    (("worker", "extraArgs"), [4]),
    (("worker", "enabled"), "yes"),
    (("service", "type"), "ExternalName"),
    (("ingress", "hosts"), ["Not A Host"]),
    (("networkPolicy", "database", "port"), 70000),
    (("web", "autoscalng"), {}),
    (("unknownKey",), True),
])
def test_schema_rejects_bad_values(chart: helm.Chart, path: tuple[str, ...], bad: Any) -> None:
    values = copy.deepcopy(REQUIRED)
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = bad
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values)


@pytest.mark.parametrize("override, message", [
    ({"secret": {"existingSecret": "archplan-env"}}, "leave secret.secretKey and secret.databaseUrl empty"),
    ({"config": {"jobHeartbeatS": 20, "jobStaleAfterS": 30}}, "at least twice config.jobHeartbeatS"),
    ({"config": {"extraEnv": {"ARCHPLAN_ENVIRONMENT": "development"}}}, "the chart sets ARCHPLAN_ENVIRONMENT"),
    ({"config": {"extraEnv": {"ARCHPLAN_DATABASE_URL": "postgresql+psycopg://x@y/z"}}}, "the chart sets"),
    ({"web": {"extraEnv": {"ARCHPLAN_JOB_WORKERS": "4"}}}, "web.extraEnv.ARCHPLAN_JOB_WORKERS"),
    ({"web": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}}, "must not exceed"),
    ({"secret": {"keys": {"secretKey": "K", "databaseUrl": "K"}}}, "must differ"),
])
def test_inconsistent_values_fail_the_render(chart: helm.Chart, override: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, merged(REQUIRED, override))


# --------------------------------------------------------------------------- web

def test_web_serves_with_probes_on_the_app_endpoints(docs: list[dict[str, Any]]) -> None:
    deploy = one(docs, "Deployment", WEB)
    (container,) = pod_spec(deploy)["containers"]
    assert container["args"] == ["web"] and "command" not in container  # the image's entry point
    (port,) = container["ports"]
    assert port == {"name": "http", "containerPort": 8000, "protocol": "TCP"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = container_env(container, docs)
    assert env["ARCHPLAN_PORT"] == "8000" and env["ARCHPLAN_HOST"] == "0.0.0.0"
    assert env["ARCHPLAN_MIGRATE_ON_START"] == "false"  # the hook Job migrates
    assert env["ARCHPLAN_JOB_WORKERS"] == "0"  # solves run in the worker pods
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    service = one(docs, "Service", RELEASE)
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()


def test_hpa_only_when_enabled(docs: list[dict[str, Any]], prod_docs: list[dict[str, Any]]) -> None:
    assert by_kind(docs, "HorizontalPodAutoscaler") == []
    hpas = {d["metadata"]["name"]: d["spec"] for d in by_kind(prod_docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {WEB, WORKER}
    prod = production_values()
    for name, part in ((WEB, "web"), (WORKER, "worker")):
        spec, want = hpas[name], prod[part]["autoscaling"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert (spec["minReplicas"], spec["maxReplicas"]) == (want["minReplicas"], want["maxReplicas"])
        (metric,) = spec["metrics"]
        assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization",
                                                                 "averageUtilization": want["targetCPUUtilizationPercentage"]}}
        assert "replicas" not in one(prod_docs, "Deployment", name)["spec"]  # owned by the HPA


def test_pdbs_select_their_pods(docs: list[dict[str, Any]], chart: helm.Chart) -> None:
    pdbs = {d["metadata"]["name"]: d["spec"] for d in by_kind(docs, "PodDisruptionBudget")}
    assert set(pdbs) == {WEB, WORKER}
    for name, spec in pdbs.items():
        assert spec["maxUnavailable"] == 1
        assert spec["selector"]["matchLabels"] == one(docs, "Deployment", name)["spec"]["selector"]["matchLabels"]
    off = parse(render(chart, merged(REQUIRED, {"web": {"pdb": {"enabled": False}}})))
    assert [d["metadata"]["name"] for d in by_kind(off, "PodDisruptionBudget")] == [WORKER]


def test_ingress(chart: helm.Chart, prod_docs: list[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    assert by_kind(docs, "Ingress") == []
    (ingress,) = by_kind(prod_docs, "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "archplan-tls", "hosts": ["archplan.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "archplan.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    assert path["backend"] == {"service": {"name": RELEASE, "port": {"name": "http"}}}
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"


# --------------------------------------------------------------------------- worker

def test_worker_runs_the_worker_command(docs: list[dict[str, Any]], chart: helm.Chart) -> None:
    deploy = one(docs, "Deployment", WORKER)
    (container,) = pod_spec(deploy)["containers"]
    # `archplan worker --name <pod name>`: Kubernetes expands $(POD_NAME) from the env.
    assert container["args"] == ["worker", "--name", "$(POD_NAME)"] and "command" not in container
    assert "ports" not in container
    env = container_env(container, docs)
    assert env["POD_NAME"] == "<metadata.name>"
    assert env["ARCHPLAN_JOB_BACKEND"] == "procrastinate"
    assert env["ARCHPLAN_ENVIRONMENT"] == "production"
    assert env["ARCHPLAN_JOB_WORKERS"] == "1"  # the worker's concurrency
    assert pod_spec(deploy)["terminationGracePeriodSeconds"] == 30
    # Concurrency, and extra arguments for `archplan worker`, quoted as data.
    out = parse(render(chart, merged(REQUIRED, {"worker": {"concurrency": 4, "extraArgs": ["--x", "a: b"]}})))
    (container,) = pod_spec(one(out, "Deployment", WORKER))["containers"]
    assert container["args"] == ["worker", "--name", "$(POD_NAME)", "--x", "a: b"]
    assert container_env(container, out)["ARCHPLAN_JOB_WORKERS"] == "4"


def test_without_the_worker_the_web_pods_run_the_solves(chart: helm.Chart) -> None:
    out = parse(render(chart, merged(REQUIRED, {"worker": {"enabled": False, "autoscaling": {"enabled": True}},
                                                "web": {"embeddedJobWorkers": 3}})))
    assert [d["metadata"]["name"] for d in by_kind(out, "Deployment")] == [WEB]
    assert all(d["metadata"]["name"] != WORKER for d in out)
    (container,) = pod_spec(one(out, "Deployment", WEB))["containers"]
    env = container_env(container, out)
    assert env["ARCHPLAN_JOB_WORKERS"] == "3"
    assert "ARCHPLAN_JOB_BACKEND" not in env


# --------------------------------------------------------------------------- migrations

def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(docs: list[dict[str, Any]]) -> None:
    job = one(docs, "Job", MIGRATE)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == HOOK_EVENTS
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["activeDeadlineSeconds"] == 600
    # First the image's `migrate` command, then the bundled prices into an empty catalog.
    (migrate,) = spec["initContainers"]
    (load,) = spec["containers"]
    assert migrate["args"] == ["migrate"] and "command" not in migrate
    assert load["args"] == ["pricing", "import", "--bundled", "--if-empty"]
    # On first install the hook runs before the release's own resources exist: the Job
    # uses hook copies of the ServiceAccount and Secret, created before it (lower weight).
    weight = int(annotations["helm.sh/hook-weight"])
    sa = one(docs, "ServiceAccount", spec["serviceAccountName"])
    (secret_name,) = {ref["name"] for ref in secret_refs(migrate).values()}
    hook_secret = one(docs, "Secret", secret_name)
    for dep in (sa, hook_secret):
        assert dep["metadata"]["annotations"]["helm.sh/hook"] == HOOK_EVENTS
        assert int(dep["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
        assert "hook-succeeded" in dep["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    assert secret_data(hook_secret) == secret_data(one(docs, "Secret", RELEASE))
    # The Job sees the same settings as the pods (inline: the ConfigMap may not exist yet).
    (cm,) = by_kind(docs, "ConfigMap")
    for container in (migrate, load):
        env = container_env(container, docs)
        assert {k: env[k] for k in cm["data"]} == cm["data"]
        assert env["ARCHPLAN_SECRET_KEY"] == SECRET_KEY and env["ARCHPLAN_DATABASE_URL"] == DATABASE_URL
    # Nothing else is a hook: the app's own resources are managed by the release.
    hooks = {(d["kind"], d["metadata"]["name"]) for d in docs
             if "helm.sh/hook" in (d["metadata"].get("annotations") or {})}
    assert hooks == {("Job", MIGRATE), ("ServiceAccount", MIGRATE), ("Secret", MIGRATE)}


def test_migration_job_without_price_loading(chart: helm.Chart) -> None:
    out = parse(render(chart, merged(REQUIRED, {"migrations": {"loadBundledPrices": False}})))
    spec = pod_spec(one(out, "Job", MIGRATE))
    assert "initContainers" not in spec
    (container,) = spec["containers"]
    assert container["args"] == ["migrate"]


# --------------------------------------------------------------------------- secrets

def test_secret_values_stay_out_of_everything_but_the_secrets(rendered: dict[str, dict[str, str]],
                                                              docs: list[dict[str, Any]]) -> None:
    (cm,) = by_kind(docs, "ConfigMap")
    assert cm["data"]["ARCHPLAN_ENVIRONMENT"] == "production"
    assert not {"ARCHPLAN_SECRET_KEY", "ARCHPLAN_DATABASE_URL"} & set(cm["data"])
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert SECRET_KEY not in text and "s3cret-pw" not in text, doc["metadata"]["name"]
    assert not any(SECRET_KEY in text for name, text in rendered["defaults"].items() if name.endswith("NOTES.txt"))
    # The Secret holds them, base64-encoded, under the names the app reads.
    assert secret_data(one(docs, "Secret", RELEASE)) == {"ARCHPLAN_SECRET_KEY": SECRET_KEY,
                                                         "ARCHPLAN_DATABASE_URL": DATABASE_URL}
    for doc in pods(docs):
        for container in containers(doc):
            env = container_env(container, docs)
            assert env["ARCHPLAN_SECRET_KEY"] == SECRET_KEY and env["ARCHPLAN_DATABASE_URL"] == DATABASE_URL


def test_existing_secret_is_honoured(chart: helm.Chart, prod_docs: list[dict[str, Any]]) -> None:
    # The production values name a Secret managed outside Helm: the chart creates none.
    assert by_kind(prod_docs, "Secret") == []
    refs = {(doc["metadata"]["name"], c["name"], name): ref
            for doc in pods(prod_docs) for c in containers(doc) for name, ref in secret_refs(c).items()}
    assert {k[:2] for k in refs} == {(WEB, "web"), (WORKER, "worker"), (MIGRATE, "migrate"), (MIGRATE, "load-prices")}
    assert all(ref["name"] == "archplan-env" for ref in refs.values())
    assert {(name, ref["key"]) for (_, _, name), ref in refs.items()} == {
        ("ARCHPLAN_SECRET_KEY", "ARCHPLAN_SECRET_KEY"), ("ARCHPLAN_DATABASE_URL", "ARCHPLAN_DATABASE_URL")}
    # Key names of a Secret written by another tool.
    out = parse(render(chart, {"secret": {"existingSecret": "vault-archplan",
                                          "keys": {"secretKey": "session-key", "databaseUrl": "dsn"}}}))
    assert by_kind(out, "Secret") == []
    (web,) = pod_spec(one(out, "Deployment", WEB))["containers"]
    assert secret_refs(web) == {"ARCHPLAN_SECRET_KEY": {"name": "vault-archplan", "key": "session-key"},
                    "ARCHPLAN_DATABASE_URL": {"name": "vault-archplan", "key": "dsn"}}


def test_pods_roll_when_the_settings_change(chart: helm.Chart, docs: list[dict[str, Any]]) -> None:
    def checksums(out: list[dict[str, Any]]) -> dict[str, str]:
        return one(out, "Deployment", WEB)["spec"]["template"]["metadata"]["annotations"]

    base = checksums(docs)
    config = checksums(parse(render(chart, merged(REQUIRED, {"config": {"logLevel": "DEBUG"}}))))
    secret = checksums(parse(render(chart, merged(REQUIRED, {"secret": {"secretKey": SECRET_KEY[::-1]}}))))
    assert config["checksum/config"] != base["checksum/config"] and config["checksum/secret"] == base["checksum/secret"]
    assert secret["checksum/secret"] != base["checksum/secret"] and secret["checksum/config"] == base["checksum/config"]
    assert SECRET_KEY not in json.dumps(base)


def test_the_app_accepts_the_chart_settings(docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pod's environment, as Kubernetes resolves it, is a valid production configuration."""
    fields = {f"ARCHPLAN_{name.upper()}" for name in Settings.model_fields}
    for doc in pods(docs):
        for container in containers(doc):
            env = container_env(container, docs)
            names = {n for n in env if n.startswith("ARCHPLAN_")} - ENTRYPOINT_VARS
            assert names <= fields, f"{container['name']}: not app settings: {sorted(names - fields)}"
            for name in [n for n in os.environ if n.startswith("ARCHPLAN_")]:
                monkeypatch.delenv(name)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            settings = Settings(_env_file=None)
            assert settings.environment == "production"
            assert settings.secret_key == SECRET_KEY and settings.database_url == DATABASE_URL
            assert settings.port == 8000 and settings.solver == "highs"
            assert settings.job_backend == "procrastinate"
            if doc["metadata"]["name"] == WEB:
                assert settings.job_workers == 0
            if doc["metadata"]["name"] == WORKER:
                assert settings.job_workers == 1


def test_every_app_setting_is_configurable(docs: list[dict[str, Any]]) -> None:
    """A new setting in app/settings.py needs a place in the chart (config.* or a pod's env)."""
    set_by_chart = {name for doc in pods(docs) for c in containers(doc) for name in container_env(c, docs)}
    internal = {"ARCHPLAN_PRICING_DIR"}  # the bundled snapshot inside the image
    fields = {f"ARCHPLAN_{name.upper()}" for name in Settings.model_fields}
    assert fields - internal - set_by_chart == set()


# --------------------------------------------------------------------------- hardening

@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_every_pod_is_hardened(rendered: dict[str, dict[str, str]], variant: str) -> None:
    docs = parse(rendered[variant])
    assert {d["metadata"]["name"] for d in pods(docs)} == {WEB, WORKER, MIGRATE}
    accounts = {d["metadata"]["name"]: d for d in by_kind(docs, "ServiceAccount")}
    for doc in pods(docs):
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001  # the image's archplan user
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in containers(doc):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part])
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "sizeLimit" in volumes[tmp["name"]]["emptyDir"]
            assert plain_env(c)["HOME"] == "/tmp"


def test_image_reference(chart: helm.Chart, rendered: dict[str, dict[str, str]]) -> None:
    images = {c["image"] for doc in pods(parse(rendered["defaults"])) for c in containers(doc)}
    assert images == {f"archplan:{app.__version__}"}
    images = {c["image"] for doc in pods(parse(rendered["pinned"])) for c in containers(doc)}
    assert images == {f"registry.example.com/platform/archplan@{DIGEST}"}


# --------------------------------------------------------------------------- network

def test_network_policies(docs: list[dict[str, Any]], prod_docs: list[dict[str, Any]]) -> None:
    def policies(out: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"].removeprefix(RELEASE + "-"): d["spec"] for d in by_kind(out, "NetworkPolicy")}

    pol = policies(docs)
    assert set(pol) == {"default-deny", "egress", "web-ingress"}
    deny = pol["default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    # The deny and the egress allowances cover every pod of the release, the Job's too.
    for doc in pods(docs):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert deny["podSelector"]["matchLabels"].items() <= labels.items()
        assert pol["egress"]["podSelector"] == deny["podSelector"]
    dns, database = pol["egress"]["egress"]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert database == {"ports": [{"protocol": "TCP", "port": 5432}]}
    web = pol["web-ingress"]
    assert web["podSelector"]["matchLabels"] == one(docs, "Deployment", WEB)["spec"]["selector"]["matchLabels"]
    assert web["ingress"] == [{"ports": [{"protocol": "TCP", "port": "http"}]}]
    # Production: PostgreSQL's network only, and the ingress controller's namespace only.
    prod = policies(prod_docs)
    assert prod["egress"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert prod["web-ingress"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]


def test_production_values_file_is_a_working_example(prod_docs: list[dict[str, Any]]) -> None:
    text = PRODUCTION_VALUES.read_text(encoding="utf-8")
    assert "helm upgrade --install archplan deploy/helm/archplan" in text
    (web,) = pod_spec(one(prod_docs, "Deployment", WEB))["containers"]
    assert {"name": "FORWARDED_ALLOW_IPS", "value": "*"} in web["env"]
    spread = pod_spec(one(prod_docs, "Deployment", WEB))["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web" for c in spread)
    (worker,) = pod_spec(one(prod_docs, "Deployment", WORKER))["containers"]
    assert plain_env(worker)["ARCHPLAN_JOB_WORKERS"] == "2"
