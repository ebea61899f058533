"""What the CLI's tables show: read results turned into rows for people.

Plain functions from ``(columns, rows)`` to ``(columns, rows)``; the cells
are then written by ``tracker.terminal``. Only the tables change: ``csv`` and
``json`` get the exact, complete rows. In a table:

* ``phase``, ``phase_seq`` and ``call`` become one ``phase`` column naming
  the call (``fit``, ``evaluate``, ``fit 2`` for a run's second fit, see
  ``tracker.store.runs.phase_labels``);
* a run id is cut to a unique prefix of at least 8 characters (still a
  valid run reference);
* ``started_at``/``ended_at`` become the start and a ``duration``, or only
  the duration for epochs and batches; ``duration_s`` becomes ``duration``;
* a column with no value in any row is left out.

Imports neither pandas nor Keras, so that ``tracker runs`` stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tracker.views.terminal import Duration

if TYPE_CHECKING:
    from tracker.store.overview import Overview

__all__ = ["short_ids", "to_time", "iso_utc", "table_view", "runs_table", "runs_exact", "transpose", "show_tables",
           "system_table"]

Rows = list[list[Any]]


def _missing(value: Any) -> bool:
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def short_ids(ids: Sequence[str], *, least: int = 8) -> dict[str, str]:
    """Each id cut to the shortest prefix (at least ``least`` characters) that no other id shares."""
    unique = sorted(set(i for i in ids if isinstance(i, str)))
    size = least
    while size < 32 and len({i[:size] for i in unique}) < len(unique):
        size += 1
    return {i: i[:size] for i in unique}


def to_time(value: Any) -> datetime | None:
    """A stored time (datetime, pandas Timestamp or ISO text) as a UTC datetime; None if missing or not a time."""
    if _missing(value):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso_utc(value: Any) -> Any:
    """A stored time as exact ISO 8601 text with its zone (``...+00:00``); anything else unchanged."""
    time = to_time(value) if isinstance(value, (str, datetime)) or hasattr(value, "to_pydatetime") else None
    return value if time is None else time.isoformat()


def _seconds(start: Any, end: Any) -> Duration | None:
    a, b = to_time(start), to_time(end)
    return None if a is None or b is None else Duration((b - a).total_seconds())


def table_view(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    labels: Mapping[tuple[Any, Any], str] | None = None,
    run_id: str | None = None,
    times: str = "start",
    drop: Sequence[str] = (),
    short: bool = True,
) -> tuple[list[str], Rows]:
    """Rewrite read rows for a table (see the module docstring).

    Args:
        columns: The columns of the frame (``phase``, ``phase_seq``,
            ``run_id``, ``*_at`` and ``duration_s`` are recognised).
        rows: Its rows.
        labels: Phase names by ``(run_id, phase_seq)`` (from
            ``phase_labels``). Default None: the phase kind alone.
        run_id: The run the rows belong to when they have no ``run_id``
            column. Default None.
        times: ``start`` (keep ``started_at``, turn ``ended_at`` into a
            ``duration``), ``duration`` (only the duration) or ``keep``.
        drop: Columns to leave out. Default none.
        short: Cut run ids to a unique prefix. Default True.

    Returns:
        ``(columns, rows)`` for ``tracker.terminal.render_table``.
    """
    cols = list(columns)
    data = [list(r) for r in rows]
    at = {c: i for i, c in enumerate(cols)}
    if "phase_seq" in at:
        rid_at, kind_at, seq_at = at.get("run_id"), at.get("phase"), at["phase_seq"]
        for row in data:
            rid = row[rid_at] if rid_at is not None else run_id
            kind = row[kind_at] if kind_at is not None else None
            name = (labels or {}).get((rid, row[seq_at])) if not _missing(row[seq_at]) else None
            row[kind_at if kind_at is not None else seq_at] = name or kind
        drop = [*drop, "call"]  # the label holds it
        if kind_at is not None:
            drop = [*drop, "phase_seq"]
        else:
            cols[seq_at] = "phase"
    if short and "run_id" in at:
        prefixes = short_ids([row[at["run_id"]] for row in data])
        for row in data:
            row[at["run_id"]] = prefixes.get(row[at["run_id"]], row[at["run_id"]])
    for name, i in at.items():
        if name.endswith("_at"):
            for row in data:
                row[i] = to_time(row[i]) or row[i]  # text that is not a time stays as it is
        elif name == "duration_s":
            cols[i] = "duration"
            for row in data:
                row[i] = None if _missing(row[i]) else Duration(row[i])
    if times != "keep" and "started_at" in at and "ended_at" in at:
        start, end = at["started_at"], at["ended_at"]
        for row in data:
            row[end] = _seconds(row[start], row[end])
        cols[end] = "duration"
        if times == "duration":
            drop = [*drop, "started_at"]
    keep = [i for i, c in enumerate(columns) if c not in drop and any(not _missing(row[i]) for row in data)]
    return [cols[i] for i in keep], [[row[i] for i in keep] for row in data]


def runs_exact(found: Overview) -> tuple[list[str], Rows]:
    """The runs overview for ``csv``/``json``: every column, times as ISO text with their zone."""
    columns = [*found.columns, *found.extra_columns]
    rows = [[*row, *extra] for row, extra in zip(found.rows, found.extra_rows)]
    timed = [i for i, c in enumerate(columns) if c.endswith("_at")]
    for row in rows:
        for i in timed:
            row[i] = iso_utc(row[i])
    return columns, rows


def runs_table(
    found: Overview, *, wide: bool = False, sort_key: str | None = None, sort_kind: str | None = None,
    now: datetime | None = None,
) -> tuple[list[str], Rows]:
    """The runs overview as a table: which run is best.

    By default: a short ``run_id``, ``name``, ``status``, ``started_at``,
    ``duration`` (so far, for a running run), ``epochs``, the params that
    differ, ``best:KEY`` and ``best_epoch`` of the metric shown, then
    ``stopped_epoch``, ``restored_epoch`` and ``eval:KEY`` where any run has
    them, and ``final:KEY`` for a ``final:KEY`` sort; ``deleted_at`` when
    listing the trash. ``wide``: every column
    of ``runs_exact``, ids in full.
    """
    columns, rows = runs_exact(found)
    at = {c: i for i, c in enumerate(columns)}
    current = now or datetime.now(timezone.utc)
    for row in rows:
        if _missing(row[at["duration_s"]]) and row[at["status"]] == "running":
            start = to_time(row[at["started_at"]])
            row[at["duration_s"]] = None if start is None else (current - start).total_seconds()
    metric = found.metric
    if metric is not None:
        columns[at["best"]] = f"best:{metric}"
    if sort_key is not None and sort_kind == "final" and sort_key in at:
        columns[at[sort_key]] = f"final:{sort_key}"
        columns[at[f"{sort_key}_epoch"]] = "final_epoch"
    if wide:
        return table_view(columns, rows, times="keep", drop=["metric"], short=False)
    shown = ["run_id", "name", "status", "started_at", "duration_s", "deleted_at", "epochs",
             *(f"param:{k}" for k in found.differing), "best", "best_epoch", "stopped_epoch", "restored_epoch"]
    if sort_key is not None and sort_kind == "final":
        shown += [sort_key, f"{sort_key}_epoch"]
    shown += [f"eval:{k}" for k in found.eval_keys]
    keep = [at[c] for c in shown if c in at]
    return table_view([columns[i] for i in keep], [[row[i] for i in keep] for row in rows], times="keep")


def transpose(columns: Sequence[str], rows: Sequence[Sequence[Any]], headers: Sequence[str],
              *, skip: Sequence[str] = ()) -> tuple[list[str], Rows]:
    """One row per column and one column per row (``compare``): ``field``, then one column per header."""
    out = []
    for i, name in enumerate(columns):
        if name not in skip:
            out.append([name, *(row[i] for row in rows)])
    return ["field", *headers], out


def _run_fields(run: Mapping[str, Any]) -> Rows:
    """The run's own columns as ``field``/``value`` rows, with its duration; empty fields left out."""
    fields: Rows = []
    for key, value in run.items():
        if key == "versions" and isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif key.endswith("_at"):
            value = to_time(value)
        if not _missing(value) and value != "":
            fields.append([key, value])
        if key == "ended_at":
            duration = _seconds(run.get("started_at"), value)
            if duration is not None:
                fields.append(["duration", duration])
    return fields


