"""``tracker sweep``, ``/api/sweep`` and their data (issue 19, point 5): trials ranked as the tool ranks them.

Real searches of tiny Keras fits into real databases (SQLite and PostgreSQL).
Ground truth comes from the tools (``oracle.get_best_trials``, ``trial.score``,
``study.trials``), from ``History`` objects, and from SciPy for the rank
correlation and the one-way ANOVA.
"""

import json
import math
import os
import subprocess
import sys

import keras
import keras_tuner as kt
import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from conftest import bits, guide_data, guide_model
from optuna_integration import KerasPruningCallback
from scipy import stats
from ui_support import get

import tracker
from tracker.cli import main
from tracker.store.importance import epsilon_squared, importance_info, spearman
from tracker.store.sweep_plots import axes_info, curves_info, progress_info
from tracker.store.sweeps import SweepInfo, SweepTrial
from tracker.ui.app import create_app
from tracker.ui.server import running_server

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    tracker.autolog(disable=True)


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8)).astype("float32"), rng.random((n, 1)).astype("float32")


def build(hp):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(hp.Int("units", 2, 8, step=2), activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")), loss="mse")
    return model


class PruneTrials(optuna.pruners.BasePruner):
    """Prunes the given trial numbers from step 1 on (deterministic, unlike a median)."""

    def __init__(self, numbers):
        self.numbers = set(numbers)

    def prune(self, study, trial):
        return trial.number in self.numbers and trial.last_step is not None and trial.last_step >= 1


def study_into(db, name="study-max", n_trials=5, pruned=(2, 3)):
    """A maximising study of 3-epoch fits under autolog; returns the study and each trial's History."""
    tracker.autolog(db, log_batches=False)
    x, y = data()
    histories = {}

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 0.5, log=True)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        keras.utils.set_random_seed(trial.number)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation=act), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
        history = keras.callbacks.History()
        histories[trial.number] = history
        model.fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                  callbacks=[history, KerasPruningCallback(trial, "val_loss")])
        return -history.history["val_loss"][-1]

    study = optuna.create_study(study_name=name, direction="maximize", pruner=PruneTrials(pruned),
                                sampler=optuna.samplers.RandomSampler(4))
    study.optimize(objective, n_trials=n_trials)
    tracker.autolog(disable=True)
    return study, histories


