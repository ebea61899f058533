"""run owner: the role that created a run, and row-level security on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

- ``runs.created_by``: on PostgreSQL, the database role that created the run
  (default ``CURRENT_USER``). Runs recorded before this revision have NULL:
  only the tables' owner may change them. Always NULL on SQLite, which has no
  roles (a file is protected by its permissions).
- On PostgreSQL, row-level security on every table that belongs to a run:
  every role that may read a table reads all of its rows, but a role other
  than the tables' owner inserts, updates and deletes only rows of the runs
  it created. The owner (who runs the migrations) is not restricted. ``keys``
  and ``keysets`` are shared dictionaries, left out (``tracker db grant``
  gives the writer no UPDATE on them). Column privileges still come from
  ``tracker db grant``.

"""
from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OWN_RUN = "EXISTS (SELECT 1 FROM runs r WHERE r.id = {t}.run_id AND r.created_by = CURRENT_USER)"
_OWN_PHASE = ("EXISTS (SELECT 1 FROM phases p JOIN runs r ON r.id = p.run_id "
              "WHERE p.id = {t}.phase_id AND r.created_by = CURRENT_USER)")
_OWN_EPOCH = ("EXISTS (SELECT 1 FROM epochs e JOIN phases p ON p.id = e.phase_id JOIN runs r ON r.id = p.run_id "
              "WHERE e.id = {t}.epoch_id AND r.created_by = CURRENT_USER)")

#: Every table that belongs to a run, and how a row finds its run.
#: tests/test_server_roles.py checks that this covers every table but the dictionaries.
OWNED = {
    'runs': "runs.created_by = CURRENT_USER",
    **{t: _OWN_RUN.format(t=t) for t in ('params', 'tags', 'phases', 'run_metrics')},
    **{t: _OWN_PHASE.format(t=t) for t in (
        'epochs', 'phase_values', 'batches', 'batch_extras',
        'lr_changes', 'lr_series', 'stop_decisions', 'stopper_states', 'restores')},
    'epoch_values': _OWN_EPOCH.format(t='epoch_values'),
}


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by', sa.String(), nullable=True))
    if op.get_bind().dialect.name != 'postgresql':
        return
    # Set after the column exists, so older runs stay NULL instead of naming the migrating role.
    op.execute("ALTER TABLE runs ALTER COLUMN created_by SET DEFAULT CURRENT_USER")
    for table, own in OWNED.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tracker_read ON {table} FOR SELECT USING (true)")
        op.execute(f"CREATE POLICY tracker_own_runs ON {table} FOR ALL USING ({own}) WITH CHECK ({own})")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in OWNED:
            op.execute(f"DROP POLICY IF EXISTS tracker_own_runs ON {table}")
            op.execute(f"DROP POLICY IF EXISTS tracker_read ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('created_by')
