"""KerasTuner searches become runs of an experiment (issue 19): real searches, ground truth from the tuner.

Every search is tiny (a Dense net on 64 rows, 2-3 trials, 1-3 epochs). What
the runs must hold comes from KerasTuner's own objects: ``oracle.trials``,
``trial.hyperparameters.values``, ``trial.score``, ``get_best_trials``, and
the logs each fit's callbacks saw (a spy deep-copied with the search's
callbacks, so every execution has its own).
"""

import copy

import keras
import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import bits, sql

import tracker
from tracker.cli import main


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


class Spy(keras.callbacks.Callback):
    """Keeps the logs of every epoch end, per execution (each deep copy keeps its own, in ``seen``)."""

    seen: list = []

    def __init__(self):
        super().__init__()
        self.epochs = {}
        Spy.seen.append(self)

    def __deepcopy__(self, memo):
        return Spy()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = dict(logs)


def runs_of(db, experiment):
    store = tracker.Store(db)
    return store, store.runs(experiment=experiment)


def test_random_search_under_autolog_records_every_execution_with_the_trials_values_and_the_oracles_scores(db, tmp_path):
    Spy.seen = []
    tracker.autolog(db)
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=3, executions_per_trial=2, seed=3,
                            directory=str(tmp_path / "kt"), project_name="rs", overwrite=True)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[Spy()])

    store, runs = runs_of(db, "rs")
    trials = tuner.oracle.trials
    assert len(runs) == 2 * len(trials) == 6 and set(runs["status"]) == {"finished"}
    experiment = store.experiments().set_index("experiment").loc["rs"]
    assert (experiment["tool"], experiment["objective"], experiment["direction"]) == ("keras_tuner", "val_loss", "min")
    spies = [s for s in Spy.seen if s.epochs]  # the deep copies, one per execution, in order
    assert len(spies) == 6
    for i, run_id in enumerate(runs["run_id"]):
        summary = store.run(run_id)
        trial = trials[summary["run"]["trial"]]
        execution = summary["run"]["execution"]
        assert summary["run"]["name"] == f"trial-{trial.trial_id}-e{execution}"
        assert summary["tags"] == {"trial": trial.trial_id, "execution": str(execution)}
        values = trial.hyperparameters.values
        assert summary["params"] == values and [type(v) for v in summary["params"].values()] == [
            type(values[k]) for k in summary["params"]]
        assert bits(summary["params"]["lr"]) == bits(values["lr"])
        assert summary["run"]["trial_state"] == trial.status == "COMPLETED"
        assert bits(summary["run"]["trial_score"]) == bits(trial.score)
        epochs = store.epochs(run_id)  # the logs this execution's callbacks saw, bit for bit
        seen = spies[i].epochs
        assert list(epochs["epoch"]) == sorted(seen)
        for key in ("loss", "val_loss"):
            assert [bits(v) for v in epochs[key]] == [bits(seen[e][key]) for e in sorted(seen)]
    # The oracle's score is the mean over executions of each one's best val_loss: the runs hold those bests.
    for trial in trials.values():
        mine = runs[[store.run(r)["run"]["trial"] == trial.trial_id for r in runs["run_id"]]]
        assert np.mean([store.metrics(r).set_index("key").loc["val_loss", "best"] for r in mine["run_id"]]) == \
            pytest.approx(trial.score, rel=1e-12)
    sweep = store.sweep("rs")
    ranked = [t.trial_id for t in sorted(trials.values(), key=lambda t: t.score)]
    assert [t.trial for t in sweep.trials] == ranked and [t.rank for t in sweep.trials] == [1, 2, 3]
    assert [bits(t.score) for t in sweep.trials] == [bits(trials[t].score) for t in ranked]
    assert sweep.param_names == ["lr", "units"] and all(len(t.runs) == 2 for t in sweep.trials)
    assert experiment["best_trial"] == tuner.oracle.get_best_trials(1)[0].trial_id == ranked[0]


