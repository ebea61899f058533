"""Logged values over time: epochs, batches and evaluate results, wide or tidy.

Plain functions behind ``Store.epochs``, ``Store.batches`` and
``Store.evaluations`` (documented there). Values are bit-exact. In a wide
frame a key a row did not log is missing (``<NA>``), distinct from a logged
NaN: a column every row logged is ``float64``; one with gaps is pandas'
nullable ``Float64``, which keeps a logged NaN as NaN and a gap as ``<NA>``;
a column holding text, big integers or a logged None is ``object``.

Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, column, select, table

from tracker.db.tables import (
    BatchExtra,
    Epoch,
    EpochValue,
    Key,
    KeySet,
    Phase,
    PhaseValue,
)
from tracker.errors import InvalidArgumentError
from tracker.status import PhaseKind
from tracker.store.base import PLAIN, decode_numbers, int_columns
from tracker.store.bulk import driver_rows
from tracker.store.filters import in_view
from tracker.store.names import shown_key
from tracker.store.runs import add_call, call_numbers

__all__ = ["epochs_frame", "batches_frame", "batch_curves", "BatchCurves", "evaluations_frame", "PHASES", "META_COLUMNS"]

#: The packed batch rows as plain columns: read without SQLAlchemy's type processing (``batch_curves``).
_BATCH_CELLS = table("batches", *(column(c) for c in ("phase_id", "step", "epoch", "batch", "keyset_id", "vals")))

#: The phase kinds ``batches`` accepts.
PHASES = tuple(k.value for k in PhaseKind)

#: The columns of epoch, batch and evaluation frames that are not logged keys
#: (shared by the reports, the plots and the views).
META_COLUMNS = (
    "run_id", "phase", "phase_seq", "call", "epoch", "batch", "step", "elapsed", "started_at", "ended_at", "redone",
    "superseded", "status",
)


def _named(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """``(owner, key, value, bits, text)`` rows with each key under its shown name (``tracker.store.names``)."""
    return [(r[0], shown_key(r[1]), *r[2:]) for r in rows]


def _columns(n: int, cells: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
             plain_keys: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Build the wide columns from, per key, ``(row index, floats, others)``.

    ``plain_keys`` are known to hold only floats (their ``others`` are not looked at).
    """
    out: dict[str, Any] = {}
    for key in sorted(cells):
        rows, floats, others = cells[key]
        plain = (np.ones(len(rows), dtype=bool) if key in plain_keys
                 else np.fromiter((o is PLAIN for o in others), dtype=bool, count=len(others)))
        if plain.all():
            values = np.full(n, np.nan)
            values[rows] = floats
            if len(rows) == n:
                out[key] = values
            else:
                present = np.zeros(n, dtype=bool)
                present[rows] = True
                out[key] = pd.arrays.FloatingArray(values, ~present)
        else:
            column = np.full(n, pd.NA, dtype=object)
            for r, f, o, p in zip(rows, floats, others, plain):
                column[r] = float(f) if p else o
            out[key] = pd.Series(column, dtype="object")
    return out


def _widen(meta: pd.DataFrame, row_of: dict[Any, int], long: Sequence[tuple[Any, str, Any, Any, Any]]) -> pd.DataFrame:
    """``meta`` (one row per owner) joined with one column per key of ``long`` rows.

    ``long`` holds ``(owner, key, value, bits, text)``; ``row_of`` maps an
    owner to its row in ``meta``.
    """
    if not long:
        return meta
    owners, keys, values, bits, texts = zip(*long)
    floats, others = decode_numbers(values, bits, texts)
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_key[key].append(i)
    cells = {}
    for key, idx in by_key.items():
        positions = np.array(idx)
        cells[key] = (np.array([row_of[owners[i]] for i in idx]), floats[positions], others[positions])
    wide = pd.DataFrame(_columns(len(meta), cells), index=meta.index)
    return pd.concat([meta, wide], axis=1)


def _tidy(meta: pd.DataFrame, row_of: dict[Any, int], long: Sequence[tuple[Any, str, Any, Any, Any]],
          run_id: str) -> pd.DataFrame:
    """One row per owner and key: ``run_id``, the meta columns, ``key``, ``value``."""
    columns = ["run_id", *meta.columns, "key", "value"]
    if not long:
        return pd.DataFrame(columns=columns)
    owners, keys, values, bits, texts = zip(*long)
    floats, others = decode_numbers(values, bits, texts)
    order = sorted(range(len(long)), key=lambda i: (row_of[owners[i]], keys[i]))
    picked = meta.iloc[[row_of[owners[i]] for i in order]].reset_index(drop=True)
    plain = all(others[i] is PLAIN for i in order)
    value: Any = floats[order] if plain else pd.Series(
        [float(floats[i]) if others[i] is PLAIN else others[i] for i in order], dtype="object"
    )
    tidy = picked.assign(key=[keys[i] for i in order], value=value)
    tidy.insert(0, "run_id", run_id)
    return tidy[columns]


