"""Rendering archplan's own Helm chart (deploy/helm/archplan) with the real Helm engine."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "archplan"
PRODUCTION_VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
RELEASE = "archplan"
NAMESPACE = "archplan"
SECRET_KEY = "k3y-" + "Zx9" * 12  # 40 characters, not the development default
DATABASE_URL = "postgresql+psycopg://archplan:s3cret-pw@db.internal:5432/archplan?sslmode=require"
#: The chart's required values (the defaults name no database and no key).
REQUIRED = {"secret": {"secretKey": SECRET_KEY, "databaseUrl": DATABASE_URL}}
POD_KINDS = {"Deployment", "Job"}
DIGEST = "sha256:" + "ab" * 32


def merged(base: dict[str, Any] | None, *overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge override dicts into a copy of base (lists and scalars are replaced)."""
    out = copy.deepcopy(base or {})
    for override in overrides:
        _merge(out, override)
    return out


def _merge(into: dict[str, Any], override: dict[str, Any]) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text(encoding="utf-8"))


def render(chart: helm.Chart, values: dict[str, Any] | None = None, **opts: Any) -> dict[str, str]:
    return chart.render(values=values, name=RELEASE, namespace=NAMESPACE, **opts)


def parse(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs = []
    for name in sorted(rendered):
        if name.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(rendered[name]) if d)
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def secret_data(doc: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal env values (no ConfigMap or Secret lookups)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment Kubernetes would give the container, resolved from the rendered
    ConfigMaps and Secrets (envFrom first, then env, which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == source["configMapRef"]["name"]]
        env.update(cm["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = f"<{item['valueFrom']['fieldRef']['fieldPath']}>"
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            (secret,) = [d for d in by_kind(docs, "Secret") if d["metadata"]["name"] == ref["name"]]
            env[item["name"]] = secret_data(secret)[ref["key"]]
    return env
