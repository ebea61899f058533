"""Rerun the backend-sensitive tests on JAX and torch.

Keras fixes its backend once per process (``KERAS_BACKEND``), so each
backend gets its own ``python -m pytest -m backend`` subprocess over the test
files that hold ``backend``-marked tests. The default ``python -m pytest``
run is TensorFlow; this file makes the same command cover all three.

``TRACKER_TEST_BACKENDS`` (a comma list, default ``tensorflow,jax,torch``)
leaves a backend out. Inside the subprocess ``TRACKER_IN_BACKEND_RUN=1``
stops this file from recursing.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
IN_BACKEND_RUN = os.environ.get("TRACKER_IN_BACKEND_RUN") == "1"
WANTED = {b.strip() for b in os.environ.get("TRACKER_TEST_BACKENDS", "tensorflow,jax,torch").split(",") if b.strip()}
_MARKED = re.compile(r"pytest\.mark\.backend\b")


def backend_test_files() -> list[str]:
    """The test files that mark at least one test ``backend`` (this file excluded)."""
    return sorted(
        str(p.relative_to(REPO))
        for p in TESTS.glob("test_*.py")
        if p.name != Path(__file__).name and _MARKED.search(p.read_text(encoding="utf-8"))
    )


@pytest.mark.skipif(IN_BACKEND_RUN, reason="already inside a backend run")
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_sensitive_tests_pass_on(backend):
    if backend not in WANTED:
        pytest.skip(f"TRACKER_TEST_BACKENDS={os.environ.get('TRACKER_TEST_BACKENDS')!r} leaves out {backend}")
    try:
        importlib.import_module(backend)
    except ImportError:
        pytest.fail(
            f"The {backend} backend is not installed: run `pip install -e \".[jax,torch]\"` "
            f"(or set TRACKER_TEST_BACKENDS to leave {backend} out).",
            pytrace=False,
        )
    files = backend_test_files()
    assert files, "no test file marks a test with pytest.mark.backend"
    env = dict(os.environ, KERAS_BACKEND=backend, TRACKER_IN_BACKEND_RUN="1", TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "backend", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        pytest.fail(
            f"backend-sensitive tests failed on {backend} (exit {proc.returncode}, {elapsed:.0f} s):\n"
            f"{proc.stdout}\n{proc.stderr[-5000:]}",
            pytrace=False,
        )
