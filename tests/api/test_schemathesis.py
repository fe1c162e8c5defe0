"""The whole OpenAPI document against the app, in process (schemathesis + hypothesis).

Every operation gets generated requests (valid and invalid) with a write key of workspace A
in a database that holds both workspaces' designs, plans (feasible and infeasible) and a
queued job, ids 1, 2, 3…; the responses must never be 5xx, must use a documented status
code, content type and headers, and must match the documented schema.

The figures (operations, cases, failures, statuses) are printed at the end of the module's
run (``-s`` shows them; ``ARCHPLAN_SCHEMATHESIS_REPORT=path.json`` also writes them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from app.db import make_engine
from app.jobs import service as jobs_svc
from app.main import create_app
from app.migrations import upgrade
from app.models import Design
from tests.api.conftest import World, infeasible_spec, make_tenant
from tests.conftest import make_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
KEEP = {"1", "2", "3"}  # the fixture's designs
FIGURES: dict[str, Counter] = {"cases": Counter(), "failures": Counter(), "statuses": Counter()}


# schemathesis builds one test per operation from a schema loaded at import, so the app is
# created here; its database is made (migrated, filled) by the module fixture below, which
# also starts the app's lifespan. (Loading from a fixture instead needs pytest < 9.)
DB_DIR = Path(tempfile.gettempdir()) / f"archplan-schemathesis-{uuid.uuid4().hex[:12]}"
DB_URL = f"sqlite:///{DB_DIR / 'api.db'}"
APP = create_app(make_settings(DB_URL, job_workers=0, rate_limit_per_minute=100_000))
BODY_OPERATIONS = ["POST /api/v1/workspaces/{workspace_id}/designs", "PUT /api/v1/designs/{design_id}",
                   "PATCH /api/v1/designs/{design_id}"]
# The WorkloadSpec body has hundreds of fields: its boundary ("coverage") cases alone are about
# 1,300 requests per operation, so by default those three operations get the generated cases
# (positive and negative) only. ARCHPLAN_SCHEMATHESIS_BODY_COVERAGE=1 runs them too (~5,000
# cases in all); ARCHPLAN_SCHEMATHESIS_MAX_EXAMPLES sets the generated cases per operation.
CONFIG = SchemathesisConfig.from_dict({"operations": [{
    "include-name": BODY_OPERATIONS,
    "phases": {"coverage": {"enabled": os.environ.get("ARCHPLAN_SCHEMATHESIS_BODY_COVERAGE") == "1"}},
}]})
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module")
def api_world(small_plan, infeasible_plan) -> Iterator[World]:
    DB_DIR.mkdir(parents=True, exist_ok=True)
    upgrade(DB_URL)
    engine = make_engine(DB_URL)
    try:
        with Session(engine) as s:
            a, b = make_tenant(s, "ana@example.com", "Team A"), make_tenant(s, "bo@example.com", "Team B")
        with TestClient(APP) as client:
            world = World(client=client, engine=engine, a=a, b=b)
            d1 = world.design(a, name="Chatbot")
            world.store_plan(d1.id, small_plan)
            d2 = world.design(a, infeasible_spec(), name="Too cheap")
            world.store_plan(d2.id, infeasible_plan, infeasible_spec())
            d3 = world.design(b, name="Team B design")
            world.store_plan(d3.id, small_plan)
            with Session(engine) as s:
                jobs_svc.enqueue(s, "plan", design_id=d1.id, payload={"spec": s.get(Design, d1.id).spec})
                s.commit()
            # The ids the schema's examples name (1) hold real data, so explicit cases reach it.
            assert (d1.id, d2.id, d3.id) == (1, 2, 3)
            assert client.get("/api/v1/plans/1", headers=a.read).json()["status"] == "optimal"
            assert client.get("/api/v1/jobs/1", headers=a.read).json()["status"] == "queued"
            yield world
            report = {"operations": len(list(schema.get_all_operations())),
                      "cases": sum(FIGURES["cases"].values()),
                      "failing_cases": sum(FIGURES["failures"].values()),
                      "failing_operations": sorted(FIGURES["failures"]),
                      "statuses": dict(sorted(FIGURES["statuses"].items())),
                      "cases_per_operation": dict(FIGURES["cases"])}
            print("\nschemathesis:", json.dumps(report))
            if os.environ.get("ARCHPLAN_SCHEMATHESIS_REPORT"):
                Path(os.environ["ARCHPLAN_SCHEMATHESIS_REPORT"]).write_text(json.dumps(report, indent=2))
    finally:
        engine.dispose()
        shutil.rmtree(DB_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("ARCHPLAN_SCHEMATHESIS_MAX_EXAMPLES", "10")), deadline=None,
          database=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case, api_world: World) -> None:
    label = f"{case.method} {case.path}"
    if case.method == "DELETE" and str((case.path_parameters or {}).get("design_id")) in KEEP:
        # Deleting the fixture's designs would leave the later operations nothing to find:
        # delete a design made for the purpose instead (still a real 204).
        case.path_parameters["design_id"] = api_world.design(api_world.a, name="Disposable").id
    FIGURES["cases"][label] += 1
    try:
        response = case.call_and_validate(headers=api_world.a.write, checks=CHECKS)
    except BaseException:
        FIGURES["failures"][label] += 1
        raise
    FIGURES["statuses"][str(response.status_code)] += 1
