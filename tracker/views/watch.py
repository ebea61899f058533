"""``tracker watch``: a live view of a run, read from the database while a fit writes it.

Every ``interval`` seconds the view reads the run again (read-only; SQLite's
WAL keeps the reader and the training process apart) and shows:

* the run, its status, how long it has run, and its current call: epochs
  done out of ``epochs``, the batch reached (batches are written every
  ``flush_every`` batches or ``flush_interval`` seconds, so it may lag);
* the learning rate now, and the last change with its source;
* the best value so far of the metric a stopper monitors (else
  ``val_loss``, else the first ``val_*`` key, else ``loss``) and how many
  epochs ago it was, computed from the stored epochs;
* each stopper's state while the fit runs (its monitor, best, ``wait`` of
  ``patience``), as recorded at the last epoch end once every callback had
  run (``Store.stopper_states``), and the stoppers' decisions, as recorded;
* the last epochs, as many as the terminal has room for.

In a terminal, the view refreshes in place (rich's ``Live``; also over
SSH). Into a pipe or a file it writes one line per new epoch, then the
final view. Text from the record (the run's name, host, keys, callbacks) is
shown escaped and capped as in tables (``tracker.views.terminal.printable``). It ends when the run is no longer ``running``: ``finished``,
``failed``, ``interrupted``, ``pruned`` (a tuning tool stopped its trial), or ``crashed`` (its process is gone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pandas as pd

from tracker.store.filters import maximised
from tracker.store.live import Progress, progress
from tracker.store.runs import phase_labels, run_summary
from tracker.store.series import META_COLUMNS
from tracker.views.terminal import cell_text, format_duration, format_time, printable, render_table
from tracker.views.tables import to_time

if TYPE_CHECKING:
    from rich.console import Console

    from tracker.store import Store

__all__ = ["Snapshot", "snapshot", "render_view", "epoch_line", "watch_run"]


@dataclass
class Snapshot:
    """One reading of a run: what ``render_view`` shows."""

    run: dict[str, Any]
    progress: Progress | None
    fit: Progress | None
    epochs: pd.DataFrame
    lr_changes: pd.DataFrame
    stops: pd.DataFrame
    states: pd.DataFrame
    restores: pd.DataFrame
    labels: dict[tuple[str, int], str] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def status(self) -> str:
        return str(self.run["status"])


def snapshot(store: Store, run_id: str) -> Snapshot:
    """Read the run once (a handful of small queries)."""
    latest = progress(store.engine, run_id)
    return Snapshot(
        run=run_summary(store.engine, run_id, heartbeat_timeout=store.heartbeat_timeout),
        progress=latest,
        fit=latest if latest is None or latest.phase == "fit" else progress(store.engine, run_id, kind="fit"),
        epochs=store.epochs(run_id),
        lr_changes=store.lr_changes(run_id),
        stops=store.early_stops(run_id),
        states=store.stopper_states(run_id),
        restores=store.restores(run_id),
        labels=phase_labels(store.engine, [run_id]),
    )


def _t(value: Any) -> str:
    """Text from the record (a name, key, host, callback) as it may be printed: escaped and capped."""
    return printable(str(value))


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _keys(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META_COLUMNS]


def _watched_metric(snap: Snapshot) -> str | None:
    keys = _keys(snap.epochs)
    monitors = [m for m in snap.stops["monitor"].dropna() if m in keys] if len(snap.stops) else []
    for key in [*reversed(monitors), "val_loss", *sorted(k for k in keys if k.startswith("val_")), "loss"]:
        if key in keys:
            return key
    return None


def _header(snap: Snapshot) -> list[str]:
    run, p = snap.run, snap.progress
    start, end = to_time(run.get("started_at")), to_time(run.get("ended_at"))
    took = ((end or snap.now) - start).total_seconds() if start is not None else None
    where = f" on {_t(run['host'])} (pid {run['pid']})" if run.get("host") else ""
    line = f"{_t(run.get('name') or 'run')} · {run['id'][:8]} · {snap.status}{where}"
    if start is not None:
        line += f" · started {format_time(start)}"
    if took is not None:
        line += f" · {format_duration(took)}"
    lines = [line]
    if p is None:
        return [*lines, "no fit, evaluate or predict call yet"]
    if snap.fit is not None and snap.fit is not p:
        lines.append(_call_line(snap, snap.fit))
    return [*lines, _call_line(snap, p)]


def _call_line(snap: Snapshot, p: Progress) -> str:
    """``fit running · 11 of 40 epochs done · epoch 11: 5/13 batches · learning rate 0.0125 (...)``."""
    label = snap.labels.get((snap.run["id"], p.phase_seq), p.phase)
    parts = [f"{_t(label)} {p.status}"]
    if p.phase == "fit":
        done = snap.epochs[snap.epochs["phase_seq"] == p.phase_seq] if len(snap.epochs) else snap.epochs
        count = int(done["epoch"].max()) + 1 if len(done) else p.initial_epoch
        parts.append(f"{count} of {_count(p.planned_epochs, 'epoch')} done" if p.planned_epochs
                     else f"{_count(count, 'epoch')} done")
        if p.status == "running" and p.batch is not None and p.batch_epoch == count:
            parts.append(f"epoch {count}: {p.batch + 1}" + (f"/{p.steps}" if p.steps else "") + " batches")
    elif p.batch is not None:
        parts.append(f"{p.batch + 1}" + (f"/{p.steps}" if p.steps else "") + " batches")
    if p.lr is not None:
        lr = f"learning rate {cell_text(float(p.lr))}"
        changes = snap.lr_changes[snap.lr_changes["phase_seq"] == p.phase_seq] if len(snap.lr_changes) else None
        if changes is not None and len(changes):
            last = changes.iloc[-1]
            if p.lr_epoch is not None and not pd.isna(last["epoch"]) and last["epoch"] > p.lr_epoch:
                lr += f"; {_t(last['source'])} set {cell_text(float(last['new_lr']))} for epoch {last['epoch']}"
            else:
                lr += f" (set by {_t(last['source'])} for epoch {last['epoch']})"
        parts.append(lr)
    return " · ".join(parts)


def _metric_line(snap: Snapshot) -> list[str]:
    key = _watched_metric(snap)
    if key is None:
        return []
    values = pd.to_numeric(snap.epochs[key], errors="coerce").astype(float)
    finite = values[values.notna()]
    if not len(finite):
        return [f"{_t(key)}: no value yet"]
    at = finite.idxmax() if maximised(key) else finite.idxmin()
    best_epoch, last_epoch = int(snap.epochs.loc[at, "epoch"]), int(snap.epochs["epoch"].iloc[-1])
    since = last_epoch - best_epoch
    ago = "in the last epoch" if since == 0 else f"{_count(since, 'epoch')} ago"
    return [f"{_t(key)}: best so far {cell_text(float(finite[at]))} at epoch {best_epoch} ({ago}), "
            f"last {cell_text(float(values.iloc[-1]))}"]


def _stopper_lines(snap: Snapshot) -> list[str]:
    lines = []
    rid = snap.run["id"]
    for row in snap.stops.itertuples(index=False):
        where = snap.labels.get((rid, row.phase_seq), "fit")
        what = f"stopped training in epoch {row.stopped_epoch}" if row.stopped else "did not stop"
        state = []
        if isinstance(row.monitor, str):
            best = "" if pd.isna(row.best) else f" best {cell_text(float(row.best))}"
            at = "" if pd.isna(row.best_epoch) else f" at epoch {row.best_epoch}"
            state.append(f"{_t(row.monitor)}{best}{at}")
        if not pd.isna(row.wait) or not pd.isna(row.patience):
            state.append(f"wait {cell_text(row.wait)} of patience {cell_text(row.patience)}")
        lines.append(f"{_t(row.stopper)} ({_t(where)}): {what}" + (f"; {', '.join(state)}" if state else ""))
    for row in snap.restores.itertuples(index=False):
        where = snap.labels.get((rid, row.phase_seq), "fit")
        lines.append(f"restored ({_t(where)}): the weights of epoch {row.restored_epoch}, by {_t(row.restored_by)}"
                     + (f" in {_t(row.hook)}" if isinstance(row.hook, str) else ""))
    p = snap.fit
    if p is not None and p.status == "running" and not (
            len(snap.stops) and (snap.stops["phase_seq"] == p.phase_seq).any()):
        lines.extend(_live_states(snap, p))
    return lines


def _live_states(snap: Snapshot, p: Progress) -> list[str]:
    """The running fit's stoppers, as they stood at the last epoch end."""
    states = snap.states[snap.states["phase_seq"] == p.phase_seq] if len(snap.states) else snap.states
    if not len(states):
        return []
    latest = states[states["epoch"] == states["epoch"].max()]
    lines = []
    for row in latest.itertuples(index=False):
        parts = [f"{_t(row.stopper)} after epoch {row.epoch}:"]
        if isinstance(row.monitor, str):
            best = "" if pd.isna(row.best) else f" best {cell_text(float(row.best))}"
            at = "" if pd.isna(row.best_epoch) else f" at epoch {row.best_epoch}"
            parts.append(f"{_t(row.monitor)}{best}{at},")
        parts.append(f"wait {cell_text(row.wait)} of patience {cell_text(row.patience)}")
        lines.append(" ".join(parts))
    return lines


