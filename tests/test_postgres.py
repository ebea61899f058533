"""The team server: PostgreSQL roles, masked passwords, server faults, many hosts, db copy.

Every test here runs against the real PostgreSQL server of the test machine
(see conftest.PgServer); what only exists on SQLite is tested in test_faults.
"""

import logging
import os
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql

import tracker
from tracker import Store, TrackingCallback, TrackingWriteError
from tracker.cli import main

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SECRET = "s3cret-Pa55"


def record(url, name="team", epochs=3, extra=(), **kwargs):
    x, y = guide_data(n=64)
    cb = TrackingCallback(url, run_name=name, **kwargs)
    model = guide_model()
    history = model.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, callbacks=[cb, *extra], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    return cb, history


@pytest.fixture
def server_db(request, pg_server):
    url = pg_server.new()
    request.addfinalizer(lambda: pg_server.drop(url))
    return url


@pytest.fixture
def roles(server_db, pg_server):
    """The writer and reader roles of ``tracker db grant``, applied by the owner, as URLs with a password."""
    reader, writer = f"{pg_server.prefix}_reader", f"{pg_server.prefix}_writer"
    result = CliRunner().invoke(main, ["db", "grant", "--db", server_db, "--reader", reader, "--writer", writer, "--apply"])
    assert result.exit_code == 0, result.output
    return pg_server.url_as(server_db, writer, SECRET), pg_server.url_as(server_db, reader, SECRET)


def test_grant_prints_the_sql_of_two_roles_without_any_password(server_db):
    result = CliRunner().invoke(main, ["db", "grant", "--db", server_db])
    assert result.exit_code == 0
    assert "GRANT SELECT ON ALL TABLES IN SCHEMA public TO tracker_reader;" in result.output
    assert "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO tracker_writer;" in result.output
    assert "PASSWORD" not in result.output.upper()
    on_sqlite = CliRunner().invoke(main, ["db", "grant", "--db", "x.db"])
    assert on_sqlite.exit_code == 1 and "file permissions" in on_sqlite.output and "Traceback" not in on_sqlite.output


def test_the_writer_role_records_a_run_and_the_reader_reads_it_with_every_command(roles, tmp_path):
    writer, reader = roles
    cb, history = record(writer)
    store = Store(reader)
    assert list(store.epochs(cb.run_id)["loss"]) == history.history["loss"]
    commands = [
        ["runs"], ["runs", "--sort", "best:val_loss"], ["show", "team"], ["epochs", "team"], ["batches", "team"],
        ["lr", "team"], ["early-stops"], ["restores"], ["compare", "team"],
        ["export", "compare", "--out", str(tmp_path / "c.json")], ["plot", "team", "--out", str(tmp_path / "p.png")],
        ["db", "current"],
    ]
    for args in commands:
        result = CliRunner().invoke(main, ["--db", reader, *args])
        assert result.exit_code == 0, (args, result.output)
        assert SECRET not in result.output


def test_the_reader_role_gets_one_clear_warning_and_training_goes_on(roles):
    _, reader = roles
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb, history = record(reader, name="read-only")
    messages = [str(w.message) for w in caught if issubclass(w.category, tracker.TrackingWarning)]
    assert len(history.history["loss"]) == 3
    assert any("may only read" in m and "tracker db grant" in m for m in messages), messages
    assert all(SECRET not in m for m in messages)
    assert len({m for m in messages if "may only read" in m}) == 1  # once, not per flush


def test_the_reader_role_with_strict_raises(roles):
    _, reader = roles
    with pytest.raises(TrackingWriteError, match="may only read"):
        record(reader, name="strict", strict=True)


@pytest.mark.parametrize("statement", [
    "CREATE TABLE intruder (id integer)",
    "ALTER TABLE runs ADD COLUMN intruder integer",
    "DROP TABLE run_metrics",
    "DELETE FROM runs",
])
def test_neither_role_can_change_the_schema(roles, statement):
    for url in roles:
        role_is_writer = url == roles[0]
        if statement == "DELETE FROM runs" and not role_is_writer:
            continue  # covered below for the reader
        with pytest.raises(Exception, match="permission denied|must be owner"):
            sql(url, statement)
    with pytest.raises(Exception, match="permission denied"):
        sql(roles[1], "DELETE FROM runs")


