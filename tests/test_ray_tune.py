"""Ray Tune trials become runs of the Ray experiment, with no driver-side code (issue 23).

Real Ray Tune searches of tiny Keras fits on a local 2-CPU Ray cluster,
writing to a SQLite file and to the PostgreSQL server. The trainables
(``ray_trainables.py``) run in Ray's worker processes and only call
``tracker.autolog(db)`` (or pass a ``TrackingCallback``). Ground truth comes
from Ray (the ``ResultGrid``: each trial's config, reported iterations and
last metrics) and from the ``History`` each worker wrote to a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import bits, sql

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler  # noqa: E402

import ray_trainables  # noqa: E402
import tracker  # noqa: E402,F401 - installs the Ray Tune integration in this driver
from tracker.cli import main  # noqa: E402



def search(trainable, space, tmp_path, name, *, scheduler=None, max_failures=0, **fixed):
    out = tmp_path / f"out-{name}"
    out.mkdir()
    tuner = tune.Tuner(
        tune.with_parameters(trainable, out=str(out), **fixed),
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=scheduler),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    )
    return tuner.fit(), out


def histories(out, trial_id):
    path = out / f"{trial_id}.json"
    return json.loads(path.read_text()) if path.exists() else []


def runs_of(db, experiment):
    return {r.trial: r for r in sql(db, """
        SELECT t.trial, t.number, t.state, t.score, r.id, r.name, r.status, r.error, r.pid
        FROM runs r JOIN experiments e ON e.id = r.experiment_id JOIN trials t ON t.run_id = r.id
        WHERE e.name = :e""", {"e": experiment})}


def epochs_of(db, run_id):
    """{logged key: [value bits by epoch]} of every fit of the run, in order."""
    rows = sql(db, """
        SELECT p.seq, ep.epoch, k.name, v.value, v.bits FROM epochs ep JOIN phases p ON p.id = ep.phase_id
        JOIN epoch_values v ON v.epoch_id = ep.id JOIN keys k ON k.id = v.key_id
        WHERE p.run_id = :r ORDER BY p.seq, ep.epoch""", {"r": run_id})
    found = {}
    for _seq, _epoch, key, value, raw in rows:
        found.setdefault(key, []).append(raw if raw is not None else bits(value))
    return found


def stops_of(db, run_id):
    return sql(db, """
        SELECT s.stopper, s.hook, s.epoch, s.step, s.value, s.bits, s.monitor FROM stop_decisions s
        JOIN phases p ON p.id = s.phase_id WHERE p.run_id = :r AND s.stopped""", {"r": run_id})


def test_an_asha_search_under_autolog_records_every_trial_as_ray_saw_it(ray_cluster, db, tmp_path):
    space = {"lr": tune.grid_search([0.3, 0.01, 0.0001, 0.05, 1e-5, 0.02]), "seed": 7, "opt": {"name": "sgd"}}
    asha = ASHAScheduler(max_t=ray_trainables.EPOCHS, grace_period=1, reduction_factor=2)
    results, out = search(ray_trainables.fit_trial, space, tmp_path, "asha-search", scheduler=asha, db=db)
    assert not results.errors
    runs = runs_of(db, "asha-search")
    assert len(runs) == len(results) == 6  # one run per trial, none lost, none doubled
    assert sql(db, "SELECT tool, objective, direction FROM experiments WHERE name = 'asha-search'") == \
        [("ray_tune", "score", "min")]
    pruned = 0
    store = tracker.Store(db)
    for result in results:
        trial_id = result.metrics["trial_id"]
        run = runs[trial_id]
        reported = len(result.metrics_dataframe)
        # Params: the trial's config, exactly (nested dicts as a/b, as Ray flattens them).
        params = store.params(run.id)
        assert params == {"lr": result.config["lr"], "seed": 7, "opt/name": "sgd"}
        assert bits(params["lr"]) == bits(result.config["lr"]) and type(params["seed"]) is int
        assert store.tags(run.id)["trial"] == trial_id
        assert Path(result.path).name.startswith(run.name + "_")  # Ray's trial name, as in its results folder
        # Every epoch the trial trained, bit for bit as History holds it (History sees the epoch Ray ended in).
        (seen,) = histories(out, trial_id)
        stored = epochs_of(db, run.id)
        assert stored == seen["history"]
        assert len(stored["loss"]) == reported
        # Ray's state and its last reported score, exactly.
        assert run.state == "TERMINATED"
        assert bits(run.score) == bits(result.metrics["score"])
        stops = stops_of(db, run.id)
        if reported < ray_trainables.EPOCHS:  # only the scheduler ends a trial early here
            pruned += 1
            assert run.status == "pruned" and run.error is None
            ((stopper, hook, epoch, step, value, raw, monitor),) = stops
            assert (stopper, hook, epoch, step, monitor) == \
                ("AsyncHyperBandScheduler", "on_epoch_end", reported - 1, reported, "score")
            assert (raw if raw is not None else bits(value)) == bits(result.metrics["score"])
        else:
            assert run.status == "finished" and stops == []
    assert pruned >= 1  # ASHA with reduction factor 2 stops some of six trials at the first rung

    # The sweep view ranks the trials by Ray's last reported score, as ResultGrid.get_best_result does.
    best = results.get_best_result(metric="score", mode="min", scope="last")
    info = store.sweep("asha-search")
    assert info.tool == "ray_tune" and [t.rank for t in info.trials] == [1, 2, 3, 4, 5, 6]
    assert info.trials[0].trial == best.metrics["trial_id"]
    assert [bits(t.score) for t in info.trials] == \
        [bits(runs[t.trial].score) for t in sorted(info.trials, key=lambda t: runs[t.trial].score)]
    shown = CliRunner().invoke(main, ["--db", db, "sweep", "asha-search"])
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "asha-search: 6 trials of Ray Tune, best first by the last reported value of score (min)." in said and best.metrics["trial_id"] in shown.output


class StopHalf(FIFOScheduler):
    """Stops the trials whose lr is below 0.01 after their second report (deterministic, unlike ASHA)."""

    def on_trial_result(self, tune_controller, trial, result):
        if trial.config["lr"] < 0.01 and result["training_iteration"] >= 2:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


def test_an_explicit_callback_a_custom_scheduler_and_a_stop_criterion(ray_cluster, tmp_path):
    db = str(tmp_path / "runs.db")
    space = {"lr": tune.grid_search([0.001, 0.05])}
    out = tmp_path / "out"
    out.mkdir()
    tuner = tune.Tuner(
        tune.with_parameters(ray_trainables.fit_trial, out=str(out), db=db, explicit=True, epochs=6),
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=StopHalf()),
        run_config=tune.RunConfig(name="custom", storage_path=str(tmp_path / "ray"), verbose=0,
                                  stop={"training_iteration": 3}),
    )
    results = tuner.fit()
    runs = runs_of(db, "custom")
    by_lr = {r.config["lr"]: runs[r.metrics["trial_id"]] for r in results}
    # The search's metric and mode, which Ray's base scheduler does not keep, as TuneConfig gave them.
    assert sql(db, "SELECT tool, objective, direction FROM experiments") == [("ray_tune", "score", "min")]
    # lr 0.001: the scheduler stopped it after 2 reports: pruned, named by the scheduler's class.
    assert by_lr[0.001].status == "pruned"
    ((stopper, _hook, epoch, step, *_rest),) = stops_of(db, by_lr[0.001].id)
    assert (stopper, epoch, step) == ("StopHalf", 1, 2)
    # lr 0.05: the search's stop criterion (3 iterations) ended it: the trial's end, not a prune.
    assert by_lr[0.05].status == "finished" and stops_of(db, by_lr[0.05].id) == []
    assert len(epochs_of(db, by_lr[0.05].id)["loss"]) == 3

    # The dashboard's experiment page draws the Ray experiment as it draws a KerasTuner or Optuna one.
    from playwright.sync_api import expect, sync_playwright
    from ui_support import launch

    from tracker.ui.app import create_app
    from tracker.ui.server import running_server

    info = tracker.Store(db).sweep("custom")
    with running_server(create_app(db)) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/experiments/custom")
            expect(page.locator("main")).to_have_attribute("data-drawn", "true", timeout=15_000)
            expect(page.locator("#experiment-tool")).to_have_text("Ray Tune")
            rows = page.locator("#trials tbody tr")
            expect(rows).to_have_count(2)
            assert [rows.nth(i).get_attribute("data-trial") for i in range(2)] == [t.trial for t in info.trials]
            pruned_row = rows.nth([t.trial for t in info.trials].index(by_lr[0.001].trial))
            expect(pruned_row).to_contain_text("pruned")
            assert errors == []
        finally:
            browser.close()


def test_failures_a_retried_trial_continues_its_run_and_a_trial_failing_before_fit_is_recorded(
        ray_cluster, tmp_path):
    db = str(tmp_path / "runs.db")
    space = {"lr": 0.01, "fail": tune.grid_search(["fit-once", "fit", "before", "after"])}
    results, out = search(ray_trainables.fit_trial, space, tmp_path, "faults", max_failures=1, db=db)
    runs = runs_of(db, "faults")
    assert len(runs) == 4  # one run per trial, never one per attempt
    assert sql(db, "SELECT COUNT(*) FROM runs") == [(4,)]
    by_fail = {r.config["fail"]: (r, runs[r.metrics.get("trial_id") or _trial_of(r)]) for r in results}

    # Broke in epoch 2 once, then Ray retried it: the retry continued the same run, to its end.
    result, run = by_fail["fit-once"]
    assert result.error is None and run.status == "finished" and run.error is None
    first, second = histories(out, result.metrics["trial_id"])
    phases = sql(db, "SELECT status FROM phases WHERE run_id = :r AND kind = 'fit' ORDER BY seq", {"r": run.id})
    assert phases == [("failed",), ("finished",)]  # the first attempt's fit, then the retry's, in one run
    stored = epochs_of(db, run.id)
    assert stored["loss"] == first["history"]["loss"] + second["history"]["loss"]

    # Broke on both attempts: failed, with the error the fit raised.
    result, run = by_fail["fit"]
    assert result.error is not None
    assert run.status == "failed" and "broke in epoch 2" in run.error and run.state == "ERROR"

    # Raised before any fit, twice: one failed run with the error, in the trial's experiment.
    result, run = by_fail["before"]
    assert result.error is not None
    assert run.status == "failed" and run.error == "ValueError: bad config: no model for this trial"
    assert run.state == "ERROR"

    # Raised after its fit returned, on both attempts: the trial failed, so does its run (its fit phases did not).
    result, run = by_fail["after"]
    assert result.error is not None and run.state == "ERROR"
    assert (run.status, run.error) == ("failed", f"RuntimeError: trial {run.trial} broke after its fit")
    phases = sql(db, "SELECT status FROM phases WHERE run_id = :r AND kind = 'fit' ORDER BY seq", {"r": run.id})
    assert phases == [("finished",), ("finished",)]  # each attempt's fit, in the one run


def _trial_of(result):
    return Path(result.path).name.split("_")[2] + "_" + Path(result.path).name.split("_")[3]


def test_a_killed_worker_leaves_a_crashed_run_and_a_restarted_one_continues(ray_cluster, tmp_path):
    db = str(tmp_path / "runs.db")
    space = {"lr": 0.01, "fail": tune.grid_search(["kill", "kill-once"])}
    results, out = search(ray_trainables.fit_trial, space, tmp_path, "kills", max_failures=1, db=db)
    runs = runs_of(db, "kills")
    assert len(runs) == 2
    store = tracker.Store(db)
    status = dict(zip(store.runs()["run_id"], store.runs()["status"]))
    for result in results:
        trial_id = str(result.metrics.get("trial_id") or _trial_of(result))
        run = runs[trial_id]
        attempts = histories(out, trial_id)
        if result.config["fail"] == "kill":  # killed on both attempts: its process is gone, never "running"
            assert result.error is not None
            assert status[run.id] == "crashed"
            assert len(attempts) == 2 and all(not alive(a["pid"]) for a in attempts)
        else:  # killed once, then retried: the same run, continued to its end
            assert result.error is None
            assert status[run.id] == "finished"
            assert len(epochs_of(db, run.id)["loss"]) >= ray_trainables.EPOCHS


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_reused_actors_record_each_trial_as_ray_saw_it(ray_cluster, tmp_path):
    """``reuse_actors=True``: Ray hands an actor the next trial (``reset_config``) after setting its trial id.

    Each trial's end (state, score) and a scheduler's stop must still name the trial that ended, not the
    one the actor takes next.
    """
    db = str(tmp_path / "runs.db")
    out = tmp_path / "out"
    out.mkdir()
    asha = ASHAScheduler(max_t=ray_trainables.EPOCHS, grace_period=1, reduction_factor=2)
    tuner = tune.Tuner(
        tune.with_parameters(ray_trainables.fit_trial, out=str(out), db=db),
        param_space={"lr": tune.grid_search([0.3, 0.01, 0.0001, 0.05, 1e-5, 0.02]), "seed": 7},
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=asha, reuse_actors=True),
        run_config=tune.RunConfig(name="reused", storage_path=str(tmp_path / "ray"), verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    runs = runs_of(db, "reused")
    assert len(runs) == len(results) == 6
    pids = set()
    pruned = 0
    for result in results:
        trial_id = result.metrics["trial_id"]
        run, reported = runs[trial_id], len(result.metrics_dataframe)
        (seen,) = histories(out, trial_id)
        pids.add(seen["pid"])
        assert epochs_of(db, run.id) == seen["history"]
        assert (run.state, bits(run.score)) == ("TERMINATED", bits(result.metrics["score"])), trial_id
        if reported < ray_trainables.EPOCHS:
            pruned += 1
            assert run.status == "pruned", (trial_id, reported, run.status)
            ((stopper, _hook, epoch, step, *_rest),) = stops_of(db, run.id)
            assert (stopper, epoch, step) == ("AsyncHyperBandScheduler", reported - 1, reported)
        else:
            assert run.status == "finished" and stops_of(db, run.id) == []
    assert pruned >= 1
    assert len(pids) < len(results)  # actors were reused: some process trained more than one trial
