"""``DecisionReads``: the part of ``Store`` that reads the decisions: LR changes and series, stops, restores."""

from __future__ import annotations

import pandas as pd

from tracker.store import decisions
from tracker.store.reader import Reader

__all__ = ["DecisionReads"]


class DecisionReads(Reader):
    """``Store``'s decision methods (see ``Store``)."""

    def lr_changes(self, run: str | None = None) -> pd.DataFrame:
        """Return one row per learning-rate change, of one run or of every run.

        Returns:
            A DataFrame. Columns: ``run_id``, ``phase`` (``fit``), ``phase_seq``, ``call``,
            ``optimizer`` (the model attribute holding it), ``epoch`` (the first epoch that trains with
            the new value), ``step`` (the first global optimizer step that does), ``old_lr``,
            ``new_lr``, ``source`` (the callback's class name, ``user code``, or ``unknown`` when the
            change was noticed only afterwards) and ``hook`` (the callback method).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.lr_changes_frame(self.engine, self._maybe(run))

    def lr_series(self, run: str | None = None) -> pd.DataFrame:
        """Return the learning rate each optimizer trained with.

        Returns:
            A DataFrame. One row per fit start (``point`` = ``phase_begin``), per epoch (the rate of the
            epoch's first step) and, for optimizers on a ``LearningRateSchedule`` with batch logging on,
            per recorded batch. Columns: ``run_id``, ``phase``, ``phase_seq``, ``call``, ``optimizer``,
            ``point``, ``epoch``, ``batch``, ``step`` (global optimizer step), ``lr``.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.lr_series_frame(self.engine, self._maybe(run))

    def early_stops(self, run: str | None = None) -> pd.DataFrame:
        """Return the early-stop decisions, of one run or of every run.

        Returns:
            A DataFrame. One row per ``stop_training = True`` (``stopped`` true) and per stopper that
            ran to the end of a fit without stopping (``stopped`` false, its state at train end).
            Columns: ``run_id``, ``name``, ``phase``, ``phase_seq``, ``call``, ``stopper`` (the
            callback's class name), ``stopped``, ``stopped_epoch`` (the epoch in which training was
            stopped), ``hook``, ``batch`` (for a stop inside a batch, e.g. TerminateOnNaN),
            ``best_epoch``, ``monitor``, ``best``, ``patience``, ``wait``, ``mode``, ``min_delta``,
            ``baseline``, ``start_from_epoch``, and ``epoch`` (the epoch of the decision: where it
            stopped, or the last epoch for one that did not). ``best``, ``min_delta`` and ``baseline``
            are ``<NA>`` where the stopper had none (SQL columns, which cannot hold a NaN).
            A tuning tool's stop (a pruned trial) has the pruner's class as ``stopper`` and ``step``
            and ``value``: the step and value last reported to the tool, which it judged (bit-exact;
            ``<NA>`` for other stops).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.early_stops_frame(self.engine, self._maybe(run))

    def stopper_states(self, run: str | None = None) -> pd.DataFrame:
        """Return each stopper's state at each epoch end, of one run or of every run.

        Returns:
            A DataFrame. One row per callback of a fit that has ``patience`` and ``wait``
            (EarlyStopping, the guide's EarlyStoppingAtMinLoss, ReduceLROnPlateau) per epoch, read once
            every callback's ``on_epoch_end`` has run. Columns: ``run_id``, ``name``, ``phase``,
            ``phase_seq``, ``call``, ``epoch``, ``stopper``, ``monitor``, ``best``, ``best_epoch``,
            ``wait``, ``patience``, ``mode``, ``min_delta``, ``baseline``, ``start_from_epoch``. Runs
            recorded before schema revision 0006 have none.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.stopper_states_frame(self.engine, self._maybe(run))

    def restores(self, run: str | None = None) -> pd.DataFrame:
        """Return the fits that ended with the weights of an earlier epoch.

        Returns:
            A DataFrame. Found by weight fingerprints, not from the metric history. Columns: ``run_id``,
            ``name``, ``phase``, ``phase_seq``, ``call``, ``restored_epoch`` (whose weights the model
            ended with; when several epochs ended with identical weights, the one the restoring callback
            names as its ``best_epoch`` if it is among them, else the earliest), ``last_epoch`` (the
            last epoch trained), ``restored_by`` (the class of the callback whose ``set_weights`` put
            them back), ``hook`` and ``at_epoch`` (when it did), ``final_weights`` (``trained``: the
            restored epoch's weights as trained; ``ema``: an EMA optimizer's moving averages as they
            were at its end; ``other``: weights no epoch ended with, ``restored_epoch`` empty),
            ``monitor`` (the stopper's monitored key, else ``val_loss`` or ``loss``),
            ``value_at_restored`` and ``value_at_last`` (that key's epoch values).

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        return decisions.restores_frame(self.engine, self._maybe(run))
