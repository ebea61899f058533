"""compact values: a key dictionary, packed batch rows, superseded epochs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

- ``keys`` (id, name): every value refers to a small key id instead of
  repeating the key's text.
- ``epoch_values`` and ``phase_values`` become ``WITHOUT ROWID`` tables keyed
  by (owner, key_id), and keep ``bits`` only where the float ``value``
  cannot carry the number (NaN, -0.0, integers beyond float64).
- ``batches`` holds one row per batch with its float values packed as
  little-endian float64 (``vals``, in the order of ``keysets.key_ids``), keyed
  by (phase_id, step): for a fit, ``step`` is the batch's index in the whole
  fit; otherwise Keras' batch index. Non-float batch values move to
  ``batch_extras``. ``batches.elapsed`` becomes ``elapsed_us``.
- ``epochs.superseded`` marks epochs thrown away by a resumed fit;
  ``run_metrics`` (now keyed by key_id) and ``runs.epoch_count`` are
  recomputed without them.
- ``stopper_states``: each stopper's state (best, wait, patience...) at each
  epoch end, for live views (new rows only: older runs have none).

Every value is converted bit-exact; tests/test_migrations.py checks it on the
databases that earlier revisions wrote (tests/data/revNNNN.db).

"""
from __future__ import annotations

import struct
from collections import defaultdict
from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_NEG_ZERO_BITS = -(2**63)
_CHUNK = 5000


def _rename_old(table: str, constraints: Sequence[str]) -> None:
    op.rename_table(table, f"{table}_old")
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL names primary-key indexes schema-wide; free the names.
        for name in constraints:
            op.execute(f'ALTER TABLE {table}_old RENAME CONSTRAINT "{name}" TO "{name}_old"')


