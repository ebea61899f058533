"""plot_runs: real fits into a real database, then real PNGs and the figures behind them."""

import json
import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

import matplotlib  # noqa: E402,F401  (a core dependency: never skipped)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from conftest import guide_data, guide_model  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from tracker import Store, TrackingCallback, UnknownRunError  # noqa: E402
from tracker.callbacks import EarlyStoppingAtMinLoss  # noqa: E402
from tracker.plots import _figure, plot_runs  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One database with three real runs: stopped-and-restored, plain with validation, two phases."""
    db = str(tmp_path_factory.mktemp("plots") / "runs.db")
    x, y = guide_data(n=64)

    stopper = EarlyStoppingAtMinLoss(patience=0)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0)
    stopped = TrackingCallback(db, run_name="stopped")
    guide_model().fit(x, y, batch_size=16, epochs=8, callbacks=[stopped, stopper, plateau], verbose=0)
    assert (stopper.stopped_epoch, stopper.best_epoch) == (4, 3), "the setup must stop at 4 and restore 3"

    plain = TrackingCallback(db, run_name="plain")
    guide_model().fit(x, y, batch_size=16, epochs=4, validation_split=0.25, callbacks=[plain], verbose=0)

    # Two fit calls in one run, each decaying the LR 0.1 -> 0.001 (spans 100x: log axis).
    two = TrackingCallback(db, run_name="two-phase")
    model = guide_model()
    for _ in range(2):
        decay = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.1**epoch)
        model.fit(x, y, batch_size=16, epochs=3, callbacks=[two, decay], verbose=0)
    return SimpleNamespace(db=db, stopped=stopped.run_id, plain=plain.run_id, two=two.run_id)


def label(run_id, name):
    return f"{name} ({run_id[:8]})"


def check_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width > 300 and height > 300


def test_plot_of_a_stopped_and_restored_run_is_a_png(runs, tmp_path):
    out = plot_runs(Store(runs.db), ["stopped"], str(tmp_path / "stopped.png"))
    assert out == tmp_path / "stopped.png"
    check_png(out)


def test_the_figure_shows_curves_lr_stop_and_restore(runs):
    store = Store(runs.db)
    fig = _figure(store, ["stopped"], metrics=None, title=None)
    ax, ax_lr = fig.axes
    name = label(runs.stopped, "stopped")
    lines = {line.get_label(): line for line in ax.get_lines()}
    epochs = store.epochs(runs.stopped)

    # Default metrics: loss (no val_loss in this run) and the one other key.
    assert list(lines[f"{name} loss"].get_ydata()) == list(epochs["loss"])
    assert f"{name} mean_absolute_error" in lines
    values = list(epochs["loss"]) + list(epochs["mean_absolute_error"])
    assert ax.get_yscale() == ("log" if max(values) / min(values) > 100 else "linear")

    # The stop: a vertical line at epoch 4, named with the stopper.
    stop = lines[f"{name} stopped in epoch 4 (EarlyStoppingAtMinLoss)"]
    assert list(stop.get_xdata()) == [4, 4]

    # The restore: a star on the loss curve at epoch 3, annotated with its value.
    restore = store.restores(runs.stopped).iloc[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert [(s.get_xdata()[0], s.get_ydata()[0]) for s in stars] == [(3.0, restore["value_at_restored"])]
    texts = [t.get_text() for t in ax_lr.texts]
    assert f"restored epoch 3: loss={restore['value_at_restored']:.3g}" in texts
    assert "stopped: epoch 4" in texts

    # The learning rate: a step line on the second axis; flat here, so linear from 0.
    (lr_line,) = ax_lr.get_lines()
    assert lr_line.get_drawstyle() == "steps-post" and lr_line.get_label() == f"{name} learning rate"
    assert list(lr_line.get_xdata()) == [0, 1, 2, 3, 4]
    assert set(lr_line.get_ydata()) == {float(np.float32(0.1))}
    assert ax_lr.get_yscale() == "linear" and ax_lr.get_ylim()[0] == 0

    assert (ax.get_xlabel(), ax.get_ylabel(), ax_lr.get_ylabel()) == ("epoch", "value", "learning rate")
    assert ax.get_title() == name
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{name} loss" in legend and f"{name} learning rate" in legend


def test_two_runs_in_one_plot(runs, tmp_path):
    store = Store(runs.db)
    out = plot_runs(store, ["stopped", runs.plain[:10]], tmp_path / "both.png", title="two runs")
    check_png(out)

    fig = _figure(store, ["stopped", runs.plain], metrics=None, title="two runs")
    ax, ax_lr = fig.axes
    plain = label(runs.plain, "plain")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert lines[f"{plain} loss"].get_linestyle() == "-"
    assert lines[f"{plain} val_loss"].get_linestyle() == "--"
    assert lines[f"{plain} val_loss"].get_color() == lines[f"{plain} loss"].get_color()
    assert f"{plain} val_mean_absolute_error" in lines
    assert lines[f"{plain} loss"].get_color() != lines[f"{label(runs.stopped, 'stopped')} loss"].get_color()
    assert len(ax_lr.get_lines()) == 2 and ax.get_title() == "two runs"


def test_explicit_metrics_and_several_fit_phases(runs, tmp_path):
    store = Store(runs.db)
    fig = _figure(store, ["two-phase"], metrics=["loss"], title=None)
    ax, ax_lr = fig.axes
    loss = [line for line in ax.get_lines() if line.get_color() == ax.get_lines()[0].get_color()]
    assert [list(line.get_xdata()) for line in loss] == [[0, 1, 2], [0, 1, 2]], "one segment per fit"
    assert [line.get_label() for line in loss] == [f"{label(runs.two, 'two-phase')} loss", "_nolegend_"]
    assert ax_lr.get_yscale() == "log", "0.1 -> 0.001 spans more than 10x"
    lr = [y for line in ax_lr.get_lines() for y in line.get_ydata()]
    assert len(lr) == 6 and math.isclose(max(lr) / min(lr), 100, rel_tol=1e-5)
    check_png(plot_runs(store, ["two-phase"], tmp_path / "two.png", metrics=["loss"]))


def test_unknown_metric_raises_listing_the_available_keys(runs, tmp_path):
    store = Store(runs.db)
    out = tmp_path / "never.png"
    with pytest.raises(ValueError, match=r"none of the metrics \['accuracy'\].*: learning_rate, loss, mean_absolute_error\.$"):
        plot_runs(store, ["stopped"], out, metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"Run stopped \(.*val_loss"):  # plain has it, stopped has not
        plot_runs(store, ["plain", "stopped"], out, metrics=["val_loss"])
    assert not out.exists()


def test_unknown_run_raises_unknown_run_error(runs, tmp_path):
    with pytest.raises(UnknownRunError):
        plot_runs(Store(runs.db), ["stopped", "no-such-run"], tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()


def test_plotting_imports_neither_tensorflow_nor_keras(runs, tmp_path):
    out = tmp_path / "subprocess.png"
    code = textwrap.dedent(f"""
        import json, sys
        import tracker.plots
        lazy = "matplotlib" not in sys.modules
        tracker.plots.plot_runs(tracker.Store({runs.db!r}), ["stopped", "plain"], {str(out)!r})
        print(json.dumps({{"lazy": lazy, "loaded": [m for m in ("tensorflow", "keras") if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"lazy": True, "loaded": []}
    check_png(out)
