"""The Helm bundle, rendered by the real Helm engine (helm-python-sdk -> libhelm_c).

The llm example's chart is written to disk and rendered once per module; every manifest is
validated with kubernetes-validate (strict schemas) and scanned with checkov.
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

from app.bundles.context import BundleContext, bundle_context
from app.bundles.helm import CHART_DIR, VALUES_SCHEMA, dump_yaml, render_helm
from app.catalog import load_snapshot
from app.planner.plan import make_plan
from app.requirements import load_example

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
NAMESPACE = "ml-workloads"
#: Newest schemas kubernetes-validate ships, and the oldest version the chart supports.
K8S_VERSIONS = ("1.37.0", "1.27.0")
CAPACITY = {"on_demand": "on-demand", "spot": "spot", "reserved": "reserved"}
INJECTIONS = ['a"b\n${x}{{ y }}', "'; rm -rf /"]
#: Strings YAML parsers disagree on when unquoted (Helm's Go parser reads y -> true, 1e3 -> 1000).
TRICKY = ["y", "n", "Y", "yes", "on", "off", "0o17", "017", "1e3", "0x1F", "1:20", ".5", "+1", "~", "null",
          "NULL", ".inf", "2026-11-24", "=", "<<", "true ", " lead", "#x", "- a", "? q", "!tag", "&a", "*a",
          "|", ">", "%", "@", "`", "a: b", "a #b", "\u2028x\u0085y", "\ufeffbom", "é€😀", "\t", *INJECTIONS]
POD_KINDS = {"Deployment", "Job", "CronJob"}


# --------------------------------------------------------------------------- helpers

def write_chart(files: dict[str, str], root: Path) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (chart_dir,) = {root / "/".join(p.split("/")[:2]) for p in files}
    return chart_dir


def render(chart: helm.Chart, values: dict[str, Any] | None = None, *, release: str) -> dict[str, str]:
    return chart.render(values=values, name=release, namespace=NAMESPACE)


def parse(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for name in sorted(rendered):
        if name.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(rendered[name]) if d)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def validate_all(docs: list[dict[str, Any]], version: str = K8S_VERSIONS[0]) -> None:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def llm() -> tuple[Any, Any]:
    spec = load_example("llm-finetune-hipaa")
    return spec, make_plan(spec, load_snapshot())


@pytest.fixture(scope="module")
def ctx(llm: tuple[Any, Any]) -> BundleContext:
    return bundle_context(*llm)


@pytest.fixture(scope="module")
def files(ctx: BundleContext) -> dict[str, str]:
    return render_helm(ctx)


@pytest.fixture(scope="module")
def chart_dir(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chart(files, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def chart(chart_dir: Path) -> Iterator[helm.Chart]:
    with helm.Chart.load(chart_dir) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def rendered(chart: helm.Chart, ctx: BundleContext) -> dict[str, str]:
    return render(chart, release=ctx.slug)


@pytest.fixture(scope="module")
def docs(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return parse(rendered)


@pytest.fixture(scope="module")
def defaults(chart: helm.Chart) -> dict[str, Any]:
    return chart.values


# --------------------------------------------------------------------------- the files

def test_bundle_layout_and_chart_metadata(files: dict[str, str], ctx: BundleContext) -> None:
    root = f"helm/{ctx.slug}/"
    assert all(p.startswith(root) for p in files)
    names = {p.removeprefix(root) for p in files}
    assert {"Chart.yaml", "values.yaml", "values.schema.json", "README.md", ".helmignore",
            "templates/_helpers.tpl", "templates/NOTES.txt", "templates/training.yaml",
            "templates/inference.yaml", "templates/data-quality.yaml", "templates/networkpolicy.yaml",
            "templates/serviceaccounts.yaml"} <= names
    # Go templates are copied verbatim, never rendered by Jinja.
    for path in CHART_DIR.rglob("*"):
        if path.is_file():
            assert files[root + path.relative_to(CHART_DIR).as_posix()] == path.read_text(encoding="utf-8")
    meta = yaml.safe_load(files[root + "Chart.yaml"])
    assert meta["apiVersion"] == "v2" and meta["name"] == ctx.slug and meta["version"] == "0.1.0"
    assert meta["appVersion"] == ctx.plan_id
    assert meta["annotations"]["archplan.io/plan-id"] == ctx.plan_id
    assert meta["annotations"]["archplan.io/snapshot-id"] == ctx.snapshot_id
    assert json.loads(files[root + "values.schema.json"]) == VALUES_SCHEMA


def test_rendering_is_deterministic(ctx: BundleContext, files: dict[str, str], chart: helm.Chart,
                                    rendered: dict[str, str]) -> None:
    assert render_helm(ctx) == files
    assert list(render_helm(ctx)) == sorted(files)
    assert render(chart, release=ctx.slug) == rendered


def test_yaml_reads_the_same_in_helm(files: dict[str, str], ctx: BundleContext) -> None:
    for name in ("values.yaml", "Chart.yaml"):
        text = files[f"helm/{ctx.slug}/{name}"]
        assert helm.values_from_yaml(text) == yaml.safe_load(text)
    text = dump_yaml({"strings": TRICKY})
    assert helm.values_from_yaml(text)["strings"] == yaml.safe_load(text)["strings"] == TRICKY


def test_default_values_satisfy_the_schema(defaults: dict[str, Any], chart: helm.Chart) -> None:
    jsonschema.Draft7Validator.check_schema(VALUES_SCHEMA)
    jsonschema.Draft7Validator(VALUES_SCHEMA).validate(defaults)
    assert chart.schema == VALUES_SCHEMA
    chart.validate_schema(defaults)


def test_helm_lint_is_clean(chart_dir: Path) -> None:
    report = helm.lint(chart_dir, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


# --------------------------------------------------------------------------- validity

@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_strictly(docs: list[dict[str, Any]], version: str) -> None:
    assert version in all_versions()
    assert {d["kind"] for d in docs} == {"CronJob", "Deployment", "Service", "HorizontalPodAutoscaler",
                                        "PodDisruptionBudget", "Job", "ConfigMap", "NetworkPolicy",
                                        "ServiceAccount"}
    validate_all(docs, version)


def test_strict_validation_catches_unknown_fields(docs: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(by_kind(docs, "Deployment")[0])
    pod_spec(broken)["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def test_checkov_passes(chart: helm.Chart, rendered: dict[str, str], defaults: dict[str, Any],
                        ctx: BundleContext, tmp_path: Path) -> None:
    if not CHECKOV.is_file():
        pytest.fail(f"checkov is missing: expected the checkov env at {CHECKOV} "
                    "(create it with `python -m venv .venv-checkov && .venv-checkov/bin/pip install checkov`)")
    # The defaults, and the chart as installed with digests and IRSA roles set.
    pinned = copy.deepcopy(defaults)
    digest = "sha256:" + "ab" * 32
    for item in [*pinned["training"]["jobs"], *pinned["inference"]["services"], pinned["dataQuality"]]:
        item["image"]["digest"] = digest
    for role in ("training", "serving"):
        pinned["serviceAccounts"][role]["roleArn"] = f"arn:aws:iam::123456789012:role/{role}"
    for variant, manifests in (("defaults", rendered),
                               ("pinned", render(chart, pinned, release=ctx.slug))):
        for name, text in manifests.items():
            if name.endswith(".yaml") and text.strip():
                target = tmp_path / variant / name.replace("/", "_")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 200
    skipped = report["results"]["skipped_checks"]
    # The only skip: image digests, and only while no digest is set.
    assert {c["check_id"] for c in skipped} == {"CKV_K8S_43"}
    assert all(c["file_path"].startswith("/defaults/") for c in skipped)
    assert all("image.digest" in c["check_result"]["suppress_comment"] for c in skipped)
    assert len(skipped) == len(ctx.training_jobs) + len(ctx.inference_services) + 1
    passed_43 = {c["resource"] for c in report["results"]["passed_checks"] if c["check_id"] == "CKV_K8S_43"}
    assert len(passed_43) == len(skipped)


@pytest.mark.parametrize("path, bad", [
    (("inference", "services", 0, "autoscaling", "minReplicas"), "many"),
    (("training", "jobs", 0, "gpus"), 0),
    (("training", "jobs", 0, "schedule"), "every quarter"),
    (("training", "jobs", 0, "capacityType"), "preemptible"),
    (("training", "jobs", 0, "image", "tag"), "latest"),
    (("serviceAccounts", "training", "roleArn"), "not-an-arn"),
    (("inference", "services", 0, "resources", "limits", "cpu"), "lots"),
    (("inference", "services", 0, "autoscalng"), {}),
    (("unknownKey",), True),
])
def test_schema_rejects_bad_values(chart: helm.Chart, defaults: dict[str, Any], ctx: BundleContext,
                                   path: tuple[Any, ...], bad: Any) -> None:
    values = copy.deepcopy(defaults)
    node = values
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values, release=ctx.slug)


# --------------------------------------------------------------------------- content

def test_one_cronjob_per_training_run(docs: list[dict[str, Any]], ctx: BundleContext) -> None:
    cronjobs = {d["metadata"]["labels"]["archplan.io/workload"]: d for d in by_kind(docs, "CronJob")}
    scheduled = [j for j in ctx.training_jobs if j.schedule]
    assert sorted(cronjobs) == sorted(j.name for j in scheduled) and scheduled
    for job in scheduled:
        cj = cronjobs[job.name]
        assert cj["spec"]["schedule"] == job.schedule == "0 3 1 */3 *"  # quarterly
        assert cj["spec"]["concurrencyPolicy"] == "Forbid"
        assert cj["metadata"]["namespace"] == NAMESPACE
        assert len(cj["metadata"]["name"]) <= 52
        jt = cj["spec"]["jobTemplate"]["spec"]
        assert jt["backoffLimit"] >= 1 and jt["activeDeadlineSeconds"] > 0
        spec = pod_spec(cj)
        assert spec["restartPolicy"] == "OnFailure"
        label = CAPACITY[job.capacity_type]
        assert spec["nodeSelector"] == {"archplan.io/capacity-type": label}
        assert {"key": "archplan.io/capacity-type", "operator": "Equal", "value": label,
                "effect": "NoSchedule"} in spec["tolerations"]
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                "effect": "NoSchedule"} in spec["tolerations"]
        (container,) = spec["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == job.gpus
        assert container["resources"]["requests"]["nvidia.com/gpu"] == job.gpus
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["ARCHPLAN_RESUME"] == ("latest" if job.checkpointable else "never")
        if job.capacity_type == "spot":
            assert spec["terminationGracePeriodSeconds"] >= 120


def test_run_once_is_a_job_and_long_names_stay_unique(chart: helm.Chart, defaults: dict[str, Any],
                                                       ctx: BundleContext) -> None:
    values = copy.deepcopy(defaults)
    base = values["training"]["jobs"][0]
    once = {**copy.deepcopy(base), "schedule": "", "capacityType": "reserved"}
    long_a = {**copy.deepcopy(base), "name": "x" * 60 + "-aa"}
    long_b = {**copy.deepcopy(base), "name": "x" * 60 + "-bb"}
    values["training"]["jobs"] = [once, long_a, long_b]
    docs = parse(render(chart, values, release=ctx.slug))
    validate_all(docs)
    (job,) = [d for d in by_kind(docs, "Job") if d["metadata"]["labels"]["archplan.io/workload"] == base["name"]]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["nodeSelector"] == {"archplan.io/capacity-type": "reserved"}
    names = [d["metadata"]["name"] for d in by_kind(docs, "CronJob")]
    assert len(names) == 2 and len(set(names)) == 2 and all(len(n) <= 52 for n in names)


def test_inference_service_hpa_and_pdb(docs: list[dict[str, Any]], ctx: BundleContext,
                                       defaults: dict[str, Any]) -> None:
    assert ctx.inference_services
    for svc in ctx.inference_services:
        def one(kind: str) -> dict[str, Any]:
            (doc,) = [d for d in by_kind(docs, kind) if d["metadata"]["labels"]["archplan.io/workload"] == svc.name]
            return doc
        deploy, service, hpa, pdb = one("Deployment"), one("Service"), one("HorizontalPodAutoscaler"), \
            one("PodDisruptionBudget")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (svc.min_replicas, svc.max_replicas) == (2, 8)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": deploy["metadata"]["name"]}
        assert "replicas" not in deploy["spec"]  # owned by the HPA
        selector = deploy["spec"]["selector"]["matchLabels"]
        pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert service["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
        spec = pod_spec(deploy)
        assert spec["nodeSelector"] == {"archplan.io/capacity-type": CAPACITY[svc.capacity_type]}
        (container,) = spec["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == svc.gpus_per_replica
        port = container["ports"][0]
        assert port["name"] == "http" and service["spec"]["ports"][0]["targetPort"] == "http"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == "http"
        assert spec["serviceAccountName"] == "serving"


def test_every_pod_is_hardened(docs: list[dict[str, Any]]) -> None:
    pods = [d for d in docs if d["kind"] in POD_KINDS]
    assert len(pods) == 3
    for doc in pods:
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] in {"training", "serving"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert c["imagePullPolicy"] == "Always"
            assert ":" in c["image"].rsplit("/", 1)[-1] or "@sha256:" in c["image"]
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part])
            (tmp,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]]


def test_network_policies(docs: list[dict[str, Any]], defaults: dict[str, Any], ctx: BundleContext,
                          chart: helm.Chart) -> None:
    policies = {d["metadata"]["name"].removeprefix(ctx.slug + "-"): d["spec"] for d in by_kind(docs, "NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    # The default deny covers every pod of the release.
    pods = [d for d in docs if d["kind"] in POD_KINDS]
    for doc in pods:
        labels = (doc["spec"]["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob"
                  else doc["spec"]["template"])["metadata"]["labels"]
        assert deny["podSelector"]["matchLabels"].items() <= labels.items()
    dns = policies["allow-dns"]["egress"][0]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    https = policies["allow-object-storage"]["egress"][0]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    for svc in ctx.inference_services:
        ingress = policies[f"{svc.name}-ingress"]
        assert ingress["policyTypes"] == ["Ingress"]
        rule = ingress["ingress"][0]
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
        assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"archplan.io/inference-client": "true"}}}]
    # The caller namespaces are configurable.
    values = copy.deepcopy(defaults)
    values["networkPolicy"]["inferenceIngress"]["namespaceSelectors"] = [{"matchLabels": {"team": "clinical-apps"}}]
    custom = by_kind(parse(render(chart, values, release=ctx.slug)), "NetworkPolicy")
    (ing,) = [d for d in custom if d["metadata"]["name"].endswith("-ingress")]
    assert ing["spec"]["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"team": "clinical-apps"}}}]


def test_irsa_service_accounts(docs: list[dict[str, Any]], rendered: dict[str, str], chart: helm.Chart,
                               defaults: dict[str, Any], ctx: BundleContext) -> None:
    accounts = {d["metadata"]["name"]: d for d in by_kind(docs, "ServiceAccount")}
    assert set(accounts) == {"training", "serving"}
    assert all("eks.amazonaws.com/role-arn" not in a["metadata"]["annotations"] for a in accounts.values())
    notes = next(v for k, v in rendered.items() if k.endswith("NOTES.txt"))
    assert "serviceAccounts.training.roleArn is empty" in notes
    values = copy.deepcopy(defaults)
    arn = "arn:aws:iam::123456789012:role/clinical-training"
    values["serviceAccounts"]["training"]["roleArn"] = arn
    out = render(chart, values, release=ctx.slug)
    accounts = {d["metadata"]["name"]: d for d in by_kind(parse(out), "ServiceAccount")}
    assert accounts["training"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == arn
    assert "eks.amazonaws.com/role-arn" not in accounts["serving"]["metadata"]["annotations"]
    notes = next(v for k, v in out.items() if k.endswith("NOTES.txt"))
    assert "serviceAccounts.training.roleArn is empty" not in notes
    assert "serviceAccounts.serving.roleArn is empty" in notes


def test_data_quality_job(docs: list[dict[str, Any]], ctx: BundleContext, defaults: dict[str, Any]) -> None:
    (cm,) = by_kind(docs, "ConfigMap")
    checks = json.loads(cm["data"]["checks.json"])
    sources = {s.name: s for s in ctx.spec.architecture.data_sources if s.quality}
    assert {c["name"] for c in checks} == set(sources) == {"ehr-notes", "reference-summaries"}
    for c in checks:
        assert c["location"] == sources[c["name"]].location
        assert c["quality"]["completeness_min_pct"] == sources[c["name"]].quality.completeness_min_pct
    (job,) = [d for d in by_kind(docs, "Job") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "data-quality"]
    (container,) = pod_spec(job)["containers"]
    dq = defaults["dataQuality"]
    assert container["command"] == dq["command"] and container["args"] == dq["args"]
    assert container["image"] == f'{dq["image"]["repository"]}:{dq["image"]["tag"]}'
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert any(v.get("configMap", {}).get("name") == cm["metadata"]["name"] for v in pod_spec(job)["volumes"])


# --------------------------------------------------------------------------- injection

@pytest.mark.parametrize("name", INJECTIONS)
def test_design_name_is_inert(name: str, llm: tuple[Any, Any], tmp_path: Path) -> None:
    spec, plan = llm
    ctx = bundle_context(spec.model_copy(update={"name": name}), plan)
    files = render_helm(ctx)
    root = f"helm/{ctx.slug}/"
    values = yaml.safe_load(files[root + "values.yaml"])
    assert values["design"]["name"] == name
    assert yaml.safe_load(files[root + "Chart.yaml"])["annotations"]["archplan.io/design-name"] == name
    with helm.Chart.load(write_chart(files, tmp_path)) as chart:
        assert chart.values["design"]["name"] == name  # Helm's own YAML parser agrees
        assert chart.metadata["annotations"]["archplan.io/design-name"] == name
        out = chart.render(name=ctx.slug, namespace=NAMESPACE)
    docs = parse(out)
    validate_all(docs)
    # The name appears only where the chart prints it, verbatim; nothing in it was executed.
    hits = [(doc["kind"], path) for doc in docs for path, text in strings(doc)
            if name in text or "{{" in text or "${" in text or "rm -rf" in text]
    assert hits and all(path[-2:] == ("annotations", "archplan.io/design-name") for _, path in hits)
    for doc in docs:
        assert doc["metadata"]["annotations"]["archplan.io/design-name"] == name
    assert not any(name in text for key, text in out.items() if key.endswith("NOTES.txt"))
