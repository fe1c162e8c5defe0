"""Migrations run on SQLite and on a real PostgreSQL server, and agree with the models; on
PostgreSQL they also create the procrastinate job queue exactly as the installed
procrastinate defines it (and drop all of it on downgrade)."""

from __future__ import annotations

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.db import make_engine
from app.jobs.queue import include_object, libpq_conninfo
from app.migrations import current_revision, downgrade, head_revision, upgrade


def _check_models_match(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
            diff = compare_metadata(ctx, SQLModel.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"workspace", "design", "price_snapshot", "price_offering"} <= tables
    finally:
        engine.dispose()


def _queue_catalog(url: str) -> dict[str, list[tuple]]:
    """Every procrastinate object in the database, as PostgreSQL describes it."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
                   "FROM information_schema.columns WHERE table_schema = current_schema() "
                   "AND table_name LIKE 'procrastinate%'",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid::regclass::text LIKE 'procrastinate%'",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
                   "WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%'",
        "functions": "SELECT proname, pg_get_function_identity_arguments(oid), pg_get_functiondef(oid) "
                     "FROM pg_proc WHERE pronamespace = current_schema()::regnamespace "
                     "AND proname LIKE 'procrastinate%'",
        "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE tgname LIKE 'procrastinate%'",
        "types": "SELECT t.typname, t.typtype::text, e.enumlabel, e.enumsortorder, a.attname, "
                 "format_type(a.atttypid, a.atttypmod) FROM pg_type t "
                 "LEFT JOIN pg_enum e ON e.enumtypid = t.oid "
                 "LEFT JOIN pg_attribute a ON a.attrelid = t.typrelid AND t.typtype = 'c' AND a.attnum > 0 "
                 "WHERE t.typnamespace = current_schema()::regnamespace AND t.typname LIKE 'procrastinate%'",
    }
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return {name: sorted(conn.execute(sql).fetchall(), key=repr) for name, sql in queries.items()}


def test_sqlite_upgrade_matches_models(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    _check_models_match(sqlite_url)
    engine = make_engine(sqlite_url)
    assert not [t for t in inspect(engine).get_table_names() if t.startswith("procrastinate")]  # PostgreSQL only
    engine.dispose()


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
def test_postgres_queue_schema_is_procrastinate_s_own(pg_server) -> None:
    """The migrations create the schema of the procrastinate that is installed. When an upgrade
    of procrastinate changes its schema, this fails: add a revision that applies the files of
    procrastinate/sql/migrations/ between the two versions."""
    from procrastinate.schema import SchemaManager

    migrated = pg_server.create_database("mig")
    upgrade(migrated)
    reference = pg_server.create_database("ref")
    with psycopg.connect(libpq_conninfo(reference), autocommit=True) as conn:
        conn.execute(SchemaManager.get_schema())
    expected = _queue_catalog(reference)
    assert len(expected["functions"]) > 10 and len(expected["columns"]) > 10  # the catalog queries see it
    assert _queue_catalog(migrated) == expected


@pytest.mark.postgres
def test_postgres_downgrade_and_upgrade_again(pg_server) -> None:
    url = pg_server.create_database("mig")
    upgrade(url)
    assert _queue_catalog(url)["functions"]
    downgrade(url, "0005")  # the queue's revision only: the accounts tables stay
    assert all(rows == [] for rows in _queue_catalog(url).values())
    engine = make_engine(url)
    assert "app_user" in inspect(engine).get_table_names()
    engine.dispose()
    downgrade(url, "base")
    upgrade(url)
    _check_models_match(url)
    assert _queue_catalog(url)["functions"]
