"""``Store``: the read API, a thin front over the query functions of ``tracker.store``.

Imports neither Keras nor TensorFlow. Numbers come back bit-exact: NaN,
±inf and -0.0 are exactly what Keras passed. Every frame that names a phase
has ``phase``, the phase kind (``fit``, ``validation``, ``evaluate`` or
``predict``), ``phase_seq``, the phase's sequence number among all the
phases of its run (from 0; every validation pass inside a fit is a phase
too), and ``call``, the number of the call among the run's calls of that
kind (from 1: fit 1, evaluate 1, fit 2; a validation pass has its fit's
number; see ``tracker.store.runs.call_numbers``). A logs key is given by
its shown name (``tracker.store.names``): ``log:NAME`` for a key named
like a column of the tracker's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from tracker.store import checkpoints, decisions, overview, runs, series
from tracker.store.checkpoint_reads import CheckpointReads
from tracker.store.decision_reads import DecisionReads
from tracker.store.experiment_reads import ExperimentReads

__all__ = ["Store"]


class Store(DecisionReads, ExperimentReads, CheckpointReads):
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
        experiment: str | None = None,
        deleted: bool = False,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Return one row per run, filtered and sorted.

        All filters are bound parameters.

        Args:
            status: Keep runs with this status (or any of these). Default all.
            name: Keep runs with this name, case-sensitively; ``*`` and ``?``
                are wildcards, and every other character (``_`` and ``%``
                too) matches itself. Default all.
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
            limit: Return at most this many rows (a positive integer).
                Default all.
            run_ids: Keep only these run ids. Default all.
            experiment: Keep the runs of this experiment (``experiments``
                lists them). Default all.
            deleted: List the runs in the trash (``tracker delete``) instead
                of the runs in view, with a ``deleted_at`` column (UTC).
                Default False: a deleted run is in no listing.
            where: Keep the runs this filter expression selects, as
                ``best.val_loss < 0.2 and params.lr >= 1e-3`` (the language of
                ``tracker.store.where``, also ``tracker runs --where``;
                compiled to bound parameters). Default all.

        Returns:
            A DataFrame. Columns: ``run_id``, ``name``, ``status`` (running, finished, failed,
            interrupted, pruned: a tuning tool stopped its trial; crashed: a ``running`` run whose
            process is gone, see ``tracker.store.liveness``), ``started_at`` and ``ended_at`` (UTC),
            ``model_name``, ``param_count``, ``host``, ``pid``, ``phases`` (fit/evaluate/predict calls),
            ``epochs`` (epochs that count: a resumed job's superseded attempts are left out),
            ``heartbeat_at`` (the writer's last sign of life), ``experiment`` (the name of the experiment
            it belongs to, or None); with a ``best:``/``final:`` sort also ``KEY`` and ``KEY_epoch`` (the
            sorted value and its epoch). All filters are bound parameters.

        Raises:
            ValueError: ``sort``, ``status`` or ``limit`` is not understood.
            WhereError: ``where`` cannot be read, or names a key, param or tag no run has (one sentence).
            UnknownExperimentError: no experiment has the name ``experiment``.
        """
        return runs.runs_frame(
            self.engine, status=status, name=name, tags=tags, params=params, sort=sort, limit=limit,
            run_ids=run_ids, experiment=experiment, deleted=deleted, where=where,
            heartbeat_timeout=self.heartbeat_timeout,
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
        experiment: str | None = None,
        deleted: bool = False,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Return one row per run with what tells runs apart: which one is best.

        Takes the filters (``experiment``, ``deleted`` and ``where`` too) and sort of ``runs``, and ``metric``: the epoch key
        whose best value and epoch to show (default: the stoppers' most
        common monitor, else ``val_loss``, else the first ``val_*`` key, else
        ``loss``).

        Returns:
            A DataFrame. Columns: ``run_id``, ``name``, ``status``, ``started_at``, ``ended_at``,
            ``duration_s`` (``<NA>`` while running), ``epochs``, ``phases``, ``experiment``,
            ``param:NAME`` for each param whose value differs between the listed runs, ``metric`` (the
            key shown), ``best`` and ``best_epoch`` (min or max by the key's direction; superseded
            epochs left out), ``stopped_epoch`` (where a stopper stopped training), ``restored_epoch``
            (whose weights a callback restored), then ``eval:KEY`` for the results of each run's last
            ``evaluate``.

        Raises:
            ValueError: ``sort`` or ``status`` is not understood.
            WhereError: ``where`` cannot be read, or names a key, param or tag no run has.
            UnknownExperimentError: no experiment has the name ``experiment``.
        """
        found = overview.overview(
            self.engine, status=status, name=name, tags=tags, params=params, sort=sort, limit=limit,
            run_ids=run_ids, metric=metric, experiment=experiment, deleted=deleted, where=where,
            heartbeat_timeout=self.heartbeat_timeout,
        )
        return overview.overview_frame(found)

    def run(self, ref: str) -> dict[str, Any]:
        """Return a summary of one run.

        Returns:
            A dict. Keys: ``run`` (dict of the run's columns: id, name, status, times, host, pid,
            versions, model and parameter counts, error, ``note``, ``deleted_at`` (when it was moved
            to the trash, else None), on PostgreSQL ``created_by``: the role that
            created it, for a run in an experiment ``experiment``, and for a tool's trial ``trial``,
            ``trial_number``, ``execution``, ``continues``, ``trial_state`` and ``trial_score``, see
            ``tracker.store.experiments.trial_of``), ``params``, ``tags``, ``phases`` (DataFrame:
            ``phase_seq``, ``call``, ``phase`` (the kind), ``status``, ``started_at``, ``ended_at``,
            ``initial_epoch`` (above 0 for a resumed fit), ``batch_count``, ``sample_count``, ``error``,
            ``final_weights`` (for a finished fit, which weights it left in the model: ``trained``,
            ``ema`` or ``other``; see docs/decisions.md); validation passes excluded), ``metrics`` (see
            ``metrics``), ``evaluations``, ``lr_changes``, ``early_stops``, ``restores`` and
            ``checkpoints`` (see those methods), and ``started_from``: ``{"run_id": ..., "epoch": ...}``,
            the recorded epoch of another run whose weights the run's first fit started from (exactly,
            by fingerprint), or None for a fresh model (see ``lineage``).

        A run in the trash is shown too (``resolve(ref, deleted=True)``): its
        ``deleted_at`` says so.

        Raises:
            UnknownRunError: ``ref`` names no run.
        """
        run_id = self.resolve(ref, deleted=True)  # once: the parts below take the id as it is
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
            "checkpoints": checkpoints.checkpoints_frame(self.engine, run_id),
            "started_from": checkpoints.started_from(self.engine, run_id),
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

        Returns:
            A dict. Keys: ``model_config`` (``model.get_config()``) and ``fits``: per fit call,
            ``phase_seq``, ``call``, ``optimizer_config`` and ``keras_params`` (the ``params`` Keras
            passed the callbacks: epochs, steps, verbose).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.configs_of(self.engine, self.resolve(run))

    def metrics(self, run: str) -> pd.DataFrame:
        """Return the best and final value of every numeric epoch key of a run.

        Returns:
            A DataFrame. Columns: ``key``, ``best`` and ``best_epoch`` (min or max by the key's
            direction, see ``runs(sort=...)``; the earliest epoch reaching it), ``final`` and
            ``final_epoch`` (the latest epoch), ``epochs`` (epochs that logged it). NaN is skipped by
            best. Superseded epochs of a resumed job are left out.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return runs.metrics_frame(self.engine, self.resolve(run))

    # -- values over time ------------------------------------------------------------

    def epochs(self, run: str, *, tidy: bool = False, attempts: bool = False) -> pd.DataFrame:
        """Return one row per finished epoch of the run's fits.

        A job resumed with ``BackupAndRestore`` re-trains the epochs after
        its backup point; the attempts it threw away are left out unless
        ``attempts=True``, which adds them with ``superseded`` true.

        Returns:
            A DataFrame. Wide (default) columns: ``phase`` (``fit``), ``phase_seq``, ``call`` (the fit's
            number among the run's fits), ``epoch`` (0-based, as Keras passed it), ``started_at``,
            ``ended_at`` (UTC), ``redone`` (this epoch index was trained before, by an attempt that a
            resumed fit threw away), then one column per epoch ``logs`` key, in alphabetical order, by
            shown name (``log:epoch`` for a logged ``epoch``): the logs as every callback's
            ``on_epoch_end`` left them (what ``History`` keeps). A key an epoch did not log is ``<NA>``;
            a logged NaN is NaN. With ``tidy=True``: one row per epoch and key, columns ``run_id, phase,
            phase_seq, call, epoch, started_at, ended_at, redone, key, value``.

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

        Returns:
            A DataFrame. Columns: ``phase``, ``phase_seq``, ``call``, ``epoch`` (for fit batches, and
            for validation the epoch validated; ``<NA>`` otherwise), ``batch`` (Keras' index within the
            epoch: the end step, so 3, 7, 11 with ``steps_per_execution=4``), ``step`` (the order of the
            batches of one call: for a fit, the batch's index in the whole fit), ``elapsed`` (seconds
            since the call began, when the hook ran), then one column per logged key: Keras' running
            means since the start of the epoch. Predict batches have no values (outputs are never
            stored). Rows are in Keras' order, also when JAX or torch ran the hooks out of order.

        Raises:
            UnknownRunError: ``run`` names no run.
            ValueError: ``phase`` is not one of the four kinds.
        """
        return series.batches_frame(self.engine, self.resolve(run), phase, tidy=tidy)

    def batch_curves(self, run: str, phase: str = "fit") -> series.BatchCurves:
        """Return the batches of ``batches(run, phase)`` as NumPy arrays, for plotting many of them.

        No pandas: 100,000 batches take a fraction of ``batches``' time.

        Returns:
            A ``BatchCurves`` (``tracker.store.series``): int64 arrays ``phase_seq``, ``epoch`` (-1
            where none), ``batch`` and ``step``, one position per batch in Keras' order, and ``values``:
            per logs key logged as a number, ``(rows, floats)``, the positions that logged it and the
            bit-exact float64 values. Non-float values are left out.

        Raises:
            UnknownRunError: ``run`` names no run.
            ValueError: ``phase`` is not one of the four kinds.
        """
        return series.batch_curves(self.engine, self.resolve(run), phase)

    def evaluations(self, run: str | None = None) -> pd.DataFrame:
        """Return one row per ``evaluate`` call, of one run or of every run.

        Returns:
            A DataFrame. Columns: ``run_id``, ``phase_seq``, ``call``, ``status``, ``ended_at``, then
            one column per key of the logs ``evaluate`` ended with (the results
            ``evaluate(return_dict=True)`` returns).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self._maybe(run)
        return series.evaluations_frame(self.engine, None if run_id is None else [run_id])

    def system(self, run: str) -> pd.DataFrame:
        """Return the run's system metrics: one row per sample, oldest first.

        Sampled by ``TrackingCallback(system_metrics=True)`` (the default)
        every ``system_interval`` seconds, at each epoch's end and when a
        call ends, while a call of the run is open.

        Returns:
            A DataFrame. Columns: ``sampled_at`` (UTC), ``elapsed`` (seconds
            since the run started), ``trigger`` (``timer``, ``epoch`` or
            ``end``), ``phase``, ``phase_seq`` and ``call`` (the run's
            outermost call open then), ``epoch`` (for an ``epoch`` sample,
            the epoch that ended, else ``<NA>``), ``cpu_percent`` (the
            process's CPU use since the previous sample; 100 is one core
            busy; ``<NA>`` for a sample within 0.1 s of the one it would be
            measured from), ``rss`` (the process's resident memory), ``memory_used``
            and ``memory_total`` (the machine's memory in use, total minus
            available, and in all); memory in bytes. Then, per GPU the
            sampler saw through NVML, ``gpu{N}_utilization`` (percent),
            ``gpu{N}_memory_used`` and ``gpu{N}_memory_total`` (bytes); no
            GPU columns when none was recorded. Empty for a run recorded
            with ``system_metrics=False`` or by an older tracker.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        from tracker.store.system import system_frame

        return system_frame(self.engine, self.resolve(run))
