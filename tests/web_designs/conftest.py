"""Fixtures: a migrated database (SQLite, and PostgreSQL where marked), the bundled prices.

The app's embedded job runner is off here (``job_workers=0``): tests run queued solves
themselves with ``app.state.job_runner.run_one()``, so nothing races them or sleeps.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session

from app.catalog.schema import Snapshot, load_snapshot
from app.db import make_engine
from app.services import catalog as catalog_svc
from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def bundled() -> Snapshot:
    return load_snapshot()


@pytest.fixture
def settings(migrated_sqlite_url: str) -> Settings:
    """The app settings without the embedded job runner (see the module docstring)."""
    return make_settings(migrated_sqlite_url, job_workers=0)


def import_bundled(url: str, snapshot: Snapshot) -> None:
    engine = make_engine(url)
    with Session(engine) as s:
        catalog_svc.import_snapshot(s, snapshot, origin="test")
    engine.dispose()


@pytest.fixture
def priced_settings(settings, bundled):
    """The app settings with the bundled snapshot imported as the current one."""
    import_bundled(settings.database_url, bundled)
    return settings