def render_view(snap: Snapshot, *, width: int, height: int | None = None) -> str:
    """The view as text, no wider than ``width``; the epoch table trimmed to fit ``height`` lines."""
    lines = [*_header(snap), *_metric_line(snap), *_stopper_lines(snap)]
    if not len(snap.epochs):
        return "\n".join(_wrap(lines, width))
    frame = snap.epochs
    shown = ["epoch", *_keys(frame)]
    if frame["phase_seq"].nunique() > 1:
        shown.insert(0, "phase_seq")
    rows = len(frame)
    room = None if height is None else max(3, height - len(lines) - 6)
    if room is not None and rows > room:
        frame = frame.iloc[-room:]
    durations = [None if pd.isna(a) or pd.isna(b) else (b - a).total_seconds()
                 for a, b in zip(frame["started_at"], frame["ended_at"])]
    cells = [[snap.labels.get((snap.run["id"], v), v) if c == "phase_seq" else _cell(v) for c, v in zip(shown, r)]
             for r in frame[shown].itertuples(index=False)]
    from tracker.views.terminal import Duration

    table = render_table([*(("phase" if c == "phase_seq" else c) for c in shown), "duration"],
                         [[*row, None if d is None else Duration(d)] for row, d in zip(cells, durations)],
                         width=width, keys=2 if "phase_seq" in shown else 1)
    more = [f"({_count(rows - len(frame), 'earlier epoch')} not shown)"] if rows > len(frame) else []
    return "\n".join([*_wrap(lines, width), "", *more, table])


