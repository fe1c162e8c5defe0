"""Migrations run on SQLite and on a real PostgreSQL server, and agree with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import make_engine
from app.migrations import current_revision, downgrade, head_revision, upgrade


def _check_models_match(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, SQLModel.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"workspace", "design", "price_snapshot", "price_offering"} <= tables
    finally:
        engine.dispose()


def test_sqlite_upgrade_matches_models(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    _check_models_match(sqlite_url)


def test_sqlite_downgrade_and_upgrade_again(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    downgrade(sqlite_url, "base")
    engine = make_engine(sqlite_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(sqlite_url)
    _check_models_match(sqlite_url)


@pytest.mark.postgres
def test_postgres_upgrade_matches_models(pg_server) -> None:
    url = pg_server.create_database("mig")
    upgrade(url)
    _check_models_match(url)


@pytest.mark.postgres
def test_postgres_downgrade_and_upgrade_again(pg_server) -> None:
    url = pg_server.create_database("mig")
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    _check_models_match(url)
