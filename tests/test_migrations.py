"""The schema comes only from the Alembic revisions, and they match the models."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shutil
import struct
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from click.testing import CliRunner
from conftest import bits

from tracker import NotADatabaseError, SchemaOutdatedError, SchemaTooNewError, Store
from tracker.cli import main
from tracker.db.migrate import HEAD_REVISION, VERSION_TABLE, alembic_config, head_revision, open_database
from tracker.db.tables import Base

REPO = Path(__file__).resolve().parent.parent


def schema_of(path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())


def test_there_is_a_single_head_revision_and_the_fast_path_knows_it():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [head_revision()] == [HEAD_REVISION]


def test_models_and_migrations_agree(db):
    engine, _ = open_database(db)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_opening_creates_exactly_the_migrated_schema_and_nothing_from_the_models(tmp_path):
    path = tmp_path / "m.db"
    open_database(str(path))
    tables = {name for name, sql in schema_of(path).items() if sql.startswith("CREATE TABLE")}
    assert tables == set(Base.metadata.tables) | {VERSION_TABLE}
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(head_revision(),)]


@pytest.mark.parametrize("how", ["x-arg", "env"])
def test_alembic_upgrade_head_from_the_repo_root_gives_the_same_schema(tmp_path, how):
    target = tmp_path / "cli.db"
    env = dict(os.environ)
    args = [sys.executable, "-m", "alembic", "upgrade", "head"]
    if how == "x-arg":
        args[3:3] = ["-x", f"db={target}"]
        env.pop("TRACKER_DB", None)
    else:
        env["TRACKER_DB"] = str(target)
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    reference = tmp_path / "ref.db"
    open_database(str(reference))
    assert schema_of(target) == schema_of(reference)


def test_a_database_from_a_newer_revision_is_refused_in_one_sentence(tmp_path):
    path = tmp_path / "new.db"
    open_database(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'ffff_from_the_future'")
    with pytest.raises(SchemaTooNewError) as excinfo:
        Store(str(path))
    message = str(excinfo.value)
    assert "ffff_from_the_future" in message and "upgrade the tracker" in message
    assert message.count(".") <= 2 and "\n" not in message


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(NotADatabaseError, match="is not a SQLite database"):
        open_database(str(path))
    assert path.read_text() == "these are my notes, not a database\n"


def test_another_applications_sqlite_database_is_not_touched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(NotADatabaseError, match="another application"):
        open_database(str(path))
    assert set(schema_of(path)) == {"customers"}


def test_an_empty_file_is_upgraded(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    open_database(str(path))
    assert "runs" in schema_of(path)


def test_sqlalchemy_url_is_accepted(tmp_path):
    path = tmp_path / "url.db"
    engine, url = open_database(f"sqlite:///{path}")
    assert url == f"sqlite:///{path}" and "runs" in schema_of(path)
    create_engine(url).dispose()


DATA = Path(__file__).resolve().parent / "data"
FIXTURES = sorted(p.name for p in DATA.glob("rev*.db"))
# Tables whose rows 0006 leaves as they were (for the columns they had).
KEPT = ["runs", "params", "tags", "phases", "epochs", "lr_changes", "lr_series", "stop_decisions", "restores"]


def rows_of(path, table, columns="*"):
    with sqlite3.connect(path) as conn:
        return sorted(map(tuple, conn.execute(f"SELECT {columns} FROM {table}").fetchall()), key=repr)


def _exact(value, bits_, text):
    """A stored value in a comparable form: exact bits for numbers, else text/None."""
    if text is not None:
        return ("int", text) if bits_ is not None else ("text", text)
    if bits_ is not None:
        return ("bits", bits_)
    if value is None:
        return ("none",)
    return ("bits", bits(value))


def logical_content(path, columns_of=None):
    """What a database says, independent of how revisions lay it out: kept tables
    (``columns_of`` a table: the columns to compare, default all it has), every
    logged value bit-exact, and the batches of each phase in Keras' order."""
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0]
        old = revision < "0006"
        kept = {}
        for table in KEPT:
            if table in tables and (columns_of is None or table in columns_of):
                columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")
                           if not (table == "runs" and r[1] == "epoch_count") and r[1] != "superseded"]
                if columns_of is not None:
                    columns = columns_of[table][0]
                kept[table] = (columns, sorted(map(tuple, conn.execute(f"SELECT {', '.join(columns)} FROM {table}")), key=repr))
        key_of = "key" if old else "(SELECT name FROM keys WHERE keys.id = key_id)"
        values = {}
        for table, owner in (("epoch_values", "epoch_id"), ("phase_values", "phase_id")):
            values[table] = {
                (o, k): _exact(v, b, t)
                for o, k, v, b, t in conn.execute(f"SELECT {owner}, {key_of}, value, bits, text FROM {table}")
            }
        batches = {}
        if old:
            heads = conn.execute("SELECT phase_id, seq, epoch, batch, elapsed FROM batches ORDER BY phase_id, seq").fetchall()
            logged = {}
            for p, q, k, v, b, t in conn.execute("SELECT phase_id, batch_seq, key, value, bits, text FROM batch_values"):
                logged.setdefault((p, q), {})[k] = _exact(v, b, t)
            for p, q, e, n, elapsed in heads:
                batches.setdefault(p, []).append((e, n, None if elapsed is None else round(elapsed * 1e6), logged.get((p, q), {})))
            for p in batches:  # Keras' order: by epoch, then batch index
                batches[p].sort(key=lambda r: (-1 if r[0] is None else r[0], r[1]))
        else:
            names = dict(conn.execute("SELECT id, name FROM keys"))
            keysets = {i: [names[int(k)] for k in ids.split(",")] for i, ids in conn.execute("SELECT id, key_ids FROM keysets")}
            extras = {}
            for p, q, k, v, b, t in conn.execute("SELECT phase_id, step, key_id, value, bits, text FROM batch_extras"):
                extras.setdefault((p, q), {})[names[k]] = _exact(v, b, t)
            for p, q, e, n, elapsed, keyset, vals in conn.execute(
                "SELECT phase_id, step, epoch, batch, elapsed_us, keyset_id, vals FROM batches ORDER BY phase_id, step"
            ):
                logged = dict(extras.get((p, q), {}))
                if keyset is not None:
                    floats = struct.unpack(f"<{len(keysets[keyset])}d", vals)
                    logged.update({k: ("bits", bits(f)) for k, f in zip(keysets[keyset], floats)})
                batches.setdefault(p, []).append((e, n, elapsed, logged))
    return kept, values, batches


