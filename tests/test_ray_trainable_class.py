"""Ray Tune class-API trainables (``tune.Trainable`` subclasses) recorded as runs, one per trial (issue 23).

Ray builds the trainable in ``setup`` and calls its ``step`` once per
iteration; ``ray_trainables.StepTrainable`` fits one epoch per step. Each
trial must be one run with a fit phase per step, ended as Ray ended it:
``finished`` at its end, ``pruned`` by the scheduler that stopped it
between two steps, ``failed`` when a step raised, crashed when its worker
was killed, continued when Ray retried it. Ground truth: Ray's
``ResultGrid`` and the spy file each trial writes (every epoch's values as
IEEE-754 bits, per attempt).

The module's name sorts after ``test_ray_cluster.py`` on purpose: in one
pytest process, a local ``ray.init`` followed by ``ray.shutdown`` and then
the 2-node cluster's ``ray.init(address=...)`` leaves every actor of the
cluster's searches cancelled before it starts (Ray 2.60); the other order works.
"""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from conftest import bits, sql

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402
from test_ray_tune import StopHalf, alive, epochs_of, histories, runs_of, stops_of  # noqa: E402

import ray_trainables  # noqa: E402
import tracker  # noqa: E402,F401 - installs the Ray Tune integration in this driver
from tracker.cli import main  # noqa: E402

STEPS = 4
LRS = [0.3, 0.01, 0.0001, 0.05, 1e-5, 0.02]


def tuner(tmp_path, name, space, *, scheduler=None, stop=None, max_failures=0, reuse=False, **fixed):
    out = tmp_path / f"out-{name}"
    out.mkdir()
    return tune.Tuner(
        tune.with_parameters(ray_trainables.StepTrainable, out=str(out), **fixed),
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=scheduler, reuse_actors=reuse),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray"), verbose=0, stop=stop,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    ), out


def phases_of(db, run_id):
    return sql(db, "SELECT kind, status, epoch FROM phases WHERE run_id = :r AND kind != 'validation' ORDER BY seq",
               {"r": run_id})


def fit_epochs(db, run_id):
    return sql(db, """SELECT ep.epoch FROM epochs ep JOIN phases p ON p.id = ep.phase_id
                      WHERE p.run_id = :r AND p.kind = 'fit' ORDER BY p.seq, ep.epoch""", {"r": run_id})


def check_trials(db, results, out, name, scheduler):
    """Every trial: one run, its config, every step's epoch bit for bit, Ray's state and score, pruned or not."""
    runs = runs_of(db, name)
    assert len(runs) == len(results) == len(LRS)  # one run per trial, never one per step
    assert sql(db, "SELECT COUNT(*) FROM runs") == [(len(LRS),)]
    store, pruned, pids = tracker.Store(db), 0, set()
    for result in results:
        trial_id = result.metrics["trial_id"]
        run, reported = runs[trial_id], len(result.metrics_dataframe)
        assert store.params(run.id) == {"lr": result.config["lr"], "seed": 7}
        assert bits(store.params(run.id)["lr"]) == bits(result.config["lr"])
        assert store.tags(run.id)["trial"] == trial_id and run.name == f"StepTrainable_{trial_id}"
        (seen,) = histories(out, trial_id)
        pids.add(seen["pid"])
        assert epochs_of(db, run.id) == seen["history"]
        # A fit phase per step, epochs numbered across the steps (fit(initial_epoch=i, epochs=i + 1)).
        assert phases_of(db, run.id) == [("fit", "finished", None)] * reported
        assert fit_epochs(db, run.id) == [(i,) for i in range(reported)]
        assert (run.state, bits(run.score)) == ("TERMINATED", bits(result.metrics["score"])), trial_id
        if reported < STEPS:  # only the scheduler ends a trial before its 4th step here
            pruned += 1
            assert run.status == "pruned" and run.error is None, (trial_id, reported)
            ((stopper, hook, epoch, step, value, raw, monitor),) = stops_of(db, run.id)
            assert (stopper, hook, epoch, step, monitor) == (scheduler, None, reported - 1, reported, "score")
            assert (raw if raw is not None else bits(value)) == bits(result.metrics["score"])
        else:
            assert run.status == "finished" and stops_of(db, run.id) == [], trial_id
    assert pruned >= 1
    return runs, pids


