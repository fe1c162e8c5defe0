"""Fixtures: a migrated database per test, on SQLite and (marked ``postgres``) on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade
from app.services import catalog as svc


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Rebuilt snapshots are cached by id; start every test cold so round-trips hit the DB."""
    svc._snapshot_cache.clear()
    svc._options_cache.clear()
    yield


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database("cat")
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(migrated_sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def sqlite_session(sqlite_engine: Engine) -> Iterator[Session]:
    with Session(sqlite_engine) as s:
        yield s