def test_passwords_never_appear_in_messages_warnings_or_logs(server_db, pg_server, caplog):
    wrong = pg_server.url_as(server_db, "nobody_at_all", SECRET)
    caplog.set_level(logging.DEBUG, logger="tracker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record(wrong, name="nobody")
    shown = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert shown and all(SECRET not in m for m in shown)
    assert any("***" in m for m in shown)
    for args in (["runs"], ["show", "nope"], ["db", "current"], ["db", "upgrade"]):
        result = CliRunner().invoke(main, ["--db", wrong, *args])
        assert result.exit_code == 1 and SECRET not in result.output and "Traceback" not in result.output
    bad = CliRunner().invoke(main, ["--db", f"postgresql+psycopg://u:{SECRET}@127.0.0.1:99999/x", "runs"])
    assert SECRET not in bad.output and "Traceback" not in bad.output


class RestartServerAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"], check=True,
                           capture_output=True)


def test_a_server_restart_in_the_middle_of_a_fit_loses_nothing(server_db):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        cb, history = record(server_db, name="restarted", epochs=5, extra=[RestartServerAfterEpoch(1)])
    cb.close()
    store = Store(server_db)
    epochs = store.epochs(cb.run_id)
    assert list(epochs["epoch"]) == [0, 1, 2, 3, 4]
    for key, values in history.history.items():
        assert list(epochs[key]) == values, key
    assert len(store.batches(cb.run_id)) == 5 * 3  # 48 samples / 16, every batch
    assert store.runs()["status"].tolist() == ["finished"] and len(store.evaluations(cb.run_id)) == 1


class CreateDatabaseAfterEpoch(keras.callbacks.Callback):
    def __init__(self, server, name, epoch):
        super().__init__()
        self.server, self.name, self.epoch = server, name, epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.server._execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.server.template()}"')


def test_a_server_unreachable_at_construction_warns_once_and_writes_later(pg_server, request):
    name = f"{pg_server.prefix}_late"
    url = pg_server._url(name)
    request.addfinalizer(lambda: pg_server.drop(url))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb, history = record(url, name="late", extra=[CreateDatabaseAfterEpoch(pg_server, name, 0)])
    cb.close()
    messages = [str(w.message) for w in caught if issubclass(w.category, tracker.TrackingWarning)]
    assert any("retries" in m or "retrying" in m for m in messages), messages
    assert list(Store(url).epochs(cb.run_id)["loss"]) == history.history["loss"]


def test_two_processes_migrating_an_empty_database_at_once_both_succeed(pg_server, request):
    url = pg_server.new(migrated=False)
    request.addfinalizer(lambda: pg_server.drop(url))
    code = "import sys; from tracker.db.migrate import open_database; open_database(sys.argv[1]); print('OK')"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-1500:] for o in outputs]
    assert all(o[0].strip() == "OK" for o in outputs)
    from tracker.db.migrate import HEAD_REVISION

    assert sql(url, "SELECT version_num FROM tracker_schema_version") == [(HEAD_REVISION,)]


