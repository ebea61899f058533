"""The demo: the guide's model and callbacks on real data that ships offline.

The guide trains ``Dense(1)`` on 784 MNIST pixels. MNIST needs a download,
so the demo uses scikit-learn's bundled 8x8 digits, each pixel scaled up 3x
and padded to 28x28 (784 inputs), with the digit as the regression target,
as in the guide (MSE loss, MAE metric, RMSprop(0.1)).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["load_digits_784", "get_model", "run_demo"]


def load_digits_784() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)``: 1,000 + the remaining 797 digits.

    Raises:
        ImportError: scikit-learn is missing (install the ``demo`` extra).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "The demo needs scikit-learn: pip install -e '.[tensorflow,demo]'."
        ) from exc
    digits = load_digits()
    images = digits.images.astype("float32") / 16.0  # (1797, 8, 8) in [0, 1]
    big = np.kron(images, np.ones((1, 3, 3), dtype="float32"))  # (1797, 24, 24)
    padded = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # (1797, 28, 28)
    x = padded.reshape(-1, 784)
    y = digits.target.astype("float32")
    return x[:1000], y[:1000], x[1000:], y[1000:]


def get_model() -> Any:
    """Return the guide's model, compiled as the guide compiles it."""
    import keras

    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def run_demo(db: str, *, epochs: int = 15, verbose: int = 0) -> list[str]:
    """Train the guide's two examples with the tracker; return their run ids.

    Run 1 is the guide's early-stopping example (``EarlyStoppingAtMinLoss``,
    patience 2, with a validation split), followed by an evaluate and a
    predict on the held-out digits. Run 2 is the guide's
    learning-rate example (``CustomLearningRateScheduler(lr_schedule)``).
    Both belong to the experiment ``guide``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from tracker.callbacks import (
        CustomLearningRateScheduler,
        EarlyStoppingAtMinLoss,
        lr_schedule,
    )
    from tracker.db.engine import dispose_engines, resolve_url
    from tracker.record.callback import TrackingCallback

    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load_digits_784()
    run_ids = []

    model = get_model()
    tracking = TrackingCallback(
        db,
        run_name="demo-early-stopping",
        params={"batch_size": 64, "epochs": epochs, "patience": 2},
        tags={"guide": "EarlyStoppingAtMinLoss"},
        experiment="guide",
    )
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=epochs,
        validation_split=0.2,
        verbose=verbose,
        callbacks=[tracking, EarlyStoppingAtMinLoss(patience=2)],
    )
    model.evaluate(x_test, y_test, batch_size=128, verbose=verbose, callbacks=[tracking])
    model.predict(x_test, batch_size=128, verbose=verbose, callbacks=[tracking])
    run_ids.append(tracking.run_id)
    trackers = [tracking]

    model = get_model()
    tracking = TrackingCallback(
        db,
        run_name="demo-lr-schedule",
        params={"batch_size": 64, "epochs": epochs},
        tags={"guide": "CustomLearningRateScheduler"},
        experiment="guide",
    )
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=epochs,
        verbose=verbose,
        callbacks=[tracking, CustomLearningRateScheduler(lr_schedule)],
    )
    run_ids.append(tracking.run_id)
    trackers.append(tracking)
    for callback in trackers:
        callback.close()
    # Close the demo's connections: the last one to close folds the
    # write-ahead log into the file, which alone then holds both runs.
    dispose_engines(resolve_url(db))
    return run_ids

