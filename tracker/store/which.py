"""Which recorded run and epoch a model file holds: ``Store.which`` and ``tracker which``.

The file's weights are read with h5py (``tracker.store.model_files``), put
in a recorded run's variable order with that run's stored layout
(``weight_layouts``, computed by Keras' own saving code when the run
trained), and hashed exactly as the tracker hashed ``model.get_weights()``
at each epoch end (``tracker.db.digest``). The digest is then looked up
among every run's epoch fingerprints and saves (both indexed). Only the
layouts whose every path, shape and dtype the file has are tried; each
distinct layout is hashed once, each array read at most once.

The match is exact: the file's weights are the epoch's, bit for bit (up to
a 2**-128 chance). Nothing is inferred from names, dates or paths, so a
renamed copy, or a file saved by other code (KerasTuner's trial
checkpoints), is found the same way. Imports neither Keras nor a backend.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from tracker.db.checkpoint_tables import Checkpoint, WeightLayout
from tracker.db.decision_tables import Restore, StopDecision
from tracker.db.digest import fingerprint_arrays
from tracker.db.tables import Epoch, EpochValue, Key, Phase, Run
from tracker.db.values import decode
from tracker.store.base import int_columns
from tracker.store.checkpoints import names_and_statuses
from tracker.store.model_files import ModelFile, open_model_file
from tracker.store.names import logged_key, shown_key
from tracker.store.runs import call_numbers, metrics_frame

__all__ = ["WHICH_COLUMNS", "file_fingerprints", "which_frame"]

#: The first columns of ``Store.which``; the epoch's logged values follow, one column per key.
WHICH_COLUMNS = ["file", "run_id", "name", "status", "phase", "phase_seq", "call", "epoch", "batch", "monitor",
                 "value", "is_best", "is_restored", "saved_as"]


def file_fingerprints(engine: Engine, model_file: ModelFile) -> set[str]:
    """The fingerprints of the file's weights under each recorded layout that fits the file."""
    with engine.connect() as conn:
        ids = list(conn.execute(select(func.min(WeightLayout.id)).where(WeightLayout.format == model_file.format)
                                .group_by(WeightLayout.digest)).scalars())
        layouts: list[Any] = []
        for i in range(0, len(ids), 900):
            layouts.extend(conn.execute(select(WeightLayout.entries).where(WeightLayout.id.in_(ids[i:i + 900]))).scalars())
    have = model_file.datasets
    arrays: dict[str, Any] = {}
    digests = set()
    for entries in layouts:
        if not all(path in have and _same_kind(have[path], shape, dtype) for path, dtype, shape in entries):
            continue
        missing = [(path, dtype) for path, dtype, _ in entries if path not in arrays]
        arrays.update(zip([p for p, _ in missing], model_file.arrays([p for p, _ in missing], [d for _, d in missing])))
        digests.add(fingerprint_arrays(arrays[path] for path, _, _ in entries))
    return digests


def _same_kind(found: tuple[tuple[int, ...], str], shape: list[int], dtype: str) -> bool:
    """A dataset (shape, dtype name) can hold a weight of the layout (legacy ``.h5`` writes bfloat16 as 2 opaque bytes)."""
    return found[0] == tuple(shape) and (found[1] == dtype or (dtype == "bfloat16" and found[1] == "void16"))


def _monitor(engine: Engine, run_id: str, logged: set[str]) -> str | None:
    """The key the run's savers or stoppers monitored, else ``val_loss``, else ``loss`` (if logged)."""
    with engine.connect() as conn:
        named = [m for (m,) in conn.execute(
            select(Checkpoint.monitor).join(Phase, Phase.id == Checkpoint.phase_id)
            .where(Phase.run_id == run_id, Checkpoint.monitor.is_not(None)).order_by(Checkpoint.id))]
        named += [m for (m,) in conn.execute(
            select(StopDecision.monitor).join(Phase, Phase.id == StopDecision.phase_id)
            .where(Phase.run_id == run_id, StopDecision.monitor.is_not(None)).order_by(StopDecision.id))]
    return next((k for k in [*named, "val_loss", "loss"] if k in logged), None)


