"""The dashboard's JSON API, served by a real uvicorn server, checked against tracker.Store."""

import hashlib
import math
import shutil
import sqlite3
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ui_support import HOSTILE_NAME, get, recorded_runs

from tracker import Store
from tracker.errors import DatabaseError, DatabaseNotFoundError
from tracker.ui.app import create_app
from tracker.ui.data import Dashboard
from tracker.ui.downsample import minmax_indices
from tracker.ui.server import exposure_warning, running_server

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def api(recorded):
    with running_server(create_app(recorded.path)) as url:
        yield url


def number(v):
    """An API number back to a float: "NaN", "Infinity", "-Infinity" or a JSON number."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v)


def bits(x):
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def same(a, b):
    """Equal as logged: bit-exact floats (so NaN equals NaN), anything else by ==."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and bits(a) == bits(b)
    return a == b


def test_runs_answer_is_a_list_of_run_objects_holding_the_store_overview_newest_first(api, recorded):
    status, kind, answer = get(api + "/api/runs")
    assert status == 200 and kind.startswith("application/json")
    frame = Store(recorded.path).overview(sort="-started_at")
    assert isinstance(answer, list) and len(answer) == len(frame) == 3
    assert [r["run_id"] for r in answer] == list(frame["run_id"])
    assert {r["metric"] for r in answer} <= {"val_loss", None}  # the EarlyStopping monitor
    for run, expected in zip(answer, frame.to_dict("records")):
        members = {}
        for column in frame.columns:
            if column.startswith("param:"):
                members[column] = run["params"][column.removeprefix("param:")]
            elif column.startswith("eval:"):
                members[column] = (run["evaluate"] or {}).get(column.removeprefix("eval:"))
            else:
                members[column] = run[column]
        assert set(run) == {c for c in frame.columns if ":" not in c} | {"params", "evaluate"}
        for column, want in expected.items():
            got = members[column]
            if column in ("started_at", "ended_at"):
                assert (got is None and pd.isna(want)) or pd.Timestamp(got) == want, column
            elif want is None or want is pd.NA:
                assert got is None, column
            else:
                assert same(number(got), want.item() if hasattr(want, "item") else want), (column, got, want)


def test_run_objects_hold_the_summary_as_the_store_has_it(api, recorded):
    _, _, runs = get(api + "/api/runs")
    store = Store(recorded.path)
    by_id = {r["run_id"]: r for r in runs}
    for row in store.runs().itertuples():
        got = by_id[row.run_id]
        assert (got["name"], got["status"], got["epochs"]) == (row.name, row.status, row.epochs)
        metrics = store.metrics(row.run_id).set_index("key")
        if "val_loss" in metrics.index:
            assert got["metric"] == "val_loss"
            assert (got["best"], got["best_epoch"]) == (metrics.loc["val_loss", "best"], metrics.loc["val_loss", "best_epoch"])
        else:  # the hostile run trained without validation
            assert got["metric"] is None and got["best"] is None
    base = by_id[recorded.baseline]
    stop = store.early_stops(recorded.baseline).iloc[0]
    restore = store.restores(recorded.baseline).iloc[0]
    assert (base["stopped_epoch"], base["restored_epoch"]) == (stop["stopped_epoch"], restore["restored_epoch"])
    assert base["evaluate"] == recorded.evaluated
    assert by_id[recorded.odd]["evaluate"] is None and by_id[recorded.odd]["stopped_epoch"] is None
    assert base["params"] == {"batch_size": 16, "lr": 0.1, "note": None}, "the params that differ (or are absent somewhere)"
    assert by_id[recorded.hostile]["name"] == HOSTILE_NAME


