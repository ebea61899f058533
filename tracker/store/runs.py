"""Store queries about one run: its summary, params, tags and best/final metrics.

Mixed into ``tracker.Store``; imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select

from tracker.store.decisions import DecisionQueries
from tracker.store.liveness import effective_status
from tracker.store.filters import maximised
from tracker.db.tables import Param, Phase, PhaseKind, Run, RunMetric, Tag

__all__ = ["RunQueries"]


class RunQueries(DecisionQueries):
    """One run at a time: ``run``, ``params``, ``tags``, ``metrics``."""

    def params(self, run: str) -> dict[str, Any]:
        """Return the run's user parameters, as JSON values.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self.resolve(run)
        with self.engine.connect() as conn:
            return dict(conn.execute(select(Param.key, Param.value).where(Param.run_id == run_id).order_by(Param.key)).all())

    def tags(self, run: str) -> dict[str, str]:
        """Return the run's tags.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self.resolve(run)
        with self.engine.connect() as conn:
            return dict(conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == run_id).order_by(Tag.key)).all())

    def metrics(self, run: str) -> pd.DataFrame:
        """Return the best and final value of every numeric epoch key of a run.

        Columns: ``key``, ``best`` and ``best_epoch`` (min or max by the
        key's direction, see ``runs(sort=...)``), ``final``, ``final_epoch``,
        ``epochs`` (epochs that logged it). NaN is skipped by best.

        Raises:
            UnknownRunError: ``run`` names no run.
        """
        run_id = self.resolve(run)
        frame = self._frame(select(RunMetric).where(RunMetric.run_id == run_id).order_by(RunMetric.key))
        rows = []
        for r in frame.itertuples(index=False):
            high = maximised(r.key)
            rows.append(
                {
                    "key": r.key,
                    "best": r.best_max if high else r.best_min,
                    "best_epoch": r.best_max_epoch if high else r.best_min_epoch,
                    "final": r.final,
                    "final_epoch": r.final_epoch,
                    "epochs": r.epochs,
                }
            )
        out = pd.DataFrame(rows, columns=["key", "best", "best_epoch", "final", "final_epoch", "epochs"])
        for column in ("best_epoch", "final_epoch", "epochs"):
            out[column] = out[column].astype("Int64")
        for column in ("best", "final"):
            out[column] = out[column].astype("float64")
        return out

    def run(self, ref: str) -> dict[str, Any]:
        """Return a summary of one run.

        Keys: ``run`` (dict of the run's columns: id, name, status, times,
        host, pid, versions, model and parameter counts, error), ``params``,
        ``tags``, ``phases`` (DataFrame: seq, kind, status, started_at,
        ended_at, initial_epoch (above 0 for a resumed fit), batch_count, sample_count, error; validation passes
        excluded), ``metrics`` (see ``metrics``), ``lr_changes``,
        ``early_stops`` and ``restores`` (see those methods).

        Raises:
            UnknownRunError: ``ref`` names no run.
        """
        run_id = self.resolve(ref)
        with self.engine.connect() as conn:
            row = conn.execute(select(Run).where(Run.id == run_id)).mappings().one()
        info = {k: getattr(v, "value", v) for k, v in dict(row).items() if k != "model_config"}
        info["status"] = effective_status(
            info["status"], info["host"], info["pid"], info["started_at"], info["heartbeat_at"],
            timeout=self.heartbeat_timeout,
        )
        phases = self._frame(
            select(
                Phase.seq,
                Phase.kind,
                Phase.status,
                Phase.started_at,
                Phase.ended_at,
                Phase.initial_epoch,
                Phase.batch_count,
                Phase.sample_count,
                Phase.error,
            )
            .where(Phase.run_id == run_id, Phase.kind != PhaseKind.VALIDATION)
            .order_by(Phase.seq)
        )
        for column in ("kind", "status"):
            phases[column] = phases[column].map(lambda v: getattr(v, "value", v))
        return {
            "run": info,
            "params": self.params(run_id),
            "tags": self.tags(run_id),
            "phases": phases,
            "metrics": self.metrics(run_id),
            "lr_changes": self.lr_changes(run_id),
            "early_stops": self.early_stops(run_id),
            "restores": self.restores(run_id),
        }
