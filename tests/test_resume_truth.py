"""A preempted job resumed with BackupAndRestore: counts and bests ignore the replaced attempt.

Job 1 trains epochs 0-3 and dies in ``on_epoch_end`` of epoch 3, after the
tracker wrote epoch 3 but before ``BackupAndRestore`` saved it, so the
backup is at epoch 2. Job 2 (``TrackingCallback(resume=True)``) restarts
from that backup and trains epochs 3-5 again: job 1's epoch 3 is a replaced
attempt.

To make a wrong answer visible, job 1 trains epoch 3 at a good rate and
everything else at a tiny one: the replaced epoch 3 has the best loss and
val_loss of all attempts, so a best taken from it is caught.

Ground truth: the two jobs' own ``History`` objects. The run's epochs are
job 1's epochs 0-2 and job 2's epochs 3-5.
"""

from __future__ import annotations

import keras
import pytest

import truth_helpers as th
from tracker import TrackingCallback

pytestmark = pytest.mark.backend

EPOCHS, KILLED_AT, TINY, GOOD = 6, 3, 1e-6, 0.002


def _job(db_path, backup, schedule, *, preempt: bool):
    x, y = th.make_data(96, features=16)
    model = th.make_model(keras.optimizers.SGD(TINY), features=16)
    history = keras.callbacks.History()
    tracker = TrackingCallback(db_path, run_name="job-42", resume=True)
    callbacks = [keras.callbacks.LearningRateScheduler(schedule), history, tracker]
    if preempt:
        callbacks.append(th.PreemptAt(KILLED_AT))
    callbacks.append(keras.callbacks.BackupAndRestore(str(backup)))
    try:
        model.fit(x, y, batch_size=16, epochs=EPOCHS, validation_split=0.25, callbacks=callbacks, verbose=0)
    except RuntimeError as exc:
        assert preempt and "preempted" in str(exc)
    return tracker, history


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    db_path, backup = str(folder / "runs.db"), folder / "backup"
    first, h1 = _job(db_path, backup, lambda e, lr: GOOD if e == KILLED_AT else TINY, preempt=True)
    second, h2 = _job(db_path, backup, lambda e, lr: TINY, preempt=False)
    assert first.run_id == second.run_id, "resume=True continues the run"
    assert h2.epoch == list(range(KILLED_AT, EPOCHS)), "job 2 resumed from the backup at the end of epoch 2"
    kept = {key: h1.history[key][:KILLED_AT] + h2.history[key] for key in h2.history}
    replaced = {key: h1.history[key][KILLED_AT] for key in h1.history}
    for key in ("loss", "val_loss"):
        assert replaced[key] < min(kept[key]), f"the setup must leave the best {key} in the replaced attempt"
    return db_path, second.run_id, kept, replaced


def test_resumed_run_lists_every_epoch_once_with_the_kept_attempts_values(resumed):
    db_path, run, kept, _ = resumed
    stored = th.epoch_values(db_path, run)
    assert sorted(stored) == list(range(EPOCHS))
    for key, values in kept.items():
        assert [th.bits(stored[e].get(key)) for e in range(EPOCHS)] == [th.bits(v) for v in values], key


def test_resumed_run_counts_its_epochs_once_in_the_run_listing(resumed):
    db_path, run, _, _ = resumed
    listed, epochs = th.run_listing(db_path, run)["epochs"], len(th.epochs(db_path, run))
    assert (listed, epochs) == (EPOCHS, EPOCHS), f"Store.runs() counts {listed} epochs, Store.epochs lists {epochs}"


def test_resumed_run_metrics_count_and_best_only_kept_epochs(resumed):
    db_path, run, kept, _ = resumed
    found = th.metrics(db_path, run)
    problems = []
    for key, values in kept.items():
        m = found.get(key)
        best = min(values)
        want = (best, values.index(best), values[-1], EPOCHS - 1, EPOCHS)
        got = None if m is None else (m.best, m.best_epoch, m.final, m.final_epoch, m.epochs)
        if got != want:
            problems.append(f"{key} (best, best_epoch, final, final_epoch, epochs): stored {got}, kept epochs give {want}")
    assert not problems, "\n".join(problems)


def test_resumed_run_sorted_by_best_val_loss_shows_the_kept_best(resumed):
    db_path, run, kept, replaced = resumed
    row = th.run_listing(db_path, run, sort="best:val_loss")
    best = min(kept["val_loss"])
    assert (row["val_loss"], row["val_loss_epoch"]) == (best, kept["val_loss"].index(best)), (
        f"the replaced epoch {KILLED_AT} had val_loss {replaced['val_loss']}"
    )


def test_resumed_run_compare_counts_epochs_once_and_bests_only_kept_epochs(resumed):
    db_path, run, kept, _ = resumed
    row = th.cli_json(db_path, "compare", run)[0]
    assert row["epochs"] == EPOCHS, f"tracker compare counts {row['epochs']} epochs"
    for key in ("loss", "val_loss"):
        best = min(kept[key])
        assert (row[f"best:{key}"], row[f"best_epoch:{key}"]) == (best, kept[key].index(best)), key
        assert (row[f"final:{key}"], row[f"final_epoch:{key}"]) == (kept[key][-1], EPOCHS - 1), key