def epochs_frame(engine: Engine, run_id: str, *, tidy: bool = False, attempts: bool = False) -> pd.DataFrame:
    """The epochs of a run's fits (see ``Store.epochs``)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Epoch.id, Phase.seq, Epoch.epoch, Epoch.started_at, Epoch.ended_at, Epoch.superseded)
            .join(Phase, Phase.id == Epoch.phase_id)
            .where(Phase.run_id == run_id, Phase.kind == PhaseKind.FIT)
            .order_by(Phase.seq, Epoch.epoch)
        ).all()
        if not attempts:
            redone_epochs = {r.epoch for r in rows if r.superseded}
            rows = [r for r in rows if not r.superseded]
        else:
            redone_epochs = {r.epoch for r in rows if r.superseded}
        ids = [r.id for r in rows]
        long: list[Any] = []
        for i in range(0, len(ids), 900):
            long.extend(_named(
                conn.execute(
                    select(EpochValue.epoch_id, Key.name, EpochValue.value, EpochValue.bits, EpochValue.text)
                    .join(Key, Key.id == EpochValue.key_id)
                    .where(EpochValue.epoch_id.in_(ids[i : i + 900]))
                ).all()
            ))
    meta = pd.DataFrame(
        {
            "phase": PhaseKind.FIT.value,
            "phase_seq": pd.array([r.seq for r in rows], dtype="int64"),
            "epoch": pd.array([r.epoch for r in rows], dtype="int64"),
            "started_at": pd.to_datetime(pd.Series([r.started_at for r in rows], dtype=object)),
            "ended_at": pd.to_datetime(pd.Series([r.ended_at for r in rows], dtype=object)),
            "redone": [(not r.superseded) and r.epoch in redone_epochs for r in rows],
        }
    )
    if attempts:
        meta["superseded"] = [bool(r.superseded) for r in rows]
    add_call(meta, call_numbers(engine, [run_id]), run_id)
    row_of = {epoch_id: i for i, epoch_id in enumerate(ids)}
    return _tidy(meta, row_of, long, run_id) if tidy else _widen(meta, row_of, long)


def _placeholder(conn: Any) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _nullable_ints(values: Sequence[Any]) -> Any:
    """An ``Int64`` column from ints and Nones, built without a Python loop per cell."""
    as_float = np.array(values, dtype=np.float64)  # None becomes NaN
    missing = np.isnan(as_float)
    if not missing.any():
        return as_float.astype(np.int64)
    return pd.arrays.IntegerArray(np.where(missing, 0, as_float).astype(np.int64), missing)


def batches_frame(engine: Engine, run_id: str, phase: str, *, tidy: bool = False) -> pd.DataFrame:
    """The recorded batches of one kind of phase of a run (see ``Store.batches``).

    The packed rows are read with the driver's cursor and decoded with NumPy
    (a million batches in about a second), never row by row.
    """
    if phase not in PHASES:
        raise InvalidArgumentError(f"phase must be {', '.join(PHASES[:-1])} or {PHASES[-1]}, not {phase!r}.")
    with engine.connect() as conn:
        phases = dict(
            conn.execute(
                select(Phase.id, Phase.seq).where(Phase.run_id == run_id, Phase.kind == PhaseKind(phase))
            ).all()
        )
        mark = _placeholder(conn)
        heads: list[tuple[Any, ...]] = []
        counts: list[tuple[int, int, int]] = []  # (phase id, seq, batches)
        extras: list[Any] = []
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for phase_id in sorted(phases, key=phases.__getitem__):
            # Plain tuples from the driver: no Row object per batch.
            cursor.execute(
                "SELECT step, epoch, batch, elapsed_us, keyset_id, vals FROM batches "
                f"WHERE phase_id = {mark} ORDER BY step", (phase_id,)
            )
            rows = cursor.fetchall()
            heads.extend(rows)
            counts.append((phase_id, phases[phase_id], len(rows)))
            extras.extend(
                conn.execute(
                    select(BatchExtra.phase_id, BatchExtra.step, Key.name, BatchExtra.value, BatchExtra.bits,
                           BatchExtra.text)
                    .join(Key, Key.id == BatchExtra.key_id)
                    .where(BatchExtra.phase_id == phase_id)
                ).all()
            )
        cursor.close()
        steps, epochs, batch_ids, elapsed, keyset_col, vals = zip(*heads) if heads else ((),) * 6
        del heads
        keysets = _keyset_names(conn, set(keyset_col) - {None})
    n = len(steps)
    phase_ids = np.repeat(np.array([c[0] for c in counts], dtype=np.int64), [c[2] for c in counts])
    meta = pd.DataFrame(
        {
            "phase": pd.Series([phase] * n, dtype="object"),
            "phase_seq": np.repeat(np.array([c[1] for c in counts], dtype=np.int64), [c[2] for c in counts]),
            "epoch": pd.array(_nullable_ints(epochs), dtype="Int64"),
            "batch": np.array(batch_ids, dtype=np.int64),
            "step": np.array(steps, dtype=np.int64),
            "elapsed": np.array(elapsed, dtype=np.float64) / 1e6,
        }
    )
    add_call(meta, call_numbers(engine, [run_id]), run_id)
    cells = _packed_cells(keyset_col, vals, keysets)
    row_of = {(int(p), s): i for i, (p, s) in enumerate(zip(phase_ids, steps))} if (extras or tidy) else {}
    long: list[tuple[Any, str, Any, Any, Any]] = [
        ((e.phase_id, e.step), shown_key(e.name), e.value, e.bits, e.text) for e in extras
    ]
    if tidy:
        for key, (rows_k, floats, _) in cells.items():
            long.extend(((int(phase_ids[r]), steps[r]), key, None, np.float64(f).view(np.int64), None)
                        for r, f in zip(rows_k, floats))
        return _tidy(meta, row_of, long, run_id)
    if long:
        owners, keys, values, bits, texts = zip(*long)
        floats_x, others_x = decode_numbers(values, bits, texts)
        by_key: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            by_key[key].append(i)
        for key, picks in by_key.items():  # one concatenation per key, however many extras
            rows_k, floats_k, others_k = cells.get(key, (np.empty(0, int), np.empty(0), np.empty(0, object)))
            if len(others_k) < len(rows_k):  # packed values are all plain floats: mark them so
                others_k = np.full(len(rows_k), PLAIN, dtype=object)
            at = np.array(picks, dtype=np.int64)
            cells[key] = (np.concatenate([rows_k, np.array([row_of[owners[i]] for i in picks], dtype=np.int64)]),
                          np.concatenate([floats_k, floats_x[at]]), np.concatenate([others_k, others_x[at]]))
    wide = pd.DataFrame(_columns(n, cells, plain_keys=set(cells) - {e[1] for e in long}), index=meta.index)
    return pd.concat([meta, wide], axis=1)


def _keyset_names(conn: Any, keyset_ids: set[int]) -> dict[int, list[str]]:
    """The ordered key names of each keyset id."""
    keysets: dict[int, list[str]] = {}
    if keyset_ids:
        names = dict(conn.execute(select(Key.id, Key.name)).all())
        for keyset_id, key_ids in conn.execute(
            select(KeySet.id, KeySet.key_ids).where(KeySet.id.in_(sorted(keyset_ids)))
        ):
            keysets[keyset_id] = [shown_key(names[int(k)]) for k in key_ids.split(",")]
    return keysets


def _packed_cells(keyset_col: Sequence[Any], vals: Sequence[Any], keysets: dict[int, list[str]],
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode the packed float64 values of batch rows, per key: (row index, floats, PLAIN markers)."""
    cells: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if not keysets:
        return cells
    ids = np.array(keyset_col, dtype=np.float64)  # None (no values) becomes NaN
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for keyset_id, names in keysets.items():
        index = np.flatnonzero(ids == keyset_id)
        blob = b"".join(vals) if len(index) == len(vals) else b"".join([vals[int(i)] for i in index])
        matrix = np.frombuffer(blob, dtype="<f8").reshape(len(index), len(names))
        for j, name in enumerate(names):
            parts[name].append((index, matrix[:, j]))
    for name, chunks in parts.items():
        index = np.concatenate([c[0] for c in chunks])
        floats = np.concatenate([c[1] for c in chunks]).astype(np.float64)
        cells[name] = (index, floats, np.empty(0, dtype=object))  # every value a plain float
    return cells