def test_a_lock_held_on_the_server_does_not_stall_training(server_db):
    cb = TrackingCallback(server_db, run_name="locked")
    x, y = guide_data(n=64)
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # the run row exists
    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, psycopg\n"
         "url = sys.argv[1].replace('postgresql+psycopg', 'postgresql')\n"
         "c = psycopg.connect(url)\n"
         "c.execute('SELECT * FROM runs FOR UPDATE')\n"
         "print('locked', flush=True)\n"
         "time.sleep(25)\n",
         server_db],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            history = model.fit(x, y, batch_size=16, epochs=3, callbacks=[cb], verbose=0)
        assert locker.poll() is None, "training waited for the other connection's lock"
    finally:
        locker.kill()
        locker.wait()
        locker.stdout.close()
    cb.close()
    epochs = Store(server_db).epochs(cb.run_id)
    assert list(epochs[epochs["phase_seq"] == 1]["loss"]) == history.history["loss"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_run_on_another_host_with_a_stale_heartbeat_shows_crashed(request, tmp_path, backend):
    from conftest import fresh_db

    db = fresh_db(request, tmp_path, backend)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TRACKER_HOST="another-host")
    job = subprocess.Popen([sys.executable, str(SCRIPTS / "train_forever.py"), db, "elsewhere"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if sql(db, "SELECT count(*) FROM epochs")[0][0] >= 1:
                    break
            except Exception:  # noqa: BLE001 - the job has not created the tables yet
                pass
            assert job.poll() is None, job.stderr.read()[-2000:]
            time.sleep(0.05)
        assert Store(db, heartbeat_timeout=60).runs()["status"].tolist() == ["running"]
        assert sql(db, "SELECT host FROM runs") == [("another-host",)]
    finally:
        job.kill()
        job.wait()
    beat = sql(db, "SELECT heartbeat_at FROM runs")[0][0]
    assert beat is not None
    # Another host: the pid means nothing here; only the heartbeat's age decides.
    assert Store(db, heartbeat_timeout=3600).runs()["status"].tolist() == ["running"]
    assert Store(db, heartbeat_timeout=0).runs()["status"].tolist() == ["crashed"]  # any age is too old


def exact_content(db):
    """Everything a database holds about its runs, in a form that compares bit for bit."""
    from conftest import bits

    store = Store(db)

    def cells(frame, skip=()):
        out = []
        for row in frame.drop(columns=[c for c in skip if c in frame]).itertuples(index=False):
            out.append(tuple("<NA>" if v is None or v is pd.NA else
                             (("f", bits(float(v))) if isinstance(v, float) else str(v)) for v in row))
        return out

    content = {}
    for run_id in store.runs()["run_id"]:
        content[run_id] = {
            "run": {k: str(v) for k, v in store.run(run_id)["run"].items() if k not in ("id",)},
            "params": store.params(run_id),
            "tags": store.tags(run_id),
            "epochs": cells(store.epochs(run_id, attempts=True)),
            "batches": {p: cells(store.batches(run_id, p)) for p in ("fit", "validation", "evaluate", "predict")},
            "evaluations": cells(store.evaluations(run_id)),
            "lr": cells(store.lr_series(run_id), ["run_id"]) + cells(store.lr_changes(run_id), ["run_id"]),
            "stops": cells(store.early_stops(run_id), ["run_id"]),
            "stopper_states": cells(store.stopper_states(run_id), ["run_id"]),
            "restores": cells(store.restores(run_id), ["run_id"]),
            "metrics": cells(store.metrics(run_id)),
        }
    return content


class OddLogs(keras.callbacks.Callback):
    """Puts values into the logs that only a bit-exact copy keeps: NaN payloads, -0.0, huge ints, text."""

    NAN_PAYLOAD = struct.unpack("<d", struct.pack("<q", 0x7FF8000000000ABC))[0]

    def on_train_batch_end(self, batch, logs=None):
        logs.update(neg_zero=-0.0, big=2**70 + 1, word="naïve\x00nul", nan_payload=self.NAN_PAYLOAD)

    def on_epoch_end(self, epoch, logs=None):
        logs.update(neg_zero=-0.0, inf=float("-inf"), big=-(2**64), word="=1+1", none=None)


def test_db_copy_round_trips_sqlite_to_postgresql_to_sqlite_bit_for_bit(tmp_path, server_db):
    laptop, back = str(tmp_path / "laptop.db"), str(tmp_path / "back.db")
    record(laptop, name="odd", extra=[OddLogs(), keras.callbacks.EarlyStopping(monitor="loss", patience=0,
                                                                              restore_best_weights=True)])
    record(laptop, name="plain", params={"lr": 0.1}, tags={"who": "ü"})
    runner = CliRunner()
    first = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", server_db])
    assert first.exit_code == 0, first.output
    assert "2 copied" in first.output
    second = runner.invoke(main, ["db", "copy", "--from", server_db, "--to", back])
    assert second.exit_code == 0, second.output
    original = exact_content(laptop)
    assert exact_content(server_db) == original
    assert exact_content(back) == original
    assert len(original[Store(laptop).resolve("odd")]["stopper_states"]) > 0
    # Every table that holds a run's rows is copied: the same row counts on both sides.
    from tracker.db.tables import Base

    shared = {"keys", "keysets", "experiments", "tracker_schema_version"}
    for name in sorted(set(Base.metadata.tables) - shared):
        assert sql(back, f"SELECT count(*) FROM {name}") == sql(laptop, f"SELECT count(*) FROM {name}"), name
    again = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", server_db])
    assert "0 copied, 0 completed, 2 already there" in again.output
    assert sql(server_db, "SELECT count(*) FROM runs") == [(2,)]


def test_db_copy_completes_a_run_copied_while_it_was_running_and_never_duplicates(tmp_path, server_db):
    laptop = str(tmp_path / "laptop.db")
    x, y = guide_data(n=64)
    cb = TrackingCallback(laptop, run_name="growing")
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)
    assert "1 copied" in CliRunner().invoke(main, ["db", "copy", "--from", laptop, "--to", server_db]).output
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)  # the run goes on at the source
    result = CliRunner().invoke(main, ["db", "copy", "--from", laptop, "--to", server_db, "--runs", "growing"])
    assert "1 completed" in result.output, result.output
    assert exact_content(server_db) == exact_content(laptop)
    assert sql(server_db, "SELECT count(*) FROM phases WHERE kind = 'evaluate'") == [(1,)]
    # A destination that holds more than the source (continued there) is left alone.
    older = str(tmp_path / "older.db")
    CliRunner().invoke(main, ["db", "copy", "--from", server_db, "--to", older])
    sql(older, "DELETE FROM phases WHERE kind = 'evaluate'")
    kept = CliRunner().invoke(main, ["db", "copy", "--from", older, "--to", server_db])
    assert "left alone" in kept.output and sql(server_db, "SELECT count(*) FROM phases WHERE kind = 'evaluate'") == [(1,)]