def test_sweep_lists_keras_tuner_trials_as_the_oracle_ranks_them(db, tmp_path):
    tracker.autolog(db, log_batches=False)
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=3, executions_per_trial=2, seed=3,
                            directory=str(tmp_path / "kt"), project_name="rs", overwrite=True)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    best = tuner.oracle.get_best_trials(3)

    result = CliRunner().invoke(main, ["--db", db, "sweep", "rs", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["trial"] for r in rows] == [t.trial_id for t in best] and [r["rank"] for r in rows] == [1, 2, 3]
    for row, trial in zip(rows, best):
        assert bits(row["score"]) == bits(trial.score) and row["state"] == "COMPLETED"
        assert row["param:units"] == trial.hyperparameters.values["units"]
        assert bits(row["param:lr"]) == bits(trial.hyperparameters.values["lr"])
        assert len(row["runs"]) == 2 and row["run_id"] in row["runs"] and row["epochs"] == 4
        assert row["metric"] == "val_loss" and row["best_epoch"] in (0, 1)
    csv = CliRunner().invoke(main, ["--db", db, "sweep", "rs", "--format", "csv"]).output.splitlines()
    assert csv[0].startswith("trial,") and [line.split(",")[0] for line in csv[1:]] == [t.trial_id for t in best]

    table = CliRunner().invoke(main, ["--db", db, "sweep", "rs"], env={"COLUMNS": "200"})
    lines = table.output.splitlines()
    assert lines[0] == "rs: 3 trials of KerasTuner, best first by the oracle's score of val_loss (min)."
    assert all(c in lines[1] for c in ("trial", "rank", "status", "param:lr", "param:units", "score", "best:val_loss"))
    assert "How much each param matters to the score, over the 3 trials with one" in table.output

    scores = [t.score for t in best]
    imp = {p.param: p for p in importance_info(tracker.Store(db).sweep("rs")).params}
    for name in ("lr", "units"):
        values = [t.hyperparameters.values[name] for t in best]
        expected = stats.spearmanr(values, scores).statistic
        assert imp[name].trials == 3 and imp[name].kind == "number"
        assert (imp[name].spearman is None) if math.isnan(expected) else math.isclose(imp[name].spearman, expected)
    shown = CliRunner().invoke(main, ["--db", db, "sweep", "rs", "--importance", "--format", "json"])
    assert sorted(r["param"] for r in json.loads(shown.output)) == ["lr", "units"]


def test_sweep_ranks_an_optuna_study_in_its_direction_with_pruned_trials_after_and_their_curves(db):
    study, histories = study_into(db)
    store = tracker.Store(db)
    info = store.sweep("study-max")
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert [t.number for t in pruned] == [2, 3]
    assert [t.trial for t in info.trials] == [str(t.number) for t in complete + pruned]
    assert [t.rank for t in info.trials] == [1, 2, 3, None, None]
    assert [bits(t.objective) for t in info.trials[:3]] == [bits(t.value) for t in complete]
    assert info.param_names == ["act", "lr"] and info.direction == "max"

    rows = json.loads(CliRunner().invoke(main, ["--db", db, "sweep", "study-max", "--format", "json"]).output)
    assert [r["trial"] for r in rows] == [t.trial for t in info.trials]
    assert [r["status"] for r in rows] == ["finished"] * 3 + ["pruned"] * 2
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3 + ["PRUNED"] * 2

    curves = curves_info(store.engine, info)
    assert curves.metric == "val_loss"
    for curve in curves.curves:
        seen = histories[int(curve.trial)].history["val_loss"]  # the pruned epoch too: History saw it
        assert [bits(v) for v in curve.values] == [bits(v) for v in seen] and curve.epochs == list(range(len(seen)))
    assert [len(c.epochs) for c in curves.curves if c.status == "pruned"] == [2, 2]

    best_so_far, running = [], -math.inf
    for trial in study.trials:  # a pruned trial's value is its last intermediate value: Optuna ranks it not
        running = max(running, trial.value) if trial.state.name == "COMPLETE" else running
        best_so_far.append(running)
    assert [p.best for p in progress_info(info)] == best_so_far
    lrs = [t.params["lr"] for t in study.trials]
    (act, lr, value) = axes_info(info)
    assert (act.kind, act.categories) == ("category", sorted({f'"{t.params["act"]}"' for t in study.trials}))
    assert (lr.kind, lr.log, lr.low, lr.high) == ("number", max(lrs) > 10 * min(lrs), min(lrs), max(lrs))
    assert value.name == "value" and value.trials == 3 and not value.log  # negative values: never a log axis


def test_the_api_answers_the_page_and_refuses_bad_asks_in_one_sentence(tmp_path):
    db = str(tmp_path / "runs.db")
    study, _ = study_into(db, n_trials=4, pruned=(1,))
    info = tracker.Store(db).sweep("study-max")
    with running_server(create_app(db)) as url:
        status, _, body = get(url + "/api/sweep?experiment=study-max")
        assert status == 200 and [t["trial"] for t in body["trials"]] == [t.trial for t in info.trials]
        assert [bits(t["objective"]) for t in body["trials"][:3]] == [bits(t.objective) for t in info.trials[:3]]
        assert body["importance"]["trials"] == 3 and {p["param"] for p in body["importance"]["params"]} == {"act", "lr"}
        assert [a["name"] for a in body["axes"]] == ["act", "lr", "value"] and len(body["progress"]) == 4
        status, _, curves = get(url + "/api/sweep/curves?experiment=study-max")
        assert status == 200 and [c["trial"] for c in curves["curves"]] == [t.trial for t in info.trials]
        status, _, body = get(url + "/api/sweep?experiment=study-max&fanova=1")
        assert status == 200 and body["importance"]["fanova"] is True
        assert all(p["fanova"] is not None for p in body["importance"]["params"])
        for path, code, text in (("/api/sweep?experiment=study-ma", 404, "Did you mean 'study-max'?"),
                                 ("/api/sweep/curves?experiment=nope", 404, "No experiment is named 'nope'"),
                                 ("/api/sweep", 400, "Give the experiment"),
                                 ("/api/sweep?experiment=study-max&metric=nope", 400, "No run logged 'nope'")):
            status, _, body = get(url + path)
            assert (status, body["status"]) == (code, code) and text in body["error"] and "\n" not in body["error"]


def test_runs_no_tool_ranked_are_ranked_by_the_metric_asked_and_unknown_names_are_one_sentence(tmp_path):
    db = str(tmp_path / "runs.db")
    x, y = guide_data(n=64)
    histories = {}
    for name, lr in (("slow", 0.001), ("mid", 0.02), ("fast", 0.1)):
        cb = tracker.TrackingCallback(db, run_name=name, params={"lr": lr}, experiment="by-hand", log_batches=False)
        histories[name] = guide_model(learning_rate=lr).fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                                                            callbacks=[cb]).history
    key = "val_mean_absolute_error"
    rows = json.loads(CliRunner().invoke(main, ["--db", db, "sweep", "by-hand", "--metric", key, "--format", "json"]).output)
    expected = sorted(histories, key=lambda n: min(histories[n][key]))
    assert [r["name"] for r in rows] == expected and [r["metric"] for r in rows] == [key] * 3
    assert [bits(r["best"]) for r in rows] == [bits(min(histories[n][key])) for n in expected]
    assert [r["trial"] for r in rows] == [r["run_id"] for r in rows]  # a run no tool ran is its own trial
    table = CliRunner().invoke(main, ["--db", db, "sweep", "by-hand", "--metric", key])
    assert table.output.startswith(f"by-hand: 3 runs, best first by the best epoch value of {key}.")

    runner = CliRunner()
    for args in (["sweep", "by-hnd"], ["report", "--experiment", "by-hnd", "--out", str(tmp_path / "x.html")]):
        result = runner.invoke(main, ["--db", db, *args])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output == ("Error: No experiment is named 'by-hnd'; 'tracker experiments' lists them. "
                                 "Did you mean 'by-hand'?\n")
    result = runner.invoke(main, ["--db", db, "sweep", "by-hand", "--metric", "nope"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "nope" in result.output

    # Without the tuning tools installed: the table, its importance and the page's data; fANOVA is one sentence.
    code = (
        "import sys, importlib.abc\n"
        "class Gone(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('optuna', 'optuna_integration', 'keras_tuner', 'sklearn', 'scipy'):\n"
        "            raise ImportError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Gone())\n"
        "from tracker.cli import main\n"
        "from tracker.store import Store\n"
        "from tracker.ui.experiment import sweep_answer\n"
        "print('ANSWER', len(sweep_answer(Store(sys.argv[1]), 'by-hand')) > 0)\n"
        "main(['--db', sys.argv[1], 'sweep', 'by-hand', *sys.argv[2:]])\n"
    )
    plain = subprocess.run([sys.executable, "-c", code, db], capture_output=True, text=True, env=_env())
    assert plain.returncode == 0 and "ANSWER True" in plain.stdout and "anova" in plain.stdout, plain.stderr[-2000:]
    asked = subprocess.run([sys.executable, "-c", code, db, "--fanova"], capture_output=True, text=True, env=_env())
    assert asked.returncode == 1 and "Traceback" not in asked.stderr
    assert asked.stderr == ("Error: fANOVA needs optuna and scikit-learn (optuna is not installed): "
                            "pip install 'keras-run-tracker[optuna]' scikit-learn.\n")


def _env():
    return {**os.environ, "COLUMNS": "200", "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_spearman_and_epsilon_squared_match_scipy():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 6, 40).astype(float)  # ties
    y = (x - 2.5) ** 2 + rng.normal(0, 0.5, 40)
    assert math.isclose(spearman(list(x), list(y)), stats.spearmanr(x, y).statistic)
    groups = rng.choice(["a", "b", "c"], 40)
    y = np.where(groups == "a", 1.0, 0.0) + rng.normal(0, 0.5, 40)
    f = stats.f_oneway(*(y[groups == g] for g in "abc")).statistic
    k, n = 3, 40
    assert math.isclose(epsilon_squared(list(groups), list(y)), (k - 1) * (f - 1) / ((k - 1) * f + n - k))
    assert spearman([1.0, 2.0], [3.0, 4.0]) is None and spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert epsilon_squared(["a", "b"], [1.0, 2.0]) is None and epsilon_squared(["a"] * 3, [1.0, 2.0, 3.0]) is None


def test_a_u_shaped_effect_is_missed_by_the_rank_correlation_and_seen_by_anova_and_fanova():
    """A real Optuna study (no fit): the value depends on x alone, as (x - 0.5)^2; y is noise."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(1))
    rng = np.random.default_rng(2)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.5) ** 2 + 0.01 * t.suggest_float("y", 0, 1)
                   + 0.001 * rng.random(), n_trials=60)
    trials = [SweepTrial(str(t.number), t.number, None, (), str(t.number), "finished", "COMPLETE", t.value, t.value,
                         None, t.params, None, None, 1, None, None, None) for t in study.trials]
    info = SweepInfo("u", "optuna", None, "min", None, "score", ["x", "y"], trials)
    got = {p.param: p for p in importance_info(info, fanova=True).params}
    assert abs(got["x"].spearman) < 0.4 and got["x"].anova > 0.8 and got["y"].anova < 0.2
    assert got["x"].fanova > 0.8 and got["y"].fanova < 0.2
    assert [p.param for p in importance_info(info).params] == ["x", "y"]


@pytest.mark.backend
def test_the_sweep_view_of_a_study_on_this_backend(tmp_path):
    db = str(tmp_path / "runs.db")
    study, histories = study_into(db, n_trials=3, pruned=(1,))
    info = tracker.Store(db).sweep("study-max")
    complete = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    assert [t.trial for t in info.trials] == [str(t.number) for t in complete] + ["1"]
    for curve in curves_info(tracker.Store(db).engine, info).curves:
        assert [bits(v) for v in curve.values] == [bits(v) for v in histories[int(curve.trial)].history["val_loss"]]
    rows = json.loads(CliRunner().invoke(main, ["--db", db, "sweep", "study-max", "--format", "json"]).output)
    assert [r["trial"] for r in rows] == [t.trial for t in info.trials] and rows[-1]["status"] == "pruned"