@dataclass(slots=True)
class BatchCurves:
    """The recorded batches of one kind of phase as NumPy arrays (see ``Store.batch_curves``).

    One position per batch, in Keras' order (the phases by ``phase_seq``,
    each by ``step``): ``phase_seq``, ``epoch`` (-1 where the batch has no
    epoch: evaluate, predict), ``batch`` and ``step`` are int64 arrays.
    ``values`` maps each logs key that any batch logged as a number to
    ``(rows, floats)``: the positions of the batches that logged it and the
    float64 values they logged, bit-exact (NaN, ±inf and -0.0 included).
    Values that are not floats (text, arrays, None, integers beyond 2**53)
    are left out; ``Store.batches`` has them.
    """

    phase: str
    phase_seq: np.ndarray
    epoch: np.ndarray
    batch: np.ndarray
    step: np.ndarray
    values: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.step)


def _int_array(cells: Sequence[Any]) -> np.ndarray:
    """Integer cells as int64, None as -1."""
    try:
        return np.array(cells, dtype=np.int64)
    except TypeError:  # some None
        return np.fromiter((-1 if c is None else c for c in cells), dtype=np.int64, count=len(cells))


def batch_curves(engine: Engine, run_id: str, phase: str) -> BatchCurves:
    """The float batch values of one kind of phase of a run, as arrays (see ``Store.batch_curves``).

    Reads the packed rows (three integers, the keyset and the blob per
    batch, through plain columns: no type processing) and decodes each
    keyset's blobs with one ``np.frombuffer``: no pandas, no Python object
    per value.
    """
    if phase not in PHASES:
        raise InvalidArgumentError(f"phase must be {', '.join(PHASES[:-1])} or {PHASES[-1]}, not {phase!r}.")
    b = _BATCH_CELLS.c
    parts: list[tuple[int, list[Any]]] = []
    with engine.connect() as conn:
        phases = conn.execute(
            select(Phase.id, Phase.seq).where(Phase.run_id == run_id, Phase.kind == PhaseKind(phase)).order_by(Phase.seq)
        ).all()
        for phase_id, seq in phases:
            stmt = select(b.epoch, b.batch, b.step, b.keyset_id, b.vals).where(b.phase_id == phase_id).order_by(b.step)
            parts.append((seq, driver_rows(conn, stmt)))
        rows = [row for _, chunk in parts for row in chunk] if len(parts) > 1 else (parts[0][1] if parts else [])
        epochs, batches, steps, keyset_ids, blobs = zip(*rows) if rows else ((), (), (), (), ())
        kinds = _int_array(keyset_ids)
        keysets = _keyset_names(conn, {int(k) for k in np.unique(kinds) if k >= 0})
    values: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for keyset_id, names in keysets.items():
        mine = np.flatnonzero(kinds == keyset_id)
        chosen = blobs if len(mine) == len(blobs) else [blobs[i] for i in mine]
        matrix = np.frombuffer(b"".join(chosen), dtype="<f8").reshape(len(mine), len(names))
        for j, name in enumerate(names):
            rows_k, floats = values.get(name, (np.empty(0, dtype=np.int64), np.empty(0)))
            values[name] = (np.concatenate([rows_k, mine]), np.concatenate([floats, matrix[:, j]]))
    for name, (rows_k, floats) in values.items():
        if len(keysets) > 1:  # rows of several keysets: back in batch order
            order = np.argsort(rows_k, kind="stable")
            values[name] = (rows_k[order], floats[order].astype(np.float64))
        else:
            values[name] = (rows_k, floats.astype(np.float64))
    return BatchCurves(
        phase=phase,
        phase_seq=np.repeat(np.array([seq for seq, _ in parts], dtype=np.int64), [len(c) for _, c in parts]),
        epoch=_int_array(epochs),
        batch=_int_array(batches),
        step=_int_array(steps),
        values=dict(sorted(values.items())),
    )