def show_tables(summary: Mapping[str, Any], labels: Mapping[tuple[str, int], str]) -> list[
        tuple[str, list[str], Rows, tuple[str, ...]]]:
    """The tables of ``tracker show``: ``(title, columns, rows, key columns)`` for each non-empty section.

    ``summary`` is ``Store.run(...)``: the run's fields, then params, tags,
    phases, metrics, evaluations (one row per ``evaluate`` call), LR
    changes, early stops, restores and checkpoints.
    """
    from tracker.store.rows import frame_rows

    run_id = summary["run"]["id"]
    out: list[tuple[str, list[str], Rows, tuple[str, ...]]] = [
        ("run", ["field", "value"], _run_fields(summary["run"]), ("field",))
    ]
    for section in ("params", "tags"):
        if summary[section]:
            out.append((section, ["key", "value"], [[k, v] for k, v in summary[section].items()], ("key",)))
    for section in ("phases", "metrics", "evaluations", "lr_changes", "early_stops", "restores", "checkpoints"):
        frame = summary.get(section)
        if frame is None or not len(frame):
            continue
        drop = ("run_id", "name") + (("fingerprint", "saved_at", "hook") if section == "checkpoints" else ())
        columns, rows = table_view(*frame_rows(frame), labels=labels, run_id=run_id, drop=drop)
        for name, dull in (("initial_epoch", (0,)), ("optimizer", ("optimizer",))):
            # initial_epoch only for a resumed fit; optimizer only for a model with several
            if name in columns:
                i = columns.index(name)
                if all(_missing(r[i]) or r[i] in dull for r in rows):
                    columns, rows = columns[:i] + columns[i + 1:], [r[:i] + r[i + 1:] for r in rows]
        out.append((section.replace("_", " "), columns, rows, ("phase", "key")))
    return out


#: Memory columns of ``Store.system`` (bytes), shown in MiB in a table.
_MEMORY = ("rss", "memory_used", "memory_total")


def system_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[list[str], Rows]:
    """``Store.system`` rows for people: ``elapsed`` as a duration, memory in MiB (``rss_MiB``...), CPU and
    GPU use to one decimal; ``sampled_at`` left out (``elapsed`` tells when), the machine's total memory too."""
    keep = [i for i, c in enumerate(columns) if c not in ("sampled_at", "memory_total")]
    out_columns, out = [], []
    for i in keep:
        name = columns[i]
        memory = name in _MEMORY or (name.startswith("gpu") and name.endswith(_MEMORY[1:]))
        out_columns.append(f"{name}_MiB" if memory else name)
    for row in rows:
        cells: list[Any] = []
        for i in keep:
            name, value = columns[i], row[i]
            if _missing(value):
                cells.append(None)
            elif name == "elapsed":
                cells.append(Duration(value))
            elif out_columns[len(cells)].endswith("_MiB"):
                cells.append(round(value / 2**20, 1))
            elif name == "cpu_percent" or name.endswith("_utilization"):
                cells.append(round(value, 1))
            else:
                cells.append(value)
        out.append(cells)
    return out_columns, out
