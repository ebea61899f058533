"""A learning-rate scheduler callback and the guide's example schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


class CustomLearningRateScheduler(keras.callbacks.Callback):
    """Learning rate scheduler setting the learning rate according to schedule.

    At the beginning of every epoch the current learning rate is read from
    ``model.optimizer.learning_rate``, passed with the epoch index to
    `schedule`, and the result is assigned back to
    ``optimizer.learning_rate`` before the epoch's first batch.

    The optimizer must have been created with a float learning rate: if its
    ``learning_rate`` is a `keras.optimizers.schedules.LearningRateSchedule`
    it cannot be set and a `ValueError` is raised.

    Args:
        schedule: A function that takes an epoch index (integer, indexed
            from 0) and the current learning rate (float) as inputs and
            returns a new learning rate as output (float). Required, no
            default.

    Example:
        ```python
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
                      loss="mean_squared_error")
        model.fit(x, y, epochs=15, verbose=0,
                  callbacks=[CustomLearningRateScheduler(lr_schedule)])
        #
        # Epoch 00000: Learning rate is 0.1000.
        # ...
        # Epoch 00003: Learning rate is 0.0500.
        ```
    """

    def __init__(self, schedule: Callable[[int, float], float]) -> None:
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        optimizer: Any = getattr(self.model, "optimizer", None)
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        # Get the current learning rate from the model's optimizer.
        lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        # Call the schedule function to get the scheduled learning rate.
        scheduled_lr = self.schedule(epoch, lr)
        try:
            scheduled_lr = float(keras.ops.convert_to_numpy(scheduled_lr))
        except (TypeError, ValueError) as err:
            raise ValueError(
                "The output of the `schedule` function should be a float. "
                f"Got: {scheduled_lr!r}"
            ) from err
        # Set the value back to the optimizer before this epoch starts.
        try:
            optimizer.learning_rate = scheduled_lr
        except TypeError as err:
            raise ValueError(
                "CustomLearningRateScheduler cannot set the learning rate: the "
                "optimizer's `learning_rate` is a LearningRateSchedule, which "
                "is not settable. Create the optimizer with a float "
                "`learning_rate` to use this callback."
            ) from err
        print("\nEpoch %05d: Learning rate is %6.4f." % (epoch, scheduled_lr))


# (epoch to start, learning rate) tuples
LR_SCHEDULE: list[tuple[int, float]] = [
    (3, 0.05),
    (6, 0.01),
    (9, 0.005),
    (12, 0.001),
]


def lr_schedule(epoch: int, lr: float) -> float:
    """Helper function to retrieve the scheduled learning rate based on epoch.

    Returns the learning rate of the `LR_SCHEDULE` entry starting at `epoch`,
    or `lr` unchanged if no entry starts at that epoch.

    Args:
        epoch: Epoch index, counted from 0.
        lr: The current learning rate, returned when `epoch` is not a key.

    Returns:
        The learning rate to train epoch `epoch` with.

    Example:
        >>> lr_schedule(3, 0.1)
        0.05
        >>> lr_schedule(4, 0.05)
        0.05
    """
    if epoch < LR_SCHEDULE[0][0] or epoch > LR_SCHEDULE[-1][0]:
        return lr
    for start_epoch, scheduled_lr in LR_SCHEDULE:
        if epoch == start_epoch:
            return scheduled_lr
    return lr