def _logged(owner: list[sa.Column], pk: str, fks: list[Any]) -> list[Any]:
    return [
        *owner,
        sa.Column('key_id', sa.Integer(), nullable=False),
        sa.Column('value', sa.Double(), nullable=True),
        sa.Column('bits', sa.BigInteger(), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        *fks,
        sa.ForeignKeyConstraint(['key_id'], ['keys.id'], name=op.f(f'fk_{pk}_key_id_keys')),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table('keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keys')),
    sa.UniqueConstraint('name', name=op.f('uq_keys_name'))
    )
    op.create_table('keysets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key_ids', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keysets')),
    sa.UniqueConstraint('key_ids', name=op.f('uq_keysets_key_ids'))
    )
    names = set()
    for table in ('epoch_values', 'phase_values', 'batch_values', 'run_metrics'):
        names.update(bind.execute(sa.text(f"SELECT DISTINCT key FROM {table}")).scalars())
    keys_table = sa.table('keys', sa.column('id'), sa.column('name'))
    if names:
        op.bulk_insert(keys_table, [{"name": n} for n in sorted(names)])
    key_ids = dict(bind.execute(sa.text("SELECT name, id FROM keys")).all())

    op.add_column('epochs', sa.Column('superseded', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
    _mark_superseded(bind)

    # -- epoch and phase values: key ids, bits only where needed ----------------
    for table, owner_col, owner_fk in (
        ('epoch_values', 'epoch_id', ('epochs', 'id')),
        ('phase_values', 'phase_id', ('phases', 'id')),
    ):
        _rename_old(table, [f'pk_{table}'])
        op.create_table(table, *_logged(
            [sa.Column(owner_col, sa.Integer(), nullable=False)], table,
            [sa.ForeignKeyConstraint([owner_col], [f'{owner_fk[0]}.{owner_fk[1]}'],
                                     name=op.f(f'fk_{table}_{owner_col}_{owner_fk[0]}'), ondelete='CASCADE'),
             sa.PrimaryKeyConstraint(owner_col, 'key_id', name=op.f(f'pk_{table}'))],
        ), sqlite_with_rowid=False)
        op.execute(sa.text(
            f"INSERT INTO {table} ({owner_col}, key_id, value, bits, text) "
            f"SELECT o.{owner_col}, k.id, o.value, "
            "CASE WHEN o.text IS NOT NULL OR o.value IS NULL OR o.bits = :negzero THEN o.bits END, o.text "
            f"FROM {table}_old o JOIN keys k ON k.name = o.key"
        ).bindparams(negzero=_NEG_ZERO_BITS))
        op.drop_table(f'{table}_old')

    # -- batches: one packed row per batch ----------------------------------------
    _rename_old('batch_values', ['pk_batch_values'])
    _rename_old('batches', ['pk_batches'])
    op.create_table('batches',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('elapsed_us', sa.BigInteger(), nullable=True),
    sa.Column('keyset_id', sa.Integer(), nullable=True),
    sa.Column('vals', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['keyset_id'], ['keysets.id'], name=op.f('fk_batches_keyset_id_keysets')),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_batches_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'step', name=op.f('pk_batches')),
    sqlite_with_rowid=False,
    )
    op.create_table('batch_extras', *_logged(
        [sa.Column('phase_id', sa.Integer(), nullable=False), sa.Column('step', sa.Integer(), nullable=False)],
        'batch_extras',
        [sa.ForeignKeyConstraint(['phase_id', 'step'], ['batches.phase_id', 'batches.step'],
                                 name=op.f('fk_batch_extras_phase_id_step_batches'), ondelete='CASCADE'),
         sa.PrimaryKeyConstraint('phase_id', 'step', 'key_id', name=op.f('pk_batch_extras'))],
    ), sqlite_with_rowid=False)
    _convert_batches(bind, key_ids)
    op.drop_table('batch_values_old')
    op.drop_table('batches_old')

    # -- run_metrics by key id, without superseded epochs -------------------------
    with op.batch_alter_table('run_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_run_metrics_key_final')
        batch_op.drop_index('ix_run_metrics_key_best_min')
        batch_op.drop_index('ix_run_metrics_key_best_max')
    _rename_old('run_metrics', ['pk_run_metrics'])
    op.create_table('run_metrics',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.Integer(), nullable=False),
    sa.Column('best_min', sa.Double(), nullable=True),
    sa.Column('best_min_epoch', sa.Integer(), nullable=True),
    sa.Column('best_max', sa.Double(), nullable=True),
    sa.Column('best_max_epoch', sa.Integer(), nullable=True),
    sa.Column('final', sa.Double(), nullable=True),
    sa.Column('final_epoch', sa.Integer(), nullable=True),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['keys.id'], name=op.f('fk_run_metrics_key_id_keys')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_run_metrics_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key_id', name=op.f('pk_run_metrics'))
    )
    with op.batch_alter_table('run_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_run_metrics_key_id_best_max', ['key_id', 'best_max'], unique=False)
        batch_op.create_index('ix_run_metrics_key_id_best_min', ['key_id', 'best_min'], unique=False)
        batch_op.create_index('ix_run_metrics_key_id_final', ['key_id', 'final'], unique=False)
    _rebuild_summaries(bind)
    op.drop_table('run_metrics_old')

    # -- stoppers' state at each epoch end, for live views ------------------------
    op.create_table('stopper_states',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('stopper', sa.String(), nullable=False),
    sa.Column('monitor', sa.String(), nullable=True),
    sa.Column('mode', sa.String(), nullable=True),
    sa.Column('min_delta', sa.Double(), nullable=True),
    sa.Column('patience', sa.Integer(), nullable=True),
    sa.Column('baseline', sa.Double(), nullable=True),
    sa.Column('start_from_epoch', sa.Integer(), nullable=True),
    sa.Column('best', sa.Double(), nullable=True),
    sa.Column('best_epoch', sa.Integer(), nullable=True),
    sa.Column('wait', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_stopper_states_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stopper_states'))
    )
    with op.batch_alter_table('stopper_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stopper_states_phase_id'), ['phase_id'], unique=False)


def _mark_superseded(bind: Any) -> None:
    """Epochs at or after a later resumed fit's initial epoch were thrown away."""
    fits = bind.execute(sa.text(
        "SELECT id, run_id, seq, initial_epoch FROM phases WHERE kind = 'fit' ORDER BY run_id, seq"
    )).all()
    by_run: dict[str, list[Any]] = defaultdict(list)
    for row in fits:
        by_run[row.run_id].append(row)
    for phases in by_run.values():
        for i, phase in enumerate(phases):
            later = [p.initial_epoch for p in phases[i + 1:] if p.initial_epoch and p.initial_epoch > 0]
            if later:
                bind.execute(
                    sa.text("UPDATE epochs SET superseded = :yes WHERE phase_id = :pid AND epoch >= :cut"),
                    {"yes": True, "pid": phase.id, "cut": min(later)},
                )


