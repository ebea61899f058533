"""Finding the run a restarted job continues (``TrackingCallback(resume=...)``)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, true

from tracker.db.roles import confined_to_own_runs
from tracker.db.sweep_tables import Experiment, Trial
from tracker.db.tables import Phase, Run, Status
from tracker.errors import UnknownRunError

__all__ = ["find_run_to_resume", "find_trial_run"]


def find_run_to_resume(engine: Engine, resume: bool | str, run_name: str | None) -> tuple[str, int] | None:
    """Return ``(run_id, next phase seq)`` of the run to continue, or None to start a new one.

    ``resume=True`` continues the newest run named ``run_name`` that did not
    finish (running, crashed, interrupted or failed) and is not in the trash
    (``tracker delete``); with none, a new run starts. ``resume="RUN_ID"``
    continues that run, whatever its status, unless it is in the trash. On
    a server, a role that may change only its own runs (a writer) continues
    only runs it created.

    Raises:
        UnknownRunError: ``resume`` is a run id that is not in the database,
            that is in the trash, or that another role created.
        ValueError: ``resume=True`` without a ``run_name``.
    """
    with engine.connect() as conn:
        mine = Run.created_by == func.current_user() if confined_to_own_runs(conn) else true()
        if isinstance(resume, str):
            run_id = conn.execute(select(Run.id).where(Run.id == resume)).scalar()
            if run_id is None:
                raise UnknownRunError(f"Cannot resume run {resume!r}: it is not in this database.")
            if conn.execute(select(Run.deleted_at).where(Run.id == resume)).scalar() is not None:
                raise UnknownRunError(
                    f"Cannot resume run {resume!r}: it is deleted (in the trash); bring it back first with: "
                    f"tracker undelete {resume}"
                )
            if conn.execute(select(Run.id).where(Run.id == resume, mine)).scalar() is None:
                raise UnknownRunError(
                    f"Cannot resume run {resume!r}: another database role created it, and only that role "
                    "or the database's owner may continue it."
                )
        else:
            if not run_name:
                raise ValueError("resume=True needs a run_name to find the run to continue (or pass resume=RUN_ID).")
            run_id = conn.execute(
                select(Run.id)
                .where(Run.name == run_name, Run.status != Status.FINISHED, Run.deleted_at.is_(None), mine)
                .order_by(Run.started_at.desc())
                .limit(1)
            ).scalar()
            if run_id is None:
                return None
        last_seq = conn.execute(select(func.max(Phase.seq)).where(Phase.run_id == run_id)).scalar()
    return run_id, (last_seq + 1 if last_seq is not None else 0)


def find_trial_run(engine: Engine, experiment: str, trial: str, exclude: frozenset[str] = frozenset()) -> tuple[str, int] | None:
    """Return ``(run_id, next phase seq)`` of the newest run of ``trial`` in ``experiment``, or None.

    The run an earlier attempt at a trial started (a Ray Tune trial restarted
    after a failure), whatever its status, unless it is in the trash or in
    ``exclude``. On a server, a writer role finds only the runs it created.
    """
    with engine.connect() as conn:
        mine = Run.created_by == func.current_user() if confined_to_own_runs(conn) else true()
        query = (select(Run.id).join(Trial, Trial.run_id == Run.id).join(Experiment, Experiment.id == Run.experiment_id)
                 .where(Experiment.name == experiment, Trial.trial == trial, Run.deleted_at.is_(None), mine)
                 .order_by(Run.started_at.desc()).limit(1))
        if exclude:
            query = query.where(Run.id.not_in(sorted(exclude)))
        run_id = conn.execute(query).scalar()
        if run_id is None:
            return None
        last_seq = conn.execute(select(func.max(Phase.seq)).where(Phase.run_id == run_id)).scalar()
    return run_id, (last_seq + 1 if last_seq is not None else 0)
