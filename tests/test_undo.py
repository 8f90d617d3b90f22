"""Undo end to end: a scripted model drives the real local tools on a real SQLite file; undo rewinds the
conversation along the head's parent chain and puts the working directory back byte for byte."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import stat
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage

import ml_intern.tools.hub.repo as hub_repo
import ml_intern.tools.hub.repo_git as hub_repo_git
import ml_intern.tools.jobs.tool as jobs
from ml_intern.errors import UserError
from ml_intern.graph.context import RunContext
from ml_intern.model.ids import ModelSpec
from ml_intern.services import Services
from ml_intern.session.runner import TurnOutcome, new_turn
from ml_intern.session.session import Session, open_session
from ml_intern.session.undo import NothingToUndo, UndoReport, undo_turns
from ml_intern.session.undo_report import shown
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.registry import build_tools
from tests.fakes.chat_model import ScriptedChatModel
from tests.fakes.hub_server import FakeHub
from tests.fakes.jobs_server import FakeJobsHub

THREAD = "undo-thread"
SYSTEM_PROMPT = "You are the test agent."
_call_ids = itertools.count(1)


def calls(*pairs: tuple[str, dict[str, Any]]) -> AIMessage:
    """An assistant reply calling tools, with unique call ids."""
    return AIMessage(
        content="",
        tool_calls=[
            {"name": n, "args": a, "id": f"call_{next(_call_ids)}", "type": "tool_call"} for n, a in pairs
        ],
    )


@dataclass
class Agent:
    """A session on the sandbox's database whose model plays a script, with the real local tools."""

    session: Session
    model: ScriptedChatModel
    ctx: RunContext
    events: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, prompt: str) -> TurnOutcome:
        return await self.session.turn(THREAD, new_turn(prompt), self.ctx, self.events.append, title=prompt)

    async def undo(self, n: int = 1) -> UndoReport:
        return await self.session.undo(THREAD, n)

    async def state(self) -> dict[str, Any]:
        return (await self.session.app.aget_state({"configurable": {"thread_id": THREAD}})).values


@asynccontextmanager
async def open_agent(
    sandbox: Any,
    answers: list[Any],
    extra_tools: tuple[Any, ...] = (),
    approval: str = "auto",
    config: dict | None = None,
) -> AsyncIterator[Agent]:
    model = ScriptedChatModel(answers)
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    services = Services(
        model=ModelSpec(model_id="test/scripted", litellm_model="test/scripted"),
        chat_model=model,
        tools=[*build_tools(env, ["bash", "read", "write", "edit"]), *extra_tools],
        config=config or {},
        prompt=SYSTEM_PROMPT,
    )
    ctx = RunContext(
        model="test/scripted", workdir=str(sandbox.workdir), approval=approval, services=services
    )
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        yield Agent(session=session, model=model, ctx=ctx)


def tree(root: Path) -> dict[str, Any]:
    """Every file's bytes and mode, and every directory, under `root`."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        found[rel + "/" if path.is_dir() else rel] = (
            None if path.is_dir() else (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
        )
    return found


def transcript(messages: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in messages]


def thread_row(sandbox: Any) -> tuple[int, str, int]:
    """(turns, title, input_tokens) of the thread's row, read with plain sqlite3."""
    with sqlite3.connect(sandbox.ml_intern_home / "checkpoints.sqlite") as conn:
        query = "SELECT turns, title, input_tokens FROM ml_intern_threads WHERE thread_id = ?"
        return conn.execute(query, (THREAD,)).fetchone()


def thread_turns(sandbox: Any) -> int:
    return thread_row(sandbox)[0]


def seed_workdir(workdir: Path) -> None:
    (workdir / "model.py").write_bytes(b"lr = 0.1\nepochs = 3\n")
    (workdir / "data.bin").write_bytes(bytes(range(256)) * 4)
    (workdir / "doomed.txt").write_bytes(b"delete me\r\n")
    (workdir / "notes").mkdir()
    (workdir / "notes" / "keep.md").write_bytes(b"# notes\n")
    (workdir / "model.py").chmod(0o644)


