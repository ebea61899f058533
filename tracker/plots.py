"""PNG plots of runs: metric curves, the learning rate, early stops and restores.

Read side: imports neither Keras nor TensorFlow. matplotlib (a dependency of
the package) is imported only when a plot is drawn, so ``import tracker``
stays fast.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tracker.errors import InvalidArgumentError
from tracker.store.series import META_COLUMNS as _META

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tracker.store import Store

__all__ = ["plot_runs"]

_LR_COLORS = ("0.2", "0.5", "0.7")  # one grey per run for the learning-rate steps
_BOX = {"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}


def plot_runs(
    store: Store,
    runs: Sequence[str],
    out: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw the epoch curves, learning rate, stops and restores of runs into a PNG.

    One line per run and key (labelled with the run name and the first 8
    characters of its id; ``val_*`` keys dashed, a train key and its
    ``val_`` twin share a colour), x = the epoch Keras passed, each fit phase
    of a run drawn as its own segment. The learning rate each epoch trained
    with (``lr_series``, ``point == "epoch"``) is a step line on a second y
    axis, on a log scale when it spans more than 10x. A dotted vertical line
    marks each epoch where a stopper stopped training; a star on the
    monitored curve marks the epoch whose weights were restored, annotated
    with its value. The value axis is logarithmic when its (positive) values
    span more than 100x.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``); a
            single string is taken as one run.
        out: Path of the PNG to write (always PNG, whatever the suffix).
        metrics: Epoch log keys to plot. Default ``None``: ``loss`` and
            ``val_loss`` when present, plus the first other logged key in
            alphabetical order (learning-rate keys excluded), e.g.
            ``mean_absolute_error``, and its ``val_`` twin when present.
        title: The figure title. Default ``None``: the runs' labels.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: ``runs`` is empty, or a run logged none of the requested
            metrics (the message lists the keys it has).
        UnknownRunError: a reference names no run (from ``store.resolve``).
        ImportError: matplotlib is not installed.

    Example:
        ```python
        store = tracker.Store("runs.db")
        plot_runs(store, ["baseline", "latest"], "runs.png", metrics=["loss", "val_loss"])
        ```
    """
    figure = _figure(store, runs, metrics=metrics, title=title)
    path = Path(out)
    figure.savefig(path, format="png", dpi=100)
    return path


def _figure(store: Store, runs: Sequence[str], *, metrics: Sequence[str] | None, title: str | None) -> Figure:
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("plot_runs needs matplotlib: pip install matplotlib.") from exc

    ids = list(dict.fromkeys(store.resolve(ref) for ref in ([runs] if isinstance(runs, str) else runs)))
    if not ids:
        raise InvalidArgumentError("runs is empty; give at least one run reference.")
    table = store.runs()
    names = dict(zip(table["run_id"], table["name"]))
    labels = {rid: f"{names.get(rid) or 'run'} ({rid[:8]})" for rid in ids}
    frames = {rid: store.epochs(rid) for rid in ids}
    keys = list(metrics) if metrics is not None else _default_metrics(frames.values())
    for rid, frame in frames.items():
        available = [c for c in frame.columns if c not in _META]
        if not any(key in available for key in keys):
            raise InvalidArgumentError(
                f"Run {labels[rid]} logged none of the metrics {keys}; "
                f"its epoch log keys are: {', '.join(available) or 'none'}."
            )

    fig = Figure(figsize=(11, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax_lr = ax.twinx()
    palette, n_colors = list(colormaps["tab10"].colors), 0  # type: ignore[attr-defined]
    values: list[float] = []
    lrs: list[float] = []
    notes: list[tuple[float, float, str, Any]] = []
    for i, rid in enumerate(ids):
        frame, label, colors = frames[rid], labels[rid], {}
        for key in (k for k in keys if k in frame.columns and k not in _META):
            base = key.removeprefix("val_")
            if base not in colors:
                colors[base], n_colors = palette[n_colors % len(palette)], n_colors + 1
            y = pd.to_numeric(frame[key], errors="coerce").astype(float)
            values += [v for v in y if math.isfinite(v)]
            for j, (_, rows) in enumerate(frame.assign(_y=y).groupby("phase_seq", sort=False)):
                ax.plot(rows["epoch"].astype(float), rows["_y"], color=colors[base], marker="o", markersize=3,
                        linestyle="--" if key.startswith("val_") else "-",
                        label=f"{label} {key}" if j == 0 else "_nolegend_")
        series = store.lr_series(rid)
        series = series[series["point"] == "epoch"]
        for j, ((_, opt), rows) in enumerate(series.groupby(["phase_seq", "optimizer"], sort=False)):
            lrs += [float(v) for v in rows["lr"]]
            name = "learning rate" if opt == "optimizer" else f"learning rate ({opt})"
            ax_lr.plot(rows["epoch"].astype(float), rows["lr"].astype(float), drawstyle="steps-post",
                       color=_LR_COLORS[i % len(_LR_COLORS)], linewidth=2, alpha=0.8, linestyle="-.",
                       marker="_", markersize=12,  # shows the last epoch's rate, which has no step after it
                       label=f"{label} {name}" if j == 0 or opt != "optimizer" else "_nolegend_")
        notes += _mark_decisions(ax, ax_lr, store, rid, label, colors)

    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")
    if lrs and min(lrs) > 0 and max(lrs) / min(lrs) > 10:
        ax_lr.set_yscale("log")
    elif lrs and max(lrs) > 0:
        ax_lr.set_ylim(0, max(lrs) * 1.15)  # from 0: a flat or halved rate reads as such
    for n, (x, y, text, color) in enumerate(notes):  # placed once the scales are final
        fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))
        ax_lr.annotate(text, xy=(x, y), xycoords=ax.transData, textcoords="offset points",
                       xytext=(-20 if fx > 0.5 else 20, (-1 if fy > 0.6 else 1) * (40 + 22 * n)),
                       ha="right" if fx > 0.5 else "left", fontsize="small",
                       arrowprops={"arrowstyle": "->", "color": "0.3"}, bbox={**_BOX, "edgecolor": color})
    ax.set_xlabel("epoch")
    ax.set_ylabel("value")
    ax_lr.set_ylabel("learning rate")
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    ax.grid(True, alpha=0.3)
    ax.set_title(title if title is not None else ", ".join(labels.values()))
    handles, texts = ax.get_legend_handles_labels()
    lr_handles, lr_texts = ax_lr.get_legend_handles_labels()
    fig.legend(handles + lr_handles, texts + lr_texts, loc="outside lower center", ncols=2, fontsize="small")
    return fig


