"""Run management on the team server: the reader edits nothing, a writer only its own runs, the owner any.

Real roles on the real PostgreSQL server, granted by ``tracker db grant
--apply`` (the ``team`` fixture of test_server_roles): every refusal is one
sentence, and a refused edit changes nothing. Removing runs for good
(``gc``) is the owner's.
"""

import pytest
from click.testing import CliRunner
from test_server_roles import counts, small_run, team  # noqa: F401 - team is a fixture

from tracker import EditRefusedError, RunManager, Store
from tracker.cli import main


def state(url, run_id):
    summary = Store(url).run(run_id)
    return summary["run"]["name"], summary["tags"], summary["run"]["note"], summary["run"]["deleted_at"]


def refused_in_one_sentence(url, *args):
    result = CliRunner().invoke(main, ["--db", url, *args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_the_reader_can_edit_nothing(team):  # noqa: F811
    run_id = small_run(team["alice"], "alices")
    before = state(team["owner"], run_id)
    reader = RunManager(team["reader"])
    for edit in (lambda: reader.rename(run_id, "x"), lambda: reader.tag(run_id, {"k": "v"}),
                 lambda: reader.note(run_id, "n"), lambda: reader.delete(run_id)):
        with pytest.raises(EditRefusedError, match=r"may only read this database \(permission denied: it may not update"):
            edit()
    line = refused_in_one_sentence(team["reader"], "tag", run_id, "k=v")
    assert f"The role {team['alice_role'].replace('writer', 'reader')} may only read this database" in line
    refused_in_one_sentence(team["reader"], "rename", run_id, "x")
    RunManager(team["owner"]).delete(run_id)
    refused_in_one_sentence(team["reader"], "undelete", run_id)
    assert "may only read this database" in refused_in_one_sentence(team["reader"], "gc")
    assert state(team["owner"], run_id)[:3] == before[:3]
    assert Store(team["owner"]).runs(deleted=True)["run_id"].tolist() == [run_id]


def test_a_writer_edits_only_its_own_runs_and_the_owner_any(team):  # noqa: F811
    alice, bob, owner = team["alice"], team["bob"], team["owner"]
    mine = small_run(alice, "alices")
    theirs = small_run(bob, "bobs")
    by_alice = RunManager(alice)
    by_alice.rename(mine, "alice-renamed")
    assert by_alice.tag(mine, {"a": "1", "b": "2"}, remove=[]) == {"a": "1", "b": "2"}
    assert by_alice.tag(mine, remove=["b"]) == {"a": "1"}  # the writer may remove its own tags
    assert by_alice.note(mine, "by alice") == "by alice"
    assert [r.id for r in by_alice.delete(mine)] == [mine]
    assert [r.id for r in by_alice.undelete(mine)] == [mine]
    assert state(owner, mine) == ("alice-renamed", {"a": "1"}, "by alice", None)

    bob_before = state(owner, theirs)
    for edit in (lambda: by_alice.rename(theirs, "x"), lambda: by_alice.tag(theirs, {"k": "v"}),
                 lambda: by_alice.note(theirs, "n"), lambda: by_alice.delete(theirs)):
        with pytest.raises(EditRefusedError, match=f"was created by the role {team['alice_role']}2; the role "
                                                   f"{team['alice_role']} may change only the runs it created"):
            edit()
    line = refused_in_one_sentence(alice, "delete", theirs)
    assert "may change only the runs it created" in line
    assert state(owner, theirs) == bob_before

    # Removing runs for good is the owner's: alice's own trashed run stays, whole, until the owner collects it.
    by_alice.delete(mine)
    before = counts(owner, mine)
    assert "only the database's owner may remove runs for good" in refused_in_one_sentence(alice, "gc")
    assert counts(owner, mine) == before
    owner_runs = RunManager(owner)
    owner_runs.rename(theirs, "renamed-by-owner")
    assert [r.id for r in owner_runs.gc().runs] == [mine]
    assert all(n == 0 for n in counts(owner, mine).values())
    assert Store(team["reader"]).runs()["name"].tolist() == ["renamed-by-owner"]
