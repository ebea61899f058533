"""The team server's roles, attacked the way a colleague holding one of them could.

Real roles on the real PostgreSQL server (``tracker db grant --apply`` as the
owner): the writer may only read the schema version and change only the runs
it created (row-level security); the reader may only read, without temporary
tables or large objects, under a statement timeout; both are confined to the
tracker database by the ``pg_hba.conf`` lines the grant prints, checked on a
password-authenticated cluster of its own.
"""

import os
import shutil
import socket
import subprocess
import tempfile

import keras
import optuna
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tracker import Store, TrackingCallback, UnknownRunError
from tracker.cli import main
from tracker.db.tables import Base

#: The rows of each table that belong to the run ``:run`` (every table but the shared dictionaries).
OF_RUN = {
    "runs": "id = :run",
    **{t: "run_id = :run" for t in ("params", "tags", "phases", "run_metrics", "trials")},
    **{t: "phase_id IN (SELECT id FROM phases WHERE run_id = :run)" for t in (
        "epochs", "phase_values", "batches", "batch_extras", "lr_changes", "lr_series", "stop_decisions",
        "stopper_states", "restores", "checkpoints", "fit_starts")},
    **{t: "epoch_id IN (SELECT e.id FROM epochs e JOIN phases p ON p.id = e.phase_id WHERE p.run_id = :run)"
       for t in ("epoch_values", "epoch_parts")},
    "weight_layouts": "run_id = :run",
    "system_samples": "run_id = :run",
}
SHARED = {"keys", "keysets", "experiments"}


def execute(url, statement, params=None):
    """Run one statement as the role of ``url``; return the number of rows it changed."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return conn.execute(text(statement), params or {}).rowcount
    finally:
        engine.dispose()


def counts(url, run_id):
    return {t: sql(url, f"SELECT count(*) FROM {t} WHERE {where}", {"run": run_id})[0][0] for t, where in OF_RUN.items()}


@pytest.fixture
def team(request, pg_server):
    """A migrated database, its owner's URL, and two writers and a reader granted by the owner."""
    owner = pg_server.new()
    request.addfinalizer(lambda: pg_server.drop(owner))
    p = pg_server.prefix
    for reader, writer in ((f"{p}_reader", f"{p}_writer"), (f"{p}_reader2", f"{p}_writer2")):
        result = CliRunner().invoke(main, ["db", "grant", "--db", owner, "--reader", reader, "--writer", writer,
                                           "--apply"])
        assert result.exit_code == 0, result.output
    return {
        "owner": owner,
        "alice": pg_server.url_as(owner, f"{p}_writer"),
        "bob": pg_server.url_as(owner, f"{p}_writer2"),
        "reader": pg_server.url_as(owner, f"{p}_reader"),
        "alice_role": f"{p}_writer",
    }


