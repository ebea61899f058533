"""System metrics: sampled by a helper thread while a run records, read through Store.system and the CLI.

Real fits on SQLite and PostgreSQL (the ``db`` fixture); the values are
checked against psutil read here, outside the tracker, and the thread against
``threading.enumerate()``. This machine has no GPU and no NVML driver: no GPU
columns, and no warning. The GPU columns are read back from readings queued
as the sampler queues them on a GPU machine (one ``InsertSystemSample``).
"""

import json
import os
import threading
from datetime import datetime, timezone

import keras
import psutil
import pytest
from click.testing import CliRunner
from conftest import guide_data, guide_model, sql

import tracker
from tracker import Store, TrackingCallback, TrackingWarning
from tracker.cli import main
from tracker.db.system_writes import GpuReading, InsertSystemSample
from tracker.status import SampleTrigger
from tracker.store.system import SYSTEM_COLUMNS

THREAD = "tracker-system"


def sampler_threads():
    return [t for t in threading.enumerate() if t.name == THREAD]


class Spy(keras.callbacks.Callback):
    """Notes, at each epoch's end, whether the sampler thread runs; optionally waits (a slow callback)."""

    def __init__(self, wait=0.0, fail_at=None, error=RuntimeError):
        super().__init__()
        self.wait, self.fail_at, self.error, self.alive = wait, fail_at, error, []

    def on_epoch_end(self, epoch, logs=None):
        self.alive.append(len(sampler_threads()))
        if self.wait:
            threading.Event().wait(self.wait)  # a slow callback: the timed samples come in between
        if epoch == self.fail_at:
            raise self.error("stop here")


def fit(db, epochs=3, callbacks=(), n=64, **options):
    x, y = guide_data(n=n)
    cb = TrackingCallback(db, **options)
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, callbacks=[*callbacks, cb], verbose=0)
    return cb, model


def cli(db, *args):
    return CliRunner().invoke(main, ["--db", db, *args], env={"COLUMNS": "200"})


def test_each_epoch_end_is_sampled_with_its_epoch_and_the_end_of_the_fit_too(db):
    spy = Spy()
    cb, model = fit(db, epochs=4, callbacks=[spy])
    frame = Store(db).system(cb.run_id)
    assert list(frame.columns) == SYSTEM_COLUMNS  # no GPU here: no GPU columns
    epochs = Store(db).epochs(cb.run_id)
    sampled = frame[frame["trigger"] == "epoch"]
    assert list(sampled["epoch"]) == [0, 1, 2, 3] == list(epochs["epoch"])
    # Each epoch's sample is taken once the epoch ended (all its callbacks ran), before the next one began.
    ended = [e.to_pydatetime() for e in epochs["ended_at"]]
    at = [t.to_pydatetime() for t in sampled["sampled_at"]]
    assert all(a >= e for a, e in zip(at, ended))
    assert frame["trigger"].iloc[-1] == "end" and frame["epoch"].isna().iloc[-1]
    assert frame["epoch"].isna().tolist() == (frame["trigger"] != "epoch").tolist()
    assert set(frame["phase"]) == {"fit"} and set(frame["call"]) == {1} and set(frame["phase_seq"]) == {0}
    assert frame["sampled_at"].is_monotonic_increasing and frame["elapsed"].is_monotonic_increasing
    run = Store(db).runs(run_ids=[cb.run_id]).iloc[0]
    assert 0 <= frame["elapsed"].iloc[0] and frame["elapsed"].iloc[-1] <= (run["ended_at"] - run["started_at"]).total_seconds()
    assert spy.alive == [1, 1, 1, 1] and sampler_threads() == []  # one thread while fitting, none after


def test_timed_samples_come_every_interval_during_a_slow_fit(db):
    cb, _ = fit(db, epochs=3, callbacks=[Spy(wait=0.3)], system_interval=0.05)
    frame = Store(db).system(cb.run_id)
    timed = frame[frame["trigger"] == "timer"]
    assert len(timed) >= 3  # 0.9 s of waiting at one sample per 0.05 s
    assert timed["epoch"].isna().all() and timed["elapsed"].is_monotonic_increasing
    assert (timed["elapsed"].diff().dropna() > 0).all()
    assert sampler_threads() == []


