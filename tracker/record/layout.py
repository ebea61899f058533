"""Where a model keeps each weight in a saved file, and which sub-models it holds.

``tracker which`` reads a file's arrays with h5py alone (no Keras) and must
put them in the order of ``model.get_weights()`` to compute the fingerprint
the tracker recorded. That order is not written in the file, and the file's
paths cannot be derived from the model's config alone (Keras names nested
objects by attribute, ``layers/sequential/layers/dense_1``). So the tracker
asks Keras itself, once per fit:

* ``keras_layout``: Keras' own saving walk (``saving_lib``'s state walk, as
  ``model.save`` and ``save_weights`` run it) over a store that writes
  nothing and only notes which variable goes to which dataset path; the
  layout of a ``.weights.h5`` file and of the ``model.weights.h5`` inside a
  ``.keras`` archive;
* ``h5_layout``: the legacy ``.h5`` format's paths
  (``legacy_h5_format.save_weights_to_hdf5_group``: per layer of
  ``model.layers``, ``layer.name/variable.path``, in the legacy order,
  trainable first).

A layout is one ``[path, dtype, shape]`` per entry of ``model.weights``; a
format whose walk does not reach every weight (a layer that saves computed
values, as LoRA's merged kernel) has none, and ``which`` cannot identify that
model's files in that format.

``sub_models`` finds the models used as layers (transfer learning's base
model) and the positions of their weights in ``model.weights``.
"""

from __future__ import annotations

import logging
from typing import Any

from tracker.db.digest import layout_digest
from tracker.status import LayoutFormat

__all__ = ["KERAS", "H5", "keras_layout", "h5_layout", "layouts", "sub_models"]

logger = logging.getLogger(__name__)

KERAS, H5 = LayoutFormat.KERAS.value, LayoutFormat.H5.value


def _entry(path: str, variable: Any) -> list[Any]:
    from keras import backend

    return [path, backend.standardize_dtype(variable.dtype), [int(d) for d in variable.shape]]


def keras_layout(model: Any) -> list[list[Any]] | None:
    """The Keras 3 file layout of ``model.weights`` (see the module docstring), or None."""
    from keras.src.saving import saving_lib

    class PathsOnly(saving_lib.H5IOStore):
        """A weights store that writes nothing: it notes the dataset path of each variable."""

        def __init__(self) -> None:  # no file
            self.found: dict[int, str] = {}
            self.inner = ""

        def __bool__(self) -> bool:
            return True

        def make(self, path: str, metadata: Any = None) -> PathsOnly:
            self.inner = path
            return self

        def __setitem__(self, key: str, value: Any) -> None:
            self.found.setdefault(id(value), f"{self.inner}/vars/{key}" if self.inner else f"vars/{key}")

        def close(self) -> None:
            pass

    store = PathsOnly()
    # Keras' private walk on purpose: it is what decides the paths, and no public API exposes it.
    walk = getattr(saving_lib, "_save_state")
    walk(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    entries = []
    for variable in model.weights:
        path = store.found.get(id(variable))
        if path is None:
            return None
        entries.append(_entry(path, variable))
    return entries


def h5_layout(model: Any) -> list[list[Any]] | None:
    """The legacy ``.h5`` layout of ``model.weights``, paths relative to ``model_weights``, or None."""
    found: dict[int, str] = {}
    for layer in model.layers:
        for variable in list(layer.trainable_weights) + list(layer.non_trainable_weights):
            found.setdefault(id(variable), f"{layer.name}/{variable.path}")
    entries = []
    for variable in model.weights:
        path = found.get(id(variable)) or f"top_level_model_weights/{variable.path}"
        entries.append(_entry(path, variable))
    return entries


def layouts(model: Any) -> list[tuple[str, str, list[list[Any]]]]:
    """``(format, digest, entries)`` of each format whose layout is complete; nothing if Keras' walk fails."""
    out = []
    for fmt, compute in ((KERAS, keras_layout), (H5, h5_layout)):
        try:
            entries = compute(model)
        except Exception:  # noqa: BLE001 - a Keras internal changed: that format is not identifiable
            logger.debug("tracker: no %s weights layout for %s", fmt, getattr(model, "name", model), exc_info=True)
            entries = None
        if entries:
            out.append((fmt, layout_digest(entries), entries))
    return out


def sub_models(model: Any) -> dict[str, list[int]]:
    """The models used as layers inside ``model`` (at any depth), by layer path (``base/encoder``).

    Each maps to the positions of its weights in ``model.weights``, in the
    sub-model's own order: its fingerprint is then that of
    ``sub_model.get_weights()``. Sub-models without weights are left out.
    """
    import keras

    index = {id(v): i for i, v in enumerate(model.weights)}
    found: dict[str, list[int]] = {}

    def visit(owner: Any, prefix: str) -> None:
        for layer in getattr(owner, "layers", []):
            if isinstance(layer, keras.Model):
                path = f"{prefix}{layer.name}"
                positions = [index[id(v)] for v in layer.weights if id(v) in index]
                if positions and len(positions) == len(layer.weights):
                    found.setdefault(path, positions)
                visit(layer, f"{path}/")

    visit(model, "")
    return found
