"""Ground truth from outside the tracker, and the one place that reads Store frames.

Two halves:

* **Store access.** Every column name of a ``tracker.Store`` frame that the
  truth tests use is read here and nowhere else, so a rename (``phase`` →
  ``phase_seq``, a new ``step`` column on batches) is fixed in this file
  alone. The helpers return plain Python values (``None`` for a missing
  cell, never ``pd.NA``) in typed rows.
* **Spies.** Test-only Keras callbacks that record what Keras itself did:
  the weights at each epoch end, the learning rate each step trained with,
  every batch's logs, the stoppers' state. They never look at the tracker.

JAX note (Keras 3.15.1): during an epoch the JAX trainer keeps the live
state outside the model. Before the first step it reads the state and purges
the variables (``keras/src/backend/jax/trainer.py:451-460``, ``_value = None``
in ``_purge_model_variables``, trainer.py:1009-1037); the jitted step donates
its input buffers (``donate_argnums=0``, trainer.py:277); the state is put back
only by ``jax_state_sync()`` (trainer.py:490 at epoch end, or by a callback).
Reading a purged variable raises ``TypeError: 'NoneType' object is not
callable`` (``keras/src/backend/common/variables.py:272-279``: the placeholder
initializer is gone), and reading one that still points at a donated buffer
raises ``DeviceArray has been deleted``. The ``Callback.model`` property calls
``jax_state_sync()`` on JAX (``keras/src/callbacks/callback.py:92-99``); the LR
spy also calls it explicitly, on the training thread, before it reads
``optimizer.learning_rate`` and ``optimizer.iterations`` at batch begin.
"""

from __future__ import annotations

import math
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

# -- values -----------------------------------------------------------------------


def bits(x: Any) -> int:
    """The IEEE-754 bit pattern of a float64 (tells NaN payloads and -0.0 apart)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def from_bits(pattern: int | None) -> float | None:
    """The float64 whose bit pattern is ``pattern``."""
    return None if pattern is None else struct.unpack("<d", struct.pack("<q", pattern))[0]


def bit_list(values: list[Any]) -> list[Any]:
    """Values as comparable items: numbers as bit patterns, missing as None, the rest as they are."""
    out = []
    for v in values:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            out.append(v)
        elif isinstance(v, (int, float, np.floating, np.integer)):
            out.append(("float", bits(v)))
        else:
            out.append(v)
    return out


def _plain(value: Any) -> Any:
    """A frame cell as a plain Python value; pandas' missing markers become None."""
    if value is None:
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cell(row: Any, column: str) -> Any:
    return _plain(row[column]) if column in row.index else None


# -- Store access: the only code that knows Store's column names -----------------------

#: Store column holding the phase's sequence number within the run (to become ``phase_seq``).
PHASE_SEQ = "phase_seq"
#: Columns of ``Store.epochs(tidy=True)`` that are not logged values.
_EPOCH_META = {"run_id", "phase", "phase_seq", "call", "epoch", "started_at", "ended_at", "redone", "superseded"}
#: Columns of ``Store.batches()`` (wide) that are not logged values.
_BATCH_META = {"run_id", "phase", "phase_seq", "call", "phase_kind", "kind", "epoch", "batch", "step", "elapsed", "seq"}


@dataclass(slots=True)
class EpochRow:
    phase_seq: int
    epoch: int
    values: dict[str, Any]
    redone: bool = False


@dataclass(slots=True)
class BatchRow:
    phase_seq: int
    epoch: int | None
    batch: int
    values: dict[str, Any]


@dataclass(slots=True)
class LRChangeRow:
    optimizer: str
    epoch: int | None
    step: int | None
    old_lr: float | None
    new_lr: float | None
    source: str | None
    hook: str | None


@dataclass(slots=True)
class LRPointRow:
    optimizer: str
    point: str
    epoch: int | None
    batch: int | None
    step: int | None
    lr: float | None


@dataclass(slots=True)
class StopRow:
    stopper: str
    stopped: bool
    stopped_epoch: int | None
    hook: str | None
    batch: int | None
    epoch: int | None
    monitor: str | None
    best: float | None
    best_epoch: int | None
    patience: int | None
    wait: int | None


