"""Plots of runs: one panel per metric, the learning rate below, early stops and restores marked.

Made for sweeps as much as for one run. Each run has one colour, shared by
its metric curves and its learning-rate line; the legend names the runs
only, and a note under it says what the line styles and marks mean.

Read side: imports neither Keras nor TensorFlow. matplotlib (a dependency of
the package) is imported only when a plot is drawn, so ``import tracker``
stays fast. Run names and keys are drawn literally: control characters
escaped as in tables, ``$`` never taken as mathtext, cut after
``LABEL_LIMIT`` characters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tracker.errors import InvalidArgumentError
from tracker.store.names import asked_key
from tracker.store.series import META_COLUMNS as _META
from tracker.views.terminal import printable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tracker.store import Store

__all__ = ["plot_runs", "FORMATS"]

#: The file formats ``plot_runs`` writes, by suffix.
FORMATS = ("png", "svg", "pdf")
_BOX = {"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}
#: Characters of a run name or key a plot shows (the rest is cut, with the full length).
LABEL_LIMIT = 80
_SPAN = 10.0  # a panel whose positive values span more than this factor gets a log axis


def plot_runs(
    store: Store,
    runs: Sequence[str],
    out: str | os.PathLike[str],
    *,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw the epoch curves, learning rate, stops and restores of runs into a PNG, SVG or PDF file.

    One panel per metric: a key and its ``val_`` twin are drawn together,
    the training value solid and the validation value dashed, x = the epoch
    Keras passed (each fit of a run is its own segment). Each run has one
    colour. The learning rate each epoch trained with is a step line in its
    own panel at the bottom, on the same epoch axis, in the run's colour. A
    dotted vertical line in the run's colour marks the epoch where a stopper
    stopped training; a star on the monitored curve marks the epoch whose
    weights were restored (with its value, for a single run). A panel whose
    positive values span more than 10x has a log axis. The legend names the
    runs only.

    Args:
        store: The ``tracker.Store`` to read.
        runs: Run references (id, unique id prefix, name or ``latest``); a
            single string is taken as one run.
        out: The file to write. Its suffix chooses the format: ``.png``,
            ``.svg`` or ``.pdf``; any other suffix is refused.
        metrics: Epoch log keys to plot. Default ``None``: for one run,
            ``loss`` and ``val_loss`` when present plus the first other
            logged key in alphabetical order (learning-rate keys excluded)
            and its ``val_`` twin; for several runs, ``val_loss`` (or
            ``loss`` and ``val_loss`` when some run has no ``val_loss``).
        title: The figure title. Default ``None``: the run labels (or the
            number of runs, beyond three).

    Returns:
        The path of the written file.

    Raises:
        InvalidArgumentError: ``out`` has another suffix, ``runs`` is empty,
            a run logged none of the requested metrics (the message lists
            the keys it has), or the file cannot be written.
        UnknownRunError: a reference names no run (from ``store.resolve``).

    Example:
        ```python
        store = tracker.Store("runs.db")
        plot_runs(store, ["lr-0.01", "lr-0.1"], "sweep.svg")
        ```
    """
    path = Path(out)
    kind = path.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise InvalidArgumentError(
            f"Cannot write a plot to {path.name!r}: give the file a .png, .svg or .pdf suffix."
        )
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    figure = _figure(store, runs, metrics=metrics, title=title)
    try:
        figure.savefig(path, format=kind, dpi=100)
    except OSError as exc:  # a folder that is not writable, a full disk, a path that is a folder
        raise InvalidArgumentError(f"Cannot write {path}: {exc.strerror}.") from None
    return path


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors)[:n]  # type: ignore[attr-defined]
    if n <= 20:
        return list(colormaps["tab20"].colors)[:n]  # type: ignore[attr-defined]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _panels(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Group keys by metric: ``loss`` and ``val_loss`` share the ``loss`` panel, in first-seen order."""
    panels: dict[str, list[str]] = {}
    for key in keys:
        panels.setdefault(key.removeprefix("val_"), []).append(key)
    return list(panels.items())


