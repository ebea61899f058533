"""The sweep tables: experiments, and the trial of a tuning tool each run belongs to (revision 0009).

Written by the recorder through ``tracker.db.sweep_writes``; read by
``tracker.store.experiments`` and ``tracker.store.sweeps``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Double, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tracker.db.base import Base
from tracker.db.types import SafeString, SafeText

__all__ = ["Experiment", "Trial"]


class Experiment(Base):
    """A named group of runs: a search of a tuning tool, or any runs given the same ``experiment``.

    A shared dictionary, like ``keys``: the first run that names an
    experiment creates its row, with what that run knows about it, and the
    row never changes afterwards. ``tool`` is the tuning tool the runs came
    from (``keras_tuner``, ``optuna``), NULL for runs a user grouped
    (``TrackingCallback(experiment=...)``). ``objective`` is the tool's
    objective (KerasTuner's ``oracle.objective.name``, such as ``val_loss``;
    an Optuna study's metric name if it set one) and ``direction`` its
    direction (``min`` or ``max``), where the tool defines one (NULL for a
    multi-objective study).
    """

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(SafeString, unique=True)
    tool: Mapped[str | None] = mapped_column(String)
    objective: Mapped[str | None] = mapped_column(SafeString)
    direction: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Trial(Base):
    """The trial of a tuning tool that a run trained, and what the tool decided about it.

    One row per run. A trial that trains several times (KerasTuner's
    ``executions_per_trial``) has one run per execution, and each row holds
    the trial's values. ``trial`` is the tool's trial id as it gives it
    (KerasTuner's zero-padded ``trial_id``; Optuna's ``number`` as text),
    ``number`` its place in the tool's order (from 0), ``execution`` the run's
    execution of the trial (from 0), ``continues`` the trial whose weights it
    started from (Hyperband's ``tuner/trial_id``).

    Set when the tool ends the trial (NULL until then): ``state``, the tool's
    own status (KerasTuner: ``COMPLETED``, ``INVALID``, ``FAILED``; Optuna:
    ``COMPLETE``, ``PRUNED``, ``FAIL``), and its ``score`` as the tool reports
    it (KerasTuner: the oracle's ``trial.score``, the mean over executions of
    each one's best objective value; Optuna: the trial's value), stored as
    ``tracker.db.values`` stores a logged value: a float64 ``score``, its
    IEEE-754 pattern ``score_bits`` where the float cannot carry it (NaN,
    -0.0), and ``score_text`` for anything else (a multi-objective study's
    values, as JSON). ``ended_at``: when the tool ended it (UTC).
    """

    __tablename__ = "trials"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    trial: Mapped[str] = mapped_column(SafeString)
    number: Mapped[int | None] = mapped_column(Integer)
    execution: Mapped[int] = mapped_column(Integer, server_default="0")
    continues: Mapped[str | None] = mapped_column(SafeString)
    state: Mapped[str | None] = mapped_column(String)
    score: Mapped[float | None] = mapped_column(Double)
    score_bits: Mapped[int | None] = mapped_column(BigInteger)
    score_text: Mapped[str | None] = mapped_column(SafeText)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
