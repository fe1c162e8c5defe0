"""catalog filters and workspace custom prices

Denormalised filter/sort columns on ``price_offering`` (jurisdiction, compliance programs,
price scope, effective USD per GPU-hour per purchase option), the snapshot's own date and
parent on ``price_snapshot``, at most one current snapshot (partial unique index), and the
workspace custom-price tables ``custom_discount`` and ``custom_offering``. Revision 0001
had no way to fill ``price_offering``, so there are no existing rows to back-fill.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:39:37.972052
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('custom_discount',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('instance_family', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('purchase_option', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('percent', sa.Float(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id', 'provider', 'instance_family', 'purchase_option', name='uq_custom_discount_scope')
    )
    with op.batch_alter_table('custom_discount', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custom_discount_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('custom_offering',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('instance_type', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workspace_id', 'provider', 'region', 'instance_type', name='uq_custom_offering_key')
    )
    with op.batch_alter_table('custom_offering', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custom_offering_workspace_id'), ['workspace_id'], unique=False)

    with op.batch_alter_table('price_offering', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accelerator_kind', sqlmodel.sql.sqltypes.AutoString(length=10), server_default='gpu', nullable=False))
        batch_op.add_column(sa.Column('price_scope', sqlmodel.sql.sqltypes.AutoString(length=20), server_default='instance', nullable=False))
        batch_op.add_column(sa.Column('effective_gpus', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('vcpus', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ram_gb', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('jurisdiction', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True))
        batch_op.add_column(sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True))
        batch_op.add_column(sa.Column('compliance_tags', sqlmodel.sql.sqltypes.AutoString(length=500), server_default='', nullable=False))
        batch_op.add_column(sa.Column('od_gpu_hourly', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('spot_gpu_hourly', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('reserved_gpu_hourly', sa.Float(), nullable=True))

    with op.batch_alter_table('price_snapshot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snapshot_date', sqlmodel.sql.sqltypes.AutoString(length=10), server_default='', nullable=False))
        batch_op.add_column(sa.Column('base_snapshot_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.create_index('ux_price_snapshot_one_current', ['is_current'], unique=True, sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))



def downgrade() -> None:
    with op.batch_alter_table('price_snapshot', schema=None) as batch_op:
        batch_op.drop_index('ux_price_snapshot_one_current', sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))
        batch_op.drop_column('base_snapshot_id')
        batch_op.drop_column('snapshot_date')

    with op.batch_alter_table('price_offering', schema=None) as batch_op:
        batch_op.drop_column('reserved_gpu_hourly')
        batch_op.drop_column('spot_gpu_hourly')
        batch_op.drop_column('od_gpu_hourly')
        batch_op.drop_column('compliance_tags')
        batch_op.drop_column('country')
        batch_op.drop_column('jurisdiction')
        batch_op.drop_column('ram_gb')
        batch_op.drop_column('vcpus')
        batch_op.drop_column('effective_gpus')
        batch_op.drop_column('price_scope')
        batch_op.drop_column('accelerator_kind')

    with op.batch_alter_table('custom_offering', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custom_offering_workspace_id'))

    op.drop_table('custom_offering')
    with op.batch_alter_table('custom_discount', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custom_discount_workspace_id'))

    op.drop_table('custom_discount')
