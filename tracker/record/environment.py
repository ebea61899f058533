"""What a run records about its surroundings: host, versions, model, optimizer.

Everything here reads objects Keras hands the callback; nothing imports
TensorFlow. Values are made JSON-safe (non-finite floats become strings,
unknown objects their ``repr``) because configs go into JSON columns.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

from tracker.db.engine import host_name

__all__ = ["jsonable", "environment", "hooks_may_run_concurrently", "model_info", "optimizer_config", "output_shapes"]


def jsonable(obj: Any) -> Any:
    """Return ``obj`` as plain JSON data (dicts, lists, str, finite numbers, None)."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    try:
        json.dumps(obj)
    except (TypeError, ValueError):
        return repr(obj)
    return obj


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Return host, pid and library versions of this process."""
    return {"host": host_name(), "pid": os.getpid(), "versions": dict(_versions())}


@lru_cache(maxsize=1)
def _versions() -> dict[str, Any]:
    # Looking up distributions costs milliseconds; versions don't change
    # within a process, so look them up once.
    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "tracker": _version("keras-run-tracker"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "sqlalchemy": _version("sqlalchemy"),
        "alembic": _version("alembic"),
    }
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            versions["backend"] = keras.backend.backend()
        except Exception:  # pragma: no cover - defensive
            versions["backend"] = None
    for module, dist in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", None) or _version(dist)
    return versions


def model_info(model: Any) -> dict[str, Any] | None:
    """Return the model's name, config and parameter counts, or None if unbuilt."""
    if model is None or not getattr(model, "built", False):
        return None
    try:
        config = jsonable(model.get_config())
    except Exception:  # subclassed models may not implement get_config
        config = None
    total = int(model.count_params())
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    return {
        "model_name": getattr(model, "name", None),
        "model_config": config,
        "param_count": total,
        "trainable_param_count": trainable,
        "non_trainable_param_count": total - trainable,
    }


def optimizer_config(model: Any) -> dict[str, Any] | None:
    """Return the optimizer's class and config, or None if there is none."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        config = optimizer.get_config()
    except Exception:
        config = {}
    return {"class_name": type(optimizer).__name__, "config": jsonable(config)}


def output_shapes(logs: dict[str, Any]) -> dict[str, list[int]]:
    """Return the shape of every array in predict batch logs, by key path."""
    shapes: dict[str, list[int]] = {}

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{path}/{key}" if path else str(key), item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{path}/{index}" if path else str(index), item)
        elif hasattr(value, "shape"):
            shapes[path] = [int(d) for d in value.shape]

    walk("", logs)
    return shapes


def hooks_may_run_concurrently() -> bool:
    """True unless Keras' backend runs batch hooks one at a time on the training thread (TensorFlow)."""
    try:
        from keras.src import backend

        return bool(getattr(backend, "IS_THREAD_SAFE", True))
    except Exception:  # noqa: BLE001 - assume the worst: keep the lock
        return True
