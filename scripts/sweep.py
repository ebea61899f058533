"""A 4-run learning-rate sweep of the guide's model on scikit-learn's digits, into one database.

Each run trains with ``ReduceLROnPlateau`` and ``EarlyStopping(restore_best_weights=True)``
on a validation split, then evaluates on the held-out digits. The CLI examples of the
README and of docs/ were printed from this database, and tests/test_docs.py builds it
this way to run them:

    python scripts/sweep.py sweep.db
    tracker --db sweep.db runs
    tracker --db sweep.db plot lr-0.001 lr-0.01 lr-0.1 lr-0.5 --out sweep.png

Needs the ``tensorflow`` and ``demo`` extras.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LEARNING_RATES = (0.001, 0.01, 0.1, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", nargs="?", default="sweep.db", help="Database file (default sweep.db).")
    parser.add_argument("--epochs", type=int, default=30, help="Epochs per run (default 30).")
    args = parser.parse_args()

    import keras

    from tracker import TrackingCallback
    from tracker.callbacks.demo import load_digits_784

    x_train, y_train, x_test, y_test = load_digits_784()
    for lr in LEARNING_RATES:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=lr), loss="mean_squared_error",
                      metrics=["mean_absolute_error"])
        tracking = TrackingCallback(args.db, run_name=f"lr-{lr:g}", params={"lr": lr, "batch_size": 64},
                                    tags={"sweep": "lr"})
        callbacks = [
            tracking,
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True),
        ]
        model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.2, verbose=0,
                  callbacks=callbacks)
        model.evaluate(x_test, y_test, batch_size=128, verbose=0, callbacks=[tracking])
        print(f"lr={lr:g}: run {tracking.run_id}")


if __name__ == "__main__":
    main()
