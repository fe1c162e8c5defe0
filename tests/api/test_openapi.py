"""The OpenAPI document of /api/v1: every operation secured, its success documented with an
example, its problems documented as application/problem+json, snake_case names throughout."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    from app.migrations import upgrade
    from tests.conftest import make_settings

    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'a.db'}"
    upgrade(url)
    with TestClient(create_app(make_settings(url, job_workers=0))) as c:
        return c.get("/openapi.json").json()


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        if path.startswith("/api/v1/"):
            for method, op in ops.items():
                yield method.upper(), path, op


def _component(spec: dict, schema: dict) -> dict | None:
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else None


def test_every_operation_is_secured_and_documents_its_problems(spec: dict) -> None:
    ops = list(_operations(spec))
    assert len(ops) == 22
    assert set(spec["components"]["securitySchemes"]) == {"api_key", "browser_session"}
    assert len({op["operationId"] for _, _, op in ops}) == len(ops)
    for method, path, op in ops:
        where = f"{method} {path}"
        assert op["security"] == [{"api_key": []}, {"browser_session": []}], where
        assert op.get("tags") and op.get("summary"), where
        codes = set(op["responses"])
        assert {"401", "422", "429"} <= codes, where
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            assert {"403", "404", "413"} <= codes, where
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (where, code)
        success = [c for c in codes if c.startswith("2")]
        assert len(success) == 1, where
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(problem["properties"])


def test_successes_have_schemas_and_examples(spec: dict) -> None:
    for method, path, op in _operations(spec):
        if path.startswith(("/api/v1/offerings", "/api/v1/snapshots")):
            continue
        where = f"{method} {path}"
        code = next(c for c in op["responses"] if c.startswith("2"))
        if code == "204":
            continue
        content = op["responses"][code]["content"]
        if path.endswith("/bundles/{name}"):
            assert list(content) == ["application/zip"], where
            continue
        component = _component(spec, content["application/json"]["schema"])
        assert component is not None, where
        assert component.get("examples") or content["application/json"].get("example"), where
    schedule = spec["paths"]["/api/v1/plans/{plan_id}/schedule"]["get"]["responses"]["200"]["content"]
    assert set(schedule) == {"application/json", "text/csv"}
    body = spec["paths"]["/api/v1/workspaces/{workspace_id}/designs"]["post"]["requestBody"]["content"]
    assert body["application/json"]["examples"]["small"]["value"]["spec"]["schema_version"] == "1"


def test_names_are_snake_case(spec: dict) -> None:
    for name, schema in spec["components"]["schemas"].items():
        for prop in schema.get("properties", {}):
            assert SNAKE.match(prop), f"{name}.{prop}"
    for method, path, op in _operations(spec):
        for param in op.get("parameters", []):
            if param["in"] in ("query", "path"):
                assert SNAKE.match(param["name"]), f"{method} {path} {param['name']}"
        assert all(SNAKE.match(seg.strip("{}")) for seg in path.split("/")[3:] if seg), path
