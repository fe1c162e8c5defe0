"""procrastinate queue

The procrastinate job queue's tables, types, functions and triggers (its schema 3.10.0,
kept in ``alembic/sql/``), used by ``archplan worker`` when ``ARCHPLAN_JOB_BACKEND`` is
``procrastinate``: a procrastinate job only wakes a worker for a row of the ``job`` table,
which stays the record of every job. PostgreSQL only: on SQLite this revision changes
nothing (the embedded runner needs no queue).

The queue's objects are procrastinate's, not models: ``alembic/env.py`` and the migration
tests leave every ``procrastinate_*`` object out of the model comparison.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0-schema.sql"

TABLES = ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs", "procrastinate_workers")
TYPES = ("procrastinate_job_to_defer_v1", "procrastinate_job_event_type", "procrastinate_job_status")

# Every procrastinate_* function in the current schema, whatever their number and arguments.
DROP_FUNCTIONS = """
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || fn::text || ' CASCADE';
    END LOOP;
END;
$$
"""


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _run_script(sql: str) -> None:
    """Run a script of many statements (PL/pgSQL bodies, ``%`` in messages) as it is: through
    the driver without parameters, in the migration's transaction."""
    with op.get_bind().connection.driver_connection.cursor() as cursor:
        cursor.execute(sql)


def upgrade() -> None:
    if not _postgres():
        return
    _run_script(SCHEMA_FILE.read_text(encoding="utf-8"))


def downgrade() -> None:
    if not _postgres():
        return
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    _run_script(DROP_FUNCTIONS)
    for type_ in TYPES:
        op.execute(f"DROP TYPE IF EXISTS {type_}")