class Fails(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("preempted")


class Notes(keras.callbacks.Callback):
    """Listed before the tracker: a text value in every batch's logs (a batch_extras row)."""

    def on_train_batch_end(self, batch, logs=None):
        logs["note"] = "text"


def rich_run(url):
    """A run that fills every table of a run: failed, then resumed from epoch 1 (superseding, so
    run_metrics is rebuilt), with LR changes, an early stop that restores, text batch values, evaluate,
    checkpoints, and the guide's model inside an outer model (a sub-model: its fingerprints per epoch)."""
    x, y = guide_data(n=64)
    inner = guide_model()
    model = keras.Sequential([keras.Input((784,)), inner])
    model.compile(optimizer=keras.optimizers.RMSprop(0.1), loss="mean_squared_error")
    study = optuna.create_study(study_name="roles")  # the run trains a trial: an experiment and a trials row
    trial = study.ask()
    first = TrackingCallback(url, run_name="job", params={"lr": 0.1}, tags={"who": "alice"})
    with pytest.raises(RuntimeError):
        model.fit(x, y, batch_size=16, epochs=3, callbacks=[Fails(), first], verbose=0)
    cb = TrackingCallback(url, run_name="job", resume=True, params={"seed": 1})
    assert cb.run_id == first.run_id
    extra = [Notes(), keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
             keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=0, restore_best_weights=True),
             keras.callbacks.ModelCheckpoint(os.path.join(tempfile.mkdtemp(), "{epoch}.weights.h5"),
                                             save_weights_only=True)]
    model.fit(x, y, batch_size=16, epochs=5, initial_epoch=1, validation_split=0.25, callbacks=[*extra[:1], cb,
                                                                                                *extra[1:]], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    cb.close()
    study.tell(trial, 0.5)  # the trial's end, written by the run's own role
    return cb.run_id


def small_run(url, name):
    x, y = guide_data(n=32)
    cb = TrackingCallback(url, run_name=name)
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    cb.close()
    return cb.run_id


def test_the_writer_may_only_read_the_schema_version(team):
    from tracker.db.migrate import HEAD_REVISION

    for statement in ("UPDATE tracker_schema_version SET version_num = '9999'",
                      "DELETE FROM tracker_schema_version",
                      "INSERT INTO tracker_schema_version VALUES ('9999')"):
        with pytest.raises(Exception, match="permission denied"):
            execute(team["alice"], statement)
    assert sql(team["alice"], "SELECT version_num FROM tracker_schema_version") == [(HEAD_REVISION,)]
    small_run(team["alice"], "still-writes")
    assert list(Store(team["reader"]).runs()["name"]) == ["still-writes"]


def test_every_table_of_a_run_has_row_level_security_and_the_dictionaries_are_shared(team):
    assert set(OF_RUN) == set(Base.metadata.tables) - SHARED
    secured = dict(sql(team["owner"], "SELECT relname, relrowsecurity FROM pg_class WHERE relkind = 'r' "
                                      "AND relnamespace = 'public'::regnamespace"))
    assert {t for t, on in secured.items() if on} == set(OF_RUN)
    for table in SHARED:
        small_run(team["alice"], f"uses-{table}")
        with pytest.raises(Exception, match="permission denied"):
            execute(team["bob"], f"UPDATE {table} SET id = id")
        with pytest.raises(Exception, match="permission denied"):
            execute(team["bob"], f"DELETE FROM {table}")


def test_a_writer_changes_only_the_runs_it_created_and_the_owner_changes_any(team):
    alice, bob, owner = team["alice"], team["bob"], team["owner"]
    run_a = rich_run(alice)
    run_b = small_run(bob, "bobs")
    before = counts(owner, run_a)
    assert all(before.values()), before  # every table of a run holds rows of alice's run
    epochs_before = Store(owner).epochs(run_a, attempts=True)
    assert sql(owner, "SELECT created_by FROM runs WHERE id = :r", {"r": run_a}) == [(team["alice_role"],)]
    assert sql(owner, "SELECT state, score FROM trials WHERE run_id = :r", {"r": run_a}) == [("COMPLETE", 0.5)]

    for table, where in OF_RUN.items():
        column = next(iter(Base.metadata.tables[table].columns)).name
        assert execute(bob, f"UPDATE {table} SET {column} = {column} WHERE {where}", {"run": run_a}) == 0, table
    assert execute(bob, "DELETE FROM run_metrics WHERE run_id = :run", {"run": run_a}) == 0
    with pytest.raises(Exception, match="permission denied"):
        execute(bob, "DELETE FROM runs WHERE id = :run", {"run": run_a})
    phase = sql(owner, "SELECT min(id) FROM phases WHERE run_id = :r", {"r": run_a})[0][0]
    for statement in (
        "INSERT INTO params (run_id, key, value) VALUES (:run, 'evil', '1')",
        "INSERT INTO phases (run_id, seq, kind, status, started_at) VALUES (:run, 99, 'fit', 'running', now())",
        "INSERT INTO epochs (phase_id, epoch, ended_at, superseded) VALUES (:phase, 99, now(), false)",
        "INSERT INTO batches (phase_id, step, batch) VALUES (:phase, 9999, 0)",
        "INSERT INTO checkpoints (phase_id, saved, kind, reason, saver, saved_at) VALUES (:phase, true, 'model', "
        "'final', 'forged', now())",
        "INSERT INTO fit_starts (phase_id, source_run_id, source_epoch) VALUES (:phase, :mine, 0)",
        "INSERT INTO weight_layouts (run_id, format, digest, entries) VALUES (:run, 'keras', 'x', '[]')",
        "INSERT INTO system_samples (run_id, sampled_at, trigger, rss) VALUES (:run, now(), 'timer', 1)",
        "INSERT INTO runs (id, status, started_at, created_by) VALUES (repeat('e', 32), 'running', now(), :alice)",
        "UPDATE runs SET created_by = :alice WHERE id = :mine",
    ):
        with pytest.raises(Exception, match="row-level security"):
            execute(bob, statement, {"run": run_a, "phase": phase, "alice": team["alice_role"], "mine": run_b})

    assert counts(owner, run_a) == before
    after = Store(owner).epochs(run_a, attempts=True)
    assert after.equals(epochs_before)
    assert execute(bob, "UPDATE runs SET name = 'renamed' WHERE id = :run", {"run": run_b}) == 1
    assert execute(owner, "UPDATE runs SET name = 'by-owner' WHERE id = :run", {"run": run_a}) == 1
    assert dict(sql(owner, "SELECT id, name FROM runs")) == {run_a: "by-owner", run_b: "renamed"}


def test_the_writer_copies_runs_in_and_they_become_its_own(team, tmp_path):
    laptop = str(tmp_path / "laptop.db")
    run_id = small_run(laptop, "laptop")
    runner = CliRunner()
    first = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", team["alice"]])
    assert first.exit_code == 0 and "1 copied" in first.output, first.output
    assert sql(team["owner"], "SELECT created_by FROM runs WHERE id = :r", {"r": run_id}) == [(team["alice_role"],)]
    assert execute(team["bob"], "UPDATE runs SET name = 'x' WHERE id = :r", {"r": run_id}) == 0
    again = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", team["alice"]])
    assert "0 copied, 0 completed, 1 already there" in again.output
    # A partial copy is completed by replacing it, which only the owner may do: one sentence for the writer.
    execute(team["owner"], "DELETE FROM batches WHERE phase_id IN (SELECT id FROM phases WHERE run_id = :r)",
            {"r": run_id})
    partial = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", team["alice"]])
    assert partial.exit_code == 1 and "Traceback" not in partial.output
    assert "database's owner" in partial.output and len(partial.output.strip().splitlines()) == 1
    by_owner = runner.invoke(main, ["db", "copy", "--from", laptop, "--to", team["owner"]])
    assert "1 completed" in by_owner.output, by_owner.output
    assert len(Store(team["reader"]).batches(run_id)) == 2


def test_the_reader_and_writer_get_nothing_that_public_gets(team, pg_server):
    for role in ("reader", "alice"):
        with pytest.raises(Exception, match="permission denied to create temporary tables"):
            execute(team[role], "CREATE TEMP TABLE t (x integer)")
        for statement in ("SELECT lo_create(0)", "SELECT lo_creat(-1)", "SELECT lo_from_bytea(0, 'x')"):
            with pytest.raises(Exception, match="permission denied for function"):
                execute(team[role], statement)
    assert sql(team["reader"], "SHOW statement_timeout") == [("2min",)]
    stranger = f"{pg_server.prefix}_stranger"
    pg_server._execute(f"CREATE ROLE {stranger} LOGIN")
    with pytest.raises(Exception, match="permission denied for database"):
        sql(pg_server.url_as(team["owner"], stranger), "SELECT 1")


def test_grant_says_what_only_a_superuser_or_pg_hba_conf_can_forbid(team):
    result = CliRunner().invoke(main, ["db", "grant", "--db", team["owner"], "--apply"])
    assert result.exit_code == 0, result.output
    assert "may connect to the other databases" in result.output and "postgres" in result.output
    assert "large objects" not in result.output  # the owner here is a superuser: revoked
    assert "host   all  tracker_reader,tracker_writer  all  reject" in result.output
    printed = CliRunner().invoke(main, ["db", "grant", "--db", team["owner"]])
    assert "REVOKE ALL ON DATABASE" in printed.output and "-- local  all  tracker_reader,tracker_writer" in printed.output


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def password_cluster():
    """A cluster of its own whose pg_hba.conf is the grant's lines (passwords), plus trust for postgres."""
    from tracker.db.roles import hba_lines

    bin_dir = "/usr/lib/postgresql/15/bin"
    folder = tempfile.mkdtemp(prefix="trk-hba-", dir="/tmp")
    shutil.chown(folder, "postgres", "postgres")
    data = os.path.join(folder, "data")
    port = _free_port()
    subprocess.run([f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust"], user="postgres", check=True,
                   capture_output=True)
    with open(os.path.join(data, "pg_hba.conf"), "w") as fh:
        fh.write("\n".join(hba_lines("trk", reader="trk_reader", writer="trk_writer")) + "\n")
        fh.write("local all postgres trust\nhost all postgres 127.0.0.1/32 trust\n")
    subprocess.run([f"{bin_dir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(folder, "log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], user="postgres", check=True,
                   capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        from tracker.db.engine import dispose_engines

        dispose_engines()
        subprocess.run([f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], user="postgres",
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_pg_hba_lines_confine_both_roles_to_the_tracker_database_with_their_passwords(password_cluster):
    server = password_cluster
    admin = create_engine(f"postgresql+psycopg://postgres@{server}/postgres", isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE trk"))
    admin.dispose()
    owner = f"postgresql+psycopg://postgres@{server}/trk"
    result = CliRunner().invoke(main, ["db", "grant", "--db", owner, "--reader", "trk_reader", "--writer",
                                       "trk_writer", "--apply"])
    assert result.exit_code == 0, result.output
    execute(owner, "ALTER ROLE trk_writer PASSWORD 'w-secret'")
    execute(owner, "ALTER ROLE trk_reader PASSWORD 'r-secret'")

    def url(role, password, database="trk"):
        return f"postgresql+psycopg://{role}:{password}@{server}/{database}"

    run_id = small_run(url("trk_writer", "w-secret"), "with-password")
    listed = CliRunner().invoke(main, ["--db", url("trk_reader", "r-secret"), "runs", "--format", "json"])
    assert listed.exit_code == 0 and run_id in listed.output and "r-secret" not in listed.output
    wrong = CliRunner().invoke(main, ["--db", url("trk_reader", "nope"), "runs"])
    assert wrong.exit_code == 1 and "password authentication failed" in wrong.output and "nope" not in wrong.output
    for role, password in (("trk_reader", "r-secret"), ("trk_writer", "w-secret")):
        with pytest.raises(Exception, match="pg_hba.conf rejects connection"):
            sql(url(role, password, "postgres"), "SELECT 1")


def test_a_writer_resumes_only_its_own_unfinished_runs(team):
    x, y = guide_data(n=32)
    alices = TrackingCallback(team["alice"], run_name="shared-name")
    with pytest.raises(RuntimeError):
        guide_model().fit(x, y, batch_size=16, epochs=3, callbacks=[Fails(), alices], verbose=0)
    alices.close()
    bobs = TrackingCallback(team["bob"], run_name="shared-name", resume=True)
    assert bobs.run_id != alices.run_id  # alice's run is not bob's to continue: a new run starts
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[bobs], verbose=0)
    bobs.close()
    with pytest.raises(UnknownRunError, match="another database role created it"):
        TrackingCallback(team["bob"], resume=alices.run_id)
    assert TrackingCallback(team["alice"], run_name="shared-name", resume=True).run_id == alices.run_id
    assert TrackingCallback(team["owner"], resume=alices.run_id).run_id == alices.run_id
    statuses = dict(sql(team["owner"], "SELECT id, status FROM runs"))
    assert statuses == {alices.run_id: "failed", bobs.run_id: "finished"}
