"""TrackingCallback: one instance is one run, recorded into SQLite (or a server database).

Data path: this callback's hooks → ``tracker.record.recorder.Recorder`` →
typed operations (``tracker.db.writes``) on a buffered ``Writer`` →
``tracker.db.tables``. Per batch the callback only appends one record to an
in-memory queue; disk writes happen at phase begin and end, once per epoch,
and in a background flusher.
"""

from __future__ import annotations

import copy
import os
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import keras

from tracker.db.engine import DEFAULT_DB, resolve_url
from tracker.errors import TrackingWarning, UnknownRunError
from tracker.record import capture
from tracker.record.ledger import RunIdentity
from tracker.record.recorder import Recorder
from tracker.record.extensions import trial_to_continue
from tracker.record.resume import find_run_to_resume, find_trial_run
from tracker.record.system import DEFAULT_INTERVAL

__all__ = ["TrackingCallback"]

capture.install()


def check_options(
    run_name: Any, params: Any, tags: Any, log_batches: Any, flush_every: Any, flush_interval: Any
) -> None:
    if run_name is not None and not isinstance(run_name, str):
        raise ValueError(f"run_name must be a string or None, not {type(run_name).__name__}.")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError("params must be a mapping of names to JSON values, e.g. {'lr': 0.1}.")
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise ValueError("tags must be a mapping of strings to strings, e.g. {'exp': 'a'}.")
        bad = [k for k, v in tags.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise ValueError(f"tags must map strings to strings; fix the tag(s) {bad!r}.")
    if not isinstance(log_batches, int) or (not isinstance(log_batches, bool) and log_batches < 1):
        raise ValueError(
            f"log_batches must be True, False or a positive number of steps (every N-th), not {log_batches!r}."
        )
    if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
        raise ValueError(f"flush_every must be a positive integer, not {flush_every!r}.")
    if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)) or not flush_interval > 0:
        raise ValueError(f"flush_interval must be a positive number of seconds, not {flush_interval!r}.")


def check_system(system_metrics: Any, system_interval: Any) -> None:
    """Raise ValueError unless ``system_metrics`` is a bool and ``system_interval`` a positive number of seconds."""
    if not isinstance(system_metrics, bool):
        raise ValueError(f"system_metrics must be True or False, not {system_metrics!r}.")
    if isinstance(system_interval, bool) or not isinstance(system_interval, (int, float)) or not system_interval > 0 \
            or system_interval == float("inf"):
        raise ValueError(f"system_interval must be a positive number of seconds, not {system_interval!r}.")


def check_experiment(experiment: Any) -> None:
    """Raise ValueError unless ``experiment`` is None or a non-empty string."""
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise ValueError(f"experiment must be a non-empty string or None, not {experiment!r}.")


#: What a deep copy never takes from the original: its run (recorder, writer), model and Keras params.
_OWN_STATE = frozenset({"capture_listener", "_writer", "db_url", "strict", "params", "_model", "on_train_batch_begin",
                        "on_train_batch_end", "on_test_batch_end", "on_predict_batch_end"})


def _open_run(db: str, identity: RunIdentity, resume: bool | str, *, strict: bool) -> None:
    """Open (create, migrate) the database now, and point ``identity`` at the run to resume, if any.

    Without ``resume``, a tuning tool may name a trial whose earlier attempt's
    run this one continues (``tracker.record.extensions.trial_to_continue``).

    A database that cannot be opened yet is not fatal: the writer retries at
    each flush (a resume then starts a new run, and the warning says why).

    Raises:
        ValueError: ``resume=True`` without a run name.
        UnknownRunError: ``resume`` is a run id the database does not hold.
    """
    from tracker.db.migrate import open_database

    try:
        engine, _ = open_database(db)
        if resume:
            found = find_run_to_resume(engine, resume, identity.name)
            if found is not None:
                identity.run_id, identity.next_seq = found
                identity.resumed = True
        else:
            trial = trial_to_continue()
            found = None if trial is None else find_trial_run(engine, trial.experiment, trial.trial,
                                                              trial.started_here)
            if found is not None:
                identity.run_id, identity.next_seq = found
                identity.resumed = True
    except (ValueError, UnknownRunError):
        raise
    except Exception as exc:  # noqa: BLE001 - reported, retried at each flush
        if strict:
            raise
        warnings.warn(
            f"{exc} Tracking keeps records in memory and retries; training is not affected.",
            TrackingWarning,
            stacklevel=3,
        )


