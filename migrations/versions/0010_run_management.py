"""run management: runs.note, runs.deleted_at

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

- ``runs.note``: free text a person wrote about the run (``tracker note``).
- ``runs.deleted_at``: when the run was moved to the trash (``tracker
  delete``); NULL for a run in view. Every listing and aggregate leaves out
  runs that have it; ``tracker undelete`` clears it and ``tracker gc``
  removes trashed runs for good.
- ``ix_runs_listing`` (as revision 0009 left it) gains ``deleted_at``, so the listing still reads the
  index alone (no wide run rows) when it leaves the trash out.

Both are columns of ``runs``: row-level security on PostgreSQL (revision
0008) already lets a writer change only the runs it created, and the
writer's own updates of a run row never set them, so an edit made while the
run trains is kept. Existing runs get NULL for both.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LISTING = [
    'id', 'name', 'status', 'started_at', 'ended_at', 'model_name', 'param_count',
    'host', 'pid', 'phase_count', 'epoch_count', 'heartbeat_at', 'experiment_id',
]  # as revision 0009 left it


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.drop_index('ix_runs_listing')
        batch_op.create_index('ix_runs_listing', LISTING + ['deleted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_listing')
        batch_op.create_index('ix_runs_listing', LISTING, unique=False)
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('note')
