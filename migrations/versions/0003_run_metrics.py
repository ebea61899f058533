"""run_metrics: best and final value per run and key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Adds run_metrics, the per-run summary of every numeric epoch-log key (best
min/max and final value with their epochs), kept up to date by the writer
with an upsert at each epoch end. Existing runs are backfilled from
epoch_values here, so sorting by best:KEY works on old databases too.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('run_metrics',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('best_min', sa.Double(), nullable=True),
    sa.Column('best_min_epoch', sa.Integer(), nullable=True),
    sa.Column('best_max', sa.Double(), nullable=True),
    sa.Column('best_max_epoch', sa.Integer(), nullable=True),
    sa.Column('final', sa.Double(), nullable=True),
    sa.Column('final_epoch', sa.Integer(), nullable=True),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key', name=op.f('pk_run_metrics'))
    )
    with op.batch_alter_table('run_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_run_metrics_key_best_max', ['key', 'best_max'], unique=False)
        batch_op.create_index('ix_run_metrics_key_best_min', ['key', 'best_min'], unique=False)
        batch_op.create_index('ix_run_metrics_key_final', ['key', 'final'], unique=False)



    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phase_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('epoch_count', sa.Integer(), server_default='0', nullable=False))
    op.execute(
        "UPDATE runs SET "
        "phase_count = (SELECT count(*) FROM phases WHERE phases.run_id = runs.id "
        "AND phases.kind != 'validation'), "
        "epoch_count = (SELECT count(*) FROM epochs JOIN phases ON phases.id = epochs.phase_id "
        "WHERE phases.run_id = runs.id)"
    )
    _backfill()


def _backfill() -> None:
    """Summarise the epochs already stored (fit phases, in write order)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT phases.run_id, epochs.epoch, epoch_values.key, epoch_values.value "
            "FROM epoch_values JOIN epochs ON epochs.id = epoch_values.epoch_id "
            "JOIN phases ON phases.id = epochs.phase_id "
            "WHERE phases.kind = 'fit' AND epoch_values.bits IS NOT NULL "
            "ORDER BY phases.seq, epochs.id"
        )
    ).all()
    summary: dict[tuple[str, str], dict] = {}
    for run_id, epoch, key, value in rows:
        s = summary.setdefault(
            (run_id, key),
            {"run_id": run_id, "key": key, "best_min": None, "best_min_epoch": None,
             "best_max": None, "best_max_epoch": None, "epochs": 0},
        )
        if value is not None:
            if s["best_min"] is None or value < s["best_min"]:
                s["best_min"], s["best_min_epoch"] = value, epoch
            if s["best_max"] is None or value > s["best_max"]:
                s["best_max"], s["best_max_epoch"] = value, epoch
        s["final"], s["final_epoch"] = value, epoch
        s["epochs"] += 1
    if summary:
        table = sa.table(
            "run_metrics",
            *(sa.column(c) for c in ("run_id", "key", "best_min", "best_min_epoch", "best_max",
                                      "best_max_epoch", "final", "final_epoch", "epochs")),
        )
        op.bulk_insert(table, list(summary.values()))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('epoch_count')
        batch_op.drop_column('phase_count')
    with op.batch_alter_table('run_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_run_metrics_key_final')
        batch_op.drop_index('ix_run_metrics_key_best_min')
        batch_op.drop_index('ix_run_metrics_key_best_max')

    op.drop_table('run_metrics')
