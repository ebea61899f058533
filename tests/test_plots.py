"""plot_runs: real fits into a real database, then real files and the figures behind them.

One run (stopped and restored), a run with two fits, and a 4-run
learning-rate sweep, which is what the plots have to stay readable for.
"""

import json
import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import keras
import matplotlib  # noqa: F401  (a core dependency: never skipped)
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model
from matplotlib.colors import to_rgba
from matplotlib.image import imread

from tracker import InvalidArgumentError, Store, TrackingCallback, UnknownRunError
from tracker.callbacks import EarlyStoppingAtMinLoss
from tracker.cli import main
from tracker.views.plots import _figure, plot_runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SWEEP = ("lr-0.001", "lr-0.01", "lr-0.1", "lr-1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One database: stopped-and-restored, two fits in one run, and a 4-run LR sweep with validation."""
    db = str(tmp_path_factory.mktemp("plots") / "runs.db")
    x, y = guide_data(n=64)

    stopper = EarlyStoppingAtMinLoss(patience=0)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0)
    stopped = TrackingCallback(db, run_name="stopped")
    guide_model().fit(x, y, batch_size=16, epochs=8, callbacks=[stopped, stopper, plateau], verbose=0)
    assert (stopper.stopped_epoch, stopper.best_epoch) == (4, 3), "the setup must stop at 4 and restore 3"

    # Two fit calls in one run, each decaying the LR 0.1 -> 0.001 (spans 100x: log axis).
    two = TrackingCallback(db, run_name="two-phase")
    model = guide_model()
    for _ in range(2):
        decay = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.1**epoch)
        model.fit(x, y, batch_size=16, epochs=3, callbacks=[two, decay], verbose=0)

    for name in SWEEP:
        cb = TrackingCallback(db, run_name=name, params={"lr": float(name[3:])})
        guide_model(learning_rate=float(name[3:])).fit(x, y, batch_size=16, epochs=5, validation_split=0.25,
                                                        callbacks=[cb], verbose=0)
    return SimpleNamespace(db=db, stopped=stopped.run_id, two=two.run_id)


def check_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width > 300 and height > 300


def data_lines(ax):
    """The curves of a panel (not the stop lines or the restore stars)."""
    return [line for line in ax.get_lines() if line.get_linestyle() in ("-", "--") and len(line.get_xdata()) > 0
            and not (len(set(line.get_xdata())) == 1 and list(line.get_ydata()) == [0, 1])]


def expected_scale(values):
    finite = [v for v in values if math.isfinite(v)]
    return "log" if min(finite) > 0 and max(finite) / min(finite) > 10 else "linear"


def test_one_run_panels_lr_stop_and_restore(runs, tmp_path):
    store = Store(runs.db)
    check_png(plot_runs(store, ["stopped"], tmp_path / "stopped.png"))
    fig = _figure(store, ["stopped"], metrics=None, title=None)
    loss_ax, mae_ax, lr_ax = fig.axes[:3]
    epochs = store.epochs(runs.stopped)

    # One panel per metric (this run has no validation), then the learning rate.
    assert [ax.get_ylabel() for ax in (loss_ax, mae_ax, lr_ax)] == ["loss", "mean_absolute_error", "learning rate"]
    (loss,) = data_lines(loss_ax)
    assert list(loss.get_ydata()) == list(epochs["loss"]) and loss.get_linestyle() == "-"
    for ax, key in ((loss_ax, "loss"), (mae_ax, "mean_absolute_error")):
        assert ax.get_yscale() == expected_scale(list(epochs[key]))

    # The stop: a dotted line at epoch 4 on every panel, in the run's colour.
    for ax in (loss_ax, mae_ax, lr_ax):
        stops = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert [list(s.get_xdata()) for s in stops] == [[4.0, 4.0]]
        assert to_rgba(stops[0].get_color()) == to_rgba(loss.get_color())

    # The restore: a star on the loss curve at epoch 3, with its value written beside it.
    restore = store.restores(runs.stopped).iloc[0]
    stars = [line for line in loss_ax.get_lines() if line.get_marker() == "*"]
    assert [(s.get_xdata()[0], s.get_ydata()[0]) for s in stars] == [(3.0, restore["value_at_restored"])]
    assert f"restored epoch 3: loss={restore['value_at_restored']:.3g}" in [t.get_text() for t in loss_ax.texts]

    # The learning rate: its own panel on the shared epoch axis, a step line in the run's colour.
    (lr,) = [line for line in lr_ax.get_lines() if line.get_linestyle() == "-"]
    assert lr.get_drawstyle() == "steps-post" and to_rgba(lr.get_color()) == to_rgba(loss.get_color())
    assert list(lr.get_xdata()) == [0, 1, 2, 3, 4] and lr_ax.get_shared_x_axes().joined(loss_ax, lr_ax)
    assert lr_ax.get_yscale() == "linear" and lr_ax.get_ylim()[0] == 0  # halved, not 10x: from 0

    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["stopped"]  # the legend names runs only
    assert fig.get_suptitle() == "stopped"