WRITER_JOB = r"""
import sys, time
from datetime import datetime
from tracker.db.writes import BatchRecord, EndPhase, InsertEpoch, InsertPhase, InsertRun
from tracker.record.ledger import PhaseHandle
from tracker.record.writer import Writer
from tracker.status import PhaseKind, Status
url, n, batches, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
run_id = f"{n:032x}"
w = Writer(url, run_id=run_id, flush_every=64, flush_interval=0.1)
w.submit(InsertRun({"id": run_id, "name": f"writer-{n}", "status": Status.RUNNING, "started_at": datetime.now()}, {}, {}))
phase = PhaseHandle(kind=PhaseKind.FIT, seq=0, t0=time.perf_counter())
w.submit(InsertPhase(run_id, phase, {"run_id": run_id, "seq": 0, "kind": PhaseKind.FIT, "status": Status.RUNNING, "started_at": datetime.now()}))
w.start()
step = 0
for epoch in range(epochs):
    for b in range(batches):
        w.add_batch(BatchRecord(phase, step, epoch, b, 0.001 * step, {"loss": 1.0 / (step + 1), "mae": float(n)}))
        step += 1
    w.submit(InsertEpoch(run_id, phase, epoch, None, datetime.now(), None, {"loss": 1.0 / (epoch + 1)}))
    w.flush()
w.submit(EndPhase(phase, {"status": Status.FINISHED, "ended_at": datetime.now(), "batch_count": step}, None))
w.stop()
assert w.close(), w.unwritten()
print("OK", w.unwritten())
"""


def test_sixteen_concurrent_writers_on_one_server_lose_nothing(server_db):
    n_batches, n_epochs = 300, 3
    env = dict(os.environ, PYTHONWARNINGS="always")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_JOB, server_db, str(i), str(n_batches), str(n_epochs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(16)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, [o[1][-800:] for o in outputs]
    assert all(o[0].strip() == "OK None" and "TrackingWarning" not in o[1] for o in outputs), outputs
    assert sql(server_db, "SELECT count(*) FROM batches") == [(16 * n_batches * n_epochs,)]
    assert sql(server_db, "SELECT count(*) FROM epochs") == [(16 * n_epochs,)]
    store = Store(server_db)
    for i in (0, 7, 15):
        frame = store.batches(f"{i:032x}")
        assert list(frame["step"]) == list(range(n_batches * n_epochs)) and set(frame["mae"]) == {float(i)}


def test_a_write_that_failed_after_creating_new_keys_leaves_the_whole_run_once_it_succeeds(server_db):
    """Another session locks run_metrics: the flush creates the new val_* keys, then waits for the
    epoch's summary and fails. Its keys are rolled back, so the retry must not use their ids."""
    import psycopg

    x, y = guide_data(n=64)
    model = guide_model()
    cb = TrackingCallback(server_db, run_name="retried")
    model.fit(x[:48], y[:48], batch_size=16, epochs=1, callbacks=[cb], verbose=0)  # keys: loss and the metric
    cb.close()
    locker = psycopg.connect(server_db.replace("postgresql+psycopg", "postgresql"))
    try:
        locker.execute("LOCK TABLE run_metrics IN EXCLUSIVE MODE")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[cb], verbose=0)
            cb.close()  # waits for the lock up to its timeout, fails, keeps the records
        assert cb.pending > 0
        assert any("lock" in str(w.message) and "retrying" in str(w.message) for w in caught)
        # The failed transaction did create keys (their ids were drawn), and they were rolled back.
        assert sql(server_db, "SELECT count(*) FROM keys WHERE name LIKE 'val%'") == [(0,)]
        drawn = sql(server_db, "SELECT last_value FROM keys_id_seq")[0][0]
        assert drawn > sql(server_db, "SELECT max(id) FROM keys")[0][0]
    finally:
        locker.rollback()
        locker.close()
    cb.close()
    assert cb.pending == 0
    store = Store(server_db)
    epochs = store.epochs(cb.run_id)
    second = epochs[epochs["phase_seq"] == 1]
    for key, values in history.history.items():
        assert list(second[key]) == values, key
    assert len(store.batches(cb.run_id, "fit")) == 3 + 2 * 3  # 48 samples / 16 per epoch, every batch
    assert len(store.batches(cb.run_id, "validation")) == 2
    assert {"val_loss", "val_mean_absolute_error"} <= {n for (n,) in sql(server_db, "SELECT name FROM keys")}
