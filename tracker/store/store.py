"""``Store``: the read API, a thin front over the query functions of ``tracker.store``.

Imports neither Keras nor TensorFlow. Numbers come back bit-exact: NaN,
±inf and -0.0 are exactly what Keras passed. Every frame that names a phase
has ``phase``, the phase kind (``fit``, ``validation``, ``evaluate`` or
``predict``), and ``phase_seq``, the call's sequence number within its run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tracker.db.engine import DEFAULT_DB
from tracker.db.migrate import open_for_reading
from tracker.store import decisions, overview, runs, series
from tracker.store.base import overview_frame, resolve_run
from tracker.store.liveness import HEARTBEAT_TIMEOUT

__all__ = ["Store"]


class Store:
    """Read runs recorded by ``TrackingCallback``.

    Args:
        db: A file path or an SQLAlchemy URL. Default ``"tracker.db"``.
            Opened read-only: reading never changes the database, and a
            missing file is never created.
        upgrade: Upgrade a database with an older schema before reading it
            (this writes it). Default False: an older schema is refused with
            ``SchemaOutdatedError``, whose message says to run
            ``tracker db upgrade``.
        heartbeat_timeout: Seconds without a heartbeat after which a
            ``running`` run on another host is reported ``crashed``.
            Default 120. (On this host a dead pid is enough.)

    Raises:
        DatabaseNotFoundError: the file does not exist.
        NotADatabaseError: the file is not a tracker database.
        SchemaOutdatedError: an older tracker wrote it and ``upgrade`` is False.
        SchemaTooNewError: a newer tracker wrote it.

    Example:
        ```python
        store = tracker.Store("runs.db")
        store.runs(sort="best:val_loss")
        store.epochs("latest")
        store.restores()
        ```
    """

    def __init__(
        self,
        db: str | os.PathLike[str] = DEFAULT_DB,
        *,
        upgrade: bool = False,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> None:
        self.engine, self.url = open_for_reading(os.fspath(db), upgrade_schema=upgrade)
        self.heartbeat_timeout = heartbeat_timeout

    def resolve(self, ref: str) -> str:
        """Return the run id that ``ref`` names.

        ``ref`` may be a full run id, ``latest``, a run name (the newest run of
        that name) or a unique prefix of a run id.

        Raises:
            UnknownRunError: nothing matches (close names are suggested), or
                a prefix matches several runs.
        """
        with self.engine.connect() as conn:
            return resolve_run(conn, ref)

    def _maybe(self, run: str | None) -> str | None:
        return None if run is None else self.resolve(run)

    # -- runs ----------------------------------------------------------------------

    def runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        sort: str | None = None,
        limit: int | None = None,
        run_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Return one row per run, filtered and sorted.

        Args:
            status: Keep runs with this status (or any of these). Default all.
            name: Keep runs with this name; ``*`` and ``?`` are wildcards.
                Default all.
            tags: Keep runs having every one of these tags. Default all.
            params: Keep runs whose params equal every one of these (compared
                as JSON, so ``{"lr": 0.1}`` matches ``params={"lr": 0.1}``).
                Default all.
            sort: ``started_at`` (default, oldest first), ``-started_at``,
                ``name``, ``best:KEY`` or ``final:KEY`` (the best or final
                epoch value of a logged key, best first). Whether best means
                min or max comes from the key (``*acc*``, ``auc``,
                ``precision``, ``recall``... are maximised, the rest
                minimised); override with ``best:KEY:max`` or ``:min``. Runs
                without the key come last.
            limit: Return at most this many rows. Default all.
            run_ids: Keep only these run ids. Default all.

        Columns: ``run_id``, ``name``, ``status`` (running, finished, failed,
        interrupted, crashed: a ``running`` run whose process is gone, see
        ``tracker.store.liveness``), ``started_at`` and ``ended_at`` (UTC),
        ``model_name``, ``param_count``, ``host``, ``pid``, ``phases``
        (fit/evaluate/predict calls), ``epochs`` (epochs that count: a
        resumed job's superseded attempts are left out), ``heartbeat_at``
        (the writer's last sign of life); with a ``best:``/``final:`` sort
        also ``KEY`` and ``KEY_epoch`` (the sorted value and its epoch). All
        filters are bound parameters.

        Raises:
            ValueError: ``sort`` or ``status`` is not understood.
        """
        return runs.runs_frame(
            self.engine, status=status, name=name, tags=tags, params=params, sort=sort, limit=limit,
            run_ids=run_ids, heartbeat_timeout=self.heartbeat_timeout,
        )

    def overview(
        self,
        *,
        status: str | Sequence[str] | None = None,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        sort: str | None = None,
        limit: int | None = None,
        run_ids: Sequence[str] | None = None,
        metric: str | None = None,
    ) -> pd.DataFrame:
        """Return one row per run with what tells runs apart: which one is best.

        Takes the filters and sort of ``runs``, and ``metric``: the epoch key
        whose best value and epoch to show (default: the stoppers' most
        common monitor, else ``val_loss``, else the first ``val_*`` key, else
        ``loss``).

        Columns: ``run_id``, ``name``, ``status``, ``started_at``,
        ``ended_at``, ``duration_s`` (``<NA>`` while running), ``epochs``,
        ``phases``, ``param:NAME`` for each param whose value differs
        between the listed runs, ``metric`` (the key shown), ``best`` and
        ``best_epoch`` (min or max by the key's direction; superseded epochs
        left out), ``stopped_epoch`` (where a stopper stopped training),
        ``restored_epoch`` (whose weights a callback restored), then
        ``eval:KEY`` for the results of each run's last ``evaluate``.

        Raises:
            ValueError: ``sort`` or ``status`` is not understood.
        """
        found = overview.overview(
            self.engine, status=status, name=name, tags=tags, params=params, sort=sort, limit=limit,
            run_ids=run_ids, metric=metric, heartbeat_timeout=self.heartbeat_timeout,
        )
        return overview_frame(found)

    def run(self, ref: str) -> dict[str, Any]:
        """Return a summary of one run.

        Keys: ``run`` (dict of the run's columns: id, name, status, times,
        host, pid, versions, model and parameter counts, error), ``params``,
        ``tags``, ``phases`` (DataFrame: ``phase_seq``, ``phase`` (the
        kind), ``status``, ``started_at``, ``ended_at``, ``initial_epoch``
        (above 0 for a resumed fit), ``batch_count``, ``sample_count``,
        ``error``; validation passes excluded), ``metrics`` (see
        ``metrics``), ``evaluations``, ``lr_changes``, ``early_stops`` and
        ``restores`` (see those methods).

        Raises:
            UnknownRunError: ``ref`` names no run.
        """
        run_id = self.resolve(ref)  # once: the parts below take the id as it is
        return {
            "run": runs.run_summary(self.engine, run_id, heartbeat_timeout=self.heartbeat_timeout),
            "params": runs.params_of(self.engine, run_id),
            "tags": runs.tags_of(self.engine, run_id),
            "phases": runs.phases_frame(self.engine, run_id),
            "metrics": runs.metrics_frame(self.engine, run_id),
            "evaluations": series.evaluations_frame(self.engine, [run_id]),
            "lr_changes": decisions.lr_changes_frame(self.engine, run_id),
            "early_stops": decisions.early_stops_frame(self.engine, run_id),
            "restores": decisions.restores_frame(self.engine, run_id),
        }

    def params(self, run: str) -> dict[str, Any]:
        """Return the run's user parameters, as JSON values.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.params_of(self.engine, self.resolve(run))

    def tags(self, run: str) -> dict[str, str]:
        """Return the run's tags.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.tags_of(self.engine, self.resolve(run))

    def metric_keys(self) -> list[str]:
        """Return the numeric epoch keys any run logged, sorted: the keys of ``metrics`` and ``best:KEY``."""
        return runs.metric_keys(self.engine)

    def configs(self, run: str) -> dict[str, Any]:
        """Return the run's configuration as Keras gave it (JSON values; None where not recorded).

        Keys: ``model_config`` (``model.get_config()``) and ``fits``: per fit
        call, ``phase_seq``, ``optimizer_config`` and ``keras_params`` (the
        ``params`` Keras passed the callbacks: epochs, steps, verbose).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.configs_of(self.engine, self.resolve(run))

    def metrics(self, run: str) -> pd.DataFrame:
        """Return the best and final value of every numeric epoch key of a run.

        Columns: ``key``, ``best`` and ``best_epoch`` (min or max by the
        key's direction, see ``runs(sort=...)``; the earliest epoch reaching
        it), ``final`` and ``final_epoch`` (the latest epoch), ``epochs``
        (epochs that logged it). NaN is skipped by best. Superseded epochs of
        a resumed job are left out.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.metrics_frame(self.engine, self.resolve(run))

    # -- values over time ------------------------------------------------------------

    def epochs(self, run: str, *, tidy: bool = False, attempts: bool = False) -> pd.DataFrame:
        """Return one row per finished epoch of the run's fits.

        Wide (default) columns: ``phase`` (``fit``), ``phase_seq`` (the fit
        call's sequence number within the run), ``epoch`` (0-based, as Keras
        passed it), ``started_at``, ``ended_at`` (UTC), ``redone`` (this
        epoch index was trained before, by an attempt that a resumed fit
        threw away), then one column per epoch ``logs`` key, in alphabetical
        order: the logs as every callback's ``on_epoch_end`` left them (what
        ``History`` keeps). A key an epoch did not log is ``<NA>``; a logged
        NaN is NaN. With ``tidy=True``: one row per epoch and key, columns
        ``run_id, phase, phase_seq, epoch, started_at, ended_at, redone, key,
        value``.

        A job resumed with ``BackupAndRestore`` re-trains the epochs after
        its backup point; the attempts it threw away are left out unless
        ``attempts=True``, which adds them with ``superseded`` true.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return series.epochs_frame(self.engine, self.resolve(run), tidy=tidy, attempts=attempts)

    def batches(self, run: str, phase: str = "fit", *, tidy: bool = False) -> pd.DataFrame:
        """Return one row per recorded batch of one kind of phase.

        Args:
            run: A run reference (see ``resolve``).
            phase: ``fit`` (the training batches), ``validation`` (the
                evaluation inside fit), ``evaluate`` (standalone) or
                ``predict``. Default ``fit``.
            tidy: One row per batch and key instead of one column per key.

        Columns: ``phase``, ``phase_seq``, ``epoch`` (for fit batches, and
        for validation the epoch validated; ``<NA>`` otherwise), ``batch`` (Keras' index within the epoch: the end step,
        so 3, 7, 11 with ``steps_per_execution=4``), ``step`` (the order of
        the batches of one call: for a fit, the batch's index in the whole
        fit), ``elapsed`` (seconds since the call began, when the hook ran),
        then one column per logged key: Keras' running means since the start
        of the epoch. Predict batches have no values (outputs are never
        stored). Rows are in Keras' order, also when JAX or torch ran the
        hooks out of order.

        Raises:
            UnknownRunError: ``run`` names no run.
            ValueError: ``phase`` is not one of the four kinds.
        """
        return series.batches_frame(self.engine, self.resolve(run), phase, tidy=tidy)

    def batch_curves(self, run: str, phase: str = "fit") -> series.BatchCurves:
        """Return the batches of ``batches(run, phase)`` as NumPy arrays, for plotting many of them.

        A ``BatchCurves`` (``tracker.store.series``): int64 arrays
        ``phase_seq``, ``epoch`` (-1 where none), ``batch`` and ``step``, one
        position per batch in Keras' order, and ``values``: per logs key
        logged as a number, ``(rows, floats)``, the positions that logged it
        and the bit-exact float64 values. Non-float values are left out. No
        pandas: 100,000 batches take a fraction of ``batches``' time.

        Raises:
            UnknownRunError: ``run`` names no run.
            ValueError: ``phase`` is not one of the four kinds.
        """
        return series.batch_curves(self.engine, self.resolve(run), phase)

    def evaluations(self, run: str | None = None) -> pd.DataFrame:
        """Return one row per ``evaluate`` call, of one run or of every run.

        Columns: ``run_id``, ``phase_seq``, ``status``, ``ended_at``, then
        one column per key of the logs ``evaluate`` ended with (the results
        ``evaluate(return_dict=True)`` returns).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self._maybe(run)
        return series.evaluations_frame(self.engine, None if run_id is None else [run_id])

    # -- decisions ----------------------------------------------------------------------

    def lr_changes(self, run: str | None = None) -> pd.DataFrame:
        """Return one row per learning-rate change, of one run or of every run.

        Columns: ``run_id``, ``phase`` (``fit``), ``phase_seq``,
        ``optimizer`` (the model attribute holding it), ``epoch`` (the first
        epoch that trains with the new value), ``step`` (the first global
        optimizer step that does), ``old_lr``, ``new_lr``, ``source`` (the
        callback's class name, ``user code``, or ``unknown`` when the change
        was noticed only afterwards) and ``hook`` (the callback method).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.lr_changes_frame(self.engine, self._maybe(run))

    def lr_series(self, run: str | None = None) -> pd.DataFrame:
        """Return the learning rate each optimizer trained with.

        One row per fit start (``point`` = ``phase_begin``), per epoch (the
        rate of the epoch's first step) and, for optimizers on a
        ``LearningRateSchedule`` with batch logging on, per recorded batch.
        Columns: ``run_id``, ``phase``, ``phase_seq``, ``optimizer``,
        ``point``, ``epoch``, ``batch``, ``step`` (global optimizer step),
        ``lr``.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.lr_series_frame(self.engine, self._maybe(run))

    def early_stops(self, run: str | None = None) -> pd.DataFrame:
        """Return the early-stop decisions, of one run or of every run.

        One row per ``stop_training = True`` (``stopped`` true) and per
        stopper that ran to the end of a fit without stopping (``stopped``
        false, its state at train end). Columns: ``run_id``, ``name``,
        ``phase``, ``phase_seq``, ``stopper`` (the callback's class name),
        ``stopped``, ``stopped_epoch`` (the epoch in which training was
        stopped), ``hook``, ``batch`` (for a stop inside a batch, e.g.
        TerminateOnNaN), ``best_epoch``, ``monitor``, ``best``, ``patience``,
        ``wait``, ``mode``, ``min_delta``, ``baseline``, ``start_from_epoch``,
        and ``epoch`` (the epoch of the decision: where it stopped, or the
        last epoch for one that did not). ``best``, ``min_delta`` and
        ``baseline`` are ``<NA>`` where the stopper had none (SQL columns,
        which cannot hold a NaN).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.early_stops_frame(self.engine, self._maybe(run))

    def stopper_states(self, run: str | None = None) -> pd.DataFrame:
        """Return each stopper's state at each epoch end, of one run or of every run.

        One row per callback of a fit that has ``patience`` and ``wait``
        (EarlyStopping, the guide's EarlyStoppingAtMinLoss, ReduceLROnPlateau)
        per epoch, read once every callback's ``on_epoch_end`` has run.
        Columns: ``run_id``, ``name``, ``phase``, ``phase_seq``, ``epoch``,
        ``stopper``, ``monitor``, ``best``, ``best_epoch``, ``wait``,
        ``patience``, ``mode``, ``min_delta``, ``baseline``,
        ``start_from_epoch``. Runs recorded before schema revision 0006 have none.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.stopper_states_frame(self.engine, self._maybe(run))

    def restores(self, run: str | None = None) -> pd.DataFrame:
        """Return the fits that ended with the weights of an earlier epoch.

        Found by weight fingerprints, not from the metric history. Columns:
        ``run_id``, ``name``, ``phase``, ``phase_seq``, ``restored_epoch``
        (whose weights the model ended with; when several epochs ended with
        identical weights, the one the restoring callback names as its
        ``best_epoch`` if it is among them, else the earliest),
        ``last_epoch`` (the last epoch trained), ``restored_by`` (the class
        of the callback whose ``set_weights`` put them back), ``hook`` and
        ``at_epoch`` (when it did), ``monitor`` (the stopper's monitored key,
        else ``val_loss`` or ``loss``), ``value_at_restored`` and
        ``value_at_last`` (that key's epoch values).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.restores_frame(self.engine, self._maybe(run))
