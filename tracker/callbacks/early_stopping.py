"""Early stopping at the minimum training loss, restoring the best weights."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import keras
import numpy as np


class EarlyStoppingAtMinLoss(keras.callbacks.Callback):
    """Stop training when the loss is at its min, i.e. it stops decreasing.

    Monitors ``logs["loss"]`` (``monitor = "loss"``, ``mode = "min"``) at the
    end of every epoch. Each strict decrease (``np.less(current, best)``)
    records the weights (``model.get_weights()``), the epoch (`best_epoch`)
    and resets `wait`. Otherwise `wait` is incremented; once
    ``wait >= patience`` training is stopped (`stopped_epoch` is set,
    ``model.stop_training = True``) and the weights of the best epoch are
    restored right away with ``model.set_weights``. Note that ``patience=0``
    and ``patience=1`` both stop at the first epoch without improvement.

    If ``"loss"`` is missing from the logs, a warning listing the available
    keys is emitted and the epoch is ignored. State (`wait`, `stopped_epoch`,
    `best`, `best_epoch`, `best_weights`) is reset at the start of each fit;
    `best_epoch` is ``-1`` until an epoch improves on ``inf``.

    Args:
        patience: Number of epochs to wait after the minimum has been hit.
            After this number of epochs with no improvement, training stops.
            Must be a non-negative integer. Defaults to `0`.

    Example:
        ```python
        model.fit(x, y, epochs=30, verbose=0,
                  callbacks=[EarlyStoppingAtMinLoss(patience=2)])
        # Restoring model weights from the end of the best epoch.
        # Epoch 00012: early stopping
        ```
    """

    monitor: str = "loss"
    mode: str = "min"
    patience: int

    def __init__(self, patience: int = 0) -> None:
        super().__init__()
        if (
            isinstance(patience, bool)
            or not isinstance(patience, numbers.Integral)
            or patience < 0
        ):
            raise ValueError(
                f"`patience` must be a non-negative integer. Got: {patience!r}"
            )
        self.patience = int(patience)
        self._reset()

    def _reset(self) -> None:
        # Number of epochs waited since the loss was last at its minimum.
        self.wait = 0
        # The epoch training stopped at (0 if it never stopped early).
        self.stopped_epoch = 0
        # The best loss so far, and the epoch it was reached at.
        self.best = np.inf
        self.best_epoch = -1
        # The weights at which the minimum loss occurred.
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # Allow instances to be re-used across `model.fit()` calls.
        self._reset()

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which "
                "is not available. Available metrics are: "
                f"{','.join(logs.keys())}",
                stacklevel=2,
            )
            return
        if np.less(current, self.best):
            self.best = current
            self.best_epoch = epoch
            self.wait = 0
            # Record the best weights since the current result is better.
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                if self.best_weights is not None:
                    print(
                        "Restoring model weights from the end of the best "
                        "epoch."
                    )
                    self.model.set_weights(self.best_weights)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0:
            print("Epoch %05d: early stopping" % (self.stopped_epoch + 1))