def evaluations_frame(engine: Engine, run_ids: Sequence[str] | None) -> pd.DataFrame:
    """One row per ``evaluate`` call (see ``Store.evaluations``)."""
    with engine.connect() as conn:
        stmt = select(Phase.id, Phase.run_id, Phase.seq, Phase.status, Phase.ended_at).where(
            Phase.kind == PhaseKind.EVALUATE
        )
        if run_ids is not None:
            stmt = stmt.where(Phase.run_id.in_(list(run_ids)))
        else:  # every run in view: never a deleted run's
            stmt = stmt.where(Phase.run_id.in_(in_view()))
        rows = conn.execute(stmt.order_by(Phase.run_id, Phase.seq)).all()
        ids = [r.id for r in rows]
        long: list[Any] = []
        for i in range(0, len(ids), 900):
            long.extend(_named(
                conn.execute(
                    select(PhaseValue.phase_id, Key.name, PhaseValue.value, PhaseValue.bits, PhaseValue.text)
                    .join(Key, Key.id == PhaseValue.key_id)
                    .where(PhaseValue.phase_id.in_(ids[i : i + 900]))
                ).all()
            ))
    meta = pd.DataFrame(
        {
            "run_id": pd.Series([r.run_id for r in rows], dtype="object"),
            "phase_seq": pd.array([r.seq for r in rows], dtype="int64"),
            "status": pd.Series([getattr(r.status, "value", r.status) for r in rows], dtype="object"),
            "ended_at": pd.to_datetime(pd.Series([r.ended_at for r in rows], dtype=object)),
        }
    )
    add_call(meta, call_numbers(engine, run_ids), None)
    frame = _widen(meta, {phase_id: i for i, phase_id in enumerate(ids)}, long)
    return int_columns(frame, [])
