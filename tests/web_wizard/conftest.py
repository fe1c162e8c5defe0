"""Fixtures: the app with the bundled prices in its database, designs with plans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.catalog.schema import Snapshot, load_snapshot
from app.db import make_engine
from app.models import Design
from app.requirements.examples import load_example
from app.requirements.spec import WorkloadSpec
from app.services import catalog as catalog_svc
from app.services import designs as svc
from tests.signin import signed_in_client


@pytest.fixture(scope="session")
def bundled() -> Snapshot:
    return load_snapshot()


@pytest.fixture
def priced_settings(settings, bundled):
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, bundled, origin="test")
    engine.dispose()
    return settings


@pytest.fixture
def priced_client(priced_settings) -> Iterator[TestClient]:
    """Signed in as an admin of the default workspace (where :func:`designs` puts them)."""
    with signed_in_client(priced_settings) as c:
        yield c


def one_region(spec: WorkloadSpec, region: str = "aws/us-east-1") -> WorkloadSpec:
    data = spec.model_dump(mode="json")
    data["compliance"]["allowed_regions"] = [region]
    data["name"] = spec.name + " (one region)"
    return WorkloadSpec.model_validate(data)


@pytest.fixture
def designs(priced_settings) -> dict[str, int]:
    """Designs in the default workspace: three planned, one not."""
    engine = make_engine(priced_settings.database_url)
    out: dict[str, int] = {}
    with Session(engine) as s:
        ws = svc.get_or_create_workspace(s)
        research = load_example("research-burst-deadline")
        for key, spec in (("research", research), ("hipaa", load_example("llm-finetune-hipaa")),
                          ("research_one_region", one_region(research))):
            d = svc.create_design(s, ws.id, spec)
            svc.plan_design(s, d, svc.planner_settings(time_limit_s=30))
            out[key] = d.id
        out["unplanned"] = svc.create_design(s, ws.id, research, "Research, not planned yet").id
    engine.dispose()
    return out


def stored_spec(settings, design_id: int) -> WorkloadSpec:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        design = s.get(Design, design_id)
        spec = svc.design_spec(design)
    engine.dispose()
    return spec