def test_a_tracking_callback_given_to_search_is_deep_copied_into_a_run_per_execution(tmp_path):
    db = str(tmp_path / "runs.db")
    original = tracker.TrackingCallback(db, tags={"who": "me"}, experiment="mine", log_batches=False)
    twin = copy.deepcopy(original)
    assert twin.run_id != original.run_id and twin.capture_listener is not original.capture_listener
    assert twin._writer is not original._writer and twin.experiment == "mine" and twin.log_batches is False
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=2, executions_per_trial=1, seed=1,
                            directory=str(tmp_path / "kt"), project_name="deep", overwrite=True)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0, callbacks=[original])  # no FatalValueError

    store, runs = runs_of(db, "mine")
    assert len(runs) == 2 and original.run_id not in set(runs["run_id"]) and twin.run_id not in set(runs["run_id"])
    assert list(runs["name"]) == [f"trial-{t}" for t in tuner.oracle.start_order]
    assert [store.tags(r) for r in runs["run_id"]] == [{"who": "me", "trial": t} for t in tuner.oracle.start_order]
    assert store.experiments().set_index("experiment").loc["mine", "tool"] == "keras_tuner"
    assert sql(db, "SELECT count(*) FROM batches") == [(0,)]  # the copies kept the original's options


def test_hyperband_trials_name_the_trial_whose_weights_they_continue(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()
    tuner = kt.Hyperband(build, objective="val_loss", max_epochs=3, factor=3, hyperband_iterations=1, seed=2,
                         directory=str(tmp_path / "kt"), project_name="hb", overwrite=True)
    tuner.search(x, y, validation_split=0.25, verbose=0)

    store, runs = runs_of(db, "hb")
    continued = 0
    for run_id in runs["run_id"]:
        summary = store.run(run_id)
        values = tuner.oracle.trials[summary["run"]["trial"]].hyperparameters.values
        assert summary["params"] == values  # tuner/epochs, tuner/initial_epoch, tuner/bracket, tuner/round too
        assert summary["run"].get("continues") == values.get("tuner/trial_id")
        epochs = list(store.epochs(run_id)["epoch"])
        assert epochs == list(range(values["tuner/initial_epoch"], values["tuner/epochs"]))
        continued += "tuner/trial_id" in values
    assert continued >= 1 and len(runs) == len(tuner.oracle.trials)
    assert "tuner/epochs" not in store.sweep("hb").param_names


def test_bayesian_optimization_and_a_tuner_that_overrides_run_trial(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()
    bayes = kt.BayesianOptimization(build, objective="val_loss", max_trials=2, seed=4,
                                    directory=str(tmp_path / "kt"), project_name="bo", overwrite=True)
    bayes.search(x, y, epochs=1, validation_split=0.25, verbose=0)

    class Mine(kt.RandomSearch):
        def run_trial(self, trial, x, y):
            model = build(trial.hyperparameters)
            model.fit(x, y, epochs=2, verbose=0)
            return {"score": model.evaluate(x, y, verbose=0)}

    mine = Mine(objective=kt.Objective("score", "min"), max_trials=2, seed=5, directory=str(tmp_path / "kt"),
                project_name="own", overwrite=True)
    mine.search(x, y)

    store = tracker.Store(db)
    for tuner, name, objective in ((bayes, "bo", "val_loss"), (mine, "own", "score")):
        runs = store.runs(experiment=name)
        assert len(runs) == len(tuner.oracle.trials) == 2
        info = store.sweep(name)
        assert info.objective == objective and info.direction == "min"
        for t in info.trials:
            trial = tuner.oracle.trials[t.trial]
            assert t.params == trial.hyperparameters.values and bits(t.score) == bits(trial.score)
            assert t.state == "COMPLETED"
        assert info.trials[0].trial == tuner.oracle.get_best_trials(1)[0].trial_id
    # The overriding tuner's evaluate joined each trial's fit: one run, two calls.
    assert set(store.runs(experiment="own")["phases"]) == {2}


def test_a_trial_that_raises_in_build_or_fit_is_a_failed_run_and_the_search_goes_on(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False, experiment="named-by-me")  # not the project's name
    x, y = data()

    class Raises(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("fit gave up")

    class Flaky(kt.RandomSearch):
        def run_trial(self, trial, x, y):
            model = build(trial.hyperparameters)  # declares the search space
            if trial.trial_id == "0":
                raise ValueError("cannot build this one")
            callbacks = [Raises()] if trial.trial_id == "1" else []
            model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
            return model.evaluate(x, y, verbose=0)

    tuner = Flaky(objective="loss", max_trials=3, seed=6, directory=str(tmp_path / "kt"), project_name="flaky",
                  overwrite=True)
    tuner.search(x, y)

    store, runs = runs_of(db, "named-by-me")
    assert list(store.experiments()["experiment"]) == ["named-by-me"]
    statuses = {t.trial_id: t.status for t in tuner.oracle.trials.values()}
    assert statuses == {"0": "FAILED", "1": "FAILED", "2": "COMPLETED"}
    by_trial = {store.run(r)["run"]["trial"]: store.run(r) for r in runs["run_id"]}
    assert set(by_trial) == {"0", "1", "2"}
    assert by_trial["0"]["run"]["status"] == "failed" and by_trial["0"]["run"]["error"] == "ValueError: cannot build this one"
    assert by_trial["0"]["phases"].empty and by_trial["0"]["params"] == tuner.oracle.trials["0"].hyperparameters.values
    assert by_trial["1"]["run"]["status"] == "failed" and by_trial["1"]["run"]["error"] == "RuntimeError: fit gave up"
    assert len(store.epochs(by_trial["1"]["run"]["id"])) == 1  # the epoch the callback aborted is kept
    assert by_trial["2"]["run"]["status"] == "finished"
    assert [by_trial[t]["run"]["trial_state"] for t in "012"] == ["FAILED", "FAILED", "COMPLETED"]
    assert store.sweep("named-by-me").trials[0].trial == "2"


def _search(tmp_path, name):
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=3, seed=9, directory=str(tmp_path / "kt"),
                            project_name=name, overwrite=True)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    return tuner


def test_tracking_never_changes_what_the_tuner_computes(tmp_path):
    untracked = _search(tmp_path, "plain")
    tracker.autolog(str(tmp_path / "runs.db"))
    tracked = _search(tmp_path, "tracked")

    def outcome(tuner):
        return [(t.trial_id, t.status, t.hyperparameters.values, bits(t.score)) for t in tuner.oracle.trials.values()]

    assert outcome(tracked) == outcome(untracked)
    assert tracked.get_best_hyperparameters(1)[0].values == untracked.get_best_hyperparameters(1)[0].values
    x, _ = data()
    best = [t.get_best_models(1)[0].predict(x, verbose=0) for t in (untracked, tracked)]
    assert best[0].tobytes() == best[1].tobytes()
    assert len(tracker.Store(str(tmp_path / "runs.db")).runs(experiment="tracked")) == 3


def test_the_experiment_and_its_trials_on_the_command_line(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=2, seed=3, directory=str(tmp_path / "kt"),
                            project_name="cli-search", overwrite=True)
    tuner.search(x, y, epochs=1, validation_split=0.25, verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]

    result = CliRunner().invoke(main, ["--db", db, "experiments", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    (row,) = json.loads(result.output)
    assert (row["experiment"], row["runs"], row["finished"], row["best_trial"]) == ("cli-search", 2, 2, best.trial_id)
    assert row["metric"] == "score" and bits(row["best"]) == bits(best.score)
    table = CliRunner().invoke(main, ["--db", db, "experiments"])
    assert table.exit_code == 0 and "cli-search" in table.output and "keras_tuner" in table.output
    listed = CliRunner().invoke(main, ["--db", db, "runs", "--experiment", "cli-search", "--format", "json"])
    assert sorted(r["name"] for r in json.loads(listed.output)) == ["trial-0", "trial-1"]
    wrong = CliRunner().invoke(main, ["--db", db, "runs", "--experiment", "cli-serch"])
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert wrong.output.strip() == ("Error: No experiment is named 'cli-serch'; 'tracker experiments' lists them. "
                                    "Did you mean 'cli-search'?")


@pytest.mark.backend
def test_a_search_on_this_backend_records_each_trial(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db)
    x, y = data()
    tuner = kt.RandomSearch(build, objective="val_loss", max_trials=2, seed=3, directory=str(tmp_path / "kt"),
                            project_name="backend", overwrite=True)
    tuner.search(x, y, epochs=2, validation_split=0.25, verbose=0)
    store, runs = runs_of(db, "backend")
    assert len(runs) == 2 and set(runs["status"]) == {"finished"} and set(runs["epochs"]) == {2}
    for t in store.sweep("backend").trials:
        trial = tuner.oracle.trials[t.trial]
        assert t.params == trial.hyperparameters.values and bits(t.score) == bits(trial.score)
    assert store.run(runs["run_id"][0])["run"]["versions"]["backend"] == keras.backend.backend()