TURN_ONE = [
    calls(("read", {"path": "model.py"})),
    calls(
        ("edit", {"path": "model.py", "old_str": "lr = 0.1", "new_str": "lr = 0.01"}),
        ("write", {"path": "runs/cfg/a.yaml", "content": "a: 1\n"}),
    ),
    calls(
        (
            "bash",
            {
                "command": "rm doomed.txt && mkdir -p out/deep && printf x > out/deep/r.txt"
                " && printf '\\000\\001' >> data.bin && chmod +x model.py"
            },
        )
    ),
    "turn one done",
]
TURN_TWO = [
    calls(
        ("bash", {"command": "printf 'epochs = 9\\n' >> model.py && echo two > two.txt && rm notes/keep.md"})
    ),
    calls(("write", {"path": "runs/cfg/a.yaml", "content": "a: 2\n"})),
    "turn two done",
]


async def test_two_undos_put_back_write_edit_and_bash_changes_byte_for_byte(sandbox):
    seed_workdir(sandbox.workdir)
    before = tree(sandbox.workdir)
    async with open_agent(sandbox, TURN_ONE + TURN_TWO) as agent:
        await agent.send("one")
        after_one, state_one = tree(sandbox.workdir), await agent.state()
        await agent.send("two")
        assert tree(sandbox.workdir) != after_one and (sandbox.workdir / "two.txt").exists()

        first = await agent.undo()
        assert tree(sandbox.workdir) == after_one
        assert (first.turns_undone, first.prompts, first.not_restored) == (1, ["two"], [])
        assert first.restored == ["model.py", "notes/keep.md", "runs/cfg/a.yaml"]
        assert first.removed == ["two.txt"]
        assert first.messages_removed == 6
        state = await agent.state()
        assert transcript(state["messages"]) == transcript(state_one["messages"])
        assert state["usage"] == state_one["usage"] and state["stop_reason"] == "end_turn"

        second = await agent.undo()
        assert tree(sandbox.workdir) == before
        assert second.restored == ["data.bin", "doomed.txt", "model.py"]
        assert second.removed == [
            "out/",
            "out/deep/",
            "out/deep/r.txt",
            "runs/",
            "runs/cfg/",
            "runs/cfg/a.yaml",
        ]
        assert (second.turns_undone, second.messages_removed, second.prompts) == (1, 9, ["one"])
        assert await agent.state() == {}
        assert thread_turns(sandbox) == 0
        with pytest.raises(NothingToUndo, match=f"nothing to undo in thread {THREAD}"):
            await agent.undo()


async def test_undo_of_several_turns_at_once_goes_back_to_before_the_earliest(sandbox):
    seed_workdir(sandbox.workdir)
    before = tree(sandbox.workdir)
    async with open_agent(sandbox, [*TURN_ONE, *TURN_TWO, "three done"]) as agent:
        for prompt in ("one", "two", "three"):
            await agent.send(prompt)
        report = await undo_turns(agent.session, THREAD, n=5)
    assert (report.turns_undone, report.prompts) == (3, ["one", "two", "three"])
    assert tree(sandbox.workdir) == before
    assert report.messages_removed == 17


async def test_file_changed_by_the_user_after_the_turn_is_left_alone_and_reported(sandbox):
    seed_workdir(sandbox.workdir)
    script = [
        calls(("write", {"path": "result.txt", "content": "agent\n"})),
        calls(("bash", {"command": "echo agent >> model.py && echo agent > gone.txt"})),
        "done",
    ]
    async with open_agent(sandbox, script) as agent:
        await agent.send("work")
        (sandbox.workdir / "result.txt").write_bytes(b"mine\n")
        (sandbox.workdir / "gone.txt").unlink()
        report = await agent.undo()
    assert (sandbox.workdir / "result.txt").read_bytes() == b"mine\n"
    assert not (sandbox.workdir / "gone.txt").exists()
    assert (sandbox.workdir / "model.py").read_bytes() == b"lr = 0.1\nepochs = 3\n"
    assert report.restored == ["model.py"] and report.removed == []
    assert report.not_restored == [
        ("gone.txt", "changed since, by you or another process: left as it is"),
        ("result.txt", "changed since, by you or another process: left as it is"),
    ]
    assert (
        "  not restored: result.txt (changed since, by you or another process: left as it is)"
        in report.lines()
    )


