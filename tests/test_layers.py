"""The architecture holds: the read side never imports Keras, modules stay small, layers stay apart."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import guide_data, guide_model

from tracker import TrackingCallback

PACKAGE = Path(__file__).resolve().parent.parent / "tracker"
BACKENDS = ("keras", "tensorflow", "jax", "torch")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("layers") / "runs.db")
    x, y = guide_data(n=64)
    cb = TrackingCallback(path, run_name="layered", params={"lr": 0.1})
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[cb], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    return path


def test_the_read_side_and_every_read_command_never_import_keras_or_a_backend(recorded, tmp_path):
    """tracker.db, tracker.store, the reports, export, plots and every read command of the CLI."""
    commands = [
        ["runs"], ["runs", "--sort", "best:loss"], ["show", "layered"], ["epochs", "layered"],
        ["batches", "layered"], ["lr", "layered"], ["early-stops"], ["restores"], ["compare", "layered"],
        ["export", "compare", "--out", str(tmp_path / "c.csv")], ["plot", "layered", "--out", str(tmp_path / "p.png")],
        ["db", "current"], ["db", "check"],
    ]
    code = (
        "import sys\n"
        "import tracker, tracker.db.engine, tracker.db.migrate, tracker.db.tables, tracker.db.writes\n"
        "import tracker.db.values, tracker.db.keys, tracker.db.metrics, tracker.status\n"
        "import tracker.store.store, tracker.reports, tracker.export, tracker.formatting, tracker.plots\n"
        "from tracker.cli import main\n"
        "store = tracker.Store(sys.argv[1])\n"
        "for name in ('runs',):\n"
        "    getattr(store, name)()\n"
        "store.epochs('layered'); store.batches('layered'); store.evaluations(); store.run('layered')\n"
        "from tracker.reports import REPORTS\n"
        "for report in REPORTS.values():\n"
        "    report(store, None)\n"
        f"for args in {commands!r}:\n"
        "    main(['--db', sys.argv[1], *args], standalone_mode=False)\n"
        f"print('BACKENDS', sorted(m for m in sys.modules if m.split('.')[0] in {BACKENDS!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, recorded], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BACKENDS []" in result.stdout, result.stdout[-2000:]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_write_side_the_guide_callbacks_and_the_demo_import_keras():
    allowed = {"record", "callbacks"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in allowed or relative.name == "demo.py":
            continue
        if any(name.split(".")[0] in BACKENDS for name in _imports(path)):
            offenders.append(str(relative))
    assert offenders == []


def test_the_database_layer_imports_neither_the_recorder_nor_the_read_side():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "db").glob("*.py")
        if any(name.startswith(("tracker.record", "tracker.store", "tracker.cli", "tracker.reports")) for name in _imports(path))
    ]
    assert offenders == []


def test_every_module_keeps_to_about_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 420} == {}


def test_no_module_uses_another_modules_private_names():
    """Narrow collaborators: ``from tracker.x import _private`` and ``obj._private`` of
    another module's objects are not used across modules (a module's own privates are fine)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tracker"):
                package = PACKAGE.parent.joinpath(*node.module.split("."))
                offenders += [
                    f"{path.name}: {a.name}" for a in node.names
                    if a.name.startswith("_") and not (package / f"{a.name}.py").exists()  # a private module is fine
                ]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                # _mapping, _fields, _asdict: the public API of SQLAlchemy rows and named tuples.
                if (isinstance(base, ast.Name) and base.id not in ("self", "cls", "sys") and node.attr not in own
                        and node.attr not in ("_mapping", "_fields", "_asdict") and base.id[0].islower()):
                    offenders.append(f"{path.name}: {base.id}.{node.attr}")
    assert offenders == []
