"""Fixtures: a migrated database (SQLite, and PostgreSQL where marked) and a design in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade
from app.models import Design
from app.services import designs as design_svc


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database("jobs")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def design(session: Session) -> Design:
    ws = design_svc.get_or_create_workspace(session)
    return design_svc.create_design_from_example(session, ws.id, "research-burst-deadline")
