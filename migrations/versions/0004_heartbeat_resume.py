"""heartbeat and resume: runs.heartbeat_at, phases.initial_epoch

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Adds runs.heartbeat_at (crash detection across hosts) and
phases.initial_epoch (the first epoch Keras passed; above 0 on a resume).
Existing rows keep NULL in both.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('initial_epoch', sa.Integer(), nullable=True))

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')

    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_column('initial_epoch')

