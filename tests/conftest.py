"""Shared helpers: the guide's tiny model, generated data, bit-level comparison, and the databases.

Storage tests take the ``db`` fixture, which runs them twice: on a SQLite file
under ``tmp_path`` and on a fresh database of the PostgreSQL server at
``TRACKER_TEST_PG_URL`` (default: the local server, user postgres). Each
pytest run creates its server databases under a unique prefix and drops them
at the end. An unreachable server fails the run with one line: it is never
skipped.
"""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import struct  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def bits(x: float) -> int:
    """The IEEE-754 bit pattern of a float64 (tells NaN payloads and -0.0 apart)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def guide_model(learning_rate: float = 0.1, seed: int = 1, metrics=("mean_absolute_error",), **compile_kw):
    """The guide's model: Dense(1) on 784 inputs, RMSprop, MSE loss."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate),
        loss="mean_squared_error",
        metrics=list(metrics),
        **compile_kw,
    )
    return model


def guide_data(n: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype("float32")
    y = rng.integers(0, 10, n).astype("float32")
    return x, y


class WeightCopies(keras.callbacks.Callback):
    """Test-only: copies ``model.get_weights()`` at each epoch end (list it
    before any restorer, so it copies the weights as trained)."""

    def __init__(self):
        super().__init__()
        self.copies = {}

    def on_epoch_end(self, epoch, logs=None):
        self.copies[epoch] = [np.copy(w) for w in self.model.get_weights()]

    def epoch_of(self, weights):
        """The latest epoch whose end-of-epoch weights equal ``weights``."""
        same = [e for e, c in self.copies.items() if all(np.array_equal(a, b) for a, b in zip(c, weights))]
        return max(same) if same else None


@pytest.fixture(autouse=True)
def _close_pooled_connections():
    """After each test, close the pooled connections of the engines it opened.

    The tracker keeps one engine per database for the process (a notebook
    reuses it); a test suite opens hundreds of databases, and their pooled
    SQLite connections would otherwise pile up as open files.
    """
    yield
    from tracker.db.engine import dispose_engines

    dispose_engines()


@pytest.fixture
def db_path(tmp_path):
    """A SQLite file (for tests of what only exists on SQLite)."""
    return str(tmp_path / "runs.db")


PG_ADMIN_URL = os.environ.get("TRACKER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


class PgServer:
    """Fresh databases on the test server, all under one prefix, dropped at the end."""

    def __init__(self, admin_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.admin_url = make_url(admin_url)
        # pre_ping: a test may restart the server under this pool.
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1, pool_pre_ping=True)
        self.prefix = f"trk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.count = 0
        self._template = None

    def _url(self, name):
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql):
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def template(self):
        """A database migrated to the head revision, copied by ``new``."""
        if self._template is None:
            from tracker.db.engine import dispose_engines
            from tracker.db.migrate import open_database

            name = f"{self.prefix}_tpl"
            self._execute(f'CREATE DATABASE "{name}"')
            url = self._url(name)
            open_database(url)
            dispose_engines(url)
            self._template = name
        return self._template

    def new(self, *, migrated: bool = True) -> str:
        """The URL of a new database: migrated to head (a copy of the template) or empty."""
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        template = f' TEMPLATE "{self.template()}"' if migrated else ""
        self._execute(f'CREATE DATABASE "{name}"{template}')
        return self._url(name)

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        from tracker.db.engine import dispose_engines

        dispose_engines(url)
        self._execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            names = conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": self.prefix + "%"}
            ).scalars().all()
        for name in names:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self.admin.connect() as conn:
            roles = conn.execute(
                text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": self.prefix + "%"}
            ).scalars().all()
        for role in roles:
            self._execute(f'DROP ROLE IF EXISTS "{role}"')
        self.admin.dispose()

    def url_as(self, url: str, user: str, password: str | None = None) -> str:
        """``url`` connecting as another role (the server trusts local connections)."""
        from sqlalchemy.engine import make_url

        return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server():
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    probe = create_engine(PG_ADMIN_URL, pool_pre_ping=False)
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - one clear line, and the run fails
        shown = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        pytest.fail(
            f"PostgreSQL is not reachable at {shown} ({reason}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect 15 main start' or set TRACKER_TEST_PG_URL.",
            pytrace=False,
        )
    finally:
        probe.dispose()
    server = PgServer(PG_ADMIN_URL)
    yield server
    server.close()


def fresh_db(request, tmp_path, backend, name="runs.db", migrated=True):
    """A new database of ``backend``: a SQLite path under ``tmp_path`` or a server URL."""
    if backend == "sqlite":
        return str(tmp_path / name)
    server = request.getfixturevalue("pg_server")
    url = server.new(migrated=migrated)
    request.addfinalizer(lambda: server.drop(url))
    return url


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    """A new database, once on SQLite and once on PostgreSQL."""
    return fresh_db(request, tmp_path, request.param)


def sql(db, statement, params=None):
    """Rows of a query against ``db`` (a path or URL), read outside the tracker."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from tracker.db.engine import resolve_url

    engine = create_engine(resolve_url(db), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params or {})
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def data():
    return guide_data()


@pytest.fixture(autouse=True)
def _fail_on_tracking_warnings():
    """A tracking warning in a test that does not expect one is a bug."""
    with warnings.catch_warnings():
        try:
            from tracker.errors import TrackingWarning
        except ImportError:  # pragma: no cover
            yield
            return
        warnings.simplefilter("error", TrackingWarning)
        yield


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster whose workers can import the tests' trainables; shut down even when a test fails."""
    ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it
    here = os.path.dirname(os.path.abspath(__file__))
    env = {"PYTHONPATH": os.pathsep.join([here, os.path.dirname(here)]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if os.environ.get("KERAS_BACKEND"):
        env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, through Playwright) for one test module; pages: ``ui_support.open_page``."""
    from playwright.sync_api import sync_playwright
    from ui_support import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