def test_an_asha_search_of_a_class_trainable_is_one_run_per_trial_with_a_fit_per_step(ray_cluster, db, tmp_path):
    asha = ASHAScheduler(max_t=STEPS, grace_period=1, reduction_factor=2)
    search, out = tuner(tmp_path, "class-asha", {"lr": tune.grid_search(LRS), "seed": 7}, scheduler=asha, db=db)
    results = search.fit()
    assert not results.errors
    runs, _pids = check_trials(db, results, out, "class-asha", "AsyncHyperBandScheduler")
    assert sql(db, "SELECT tool, objective, direction FROM experiments") == [("ray_tune", "score", "min")]
    # The sweep view ranks the trials by Ray's last reported score, as ResultGrid.get_best_result does.
    best = results.get_best_result(metric="score", mode="min", scope="last")
    info = tracker.Store(db).sweep("class-asha")
    assert info.tool == "ray_tune" and info.trials[0].trial == best.metrics["trial_id"]
    shown = CliRunner().invoke(main, ["--db", db, "sweep", "class-asha"])
    assert shown.exit_code == 0 and best.metrics["trial_id"] in shown.output, shown.output


def test_reused_class_actors_end_each_trial_under_its_own_id(ray_cluster, tmp_path):
    """``reuse_actors=True``: Ray calls ``reset_config`` with the next trial's config after setting its id."""
    db = str(tmp_path / "runs.db")
    asha = ASHAScheduler(max_t=STEPS, grace_period=1, reduction_factor=2)
    search, out = tuner(tmp_path, "class-reused", {"lr": tune.grid_search(LRS), "seed": 7}, scheduler=asha,
                        reuse=True, db=db)
    results = search.fit()
    assert not results.errors
    _runs, pids = check_trials(db, results, out, "class-reused", "AsyncHyperBandScheduler")
    assert len(pids) < len(results)  # actors were reused: some process trained more than one trial


def test_an_explicit_callback_one_epoch_a_step_with_evaluate_and_a_stop_criterion(ray_cluster, tmp_path):
    """``fit(epochs=1)`` then ``evaluate`` each step, one ``TrackingCallback`` built in ``setup``."""
    db = str(tmp_path / "runs.db")
    search, out = tuner(tmp_path, "class-explicit", {"lr": tune.grid_search([0.001, 0.05]), "idiom": "one_epoch"},
                        scheduler=StopHalf(), stop={"training_iteration": 3}, db=db, explicit=True)
    results = search.fit()
    assert not results.errors
    runs = runs_of(db, "class-explicit")
    by_lr = {r.config["lr"]: (r, runs[r.metrics["trial_id"]]) for r in results}
    # lr 0.001: stopped by the scheduler after 2 steps: pruned, named by the scheduler's class.
    result, run = by_lr[0.001]
    assert run.status == "pruned" and phases_of(db, run.id) == [("fit", "finished", None),
                                                                ("evaluate", "finished", None)] * 2
    ((stopper, _hook, epoch, step, *_rest),) = stops_of(db, run.id)
    assert (stopper, epoch, step) == ("StopHalf", 0, 2)  # each step's fit is epoch 0 of its own
    # lr 0.05: the search's stop criterion (3 iterations) is the trial's end, not a prune.
    result, run = by_lr[0.05]
    assert run.status == "finished" and stops_of(db, run.id) == []
    assert fit_epochs(db, run.id) == [(0,)] * 3
    (seen,) = histories(out, result.metrics["trial_id"])
    assert epochs_of(db, run.id) == seen["history"]
    evaluated = sql(db, """SELECT v.bits, v.value FROM phases p JOIN phase_values v ON v.phase_id = p.id
                           JOIN keys k ON k.id = v.key_id WHERE p.run_id = :r AND p.kind = 'evaluate'
                           AND k.name = 'loss' ORDER BY p.seq DESC LIMIT 1""", {"r": run.id})
    ((raw, value),) = evaluated
    assert (raw if raw is not None else bits(value)) == bits(result.metrics["score"])  # step returned evaluate's
    assert bits(run.score) == bits(result.metrics["score"])