def which_frame(engine: Engine, path: str | os.PathLike[str]) -> pd.DataFrame:
    """Every recorded epoch (or save) whose weights equal the file's (see ``Store.which``).

    Raises:
        ModelFileError: the file is missing, not a model file, or corrupt.
    """
    with open_model_file(path) as model_file:
        digests = file_fingerprints(engine, model_file)
    shown = os.fspath(path)
    found: dict[tuple[str, int, int, int | None], dict[str, Any]] = {}
    saves: dict[tuple[str, int, int, int | None], list[str]] = {}
    if digests:
        with engine.connect() as conn:
            for run_id, seq, end, epoch_id in conn.execute(
                select(Phase.run_id, Phase.seq, Epoch.epoch, Epoch.id).join(Phase, Phase.id == Epoch.phase_id)
                .join(Run, Run.id == Phase.run_id)
                .where(Epoch.fingerprint.in_(sorted(digests)), Run.deleted_at.is_(None))
                .order_by(Epoch.ended_at, Epoch.id)
            ):
                found.setdefault((run_id, seq, end, None), {"epoch_id": epoch_id})
            for run_id, seq, epoch, batch, saved_path in conn.execute(
                select(Phase.run_id, Phase.seq, Checkpoint.epoch, Checkpoint.batch, Checkpoint.path)
                .join(Phase, Phase.id == Checkpoint.phase_id).join(Run, Run.id == Phase.run_id)
                .where(Checkpoint.fingerprint.in_(sorted(digests)), Checkpoint.saved.is_(True), Run.deleted_at.is_(None))
                .order_by(Checkpoint.saved_at, Checkpoint.id)
            ):
                if epoch is None:
                    continue
                key: tuple[str, int, int, int | None] = (run_id, seq, epoch, None)
                if key not in found:
                    key = (run_id, seq, epoch, batch)
                found.setdefault(key, {"epoch_id": None})
                if saved_path and saved_path not in saves.setdefault(key, []):
                    saves[key].append(saved_path)
    return _rows(engine, shown, found, saves)


def _rows(engine: Engine, shown: str, found: dict[tuple[str, int, int, int | None], dict[str, Any]],
          saves: dict[tuple[str, int, int, int | None], list[str]]) -> pd.DataFrame:
    runs = sorted({k[0] for k in found})
    info = names_and_statuses(engine, set(runs))
    calls = call_numbers(engine, runs) if runs else {}
    values: dict[int, dict[str, Any]] = {}
    epoch_ids = [v["epoch_id"] for v in found.values() if v["epoch_id"] is not None]
    with engine.connect() as conn:
        for epoch_id, key, value, bits, text in conn.execute(
            select(EpochValue.epoch_id, Key.name, EpochValue.value, EpochValue.bits, EpochValue.text)
            .join(Key, Key.id == EpochValue.key_id).where(EpochValue.epoch_id.in_(epoch_ids))
        ):
            values.setdefault(epoch_id, {})[key] = decode(value, bits, text)
        restored = set(conn.execute(
            select(Phase.run_id, Phase.seq, Restore.restored_epoch).join(Phase, Phase.id == Restore.phase_id)
            .where(Phase.run_id.in_(runs))).all()) if runs else set()
    monitors: dict[str, tuple[str | None, Any]] = {}
    for run_id in runs:
        metrics = metrics_frame(engine, run_id).set_index("key")
        monitor = _monitor(engine, run_id, {logged_key(k) for k in metrics.index})
        best = metrics.loc[shown_key(monitor), "best_epoch"] if monitor and shown_key(monitor) in metrics.index else None
        monitors[run_id] = (monitor, None if best is None or pd.isna(best) else int(best))
    rows, keys = [], []
    for (run_id, seq, epoch, batch), item in found.items():
        logged: dict[str, Any] = values.get(item["epoch_id"], {})
        monitor, best_epoch = monitors[run_id]
        name, status = info.get(run_id, (None, "absent"))
        row = {"file": shown, "run_id": run_id, "name": name, "status": status, "phase": "fit", "phase_seq": seq,
               "call": calls.get((run_id, seq)), "epoch": epoch, "batch": batch,
               "monitor": shown_key(monitor) if monitor else None,
               "value": logged.get(monitor) if monitor else None,
               "is_best": batch is None and epoch == best_epoch,
               "is_restored": batch is None and (run_id, seq, epoch) in restored,
               "saved_as": "; ".join(saves.get((run_id, seq, epoch, batch), [])) or None}
        for key, value in logged.items():
            name_shown = shown_key(key)
            row[name_shown] = value
            if name_shown not in keys:
                keys.append(name_shown)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=WHICH_COLUMNS + sorted(keys))
    frame["value"] = frame["value"].astype("float64")
    return int_columns(frame, ["phase_seq", "call", "epoch", "batch"])