def test_values_agree_with_psutil_read_outside_the_tracker(db):
    cb, _ = fit(db, epochs=3, n=768)  # epochs long enough to measure CPU use over (0.1 s at least)
    frame = Store(db).system(cb.run_id)
    process, memory = psutil.Process(), psutil.virtual_memory()
    rss = process.memory_info().rss
    assert all(rss / 2 < r < rss * 2 for r in frame["rss"])  # this very process, a moment later
    assert set(frame["memory_total"]) == {memory.total}
    assert all(0 < used < memory.total for used in frame["memory_used"])
    assert all(abs(used - (memory.total - memory.available)) < memory.total / 4 for used in frame["memory_used"])
    cores = psutil.cpu_count() or 1
    cpu = frame["cpu_percent"].dropna()
    assert len(cpu) >= 2 and all(0 <= c <= 100 * cores * 1.25 for c in cpu)  # CPU time is counted in 10 ms ticks
    assert cpu.max() > 20  # the fit kept a core busy
    # Stored as bytes and percent, exactly what the table holds.
    rows = sql(db, "SELECT rss, cpu_percent, device FROM system_samples WHERE run_id = :r ORDER BY id", {"r": cb.run_id})
    assert [r[0] for r in rows] == list(frame["rss"]) and {r[2] for r in rows} == {None}


def test_system_metrics_false_records_none_and_starts_no_thread(db):
    spy = Spy()
    cb, model = fit(db, epochs=2, callbacks=[spy], system_metrics=False)
    model.evaluate(*guide_data(n=32), callbacks=[cb], verbose=0)
    assert spy.alive == [0, 0]
    assert sql(db, "SELECT count(*) FROM system_samples") == [(0,)]
    frame = Store(db).system(cb.run_id)
    assert frame.empty and list(frame.columns) == SYSTEM_COLUMNS


def test_each_call_of_a_run_is_sampled_and_ends_with_its_own_end_sample(db):
    cb, model = fit(db, epochs=2)
    x, y = guide_data(n=32)
    model.evaluate(x, y, callbacks=[cb], verbose=0)
    model.predict(x, callbacks=[cb], verbose=0)
    frame = Store(db).system(cb.run_id)
    ends = frame[frame["trigger"] == "end"]
    assert list(ends["phase"]) == ["fit", "evaluate", "predict"]
    phases = Store(db).run(cb.run_id)["phases"]
    assert list(ends["phase_seq"]) == [int(s) for s, k in zip(phases["phase_seq"], phases["phase"]) if k != "validation"]
    assert sampler_threads() == []


