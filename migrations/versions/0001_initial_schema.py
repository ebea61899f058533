"""initial schema: runs, phases, epochs, batches, logged values, params, tags

Revision ID: 0001
Revises: 
Create Date: 2026-11-26

Enum columns are short strings with CHECK constraints named after the
models' naming convention (ck_<table>_<enum name>), so later revisions can
find them by name on SQLite and PostgreSQL alike.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('status', sa.Enum('running', 'finished', 'failed', 'interrupted', 'crashed', name=op.f('ck_runs_run_status'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('host', sa.String(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('versions', sa.Text(), nullable=True),
    sa.Column('model_name', sa.String(), nullable=True),
    sa.Column('model_config', sa.Text(), nullable=True),
    sa.Column('param_count', sa.BigInteger(), nullable=True),
    sa.Column('trainable_param_count', sa.BigInteger(), nullable=True),
    sa.Column('non_trainable_param_count', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_started_at'), ['started_at'], unique=False)

    op.create_table('params',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_params_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_params'))
    )
    op.create_table('phases',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('fit', 'validation', 'evaluate', 'predict', name=op.f('ck_phases_phase_kind'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('running', 'finished', 'failed', 'interrupted', 'crashed', name=op.f('ck_phases_phase_status'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('keras_params', sa.Text(), nullable=True),
    sa.Column('optimizer_config', sa.Text(), nullable=True),
    sa.Column('batch_count', sa.Integer(), nullable=True),
    sa.Column('sample_count', sa.BigInteger(), nullable=True),
    sa.Column('output_shapes', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['phases.id'], name=op.f('fk_phases_parent_id_phases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_phases_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phases')),
    sa.UniqueConstraint('run_id', 'seq', name=op.f('uq_phases_run_id_seq'))
    )
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phases_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phases_run_id'), ['run_id'], unique=False)

    op.create_table('tags',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_tags_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_tags'))
    )
    op.create_table('batches',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('elapsed', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_batches_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'seq', name=op.f('pk_batches'))
    )
    op.create_table('epochs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_epochs_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epochs')),
    sa.UniqueConstraint('phase_id', 'epoch', name=op.f('uq_epochs_phase_id_epoch'))
    )
    op.create_table('phase_values',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('bits', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_phase_values_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'key', name=op.f('pk_phase_values'))
    )
    op.create_table('batch_values',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('batch_seq', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('bits', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id', 'batch_seq'], ['batches.phase_id', 'batches.seq'], name=op.f('fk_batch_values_phase_id_batch_seq_batches'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'batch_seq', 'key', name=op.f('pk_batch_values'))
    )
    op.create_table('epoch_values',
    sa.Column('epoch_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('bits', sa.BigInteger(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['epoch_id'], ['epochs.id'], name=op.f('fk_epoch_values_epoch_id_epochs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('epoch_id', 'key', name=op.f('pk_epoch_values'))
    )


def downgrade() -> None:
    op.drop_table('epoch_values')
    op.drop_table('batch_values')
    op.drop_table('phase_values')
    op.drop_table('epochs')
    op.drop_table('batches')
    op.drop_table('tags')
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phases_run_id'))
        batch_op.drop_index(batch_op.f('ix_phases_parent_id'))

    op.drop_table('phases')
    op.drop_table('params')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_runs_name'))

    op.drop_table('runs')
