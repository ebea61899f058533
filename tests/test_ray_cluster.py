"""Ray Tune trials on a real 2-node Ray cluster, recorded into the team server as its writer role.

The cluster is two ``ray start --block`` processes on 127.0.0.1 (a head and
a second node, one CPU each, their own ports, one temporary folder); the
test driver connects to it with ``ray.init(address=...)``. The trials write
to a PostgreSQL database as the writer role ``tracker db grant --apply``
made, and the reader role reads the sweep back with ``tracker sweep``.
Ground truth: Ray's ``ResultGrid`` and the spy file each trial writes
(``ray_trainables.py``: every epoch's values as IEEE-754 bits, the worker's
pid and Ray node id). The second test cuts the trials' server connections
(``pg_terminate_backend``) twice while the search runs.

The cluster is torn down in the fixture's ``finally``: ``ray.shutdown()``,
SIGTERM to the two ``ray start --block`` processes (each stops the
processes it started), then SIGKILL to their process groups and to any
process still naming the cluster's temporary folder; nothing else is
touched (no ``ray stop``, which would stop every Ray cluster of the user).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from conftest import sql
from sqlalchemy import text

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it
import ray_trainables
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from test_ray_tune import epochs_of, histories, runs_of, stops_of

import tracker  # noqa: F401 - installs the Ray Tune integration in this driver
from tracker.cli import main

HERE = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).parent / "ray")
LRS = [0.3, 0.01, 0.0001, 0.05, 1e-5, 0.02, 0.1, 0.001]  # 8 trials, some far worse than others (ASHA stops them)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(folder: str, head_port: int, head: bool, env: dict) -> subprocess.Popen:
    """``ray start --block`` for one node, in a process group of its own; every port its own."""
    args = [RAY, "start", "--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
            f"--temp-dir={folder}", "--object-store-memory=100000000",
            *(f"--{option}={_free_port()}" for option in (
                "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port"))]
    if head:
        args += ["--head", f"--port={head_port}", "--include-dashboard=false", f"--ray-client-server-port={_free_port()}"]
    else:
        args += [f"--address=127.0.0.1:{head_port}"]
    log = open(os.path.join(folder, "head.log" if head else "node2.log"), "w")  # noqa: SIM115 - closed with the folder
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _of_cluster(folder: str) -> list[psutil.Process]:
    """The processes that name the cluster's temporary folder (its daemons and workers), and nothing else."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(folder in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _stop_cluster(nodes: list[subprocess.Popen], folder: str) -> None:
    daemons = []
    for node in nodes:
        try:
            daemons += psutil.Process(node.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    for node in reversed(nodes):  # the second node first, then the head
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in reversed(nodes):
        try:
            node.wait(20)
        except subprocess.TimeoutExpired:
            pass
    for node in nodes:
        try:
            os.killpg(node.pid, signal.SIGKILL)  # the group start_new_session made: only this cluster's processes
        except (ProcessLookupError, PermissionError):
            pass
        if node.poll() is None:
            node.wait(10)
    for proc in daemons + _of_cluster(folder):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def cluster():
    """A 2-node Ray cluster on this machine (one CPU each) with this driver connected; always torn down."""
    folder = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3"}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    worker_env = {"PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if os.environ.get("KERAS_BACKEND"):
        worker_env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(_start_node(folder, port, True, env))
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert nodes[0].poll() is None and time.monotonic() < deadline, \
                    Path(folder, "head.log").read_text()[-3000:]
                time.sleep(0.2)
        nodes.append(_start_node(folder, port, False, env))
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False, runtime_env={"env_vars": worker_env})
        while len(alive := [n["NodeID"] for n in ray.nodes() if n["Alive"]]) < 2:
            assert nodes[1].poll() is None and time.monotonic() < deadline, Path(folder, "node2.log").read_text()[-3000:]
            time.sleep(0.3)
        assert len(alive) == 2 and all(n["Resources"].get("CPU") == 1 for n in ray.nodes() if n["Alive"])
        yield set(alive)
    finally:
        try:
            ray.shutdown()
        finally:
            _stop_cluster(nodes, folder)
            left = _of_cluster(folder)
            shutil.rmtree(folder, ignore_errors=True)
            assert not left, f"Ray processes left behind: {[p.pid for p in left]}"


@pytest.fixture
def team(request, pg_server):
    """A migrated server database: its owner's URL, and a writer and a reader granted by ``db grant --apply``."""
    owner = pg_server.new()
    request.addfinalizer(lambda: pg_server.drop(owner))
    reader, writer = f"{pg_server.prefix}_ray_reader", f"{pg_server.prefix}_ray_writer"
    granted = CliRunner().invoke(main, ["db", "grant", "--db", owner, "--reader", reader, "--writer", writer,
                                        "--apply"])
    assert granted.exit_code == 0, granted.output
    return {"owner": owner, "writer": pg_server.url_as(owner, writer), "reader": pg_server.url_as(owner, reader),
            "writer_role": writer}


def _search(tmp_path, name, db, out, **run):
    asha = ASHAScheduler(max_t=ray_trainables.EPOCHS, grace_period=1, reduction_factor=2)
    tuner = tune.Tuner(
        tune.with_parameters(ray_trainables.fit_trial, out=str(out), db=db),
        param_space={"lr": tune.grid_search(LRS), "seed": 3},
        tune_config=tune.TuneConfig(metric="score", mode="min", scheduler=asha),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray"), verbose=0, **run),
    )
    return tuner.fit()