@dataclass(slots=True)
class RestoreRow:
    restored_epoch: int | None
    last_epoch: int | None
    restored_by: str | None
    hook: str | None
    at_epoch: int | None


@dataclass(slots=True)
class MetricRow:
    key: str
    best: float | None
    best_epoch: int | None
    final: float | None
    final_epoch: int | None
    epochs: int | None


@dataclass(slots=True)
class PhaseRow:
    kind: str
    status: str
    error: str | None
    initial_epoch: int | None


def store(db: str) -> Any:
    from tracker import Store

    return Store(db)


def run_ids(db: str) -> list[str]:
    """Every run id, oldest first."""
    return [str(r) for r in store(db).runs()["run_id"]]


def run_info(db: str, run: str) -> dict[str, Any]:
    """The run's own columns (``status``, ``error``, ``name``...) from ``Store.run``."""
    return {k: _plain(v) for k, v in store(db).run(run)["run"].items()}


def run_listing(db: str, run: str, **runs_kw: Any) -> dict[str, Any]:
    """The run's row of ``Store.runs(**runs_kw)``, as a dict."""
    frame = store(db).runs(**runs_kw)
    match = frame[frame["run_id"] == run]
    assert len(match) == 1, f"run {run} not listed once by Store.runs({runs_kw})"
    return {k: _plain(v) for k, v in match.iloc[0].items()}


def phases(db: str, run: str) -> list[PhaseRow]:
    """The run's fit/evaluate/predict phases in order (validation passes excluded)."""
    frame = store(db).run(run)["phases"]
    return [
        PhaseRow(str(_cell(r, "phase")), str(_cell(r, "status")), _cell(r, "error"), _cell(r, "initial_epoch"))
        for _, r in frame.iterrows()
    ]


def epochs(db: str, run: str, *, attempts: bool = False) -> list[EpochRow]:
    """The run's epochs in stored order, each with every logged key (bit-exact).

    Read from ``Store.epochs(tidy=True)`` so a key logged in only some epochs
    is absent from the others rather than NaN.
    """
    s = store(db)
    wide = s.epochs(run, attempts=attempts)
    tidy = s.epochs(run, tidy=True, attempts=attempts)
    rows: dict[tuple[int, int], EpochRow] = {}
    order: list[tuple[int, int]] = []
    for _, r in wide.iterrows():
        key = (int(r[PHASE_SEQ]), int(r["epoch"]))
        if key not in rows:
            rows[key] = EpochRow(key[0], key[1], {}, bool(_cell(r, "redone")))
            order.append(key)
    for _, r in tidy.iterrows():
        key = (int(r[PHASE_SEQ]), int(r["epoch"]))
        rows[key].values[str(r["key"])] = _plain(r["value"])
    return [rows[k] for k in order]


def epoch_values(db: str, run: str) -> dict[int, dict[str, Any]]:
    """Epoch index → logged values, for a run whose epochs are listed once each."""
    found = epochs(db, run)
    by_epoch = {row.epoch: row.values for row in found}
    assert len(by_epoch) == len(found), f"an epoch index is listed twice: {[r.epoch for r in found]}"
    return by_epoch


_BATCH_KINDS = {"train": "fit", "fit": "fit", "validation": "validation", "evaluate": "evaluate", "predict": "predict"}


def batches(db: str, run: str, kind: str = "train") -> list[BatchRow]:
    """The recorded batches of one kind (train, validation, evaluate, predict), in stored order.

    ``values`` has every logged-key column of the wide frame (NaN where a
    row lacks the key), so compare it key by key against a spy's logs and
    compare the key sets with ``batch_keys``.
    """
    frame = store(db).batches(run, _BATCH_KINDS[kind])
    keys = [c for c in frame.columns if c not in _BATCH_META]
    out = []
    for _, r in frame.iterrows():
        epoch = _cell(r, "epoch")
        out.append(
            BatchRow(
                int(r[PHASE_SEQ]),
                None if epoch is None else int(epoch),
                int(r["batch"]),
                {k: _plain(r[k]) for k in keys},
            )
        )
    return out


