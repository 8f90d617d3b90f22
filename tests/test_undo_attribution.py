"""Undo reverts what the agent's own tool calls changed and nothing else: the user's edits between calls,
other threads' files, renamed credentials, symlinks out of the workdir and secrets are each left alone and
listed (scenarios in tests/harness_undo.py, which bench/faults_undo.py runs too)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ml_intern.session.restore import CHANGED_SINCE
from ml_intern.session.undo import OLDER_VERSION
from tests import harness_undo as lab


async def test_the_users_edits_between_calls_are_kept(sandbox):
    seen = await lab.user_edits_between_calls(sandbox)
    report = seen["report"]
    assert (seen["mine"], seen["new"]) == ("mine v2\n", "user's new file\n")  # never in a call's changes
    assert seen["shared"] == "shared v2 (user)\n"  # put back to before the call that appended, not further
    assert seen["agent1"] == "user\n"  # the agent created it, the user changed it since: kept
    assert seen["agent_files_left"] == ["agent1.txt"]
    assert sorted(report.removed) == ["agent2.txt", "agent_only.txt"]
    assert report.restored == ["shared.txt"]
    assert lab.why(report) == {"agent1.txt": CHANGED_SINCE}


async def test_undoing_one_thread_leaves_the_files_of_threads_working_beside_it(sandbox):
    seen = await lab.two_threads_one_workdir(sandbox)
    report = seen["report"]
    assert seen["left"] == ["b.txt", "bdir", "bdir/x", "c.txt"]  # only A's own a.txt went
    assert report.removed == ["a.txt"]
    assert lab.why(report) == {
        "b.txt": "also changed while a call of thread B ran: left as it is",
        "bdir": "also changed while a call of thread B ran: left as it is",
        "bdir/x": "also changed while a call of thread B ran: left as it is",
    }


async def test_renamed_credentials_and_venv_files_keep_their_only_copy(sandbox):
    seen = await lab.renames_of_uncopyable_files(sandbox)
    originals, report = seen["originals"], seen["report"]
    assert seen["copies"] == {
        "envcopy": originals[".env"],
        "k2": originals["server.key"],
        "moved_x.py": originals["venv/lib/x.py"],
    }
    assert report.removed == [] and report.restored == []
    reasons = lab.why(report)
    assert reasons[".env"] == reasons["server.key"] == "never copied (credential file): left as it is"
    assert reasons["envcopy"] == "may be the only copy of .env, which undo cannot restore: kept"
    assert reasons["k2"] == "may be the only copy of server.key, which undo cannot restore: kept"
    assert reasons["moved_x.py"] == (
        "may be the only copy of something undo does not track (outside, or in venv/, .git, ...),"
        " which undo cannot restore: kept"
    )
    assert lab.TOKEN.encode() not in seen["stored"] and b"KEY MATERIAL" not in seen["stored"]
    line = "  not restored: envcopy (may be the only copy of .env, which undo cannot restore: kept)"
    assert line in report.lines()


async def test_undo_never_writes_through_a_symlink_out_of_the_workdir(sandbox):
    seen = await lab.symlink_swapped_for_a_directory(sandbox)
    report = seen["report"]
    assert seen["outside"] == [("f.txt", "outside original\n"), ("n.txt", "outside note\n")]
    assert seen["data_is_dir"] and seen["data_f"] == "data original\n"  # the agent's swap, undone inside
    assert seen["notes_is_link"]  # the user's swap: left, and nothing written through it
    reasons = lab.why(report)
    assert reasons["notes/n.txt"].startswith("not followed: notes on the way is a symlink")
    assert "data/f.txt" in report.restored and "data/" in report.restored


async def test_secrets_the_agent_wrote_are_never_stored(sandbox):
    seen = await lab.secrets_written_by_the_agent(sandbox)
    first, second = seen["reports"]
    assert lab.TOKEN.encode() not in seen["stored"]
    with sqlite3.connect(sandbox.ml_intern_home / "checkpoints.sqlite") as conn:
        rows = conn.execute("SELECT changes FROM ml_intern_undo_calls").fetchall()
    assert rows == [] or all(lab.TOKEN not in (row[0] or "") for row in rows)
    # Created by the agent, but undo cannot tell it from the user's: never deleted (no copy kept), listed.
    assert seen["envdump_left"] and lab.TOKEN.encode() not in seen["trash"]
    assert lab.why(second)["envdump.txt"] == (
        "left as it is: could not be kept aside (holds a secret: undo keeps no copy of one)"
    )
    # The user's config.py held a secret: never copied, so the agent's edit cannot be reverted; listed.
    assert seen["config"].endswith("# edited\n")
    assert lab.why(second)["config.py"] == "never copied (holds a secret): left as it is"
    assert (first.restored, first.removed, first.not_restored) == (["more.txt"], [], [])
    assert second.removed == ["more.txt"] and second.kept == ["more.txt"]


async def test_credential_files_are_never_copied_and_their_changes_are_listed(sandbox):
    seen = await lab.credential_files_edited(sandbox)
    assert seen["copied"] == []
    reasons = lab.why(seen["report"])
    for rel in lab.CREDENTIALS:
        assert reasons[rel] == "never copied (credential file): left as it is"
        assert seen["contents"][rel].endswith("changed\n")


async def test_the_agents_own_create_edit_delete_are_reverted(sandbox):
    seen = await lab.agent_create_edit_delete(sandbox)
    assert seen["same"] and seen["mode"] == 0o644
    assert seen["dirs"] == ["a.txt", "gone.txt", "sub"]
    assert seen["report"].not_restored == []


async def test_deleted_git_node_modules_env_and_symlinks_are_listed_or_put_back(sandbox):
    lab.put(
        sandbox.workdir, {".git/HEAD": "ref\n", "node_modules/m/i.js": "1\n", ".env": "A=1\n", "f.txt": "f\n"}
    )
    (sandbox.workdir / "link").symlink_to("f.txt")
    script = [lab.bash("rm -rf .git node_modules .env link"), "done"]
    async with lab.open_agent(sandbox, script) as agent:
        await agent.send("clean up")
        report = await agent.undo()
    assert report.restored == ["link"] and (sandbox.workdir / "link").readlink() == Path("f.txt")
    reasons = lab.why(report)
    assert (
        reasons[".git"]
        == reasons["node_modules"]
        == ("a directory undo does not look inside (never copied): left as it is")
    )
    assert reasons[".env"] == "never copied (credential file): left as it is"
    assert "  not restored: .git (a directory undo does not look inside (never copied): left as it is)" in (
        report.lines()
    )


async def test_a_turn_recorded_by_an_older_version_is_listed_and_left_alone(sandbox):
    lab.put(sandbox.workdir, {"a.txt": "a\n"})
    async with lab.open_agent(sandbox, [lab.bash("echo b > a.txt && echo n > new.txt"), "done"]) as agent:
        await agent.send("change")
        store = agent.session.snapshots.store
        old = {"files": {"a.txt": [2, 1, store.put(b"a\n"), 420]}, "dirs": [], "truncated": False}
        new = {"files": {"a.txt": [2, 2, store.put(b"b\n"), 420], "new.txt": [2, 2, "x", 420]}}
        new.update(dirs=[], truncated=False)
        conn = agent.session.snapshots.conn
        async with conn.execute("SELECT base_checkpoint FROM ml_intern_undo_turns") as cursor:
            base = (await cursor.fetchone())[0]
        for table in ("ml_intern_undo_turns", "ml_intern_undo_calls"):  # as an older version left it
            await conn.execute(f"DELETE FROM {table}")
        await conn.execute(
            "INSERT INTO ml_intern_snapshots VALUES (?, ?, ?, 0, ?, ?)",
            ("t1", base, str(sandbox.workdir), *(store.put(json.dumps(m).encode()) for m in (old, new))),
        )
        await conn.commit()
        report = await agent.undo()
    assert (sandbox.workdir / "a.txt").read_text() == "b\n" and (sandbox.workdir / "new.txt").exists()
    assert report.removed == report.restored == []
    assert lab.why(report) == {"a.txt": OLDER_VERSION, "new.txt": OLDER_VERSION}


async def test_a_call_cut_off_before_its_changes_were_recorded_is_listed_and_left_alone(sandbox):
    async with lab.open_agent(sandbox, [lab.bash("echo n > new.txt"), "done"]) as agent:
        await agent.send("make a file")
        conn = agent.session.snapshots.conn
        await conn.execute("UPDATE ml_intern_undo_calls SET changes = NULL, ended_at = NULL")  # as a kill -9
        await conn.commit()
        report = await agent.undo()
    assert (sandbox.workdir / "new.txt").exists() and report.removed == []
    assert report.not_restored == [
        ("(files of: make a file) call 1", "what that call changed was not recorded")
    ]
