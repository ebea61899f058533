"""checkpoints and lineage: every save, the weights layouts, where each fit started

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

- ``checkpoints``: every save of a tracked model (ModelCheckpoint in every
  mode, BackupAndRestore, KerasTuner's trial checkpoints, ``model.save()`` /
  ``save_weights()`` during a fit or on the model after it) and every epoch a
  best-only saver skipped, with the saver's reasoning and the weights'
  fingerprint.
- ``weight_layouts``: per run, where each weight sits in a saved file, in the
  model's variable order (``tracker which`` reads a file's weights in that
  order to compute the fingerprint).
- ``fit_starts``: the weights each fit started from, and the recorded epoch
  of another run they equal (lineage), whole or for a sub-model.
- ``epoch_parts``: the fingerprints of the sub-models of a model at each
  epoch's end (for partial starts).
- an index on ``epochs.fingerprint`` (``tracker which`` and lineage look
  epochs up by their weights).

Existing runs keep what they had: they have no rows in the new tables.
On PostgreSQL the new tables get the row-level security of revision 0008.

"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OWN_RUN = "EXISTS (SELECT 1 FROM runs r WHERE r.id = {t}.run_id AND r.created_by = CURRENT_USER)"
_OWN_PHASE = ("EXISTS (SELECT 1 FROM phases p JOIN runs r ON r.id = p.run_id "
              "WHERE p.id = {t}.phase_id AND r.created_by = CURRENT_USER)")
_OWN_EPOCH = ("EXISTS (SELECT 1 FROM epochs e JOIN phases p ON p.id = e.phase_id JOIN runs r ON r.id = p.run_id "
              "WHERE e.id = {t}.epoch_id AND r.created_by = CURRENT_USER)")

#: The tables this revision adds, each belonging to a run, and how a row finds its run (as in 0008).
OWNED = {
    'checkpoints': _OWN_PHASE.format(t='checkpoints'),
    'fit_starts': _OWN_PHASE.format(t='fit_starts'),
    'weight_layouts': _OWN_RUN.format(t='weight_layouts'),
    'epoch_parts': _OWN_EPOCH.format(t='epoch_parts'),
}


def upgrade() -> None:
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('saved', sa.Boolean(create_constraint=True, name=op.f('ck_checkpoints_saved')), nullable=False),
    sa.Column('kind', sa.Enum('model', 'weights', 'backup', name=op.f('ck_checkpoints_save_kind'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('reason', sa.Enum('improved', 'not_improved', 'periodic', 'final', name=op.f('ck_checkpoints_save_reason'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Integer(), nullable=True),
    sa.Column('step', sa.BigInteger(), nullable=True),
    sa.Column('saver', sa.String(), nullable=False),
    sa.Column('hook', sa.String(), nullable=True),
    sa.Column('monitor', sa.String(), nullable=True),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('value_bits', sa.BigInteger(), nullable=True),
    sa.Column('best', sa.Double(), nullable=True),
    sa.Column('best_bits', sa.BigInteger(), nullable=True),
    sa.Column('fingerprint', sa.String(length=32), nullable=True),
    sa.Column('saved_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_checkpoints_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoints_phase_id'), ['phase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoints_fingerprint'), ['fingerprint'], unique=False)

    op.create_table('weight_layouts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=32), nullable=False),
    sa.Column('entries', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_weight_layouts_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weight_layouts')),
    sa.UniqueConstraint('run_id', 'format', 'digest', name=op.f('uq_weight_layouts_run_id_format_digest'))
    )
    with op.batch_alter_table('weight_layouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_weight_layouts_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_weight_layouts_digest'), ['digest'], unique=False)

    op.create_table('fit_starts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=True),
    sa.Column('layers', sa.Text(), nullable=True),
    sa.Column('source_run_id', sa.String(length=32), nullable=True),
    sa.Column('source_phase_seq', sa.Integer(), nullable=True),
    sa.Column('source_epoch', sa.Integer(), nullable=True),
    sa.Column('source_batch', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_fit_starts_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fit_starts'))
    )
    with op.batch_alter_table('fit_starts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fit_starts_phase_id'), ['phase_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fit_starts_source_run_id'), ['source_run_id'], unique=False)

    op.create_table('epoch_parts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('epoch_id', sa.Integer(), nullable=False),
    sa.Column('layer', sa.String(), nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['epoch_id'], ['epochs.id'], name=op.f('fk_epoch_parts_epoch_id_epochs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_epoch_parts'))
    )
    with op.batch_alter_table('epoch_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_epoch_parts_epoch_id'), ['epoch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_epoch_parts_fingerprint'), ['fingerprint'], unique=False)

    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_epochs_fingerprint'), ['fingerprint'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        for table, own in OWNED.items():
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY tracker_read ON {table} FOR SELECT USING (true)")
            op.execute(f"CREATE POLICY tracker_own_runs ON {table} FOR ALL USING ({own}) WITH CHECK ({own})")


def downgrade() -> None:
    with op.batch_alter_table('epochs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_epochs_fingerprint'))
    for table in ('epoch_parts', 'fit_starts', 'weight_layouts', 'checkpoints'):
        op.drop_table(table)  # its indexes and policies go with it