def test_a_database_written_at_revision_0001_upgrades_with_every_value_kept(tmp_path):
    """tests/data/rev0001.db was written by the real tracker at revision 0001
    (a fit with validation and a NaN metric, an evaluate and a predict)."""
    path = tmp_path / "old.db"
    shutil.copy(DATA / "rev0001.db", path)
    before = logical_content(path)
    assert sum(len(b) for b in before[2].values()) > 0 and len(before[0]["epochs"][1]) == 3

    store = Store(str(path), upgrade=True)

    assert logical_content(path, before[0]) == before
    assert rows_of(path, "epochs", "fingerprint") == [(None,)] * 3
    assert rows_of(path, "runs", "phase_count, epoch_count") == [(3, 3)]
    metrics = store.metrics("written-at-0001").set_index("key")
    loss = store.epochs("written-at-0001")["loss"].tolist()
    assert (metrics.loc["loss", "best"], metrics.loc["loss", "best_epoch"]) == (min(loss), loss.index(min(loss)))
    assert (metrics.loc["loss", "final"], metrics.loc["loss", "final_epoch"], metrics.loc["loss", "epochs"]) == (loss[-1], 2, 3)
    assert np.isnan(metrics.loc["nan_metric", "best"]) and metrics.loc["nan_metric", "epochs"] == 3
    epochs = store.epochs("written-at-0001")
    assert list(epochs["epoch"]) == [0, 1, 2]
    assert epochs["nan_metric"].isna().all() and epochs["val_loss"].notna().all()


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_committed_older_database_upgrades_with_every_value_bit_exact(tmp_path, fixture):
    """tests/data/revNNNN.db were written by the real tracker at each earlier revision."""
    path = tmp_path / fixture
    shutil.copy(DATA / fixture, path)
    with sqlite3.connect(path) as conn:
        old_revision = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0]
    assert fixture == f"rev{old_revision}.db" and old_revision != HEAD_REVISION
    before = logical_content(path)
    assert sum(len(rows) for _, rows in before[0].values()) > 10 and before[1]["epoch_values"]

    store = Store(str(path), upgrade=True)

    assert logical_content(path, before[0]) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone() == (HEAD_REVISION,)
    for run_id in store.runs()["run_id"]:
        epochs = store.epochs(run_id)
        assert store.runs().set_index("run_id").loc[run_id, "epochs"] == len(epochs)
        assert store.system(run_id).empty  # recorded before system metrics: none, and reading works
        metrics = store.metrics(run_id).set_index("key")
        if len(epochs):
            assert bits(metrics.loc["loss", "final"]) == bits(epochs["loss"].iloc[-1])
            assert metrics.loc["loss", "epochs"] == len(epochs)