def test_runs_filters_and_chosen_metric(api, recorded):
    _, _, by_name = get(api + "/api/runs?name=odd-*")
    assert [r["run_id"] for r in by_name] == [recorded.odd]
    _, _, by_loss = get(api + "/api/runs?metric=loss&limit=2")
    assert len(by_loss) == 2 and {r["metric"] for r in by_loss} == {"loss"}
    _, _, finished = get(api + "/api/runs?status=finished")
    assert len(finished) == 3
    _, _, keys = get(api + "/api/keys")
    assert keys["keys"] == Store(recorded.path).metric_keys() and {"loss", "val_loss"} <= set(keys["keys"])


@pytest.mark.parametrize("which", ["baseline", "odd", "hostile"])
def test_epochs_are_bit_exact_and_a_key_not_logged_is_absent(api, recorded, which):
    run_id = getattr(recorded, which)
    _, _, epochs = get(f"{api}/api/runs/{run_id}/epochs")
    tidy = Store(recorded.path).epochs(run_id, tidy=True)
    expected = {(r.phase_seq, r.epoch, r.key): r.value for r in tidy.itertuples()}
    got = {}
    for e in epochs:
        assert e["phase"] == "fit"
        for key, value in e.items():
            if key not in ("phase", "phase_seq", "call", "epoch", "started_at", "ended_at", "redone"):
                got[(e["phase_seq"], e["epoch"], key)] = number(value)
    assert got.keys() == expected.keys()
    assert all(same(got[k], expected[k]) for k in expected)


def test_nan_and_infinities_are_strings_and_absent_keys_are_left_out(api, recorded):
    _, _, epochs = get(f"{api}/api/runs/{recorded.odd}/epochs")
    odd = [e.get("odd", "absent") for e in sorted(epochs, key=lambda e: e["epoch"])]
    assert odd == ["absent", "NaN", "Infinity", "-Infinity", "absent"]


def test_run_detail_matches_the_store(api, recorded):
    store = Store(recorded.path)
    _, _, detail = get(f"{api}/api/runs/{recorded.baseline}")
    assert detail["run"]["id"] == recorded.baseline and detail["params"] == store.params(recorded.baseline)
    change = store.lr_changes(recorded.baseline).iloc[0]
    got = detail["lr_changes"][0]
    assert (got["epoch"], got["old_lr"], got["new_lr"], got["source"], got["hook"]) == (
        change["epoch"], change["old_lr"], change["new_lr"], "LearningRateScheduler", "on_epoch_begin")
    stop = detail["early_stops"][0]
    assert (stop["stopper"], stop["stopped"], stop["monitor"], stop["patience"]) == ("EarlyStopping", True, "val_loss", 2)
    restore = store.restores(recorded.baseline).iloc[0]
    assert detail["restores"][0]["value_at_restored"] == restore["value_at_restored"]
    assert [p["phase"] for p in detail["phases"]] == ["fit", "evaluate"]
    assert detail["phases"][1]["results"] == recorded.evaluated
    epochs_with_lr = [p["epoch"] for p in detail["lr_series"] if p["point"] == "epoch"]
    assert epochs_with_lr == list(store.epochs(recorded.baseline)["epoch"])
    assert detail["model_config"]["layers"] and detail["fits"][0]["optimizer_config"]["class_name"] == "RMSprop"
    _, _, hostile = get(f"{api}/api/runs/{recorded.hostile}")
    assert hostile["run"]["name"] == HOSTILE_NAME and hostile["params"]["note"] == "<b>bold</b>"


@pytest.mark.parametrize("points", [10, 2000])
def test_batches_are_downsampled_keeping_the_extremes(api, recorded, points):
    _, _, answer = get(f"{api}/api/runs/{recorded.baseline}/batches?phase=fit&points={points}")
    frame = Store(recorded.path).batches(recorded.baseline, "fit")
    assert answer["total"] == len(frame)
    loss = answer["series"]["loss"]
    assert len(loss["x"]) == len(loss["y"]) <= max(points + 2, 4) and len(loss["y"]) <= len(frame)
    assert min(loss["y"]) == frame["loss"].min() and max(loss["y"]) == frame["loss"].max()
    if len(frame) <= points:
        assert loss["y"] == list(frame["loss"])
    assert loss["x"] == sorted(loss["x"]) and max(loss["x"]) == frame["epoch"].max()


