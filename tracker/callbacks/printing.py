"""A callback that prints the running loss and the mean absolute error."""

from __future__ import annotations

from typing import Any

import keras


class LossAndErrorPrintingCallback(keras.callbacks.Callback):
    """Print the average loss per batch and the loss and MAE per epoch.

    At the end of every train and test batch it prints the running average
    loss so far in the epoch (``logs["loss"]``); at the end of every training
    epoch it prints the epoch's loss and mean absolute error
    (``logs["mean_absolute_error"]``). The model must therefore be compiled
    with ``metrics=["mean_absolute_error"]``.

    Takes no arguments.

    Example:
        ```python
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
            loss="mean_squared_error",
            metrics=["mean_absolute_error"],
        )
        model.fit(x, y, batch_size=128, epochs=2, verbose=0,
                  callbacks=[LossAndErrorPrintingCallback()])
        # Up to batch 0, the average loss is   29.25.
        # ...
        # The average loss for epoch 0 is   16.84 and mean absolute error is ...
        ```
    """

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        print(
            "Up to batch {}, the average loss is {:7.2f}.".format(
                batch, logs["loss"]
            )
        )

    def on_test_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        print(
            "Up to batch {}, the average loss is {:7.2f}.".format(
                batch, logs["loss"]
            )
        )

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        print(
            "The average loss for epoch {} is {:7.2f} "
            "and mean absolute error is {:7.2f}.".format(
                epoch, logs["loss"], logs["mean_absolute_error"]
            )
        )