def test_a_resumed_run_written_at_0005_has_its_replaced_attempts_superseded_after_upgrade(tmp_path):
    """rev0005.db holds a job killed in epoch 3 and resumed from the backup of epoch 1."""
    path = tmp_path / "rev0005.db"
    shutil.copy(DATA / "rev0005.db", path)
    store = Store(str(path), upgrade=True)
    epochs = store.epochs("resumed")
    every = store.epochs("resumed", attempts=True)
    assert list(epochs["epoch"]) == [0, 1, 2, 3, 4] and list(epochs["phase_seq"]) == [0, 1, 1, 1, 1]
    assert list(every[every["superseded"]]["epoch"]) == [1, 2]
    assert list(epochs["redone"]) == [False, True, True, False, False]
    runs = store.runs().set_index("name")
    assert runs.loc["resumed", "epochs"] == 5
    metrics = store.metrics("resumed").set_index("key")
    assert metrics.loc["loss", "epochs"] == 5
    assert bits(metrics.loc["loss", "best"]) == bits(epochs["loss"].min())
    assert metrics.loc["loss", "best_epoch"] == int(epochs.loc[epochs["loss"].idxmin(), "epoch"])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_reading_an_older_database_refuses_in_one_sentence_and_leaves_it_byte_for_byte(tmp_path, fixture):
    path = tmp_path / fixture
    shutil.copy(DATA / fixture, path)
    before = path.read_bytes()
    with pytest.raises(SchemaOutdatedError) as excinfo:
        Store(str(path))
    message = str(excinfo.value)
    assert "tracker" in message and "db upgrade" in message and "\n" not in message
    result = CliRunner().invoke(main, ["--db", str(path), "runs"])
    assert result.exit_code == 1 and "db upgrade" in result.output and "Traceback" not in result.output
    assert path.read_bytes() == before


def _server_logical_content(url):
    """logical_content() of a server database at head: the same form, read with SQLAlchemy."""
    from conftest import sql as query

    kept = {}
    for table in KEPT:
        columns = [c for c in _columns_at_0005[table] if not (table == "runs" and c == "epoch_count")]
        rows = query(url, f"SELECT {', '.join(columns)} FROM {table}")
        kept[table] = (columns, sorted((tuple(_plain(v) for v in r) for r in rows), key=repr))
    names = dict(query(url, "SELECT id, name FROM keys"))
    values = {}
    for table, owner in (("epoch_values", "epoch_id"), ("phase_values", "phase_id")):
        values[table] = {(o, names[k]): _exact(v, b, t) for o, k, v, b, t in query(url, f"SELECT {owner}, key_id, value, bits, text FROM {table}")}
    keysets = {i: [names[int(k)] for k in ids.split(",")] for i, ids in query(url, "SELECT id, key_ids FROM keysets")}
    extras = {}
    for p, q, k, v, b, t in query(url, "SELECT phase_id, step, key_id, value, bits, text FROM batch_extras"):
        extras.setdefault((p, q), {})[names[k]] = _exact(v, b, t)
    batches = {}
    for p, q, e, n, elapsed, keyset, vals in query(url, "SELECT phase_id, step, epoch, batch, elapsed_us, keyset_id, vals FROM batches ORDER BY phase_id, step"):
        logged = dict(extras.get((p, q), {}))
        if keyset is not None:
            floats = struct.unpack(f"<{len(keysets[keyset])}d", bytes(vals))
            logged.update({k: ("bits", bits(f)) for k, f in zip(keysets[keyset], floats)})
        batches.setdefault(p, []).append((e, n, elapsed, logged))
    return kept, values, batches


