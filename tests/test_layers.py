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
    cb = TrackingCallback(path, run_name="layered", params={"lr": 0.1}, experiment="grouped")
    model = guide_model()
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[cb], verbose=0)
    model.evaluate(x, y, batch_size=16, callbacks=[cb], verbose=0)
    return path


def test_the_read_side_and_every_read_command_never_import_keras_or_a_backend(recorded, tmp_path):
    """tracker.db, tracker.store, the reports, export, plots and every read command of the CLI."""
    commands = [
        ["runs"], ["runs", "--sort", "best:loss"], ["show", "layered"], ["epochs", "layered"],
        ["batches", "layered"], ["lr", "layered"], ["early-stops"], ["restores"], ["compare", "layered"],
        ["checkpoints"], ["checkpoints", "layered"], ["lineage", "layered"],
        ["export", "compare", "--out", str(tmp_path / "c.csv")], ["plot", "layered", "--out", str(tmp_path / "p.png")],
        ["db", "current"], ["db", "check"], ["experiments"], ["runs", "--experiment", "grouped"],
        ["sweep", "grouped"], ["sweep", "grouped", "--format", "json"],
        ["report", "--experiment", "grouped", "--out", str(tmp_path / "e.html")],
    ]
    code = (
        "import sys\n"
        "import tracker, tracker.db.engine, tracker.db.migrate, tracker.db.tables, tracker.db.writes\n"
        "import tracker.db.values, tracker.db.keys, tracker.db.metrics, tracker.status\n"
        "import tracker.store.store, tracker.reports, tracker.views.export, tracker.views.output, tracker.views.plots\n"
        "from tracker.cli import main\n"
        "store = tracker.Store(sys.argv[1])\n"
        "for name in ('runs',):\n"
        "    getattr(store, name)()\n"
        "store.epochs('layered'); store.batches('layered'); store.evaluations(); store.run('layered')\n"
        "store.checkpoints('layered'); store.lineage('layered')\n"
        "from tracker.reports import REPORTS\n"
        "for report in REPORTS.values():\n"
        "    report(store, None)\n"
        f"for args in {commands!r}:\n"
        "    main(['--db', sys.argv[1], *args], standalone_mode=False)\n"
        f"print('BACKENDS', sorted(m for m in sys.modules if m.split('.')[0] in {BACKENDS!r}))\n"
        "print('TOOLS', sorted(m for m in sys.modules if m.split('.')[0] in ('keras_tuner', 'optuna', 'ray')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, recorded], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BACKENDS []" in result.stdout and "TOOLS []" in result.stdout, result.stdout[-2000:]


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


# The floors of the house, from the ground up. A module imports only modules of
# its own room or of rooms on lower floors; rooms on one floor don't import each
# other. ``tracker/__init__.py`` and the deprecated names sit on top.
FLOORS = [
    {"errors", "status"},
    {"db"},
    {"store", "record"},
    {"callbacks", "integrations", "reports", "manage"},
    {"views"},
    {"ui"},
    {"cli"},
    {"__init__", "export", "plots"},
]
ROOM_FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Every tracker module and the tracker modules it imports (lazy imports inside functions included).

    ``from tracker.cli import db`` names the module ``tracker.cli.db``, not the
    package ``tracker.cli``; ``from tracker.cli import main`` names the package.
    """
    modules = {_module_of(p): p for p in PACKAGE.rglob("*.py")}

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(known(a.name) for a in node.names if a.name.startswith("tracker"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tracker"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else known(node.module))
        graph[name] = targets - {name, ""}
    return graph


def test_every_room_of_the_package_has_a_floor():
    rooms = {_room(m) for m in _graph()}
    assert rooms - set(ROOM_FLOOR) == set(), "add the new room to FLOORS in tests/test_layers.py"


def test_no_import_runs_back_up_a_floor_or_across_one():
    offenders = []
    for module, targets in _graph().items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if other == room or other == "__init__" and target == "tracker":
                continue
            if ROOM_FLOOR[other] >= ROOM_FLOOR[room]:
                offenders.append(f"{module} -> {target}")
    assert sorted(offenders) == []


def test_the_import_graph_has_no_circles():
    graph = _graph()
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target] if target in path else [node, target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_few_modules_sit_flat_in_the_package():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 6, flat


def test_the_public_imports_stay_and_the_old_paths_warn():
    code = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "import tracker, tracker.reports, tracker.callbacks\n"
        "from tracker import Store, TrackingCallback, autolog\n"
        "from tracker.reports import compare_runs, early_stopping_report\n"
        "from tracker.callbacks import EarlyStoppingAtMinLoss\n"
        "from tracker.cli import main\n"
        "for old, new in (('tracker.export', 'read_csv'), ('tracker.plots', 'plot_runs')):\n"
        "    try:\n"
        "        __import__(old)\n"
        "    except DeprecationWarning as w:\n"
        "        print('WARNED', old, w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "from tracker.export import read_csv\n"
        "from tracker.plots import plot_runs\n"
        "import tracker.views.export, tracker.views.plots\n"
        "assert read_csv is tracker.views.export.read_csv and plot_runs is tracker.views.plots.plot_runs\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNED tracker.export tracker.export moved to tracker.views.export" in result.stdout
    assert "WARNED tracker.plots tracker.plots moved to tracker.views.plots" in result.stdout
    assert result.stdout.strip().endswith("OK")


def test_every_subpackage_is_shipped_in_the_wheel():
    """pyproject's explicit package list names every subpackage: an editable install hides a missing one."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "tracker." + ".".join(path.parent.relative_to(PACKAGE).parts) if path.parent != PACKAGE else "tracker"
        for path in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found - listed == set(), f"pyproject.toml does not ship {sorted(found - listed)}"
