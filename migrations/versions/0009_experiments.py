"""experiments and trials: runs grouped into experiments, a tuning tool's trials, the status pruned

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

- ``experiments``: a named group of runs (a search of a tuning tool, or runs a
  user grouped), with the tool and its objective and direction. A shared
  dictionary like ``keys``: writers add rows, never change them.
- ``runs.experiment_id``: the experiment a run belongs to (NULL for runs
  recorded before this revision, and for runs in none), also in the
  listing's covering index ``ix_runs_listing``.
- ``trials``: one row per run that trained a tuning tool's trial: the trial
  id, its number, the execution, the trial it continues, and the tool's
  state and score once it ended the trial. Row-level security on PostgreSQL,
  like every table of a run (revision 0008).
- ``stop_decisions.step``, ``.value``, ``.bits``: the step and value a tuning
  tool's pruner judged (NULL for other stops and older rows).
- The run and phase statuses gain ``pruned`` (a tuning tool stopped the
  trial). Both are strings with a CHECK constraint, not native enums, so the
  constraint is replaced: on PostgreSQL in place; on SQLite, which cannot
  alter a constraint, by rebuilding ``runs`` and ``phases`` (the tracker runs
  its migrations on SQLite with foreign keys off, so that dropping the old
  table deletes no row that refers to it; see ``tracker.db.migrate.upgrade``).

"""
from __future__ import annotations

import re
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OLD = ('running', 'finished', 'failed', 'interrupted', 'crashed')
_NEW = ('running', 'finished', 'failed', 'interrupted', 'pruned', 'crashed')
_LISTING = ['id', 'name', 'status', 'started_at', 'ended_at', 'model_name', 'param_count', 'host', 'pid',
            'phase_count', 'epoch_count', 'heartbeat_at']
_OWN_RUN = "EXISTS (SELECT 1 FROM runs r WHERE r.id = trials.run_id AND r.created_by = CURRENT_USER)"


def _in(values: tuple[str, ...]) -> str:
    return "status IN ({})".format(", ".join(f"'{v}'" for v in values))


def _statuses(table: str, name: str, values: tuple[str, ...]) -> None:
    """Replace the CHECK constraint of a status column (named as tracker.db.base's convention names it).

    PostgreSQL alters it in place. SQLite cannot: the table is rebuilt from
    its own ``CREATE TABLE`` text with only the constraint changed (SQLite's
    recipe for schema changes: create, copy, drop, rename, re-index; with
    foreign keys off, see the module docstring), so that the table keeps
    every column, constraint and index exactly as it had them.
    """
    constraint = f'ck_{table}_{name}'
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        op.drop_constraint(op.f(constraint), table, type_='check')
        op.create_check_constraint(op.f(constraint), table, sa.text(_in(values)))
        return
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    check = re.compile(rf"(CONSTRAINT\s+{constraint}\s+CHECK\s*)\((?:[^()]|\([^()]*\))*\)")
    assert len(check.findall(sql)) == 1, f"{table}: the {constraint} constraint was not found"
    new = check.sub(lambda m: m.group(1) + f"({_in(values)})", sql)
    new = re.sub(r'^CREATE TABLE\s+"?' + table + r'"?', f'CREATE TABLE "_new_{table}"', new)
    columns = ", ".join(f'"{r[1]}"' for r in bind.exec_driver_sql(f'PRAGMA table_info("{table}")'))
    indexes = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name", (table,)
    ).scalars().all()
    bind.exec_driver_sql(new)
    bind.exec_driver_sql(f'INSERT INTO "_new_{table}" ({columns}) SELECT {columns} FROM "{table}"')
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE "_new_{table}" RENAME TO "{table}"')
    for index in indexes:
        bind.exec_driver_sql(index)


def upgrade() -> None:
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('tool', sa.String(), nullable=True),
    sa.Column('objective', sa.String(), nullable=True),
    sa.Column('direction', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('name', name=op.f('uq_experiments_name'))
    )
    op.create_table('trials',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('trial', sa.String(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('execution', sa.Integer(), server_default='0', nullable=False),
    sa.Column('continues', sa.String(), nullable=True),
    sa.Column('state', sa.String(), nullable=True),
    sa.Column('score', sa.Double(), nullable=True),
    sa.Column('score_bits', sa.BigInteger(), nullable=True),
    sa.Column('score_text', sa.Text(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_trials_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_trials'))
    )
    # A column with a named foreign key, added in place on SQLite too (ADD COLUMN ... REFERENCES).
    op.execute("ALTER TABLE runs ADD COLUMN experiment_id INTEGER "
               "CONSTRAINT fk_runs_experiment_id_experiments REFERENCES experiments (id)")
    op.create_index(op.f('ix_runs_experiment_id'), 'runs', ['experiment_id'], unique=False)
    _statuses('runs', 'run_status', _NEW)
    _statuses('phases', 'phase_status', _NEW)
    # The listing's covering index gains the experiment (its name is shown beside each run).
    op.drop_index('ix_runs_listing', table_name='runs')
    op.create_index('ix_runs_listing', 'runs', [*_LISTING, 'experiment_id'], unique=False)
    with op.batch_alter_table('stop_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('value', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('bits', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE trials ENABLE ROW LEVEL SECURITY")
        op.execute("CREATE POLICY tracker_read ON trials FOR SELECT USING (true)")
        op.execute(f"CREATE POLICY tracker_own_runs ON trials FOR ALL USING ({_OWN_RUN}) WITH CHECK ({_OWN_RUN})")


def downgrade() -> None:
    op.execute("UPDATE runs SET status = 'failed' WHERE status = 'pruned'")
    op.execute("UPDATE phases SET status = 'failed' WHERE status = 'pruned'")
    with op.batch_alter_table('stop_decisions', schema=None) as batch_op:
        batch_op.drop_column('bits')
        batch_op.drop_column('value')
        batch_op.drop_column('step')
    _statuses('phases', 'phase_status', _OLD)
    _statuses('runs', 'run_status', _OLD)
    op.drop_index('ix_runs_listing', table_name='runs')
    op.create_index('ix_runs_listing', 'runs', _LISTING, unique=False)
    op.drop_index(op.f('ix_runs_experiment_id'), table_name='runs')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_runs_experiment_id_experiments'), 'runs', type_='foreignkey')
    with op.batch_alter_table('runs', schema=None) as batch_op:  # SQLite: rebuilt without the column and its key
        batch_op.drop_column('experiment_id')
    op.drop_table('trials')
    op.drop_table('experiments')