def _unpack(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def _convert_batches(bind: Any, key_ids: dict[str, int]) -> None:
    kinds = dict(bind.execute(sa.text("SELECT id, kind FROM phases")).all())
    keysets: dict[tuple[int, ...], int] = {}
    phase_ids = [r[0] for r in bind.execute(sa.text("SELECT DISTINCT phase_id FROM batches_old ORDER BY phase_id"))]
    batches = sa.table('batches', *(sa.column(c) for c in
                                    ('phase_id', 'step', 'epoch', 'batch', 'elapsed_us', 'keyset_id', 'vals')))
    extras_t = sa.table('batch_extras', *(sa.column(c) for c in ('phase_id', 'step', 'key_id', 'value', 'bits', 'text')))
    for phase_id in phase_ids:
        heads = bind.execute(sa.text(
            "SELECT seq, epoch, batch, elapsed FROM batches_old WHERE phase_id = :p ORDER BY seq"
        ), {"p": phase_id}).all()
        values: dict[int, list[Any]] = defaultdict(list)
        for seq, key, value, bits, text in bind.execute(sa.text(
            "SELECT batch_seq, key, value, bits, text FROM batch_values_old WHERE phase_id = :p ORDER BY batch_seq, key"
        ), {"p": phase_id}):
            values[seq].append((key, value, bits, text))
        # A fit's step: the batches of its earlier epochs plus Keras' index.
        base: dict[Any, int] = {}
        if kinds.get(phase_id) == 'fit':
            last: dict[Any, int] = {}
            for _, epoch, batch, _ in heads:
                last[epoch] = max(last.get(epoch, -1), batch)
            running = 0
            for epoch in sorted(last, key=lambda e: (e is None, e)):
                base[epoch] = running
                running += last[epoch] + 1
        rows, extras, seen = [], [], set()
        for seq, epoch, batch, elapsed in heads:
            step = base.get(epoch, 0) + batch
            if step in seen:
                continue  # a repeated batch index keeps its first record
            seen.add(step)
            floats, names = [], []
            for key, value, bits, text in values.get(seq, []):
                if bits is not None and text is None:
                    names.append(key_ids[key])
                    floats.append(_unpack(bits))
                else:
                    extras.append({"phase_id": phase_id, "step": step, "key_id": key_ids[key],
                                   "value": value, "bits": bits, "text": text})
            keyset = None
            if names:
                ids = tuple(names)
                keyset = keysets.get(ids)
                if keyset is None:
                    text_ids = ",".join(map(str, ids))
                    bind.execute(sa.text("INSERT INTO keysets (key_ids) VALUES (:k)"), {"k": text_ids})
                    keyset = keysets[ids] = bind.execute(
                        sa.text("SELECT id FROM keysets WHERE key_ids = :k"), {"k": text_ids}).scalar_one()
            rows.append({"phase_id": phase_id, "step": step, "epoch": epoch, "batch": batch,
                         "elapsed_us": None if elapsed is None else round(elapsed * 1e6), "keyset_id": keyset,
                         "vals": struct.pack(f"<{len(floats)}d", *floats) if names else None})
            if len(rows) >= _CHUNK:
                op.bulk_insert(batches, rows)
                rows = []
        if rows:
            op.bulk_insert(batches, rows)
        if extras:
            op.bulk_insert(extras_t, extras)


def _rebuild_summaries(bind: Any) -> None:
    rows = bind.execute(sa.text(
        "SELECT p.run_id, e.epoch, v.key_id, v.value FROM epoch_values v "
        "JOIN epochs e ON e.id = v.epoch_id JOIN phases p ON p.id = e.phase_id "
        "WHERE p.kind = 'fit' AND e.superseded = :no AND (v.value IS NOT NULL OR v.bits IS NOT NULL) "
        "ORDER BY p.run_id, p.seq, e.id"
    ), {"no": False}).all()
    summary: dict[tuple[str, int], dict[str, Any]] = {}
    for run_id, epoch, key_id, value in rows:
        s = summary.setdefault((run_id, key_id), {
            "run_id": run_id, "key_id": key_id, "best_min": None, "best_min_epoch": None,
            "best_max": None, "best_max_epoch": None, "epochs": 0})
        if value is not None:
            if s["best_min"] is None or value < s["best_min"]:
                s["best_min"], s["best_min_epoch"] = value, epoch
            if s["best_max"] is None or value > s["best_max"]:
                s["best_max"], s["best_max_epoch"] = value, epoch
        s["final"], s["final_epoch"] = value, epoch
        s["epochs"] += 1
    table = sa.table('run_metrics', *(sa.column(c) for c in (
        "run_id", "key_id", "best_min", "best_min_epoch", "best_max", "best_max_epoch", "final", "final_epoch",
        "epochs")))
    if summary:
        op.bulk_insert(table, list(summary.values()))
    op.execute(sa.text(
        "UPDATE runs SET epoch_count = (SELECT count(*) FROM epochs JOIN phases ON phases.id = epochs.phase_id "
        "WHERE phases.run_id = runs.id AND phases.kind = 'fit' AND epochs.superseded = :no)"
    ).bindparams(no=False))


def downgrade() -> None:
    raise NotImplementedError("Revision 0006 converts values in place and cannot be undone; restore a backup.")
