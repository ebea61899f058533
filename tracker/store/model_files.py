"""Reading the weights of a Keras model file with h5py and zipfile alone (no Keras, no backend).

``open_model_file`` tells the kind of file by its content, never by its
name, so a renamed copy reads the same:

* a ``.keras`` archive (a zip holding ``model.weights.h5``), or an unzipped
  one (a folder holding it): the Keras 3 layout;
* a Keras 3 weights file (``.weights.h5``: an HDF5 file with ``layers/`` or
  ``vars/`` at its root): the Keras 3 layout;
* a legacy ``.h5`` model (HDF5 with a ``model_weights`` group) or legacy
  weights file (HDF5 whose root names its ``layer_names``): the ``h5``
  layout, paths relative to that group.

A ``ModelFile`` lists its datasets (path, shape, dtype) without reading
them, and reads the arrays asked for (``arrays``). Anything else (a missing
path, another kind of file, a truncated archive) raises ``ModelFileError``
with one sentence.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracker.errors import ModelFileError
from tracker.status import LayoutFormat

__all__ = ["KERAS", "H5", "ModelFile", "open_model_file"]

KERAS, H5 = LayoutFormat.KERAS.value, LayoutFormat.H5.value
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_WEIGHTS_IN_ARCHIVE = "model.weights.h5"


@dataclass
class ModelFile:
    """An open model file: its layout format and its datasets, ``path -> (shape, dtype name)``."""

    path: str
    format: str
    datasets: dict[str, tuple[tuple[int, ...], str]]
    group: Any = field(repr=False)  # the h5py group the dataset paths are relative to
    handles: list[Any] = field(default_factory=list, repr=False)

    def arrays(self, paths: list[str], dtypes: list[str] | None = None) -> list[np.ndarray]:
        """The arrays at ``paths``, as NumPy arrays of the dtype they were saved with.

        bfloat16 is restored where the dataset says so (Keras 3 files) or where
        ``dtypes`` (the recorded layout's) says so of a 2-byte opaque dataset
        (the legacy ``.h5`` format writes bfloat16 without saying).
        """
        out = []
        for i, path in enumerate(paths):
            dataset = self.group[path]
            value = np.asarray(dataset[()])
            hinted = dtypes is not None and dtypes[i] == "bfloat16" and value.dtype.kind == "V"
            if hinted or dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
                import ml_dtypes  # a Keras dependency; needed only for bfloat16 weights

                value = value.view(ml_dtypes.bfloat16) if value.dtype.itemsize == 2 else value.astype(ml_dtypes.bfloat16)
            out.append(value)
        return out

    def close(self) -> None:
        """Close the HDF5 file and the archive."""
        for handle in reversed(self.handles):
            try:
                handle.close()
            except Exception:  # noqa: BLE001 - closing what may be a broken file
                pass

    def __enter__(self) -> ModelFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _datasets(group: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    import h5py

    found: dict[str, tuple[tuple[int, ...], str]] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            dtype = "bfloat16" if obj.attrs.get("dtype") in ("bfloat16", b"bfloat16") else obj.dtype.name
            found[name] = (tuple(int(d) for d in obj.shape), dtype)

    group.visititems(visit)
    return found


def _hdf5(path: str, source: Any, handles: list[Any]) -> ModelFile:
    import h5py

    h5 = h5py.File(source, "r")
    handles.append(h5)
    if "model_weights" in h5:
        group, fmt = h5["model_weights"], H5
    elif "layer_names" in h5.attrs:
        group, fmt = h5, H5
    elif "layers" in h5 or "vars" in h5:
        group, fmt = h5, KERAS
    else:
        raise ModelFileError(f"{path} is an HDF5 file but not a Keras model or weights file.")
    return ModelFile(path, fmt, _datasets(group), group, handles)


def open_model_file(path: str | os.PathLike[str]) -> ModelFile:
    """Open a model file for reading its weights (see the module docstring).

    Raises:
        ModelFileError: the path does not exist, is not a Keras model or
            weights file, or is corrupt (one sentence each).
    """
    shown = os.fspath(path)
    handles: list[Any] = []
    try:
        if os.path.isdir(shown):
            inner = os.path.join(shown, _WEIGHTS_IN_ARCHIVE)
            if not os.path.isfile(inner):
                raise ModelFileError(f"{shown} is a folder without {_WEIGHTS_IN_ARCHIVE}, not an unzipped .keras model.")
            return _hdf5(shown, inner, handles)
        with open(shown, "rb") as f:
            head = f.read(8)
        if head.startswith(_ZIP_MAGIC):
            archive = zipfile.ZipFile(shown)
            handles.append(archive)
            if _WEIGHTS_IN_ARCHIVE not in archive.namelist():
                raise ModelFileError(f"{shown} is a zip archive without {_WEIGHTS_IN_ARCHIVE}, not a .keras model.")
            data = io.BytesIO(archive.read(_WEIGHTS_IN_ARCHIVE))
            return _hdf5(shown, data, handles)
        if head == _HDF5_MAGIC:
            return _hdf5(shown, shown, handles)
        raise ModelFileError(f"{shown} is not a Keras model file (.keras, .weights.h5 or .h5).")
    except ModelFileError:
        for handle in handles:
            handle.close()
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{shown} does not exist.") from None
    except IsADirectoryError:
        raise ModelFileError(f"{shown} is a folder, not a model file.") from None
    except PermissionError:
        raise ModelFileError(f"{shown} cannot be read (permission denied).") from None
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError) as exc:
        for handle in handles:
            try:
                handle.close()
            except Exception:  # noqa: BLE001
                pass
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{shown} is corrupt or truncated and cannot be read ({reason[:120]}).") from None
