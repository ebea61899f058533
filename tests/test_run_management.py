"""Run management: rename, tag, note, delete to the trash, undelete, through the API and the CLI.

Every test runs on SQLite and on PostgreSQL (the ``db`` fixture) with real
fits. A deleted run must be gone from every listing and aggregate (runs,
overview, decisions, evaluations, metric keys, export, the dashboard,
``latest`` and names), and come back whole with ``undelete``.
"""

import json
import shutil
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql

from tracker import DeletedRunError, InvalidArgumentError, RunManager, Store, TrackingCallback, UnknownRunError
from tracker.cli import main
from tracker.ui.data import Dashboard

DATA = Path(__file__).resolve().parent / "data"


class Extra(keras.callbacks.Callback):
    """Listed before the tracker: a logs key only this run has."""

    def on_epoch_end(self, epoch, logs=None):
        logs["only_gone"] = float(epoch)


def fit(db, name, *, stop=False, extra=False, epochs=3, tags=None):
    """A real run: optionally an early stop that restores, an LR schedule, an evaluate, a key of its own."""
    x, y = guide_data(n=48)
    cb = TrackingCallback(db, run_name=name, tags=tags)
    callbacks = [Extra()] if extra else []
    callbacks.append(cb)
    if stop:
        callbacks += [keras.callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5),
                      keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=0, restore_best_weights=True)]
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, callbacks=callbacks, verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    cb.close()
    return cb.run_id


def cli(db, *args):
    return CliRunner().invoke(main, ["--db", db, *args])


