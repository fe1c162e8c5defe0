"""Fixtures for the REST API: two workspaces with their users and keys, on SQLite and (marked
``postgres``) on PostgreSQL, and an app without runner threads (queued solves run with
``app.state.job_runner.run_one()``, so nothing races the tests).

Prices: the database holds no snapshot here, so plans are priced from the bundled snapshot
(the planner's fallback) unless a test imports one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.catalog.schema import Snapshot, load_snapshot
from app.main import create_app
from app.models import Design
from app.planner.options import PlannerSettings
from app.planner.plan import Plan, make_plan
from app.requirements.spec import WorkloadSpec
from app.services import accounts as acc
from app.services import designs as svc
from tests.conftest import make_settings

N = 2**10  # cheap scrypt for test users
PROBLEM = "application/problem+json"

SMALL_SPEC: dict[str, Any] = {
    "schema_version": "1",
    "name": "Support chatbot",
    "performance": {
        "training": [{"name": "finetune", "reference_gpu": "A100-80GB", "gpu_hours": 400, "deadline_days": 14}],
        "inference": [{"name": "chat", "reference_gpu": "L4", "always_on_gpus": 2}],
    },
    "lifecycle": {"start_month": "2027-01", "horizon_months": 12},
}


def infeasible_spec() -> dict[str, Any]:
    """The small spec with a budget nothing can meet."""
    return {**SMALL_SPEC, "name": "Too cheap", "cost": {"total_budget": 10}}


@pytest.fixture(scope="session")
def bundled() -> Snapshot:
    return load_snapshot()


@pytest.fixture(scope="session")
def small_plan(bundled: Snapshot) -> Plan:
    """The small spec solved once against the bundled prices (stored by tests as needed)."""
    plan = make_plan(WorkloadSpec.model_validate(SMALL_SPEC), bundled, PlannerSettings())
    assert plan.status == "optimal" and plan.schedule, plan.message
    return plan


@pytest.fixture(scope="session")
def infeasible_plan(bundled: Snapshot) -> Plan:
    plan = make_plan(WorkloadSpec.model_validate(infeasible_spec()), bundled, PlannerSettings())
    assert plan.status == "infeasible", plan.status
    return plan


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Tenant:
    """A workspace, its admin and its keys."""

    workspace_id: int
    user_id: int
    email: str
    write_key: str
    read_key: str
    revoked_key: str

    @property
    def write(self) -> dict[str, str]:
        return bearer(self.write_key)

    @property
    def read(self) -> dict[str, str]:
        return bearer(self.read_key)


@dataclass
class World:
    client: TestClient
    engine: Engine
    a: Tenant
    b: Tenant

    def session(self) -> Session:
        return Session(self.engine)

    def run_jobs(self) -> list[int]:
        """Run every queued job now (in this thread); their ids."""
        ran = []
        while (job_id := self.client.app.state.job_runner.run_one()) is not None:
            ran.append(job_id)
        return ran

    def design(self, tenant: Tenant, spec: dict[str, Any] | None = None, name: str | None = None) -> Design:
        with self.session() as s:
            return svc.create_design(s, tenant.workspace_id, WorkloadSpec.model_validate(spec or SMALL_SPEC), name)

    def store_plan(self, design_id: int, plan: Plan, spec: dict[str, Any] | None = None) -> int:
        with self.session() as s:
            design = s.get(Design, design_id)
            return svc.save_plan(s, design, WorkloadSpec.model_validate(spec or SMALL_SPEC), plan).id


def make_tenant(session: Session, email: str, workspace: str) -> Tenant:
    user = acc.create_user(session, email, "correct horse battery", scrypt_n=N)
    ws = acc.create_workspace(session, workspace, user)
    write, _ = acc.create_api_key(session, ws.id, f"{workspace} automation", "read write", created_by=user.id)
    read, _ = acc.create_api_key(session, ws.id, f"{workspace} dashboard", "read", created_by=user.id)
    revoked, key = acc.create_api_key(session, ws.id, f"{workspace} old", "read write", created_by=user.id)
    acc.revoke_api_key(session, ws.id, key.id)
    return Tenant(workspace_id=ws.id, user_id=user.id, email=email, write_key=write, read_key=read,
                  revoked_key=revoked)


def build_world(engine: Engine, **settings: Any) -> Iterator[World]:
    url = engine.url.render_as_string(hide_password=False)
    with Session(engine) as s:
        a = make_tenant(s, "ana@example.com", "Team A")
        b = make_tenant(s, "bo@example.com", "Team B")
    app = create_app(make_settings(url, job_workers=0, **settings))
    with TestClient(app) as client:
        yield World(client=client, engine=engine, a=a, b=b)


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    """Two tenants on SQLite and on PostgreSQL."""
    yield from build_world(engine)


@pytest.fixture
def sqlite_world(migrated_sqlite_url: str) -> Iterator[World]:
    """Two tenants on SQLite only (for behaviour that does not depend on the database)."""
    from app.db import make_engine

    engine = make_engine(migrated_sqlite_url)
    try:
        yield from build_world(engine)
    finally:
        engine.dispose()
