"""Smoke-test the tracker against a real PostgreSQL server (not part of CI).

Runs the migrations, a tracked fit with the guide's stopper and
ReduceLROnPlateau, an evaluate and a predict, then the queries, a report and
``tracker db check`` logic, and compares the stored epochs with History.

    pip install "psycopg[binary]"
    python scripts/postgres_smoke.py postgresql+psycopg://USER:PASSWORD@127.0.0.1/DBNAME

Exit status 0 if every check holds. Last run here: PostgreSQL 15, psycopg 3, 2026-11-26.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(url: str) -> int:
    import keras
    import numpy as np

    from tracker import Store
    from tracker.callbacks import EarlyStoppingAtMinLoss
    from tracker.db.migrate import check_schema
    from tracker.reports import compare_runs, early_stopping_report
    from tracker.record.callback import TrackingCallback

    rng = np.random.default_rng(0)
    x = rng.random((64, 784)).astype("float32")
    y = rng.integers(0, 10, 64).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="mean_squared_error", metrics=["mean_absolute_error"])
    cb = TrackingCallback(url, run_name="postgres-smoke", params={"lr": 0.1}, tags={"db": "postgres"}, strict=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0)
    history = model.fit(x, y, batch_size=16, epochs=8, callbacks=[cb, EarlyStoppingAtMinLoss(patience=0), plateau], verbose=0)
    model.evaluate(x, y, callbacks=[cb], verbose=0)
    model.predict(x, callbacks=[cb], verbose=0)

    store = Store(url)
    checks = {
        "epochs equal History": list(store.epochs(cb.run_id)["loss"]) == history.history["loss"],
        "run finished": store.run(cb.run_id)["run"]["status"] == "finished",
        "sorted by best:loss": cb.run_id in list(store.runs(sort="best:loss")["run_id"]),
        "params filter": cb.run_id in list(store.runs(params={"lr": 0.1})["run_id"]),
        "stop recorded": len(store.early_stops(cb.run_id)) >= 1,
        "compare report": len(compare_runs(store, [cb.run_id])) == 1,
        "early-stopping report": cb.run_id in list(early_stopping_report(store)["run_id"]),
        "schema matches models": check_schema(store.engine, url) == [],
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
