"""Lineage: a fit that starts from a recorded epoch's weights names it, whole or for a sub-model.

Ground truth from outside the tracker: ``WeightCopies`` (the weights at each
epoch end), ``ModelCheckpoint.best`` against ``History`` (which epoch
``best.keras`` holds), and the weights of the models before each fit.
Runs on TensorFlow, JAX and torch, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import truth_helpers as th
from tracker import Store, TrackingCallback
from tracker.cli import main

pytestmark = pytest.mark.backend

EPOCHS = 3


def data(n: int = 64):
    rng = np.random.default_rng(0)
    x = rng.random((n, 8)).astype("float32")
    return x, (x.sum(axis=1) + rng.normal(0, 0.1, n)).astype("float32")


def body_model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(4)],
                            name="body")


def with_head(body: keras.Model, seed: int = 5) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(body(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    return model


def fit(db, model, name, *callbacks, epochs=EPOCHS):
    tracker = TrackingCallback(db, run_name=name)
    history = model.fit(*data(), batch_size=16, epochs=epochs, validation_split=0.25, verbose=0,
                        callbacks=[*callbacks, tracker])
    return tracker.run_id, history.history


def cli(db, *args):
    result = CliRunner().invoke(main, ["--db", db, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_fits_started_from_load_model_and_load_weights_name_the_epoch_and_lineage_shows_both_ways(db, tmp_path):
    parent_model = with_head(body_model())
    copies = th.WeightCopies()
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="val_loss", save_best_only=True)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.weights.h5"), save_weights_only=True)
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.5 if e == EPOCHS - 1 else 0.01)
    parent, history = fit(db, parent_model, "parent", copies, best, every, kick)
    best_epoch = history["val_loss"].index(best.best)  # the epoch best.keras holds, by ModelCheckpoint's own best

    loaded = keras.saving.load_model(str(tmp_path / "best.keras"))
    assert th.same_weights(loaded.get_weights(), copies.copies[best_epoch])
    child, _ = fit(db, loaded, "from-load-model")

    reloaded = with_head(body_model(seed=9), seed=9)
    reloaded.load_weights(str(tmp_path / "e2.weights.h5"))  # {epoch} is epoch + 1: epoch 1's weights
    assert th.same_weights(reloaded.get_weights(), copies.copies[1])
    other, _ = fit(db, reloaded, "from-load-weights", epochs=1)

    fresh, _ = fit(db, with_head(body_model(seed=3), seed=3), "fresh", epochs=1)

    store = Store(db)
    assert store.run(child)["started_from"] == {"run_id": parent, "epoch": best_epoch}
    assert store.run(other)["started_from"] == {"run_id": parent, "epoch": 1}
    assert store.run(parent)["started_from"] is None and store.run(fresh)["started_from"] is None

    down = json.loads(cli(db, "lineage", "parent", "--format", "json"))
    assert {(r["relation"], r["child_id"], r["epoch"], r["depth"]) for r in down} == {
        ("descendant", child, best_epoch, 1), ("descendant", other, 1, 1)}
    up = json.loads(cli(db, "lineage", "from-load-weights", "--format", "json"))
    assert [(r["relation"], r["parent_id"], r["epoch"], r["layers"]) for r in up] == [("ancestor", parent, 1, None)]
    shown = cli(db, "show", "from-load-model")
    assert f"parent ({parent[:8]}), epoch {best_epoch}" in shown
    table = cli(db, "lineage", "parent")
    assert "from-load-model" in table and "from-load-weights" in table and "descendant" in table


def test_a_grandchild_is_an_ancestor_two_generations_up(db, tmp_path):
    model = with_head(body_model())
    first, _ = fit(db, model, "first", epochs=1)
    first_file = str(tmp_path / "first.keras")
    model.save(first_file)  # after the fit: epoch 0's weights
    second_model = keras.saving.load_model(first_file)
    second, _ = fit(db, second_model, "second", epochs=1)
    second_model.save(str(tmp_path / "second.keras"))
    third, _ = fit(db, keras.saving.load_model(str(tmp_path / "second.keras")), "third", epochs=1)
    rows = Store(db).lineage("third")
    assert [(r.relation, r.depth, r.parent_id, r.child_id) for r in rows.itertuples()] == [
        ("ancestor", 1, second, third), ("ancestor", 2, first, second)]


def test_a_trained_sub_model_under_a_new_head_is_a_partial_start_naming_it(db):
    body = body_model()
    source_model = with_head(body)
    copies = th.WeightCopies()
    source, _ = fit(db, source_model, "pretrain", copies)
    positions = [[id(v) for v in source_model.weights].index(id(w)) for w in body.weights]
    assert th.same_weights(body.get_weights(), [copies.copies[EPOCHS - 1][i] for i in positions])

    tuned, _ = fit(db, with_head(body, seed=11), "new-head", epochs=1)  # the trained body, a new head

    keras.utils.set_random_seed(4)
    alone = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)], name="encoder")
    alone.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    alone_run, _ = fit(db, alone, "encoder-alone", epochs=1)  # the whole model of this run ...
    inputs = keras.Input((8,))
    wrapped = keras.Model(inputs, keras.layers.Dense(1)(alone(inputs)))  # ... becomes a sub-model
    wrapped.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    wrapped_run, _ = fit(db, wrapped, "encoder-wrapped", epochs=1)

    # Layers reused one by one, not as a sub-model: nothing is claimed.
    inputs = keras.Input((8,))
    loose = keras.Model(inputs, keras.layers.Dense(1)(body.layers[1](body.layers[0](inputs))))
    loose.compile(optimizer=keras.optimizers.SGD(0.01), loss="mean_squared_error")
    loose_run, _ = fit(db, loose, "loose-layers", epochs=1)

    store = Store(db)
    assert store.run(tuned)["started_from"] is None  # not the whole model
    rows = store.lineage(tuned)
    assert [(r.relation, r.parent_id, r.epoch, r.layers) for r in rows.itertuples()] == [
        ("ancestor", source, EPOCHS - 1, "body")]
    wrapped_rows = store.lineage(wrapped_run)
    assert [(r.parent_id, r.epoch, r.layers) for r in wrapped_rows.itertuples()] == [(alone_run, 0, "encoder")]
    assert len(store.lineage(loose_run)) == 0 and store.run(loose_run)["started_from"] is None


def test_a_run_in_the_trash_leaves_which_and_the_lineage_until_it_is_undeleted(db, tmp_path):
    model = with_head(body_model())
    parent, _ = fit(db, model, "trashed-parent", epochs=1)
    path = str(tmp_path / "parent.keras")
    model.save(path)
    child, _ = fit(db, keras.saving.load_model(path), "kept-child", epochs=1)
    store = Store(db)
    assert store.run(child)["started_from"] == {"run_id": parent, "epoch": 0}
    cli(db, "delete", parent)
    assert len(store.which(path)) == 0 and len(store.lineage(child)) == 0
    assert store.run(child)["started_from"] is None
    assert parent not in set(store.checkpoints()["run_id"])
    cli(db, "undelete", parent)
    assert [(r.run_id, r.epoch) for r in store.which(path).itertuples()] == [(parent, 0)]
    assert store.run(child)["started_from"] == {"run_id": parent, "epoch": 0}
    assert [r.parent_id for r in store.lineage(child).itertuples()] == [parent]
