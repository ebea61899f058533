"""``ExperimentReads``: the part of ``Store`` that reads experiments and their trials."""

from __future__ import annotations

import pandas as pd

from tracker.store import experiments
from tracker.store.reader import Reader
from tracker.store.sweeps import SweepInfo, sweep_info

__all__ = ["ExperimentReads"]


class ExperimentReads(Reader):
    """``Store.experiments`` and ``Store.sweep`` (see ``Store`` for the constructor)."""

    def experiments(self) -> pd.DataFrame:
        """Return one row per experiment, by name.

        Columns: ``experiment`` (the name), ``tool`` (``keras_tuner``,
        ``optuna``, or ``<NA>`` for runs a user grouped), ``objective`` and
        ``direction`` (the tool's, where it has one), ``runs``, ``trials``
        (a tool's distinct trials; 0 for none), one count per run status
        (``running``, ``finished``, ``failed``, ``interrupted``, ``pruned``,
        ``crashed``), ``started_at`` (its first run's start) and ``ended_at``
        (its last run's end; ``<NA>`` while one runs), then its best:
        ``metric`` (what ranked it: ``score``, the tool's own, or an epoch
        key), ``best`` (that value), ``best_trial`` (the tool's trial id),
        ``best_run`` and ``best_name`` (the run standing for it). The best is
        the trial ranked first by ``sweep``.
        """
        return experiments.experiments_frame(self.engine, heartbeat_timeout=self.heartbeat_timeout)

    def sweep(self, experiment: str, *, metric: str | None = None) -> SweepInfo:
        """Return the trials of ``experiment``, ranked as the tool ranks them (``tracker.store.sweeps``).

        Args:
            experiment: The experiment's name.
            metric: The epoch key whose best value and epoch each trial shows
                (and that ranks the trials of an experiment no tool ranks).
                Default: the tool's objective if it is a logged key, else the
                stoppers' monitor, ``val_loss``, a ``val_*`` key, ``loss``.

        Raises:
            UnknownExperimentError: no experiment has the name (close names are suggested).
            InvalidArgumentError: ``metric`` is not a logged epoch key.
        """
        return sweep_info(self.engine, experiment, metric=metric, heartbeat_timeout=self.heartbeat_timeout)