async def test_file_over_the_size_cap_is_reported_and_left_alone(sandbox):
    big = sandbox.workdir / "weights.bin"
    with big.open("wb") as out:
        out.truncate(21 * 2**20)  # sparse: over the 20 MB cap without writing 21 MB
    (sandbox.workdir / "small.txt").write_bytes(b"small\n")
    script = [calls(("bash", {"command": "printf x >> weights.bin && echo more >> small.txt"})), "done"]
    async with open_agent(sandbox, script) as agent:
        await agent.send("append")
        report = await agent.undo()
    assert big.stat().st_size == 21 * 2**20 + 1
    assert (sandbox.workdir / "small.txt").read_bytes() == b"small\n"
    assert report.not_restored == [
        ("weights.bin", "never copied (over the 20 MB snapshot size cap): left as it is")
    ]
    assert report.restored == ["small.txt"]
    blobs = sandbox.ml_intern_home / "snapshots" / "blobs"
    assert max(p.stat().st_size for p in blobs.rglob("*") if p.is_file()) < 2**20


async def test_undoing_the_first_turn_empties_the_thread_and_a_new_turn_starts_fresh(sandbox):
    async with open_agent(sandbox, ["hi", "hello again"]) as agent:
        await agent.send("hello")
        report = await agent.undo()
        assert (report.turns_undone, report.messages_removed) == (1, 2)
        assert await agent.session.messages(THREAD) == []
        assert thread_row(sandbox) == (0, "", 0)
        outcome = await agent.send("again")
        state = await agent.state()
    assert outcome.final_response == "hello again"
    assert transcript(agent.model.calls[-1]) == [("system", SYSTEM_PROMPT), ("human", "again")]
    assert transcript(state["messages"]) == [("human", "again"), ("ai", "hello again")]
    assert state["usage"]["calls"] == 1
    assert thread_row(sandbox)[:2] == (1, "again")


async def test_undo_while_a_call_waits_for_approval_drops_the_pending_turn(sandbox):
    script = [
        calls(("write", {"path": "one.txt", "content": "1\n"})),
        "one done",
        calls(("bash", {"command": "echo 2 > two.txt"})),
        calls(("bash", {"command": "sudo rm -rf /tmp/nothing"})),
        "after undo",
    ]
    config = {"bash": {"approval_patterns": ["sudo"]}}
    async with open_agent(sandbox, script, approval="ask", config=config) as agent:
        await agent.send("one")
        state_one = await agent.state()
        outcome = await agent.send("two")
        assert outcome.stop_reason == "approval_required" and (sandbox.workdir / "two.txt").exists()
        report = await agent.undo()
        snapshot = await agent.session.app.aget_state({"configurable": {"thread_id": THREAD}})
        assert (snapshot.next, snapshot.interrupts) == ((), ())
        assert transcript(snapshot.values["messages"]) == transcript(state_one["messages"])
        outcome = await agent.send("three")
    assert report.removed == ["two.txt"] and (sandbox.workdir / "one.txt").read_bytes() == b"1\n"
    assert outcome.final_response == "after undo"
    assert transcript(agent.model.calls[-1])[-2:] == [("ai", "one done"), ("human", "three")]


