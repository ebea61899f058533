"""decisions: LR changes and series, stop decisions, restores, epoch fingerprints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Adds what the decisions issue records: every learning-rate change and the
LR series, early-stop decisions, restores found by weight fingerprints, and
the fingerprint of each epoch's weights. Existing rows are kept; old epochs
have no fingerprint (NULL).

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('lr_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('optimizer', sa.String(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=True),
    sa.Column('old_lr', sa.Double(), nullable=True),
    sa.Column('new_lr', sa.Double(), nullable=True),
    sa.Column('source', sa.String(), nullable=False),
    sa.Column('hook', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_lr_changes_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lr_changes'))
    )
    with op.batch_alter_table('lr_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lr_changes_phase_id'), ['phase_id'], unique=False)

    op.create_table('lr_series',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('optimizer', sa.String(), nullable=False),
    sa.Column('point', sa.Enum('phase_begin', 'epoch', 'batch', name=op.f('ck_lr_series_lr_point'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Integer(), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=True),
    sa.Column('lr', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_lr_series_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lr_series'))
    )
    with op.batch_alter_table('lr_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lr_series_phase_id'), ['phase_id'], unique=False)

    op.create_table('restores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('restored_epoch', sa.Integer(), nullable=True),
    sa.Column('last_epoch', sa.Integer(), nullable=True),
    sa.Column('restored_by', sa.String(), nullable=True),
    sa.Column('hook', sa.String(), nullable=True),
    sa.Column('at_epoch', sa.Integer(), nullable=True),
    sa.Column('fingerprint', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_restores_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_restores'))
    )
    with op.batch_alter_table('restores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_restores_phase_id'), ['phase_id'], unique=False)

    op.create_table('stop_decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('stopped', sa.Boolean(create_constraint=True, name=op.f('ck_stop_decisions_stopped')), nullable=False),
    sa.Column('stopper', sa.String(), nullable=False),
    sa.Column('hook', sa.String(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Integer(), nullable=True),
    sa.Column('monitor', sa.String(), nullable=True),
    sa.Column('mode', sa.String(), nullable=True),
    sa.Column('min_delta', sa.Double(), nullable=True),
    sa.Column('patience', sa.Integer(), nullable=True),
    sa.Column('baseline', sa.Double(), nullable=True),
    sa.Column('start_from_epoch', sa.Integer(), nullable=True),
    sa.Column('best', sa.Double(), nullable=True),
    sa.Column('best_epoch', sa.Integer(), nullable=True),
    sa.Column('wait', sa.Integer(), nullable=True),
    sa.Column('stopped_epoch', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_stop_decisions_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stop_decisions'))
    )
    with op.batch_alter_table('stop_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stop_decisions_phase_id'), ['phase_id'], unique=False)

    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.drop_column('fingerprint')

    with op.batch_alter_table('stop_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stop_decisions_phase_id'))

    op.drop_table('stop_decisions')
    with op.batch_alter_table('restores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_restores_phase_id'))

    op.drop_table('restores')
    with op.batch_alter_table('lr_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lr_series_phase_id'))

    op.drop_table('lr_series')
    with op.batch_alter_table('lr_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lr_changes_phase_id'))

    op.drop_table('lr_changes')