def batch_elapsed(db: str, run: str, kind: str = "train") -> dict[tuple[int | None, int], float]:
    """``(epoch, batch)`` → the stored ``elapsed`` (seconds) of the recorded batches of one kind."""
    frame = store(db).batches(run, _BATCH_KINDS[kind])
    return {
        (None if _cell(r, "epoch") is None else int(r["epoch"]), int(r["batch"])): float(r["elapsed"])
        for _, r in frame.iterrows()
    }


def batch_keys(db: str, run: str, kind: str = "train") -> set[str]:
    """The logged keys (columns) of the recorded batches of one kind."""
    frame = store(db).batches(run, _BATCH_KINDS[kind])
    return {c for c in frame.columns if c not in _BATCH_META}


def lr_changes(db: str, run: str) -> list[LRChangeRow]:
    frame = store(db).lr_changes(run)
    return [
        LRChangeRow(
            str(_cell(r, "optimizer")),
            _cell(r, "epoch"),
            _cell(r, "step"),
            _float(_cell(r, "old_lr")),
            _float(_cell(r, "new_lr")),
            _text(_cell(r, "source")),
            _text(_cell(r, "hook")),
        )
        for _, r in frame.iterrows()
    ]


def lr_series(db: str, run: str, point: str | None = None, optimizer: str | None = "optimizer") -> list[LRPointRow]:
    """LR readings of one kind of point (phase_begin, epoch, batch), of one optimizer."""
    frame = store(db).lr_series(run)
    rows = [
        LRPointRow(
            str(_cell(r, "optimizer")),
            str(_cell(r, "point")),
            _cell(r, "epoch"),
            _cell(r, "batch"),
            _cell(r, "step"),
            _float(_cell(r, "lr")),
        )
        for _, r in frame.iterrows()
    ]
    return [
        r for r in rows if (point is None or r.point == point) and (optimizer is None or r.optimizer == optimizer)
    ]


def early_stops(db: str, run: str | None = None) -> list[StopRow]:
    frame = store(db).early_stops(run)
    return [
        StopRow(
            str(_cell(r, "stopper")),
            bool(_cell(r, "stopped")),
            _cell(r, "stopped_epoch"),
            _cell(r, "hook"),
            _cell(r, "batch"),
            _cell(r, "epoch"),
            _text(_cell(r, "monitor")),
            _float(_cell(r, "best")),
            _cell(r, "best_epoch"),
            _cell(r, "patience"),
            _cell(r, "wait"),
        )
        for _, r in frame.iterrows()
    ]


def restores(db: str, run: str | None = None) -> list[RestoreRow]:
    frame = store(db).restores(run)
    return [
        RestoreRow(
            _cell(r, "restored_epoch"),
            _cell(r, "last_epoch"),
            _text(_cell(r, "restored_by")),
            _text(_cell(r, "hook")),
            _cell(r, "at_epoch"),
        )
        for _, r in frame.iterrows()
    ]


def metrics(db: str, run: str) -> dict[str, MetricRow]:
    frame = store(db).metrics(run)
    return {
        str(r["key"]): MetricRow(
            str(r["key"]),
            _float(_cell(r, "best")),
            _cell(r, "best_epoch"),
            _float(_cell(r, "final")),
            _cell(r, "final_epoch"),
            _cell(r, "epochs"),
        )
        for _, r in frame.iterrows()
    }


def tags(db: str, run: str) -> dict[str, str]:
    return dict(store(db).tags(run))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


# -- the data and the model ----------------------------------------------------------------


def make_data(n: int = 64, seed: int = 0, features: int = 784) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    y = rng.integers(0, 10, n).astype("float32")
    return x, y


def make_model(
    optimizer: Any = None,
    *,
    learning_rate: float = 0.1,
    seed: int = 1,
    features: int = 784,
    metrics: tuple[str, ...] = ("mean_absolute_error",),
    **compile_kw: Any,
) -> keras.Model:
    """The guide's model: Dense(1) on ``features`` inputs, MSE loss (RMSprop unless given)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=optimizer if optimizer is not None else keras.optimizers.RMSprop(learning_rate=learning_rate),
        loss="mean_squared_error",
        metrics=list(metrics),
        **compile_kw,
    )
    return model


# -- spies: ground truth from Keras itself --------------------------------------------------


def read_lr(optimizer: Any) -> float:
    """What ``optimizer.learning_rate`` is right now, as a Python float."""
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))


def read_step(optimizer: Any) -> int:
    return int(np.asarray(keras.ops.convert_to_numpy(optimizer.iterations)))


def sync_state(model: Any) -> None:
    """On JAX, reattach the trainer's live state to the model's variables."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def same_weights(a: list[Any], b: list[Any]) -> bool:
    """Bit-for-bit equality of two weight lists (NaN weights compare equal to themselves)."""
    a = [np.asarray(w) for w in a]
    b = [np.asarray(w) for w in b]
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b)
    )


