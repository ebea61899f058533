"""The callback built inline, in the first fit of a fresh process.

``model.fit(x, y, callbacks=[TrackingCallback(db)])`` is how most people
write it. Python looks up ``model.fit`` before evaluating the list, so
anything the callback installs in ``__init__`` misses the very call that
built it. Each case runs ``tests/scripts/inline_fit.py`` in a fresh process
(three import styles), which prints what its spies saw; the tests compare
the database against that.

The import styles are plain Python and do not depend on the backend, so
only the ``from tracker import TrackingCallback`` style of the decisions
scenario is rerun on JAX and torch (marked ``backend``); the default run
covers every style and both scenarios. Each fresh process costs a full
Keras import (about 10 s of CPU here), so the fixture starts only the
processes the selected tests need, two at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import truth_helpers as th

SCRIPT = Path(__file__).parent / "scripts" / "inline_fit.py"
ALL_STYLES = ["from", "module-before-keras", "module-after-keras"]
# The decisions are rerun on JAX and torch in the most common style; the
# failing fit is about wrapping fit, which no backend changes.
STYLES = [pytest.param("from", marks=pytest.mark.backend), *ALL_STYLES[1:]]


class FreshProcesses:
    """The (style, scenario) processes the selected tests need, run two at a time."""

    def __init__(self, needed: set[tuple[str, str]], folder: Path) -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {key: pool.submit(self._run, str(folder / f"{key[0]}-{key[1]}.db"), *key) for key in sorted(needed)}
            self.runs = {key: f.result() for key, f in futures.items()}

    @staticmethod
    def _run(db: str, style: str, scenario: str) -> dict:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), db, "--style", style, "--scenario", scenario],
            capture_output=True, text=True, timeout=600, env=env,
        )
        return {"db": db, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    def result(self, style: str, scenario: str) -> dict:
        run = self.runs[(style, scenario)]
        assert run["returncode"] == 0, f"inline_fit.py {style} {scenario} failed:\n{run['stdout']}\n{run['stderr']}"
        truth = json.loads(run["stdout"].strip().splitlines()[-1])
        truth["db"] = run["db"]
        return truth


def needs(scenario: str):
    """Mark which fresh-process scenario a test reads (default: decisions)."""

    def mark(test):
        test.scenario = scenario
        return test

    return mark


def _scenario(item) -> str:
    return getattr(item.function, "scenario", "decisions")


@pytest.fixture(scope="module")
def fresh_processes(request, tmp_path_factory):
    """Runs each (style, scenario) that a selected test needs, once per module."""
    needed = {
        (item.callspec.params["style"], _scenario(item))
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "style" in item.callspec.params
    }
    return FreshProcesses(needed, tmp_path_factory.mktemp("inline"))


def _only_run(db: str) -> str:
    runs = th.run_ids(db)
    assert len(runs) == 1, f"one inline callback must make one run, found {len(runs)}"
    return runs[0]


@pytest.mark.parametrize("style", STYLES)
def test_inline_callback_records_the_restore_keras_early_stopping_makes_in_on_train_end(fresh_processes, style):
    truth = fresh_processes.result(style, "decisions")
    assert truth["restored_epoch"] == truth["best_epoch"] != truth["last_epoch"], "the setup must restore"
    run = _only_run(truth["db"])
    got = [(r.restored_epoch, r.last_epoch, r.restored_by, r.hook) for r in th.restores(truth["db"], run)]
    assert got == [(truth["restored_epoch"], truth["last_epoch"], "EarlyStopping", "on_train_end")]


@pytest.mark.parametrize("style", STYLES)
def test_inline_callback_records_the_stopper_that_did_not_stop(fresh_processes, style):
    truth = fresh_processes.result(style, "decisions")
    assert truth["stopped_epoch"] == 0, "the setup must not stop"
    run = _only_run(truth["db"])
    got = [(s.stopper, s.stopped, s.epoch, s.best_epoch, s.wait) for s in th.early_stops(truth["db"], run)]
    assert got == [("EarlyStopping", False, truth["last_epoch"], truth["best_epoch"], truth["wait"])]


@pytest.mark.parametrize("style", STYLES)
def test_inline_callback_records_the_lr_change_made_at_the_last_epoch(fresh_processes, style):
    truth = fresh_processes.result(style, "decisions")
    want = [tuple(c) for c in truth["lr_changes"]]
    assert want and want[-1][0] == truth["last_epoch"] + 1, "the setup must change the LR at the last epoch"
    run = _only_run(truth["db"])
    stored = th.lr_changes(truth["db"], run)
    assert [(c.epoch, c.step, c.old_lr, c.new_lr) for c in stored] == want
    assert [[c.source, c.hook] for c in stored] == truth["lr_sources"]


@pytest.mark.parametrize("style", STYLES)
def test_inline_callback_stores_every_epoch_value_of_history(fresh_processes, style):
    truth = fresh_processes.result(style, "decisions")
    run = _only_run(truth["db"])
    stored = th.epoch_values(truth["db"], run)
    history = truth["history"]
    assert sorted(stored) == list(range(truth["last_epoch"] + 1))
    for key, values in history.items():
        assert [th.bits(stored[e].get(key, float("nan"))) for e in sorted(stored)] == [th.bits(v) for v in values], key
    assert {k for v in stored.values() for k in v} == set(history)


@needs("raise")
@pytest.mark.parametrize("style", ALL_STYLES)
def test_inline_callback_marks_a_fit_that_raised_failed_with_the_error(fresh_processes, style):
    truth = fresh_processes.result(style, "raise")
    assert truth["raised"] == "RuntimeError: boom in epoch 2"
    run = _only_run(truth["db"])
    info = th.run_info(truth["db"], run)
    assert info["status"] == "failed", f"status {info['status']!r} (a run left 'running' by a dead process reads 'crashed')"
    fit = [p for p in th.phases(truth["db"], run) if p.kind == "fit"]
    assert [(p.status, p.error) for p in fit] == [("failed", "RuntimeError: boom in epoch 2")]
    assert sorted(th.epoch_values(truth["db"], run)) == truth["epochs_done"] == [0, 1]
