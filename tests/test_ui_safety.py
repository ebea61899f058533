"""The dashboard and reports on a hostile network (issue 17, points 13, 14, 30).

* A password given as ``?password=`` is masked wherever a URL is printed,
  and the dashboard and reports show a display name, never the path or URL.
* The Host check answers only the bound address, the machine's names and
  ``--allow-host`` names: real HTTP requests with forged Host headers to a
  real ``tracker ui`` process.
* ``/api/runs`` writes a NaN or ±inf best or evaluate value as a string.
"""

import http.client
import json
import math
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import keras
from click.testing import CliRunner
from conftest import guide_data, guide_model
from sqlalchemy.engine import make_url
from ui_support import get

from tracker import TrackingCallback
from tracker.cli import main
from tracker.errors import TrackingWarning
from tracker.ui.app import create_app
from tracker.ui.server import running_server

REPO = Path(__file__).resolve().parent.parent
SECRET = "hunter2-s3cret"


def with_password(db):
    """``db`` with a password in its query (the test server trusts local connections and ignores it)."""
    return f"{db}?password={SECRET}" if "://" in db else db


def one_run(db, name="run", **kwargs):
    x, y = guide_data(n=16)
    cb = TrackingCallback(db, run_name=name, **kwargs)
    guide_model().fit(x, y, batch_size=16, epochs=1, callbacks=[cb], verbose=0)
    return cb.run_id


class TrackerUI:
    """A real ``tracker ui`` process; ``port`` read from its banner."""

    def __init__(self, db, *args):
        self.proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "--db", db, "ui", "--port", "0", *args],
                                     stderr=subprocess.PIPE, text=True)
        self.lines = []
        while not self.lines or "http://" not in self.lines[-1]:
            line = self.proc.stderr.readline()
            assert line, f"tracker ui exited: {''.join(self.lines)}"
            self.lines.append(line)
        self.port = int(self.lines[-1].split("http://", 1)[1].split()[0].rsplit(":", 1)[1])

    def status(self, address, host):
        """The status of GET /api/runs sent to ``address`` with the header ``Host: host``."""
        conn = http.client.HTTPConnection(address, self.port, timeout=30)
        try:
            conn.request("GET", "/api/runs", headers={"Host": host})
            response = conn.getresponse()
            body = response.read()
            if response.status == 400:
                assert "--allow-host" in json.loads(body)["error"]
            return response.status
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def test_a_query_password_is_masked_and_the_dashboard_shows_a_display_name(db, tmp_path):
    url = with_password(db)
    rid = one_run(url)
    current = CliRunner().invoke(main, ["--db", url, "db", "current"])
    assert current.exit_code == 0 and SECRET not in current.output
    if "://" in db:
        assert "password=***" in current.output
        parsed = make_url(db)
        shown = f"{parsed.host}:{parsed.port}/{parsed.database}"
    else:
        shown = "runs.db"
    with running_server(create_app(url)) as base:
        status, _, keys = get(base + "/api/keys")
    assert status == 200 and keys["database"] == shown  # no folder, no user, no password
    out = tmp_path / "report.html"
    done = CliRunner().invoke(main, ["--db", url, "report", rid, "--out", str(out)])
    assert done.exit_code == 0, done.output
    html = out.read_text(encoding="utf-8")
    assert SECRET not in html and str(tmp_path) not in html and "postgres@" not in html
    ui = TrackerUI(url)
    try:
        banner = "".join(ui.lines)
        assert SECRET not in banner and ("password=***" in banner or "://" not in db)
    finally:
        ui.stop()


def test_error_lines_and_warnings_never_show_a_query_password():
    url = f"postgresql+psycopg://postgres@127.0.0.1:1/x?password={SECRET}&sslpassword={SECRET}"
    for args in (["runs"], ["db", "current"], ["db", "check"], ["show", "latest"]):
        done = subprocess.run([sys.executable, str(REPO / "cli.py"), "--db", url, *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and SECRET not in done.stderr + done.stdout, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", TrackingWarning)
        TrackingCallback(url, run_name="x")
    assert seen and all(SECRET not in str(w.message) for w in seen)


def test_the_host_check_answers_the_bound_address_and_refuses_forged_hosts(tmp_path):
    db = str(tmp_path / "runs.db")
    assert CliRunner().invoke(main, ["--db", db, "db", "upgrade"]).exit_code == 0
    ui = TrackerUI(db, "--host", "127.0.0.2")
    try:
        assert ui.status("127.0.0.2", f"127.0.0.2:{ui.port}") == 200  # its own URL
        assert ui.status("127.0.0.2", "localhost") == 200
        for forged in ("attacker.example", f"attacker.example:{ui.port}", "127.0.0.3", "[::2]", ""):
            assert ui.status("127.0.0.2", forged) == 400, forged
    finally:
        ui.stop()


def test_a_non_loopback_host_keeps_the_check_and_allow_host_adds_names(tmp_path):
    db = str(tmp_path / "runs.db")
    assert CliRunner().invoke(main, ["--db", db, "db", "upgrade"]).exit_code == 0
    ui = TrackerUI(db, "--host", "0.0.0.0", "--allow-host", "Dash.Example", "--allow-host", "other.example")
    try:
        assert "Warning: listening on 0.0.0.0" in "".join(ui.lines) and "--allow-host" in "".join(ui.lines)
        assert ui.status("127.0.0.1", "attacker.example") == 400  # a rebinding page names its own domain
        assert ui.status("127.0.0.1", f"rebind.attacker.example:{ui.port}") == 400
        assert ui.status("127.0.0.1", f"127.0.0.1:{ui.port}") == 200  # the address it came in on
        assert ui.status("127.0.0.1", socket.gethostname()) == 200  # the machine's name
        assert ui.status("127.0.0.1", f"dash.example:{ui.port}") == 200
        assert ui.status("127.0.0.1", "OTHER.example") == 200
    finally:
        ui.stop()


class Odd(keras.callbacks.Callback):
    """Logs ``odd`` = ``value`` at every epoch end and at the end of evaluate (listed before the tracker)."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def on_epoch_end(self, epoch, logs=None):
        logs["odd"] = self.value

    def on_test_end(self, logs=None):
        logs["odd"] = self.value


def test_api_runs_writes_non_finite_best_and_evaluate_values_as_strings(db):
    x, y = guide_data(n=16)
    expected = {}
    for value, text in ((math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")):
        cb = TrackingCallback(db, run_name=text)
        model = guide_model()
        history = model.fit(x, y, batch_size=16, epochs=2, callbacks=[Odd(value), cb], verbose=0).history
        assert [repr(v) for v in history["odd"]] == [repr(value)] * 2  # what Keras passed
        evaluated = model.evaluate(x, y, batch_size=16, callbacks=[Odd(value), cb], verbose=0, return_dict=True)
        assert repr(evaluated.get("odd", value)) == repr(value)
        expected[text] = text
    with running_server(create_app(db)) as base:
        status, _, runs = get(base + "/api/runs?metric=odd")
    assert status == 200 and len(runs) == 3
    for run in runs:
        assert run["metric"] == "odd"
        assert run["best"] == expected[run["name"]], run
        assert run["evaluate"]["odd"] == expected[run["name"]], run