class WeightCopies(keras.callbacks.Callback):
    """Copies ``model.get_weights()`` at each epoch end. List it FIRST, so it
    copies the weights as trained, before any restorer changes them."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: dict[int, list[np.ndarray]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.copies[epoch] = [np.copy(w) for w in self.model.get_weights()]

    @property
    def last_epoch(self) -> int:
        return max(self.copies)

    def epoch_of(self, weights: list[np.ndarray]) -> int | None:
        """The latest epoch whose end-of-epoch weights equal ``weights`` bit for bit (NaN included)."""
        same = [e for e, c in self.copies.items() if same_weights(c, weights)]
        return max(same) if same else None


class LRSpy(keras.callbacks.Callback):
    """Reads the learning rate each epoch (and optionally each step) trains with.

    List it LAST, so every scheduler has acted when it reads. It reads at
    ``on_train_batch_begin`` on the training thread: batch 0 of each epoch
    gives the epoch's rate; with ``every_batch`` every call is kept with the
    optimizer's step. After fit, ``final`` holds the rate the optimizer was
    left with (a change made at the last epoch shows only there).
    """

    def __init__(self, every_batch: bool = False) -> None:
        super().__init__()
        self.every_batch = every_batch
        self.by_epoch: dict[int, float] = {}
        self.step_of_epoch: dict[int, int] = {}
        self.by_batch: list[tuple[int, int, int, float]] = []  # (epoch, batch, step, lr)
        self.start: float | None = None
        self.final: float | None = None
        self.end_step: int | None = None
        self._epoch: int | None = None
        self._first = False

    def on_train_begin(self, logs=None):
        self.by_epoch, self.step_of_epoch, self.by_batch = {}, {}, []
        self.start = read_lr(self.model.optimizer)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._first = epoch, True

    def on_train_batch_begin(self, batch, logs=None):
        if not (self._first or self.every_batch):
            return
        model = self.model
        sync_state(model)
        optimizer = model.optimizer
        lr, step = read_lr(optimizer), read_step(optimizer)
        if self._first:
            self.by_epoch[self._epoch] = lr
            self.step_of_epoch[self._epoch] = step
            self._first = False
        if self.every_batch:
            self.by_batch.append((self._epoch, batch, step, lr))

    def on_train_end(self, logs=None):
        self.final = read_lr(self.model.optimizer)
        self.end_step = read_step(self.model.optimizer)

    def changes(self, *, include_final: bool = False) -> list[tuple[int, int, float, float]]:
        """(epoch, step, old, new) for each epoch whose rate differs from the previous one.

        With ``include_final``, a change made after the last epoch's first
        batch (at its end, say) is listed at ``last + 1``, with the step
        training would have resumed from.
        """
        order = sorted(self.by_epoch)
        out = [
            (e, self.step_of_epoch[e], self.by_epoch[p], self.by_epoch[e])
            for p, e in zip(order, order[1:])
            if bits(self.by_epoch[p]) != bits(self.by_epoch[e])
        ]
        if include_final and order and self.final is not None and bits(self.final) != bits(self.by_epoch[order[-1]]):
            out.append((order[-1] + 1, self.end_step, self.by_epoch[order[-1]], self.final))
        return out


class BatchSpy(keras.callbacks.Callback):
    """Records every train and test batch-end ``(epoch, batch, logs)`` under a lock.

    ``async_safe = True`` like the tracker, so that listing it does not
    change how Keras dispatches batch hooks on JAX and torch (a callback
    without it forces synchronous dispatch). The epoch is set in
    ``on_epoch_begin``, which Keras calls only after every batch hook of the
    previous epoch has finished (``CallbackList.on_epoch_end`` waits for
    them), so reading it from a worker thread is safe.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.train: list[tuple[int | None, int, dict[str, Any]]] = []
        self.test: list[tuple[int | None, int, dict[str, Any]]] = []
        self.epoch_logs: dict[int, dict[str, Any]] = {}
        self._epoch: int | None = None
        self._in_fit = False

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        with self.lock:
            self.train.append((self._epoch, batch, dict(logs or {})))

    def on_test_batch_end(self, batch, logs=None):
        with self.lock:
            self.test.append((self._epoch if self._in_fit else None, batch, dict(logs or {})))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs[epoch] = dict(logs or {})

    def train_by_epoch(self) -> dict[int, list[tuple[int, dict[str, Any]]]]:
        """Epoch → [(batch, logs)] in batch-index order (Keras' dispatch order)."""
        return _group(self.train)

    def test_by_epoch(self) -> dict[int | None, list[tuple[int, dict[str, Any]]]]:
        return _group(self.test)