async def test_a_turn_after_undo_continues_from_the_rewound_state(sandbox):
    async with open_agent(sandbox, ["reply one", "reply two", "reply three", "reply four"]) as agent:
        await agent.send("one")
        usage_one = (await agent.state())["usage"]
        await agent.send("two")
        await agent.undo()
        assert (await agent.state())["usage"] == usage_one
        assert thread_turns(sandbox) == 1
        await agent.send("three")
        sent = transcript(agent.model.calls[-1])
        state = await agent.state()
        assert state["usage"]["calls"] == 2
        await agent.undo()
        assert transcript(await agent.session.messages(THREAD)) == [("human", "one"), ("ai", "reply one")]
        await agent.send("four")
    assert sent == [("system", SYSTEM_PROMPT), ("human", "one"), ("ai", "reply one"), ("human", "three")]
    assert transcript(state["messages"]) == [
        ("human", "one"),
        ("ai", "reply one"),
        ("human", "three"),
        ("ai", "reply three"),
    ]
    assert transcript(agent.model.calls[-1])[-2:] == [("ai", "reply one"), ("human", "four")]


async def test_guard_messages_do_not_count_as_user_turns(sandbox):
    async with open_agent(sandbox, ["reply one", "", "reply two"]) as agent:
        await agent.send("one")
        await agent.send("two")
        messages = await agent.session.messages(THREAD)
        assert [m.type for m in messages] == ["human", "ai", "human", "ai", "human", "ai"]  # a stall guard
        report = await agent.undo()
        assert transcript(await agent.session.messages(THREAD)) == [("human", "one"), ("ai", "reply one")]
    assert (report.turns_undone, report.messages_removed, report.prompts) == (1, 4, ["two"])


async def test_remote_side_effects_are_listed_with_their_urls(sandbox):
    with FakeHub(token="hf_test") as hub, FakeJobsHub() as jobs_hub:
        hub.add_repo("alice/tiny-model", files={"README.md": b"# Tiny\n"})
        hub_env = ToolEnv(sandbox.workdir, sandbox.ml_intern_home, hf_endpoint=hub.url, hf_token="hf_test")
        jobs_env = ToolEnv(
            sandbox.workdir,
            sandbox.ml_intern_home,
            config={"hf_jobs": {"poll_interval": 0.05}},
            hf_endpoint=jobs_hub.url,
            hf_token=jobs_hub.token,
        )
        remote = [
            *hub_repo.make_tools(hub_env),
            *hub_repo_git.make_tools(hub_env),
            *jobs.make_tools(jobs_env),
        ]
        repo = {"repo_id": "alice/tiny-model"}
        script = [
            calls(
                ("hf_repo_files", {"operation": "upload", "path": "notes.md", "content": "hi", **repo}),
                ("hf_repo_files", {"operation": "list", **repo}),
                ("hf_repo_git", {"operation": "create_branch", "branch": "exp", **repo}),
                ("hf_repo_git", {"operation": "delete_branch", "branch": "missing", **repo}),
                ("hf_jobs", {"operation": "run", "script": "print(1)", "wait": False}),
            ),
            "done",
        ]
        async with open_agent(sandbox, script, extra_tools=tuple(remote)) as agent:
            await agent.send("publish")
            report = await agent.undo()
    upload, branch, job = report.remote_effects
    assert upload.startswith("hf_repo_files upload alice/tiny-model notes.md: ")
    assert f"{hub.url}/alice/tiny-model/commit/" in upload
    assert branch == f"hf_repo_git create_branch alice/tiny-model exp: {hub.url}/alice/tiny-model/tree/exp"
    assert job.startswith("hf_jobs run: ") and f"{jobs_hub.url}/jobs/alice/" in job
    assert report.lines()[-4:] == [
        "Not undone (remote side effects):",
        f"  {upload}",
        f"  {branch}",
        f"  {job}",
    ]


async def test_report_event_is_json_and_names_the_type(sandbox):
    (sandbox.workdir / "a.txt").write_bytes(b"a\n")
    async with open_agent(sandbox, [calls(("bash", {"command": "echo b > a.txt"})), "ok"]) as agent:
        await agent.send("change a")
        report = await agent.undo()
    event = json.loads(json.dumps(report.event()))
    trash = Path(report.kept_aside)
    assert trash.parent == sandbox.ml_intern_home / "undo-trash" and (trash / "a.txt").read_bytes() == b"b\n"
    assert event == {
        "type": "undo_complete",
        "thread_id": THREAD,
        "turns_undone": 1,
        "messages_removed": 4,
        "restored": ["a.txt"],
        "removed": [],
        "not_restored": [],
        "remote_effects": [],
        "prompts": ["change a"],
        "kept_aside": str(trash),
        "kept": ["a.txt"],
    }
    assert report.lines() == [
        f"Undid 1 user turn of thread {THREAD} (4 messages removed).",
        "  rewound: change a",
        f"  restored: a.txt (what it held is kept in {shown(str(trash))}/a.txt)",
        f"What undo removed or replaced is kept 14 days in {shown(str(trash))}",
    ]