def test_compare_lists_differing_params_and_best_values(api, recorded):
    _, _, answer = get(f"{api}/api/compare?run={recorded.baseline}&run={recorded.odd}")
    assert [r["run_id"] for r in answer["rows"]] == [recorded.baseline, recorded.odd]
    assert "param:lr" in answer["columns"] and "best:val_loss" in answer["columns"]
    assert [r["param:lr"] for r in answer["rows"]] == [0.1, 0.05]


@pytest.mark.parametrize("path", [
    "/api/runs/0123456789abcdef0123456789abcdef",
    "/api/runs/0123456789abcdef0123456789abcdef/epochs",
    "/api/runs/nope/epochs",
    "/api/runs/..%2F..%2Fetc%2Fpasswd",
    "/api/runs/" + "a" * 5000,
    "/api/nothing-here",
])
def test_an_unknown_run_or_endpoint_is_a_json_404(api, path):
    status, kind, body = get(api + path)
    assert status == 404 and kind.startswith("application/json") and body["error"]


@pytest.mark.parametrize("query", [
    "/api/runs?metric=no_such_key", "/api/runs?limit=0", "/api/runs?limit=ten", "/api/runs?status=sleeping",
    "/api/runs?name=" + "x" * 600, "/api/compare", "/api/runs/{run}/batches?phase=bogus",
    "/api/runs/{run}/batches?points=3", "/api/runs/{run}/batches?points=-1",
])
def test_a_bad_query_parameter_is_a_json_400(api, recorded, query):
    status, kind, body = get(api + query.format(run=recorded.baseline))
    assert status == 400 and kind.startswith("application/json") and body["error"]


@pytest.mark.parametrize("path", [
    "/api/runs?name=%27%3B%20DROP%20TABLE%20runs%3B--", "/api/runs?metric=%00", "/runs/%3Cscript%3E",
    "/static/../../tracker/ui/data.py", "/api/runs/%00", "/compare?run=%3Cb%3E",
])
def test_no_request_gets_a_traceback(api, recorded, path):
    status, _, body = get(api + path)
    assert status < 500 and "Traceback" not in str(body) and "File \"" not in str(body)
    assert len(Store(recorded.path).runs()) == 3