def test_four_runs_one_colour_each_shared_with_their_lr(runs, tmp_path):
    store = Store(runs.db)
    out = plot_runs(store, list(SWEEP), tmp_path / "sweep.png")
    check_png(out)
    fig = _figure(store, list(SWEEP), metrics=None, title=None)
    metric_ax, lr_ax = fig.axes[:2]

    assert metric_ax.get_ylabel() == "val_loss", "val_loss is the default metric of several runs"
    curves = data_lines(metric_ax)
    assert len(curves) == 4 and all(c.get_linestyle() == "--" for c in curves)
    lrs = [line for line in lr_ax.get_lines() if line.get_drawstyle() == "steps-post"]
    colours = [to_rgba(c.get_color()) for c in curves]
    assert len(set(colours)) == 4 and [to_rgba(line.get_color()) for line in lrs] == colours
    for name, curve, lr in zip(SWEEP, curves, lrs):
        assert list(curve.get_ydata()) == list(store.epochs(name)["val_loss"])
        assert set(lr.get_ydata()) == {float(np.float32(float(name[3:])))}

    values = [v for name in SWEEP for v in store.epochs(name)["val_loss"]]
    assert metric_ax.get_yscale() == expected_scale(values)
    assert lr_ax.get_yscale() == "log", "0.001 to 1 spans 1000x"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(SWEEP)
    assert fig.get_suptitle() == "4 runs"


def test_train_and_validation_share_a_panel(runs):
    fig = _figure(Store(runs.db), ["lr-0.01"], metrics=None, title=None)
    loss_ax, mae_ax, _ = fig.axes[:3]
    for ax, key in ((loss_ax, "loss"), (mae_ax, "mean_absolute_error")):
        train, val = data_lines(ax)
        assert (ax.get_ylabel(), train.get_linestyle(), val.get_linestyle()) == (key, "-", "--")
        assert train.get_color() == val.get_color()


def test_several_fit_phases_are_segments(runs, tmp_path):
    store = Store(runs.db)
    fig = _figure(store, ["two-phase"], metrics=["loss"], title=None)
    loss_ax, lr_ax = fig.axes[:2]
    assert [list(line.get_xdata()) for line in data_lines(loss_ax)] == [[0, 1, 2], [0, 1, 2]], "one segment per fit"
    assert lr_ax.get_yscale() == "log", "0.1 -> 0.001 spans more than 10x"
    lr = [y for line in lr_ax.get_lines() for y in line.get_ydata()]
    assert len(lr) == 6 and math.isclose(max(lr) / min(lr), 100, rel_tol=1e-5)


@pytest.mark.parametrize("suffix, head", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", PNG_SIGNATURE)])
def test_the_suffix_chooses_the_format(runs, tmp_path, suffix, head):
    out = tmp_path / f"plot{suffix}"
    result = CliRunner().invoke(main, ["--db", runs.db, "plot", *SWEEP, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[: len(head)] == head


@pytest.mark.parametrize("name", ["plot.jpg", "plot.txt", "plot"])
def test_other_suffixes_are_refused_and_nothing_is_written(runs, tmp_path, name):
    out = tmp_path / name
    with pytest.raises(InvalidArgumentError, match=r"\.png, \.svg or \.pdf"):
        plot_runs(Store(runs.db), ["stopped"], out)
    result = CliRunner().invoke(main, ["--db", runs.db, "plot", "stopped", "--out", str(out)])
    assert result.exit_code == 1 and ".png, .svg or .pdf" in result.output
    assert not out.exists()


def test_unknown_metric_raises_listing_the_available_keys(runs, tmp_path):
    store = Store(runs.db)
    out = tmp_path / "never.png"
    with pytest.raises(ValueError, match=r"none of the metrics \['accuracy'\].*: learning_rate, loss, mean_absolute_error\.$"):
        plot_runs(store, ["stopped"], out, metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"Run stopped logged none .*val_loss"):  # the sweep has it, stopped has not
        plot_runs(store, ["lr-0.1", "stopped"], out, metrics=["val_loss"])
    assert not out.exists()


def test_unknown_run_raises_unknown_run_error(runs, tmp_path):
    with pytest.raises(UnknownRunError):
        plot_runs(Store(runs.db), ["stopped", "no-such-run"], tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()


def test_plotting_imports_neither_tensorflow_nor_keras(runs, tmp_path):
    out = tmp_path / "subprocess.png"
    code = textwrap.dedent(f"""
        import json, sys
        import tracker.views.plots
        lazy = "matplotlib" not in sys.modules
        tracker.views.plots.plot_runs(tracker.Store({runs.db!r}), ["stopped", "lr-0.1"], {str(out)!r})
        print(json.dumps({{"lazy": lazy, "loaded": [m for m in ("tensorflow", "keras") if m in sys.modules]}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"lazy": True, "loaded": []}
    check_png(out)


HOSTILE_NAMES = ["$\\bad{$x", "cost $5 to $10", "t\x1b]0;x\x07\n\x00", "n" * 20_000]


def test_run_names_and_keys_are_drawn_literally_never_as_mathtext(tmp_path):
    db = str(tmp_path / "names.db")
    x, y = guide_data(n=16)

    class Dollar(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["$\\frac{a$"] = 1.0 + epoch

    for name in HOSTILE_NAMES:
        cb = TrackingCallback(db, run_name=name)
        guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[Dollar(), cb], verbose=0)
    store = Store(db)
    for rid, name in zip(store.runs()["run_id"], HOSTILE_NAMES):
        out = tmp_path / f"{rid}.png"
        done = CliRunner().invoke(main, ["--db", db, "plot", rid, "--metric", "loss", "--metric", "$\\frac{a$",
                                         "--out", str(out)])
        assert done.exit_code == 0, done.output[-2000:]
        assert out.read_bytes().startswith(PNG_SIGNATURE)
    figure = _figure(store, list(store.runs()["run_id"]), metrics=["$\\frac{a$"], title=None)
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[:2] == ["\\$\\bad{\\$x", "cost \\$5 to \\$10"]  # \$ is matplotlib's literal dollar
    assert legend[2] == "t\\x1b]0;x\\x07\\n\\x00" and legend[3] == "n" * 80 + "… (20,000 characters)"