def _wrap(lines: list[str], width: int) -> list[str]:
    """Lines wrapped at spaces to ``width`` (continuations indented), never cut."""
    import textwrap

    out = []
    for line in lines:
        line = printable(line, limit=None)  # every text value is escaped already; this is the last guard
        out += textwrap.wrap(line, max(width, 10), subsequent_indent="  ", break_on_hyphens=False) or [""]
    return out


def _cell(value: Any) -> Any:
    return None if value is pd.NA else value


def epoch_line(frame: pd.DataFrame, index: int) -> str:
    """One epoch as a line of the log (``epoch 3: loss 0.5 · val_loss 0.6 · 0.84s``)."""
    row = frame.iloc[index]
    parts = [f"{_t(k)} {cell_text(_cell(row[k]))}" for k in _keys(frame) if not pd.isna(row[k])]
    if not pd.isna(row["started_at"]) and not pd.isna(row["ended_at"]):
        parts.append(format_duration((row["ended_at"] - row["started_at"]).total_seconds()))
    return f"epoch {row['epoch']}: " + " · ".join(parts)


def watch_run(store: Store, ref: str, *, interval: float = 1.0, console: Console | None = None) -> str:
    """Follow a run until it is no longer running; return its final status.

    Args:
        store: The ``tracker.Store`` to read.
        ref: A run reference (id, unique id prefix, name or ``latest``).
        interval: Seconds between two readings. Default 1.0.
        console: The rich console to draw on. Default: one on stdout.

    Raises:
        UnknownRunError: ``ref`` names no run.
    """
    from rich.console import Console

    run_id = store.resolve(ref)
    console = console or Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        return _log(store, run_id, interval, console)
    from rich.live import Live
    from rich.text import Text

    with Live(console=console, auto_refresh=False, transient=False, vertical_overflow="crop") as live:
        while True:
            snap = snapshot(store, run_id)
            live.update(Text(render_view(snap, width=console.width, height=console.height)), refresh=True)
            if snap.status != "running":
                return snap.status
            time.sleep(interval)


def _log(store: Store, run_id: str, interval: float, console: Console) -> str:
    """Not a terminal: a line per new epoch, then the final view."""
    shown = 0
    snap = snapshot(store, run_id)
    console.print(printable(_header(snap)[0], limit=None), markup=False, highlight=False, soft_wrap=True)
    while True:
        for i in range(shown, len(snap.epochs)):
            console.print(epoch_line(snap.epochs, i), markup=False, highlight=False, soft_wrap=True)
        shown = len(snap.epochs)
        if snap.status != "running":
            console.print("\n" + render_view(snap, width=console.width, height=None), markup=False,
                          highlight=False, soft_wrap=True)
            return snap.status
        time.sleep(interval)
        snap = snapshot(store, run_id)
