"""Fixtures: a migrated database per test, on SQLite and (marked ``postgres``) on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import make_engine
from app.services import catalog as svc


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Rebuilt snapshots are cached by id; start every test cold so round-trips hit the DB."""
    svc._snapshot_cache.clear()
    svc._options_cache.clear()
    yield


@pytest.fixture
def sqlite_engine(migrated_sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_session(sqlite_engine: Engine) -> Iterator[Session]:
    with Session(sqlite_engine) as s:
        yield s
