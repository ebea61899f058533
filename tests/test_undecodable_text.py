"""Text that is not valid Unicode never costs a run.

``os.fsdecode`` (and ``sys.argv``, ``os.environ``, ``os.listdir``) turn bytes
that are not UTF-8 into lone surrogates (``b"\\xff"`` -> ``"\\udcff"``), which
no database driver can encode. A run named after such a file, or with such a
param, tag, logs key or logs value, or whose error message holds one, is
recorded whole, with each lone surrogate stored as its escape (the six
characters ``\\udcff``), and found again by the same string.

Ground truth: ``os.fsdecode`` for the names, Python's own ``backslashreplace``
codec for the stored form, Keras' ``History`` for the values; and no
``TrackingWarning`` (conftest turns one into an error).
"""

from __future__ import annotations

import os

import keras
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql

from tracker import Store, TrackingCallback
from tracker.cli import main

BAD = os.fsdecode(b"run-\xff\xfe")  # an undecodable file name, as Python gives it
assert BAD == "run-\udcff\udcfe"


def stored(text: str) -> str:
    """The stored form: every lone surrogate as its backslash escape (Python's codec decides, not the tracker)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class OddLogs(keras.callbacks.Callback):
    """Adds a key and a text value that are not valid Unicode to every batch's and epoch's logs."""

    def on_train_batch_end(self, batch, logs=None):
        logs[f"batch-{BAD}"] = 1.5
        logs["note"] = f"text {BAD}"

    def on_epoch_end(self, epoch, logs=None):
        logs[f"epoch-{BAD}"] = float(epoch) + 0.25
        logs["note"] = f"text {BAD}"


def test_a_run_with_undecodable_names_params_tags_and_logs_is_recorded_whole(db):
    x, y = guide_data(48)
    params = {f"file-{BAD}": BAD, "nested": {"paths": [BAD, 1.5]}, "plain": 1}
    tags = {f"tag-{BAD}": "x", "source": BAD}
    cb = TrackingCallback(db, run_name=BAD, params=params, tags=tags)
    history = guide_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[OddLogs(), cb])
    guide_model().evaluate(x, y, batch_size=16, verbose=0, callbacks=[cb])

    assert sql(db, "SELECT name, status FROM runs") == [(stored(BAD), "finished")]
    store = Store(db)
    assert store.params(cb.run_id) == {
        f"file-{stored(BAD)}": stored(BAD), "nested": {"paths": [stored(BAD), 1.5]}, "plain": 1
    }
    assert store.tags(cb.run_id) == {f"tag-{stored(BAD)}": "x", "source": stored(BAD)}

    epochs = store.epochs(cb.run_id)
    assert list(epochs[f"epoch-{stored(BAD)}"]) == history.history[f"epoch-{BAD}"] == [0.25, 1.25]
    assert list(epochs["loss"]) == history.history["loss"]
    assert list(epochs["note"]) == [f"text {stored(BAD)}"] * 2
    batches = store.batches(cb.run_id, phase="fit")
    assert len(batches) == 2 * 3
    assert set(batches[f"batch-{stored(BAD)}"]) == {1.5}
    assert [kind for kind, in sql(db, "SELECT kind FROM phases WHERE kind != 'validation' ORDER BY seq")] == [
        "fit", "evaluate"
    ]

    # The same undecodable string finds the run again, in Python and on the command line.
    assert store.resolve(BAD) == cb.run_id
    assert list(store.runs(name=BAD)["run_id"]) == [cb.run_id]
    assert list(store.runs(name=BAD[:5] + "*")["run_id"]) == [cb.run_id]
    assert list(store.runs(tags={"source": BAD})["run_id"]) == [cb.run_id]
    assert list(store.runs(params={f"file-{BAD}": BAD})["run_id"]) == [cb.run_id]
    for args in (["runs", "--name", BAD, "--format", "csv"], ["show", BAD]):
        result = CliRunner().invoke(main, ["--db", db, *args])
        assert result.exit_code == 0, result.output
        assert cb.run_id[:8] in result.output and stored(BAD) in result.output


def test_a_resumed_run_with_an_undecodable_name_continues_it(db):
    x, y = guide_data(32)
    first = TrackingCallback(db, run_name=BAD)
    model = guide_model()
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[Explodes(at_epoch=1), first])
    again = TrackingCallback(db, run_name=BAD, resume=True)
    assert again.run_id == first.run_id
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[again])
    assert sql(db, "SELECT count(*), min(status) FROM runs") == [(1, "finished")]


class Explodes(keras.callbacks.Callback):
    """Raises, with a message holding an undecodable file name, at the end of an epoch."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError(f"cannot write /data/{BAD}.ckpt")


def test_a_failure_whose_message_is_undecodable_is_recorded_with_it(db):
    x, y = guide_data(32)
    cb = TrackingCallback(db, run_name="fails")
    with pytest.raises(RuntimeError) as raised:
        guide_model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[Explodes(at_epoch=1), cb])
    assert sql(db, "SELECT status, error FROM runs") == [("failed", stored(f"RuntimeError: {raised.value}"))]


def test_an_undecodable_host_name_does_not_cost_the_run(db, monkeypatch):
    monkeypatch.setenv("TRACKER_HOST", os.fsdecode(b"node-\xff"))
    x, y = guide_data(32)
    cb = TrackingCallback(db, run_name="on-odd-host")
    guide_model().fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    assert sql(db, "SELECT host, status FROM runs") == [(stored(os.fsdecode(b"node-\xff")), "finished")]
    assert Store(db).runs()["status"].tolist() == ["finished"]


def test_a_database_path_that_is_not_valid_utf8_is_refused_in_one_sentence(tmp_path):
    import tracker
    from tracker.errors import DatabaseError

    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/runs-\xff")
    os.mkdir(folder)
    path = os.path.join(folder, "runs.db")
    for build in (lambda: TrackingCallback(path), lambda: tracker.autolog(path)):
        with pytest.raises(DatabaseError, match=r"^The database path .* is not valid UTF-8 .*choose a path") as caught:
            build()
        assert "\n" not in str(caught.value)
    result = CliRunner().invoke(main, ["--db", path, "runs"])
    assert result.exit_code == 1 and result.output.startswith("Error: The database path")
    assert os.listdir(folder) == []
