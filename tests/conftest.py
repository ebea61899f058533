"""Shared helpers: the guide's tiny model, generated data, bit-level comparison."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import struct  # noqa: E402
import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def bits(x: float) -> int:
    """The IEEE-754 bit pattern of a float64 (tells NaN payloads and -0.0 apart)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def guide_model(learning_rate: float = 0.1, seed: int = 1, metrics=("mean_absolute_error",), **compile_kw):
    """The guide's model: Dense(1) on 784 inputs, RMSprop, MSE loss."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
        loss="mean_squared_error",
        metrics=list(metrics),
        **compile_kw,
    )
    return model


def guide_data(n: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype("float32")
    y = rng.integers(0, 10, n).astype("float32")
    return x, y


class WeightCopies(keras.callbacks.Callback):
    """Test-only: copies ``model.get_weights()`` at each epoch end (list it
    before any restorer, so it copies the weights as trained)."""

    def __init__(self):
        super().__init__()
        self.copies = {}

    def on_epoch_end(self, epoch, logs=None):
        self.copies[epoch] = [np.copy(w) for w in self.model.get_weights()]

    def epoch_of(self, weights):
        """The latest epoch whose end-of-epoch weights equal ``weights``."""
        same = [e for e, c in self.copies.items() if all(np.array_equal(a, b) for a, b in zip(c, weights))]
        return max(same) if same else None


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "runs.db")


@pytest.fixture
def data():
    return guide_data()


@pytest.fixture(autouse=True)
def _fail_on_tracking_warnings():
    """A tracking warning in a test that does not expect one is a bug."""
    with warnings.catch_warnings():
        try:
            from tracker.errors import TrackingWarning
        except ImportError:  # pragma: no cover
            yield
            return
        warnings.simplefilter("error", TrackingWarning)
        yield