def one_sentence(result):
    """The CLI refused in one sentence: exit status 1, one ``Error:`` line, no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[-1]


def test_rename_tag_and_note_through_the_api_and_the_cli(db):
    run_id = fit(db, "sequential", tags={"kept": "yes"})
    runs = RunManager(db)
    assert runs.rename("sequential", "baseline").name == "sequential"
    assert Store(db).resolve("baseline") == run_id
    with pytest.raises(UnknownRunError):
        Store(db).resolve("sequential")
    assert runs.tag("baseline", {"dataset": "digits", "lr": "0.1"}) == {"dataset": "digits", "kept": "yes", "lr": "0.1"}
    assert runs.tag("baseline", {"lr": "0.05"}, remove=["kept"]) == {"dataset": "digits", "lr": "0.05"}
    assert runs.note("baseline", "first line") == "first line"
    assert runs.note("baseline", "second\u00a0line \u2014 ok", append=True) == "first line\nsecond\u00a0line \u2014 ok"

    result = cli(db, "rename", run_id[:10], "base \u00e9")
    assert result.exit_code == 0 and "to 'base \u00e9'" in result.output, result.output
    result = cli(db, "tag", "base \u00e9", "owner=ana", "empty=", "--remove", "dataset")
    assert result.exit_code == 0 and "empty=, lr=0.05, owner=ana" in result.output, result.output
    assert cli(db, "note", "latest", "--append", "third").exit_code == 0
    summary = Store(db).run("latest")
    assert summary["run"]["name"] == "base \u00e9"
    assert summary["tags"] == {"empty": "", "lr": "0.05", "owner": "ana"}
    assert summary["run"]["note"] == "first line\nsecond\u00a0line \u2014 ok\nthird"
    assert summary["run"]["deleted_at"] is None
    shown = cli(db, "show", "latest")
    assert "note" in shown.output and "third" in shown.output
    result = cli(db, "note", "latest", "")
    assert result.exit_code == 0 and "Cleared" in result.output
    assert Store(db).run("latest")["run"]["note"] is None
    # Nothing else of the run changed: its epochs and listing are as recorded.
    assert len(Store(db).epochs(run_id)) == 3 and list(Store(db).runs()["name"]) == ["base \u00e9"]


def test_a_deleted_run_is_gone_from_every_listing_and_aggregate_until_undeleted(db, tmp_path):
    keep = fit(db, "same")
    gone = fit(db, "same", stop=True, extra=True)
    store = Store(db)
    assert store.resolve("same") == gone == store.resolve("latest")
    assert "only_gone" in store.metric_keys() and len(store.early_stops()) == 1

    moved = RunManager(db).delete("same")
    assert [r.id for r in moved] == [gone] and moved[0].deleted_at is not None
    store = Store(db)
    # The listings and the aggregates over runs.
    assert list(store.runs()["run_id"]) == [keep]
    assert list(store.overview()["run_id"]) == [keep]
    trash = store.runs(deleted=True)
    assert list(trash["run_id"]) == [gone] and trash["deleted_at"].notna().all()
    for frame in (store.early_stops(), store.restores(), store.lr_changes(), store.lr_series(), store.evaluations()):
        assert gone not in set(frame["run_id"])
    assert set(store.evaluations()["run_id"]) == {keep}
    assert "only_gone" not in store.metric_keys()
    with pytest.raises(InvalidArgumentError, match="only_gone"):
        store.runs(sort="best:only_gone")
    assert list(store.runs(deleted=True, sort="best:only_gone")["run_id"]) == [gone]
    # Names and `latest` skip it; its id still finds it for show, which says it is deleted.
    assert store.resolve("same") == keep == store.resolve("latest")
    with pytest.raises(DeletedRunError, match=f"tracker undelete {gone}"):
        store.epochs(gone)
    assert store.resolve(gone, deleted=True) == gone
    assert store.run(gone)["run"]["deleted_at"] is not None
    # The CLI, export and the dashboard.
    listed = json.loads(cli(db, "runs", "--format", "json").output)
    assert [r["run_id"] for r in listed] == [keep]
    trashed = json.loads(cli(db, "runs", "--deleted", "--format", "json").output)
    assert [r["run_id"] for r in trashed] == [gone] and trashed[0]["deleted_at"]
    shown = cli(db, "show", gone)
    assert shown.exit_code == 0 and "This run is deleted" in shown.output and f"tracker undelete {gone}" in shown.output
    assert f"tracker undelete {gone}" in one_sentence(cli(db, "compare", keep, gone))
    assert "deleted" in one_sentence(cli(db, "epochs", gone[:8]))
    out = tmp_path / "runs.json"
    assert cli(db, "export", "runs", "--out", str(out)).exit_code == 0
    assert [r["run_id"] for r in json.loads(out.read_text())] == [keep]
    assert cli(db, "export", "early-stopping", "--out", str(tmp_path / "es.csv")).exit_code == 0
    assert gone not in (tmp_path / "es.csv").read_text()
    dashboard = Dashboard(db)
    assert [r["run_id"] for r in dashboard.runs()] == [keep]
    assert "only_gone" not in dashboard.metric_keys()
    with pytest.raises(DeletedRunError):
        dashboard.run(gone)
    # Deleting it again is refused; undelete by name brings it back whole.
    with pytest.raises(DeletedRunError):
        RunManager(db).delete(gone)
    result = cli(db, "undelete", "same")
    assert result.exit_code == 0 and gone in result.output, result.output
    store = Store(db)
    assert sorted(store.runs()["run_id"]) == sorted([keep, gone]) and store.runs(deleted=True).empty
    assert store.resolve("same") == gone and len(store.early_stops()) == 1 and "only_gone" in store.metric_keys()


def test_bad_input_is_one_sentence_and_exit_status_1(db):
    fit(db, "only", epochs=1)
    assert "No run matches 'nope'" in one_sentence(cli(db, "rename", "nope", "x"))
    assert "cannot be empty" in one_sentence(cli(db, "rename", "only", ""))
    assert "cannot be empty" in one_sentence(cli(db, "rename", "only", "   "))
    assert "'latest'" in one_sentence(cli(db, "rename", "only", "latest"))
    assert "'novalue' is not KEY=VALUE" in one_sentence(cli(db, "tag", "only", "novalue"))
    assert "=x' is not KEY=VALUE" in one_sentence(cli(db, "tag", "only", "=x"))
    assert "Give tags" in one_sentence(cli(db, "tag", "only"))
    assert "has no tag 'ghost'" in one_sentence(cli(db, "tag", "only", "--remove", "ghost"))
    assert "not deleted" in one_sentence(cli(db, "undelete", "only"))
    assert "No run matches 'nope'" in one_sentence(cli(db, "undelete", "nope"))
    assert "No run matches 'nope'" in one_sentence(cli(db, "delete", "nope"))
    assert "running run cannot be deleted" in one_sentence(cli(db, "delete", "--status", "running"))
    assert "Unknown status 'bogus'" in one_sentence(cli(db, "delete", "--status", "bogus"))
    assert "not an age" in one_sentence(cli(db, "delete", "--older-than", "3 fortnights"))
    assert "not both" in one_sentence(cli(db, "delete", "only", "--status", "failed"))
    assert "Name the runs" in one_sentence(cli(db, "delete"))
    assert "Give the text" in one_sentence(cli(db, "note", "only", "--append", ""))
    summary = Store(db).run("only")  # nothing changed
    assert summary["run"]["name"] == "only" and summary["tags"] == {} and summary["run"]["deleted_at"] is None


class Fails(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("diverged")


def test_delete_selects_by_status_and_age_and_needs_yes_for_more_than_one(db):
    x, y = guide_data(n=32)
    failed = []
    for i in range(2):
        cb = TrackingCallback(db, run_name=f"broken-{i}")
        with pytest.raises(RuntimeError):
            guide_model().fit(x, y, epochs=2, callbacks=[Fails(), cb], verbose=0)
        cb.close()
        failed.append(cb.run_id)
    fine = fit(db, "fine", epochs=1)
    old = fit(db, "old", epochs=1)
    sql(db, "UPDATE runs SET started_at = :t WHERE id = :r", {"t": "2020-01-02 03:04:05", "r": old})
    assert sorted(Store(db).runs(status="failed")["run_id"]) == sorted(failed)

    preview = cli(db, "delete", "--status", "failed")
    assert "would go to the trash; add --yes" in one_sentence(preview)
    assert all(r in preview.output for r in failed) and fine not in preview.output
    assert Store(db).runs(deleted=True).empty  # only shown
    done = cli(db, "delete", "--status", "failed", "--yes")
    assert done.exit_code == 0 and "Moved 2 runs to the trash" in done.output, done.output
    assert sorted(Store(db).runs(deleted=True)["run_id"]) == sorted(failed)

    assert cli(db, "delete", "--status", "failed").output.startswith("No runs match")  # already in the trash
    result = cli(db, "delete", "--older-than", "30d")
    assert result.exit_code == 0 and "Moved 1 run" in result.output and old in result.output, result.output
    assert list(Store(db).runs()["run_id"]) == [fine]
    assert "removed for good; add --yes" in one_sentence(cli(db, "gc"))  # three runs in the trash: only listed
    assert [r.id for r in RunManager(db).undelete(["broken-0", old])] == [failed[0], old]
    assert sorted(Store(db).runs()["run_id"]) == sorted([failed[0], fine, old])


def test_an_older_database_upgrades_and_its_runs_can_be_managed(tmp_path):
    path = tmp_path / "rev0005.db"
    shutil.copy(DATA / "rev0005.db", path)
    names = list(Store(str(path), upgrade=True).runs()["name"])
    assert sql(str(path), "SELECT count(*) FROM runs WHERE note IS NULL AND deleted_at IS NULL")[0][0] == len(names)
    runs = RunManager(str(path))
    runs.tag("resumed", {"checked": "yes"})
    runs.delete("resumed")
    assert "resumed" not in list(Store(str(path)).runs()["name"])
    assert len(Store(str(path)).runs()) == len(names) - 1


def test_a_run_training_on_another_host_cannot_be_deleted_until_its_heartbeat_stops(db):
    from datetime import datetime, timedelta, timezone

    from tracker import EditRefusedError

    run_id = fit(db, "remote", epochs=1)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    sql(db, "UPDATE runs SET status = 'running', ended_at = NULL, host = 'gpu-box-7', pid = 4242, heartbeat_at = :t, "
            "started_at = :s WHERE id = :r", {"t": now, "s": now - timedelta(hours=1), "r": run_id})
    with pytest.raises(EditRefusedError, match="its job on gpu-box-7 wrote a heartbeat within 120 s"):
        RunManager(db).delete("remote")
    assert "is still running" in one_sentence(cli(db, "delete", "remote"))
    assert RunManager(db).find(older_than="30m") == []  # old enough, but a selection leaves a running run out
    sql(db, "UPDATE runs SET heartbeat_at = :t, started_at = :t WHERE id = :r",
        {"t": now - timedelta(minutes=10), "r": run_id})  # silent for 10 minutes: crashed
    assert Store(db).runs()["status"].tolist() == ["crashed"]
    assert [r.id for r in RunManager(db).delete(status="crashed")] == [run_id]


def test_delete_by_experiment_and_deleted_runs_leave_experiments_and_sweeps(db):
    from tracker import UnknownExperimentError

    x, y = guide_data(n=32)
    ids = {}
    for name, experiment in (("a", "search"), ("b", "search"), ("alone", "solo"), ("free", None)):
        cb = TrackingCallback(db, run_name=name, experiment=experiment)
        guide_model().fit(x, y, epochs=2, validation_split=0.25, callbacks=[cb], verbose=0)
        cb.close()
        ids[name] = cb.run_id
    store = Store(db)
    assert store.experiments().set_index("experiment").loc["search", "runs"] == 2
    assert "Did you mean 'search'" in one_sentence(cli(db, "delete", "--experiment", "serch"))
    with pytest.raises(UnknownExperimentError):
        RunManager(db).find(experiment="serch")

    assert "add --yes" in one_sentence(cli(db, "delete", "--experiment", "search"))
    result = cli(db, "delete", "--experiment", "search", "--yes")
    assert result.exit_code == 0 and "Moved 2 runs" in result.output, result.output
    assert sorted(Store(db).runs(deleted=True)["run_id"]) == sorted([ids["a"], ids["b"]])
    RunManager(db).delete("alone")
    store = Store(db)
    assert store.runs(experiment="search").empty and list(store.runs()["name"]) == ["free"]
    assert list(store.experiments()["experiment"]) == []  # every run of both experiments is in the trash
    assert store.sweep("search").trials == []
    assert json.loads(cli(db, "experiments", "--format", "json").output) == []

    RunManager(db).undelete("a")
    store = Store(db)
    experiments = store.experiments().set_index("experiment")
    assert list(experiments.index) == ["search"] and experiments.loc["search", "runs"] == 1
    assert [t.best_run for t in store.sweep("search").trials] == [ids["a"]]