def _figure(store: Store, runs: Sequence[str], *, metrics: Sequence[str] | None, title: str | None) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from tracker.reports import run_labels

    ids = list(dict.fromkeys(store.resolve(ref) for ref in ([runs] if isinstance(runs, str) else runs)))
    if not ids:
        raise InvalidArgumentError("runs is empty; give at least one run reference.")
    labels = run_labels(store, ids)
    shown = {rid: _text(label) for rid, label in labels.items()}
    frames = {rid: store.epochs(rid) for rid in ids}
    keys = [asked_key(k) for k in metrics] if metrics is not None else _default_metrics(frames.values(),
                                                                                        several=len(ids) > 1)
    for rid, frame in frames.items():
        available = [c for c in frame.columns if c not in _META]
        if not any(key in available for key in keys):
            raise InvalidArgumentError(
                f"Run {labels[rid]} logged none of the metrics {keys}; "
                f"its epoch log keys are: {', '.join(available) or 'none'}."
            )
    lr_series = {rid: _epoch_lr(store, rid) for rid in ids}
    panels = _panels(keys)
    with_lr = any(len(s) for s in lr_series.values())
    rows = len(panels) + (1 if with_lr else 0)
    fig = Figure(figsize=(10, 1.2 + 2.9 * len(panels) + (1.6 if with_lr else 0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes: list[Axes] = list(fig.subplots(rows, 1, sharex=True, squeeze=False,
                                         gridspec_kw={"height_ratios": [3] * len(panels) + ([1.6] if with_lr else [])})[:, 0])
    metric_axes = {base: ax for (base, _), ax in zip(panels, axes)}
    ax_lr = axes[-1] if with_lr else None
    colors = dict(zip(ids, _colors(len(ids))))
    few = max((len(f) for f in frames.values()), default=0) <= 40
    styles: set[str] = set()
    notes: list[tuple[Axes, float, float, str, Any]] = []
    values: dict[str, list[float]] = {base: [] for base, _ in panels}
    for rid in ids:
        frame, color = frames[rid], colors[rid]
        for base, panel_keys in panels:
            for key in (k for k in panel_keys if k in frame.columns):
                val = key.startswith("val_")
                styles.add("validation" if val else "train")
                y = pd.to_numeric(frame[key], errors="coerce").astype(float)
                values[base] += [float(v) for v in y]
                for _, part in frame.assign(_y=y).groupby("phase_seq", sort=False):
                    metric_axes[base].plot(part["epoch"].astype(float), part["_y"], color=color,
                                           linestyle="--" if val else "-", linewidth=1.6,
                                           marker="o" if few else None, markersize=2.5)
        if ax_lr is not None:
            for (_, optimizer), part in lr_series[rid].groupby(["phase_seq", "optimizer"], sort=False):
                ax_lr.plot(part["epoch"].astype(float), part["lr"].astype(float), drawstyle="steps-post",
                           color=color, linewidth=1.8, linestyle="-" if optimizer == "optimizer" else ":",
                           marker="_", markersize=10)  # the marker shows the last epoch's rate
        notes += _mark_decisions(store, rid, axes, metric_axes, frame, color, styles, single=len(ids) == 1)

    for base, ax in metric_axes.items():
        _scale(ax, values[base])
        keys_here = dict(panels)[base]
        ax.set_ylabel(_text(keys_here[0] if len(keys_here) == 1 else base))  # "loss" holds loss and val_loss
        ax.grid(True, alpha=0.3)
    if ax_lr is not None:
        lrs = [float(v) for series in lr_series.values() for v in series["lr"]]
        if not _scale(ax_lr, lrs):
            top = max((v for v in lrs if math.isfinite(v)), default=0.0)
            if top > 0:
                ax_lr.set_ylim(0, top * 1.15)  # from 0: a flat or halved rate reads as such
        ax_lr.set_ylabel("learning rate")
        ax_lr.grid(True, alpha=0.3)
    for ax, x, y, text, color in notes:  # placed once the scales are final
        fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((x, y)))
        ax.annotate(text, xy=(x, y), textcoords="offset points", xytext=(-20 if fx > 0.5 else 20, -30 if fy > 0.6 else 30),
                    ha="right" if fx > 0.5 else "left", fontsize="small", bbox={**_BOX, "edgecolor": color},
                    arrowprops={"arrowstyle": "->", "color": "0.3"})
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    names = [shown[rid] for rid in ids]
    fig.suptitle(title if title is not None else (", ".join(names) if len(names) <= 3 else f"{len(names)} runs"))
    handles = [Line2D([], [], color=colors[rid], linewidth=2.5, label=shown[rid]) for rid in ids]
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False, title="run",
               ncols=1 + len(handles) // 25)
    fig.supxlabel(_key_note(styles), fontsize="small", color="0.35")
    return fig


def _text(value: Any) -> str:
    """Text from the record (a run name, a key) as a plot shows it: literal, escaped, at most ``LABEL_LIMIT``.

    Control characters are escaped as in tables (``printable``), and ``$``
    is written ``\\$``, so matplotlib never parses a name as mathtext (a name
    such as ``$\\bad{$`` would stop the plot; ``cost $5 to $10`` would lose
    its dollars).
    """
    return printable(str(value), limit=LABEL_LIMIT).replace("$", "\\$")


def _key_note(styles: set[str]) -> str:
    parts = []
    if "train" in styles:
        parts.append("solid: training")
    if "validation" in styles:
        parts.append("dashed: validation")
    if "stopped" in styles:
        parts.append("dotted vertical line: a stopper stopped training")
    if "restored" in styles:
        parts.append("star: the epoch whose weights were restored")
    return " · ".join(parts)


def _scale(ax: Axes, values: Sequence[float]) -> bool:
    """A log axis when the panel's values are positive and span more than 10x; True if it became one."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > _SPAN:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter("{x:g}")
        ax.yaxis.set_minor_formatter(_minor_labels(min(finite), max(finite)))
        return True
    return False


def _minor_labels(low: float, high: float) -> Any:
    """Label a log axis' minor ticks 2 and 5 (x10^n) when it spans under two decades, else none."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if high / low >= 100:
        return NullFormatter()

    def label(value: float, _position: Any) -> str:
        mantissa = value / 10 ** math.floor(math.log10(value)) if value > 0 else 0
        return f"{value:g}" if round(mantissa, 6) in (2.0, 5.0) else ""

    return FuncFormatter(label)


def _epoch_lr(store: Store, rid: str) -> pd.DataFrame:
    series = store.lr_series(rid)
    return series[series["point"] == "epoch"]


def _mark_decisions(store: Store, rid: str, axes: Sequence[Axes], metric_axes: dict[str, Axes], frame: pd.DataFrame,
                    color: Any, styles: set[str], *, single: bool) -> list[Any]:
    """Draw a run's stops (dotted lines on every panel) and restores (stars); return notes to place."""
    stops = store.early_stops(rid)
    for row in stops[stops["stopped"].astype(bool) & stops["stopped_epoch"].notna()].itertuples():
        styles.add("stopped")
        for ax in axes:
            ax.axvline(float(row.stopped_epoch), color=color, linestyle=":", linewidth=1.4, alpha=0.9)
    notes = []
    for row in store.restores(rid).itertuples():
        monitor, epoch = row.monitor, row.restored_epoch
        panel = metric_axes.get(str(monitor).removeprefix("val_")) if isinstance(monitor, str) else None
        if panel is None or pd.isna(epoch) or monitor not in frame.columns:
            continue  # the monitored key is not plotted
        value = float(row.value_at_restored)
        if not math.isfinite(value):
            continue
        styles.add("restored")
        panel.plot([float(epoch)], [value], marker="*", markersize=15, color=color, markeredgecolor="black",
                   linestyle="None", zorder=5)
        if single:
            notes.append((panel, float(epoch), value, f"restored epoch {epoch}: {_text(monitor)}={value:.3g}", color))
    return notes


def _default_metrics(frames: Iterable[pd.DataFrame], *, several: bool) -> list[str]:
    """One run: ``loss``/``val_loss`` plus the first other key and its twin; several: ``val_loss``.

    For several runs of which some have no ``val_loss``: ``loss`` and ``val_loss`` in one panel.
    """
    frames = list(frames)
    present = list(dict.fromkeys(c for frame in frames for c in frame.columns if c not in _META))
    if several:  # val_loss when every run has it, else loss with val_loss where there is one
        if all("val_loss" in frame.columns for frame in frames):
            return ["val_loss"]
        return [k for k in ("loss", "val_loss") if k in present]
    chosen = [k for k in ("loss", "val_loss") if k in present]
    others = [k for k in present if k not in ("loss", "lr") and not k.startswith(("val_", "learning_rate"))]
    if others:
        chosen += [k for k in (others[0], f"val_{others[0]}") if k in present]
    return chosen
