"""``tracker watch`` follows a fit running in another process, in a terminal and into a pipe.

The fit (tests/scripts/gated_fit.py) waits before each epoch until the test
has seen the previous one in the view, so the test needs no sleeps: it
polls, with timeouts.
"""

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import keras
import pytest
from conftest import guide_data, guide_model

from tracker import Store, TrackingCallback

HERE = Path(__file__).resolve().parent
TRACKER = Path(sys.executable).parent / "tracker"
EPOCHS = 4
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_started(db):
    try:
        return Store(db).resolve("watched")
    except Exception:  # the file or the run does not exist yet
        return None


class Terminal:
    """A process on a pseudo-terminal of 100 x 30 (what an SSH session gives rich), read as it writes."""

    def __init__(self, args):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.master, self.raw = master, b""

    def read(self):
        poller = select.poll()  # poll, not select: a file number above 1023 is fine
        poller.register(self.master, select.POLLIN)
        while poller.poll(0):
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the process ended and closed the terminal
                break
            if not chunk:
                break
            self.raw += chunk
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def showing(self, text):
        """Everything written so far, if ``text`` is in it; else None."""
        screen = self.read()
        return screen if text in screen else None


@pytest.fixture
def fit(tmp_path):
    db, gates = str(tmp_path / "watch.db"), tmp_path / "gates"
    gates.mkdir()
    proc = subprocess.Popen([sys.executable, str(HERE / "scripts" / "gated_fit.py"), db, str(gates), str(EPOCHS)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: run_started(db) or proc.poll() is not None, 120, "the fit to create its run")
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        yield db, gates, proc
    finally:
        for k in range(EPOCHS):  # never leave the fit waiting
            (gates / str(k)).touch()
        proc.wait(timeout=120)


def test_watch_refreshes_in_place_and_ends_cleanly_with_the_run(fit):
    db, gates, proc = fit
    term = Terminal([str(TRACKER), "--db", db, "watch", "--interval", "0.2"])
    piped = subprocess.Popen([str(TRACKER), "--db", db, "watch", "watched", "--interval", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for k in range(EPOCHS - 1):
        screen = wait_for(lambda: term.showing(f"{k + 1} of {EPOCHS} epochs done"), 60, f"epoch {k} in the view")
        seen.append(screen.count("watched · "))
        # Each stopper's state at the last epoch end, as recorded while the fit runs (not guessed).
        flat = " ".join(screen[screen.rindex("watched · "):].split())
        assert re.search(rf"EarlyStopping after epoch {k}: val_loss best \S+ at epoch \d+, wait \d+ of patience 50",
                         flat), flat[-1500:]
        assert re.search(rf"ReduceLROnPlateau after epoch {k}: val_loss best \S+", flat)
        (gates / str(k)).touch()
    assert proc.wait(timeout=120) == 0
    assert term.proc.wait(timeout=60) == 0
    screen = term.read()
    os.close(term.master)
    frames = screen.count("watched · ")
    assert frames >= 2 and frames > seen[0], "the view was drawn again as epochs came in"
    final = screen[screen.rindex("watched · "):]
    assert "finished" in final and f"{EPOCHS} of {EPOCHS} epochs done" in final
    assert re.search(r"EarlyStopping \(fit\): did not stop; val_loss best \S+ at epoch \d+, wait \d+ of\s+patience 50",
                     final)
    assert max(len(line) for line in final.splitlines()) <= 100

    out, err = piped.communicate(timeout=60)
    assert (piped.returncode, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")][:EPOCHS] == [
        f"epoch {k}" for k in range(EPOCHS)]
    assert any("did not stop" in line for line in lines)


def test_watch_of_an_unknown_run_is_one_sentence(tmp_path):
    from click.testing import CliRunner

    from tracker.cli import main

    db = str(tmp_path / "empty.db")
    assert CliRunner().invoke(main, ["--db", db, "db", "upgrade"]).exit_code == 0
    done = CliRunner().invoke(main, ["--db", db, "watch", "no-such-run"])
    assert done.exit_code == 1 and "No run matches 'no-such-run'" in done.output
    assert len(done.output.strip().splitlines()) == 1


class Raise(keras.callbacks.Callback):
    """Raises ``error`` at the end of epoch 1 (a failing fit, or Ctrl-C during one)."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise self.error


def ended_run(db, status):
    """A real run that ended ``status``: a fit that raised, one interrupted, or a SIGKILLed process."""
    if status == "crashed":
        proc = subprocess.Popen([sys.executable, str(HERE / "scripts" / "train_forever.py"), db, "killed"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        def an_epoch_or_the_end():
            if proc.poll() is not None:
                return True
            rid = run_started_named(db, "killed")
            return rid is not None and len(Store(db).epochs(rid)) > 0

        try:
            wait_for(an_epoch_or_the_end, 120, "an epoch of the job")
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        return Store(db).resolve("killed")
    x, y = guide_data(n=32)
    cb = TrackingCallback(db, run_name=status)
    error = RuntimeError("the loss exploded") if status == "failed" else KeyboardInterrupt()
    with pytest.raises(type(error)):
        guide_model().fit(x, y, batch_size=16, epochs=4, callbacks=[cb, Raise(error)], verbose=0)
    return cb.run_id


def run_started_named(db, name):
    try:
        return Store(db).resolve(name)
    except Exception:  # the file, the schema or the run does not exist yet
        return None


@pytest.mark.parametrize("status", ["failed", "interrupted", "crashed"])
def test_watch_exits_with_status_1_when_the_run_did_not_finish(db, status):
    from click.testing import CliRunner

    from tracker.cli import main

    rid = ended_run(db, status)
    assert Store(db).run(rid)["run"]["status"] == status
    done = CliRunner().invoke(main, ["--db", db, "watch", rid, "--interval", "0.1"])
    assert done.exit_code == 1, done.output
    assert f"· {status}" in done.output


def test_watch_exits_with_status_0_when_the_run_finished(db):
    from click.testing import CliRunner

    from tracker.cli import main

    x, y = guide_data(n=32)
    cb = TrackingCallback(db, run_name="fine")
    guide_model().fit(x, y, batch_size=16, epochs=2, callbacks=[cb], verbose=0)
    done = CliRunner().invoke(main, ["--db", db, "watch", "fine", "--interval", "0.1"])
    assert done.exit_code == 0 and "· finished" in done.output, done.output