def _mark_decisions(ax: Any, top: Any, store: Store, rid: str, label: str, colors: dict[str, Any]) -> list[Any]:
    """Draw a run's stops (dotted lines) and restored epochs (stars); return the restores' notes.

    Texts go on ``top`` (the learning-rate axes, drawn last) so that no line crosses them.
    """
    run_color = next(iter(colors.values()), "black")
    stops = store.early_stops(rid)
    for row in stops[stops["stopped"].astype(bool) & stops["stopped_epoch"].notna()].itertuples():
        x = float(row.stopped_epoch)
        ax.axvline(x, color=run_color, linestyle=":", linewidth=1.5,
                   label=f"{label} stopped in epoch {row.stopped_epoch} ({row.stopper})")
        top.annotate(f"stopped: epoch {row.stopped_epoch}", xy=(x, 0.99), xycoords=("data", "axes fraction"),
                     xytext=(-3, 0), textcoords="offset points", rotation=90, ha="right", va="top",
                     fontsize="small", color=run_color, bbox=_BOX)
    notes = []
    for row in store.restores(rid).itertuples():
        monitor, value, epoch = row.monitor, float(row.value_at_restored), row.restored_epoch
        text = f"restored epoch {epoch}: {monitor}={value:.3g}"
        color = colors.get((monitor or "").removeprefix("val_"), run_color)
        if math.isfinite(value):
            ax.plot([float(epoch)], [value], marker="*", markersize=16, color=color, markeredgecolor="black", zorder=5)
            notes.append((float(epoch), value, text, color))
        else:  # no value to sit on: a line and the text
            ax.axvline(float(epoch), color=color, linestyle="-.", linewidth=1)
            top.annotate(text, xy=(float(epoch), 0.5), xycoords=("data", "axes fraction"), ha="center", bbox=_BOX)
    return notes


def _default_metrics(frames: Iterable[pd.DataFrame]) -> list[str]:
    """``loss``/``val_loss`` plus the first other key (and its ``val_`` twin) any run logged."""
    present = list(dict.fromkeys(c for frame in frames for c in frame.columns if c not in _META))
    chosen = [k for k in ("loss", "val_loss") if k in present]
    others = [k for k in present if k not in ("loss", "lr") and not k.startswith(("val_", "learning_rate"))]
    if others:
        chosen += [k for k in (others[0], f"val_{others[0]}") if k in present]
    return chosen
