"""Keras callbacks ported from the guide "Writing your own callbacks".

The four example callbacks of the Keras guide, rewritten for Keras 3 and
NumPy 2 (no ``np.Inf``, no ``optimizer.lr``, no ``keras.backend.set_value``):

* `CustomCallback`: prints every hook that fit/evaluate/predict calls.
* `LossAndErrorPrintingCallback`: prints loss / mean absolute error.
* `EarlyStoppingAtMinLoss`: stops when the training loss stops decreasing and
  restores the best weights.
* `CustomLearningRateScheduler`: sets the learning rate at each epoch from a
  ``schedule(epoch, lr)`` function such as `lr_schedule`.

``tracker.callbacks.demo`` trains the guide's model with them on scikit-learn's
digits (``tracker demo``); it is not imported here.
"""

from tracker.callbacks.custom import CustomCallback
from tracker.callbacks.early_stopping import EarlyStoppingAtMinLoss
from tracker.callbacks.lr_scheduler import (
    LR_SCHEDULE,
    CustomLearningRateScheduler,
    lr_schedule,
)
from tracker.callbacks.printing import LossAndErrorPrintingCallback

__all__ = [
    "CustomCallback",
    "LossAndErrorPrintingCallback",
    "EarlyStoppingAtMinLoss",
    "CustomLearningRateScheduler",
    "LR_SCHEDULE",
    "lr_schedule",
]