def test_pages_carry_a_strict_content_security_policy_and_refuse_other_hosts(api):
    with urllib.request.urlopen(api + "/") as response:
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "<script src=\"/static/" in response.read().decode()
    request = urllib.request.Request(api + "/api/runs", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400


def test_the_database_is_read_only_and_never_changed(recorded, tmp_path):
    copy = tmp_path / "copy.db"
    with sqlite3.connect(f"file:{recorded.path}?mode=ro", uri=True) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    dashboard = Dashboard(str(copy))
    dashboard.runs()
    dashboard.epochs(recorded.baseline)
    with pytest.raises(Exception, match="readonly|read-only"):
        with dashboard.engine.connect() as conn:
            conn.exec_driver_sql("DELETE FROM runs")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before


def test_a_path_with_uri_characters_is_opened_read_only_as_that_file(recorded, tmp_path):
    folder = tmp_path / "we ird#dir"  # "#" ends the path of a SQLite URI unless quoted
    folder.mkdir()
    copy = folder / "r u#n&s.db"
    with sqlite3.connect(f"file:{recorded.path}?mode=ro", uri=True) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    assert len(Dashboard(str(copy)).runs()) == 3
    made = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert made <= {"r u#n&s.db", "r u#n&s.db-wal", "r u#n&s.db-shm"}, "no other file was opened or created"


def test_an_older_schema_is_refused_in_one_sentence_and_left_as_it_was(tmp_path):
    old = tmp_path / "rev0004.db"
    shutil.copy(REPO / "tests" / "data" / "rev0004.db", old)
    before = old.read_bytes()
    with pytest.raises(DatabaseError, match="db upgrade"):
        Dashboard(str(old))
    assert old.read_bytes() == before
    with pytest.raises(DatabaseNotFoundError):
        Dashboard(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("n", [10, 1999, 2000, 2001, 100_003])
def test_downsampling_keeps_min_max_and_gaps(n):
    rng = np.random.default_rng(n)
    y = np.cumsum(rng.standard_normal(n))
    y[n // 3] = 1e6  # a spike
    if n > 100:
        y[n // 2: n // 2 + 5] = np.nan  # a gap
    keep = minmax_indices(y, 2000)
    assert len(keep) <= 2000 + 2 + 1000 * (n > 100) and np.all(np.diff(keep) > 0)
    assert keep[0] == 0 and keep[-1] == n - 1
    assert np.nanmax(y[keep]) == np.nanmax(y) and np.nanmin(y[keep]) == np.nanmin(y)
    assert np.isnan(y[keep]).any() == np.isnan(y).any()
    if n <= 2000:
        assert len(keep) == n


def test_the_dashboard_imports_neither_keras_nor_tensorflow(recorded, tmp_path):
    code = (
        "import sys, urllib.request\n"
        "from tracker.cli import main\n"
        "from tracker.ui.app import create_app\n"
        "from tracker.ui.server import running_server\n"
        "from tracker.ui.report import write_report\n"
        f"write_report({recorded.path!r}, [{recorded.baseline!r}], {str(tmp_path / 'r.html')!r})\n"
        f"with running_server(create_app({recorded.path!r})) as url:\n"
        f"    urllib.request.urlopen(url + '/api/runs/{recorded.baseline}').read()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_tracker_ui_serves_and_warns_when_not_local(recorded, host, warned):
    assert (exposure_warning(host) is not None) == warned
    process = subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), "--db", recorded.path, "ui", "--host", host, "--port", "0"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = []
        while not lines or "http://" not in lines[-1]:
            line = process.stderr.readline()
            assert line, f"tracker ui exited: {''.join(lines)}"
            lines.append(line)
        port = lines[-1].split("http://", 1)[1].split()[0].rsplit(":", 1)[1]
        assert ("Warning: listening on 0.0.0.0" in "".join(lines)) == warned
        status, _, runs = get(f"http://127.0.0.1:{port}/api/runs")
        assert status == 200 and len(runs) == 3
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tracker_ui_refuses_an_older_schema_with_one_sentence(tmp_path):
    old = tmp_path / "rev0004.db"
    shutil.copy(REPO / "tests" / "data" / "rev0004.db", old)
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "--db", str(old), "ui", "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "db upgrade" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_page_loads_its_scripts_and_styles_as_two_bundles_of_every_static_file(api):
    """Two requests before the first rows, holding every script and style of tracker/ui/static in load order."""
    import re

    from tracker.ui.page import SCRIPTS, STATIC, STYLES

    with urllib.request.urlopen(api + "/") as response:
        html = response.read().decode()
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert [Path(link).suffix for link in links] == [".css", ".js"], links
    for link, names in zip(links, (STYLES, SCRIPTS)):
        with urllib.request.urlopen(api + link) as response:
            text = response.read().decode()
            assert "immutable" in response.headers["cache-control"]
            assert response.headers["content-type"].startswith(("text/css", "text/javascript"))
        at = [text.index((STATIC / name).read_text(encoding="utf-8")) for name in names]
        assert at == sorted(at)  # every file, whole, in load order
        assert link.startswith("/static/bundle-") and hashlib.sha256(text.encode()).hexdigest()[:16] in link
    for stale in ("/static/bundle-0000000000000000.js", "/static/bundle-x.css", "/static/bundle-.py"):
        status, _, body = get(api + stale)
        assert status == 404 and "Traceback" not in str(body)
    with urllib.request.urlopen(api + "/static/core.js") as response:  # the files themselves are still served
        assert response.status == 200
