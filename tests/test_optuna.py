"""Optuna studies become runs of an experiment; a pruned trial is ``pruned`` with the pruner's decision (issue 19).

Real studies of tiny Keras fits. Ground truth comes from Optuna
(``study.trials``: state, value, params, intermediate values) and from
``History`` objects the objective keeps.
"""

import json

import keras
import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from conftest import bits
from optuna_integration import KerasPruningCallback

import tracker
from tracker.cli import main

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    tracker.autolog(disable=True)


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8)).astype("float32"), rng.random((n, 1)).astype("float32")


def model_for(lr, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


class PruneFrom(optuna.pruners.BasePruner):
    """Prunes every trial after the first one, from ``step`` on (deterministic, unlike a median)."""

    def __init__(self, step):
        self.step = step

    def prune(self, study, trial):
        return trial.number > 0 and trial.last_step is not None and trial.last_step >= self.step


def test_a_study_under_autolog_records_each_trial_its_final_params_state_value_and_prunings(db):
    tracker.autolog(db, log_batches=False)
    x, y = data()
    histories = {}

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 0.5, log=True)
        model = model_for(lr, trial.number)
        history = keras.callbacks.History()
        histories[trial.number] = history
        model.fit(x, y, epochs=4, validation_split=0.25, verbose=0,
                  callbacks=[history, KerasPruningCallback(trial, "val_loss")])  # History first: it sees every epoch
        trial.suggest_categorical("after_fit", ["a", "b"])  # known only at the trial's end
        return history.history["val_loss"][-1]

    study = optuna.create_study(study_name="study-a", pruner=PruneFrom(1), sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=3)

    store = tracker.Store(db)
    runs = store.runs(experiment="study-a")
    assert list(runs["name"]) == [f"trial-{t.number}" for t in study.trials]
    experiment = store.experiments().set_index("experiment").loc["study-a"]
    assert (experiment["tool"], experiment["direction"], experiment["pruned"], experiment["finished"]) == \
        ("optuna", "min", 2, 1)
    for trial, run_id in zip(study.trials, runs["run_id"]):
        summary = store.run(run_id)
        assert summary["tags"] == {"trial": str(trial.number)} and summary["run"]["trial_number"] == trial.number
        assert summary["params"] == trial.params and bits(summary["params"]["lr"]) == bits(trial.params["lr"])
        assert summary["run"]["trial_state"] == trial.state.name and bits(summary["run"]["trial_score"]) == bits(trial.value)
        epochs = store.epochs(run_id)  # every epoch the trial trained, as History has them
        seen = histories[trial.number].history
        assert [bits(v) for v in epochs["val_loss"]] == [bits(v) for v in seen["val_loss"]]
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert summary["run"]["status"] == "pruned" and summary["run"]["error"] is None
            assert list(summary["phases"]["status"]) == ["pruned"]
            (stop,) = summary["early_stops"].to_dict("records")
            step = max(trial.intermediate_values)
            assert (stop["stopper"], stop["hook"], stop["monitor"], stop["step"], stop["stopped_epoch"]) == (
                "PruneFrom", "on_epoch_end", "val_loss", step, step)
            assert bits(stop["value"]) == bits(trial.intermediate_values[step]) == bits(seen["val_loss"][step])
            assert "after_fit" not in summary["params"]
        else:
            assert summary["run"]["status"] == "finished" and summary["early_stops"].empty
            assert "after_fit" in summary["params"]
    sweep = store.sweep("study-a")
    assert sweep.trials[0].trial == str(study.best_trial.number) and sweep.trials[0].rank == 1
    assert [t.rank for t in sweep.trials[1:]] == [None, None]  # pruned trials are not ranked
    assert experiment["best_trial"] == str(study.best_trial.number)


def test_pruned_is_a_status_of_its_own_in_filters_listings_and_watch(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()

    def objective(trial):
        model = model_for(0.01, trial.number)
        model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[KerasPruningCallback(trial, "val_loss")])
        return 1.0

    optuna.create_study(study_name="filters", pruner=PruneFrom(0)).optimize(objective, n_trials=2)
    store = tracker.Store(db)
    assert list(store.runs(status="pruned")["name"]) == ["trial-1"]
    assert list(store.runs(status="failed")["name"]) == []
    runner = CliRunner()
    listed = runner.invoke(main, ["--db", db, "runs", "--status", "pruned", "--format", "json"])
    assert [(r["name"], r["status"], r["experiment"]) for r in json.loads(listed.output)] == [("trial-1", "pruned", "filters")]
    table = runner.invoke(main, ["--db", db, "runs"])
    assert "pruned" in table.output and "failed" not in table.output
    watched = runner.invoke(main, ["--db", db, "watch", "trial-1", "--interval", "0.1"])
    assert watched.exit_code == 0 and "pruned" in watched.output
    stops = runner.invoke(main, ["--db", db, "early-stops", "--format", "json"])
    (stop,) = json.loads(stops.output)
    assert (stop["stopper"], stop["step"], stop["epoch"]) == ("PruneFrom", 0, 0)


