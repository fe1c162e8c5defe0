"""workspaces designs price snapshots

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 11:25:33.675243
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('price_snapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('offering_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('price_snapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_price_snapshot_is_current'), ['is_current'], unique=False)
        batch_op.create_index(batch_op.f('ix_price_snapshot_snapshot_id'), ['snapshot_id'], unique=True)

    op.create_table('workspace',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workspace_slug'), ['slug'], unique=True)

    op.create_table('design',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('design', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('price_offering',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('snapshot_pk', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('gpu_model', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('gpu_count', sa.Float(), nullable=False),
    sa.Column('gpu_memory_gb', sa.Float(), nullable=True),
    sa.Column('on_demand_hourly', sa.Float(), nullable=True),
    sa.Column('spot_hourly', sa.Float(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_pk'], ['price_snapshot.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('snapshot_pk', 'provider', 'region', 'instance_type', name='uq_offering_key')
    )
    with op.batch_alter_table('price_offering', schema=None) as batch_op:
        batch_op.create_index('ix_offering_snapshot_gpu', ['snapshot_pk', 'gpu_model'], unique=False)
        batch_op.create_index(batch_op.f('ix_price_offering_snapshot_pk'), ['snapshot_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('price_offering', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_price_offering_snapshot_pk'))
        batch_op.drop_index('ix_offering_snapshot_gpu')

    op.drop_table('price_offering')
    with op.batch_alter_table('design', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_workspace_id'))

    op.drop_table('design')
    with op.batch_alter_table('workspace', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workspace_slug'))

    op.drop_table('workspace')
    with op.batch_alter_table('price_snapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_price_snapshot_snapshot_id'))
        batch_op.drop_index(batch_op.f('ix_price_snapshot_is_current'))

    op.drop_table('price_snapshot')
