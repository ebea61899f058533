"""Finding a model's optimizers and reading their learning rate and step.

Under mixed precision ``model.optimizer`` is a ``LossScaleOptimizer`` that
delegates its learning rate and step count to the optimizer it wraps; the
tracker watches that inner optimizer, which holds the rate (or schedule) and
is the one whose ``learning_rate`` setter a scheduler reaches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["find_optimizers", "unwrap", "read_lr", "iterations", "schedule_of", "rate_at", "moving_average_weights"]


def unwrap(optimizer: Any) -> Any:
    """Return the optimizer that holds the learning rate (inside loss scaling)."""
    seen = 0
    while getattr(optimizer, "inner_optimizer", None) is not None and seen < 8:
        optimizer = optimizer.inner_optimizer
        seen += 1
    return optimizer


def find_optimizers(model: Any) -> dict[str, Any]:
    """Return the model's optimizers by attribute name (``optimizer`` first), unwrapped.

    A model with several optimizers (a GAN's ``d_optimizer`` and
    ``g_optimizer``, say) keeps them as attributes; each gets its own series.
    """
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    found: dict[str, Any] = {}
    main = getattr(model, "optimizer", None)
    if isinstance(main, BaseOptimizer):
        found["optimizer"] = unwrap(main)
    for name, value in list(vars(model).items()):
        if isinstance(value, BaseOptimizer):
            inner = unwrap(value)
            if all(inner is not o for o in found.values()):
                found[name.lstrip("_")] = inner
    return found


def read_lr(optimizer: Any) -> float | None:
    """Return the optimizer's current learning rate as a Python float, or None if unreadable.

    Unreadable means the variables are detached (the JAX trainer detaches
    them during an epoch) or the optimizer is exotic.
    """
    try:
        return float(_numpy(optimizer.learning_rate))
    except Exception:  # noqa: BLE001
        return None


def _numpy(value: Any) -> Any:
    """A variable's or tensor's value as NumPy: ``.numpy()`` where it has one (cheaper than ``np.asarray`` on TensorFlow)."""
    numpy = getattr(value, "numpy", None)
    if numpy is not None:
        try:
            return numpy()
        except Exception:  # noqa: BLE001 - a torch tensor that requires grad, say
            pass
    return np.asarray(value)


def iterations(optimizer: Any) -> int | None:
    """Return the optimizer's step counter, the step its schedule is evaluated at, or None if unreadable.

    Keras counts every ``apply`` (every batch trained) in ``optimizer._iterations``
    and evaluates a ``LearningRateSchedule`` there. The public
    ``optimizer.iterations`` is the same count, except under
    ``gradient_accumulation_steps=G``, where it counts the updates
    (``_iterations // G``) while the schedule still sees every batch.
    """
    counter = getattr(optimizer, "_iterations", None)
    try:
        return int(_numpy(optimizer.iterations if counter is None else counter))
    except Exception:  # noqa: BLE001
        return None


def schedule_of(optimizer: Any) -> Any:
    """Return the optimizer's ``LearningRateSchedule``, or None for a plain rate."""
    from keras.src.optimizers.schedules.learning_rate_schedule import (
        LearningRateSchedule,
    )

    schedule = getattr(optimizer, "_learning_rate", None)
    return schedule if isinstance(schedule, LearningRateSchedule) else None


def rate_at(schedule: Any, step: int) -> float | None:
    """The rate ``schedule`` gives at global ``step``, computed as the optimizer does.

    The optimizer calls the schedule with its int64 step counter, one step
    at a time; so does this (a vectorised call can differ in the last bit).
    """
    import keras

    try:
        value = schedule(keras.ops.convert_to_tensor(np.int64(step), dtype="int64"))
        return float(np.asarray(keras.ops.convert_to_numpy(value)))
    except Exception:  # noqa: BLE001 - a schedule that fails off the training thread
        return None


def moving_average_weights(model: Any, optimizers: list[Any]) -> list[Any] | None:
    """``model.get_weights()`` with each variable an EMA optimizer averages replaced by its moving average.

    The weights the model would hold if the optimizers wrote their moving
    averages now (what Keras does at the end of ``fit``); None if no
    optimizer keeps averages yet. Copies, in ``model.get_weights()`` order.
    """
    averages: dict[int, Any] = {}
    for optimizer in optimizers:
        variables = getattr(optimizer, "_trainable_variables", None) or []
        moving = getattr(optimizer, "_model_variables_moving_average", None) or []
        for variable, average in zip(variables, moving):
            if average is not None:
                averages[id(variable)] = average
    if not averages:
        return None
    weights = []
    for variable in model.weights:
        average = averages.get(id(variable))
        weights.append(np.array(_numpy(variable if average is None else average)))
    return weights
