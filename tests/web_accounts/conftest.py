"""Fixtures: the app without the embedded job runner, a second workspace with a planned
design, its job and plan (for the access checks), and clients signed in with each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.catalog.schema import Snapshot, load_snapshot
from app.db import make_engine
from app.main import create_app
from app.models import Workspace
from app.requirements.examples import load_example
from app.services import catalog as catalog_svc
from app.services import designs as svc
from app.settings import Settings
from tests.conftest import make_settings
from tests.signin import make_user, sign_in


@pytest.fixture(scope="session")
def bundled() -> Snapshot:
    return load_snapshot()


@pytest.fixture
def settings(migrated_sqlite_url: str) -> Settings:
    """Without the embedded job runner: queued jobs stay queued unless a test runs them."""
    return make_settings(migrated_sqlite_url, job_workers=0)


@dataclass
class Stock:
    """A design with a plan and a queued job in workspace ``slug``."""

    workspace_id: int
    slug: str
    design_id: int
    other_design_id: int
    plan_id: int
    job_id: int
    name: str


def stock_workspace(settings: Settings, bundled: Snapshot, name: str = "Team B",
                    design_name: str = "Secret Sprint of B") -> Stock:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            if catalog_svc.current_snapshot(s) is None:
                catalog_svc.import_snapshot(s, bundled, origin="test")
            from app.services import accounts as acc

            ws: Workspace = acc.create_workspace(s, name, None)
            d = svc.create_design(s, ws.id, load_example("llm-finetune-hipaa"), design_name)
            row = svc.plan_design(s, d, svc.planner_settings(time_limit_s=30))
            other = svc.create_design(s, ws.id, load_example("research-burst-deadline"), design_name + " II")
            svc.plan_design(s, other, svc.planner_settings(time_limit_s=30))
            job, _created = svc.enqueue_plan(s, d)
            return Stock(ws.id, ws.slug, d.id, other.id, row.id, job.id, design_name)
    finally:
        engine.dispose()


@pytest.fixture
def stock(settings, bundled) -> Stock:
    return stock_workspace(settings, bundled)


@pytest.fixture
def app_client(settings) -> Iterator[TestClient]:
    """The app, nobody signed in yet."""
    with TestClient(create_app(settings)) as c:
        yield c


def client_as(settings: Settings, email: str, *, workspace: str | None, role: str) -> TestClient:
    """A new (entered) TestClient signed in as a new user with ``role`` in ``workspace``."""
    make_user(settings, email, workspace=workspace, role=role)
    client = TestClient(create_app(settings))
    client.__enter__()
    sign_in(client, email)
    return client


@pytest.fixture
def make_client(settings) -> Iterator:
    made: list[TestClient] = []

    def make(email: str, *, workspace: str | None = svc.DEFAULT_WORKSPACE_SLUG, role: str = "editor") -> TestClient:
        c = client_as(settings, email, workspace=workspace, role=role)
        made.append(c)
        return c

    yield make
    for c in made:
        c.__exit__(None, None, None)
