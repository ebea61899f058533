"""Finding the run a restarted job continues (``TrackingCallback(resume=...)``)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from tracker.db.tables import Phase, Run, Status
from tracker.errors import UnknownRunError

__all__ = ["find_run_to_resume"]


def find_run_to_resume(engine: Engine, resume: bool | str, run_name: str | None) -> tuple[str, int] | None:
    """Return ``(run_id, next phase seq)`` of the run to continue, or None to start a new one.

    ``resume=True`` continues the newest run named ``run_name`` that did not
    finish (running, crashed, interrupted or failed); with none, a new run
    starts. ``resume="RUN_ID"`` continues that run, whatever its status.

    Raises:
        UnknownRunError: ``resume`` is a run id that is not in the database.
        ValueError: ``resume=True`` without a ``run_name``.
    """
    with engine.connect() as conn:
        if isinstance(resume, str):
            run_id = conn.execute(select(Run.id).where(Run.id == resume)).scalar()
            if run_id is None:
                raise UnknownRunError(f"Cannot resume run {resume!r}: it is not in this database.")
        else:
            if not run_name:
                raise ValueError("resume=True needs a run_name to find the run to continue (or pass resume=RUN_ID).")
            run_id = conn.execute(
                select(Run.id)
                .where(Run.name == run_name, Run.status != Status.FINISHED)
                .order_by(Run.started_at.desc())
                .limit(1)
            ).scalar()
            if run_id is None:
                return None
        last_seq = conn.execute(select(func.max(Phase.seq)).where(Phase.run_id == run_id)).scalar()
    return run_id, (last_seq + 1 if last_seq is not None else 0)