async def test_nothing_to_undo_and_bad_counts_are_user_errors(sandbox):
    async with open_agent(sandbox, []) as agent:
        with pytest.raises(NothingToUndo, match="nothing to undo in thread nope"):
            await undo_turns(agent.session, "nope")
        with pytest.raises(UserError, match="at least 1"):
            await undo_turns(agent.session, "nope", n=0)


def snapshot_blobs(sandbox: Any) -> list[Path]:
    root = sandbox.ml_intern_home / "snapshots" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file())


def age_snapshot_blobs(sandbox: Any) -> None:
    """Date the blobs an hour back: past the grace a prune gives blobs a scan elsewhere may be writing."""
    then = time.time() - 3600
    for path in snapshot_blobs(sandbox):
        os.utime(path, (then, then))


def write_store_as_before_compression(sandbox: Any) -> None:
    """Rewrite the snapshot store as versions before compression left it: file contents as they are under
    their sha, manifests as zlib'd JSON under the sha of those bytes (and the rows naming those)."""
    root = sandbox.ml_intern_home / "snapshots" / "blobs"
    for packed in root.rglob("*.z"):
        packed.with_suffix("").write_bytes(zlib.decompress(packed.read_bytes()))
        packed.unlink()
    with sqlite3.connect(sandbox.ml_intern_home / "checkpoints.sqlite") as conn:
        rows = "SELECT start_manifest, end_manifest FROM ml_intern_snapshots"
        for sha in {sha for row in conn.execute(rows).fetchall() for sha in row if sha}:
            current = root / sha[:2] / sha[2:]
            old = zlib.compress(current.read_bytes(), 1)
            old_sha = hashlib.sha256(old).hexdigest()
            (root / old_sha[:2]).mkdir(exist_ok=True)
            (root / old_sha[:2] / old_sha[2:]).write_bytes(old)
            current.unlink()
            for column in ("start_manifest", "end_manifest"):
                update = f"UPDATE ml_intern_snapshots SET {column} = ? WHERE {column} = ?"
                conn.execute(update, (old_sha, sha))


async def test_a_thread_snapshotted_before_compression_still_undoes_byte_for_byte(sandbox):
    seed_workdir(sandbox.workdir)
    before = tree(sandbox.workdir)
    async with open_agent(sandbox, TURN_ONE) as agent:
        await agent.send("one")
    write_store_as_before_compression(sandbox)
    assert not [p for p in snapshot_blobs(sandbox) if p.suffix == ".z"]
    async with open_agent(sandbox, []) as agent:
        report = await agent.undo()
    assert tree(sandbox.workdir) == before
    assert report.restored == ["data.bin", "doomed.txt", "model.py"] and report.not_restored == []


async def test_undoing_a_thread_away_prunes_its_snapshot_blobs(sandbox):
    seed_workdir(sandbox.workdir)
    async with open_agent(sandbox, TURN_ONE + TURN_TWO) as agent:
        await agent.send("one")
        await agent.send("two")
        age_snapshot_blobs(sandbox)
        two = hashlib.sha256(b"# notes\n").hexdigest()  # a before-state only turn two's call row needs
        assert [p for p in snapshot_blobs(sandbox) if p.name.startswith(two[2:])]
        await agent.undo()  # turn two can no longer be undone: what only it needed goes
        assert not [p for p in snapshot_blobs(sandbox) if p.name.startswith(two[2:])]
        assert snapshot_blobs(sandbox)
        await agent.undo()  # the thread is deleted: nothing of it is kept
        assert snapshot_blobs(sandbox) == []
