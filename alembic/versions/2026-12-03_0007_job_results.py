"""job results

Jobs other than solves keep their outcome in the ``job`` row: ``result`` (JSON — a
cost-versus-deadline curve, a sensitivity table, a price refresh summary) and
``dedupe_key`` (a hash of the job's inputs, so asking for the same analysis of a design
again reuses the job instead of solving again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index('ix_job_design_key', ['design_id', 'dedupe_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_design_key')
        batch_op.drop_column('dedupe_key')
        batch_op.drop_column('result')