@pytest.mark.parametrize("error, status", [(RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")])
def test_a_fit_that_raises_still_stops_the_sampler_after_a_last_sample(db, error, status):
    spy = Spy(fail_at=1, error=error)
    x, y = guide_data(n=64)
    cb = TrackingCallback(db)
    with pytest.raises(error):
        guide_model().fit(x, y, batch_size=16, epochs=4, callbacks=[cb, spy], verbose=0)
    assert spy.alive == [1, 1] and sampler_threads() == []
    frame = Store(db).system(cb.run_id)
    assert list(frame.loc[frame["trigger"] == "epoch", "epoch"]) == [0, 1]
    assert frame["trigger"].iloc[-1] == "end"
    assert Store(db).runs(run_ids=[cb.run_id])["status"].iloc[0] == status


def test_a_sampling_failure_is_one_warning_and_training_goes_on(db, monkeypatch):
    """psutil refusing to read the machine's memory (as in some containers): one warning, no more samples."""
    def refused():
        raise psutil.AccessDenied(msg="/proc/meminfo is not readable here")

    monkeypatch.setattr(psutil, "virtual_memory", refused)
    with pytest.warns(TrackingWarning, match="sampling system metrics failed") as caught:
        cb, _ = fit(db, epochs=3, system_interval=0.05)
    assert len([w for w in caught if issubclass(w.category, TrackingWarning)]) == 1
    assert len(Store(db).epochs(cb.run_id)) == 3 and Store(db).runs()["status"].tolist() == ["finished"]
    assert Store(db).system(cb.run_id).empty and sampler_threads() == []


def test_autolog_takes_the_same_options(db):
    x, y = guide_data(n=64)
    try:
        tracker.autolog(db, system_metrics=False)
        guide_model().fit(x, y, batch_size=16, epochs=2, verbose=0)
        tracker.autolog(db, system_interval=30.0)
        guide_model(seed=2).fit(x, y, batch_size=16, epochs=2, verbose=0)
    finally:
        tracker.autolog(disable=True)
    first, second = Store(db).runs()["run_id"]
    assert Store(db).system(first).empty
    assert list(Store(db).system(second)["trigger"]) == ["epoch", "epoch", "end"]  # nothing timed within 30 s
    with pytest.raises(ValueError, match="system_interval must be a positive number of seconds"):
        tracker.autolog(db, system_interval=0)


@pytest.mark.parametrize("options, message", [
    ({"system_interval": 0}, "system_interval must be a positive number of seconds, not 0."),
    ({"system_interval": -1.5}, "system_interval must be a positive number of seconds, not -1.5."),
    ({"system_interval": "10"}, "system_interval must be a positive number of seconds, not '10'."),
    ({"system_interval": True}, "system_interval must be a positive number of seconds, not True."),
    ({"system_interval": float("inf")}, "system_interval must be a positive number of seconds, not inf."),
    ({"system_metrics": "yes"}, "system_metrics must be True or False, not 'yes'."),
])
def test_bad_options_are_one_sentence(tmp_path, options, message):
    with pytest.raises(ValueError) as raised:
        TrackingCallback(str(tmp_path / "runs.db"), **options)
    assert str(raised.value) == message


def gpu_run(db):
    """A run with the readings a machine with two GPUs gives, queued as the sampler queues them."""
    cb, _ = fit(db, epochs=1)
    at = datetime.now(timezone.utc).replace(tzinfo=None)
    cb._writer.submit(InsertSystemSample(cb.run_id, at, SampleTrigger.TIMER, 0, None, 150.5, 3 << 30, 10 << 30,
                                         64 << 30, [GpuReading(0, 87.0, 7 << 30, 16 << 30),
                                                    GpuReading(1, None, 1 << 29, 16 << 30)]))
    assert cb._writer.flush(wait=5.0)
    return cb.run_id


def test_gpu_readings_become_columns_per_device_exactly(db):
    run_id = gpu_run(db)
    frame = Store(db).system(run_id)
    gpu = [f"gpu{d}_{f}" for d in (0, 1) for f in ("utilization", "memory_used", "memory_total")]
    assert list(frame.columns) == SYSTEM_COLUMNS + gpu
    row = frame.iloc[-1]
    assert (row["cpu_percent"], row["rss"], row["memory_used"], row["memory_total"]) == (150.5, 3 << 30, 10 << 30, 64 << 30)
    assert (row["gpu0_utilization"], row["gpu0_memory_used"], row["gpu0_memory_total"]) == (87.0, 7 << 30, 16 << 30)
    assert row["gpu1_utilization"] is pd_na() and row["gpu1_memory_used"] == 1 << 29
    assert frame.iloc[:-1][gpu].isna().all().all()  # the samples of this machine had no GPU
    assert sql(db, "SELECT count(*) FROM system_samples WHERE run_id = :r AND device IS NOT NULL", {"r": run_id}) == [(2,)]
    table = cli(db, "system", run_id)
    assert table.exit_code == 0, table.output
    header = table.output.splitlines()[0].split()
    assert header == ["elapsed", "trigger", "phase", "epoch", "cpu_percent", "rss_MiB", "memory_used_MiB",
                      "gpu0_utilization", "gpu0_memory_used_MiB", "gpu0_memory_total_MiB", "gpu1_memory_used_MiB",
                      "gpu1_memory_total_MiB"]  # a column with no value (gpu1_utilization) is left out
    assert "7168" in table.output  # 7 GiB in MiB
    data = json.loads(cli(db, "system", run_id, "--format", "json").output)
    assert data[-1]["gpu0_memory_used"] == 7 << 30 and data[-1]["gpu1_utilization"] is None


def pd_na():
    import pandas as pd

    return pd.NA


def test_the_command_prints_a_table_csv_and_exact_json(db):
    cb, _ = fit(db, epochs=2)
    frame = Store(db).system(cb.run_id)
    result = cli(db, "system", cb.run_id[:10])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["elapsed", "trigger", "phase", "epoch", "cpu_percent", "rss_MiB", "memory_used_MiB"]
    assert len(lines) == 2 + len(frame)
    assert f"{frame['rss'].iloc[0] / 2**20:.1f}".rstrip("0").rstrip(".") in lines[2]
    data = json.loads(cli(db, "system", "latest", "--format", "json").output)
    assert [d["rss"] for d in data] == list(frame["rss"]) and [d["epoch"] for d in data][:2] == [0, 1]
    assert list(data[0]) == SYSTEM_COLUMNS and data[0]["sampled_at"].endswith("+00:00")
    csv = cli(db, "system", "latest", "--format", "csv").output.splitlines()
    assert csv[0] == ",".join(SYSTEM_COLUMNS) and len(csv) == 1 + len(frame)


def test_the_command_says_one_sentence_for_an_unknown_run_and_for_a_run_without_samples(db):
    cb, _ = fit(db, epochs=1, system_metrics=False)
    unknown = cli(db, "system", "nothing")
    assert unknown.exit_code == 1 and unknown.output.count("\n") == 1 and "Traceback" not in unknown.output
    assert "No run matches 'nothing'" in unknown.output
    none = cli(db, "system", cb.run_id)
    assert none.exit_code == 0 and none.output.startswith("No system metrics were recorded for this run")
    assert json.loads(cli(db, "system", cb.run_id, "--format", "json").output) == []


def test_the_read_side_never_imports_keras():
    import subprocess
    import sys

    code = ("import sys, tracker; from tracker.store.system import system_frame; from tracker.cli import read; "
            "from tracker.ui import system; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ}).returncode == 0