class TrackingCallback(keras.callbacks.Callback):
    """Record a run (every fit, evaluate and predict it sees) into a database.

    One instance is one run: pass the same instance to ``fit``, ``evaluate``
    and ``predict`` and each call becomes a phase of that run. The validation
    inside ``fit`` is recorded as ``validation`` phases, one per epoch. It can
    sit anywhere in the callbacks list, and be built inline in the call.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"`` in the
            current directory. The file is created and migrated if needed.
        run_name: A name for the run. Default: the model's name.
        params: User parameters to store with the run (JSON values).
            Default none.
        tags: User tags, string to string. Default none.
        log_batches: Store every batch-end ``logs`` of train, validation and
            evaluate, and a timing row per predict batch (True); none
            (False); or, for very long runs, an int N: every N-th step (when
            the steps done are a multiple of N) plus the last batch of each
            epoch and of each evaluation. Default True.
        flush_every: Wake the background writer after this many batches.
            Default 128.
        flush_interval: The background writer also writes every this many
            seconds. Default 2.0.
        strict: Raise ``TrackingWriteError`` when recording fails, instead of
            warning and going on. Default False.
        resume: Continue an earlier run instead of starting a new one, for a
            job restarted after preemption (with ``BackupAndRestore``).
            ``True`` continues the newest unfinished run named ``run_name``
            (or starts one if there is none); a run id continues that run.
            Default False.
        experiment: The experiment the run belongs to (a name; created on
            first use). Default: the one a tuning tool gives (a KerasTuner
            ``project_name``, an Optuna study name, see ``docs/sweeps.md``),
            else none.
        system_metrics: Sample the process's CPU use and memory, the
            machine's memory and each GPU's use and memory (GPUs through
            NVML, the ``gpu`` extra) on a helper thread, every
            ``system_interval`` seconds and at each epoch's end, while a
            call of the run is open (``Store.system``,
            ``tracker system RUN``, docs/system-metrics.md). Default True.
        system_interval: Seconds between two timed system samples.
            Default 10.0.

    A deep copy (``copy.deepcopy``, as KerasTuner makes for every execution
    of a trial) is a tracker of its own: a new run, recorded by its own
    writer, with the same options.

    Attributes:
        run_id: The run's id (32 hex characters), known at construction.
        async_safe: True. The batch hooks only append to a queue under a
            lock, so on the JAX and torch backends Keras may call them from
            its worker threads.
        capture_listener: The run's recorder, which the tracker's Keras
            capture (``tracker.record.capture``) reports to.

    Raises:
        ValueError: an option is invalid.
        DatabaseError: ``db`` is empty, not valid UTF-8 or not a valid URL.
        UnknownRunError: ``resume`` is a run id the database does not hold.

    Example:
        ```python
        cb = TrackingCallback("runs.db", params={"lr": 0.1}, tags={"exp": "a"})
        model.fit(x, y, epochs=3, validation_split=0.2, callbacks=[cb])
        model.evaluate(x, y, callbacks=[cb])
        print(tracker.Store("runs.db").epochs(cb.run_id))
        ```
    """

    async_safe = True

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        run_name: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        log_batches: bool | int = True,
        flush_every: int = 128,
        flush_interval: float = 2.0,
        strict: bool = False,
        resume: bool | str = False,
        experiment: str | None = None,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        super().__init__()
        check_options(run_name, params, tags, log_batches, flush_every, flush_interval)
        check_experiment(experiment)
        check_system(system_metrics, system_interval)
        resolve_url(db)  # a path or URL that can never work is refused here, in one sentence
        self._options: dict[str, Any] = dict(db=os.fspath(db), run_name=run_name, params=dict(params or {}), tags=dict(tags or {}),
                             log_batches=log_batches, flush_every=flush_every, flush_interval=flush_interval,
                             strict=bool(strict), experiment=experiment,
                             system_interval=float(system_interval) if system_metrics else None)
        self._start(resume)

    def _start(self, resume: bool | str) -> None:
        """Begin this tracker's run (a new one, or the one ``resume`` names): its recorder and writer."""
        o = self._options
        self.strict = o["strict"]
        identity = RunIdentity(
            run_id=uuid.uuid4().hex,
            name=o["run_name"],
            params={str(k): v for k, v in o["params"].items()},
            tags=dict(o["tags"]),
            experiment=o["experiment"],
        )
        _open_run(o["db"], identity, resume, strict=self.strict)
        self.capture_listener = Recorder(
            identity,
            o["db"],
            log_batches=o["log_batches"],
            strict=self.strict,
            flush_every=o["flush_every"],
            flush_interval=o["flush_interval"],
            system_interval=o["system_interval"],
        )
        self._writer = self.capture_listener.writer
        self.db_url = self._writer.url
        # The batch hooks go straight to the recorder, one Python frame less per
        # batch, unless a subclass overrides them.
        for hook in ("on_train_batch_end", "on_test_batch_end", "on_predict_batch_end"):
            if getattr(type(self), hook) is getattr(TrackingCallback, hook):
                setattr(self, hook, getattr(self.capture_listener, hook[3:]))

    def __deepcopy__(self, memo: dict[int, Any]) -> TrackingCallback:
        """A copy with a run, recorder and writer of its own (and a deep copy of everything else).

        KerasTuner deep-copies the search's callbacks for every execution of a
        trial: each copy records one run, never the original's.
        """
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            if key not in _OWN_STATE:
                copied.__dict__[key] = copy.deepcopy(value, memo)
        copied.params, copied._model = None, None  # keras.callbacks.Callback's, set again by the next call
        TrackingCallback._start(copied, resume=False)  # a run of its own
        return copied

    @property
    def run_id(self) -> str:
        """The run's id (32 hex characters)."""
        return self.capture_listener.identity.run_id

    @property
    def experiment(self) -> str | None:
        """The experiment the user put the run in (``experiment=``), or None."""
        return self._options["experiment"]

    @property
    def log_batches(self) -> bool | int:
        """Which batches are recorded: True (all), False (none) or N (every N-th step)."""
        return self.capture_listener.log_batches

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        self.capture_listener.model = model

    def set_params(self, params: Any) -> None:
        super().set_params(params)
        self.capture_listener.keras_params = dict(params or {})

    # -- Keras hooks, forwarded to the recorder -------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        recorder = self.capture_listener
        recorder.train_begin()
        # A batch's begin matters only under loss scaling (the step it begins
        # at, for a schedule's per-batch LR); otherwise Keras calls the base
        # class's empty hook and the tracker costs nothing there.
        if getattr(type(self), "on_train_batch_begin") is keras.callbacks.Callback.on_train_batch_begin:
            if recorder.lr.loss_scaled and recorder.log_batches:
                setattr(self, "on_train_batch_begin", recorder.train_batch_begin)
            else:
                self.__dict__.pop("on_train_batch_begin", None)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.epoch_begin(epoch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.train_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.epoch_end(epoch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.train_end(logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.test_begin()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.test_batch_end(batch, logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.test_end(logs)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.predict_begin()

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.predict_batch_end(batch, logs)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self.capture_listener.predict_end(logs)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Write everything still buffered. Called automatically at phase end and exit."""
        self._writer.close()

    @property
    def pending(self) -> int:
        """Records buffered in memory and not yet written."""
        return self._writer.pending