def _check_every_trial(results, owner, out, name):
    """One run per trial, each as Ray and the spy saw it; returns the runs by trial id and the spies."""
    assert not results.errors
    assert all(result.error is None for result in results)
    runs = runs_of(owner, name)
    trial_ids = {result.metrics["trial_id"] for result in results}
    assert len(results) == len(LRS) and set(runs) == trial_ids  # one run per trial, none lost, none doubled
    assert sql(owner, "SELECT COUNT(*) FROM runs") == [(len(LRS),)]
    spies = {}
    pruned = 0
    for result in results:
        trial_id = result.metrics["trial_id"]
        run, reported = runs[trial_id], len(result.metrics_dataframe)
        (spy,) = histories(out, trial_id)  # one attempt: no trial failed
        spies[trial_id] = spy
        assert run.pid == spy["pid"] == result.metrics["pid"]  # recorded by the worker that trained it
        stored = epochs_of(owner, run.id)
        assert stored == spy["history"]  # every epoch, bit for bit
        assert len(stored["loss"]) == reported
        assert run.state == "TERMINATED"
        if reported < ray_trainables.EPOCHS:
            pruned += 1
            assert run.status == "pruned" and run.error is None
            ((stopper, _hook, epoch, step, *_rest),) = stops_of(owner, run.id)
            assert (stopper, epoch, step) == ("AsyncHyperBandScheduler", reported - 1, reported)
        else:
            assert run.status == "finished" and stops_of(owner, run.id) == []
    assert 0 < pruned < len(LRS)  # ASHA stopped some trials and let others reach max_t
    return runs, spies


def test_a_search_on_a_two_node_cluster_records_every_trial_as_the_writer_role(cluster, team, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    started = time.monotonic()
    results = _search(tmp_path, "two-nodes", team["writer"], out)
    took = time.monotonic() - started
    runs, spies = _check_every_trial(results, team["owner"], out, "two-nodes")
    # The trials ran on both nodes of the cluster (the node ids the workers saw).
    assert {spy["node"] for spy in spies.values()} == cluster, (took, [s["node"] for s in spies.values()])
    # The writer role owns every run and every row it wrote; the experiment is Ray's.
    assert sql(team["owner"], "SELECT DISTINCT created_by FROM runs") == [(team["writer_role"],)]
    assert sql(team["owner"], "SELECT tool, objective, direction FROM experiments") == [("ray_tune", "score", "min")]
    # The reader reads the sweep back: every trial listed.
    shown = CliRunner().invoke(main, ["--db", team["reader"], "sweep", "two-nodes"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"{len(LRS)} trials of Ray Tune" in " ".join(shown.output.split())
    for trial_id in runs:
        assert trial_id in shown.output, (trial_id, shown.output)


def test_lost_server_connections_during_a_search_fail_no_trial_and_lose_no_epoch(cluster, team, pg_server,
                                                                                tmp_path):
    """Twice during the search, every server connection to the database is terminated; nothing is lost."""
    out = tmp_path / "out"
    out.mkdir()
    database = team["owner"].rsplit("/", 1)[-1]
    cuts: list[tuple[int, int]] = []  # (connections terminated, epochs stored at that moment)
    done = threading.Event()
    began, timeline = time.monotonic(), []

    def cut_connections():
        """As the admin, on the server's own database: terminate the trials' connections to the tracker's."""
        mark = 1  # once the first epoch is stored, then once two more are
        for _ in range(2):
            while not done.is_set():
                stored = sql(team["owner"], "SELECT COUNT(*) FROM epochs")[0][0]
                timeline.append((round(time.monotonic() - began, 2), stored))
                if stored >= mark:
                    break
                time.sleep(0.1)
            if done.is_set():
                return
            with pg_server.admin.connect() as conn:
                killed = conn.execute(text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": database}).scalar()
            cuts.append((killed, stored))
            mark = stored + 2

    cutter = threading.Thread(target=cut_connections, daemon=True)
    cutter.start()
    try:
        results = _search(tmp_path, "cut-connections", team["writer"], out)
    finally:
        done.set()
        cutter.join(30)
    # The faults happened while the trials were training: connections were cut, and epochs were stored after.
    assert len(cuts) == 2 and all(killed >= 1 for killed, _ in cuts), (cuts, timeline[-20:])
    total = sql(team["owner"], "SELECT COUNT(*) FROM epochs")[0][0]
    assert total > cuts[-1][1], (cuts, total)
    _check_every_trial(results, team["owner"], out, "cut-connections")
    assert sql(team["owner"], "SELECT DISTINCT created_by FROM runs") == [(team["writer_role"],)]


def test_class_trainables_on_two_nodes_continue_their_run_at_each_step_as_the_writer_role(cluster, team, tmp_path):
    """A ``tune.Trainable`` subclass: each step's fit finds and continues its trial's run, as the writer role."""
    from test_ray_trainable_class import LRS as CLASS_LRS
    from test_ray_trainable_class import STEPS, check_trials, tuner

    asha = ASHAScheduler(max_t=STEPS, grace_period=1, reduction_factor=2)
    search, out = tuner(tmp_path, "class-nodes", {"lr": tune.grid_search(CLASS_LRS), "seed": 7}, scheduler=asha,
                        db=team["writer"])
    results = search.fit()
    assert not results.errors
    runs, _pids = check_trials(team["owner"], results, out, "class-nodes", "AsyncHyperBandScheduler")
    assert {histories(out, trial_id)[0]["node"] for trial_id in runs} == cluster  # trials on both nodes
    assert sql(team["owner"], "SELECT DISTINCT created_by FROM runs") == [(team["writer_role"],)]
