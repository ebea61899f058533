"""system metrics: the process's CPU and memory, the machine's memory, each GPU's use

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-10

- ``system_samples``: one row per sample for the process and its host
  (``device`` NULL) and one per GPU (``device`` set), sampled by a helper
  thread every ``system_interval`` seconds, at each epoch's end and when a
  run's outermost call ends (``tracker.db.system_tables``).

Existing runs keep what they had: they have no system samples.
On PostgreSQL the new table gets the row-level security of revision 0008.

"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: Union[str, Sequence[str], None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OWN_RUN = "EXISTS (SELECT 1 FROM runs r WHERE r.id = {t}.run_id AND r.created_by = CURRENT_USER)"

#: The tables this revision adds, each belonging to a run, and how a row finds its run (as in 0008).
OWNED = {'system_samples': _OWN_RUN.format(t='system_samples')}


def upgrade() -> None:
    op.create_table('system_samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('sampled_at', sa.DateTime(), nullable=False),
    sa.Column('trigger', sa.Enum('timer', 'epoch', 'end', name=op.f('ck_system_samples_sample_trigger'), native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('phase_seq', sa.Integer(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('device', sa.SmallInteger(), nullable=True),
    sa.Column('cpu_percent', sa.Double(), nullable=True),
    sa.Column('rss', sa.BigInteger(), nullable=True),
    sa.Column('memory_used', sa.BigInteger(), nullable=True),
    sa.Column('memory_total', sa.BigInteger(), nullable=True),
    sa.Column('gpu_utilization', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_system_samples_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_system_samples'))
    )
    with op.batch_alter_table('system_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_system_samples_run_id'), ['run_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        for table, own in OWNED.items():
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY tracker_read ON {table} FOR SELECT USING (true)")
            op.execute(f"CREATE POLICY tracker_own_runs ON {table} FOR ALL USING ({own}) WITH CHECK ({own})")


def downgrade() -> None:
    op.drop_table('system_samples')  # its index and policies go with it
