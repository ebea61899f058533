"""The documentation's examples run, so README.md and docs/ cannot drift from the code.

How to write an example that this test runs (README.md and every page under docs/):

* A fenced block with the info string ``console`` is a shell session, and it is run. Its
  commands are the lines starting with ``$ ``; a line ending in a backslash continues on the
  next. Every other line is what the command printed (stdout and stderr together).
* Each page runs in a fresh temporary folder that holds two databases, built once per test
  session exactly as the docs build them:

  - ``tracker.db``, by ``tracker demo``: the runs ``demo-early-stopping`` and
    ``demo-lr-schedule``. It is the default database, so ``--db`` may be left out;
  - ``sweep.db``, by ``python scripts/sweep.py sweep.db``: the runs ``lr-0.001``,
    ``lr-0.01``, ``lr-0.1`` and ``lr-0.5``;
  - ``ckpt.db``, by ``python scripts/checkpoints.py ckpt.db``: the runs ``pretrain`` (with
    a best-only ModelCheckpoint) and ``finetune`` (started from its ``best.keras``), and the
    model files ``best.keras``, ``model-v3.keras`` and ``untrained.weights.h5``.

  A page's commands run in the page's order in that folder, so a later command sees what
  an earlier one wrote (``--out compare.csv``, a copied database). ``$TRACKER_DB`` is unset
  and ``$COLUMNS`` is 100, so show tables as a terminal 100 columns wide prints them.
* Only ``tracker`` commands run (pipes and redirections allowed: they run under
  ``bash -o pipefail``). The two set-up commands above may be shown; they are not run again,
  and their shown output is checked against the set-up's. Any other command in a ``console``
  block fails this test: show it in a ``bash`` block.
* A command must exit with status 0, or with the status its line names in a trailing
  comment (``$ tracker show nothing  # exit status 1``), and never print a traceback.
* Shown output is checked by its stable words. In each shown line, leave out the words that
  change from one run to the next (numbers, dates, times, durations, run ids, absolute
  paths) and the word ``...``; the words left must appear, in that order, in one line of
  what the command printed. A line holding only ``...`` stands for lines left out, and rules
  of ``─`` are layout. So paste output as printed, and cut it with ``...``.
* ``tracker ui`` serves until it is stopped: never put it in a ``console`` block.
* ``bash`` blocks (and ``text`` for screen captures) are shown, never run: use them for
  commands that need what this test cannot give (a team server, a password, a browser, an
  hour of benchmarks).
* A ``python`` block must compile. A ``pycon`` block (``>>> `` prompts) runs as a doctest
  in the page's folder, with ELLIPSIS and NORMALIZE_WHITESPACE; the blocks of a page share
  their names, in the page's order.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
COLUMNS = "100"
SETUP = {
    "tracker demo": ["tracker", "demo"],
    "python scripts/sweep.py sweep.db": [sys.executable, str(REPO / "scripts" / "sweep.py"), "sweep.db"],
    "python scripts/tuner_sweeps.py tuners.db": [sys.executable, str(REPO / "scripts" / "tuner_sweeps.py"), "tuners.db"],
    "python scripts/checkpoints.py ckpt.db": [sys.executable, str(REPO / "scripts" / "checkpoints.py"), "ckpt.db"],
}
DATABASES = ("tracker.db", "sweep.db", "tuners.db", "ckpt.db")
#: Model files the set-up writes (scripts/checkpoints.py), copied into each page's folder with the databases.
MODEL_FILES = ("best.keras", "model-v3.keras", "untrained.weights.h5")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^\s`{]*)[^\n]*$")
EXIT = re.compile(r"\s+#\s*exit status (\d+)\s*$")


@dataclass
class Command:
    line: str  # the command as shown, continuation lines joined
    lineno: int
    status: int = 0
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    info: str
    lineno: int  # the first line inside the fence, counted from 1
    text: str


def blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order (an indented fence is dedented)."""
    found, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        found.append(Block(opening["info"].lower(), i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return found


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block, each with its status and shown output."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            start, text = i, line[2:]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            status = EXIT.search(text)
            command = Command(EXIT.sub("", text).strip(), block.lineno + start, int(status[1]) if status else 0)
            found.append(command)
        elif found:
            found[-1].output.append(line)
        elif line.strip():
            raise AssertionError(f"line {block.lineno + i}: a console block starts with a '$ ' command, not {line!r}")
        i += 1
    return found


VARIABLE = [
    re.compile(r"[-+]?[\d.,:/]*\d[\d.,:/]*([eE][-+]?\d+)?(%|s|ms|us|µs|Z|x|×|B|KB|MB|GB|KiB|MiB|GiB)?"),
    re.compile(r"\d+h\d+m|\d+m\d+s"),  # durations: 2h03m, 4m05s
    re.compile(r"\d{4}-\d\d-\d\d([T ][\d:.]+)?([+-]\d\d:\d\d|Z)?"),  # dates and ISO times
    re.compile(r"(?=.*\d)[0-9a-f]{8,32}"),  # run ids, short or whole
    re.compile(r"/.*"),  # absolute paths
]
PUNCTUATION = "()[]{},;:'\"·"


def words(line: str) -> list[str]:
    """The words of a line, with punctuation at their ends removed."""
    return [w for w in (raw.strip(PUNCTUATION) for raw in line.split()) if w]


def stable_words(line: str) -> list[str]:
    """The words of a shown output line that must appear as printed (see the module docstring)."""
    return [
        w for w in words(line)
        if w != "..." and set(w) != {"─"} and not any(p.fullmatch(w) for p in VARIABLE)
    ]


def missing_lines(shown: list[str], printed: str) -> list[str]:
    """The shown lines whose stable words no printed line holds, in order."""
    printed_lines = [words(line) for line in printed.splitlines()]

    def holds(line_words: list[str], wanted: list[str]) -> bool:
        it = iter(line_words)
        return all(any(w == x for x in it) for w in wanted)

    return [
        line for line in shown
        if (wanted := stable_words(line)) and not any(holds(p, wanted) for p in printed_lines)
    ]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_DB"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["COLUMNS"] = COLUMNS
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder with tracker.db and sweep.db, built by the set-up commands; their outputs."""
    folder = tmp_path_factory.mktemp("docs-databases")
    jobs = {
        line: subprocess.Popen(argv, cwd=folder, env=environment(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line, argv in SETUP.items()
    }
    outputs = {}
    for line, job in jobs.items():
        out, _ = job.communicate(timeout=600)
        assert job.returncode == 0, f"{line} failed:\n{out[-3000:]}"
        assert "Traceback" not in out, out[-3000:]
        outputs[line] = out
    for name in DATABASES:  # each file alone holds its ended runs: the pages get a copy of the file only
        wal = folder / f"{name}-wal"
        assert (folder / name).is_file() and (not wal.exists() or wal.stat().st_size == 0), f"{name} is not one file"
    return folder, outputs


def run_console(command: Command, folder: Path, setup_outputs: dict[str, str]) -> str:
    """Run one command of a console block in ``folder`` and check its status; return what it printed."""
    if command.line in SETUP:
        return setup_outputs[command.line]
    assert command.line.split()[0] == "tracker", (
        f"line {command.lineno}: only tracker commands run in a console block; show {command.line!r} in a bash block"
    )
    assert not re.search(r"(^|\s)ui(\s|$)", command.line.split("|")[0]), (
        f"line {command.lineno}: tracker ui serves until stopped; show it in a bash block"
    )
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command.line], cwd=folder, env=environment(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    printed = result.stdout + result.stderr
    where = f"line {command.lineno}: $ {command.line}"
    assert "Traceback (most recent call last)" not in result.stderr, f"{where}\n{result.stderr[-3000:]}"
    assert result.returncode == command.status, (
        f"{where}\nexited {result.returncode}, the docs say {command.status}\n{printed[-3000:]}"
    )
    return printed


def run_pycon(block: Block, page: Path, globs: dict) -> None:
    """Run a pycon block as a doctest; fail with doctest's report."""
    test = doctest.DocTestParser().get_doctest(block.text, globs, page.name, str(page), block.lineno - 1)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=report.append, clear_globs=False)
    globs.update(test.globs)  # the DocTest ran on a copy: the page's next block sees these names
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_example_of_the_page_runs(page, databases, tmp_path, monkeypatch):
    folder, setup_outputs = databases
    for name in (*DATABASES, *MODEL_FILES):
        shutil.copy(folder / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    globs: dict = {}
    text = page.read_text(encoding="utf-8")
    for block in blocks(text):
        if block.info == "console":
            shown = commands(block)
            assert shown, f"{page.name} line {block.lineno}: a console block without a '$ ' command"
            for command in shown:
                printed = run_console(command, tmp_path, setup_outputs)
                missing = missing_lines(command.output, printed)
                assert not missing, (
                    f"{page.name} line {command.lineno}: $ {command.line}\n"
                    "these shown lines were not printed:\n  " + "\n  ".join(missing)
                    + f"\nit printed:\n{printed[-4000:]}"
                )
        elif block.info == "python":
            compile(block.text, f"{page.name}:{block.lineno}", "exec")
        elif block.info == "pycon":
            run_pycon(block, page, globs)


def test_the_output_check_keeps_stable_words_and_catches_a_wrong_one():
    shown = "c8a1d728  lr-0.01   finished  2026-11-27 12:56:16Z     4.14s      19      0.01        3.37644     14"
    assert stable_words(shown) == ["lr-0.01", "finished"]
    assert stable_words("──────  ──  ...") == []
    line = "ended 2h03m later at /tmp/x/tracker.db (pid 16722): 4m05s, 12%"
    assert stable_words(line) == ["ended", "later", "at", "pid"]
    printed = "8210c52a  lr-0.01  finished  2026-12-05 11:25:16Z  1.67s  19  0.01  3.37644  14\n"
    assert missing_lines([shown], printed) == []
    assert missing_lines([shown.replace("finished", "failed")], printed) == [shown.replace("finished", "failed")]
    assert missing_lines(["finished  lr-0.01"], printed) == ["finished  lr-0.01"]  # order counts


def test_console_blocks_give_commands_statuses_and_output():
    text = "```console\n$ tracker --db x.db \\\n    runs  # exit status 1\nError: no\n\n$ tracker runs\n```\n"
    (block,) = blocks(text)
    first, second = commands(block)
    assert (first.line, first.status, first.output, first.lineno) == ("tracker --db x.db runs", 1, ["Error: no", ""], 2)
    assert (second.line, second.status, second.output) == ("tracker runs", 0, [])
    with pytest.raises(AssertionError, match="starts with a"):
        commands(Block("console", 1, "output before any command\n"))


def test_the_readme_commands_are_the_ones_ci_runs():
    """CI installs the project the README's way and runs the README's test command, verbatim."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    shown = [b.text.strip() for b in blocks(readme) if b.info == "bash"]
    install = next(line for line in shown if line.startswith("python3 -m venv .venv"))
    tests = next(line for line in shown if "python -m pytest" in line)
    docs = next(line for line in shown if "mkdocs build --strict" in line)
    for line in (install, tests, docs):
        assert line in ci, f"README shows {line!r}, but .ci/run does not run it"


def test_the_site_lists_every_page_and_the_pages_exist():
    """Every page under docs/ is in mkdocs.yml's nav, and every nav entry exists.

    (``mkdocs build --strict`` checks the links between pages; the README is not part of the site,
    so its links into docs/ are checked here.)
    """
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, flags=re.M))
    on_disk = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    assert listed == on_disk
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert targets and [t for t in targets if not (REPO / t).is_file()] == []


def test_the_readme_stays_a_front_page():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 400


def test_the_layout_page_names_every_module():
    """docs/layout.md matches the code: it names every subpackage and every module of tracker/."""
    layout = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    package = REPO / "tracker"
    missing = [
        str(path.relative_to(package)) for path in package.rglob("*.py")
        if path.name != "__init__.py" and f"`{path.name}`" not in layout and f"{path.stem}.py" not in layout
    ]
    missing += [
        f"tracker/{path.name}/" for path in package.iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and f"tracker/{path.name}/" not in layout
    ]
    assert missing == [], f"docs/layout.md does not mention {missing}"