def test_a_value_optuna_rejects_fails_the_trial_and_the_run_keeps_its_fit(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()

    def objective(trial):
        model_for(0.01, 0).fit(x, y, epochs=1, verbose=0)
        return float("nan")

    study = optuna.create_study(study_name="nan")
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    run = tracker.Store(db).run("trial-0")["run"]
    assert (run["status"], run["trial_state"], run["trial_score"]) == ("finished", "FAIL", None)


def test_an_objective_that_prunes_after_fit_makes_that_fits_run_pruned(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()

    def objective(trial):
        history = model_for(0.05, 1).fit(x, y, epochs=3, validation_split=0.25, verbose=0)
        for epoch, value in enumerate(history.history["val_loss"]):
            trial.report(value, epoch)
        raise optuna.TrialPruned("judged after the fit")

    study = optuna.create_study(study_name="after", pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    summary = tracker.Store(db).run("trial-0")
    assert summary["run"]["status"] == "pruned" and summary["run"]["trial_state"] == "PRUNED"
    assert list(summary["phases"]["status"]) == ["finished"]  # the fit itself returned
    (stop,) = summary["early_stops"].to_dict("records")
    assert (stop["stopper"], stop["step"], stop["epoch"], stop["hook"]) == ("NopPruner", 2, 2, None)
    assert bits(stop["value"]) == bits(trial.intermediate_values[2])


def test_ask_and_tell_with_a_tracking_callback(db):
    x, y = data()
    study = optuna.create_study(study_name="ask-tell", direction="maximize")
    for _ in range(2):
        trial = study.ask()
        lr = trial.suggest_float("lr", 0.01, 0.1)
        callback = tracker.TrackingCallback(db, log_batches=False)
        history = model_for(lr, trial.number).fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        frozen = study.tell(trial, -history.history["loss"][-1])
        assert frozen.state == optuna.trial.TrialState.COMPLETE
    store = tracker.Store(db)
    sweep = store.sweep("ask-tell")
    assert sweep.direction == "max" and sweep.trials[0].trial == str(study.best_trial.number)
    for t in sweep.trials:
        frozen = study.trials[t.number]
        assert t.params == frozen.params and bits(t.score) == bits(frozen.value) and t.state == "COMPLETE"


def test_trials_that_raise_before_or_in_fit_are_failed_runs_and_the_study_goes_on(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()

    class Raises(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("fit gave up")

    def objective(trial):
        trial.suggest_int("k", 0, 9)
        if trial.number == 0:
            raise ValueError("no model for this one")
        model_for(0.01, 0).fit(x, y, epochs=2, verbose=0, callbacks=[Raises()] if trial.number == 1 else [])
        return 0.5

    study = optuna.create_study(study_name="raises")
    study.optimize(objective, n_trials=3, catch=(ValueError, RuntimeError))
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL", "COMPLETE"]
    store = tracker.Store(db)
    runs = {store.run(r)["run"]["trial"]: store.run(r) for r in store.runs(experiment="raises")["run_id"]}
    assert runs["0"]["run"]["status"] == "failed" and runs["0"]["run"]["error"] == "ValueError: no model for this one"
    assert runs["0"]["params"] == study.trials[0].params and runs["0"]["run"]["trial_state"] == "FAIL"
    assert runs["1"]["run"]["status"] == "failed" and runs["1"]["run"]["error"] == "RuntimeError: fit gave up"
    assert runs["2"]["run"]["status"] == "finished"


def test_params_that_are_not_plain_json_are_kept_exactly_or_refused_with_a_warning(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db, log_batches=False)
    x, y = data()

    def objective(trial):
        with pytest.warns(UserWarning):  # Optuna's own: such choices cannot be persisted
            trial.suggest_categorical("np32", [np.float32(0.1)])
            trial.suggest_categorical("pair", [(1, 2.5)])
            trial.suggest_categorical("thing", [frozenset({1})])
            trial.suggest_categorical("np64", [np.int64(3)])
        model_for(0.01, 0).fit(x, y, epochs=1, verbose=0)
        return 0.5

    study = optuna.create_study(study_name="odd")
    with pytest.warns(tracker.TrackingWarning, match="thing=frozenset"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE  # the study went on
    params = tracker.Store(db).params("trial-0")
    assert bits(params["np32"]) == bits(float(np.float32(0.1))) and params["pair"] == [1, 2.5]
    assert params["np64"] == 3 and type(params["np64"]) is int and "thing" not in params


@pytest.mark.backend
def test_a_pruned_study_on_this_backend(tmp_path):
    db = str(tmp_path / "runs.db")
    tracker.autolog(db)
    x, y = data()
    histories = []

    def objective(trial):
        history = keras.callbacks.History()
        histories.append(history)
        model_for(trial.suggest_float("lr", 0.01, 0.1), trial.number).fit(
            x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[history, KerasPruningCallback(trial, "val_loss")])
        return history.history["val_loss"][-1]

    study = optuna.create_study(study_name="backend", pruner=PruneFrom(1))
    study.optimize(objective, n_trials=2)
    store = tracker.Store(db)
    runs = store.runs(experiment="backend")
    assert list(runs["status"]) == ["finished", "pruned"]
    for history, run_id in zip(histories, runs["run_id"]):
        assert [bits(v) for v in store.epochs(run_id)["val_loss"]] == [bits(v) for v in history.history["val_loss"]]
    assert store.early_stops(runs["run_id"][1])["stopper"].tolist() == ["PruneFrom"]


def test_db_copy_carries_each_runs_experiment_and_trial_to_the_server_and_back(tmp_path, pg_server, request):
    laptop, back = str(tmp_path / "laptop.db"), str(tmp_path / "back.db")
    server = pg_server.new()
    request.addfinalizer(lambda: pg_server.drop(server))
    x, y = data()
    # The server's experiment ids differ from the laptop's: a run of another experiment is there first.
    model_for(0.01, 0).fit(x, y, epochs=1, verbose=0, callbacks=[tracker.TrackingCallback(server, experiment="already-there")])
    tracker.autolog(laptop, log_batches=False)

    def objective(trial):
        history = model_for(trial.suggest_float("lr", 0.01, 0.1), trial.number).fit(
            x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[KerasPruningCallback(trial, "val_loss")])
        return history.history["val_loss"][-1]

    optuna.create_study(study_name="travels", pruner=PruneFrom(1)).optimize(objective, n_trials=2)
    runner = CliRunner()
    for source, target in ((laptop, server), (server, back)):
        result = runner.invoke(main, ["db", "copy", "--from", source, "--to", target])
        assert result.exit_code == 0, result.output
    expected = tracker.Store(laptop).sweep("travels")
    for db in (server, back):
        store = tracker.Store(db)
        assert store.sweep("travels") == expected
        assert store.early_stops(expected.trials[1].best_run).to_dict("records") == \
            tracker.Store(laptop).early_stops(expected.trials[1].best_run).to_dict("records")
    assert sorted(tracker.Store(back).experiments()["experiment"]) == ["already-there", "travels"]


def test_trials_run_in_threads_n_jobs_each_record_their_own_run(db):
    """``optimize(n_jobs=2)``: Optuna runs two objectives at once in threads; each fit is its own trial's run."""
    tracker.autolog(db, log_batches=False)
    x, y = data()
    histories = {}

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 0.05, log=True)  # none diverges
        model = model_for(lr, trial.number)
        history = keras.callbacks.History()
        histories[trial.number] = history
        model.fit(x, y, epochs=2 + trial.number % 3, validation_split=0.25, verbose=0,
                  callbacks=[history, KerasPruningCallback(trial, "val_loss")])
        return history.history["val_loss"][-1]

    study = optuna.create_study(study_name="threads", pruner=optuna.pruners.NopPruner(),
                                sampler=optuna.samplers.RandomSampler(1))
    study.optimize(objective, n_trials=8, n_jobs=2)

    store = tracker.Store(db)
    runs = store.runs(experiment="threads")
    assert len(runs) == 8 and sorted(runs["name"]) == sorted(f"trial-{t.number}" for t in study.trials)
    by_name = dict(zip(runs["name"], runs["run_id"]))
    for trial in study.trials:
        run_id = by_name[f"trial-{trial.number}"]
        summary = store.run(run_id)
        assert summary["params"] == trial.params and bits(summary["params"]["lr"]) == bits(trial.params["lr"])
        assert summary["run"]["trial_number"] == trial.number and summary["run"]["status"] == "finished"
        assert bits(summary["run"]["trial_score"]) == bits(trial.value)
        epochs = store.epochs(run_id)
        history = histories[trial.number].history
        assert len(epochs) == len(history["loss"]) == 2 + trial.number % 3
        assert [bits(v) for v in epochs["val_loss"]] == [bits(v) for v in history["val_loss"]]