def _group(records):
    out: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for epoch, batch, logs in records:
        out.setdefault(epoch, []).append((batch, logs))
    return {e: sorted(v, key=lambda t: t[0]) for e, v in out.items()}


class StopSpy(keras.callbacks.Callback):
    """Watches ``model.stop_training`` and the stoppers' own state. List it LAST.

    ``stopped_at`` is the (epoch, batch) at which ``stop_training`` was first
    seen True: batch is None when it was seen at epoch end. Batch-end checks
    are on only with ``batches=True``, for a stopper that stops inside a
    batch (TerminateOnNaN, which is not ``async_safe``, so Keras then runs
    batch hooks synchronously). The spy itself is ``async_safe`` so that
    listing it never changes how Keras dispatches batch hooks.
    """

    async_safe = True

    def __init__(self, *stoppers: Any, batches: bool = False) -> None:
        super().__init__()
        self.stoppers = stoppers
        self.batches = batches
        self.stopped_at: tuple[int, int | None] | None = None
        self.epochs_seen: list[int] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._epoch: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.batches and self.model.stop_training and self.stopped_at is None:
            self.stopped_at = (self._epoch, batch)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen.append(epoch)
        if self.model.stop_training and self.stopped_at is None:
            self.stopped_at = (epoch, None)

    def on_train_end(self, logs=None):
        for i, s in enumerate(self.stoppers):
            self.state[i] = {
                a: getattr(s, a, None) for a in ("stopped_epoch", "best_epoch", "best", "wait", "patience", "monitor")
            }


class PreemptAt(keras.callbacks.Callback):
    """Raises ``RuntimeError`` in ``on_epoch_end`` of one epoch (a job killed there)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"preempted at the end of epoch {epoch}")


@dataclass
class Ordering:
    """A callbacks list with the tracker first, in the middle or last."""

    position: str
    before: list[Any] = field(default_factory=list)  # ground-truth callbacks that must come first
    deciders: list[Any] = field(default_factory=list)  # the callbacks that make decisions
    after: list[Any] = field(default_factory=list)  # ground-truth callbacks that must come last

    def callbacks(self, tracker: Any) -> list[Any]:
        if self.position == "first":
            return [tracker, *self.before, *self.deciders, *self.after]
        if self.position == "last":
            return [*self.before, *self.deciders, *self.after, tracker]
        if self.position == "middle":
            # After the first decider, before the rest and before the spies.
            return [*self.before, *self.deciders[:1], tracker, *self.deciders[1:], *self.after]
        raise ValueError(self.position)


POSITIONS = ("first", "middle", "last")


# -- the command line -------------------------------------------------------------------------


def cli(db: str, *args: str) -> Any:
    """Run ``tracker --db DB ARGS`` in-process (click's CliRunner); returns the click Result."""
    from click.testing import CliRunner

    from tracker.cli import main

    return CliRunner().invoke(main, ["--db", db, *args])


def cli_json(db: str, *args: str) -> Any:
    """The parsed JSON of ``tracker --db DB ARGS --format json`` (which must succeed)."""
    import json

    result = cli(db, *args, "--format", "json")
    assert result.exit_code == 0 and result.exception is None, f"tracker {' '.join(args)}: {result.output}"
    return json.loads(result.output)