def faulty_search(tmp_path, name, faults):
    """A search of one trial per fault, each retried once: {fault: (Ray's result, the run, the spy's attempts)}."""
    db = str(tmp_path / "runs.db")
    space = {"lr": 0.01, "fail": tune.grid_search(faults)}
    search, out = tuner(tmp_path, name, space, stop={"training_iteration": STEPS}, max_failures=1, db=db)
    results = search.fit()
    runs = runs_of(db, name)
    assert len(runs) == len(faults) and sql(db, "SELECT COUNT(*) FROM runs") == [(len(faults),)]  # not per attempt
    got = {}
    for result in results:
        _kind, run_key, index, *_rest = os.path.basename(result.path).split("_")
        trial_id = f"{run_key}_{index}"
        got[result.config["fail"]] = (result, runs[trial_id], histories(out, trial_id))
    return db, got


def test_class_trainable_faults_a_retried_trial_continues_its_run(ray_cluster, tmp_path):
    db, got = faulty_search(tmp_path, "class-faults", ["fit-once", "fit", "before", "after"])

    # Broke inside step 2's fit once; Ray retried the trial from its start: the same run, continued to its end.
    result, run, (first, second) = got["fit-once"]
    assert result.error is None and (run.status, run.error, run.state) == ("finished", None, "TERMINATED")
    assert [s for _k, s, _e in phases_of(db, run.id)] == ["finished", "finished", "failed"] + ["finished"] * STEPS
    assert epochs_of(db, run.id)["loss"] == first["history"]["loss"] + second["history"]["loss"]
    # Broke inside the fit on both attempts: failed with the fit's error.
    result, run, _seen = got["fit"]
    assert result.error is not None and run.status == "failed" and "broke in step 2" in run.error
    assert run.state == "ERROR"
    # Raised in the first step before any fit, twice: one failed run with the error.
    result, run, _seen = got["before"]
    assert (run.status, run.error, run.state) == ("failed", "ValueError: bad config: no model for this trial", "ERROR")
    assert phases_of(db, run.id) == []
    # Raised after step 2's fit returned, twice: the trial failed, so does its run (every fit finished).
    result, run, (first, second) = got["after"]
    assert result.error is not None and run.status == "failed" and run.state == "ERROR"
    assert run.error == f"RuntimeError: trial {run.trial} broke after step 2's fit"
    assert [s for _k, s, _e in phases_of(db, run.id)] == ["finished"] * 6


def test_a_killed_class_trainable_worker_leaves_a_crashed_run_and_a_restarted_one_continues(ray_cluster, tmp_path):
    db, got = faulty_search(tmp_path, "class-kills", ["kill", "kill-once"])
    store = tracker.Store(db)
    status = dict(zip(store.runs()["run_id"], store.runs()["status"]))
    # Killed inside step 2's fit on both attempts: crashed, never "running".
    result, run, attempts = got["kill"]
    assert result.error is not None and status[run.id] == "crashed" and len(attempts) == 2
    assert all(not alive(a["pid"]) for a in attempts)
    # Killed once, then retried: the same run, continued to its end.
    result, run, attempts = got["kill-once"]
    assert result.error is None and status[run.id] == "finished" and len(attempts) == 2
    assert len(epochs_of(db, run.id)["loss"]) == 2 + STEPS
