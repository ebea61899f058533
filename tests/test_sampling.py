"""log_batches=N: every N-th step plus the last batch of each epoch and of each evaluation."""

import keras
import pytest
from conftest import bits, guide_data, guide_model

from tracker import Store, TrackingCallback


class BatchSpy(keras.callbacks.Callback):
    """Test-only ground truth: every batch-end hook (async-safe, so Keras' dispatch is unchanged)."""

    async_safe = True

    def __init__(self):
        super().__init__()
        self.train, self.test = {}, []
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.train[(self._epoch, batch)] = dict(logs)

    def on_test_batch_end(self, batch, logs=None):
        self.test.append((batch, dict(logs)))


@pytest.mark.backend
@pytest.mark.parametrize("every", [1, 3, 4, 100])
def test_every_nth_step_and_the_last_batch_of_each_epoch_and_evaluation(db_path, every):
    db = db_path
    x, y = guide_data(n=88)  # 66 train samples / 8 = 9 batches an epoch, 22 validation samples = 3 batches
    spy = BatchSpy()
    cb = TrackingCallback(db, log_batches=every)
    guide_model().fit(x, y, batch_size=8, epochs=3, validation_split=0.25, callbacks=[cb, spy], verbose=0)
    per_epoch = 9
    expected = []
    for epoch in range(3):
        for batch in range(per_epoch):
            step = epoch * per_epoch + batch
            if (step + 1) % every == 0 or batch == per_epoch - 1:
                expected.append((epoch, batch))
    store = Store(db)
    stored = store.batches(cb.run_id)
    assert list(zip(stored["epoch"], stored["batch"])) == expected
    for (epoch, batch), (_, row) in zip(expected, stored.iterrows()):
        assert bits(row["loss"]) == bits(spy.train[(epoch, batch)]["loss"])
    validation = store.batches(cb.run_id, "validation")
    expected_val = [b for b in range(3) if (b + 1) % every == 0 or b == 2] * 3
    assert list(validation["batch"]) == expected_val
    # The phase still counts every batch, sampled or not.
    assert store.run(cb.run_id)["phases"]["batch_count"].tolist() == [27]


def test_log_batches_must_be_a_bool_or_a_positive_step_count(db_path):
    for bad in (0, -2, 1.5, "3"):
        with pytest.raises(ValueError, match="log_batches must be True, False or a positive number"):
            TrackingCallback(db_path, log_batches=bad)
    assert TrackingCallback(db_path, log_batches=False).log_batches is False
