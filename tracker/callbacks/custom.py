"""A callback that prints every hook Keras calls, with the log keys it got."""

from __future__ import annotations

from typing import Any

import keras


class CustomCallback(keras.callbacks.Callback):
    """Print a line for every training, evaluation and prediction hook.

    Useful to see when each method of a `keras.callbacks.Callback` is called
    and which keys the `logs` dict holds at that point: when fit, evaluate or
    predict begin and end, when each epoch begins and ends (training only),
    and when each train, test or predict batch begins and ends.

    Takes no arguments.

    Example:
        ```python
        model.fit(x, y, epochs=2, validation_split=0.5, verbose=0,
                  callbacks=[CustomCallback()])
        # Starting training; got log keys: []
        # Start epoch 0 of training; got log keys: []
        # ...Training: start of batch 0; got log keys: []
        # ...Training: end of batch 0; got log keys: ['loss', ...]
        # ...
        ```
    """

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Starting training; got log keys: {keys}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Stop training; got log keys: {keys}")

    def on_epoch_begin(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Start epoch {epoch} of training; got log keys: {keys}")

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"End epoch {epoch} of training; got log keys: {keys}")

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Start testing; got log keys: {keys}")

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Stop testing; got log keys: {keys}")

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Start predicting; got log keys: {keys}")

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"Stop predicting; got log keys: {keys}")

    def on_train_batch_begin(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Training: start of batch {batch}; got log keys: {keys}")

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Training: end of batch {batch}; got log keys: {keys}")

    def on_test_batch_begin(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Evaluating: start of batch {batch}; got log keys: {keys}")

    def on_test_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Evaluating: end of batch {batch}; got log keys: {keys}")

    def on_predict_batch_begin(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Predicting: start of batch {batch}; got log keys: {keys}")

    def on_predict_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        keys = list(logs.keys())
        print(f"...Predicting: end of batch {batch}; got log keys: {keys}")
