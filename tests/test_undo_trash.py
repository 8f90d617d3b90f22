"""Undo never destroys bytes: what it removes or replaces is moved to ML_INTERN_HOME/undo-trash first (the
user may have written it while a long call ran), the report says where, and old trash folders are pruned."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from ml_intern.session import restore, trash
from ml_intern.session.undo import NothingToUndo
from ml_intern.session.undo_report import shown
from tests import harness_undo as lab
from tests import harness_undo_trash as mid

NOT_KEPT = "left as it is: could not be kept aside ({})"


async def test_bytes_the_user_wrote_during_a_long_call_are_kept_aside_and_named(sandbox):
    seen = await mid.user_writes_during_a_long_call(sandbox)
    report, folder = seen["report"], seen["trash"]
    assert report.removed == ["model.ckpt", "notes.md", "started"] and report.restored == ["thesis.md"]
    assert seen["kept"] == {
        "model.ckpt": b"ckpt\n",  # the agent's own file: in the trash too
        "notes.md": mid.NOTES.encode(),
        "started": b"",
        "thesis.md": mid.THESIS_NEW.encode(),
    }
    assert seen["left"]["thesis.md"] == mid.THESIS_OLD.encode() and "notes.md" not in seen["left"]
    assert folder.parent == sandbox.ml_intern_home / "undo-trash" and folder.name.endswith("-t1")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    where = shown(str(folder))
    lines = report.lines()
    assert f"  removed: notes.md (kept in {where}/notes.md)" in lines
    assert f"  restored: thesis.md (what it held is kept in {where}/thesis.md)" in lines
    assert f"What undo removed or replaced is kept 14 days in {where}" in lines
    event = report.event()
    assert event["kept_aside"] == str(folder) and event["kept"] == sorted(seen["kept"])
    # The .env the user made meanwhile is a credential file: never moved into the trash, never deleted.
    assert seen["left"][".env"] == f"HF_TOKEN={lab.TOKEN}\n".encode()
    assert lab.why(report) == {".env": NOT_KEPT.format("a credential file: undo keeps no copy of one")}
    assert lab.TOKEN.encode() not in lab.trash_bytes(sandbox)


async def test_old_trash_folders_are_pruned_at_the_next_undo_and_nothing_else(sandbox):
    root = sandbox.ml_intern_home / "undo-trash"
    now = time.time()
    names = {days: time.strftime(trash.STAMP, time.gmtime(now - days * 86400)) + "-t1" for days in (20, 13)}
    for name in (*names.values(), "my-own-folder"):
        lab.put(root / name, {"f.txt": "kept\n"})
    (root / "20000101T000000Z-not-a-dir").write_text("x\n")
    async with lab.open_agent(sandbox, [lab.bash("echo n > new.txt"), "done"]) as agent:
        await agent.send("make")
        report = await agent.undo()
    left = sorted(p.name for p in root.iterdir())
    made = Path(report.kept_aside).name
    assert left == sorted([names[13], "20000101T000000Z-not-a-dir", "my-own-folder", made])
    assert trash.prune(root, now=now + 2 * 86400) == [names[13]]  # 15 days old by then; this undo's is 2


async def test_a_trash_that_cannot_be_made_leaves_every_file_in_place(sandbox):
    (sandbox.ml_intern_home / "undo-trash").write_text("not a directory\n")  # pruning and keeping both fail
    lab.put(sandbox.workdir, {"a.txt": "a\n"})
    async with lab.open_agent(sandbox, [lab.bash("echo n > new.txt && echo b > a.txt"), "done"]) as agent:
        await agent.send("make")
        report = await agent.undo()
    assert mid.tree(sandbox.workdir) == {"a.txt": b"b\n", "new.txt": b"n\n"}
    assert report.removed == report.restored == [] and report.kept_aside == ""
    assert set(lab.why(report)) == {"a.txt", "new.txt"}
    assert all(why.startswith("left as it is: could not be kept aside (") for why in lab.why(report).values())


def across_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    def rename(name: str, src: int, dst: int) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(trash, "rename", rename)


CROSS = "echo n > new.txt && chmod 640 new.txt && ln -s a.txt lnk && echo b > a.txt"


async def test_across_file_systems_files_are_copied_with_their_metadata_then_removed(sandbox, monkeypatch):
    across_devices(monkeypatch)
    lab.put(sandbox.workdir, {"a.txt": "a\n"})
    async with lab.open_agent(sandbox, [lab.bash(CROSS), "done"]) as agent:
        await agent.send("make")
        made = (sandbox.workdir / "new.txt").stat()
        report = await agent.undo()
    folder = Path(report.kept_aside)
    assert mid.tree(folder) == {"a.txt": b"b\n", "lnk": "-> a.txt", "new.txt": b"n\n"}
    copy = (folder / "new.txt").stat()
    assert (stat.S_IMODE(copy.st_mode), copy.st_mtime_ns) == (0o640, made.st_mtime_ns)
    assert mid.tree(sandbox.workdir) == {"a.txt": b"a\n"}
    assert (report.removed, report.restored, report.not_restored) == (["lnk", "new.txt"], ["a.txt"], [])


async def test_a_copy_that_fails_leaves_the_file_in_place_and_listed(sandbox, monkeypatch):
    across_devices(monkeypatch)

    def write_copy(*args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(trash, "write_copy", write_copy)
    lab.put(sandbox.workdir, {"a.txt": "a\n"})
    async with lab.open_agent(sandbox, [lab.bash("echo n > new.txt && echo b > a.txt"), "done"]) as agent:
        await agent.send("make")
        report = await agent.undo()
    assert mid.tree(sandbox.workdir) == {"a.txt": b"b\n", "new.txt": b"n\n"}  # nothing deleted or overwritten
    assert report.removed == report.restored == [] and report.kept_aside == ""
    assert lab.why(report) == {rel: NOT_KEPT.format("Permission denied") for rel in ("a.txt", "new.txt")}
    assert mid.tree(sandbox.ml_intern_home / "undo-trash") == {}  # no partial copy left


async def test_a_file_over_the_snapshot_cap_is_never_removed(sandbox):
    async with lab.open_agent(sandbox, [lab.bash("head -c 5000 /dev/zero > big.bin"), "done"]) as agent:
        agent.session.snapshots.max_file_bytes = 1024
        await agent.send("make")
        report = await agent.undo()
    assert (sandbox.workdir / "big.bin").stat().st_size == 5000 and report.removed == []
    assert lab.why(report)["big.bin"].startswith("left as it is: could not be kept aside (over the ")


async def test_an_undo_cancelled_while_it_moves_files_aside_runs_to_its_end(sandbox, monkeypatch):
    moving = threading.Event()
    apply = restore.FileRewind.apply

    def slow_apply(self: restore.FileRewind, store: object) -> None:
        moving.set()
        time.sleep(0.3)
        apply(self, store)

    monkeypatch.setattr(restore.FileRewind, "apply", slow_apply)
    async with lab.open_agent(sandbox, [lab.bash("echo n > new.txt"), "done"]) as agent:
        await agent.send("make")
        task = asyncio.ensure_future(agent.undo())
        while not moving.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        report = await task
        assert report.removed == ["new.txt"] and (Path(report.kept_aside) / "new.txt").read_text() == "n\n"
        with pytest.raises(NothingToUndo):  # the conversation was rewound too
            await agent.undo()
    assert not (sandbox.workdir / "new.txt").exists()