def _plain(value):
    """A server value in the form SQLite returns it (times as text, booleans as 0/1, enums as text)."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it in SQLite
    if isinstance(value, bool):
        return int(value)
    return value


_columns_at_0005 = {}


def test_revision_0006_converts_a_server_database_bit_for_bit(pg_server, request):
    """rev0005.db's rows loaded into a PostgreSQL database at revision 0005, then upgraded."""
    from alembic import command
    from sqlalchemy import MetaData, insert

    from tracker.db.engine import dispose_engines, get_engine

    url = pg_server.new(migrated=False)
    request.addfinalizer(lambda: pg_server.drop(url))
    engine = get_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    source = DATA / "rev0005.db"
    before = logical_content(source)
    with sqlite3.connect(source) as lite:
        order = ["runs", "params", "tags", "phases", "epochs", "batches", "epoch_values", "batch_values", "phase_values",
                 "lr_changes", "lr_series", "stop_decisions", "restores", "run_metrics"]
        meta = MetaData()
        meta.reflect(engine)
        with engine.begin() as conn:
            for table in order:
                columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
                _columns_at_0005[table] = columns
                rows = [dict(zip(columns, r)) for r in lite.execute(f"SELECT * FROM {table}")]
                target = meta.tables[table]
                for row in rows:
                    for name, value in row.items():
                        kind = type(target.c[name].type).__name__
                        if kind == "DATETIME" or kind == "TIMESTAMP":
                            row[name] = None if value is None else __import__("datetime").datetime.fromisoformat(value)
                        elif kind == "BOOLEAN" and value is not None:
                            row[name] = bool(value)
                if rows:
                    conn.execute(insert(target), rows)
            for table in ("phases", "epochs", "lr_changes", "lr_series", "stop_decisions", "restores"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    dispose_engines(url)
    store = Store(url, upgrade=True)
    assert _server_logical_content(url) == before
    epochs = store.epochs("resumed", attempts=True)
    assert list(epochs[epochs["superseded"]]["epoch"]) == [1, 2]
    assert store.runs().set_index("name").loc["resumed", "epochs"] == 5
    assert best_epochs(store, "rich") == earliest_bests(source)


REPEATED = ("big", "inf", "nested/a", "neg_zero")  # rev0005.db's "rich" run logged each the same every epoch


def earliest_bests(path):
    """From the old file itself: the earliest epoch of each REPEATED key's minimum and maximum."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT v.key, e.epoch, v.value FROM epoch_values v JOIN epochs e ON e.id = v.epoch_id "
            "JOIN phases p ON p.id = e.phase_id JOIN runs r ON r.id = p.run_id "
            "WHERE r.name = 'rich' AND p.kind = 'fit' ORDER BY e.epoch").fetchall()
    out = {}
    for key in REPEATED:
        series = [(epoch, value) for k, epoch, value in rows if k == key]
        assert len(series) > 1 and len({v for _, v in series}) == 1  # the best repeats
        out[key] = (min(e for e, v in series if v == min(v for _, v in series)),
                    min(e for e, v in series if v == max(v for _, v in series)))
    return out


def best_epochs(store, run):
    """Each REPEATED key's best epoch as the reader sees it: minimised and maximised."""
    out = {}
    for key in REPEATED:
        low = store.runs(sort=f"best:{key}:min").set_index("run_id").loc[store.resolve(run), f"{key}_epoch"]
        high = store.runs(sort=f"best:{key}:max").set_index("run_id").loc[store.resolve(run), f"{key}_epoch"]
        out[key] = (int(low), int(high))
    return out


def test_after_upgrade_a_repeated_best_is_its_earliest_epoch_as_live_recording_gives(tmp_path):
    import keras

    from conftest import guide_data, guide_model
    from tracker import TrackingCallback

    path = tmp_path / "rev0005.db"
    shutil.copy(DATA / "rev0005.db", path)
    expected = earliest_bests(path)
    assert CliRunner().invoke(main, ["--db", str(path), "db", "upgrade"]).exit_code == 0
    assert best_epochs(Store(str(path)), "rich") == expected

    class Same(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs.update({"big": 2.0**60, "inf": float("inf"), "nested/a": 1.5, "neg_zero": -0.0})

    live = str(tmp_path / "live.db")
    cb = TrackingCallback(live, run_name="rich")
    x, y = guide_data(n=32)
    guide_model().fit(x, y, batch_size=16, epochs=3, callbacks=[Same(), cb], verbose=0)
    cb.close()
    assert best_epochs(Store(live), "rich") == expected == {key: (0, 0) for key in REPEATED}


OWNED_TABLES = ["runs", "params", "tags", "phases", "epochs", "epoch_values", "phase_values", "batches",
                "batch_extras", "lr_changes", "lr_series", "stop_decisions", "stopper_states", "restores", "run_metrics"]


def _counts(path):
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in OWNED_TABLES}


def test_revision_0009_rebuilds_runs_and_phases_for_pruned_and_loses_no_row_that_refers_to_them(tmp_path):
    """rev0008.db: a finished run (validation, NaN and -0.0 logs, an early stop, evaluate) and a failed one.

    Revision 0009 rebuilds ``runs`` and ``phases`` on SQLite (a CHECK constraint
    cannot be altered there); with foreign keys on, dropping the old tables
    would have deleted every phase, epoch and value (ON DELETE CASCADE)."""
    path = tmp_path / "rev0008.db"
    shutil.copy(DATA / "rev0008.db", path)
    before = _counts(path)
    assert all(before[t] for t in ("runs", "phases", "epochs", "epoch_values", "batches", "stop_decisions"))

    store = Store(str(path), upgrade=True)

    assert _counts(path) == before
    fresh = tmp_path / "fresh.db"
    open_database(str(fresh))
    with sqlite3.connect(path) as conn, sqlite3.connect(fresh) as new:
        conn.execute("PRAGMA foreign_keys = ON")
        for table in ("runs", "phases"):  # the same columns, constraints and indexes as a new database's
            assert conn.execute(f"PRAGMA table_info({table})").fetchall() == new.execute(f"PRAGMA table_info({table})").fetchall()
            assert sorted(conn.execute(f"PRAGMA index_list({table})").fetchall()) == sorted(new.execute(f"PRAGMA index_list({table})").fetchall())
            assert conn.execute(f"PRAGMA foreign_key_list({table})").fetchall() == new.execute(f"PRAGMA foreign_key_list({table})").fetchall()
        assert conn.execute("SELECT count(*) FROM runs WHERE experiment_id IS NOT NULL").fetchone() == (0,)
        conn.execute("UPDATE runs SET status = 'pruned' WHERE name = 'failed-at-0008'")
        conn.execute("UPDATE phases SET status = 'pruned' WHERE run_id = (SELECT id FROM runs WHERE name = 'failed-at-0008')")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE runs SET status = 'paused'")
        conn.execute("DELETE FROM runs WHERE name = 'written-at-0008'")  # the cascades still hold
        assert conn.execute("SELECT count(*) FROM phases WHERE run_id NOT IN (SELECT id FROM runs)").fetchone() == (0,)
        conn.commit()
    assert list(store.runs()["status"]) == ["pruned"] and list(store.runs(status="pruned")["name"]) == ["failed-at-0008"]


def test_revision_0009_on_a_server_database_accepts_pruned_and_keeps_its_rows(pg_server, request):
    from alembic import command
    from sqlalchemy import text

    from tracker.db.engine import dispose_engines, get_engine
    from conftest import sql as query

    url = pg_server.new(migrated=False)
    request.addfinalizer(lambda: pg_server.drop(url))
    with get_engine(url).begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
        conn.execute(text("INSERT INTO runs (id, name, status, started_at) VALUES (repeat('a', 32), 'old', 'failed', now())"))
        conn.execute(text("INSERT INTO phases (run_id, seq, kind, status, started_at) VALUES (repeat('a', 32), 0, 'fit', 'failed', now())"))
    dispose_engines(url)
    open_database(url)
    query(url, "UPDATE runs SET status = 'pruned'")
    query(url, "UPDATE phases SET status = 'pruned'")
    assert query(url, "SELECT r.name, r.status, p.status, r.experiment_id FROM runs r JOIN phases p ON p.run_id = r.id") == [
        ("old", "pruned", "pruned", None)]
    with pytest.raises(Exception, match="ck_runs_run_status"):
        query(url, "UPDATE runs SET status = 'paused'")
    assert query(url, "SELECT relrowsecurity FROM pg_class WHERE relname = 'trials'") == [(True,)]
