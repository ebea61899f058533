"""A run's epoch curves, by column and by key: what the run page draws, chart by chart.

``/api/runs/ID/curves`` answers with one array per epoch field and per
logs key asked for, so a page with 10,000 keys reads only the keys of the
charts in view (``?key=A&key=B``), and never builds a 10,000-column frame.
Without ``key`` every key comes back (a report holds that answer). Values
are bit-exact (``tracker.db.bits.decode``; NaN and ±inf as strings); an
epoch that did not log a key has null there, like a logged None. Keys by
their shown names (``tracker.store.names``). Imports neither Keras nor
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, column, func, select, table

from tracker.db.bits import decode
from tracker.db.tables import Batch, Epoch, Key, Phase, RunMetric
from tracker.db.types import unmark
from tracker.status import PhaseKind
from tracker.store.bulk import driver_rows
from tracker.store.filters import KEYS
from tracker.store.names import logged_key, shown_key
from tracker.store.runs import call_numbers
from tracker.ui.jsonable import jsonable

__all__ = ["epoch_curves", "run_keys", "MAX_KEYS"]

_VALUES = table("epoch_values", column("epoch_id"), column("key_id"), column("value"), column("bits"), column("text"))
#: Keys one request may ask for.
MAX_KEYS = 400


def run_keys(engine: Engine, run_id: str) -> list[str]:
    """The run's numeric epoch keys (those ``run_metrics`` summarises), by shown name, sorted."""
    with engine.connect() as conn:
        names = conn.execute(select(Key.name).join(RunMetric, RunMetric.key_id == Key.id)
                             .where(RunMetric.run_id == run_id)).scalars().all()
    return sorted(shown_key(n) for n in names)


def epoch_curves(engine: Engine, run_id: str, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the run's finished fit epochs as columns, with the values of ``keys`` (default every key).

    Members: ``phase_seq``, ``call``, ``epoch``, ``started_at``, ``ended_at``
    (ISO 8601 UTC), ``step`` (the run's batches trained by the end of the
    epoch, counting every fit: null where no batch was recorded), and
    ``values``: per key, one value per epoch. Superseded epochs (redone by
    a resumed job) are left out.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            select(Epoch.id, Phase.id, Phase.seq, Epoch.epoch, Epoch.started_at, Epoch.ended_at)
            .join(Phase, Phase.id == Epoch.phase_id)
            .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT, Epoch.superseded.is_(False))
            .order_by(Phase.seq, Epoch.epoch)
        ).all()
        position = {r[0]: i for i, r in enumerate(rows)}
        phase_ids = sorted({r[1] for r in rows})
        last_step: dict[tuple[int, int], int] = {}
        offsets: dict[int, int] = {}
        if phase_ids:
            for phase_id, epoch, step in conn.execute(
                select(Batch.phase_id, Batch.epoch, func.max(Batch.step)).where(Batch.phase_id.in_(phase_ids))
                .group_by(Batch.phase_id, Batch.epoch)
            ):
                if epoch is not None:
                    last_step[(phase_id, epoch)] = step
            total = 0
            for phase_id in phase_ids:  # each fit's steps after the ones before it
                offsets[phase_id] = total
                mine = [s for (p, _), s in last_step.items() if p == phase_id]
                total += max(mine) + 1 if mine else 0
        v, k = _VALUES.c, KEYS.c
        query = select(v.epoch_id, k.name, v.value, v.bits, v.text).select_from(_VALUES.join(KEYS, k.id == v.key_id))
        found = []
        for i in range(0, len(position), 900):
            part = query.where(v.epoch_id.in_(list(position)[i:i + 900]))
            if keys is not None:
                part = part.where(k.name.in_([logged_key(key) for key in keys]))
            found += driver_rows(conn, part)
        if conn.dialect.name == "postgresql":  # plain rows: the NUL-safe text columns' marks stay
            found = [(e, unmark(name), value, bits, unmark(text)) for e, name, value, bits, text in found]
    calls = call_numbers(engine, [run_id])
    n = len(rows)
    values: dict[str, list[Any]] = {}
    for epoch_id, name, value, bits, text in found:
        column = values.setdefault(shown_key(name), [None] * n)
        column[position[epoch_id]] = decode(value, bits, text)
    if keys is not None:
        for key in keys:
            values.setdefault(key, [None] * n)
    return {
        "phase_seq": [r[2] for r in rows],
        "call": [calls.get((run_id, r[2])) for r in rows],
        "epoch": [r[3] for r in rows],
        "started_at": [_iso(r[4]) for r in rows],
        "ended_at": [_iso(r[5]) for r in rows],
        "step": [(last_step[(r[1], r[3])] + 1 + offsets[r[1]]) if (r[1], r[3]) in last_step else None for r in rows],
        "values": {k: jsonable(v) for k, v in sorted(values.items())},
    }


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
