"""A call that raises before the tracker's begin hook is recorded ``failed``, with its error.

Keras checks a call's arguments (and, on JAX, builds the loss) before it
builds the callback list and calls ``on_train_begin``: a bad loss name on
JAX, ``validation_split`` on a generator, an uncompiled model, data of a type
Keras does not know. The README promises ``failed`` when ``fit`` raised; a
sweep must not lose its configuration errors. These run on every backend
(``pytest.mark.backend``), with an explicit callback and under autolog.

Ground truth: the exception ``fit``/``evaluate``/``predict`` raised (caught by
the test) and ``model.name``, read with plain SQL.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import sql

import tracker
from tracker import TrackingCallback

pytestmark = pytest.mark.backend


@pytest.fixture(autouse=True)
def _autolog_off_afterwards():
    yield
    tracker.autolog(disable=True)


def data():
    rng = np.random.default_rng(0)
    return rng.random((32, 3)).astype("float32"), rng.random((32, 1)).astype("float32")


def model(loss="mean_squared_error", compiled=True):
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    if compiled:
        m.compile(optimizer="sgd", loss=loss)
    return m


def batches():
    x, y = data()
    while True:
        yield x[:8], y[:8]


# (method, the call) for calls that raise before any tracker hook on at least one backend.
CALLS = {
    "fit with an unknown loss": ("fit", lambda m, cbs: model("no_such_loss").fit(*data(), epochs=1, verbose=0,
                                                                                  **cbs)),
    "fit with validation_split on a generator": (
        "fit", lambda m, cbs: m.fit(batches(), steps_per_epoch=2, validation_split=0.25, epochs=1, verbose=0, **cbs)
    ),
    "fit before compile": ("fit", lambda m, cbs: model(compiled=False).fit(*data(), epochs=1, verbose=0, **cbs)),
    "evaluate on data Keras does not know": ("evaluate", lambda m, cbs: m.evaluate("nonsense", verbose=0, **cbs)),
    "predict on data Keras does not know": ("predict", lambda m, cbs: m.predict("nonsense", verbose=0, **cbs)),
}


def recorded(db):
    return sql(db, "SELECT name, status, error FROM runs")


@pytest.mark.parametrize("how", ["callback", "autolog"])
@pytest.mark.parametrize("case", list(CALLS))
def test_a_call_that_raises_before_it_begins_is_recorded_failed(db, case, how):
    method, call = CALLS[case]
    m = model()
    if how == "autolog":
        tracker.autolog(db)
        kwargs = {}
    else:
        kwargs = {"callbacks": [TrackingCallback(db, run_name=case)]}
    with pytest.raises(Exception) as raised:
        call(m, kwargs)
    error = f"{type(raised.value).__name__}: {raised.value}"
    [(name, status, stored_error)] = recorded(db)
    assert (status, stored_error) == ("failed", error)
    if how == "callback":
        assert name == case
    kinds = sql(db, "SELECT kind, status, error FROM phases ORDER BY seq")
    assert kinds == [({"fit": "fit", "evaluate": "evaluate", "predict": "predict"}[method], "failed", error)]


def test_the_run_is_named_after_the_model_that_raised(db):
    m = model(compiled=False)
    with pytest.raises(ValueError):
        m.fit(*data(), epochs=1, verbose=0, callbacks=[TrackingCallback(db)])
    assert [name for name, _, _ in recorded(db)] == [m.name]


@pytest.mark.parametrize("how", ["callback", "autolog"])
def test_an_evaluate_that_raises_before_it_begins_joins_the_fitted_run_as_failed(db, how):
    x, y = data()
    m = model()
    if how == "autolog":
        tracker.autolog(db)
        kwargs = {}
    else:
        kwargs = {"callbacks": [TrackingCallback(db, run_name="fitted")]}
    m.fit(x, y, epochs=2, verbose=0, **kwargs)
    with pytest.raises(ValueError) as raised:
        m.evaluate("nonsense", verbose=0, **kwargs)
    error = f"{type(raised.value).__name__}: {raised.value}"
    [(_, status, stored_error)] = recorded(db)
    assert (status, stored_error) == ("failed", error)
    assert sql(db, "SELECT kind, status FROM phases WHERE kind != 'validation' ORDER BY seq") == [
        ("fit", "finished"), ("evaluate", "failed")
    ]
    assert sql(db, "SELECT count(*) FROM epochs") == [(2,)]
