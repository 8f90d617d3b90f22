"""Undo-by-attribution scenarios, shared by tests/test_undo_attribution.py and bench/faults_undo.py: a
scripted model drives the real local tools in-process on a real SQLite file while "the user" (hooks run
before chosen model calls) and other threads change the same working directory; then one thread is undone.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field

from ml_intern.graph.context import RunContext
from ml_intern.model.ids import ModelSpec
from ml_intern.services import Services
from ml_intern.session.runner import TurnOutcome, new_turn
from ml_intern.session.session import Session, open_session
from ml_intern.session.undo import UndoReport
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.registry import build_tools
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import Sandbox

TOKEN = "hf_" + "Zq7" * 12  # token-shaped: a scan must never copy a file holding it
_ids = itertools.count(1)
# Undo must hold where bash cannot be confined (no user namespaces, macOS), and confinement hides .env and
# credential files from bash: the scenarios run bash unconfined, as a hostile or careless model would there.
UNCONFINED = {"bash": {"confine": "off"}}


def bash(*commands: str) -> AIMessage:
    """An assistant reply calling bash once per command (one batch)."""
    calls = [
        {"name": "bash", "args": {"command": c}, "id": f"u{next(_ids)}", "type": "tool_call"}
        for c in commands
    ]
    return AIMessage(content="", tool_calls=calls)


class UserActs(ScriptedChatModel):
    """A scripted model that first runs `hooks[n]` (what the user does meanwhile) before its n-th answer."""

    hooks: dict[int, Any] = Field(default_factory=dict)

    def _next_answer(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        if hook := self.hooks.get(len(self.calls) + 1):
            hook()
        return super()._next_answer(messages, kwargs)


@dataclass
class Agent:
    """One thread of a session on the lab's database."""

    session: Session
    ctx: RunContext
    thread: str
    events: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, prompt: str) -> TurnOutcome:
        return await self.session.turn(
            self.thread, new_turn(prompt), self.ctx, self.events.append, title=prompt
        )

    async def undo(self, n: int = 1) -> UndoReport:
        return await self.session.undo(self.thread, n)


@asynccontextmanager
async def open_agent(
    lab: Sandbox,
    script: list[Any],
    thread: str = "t1",
    hooks: dict[int, Callable[[], None]] | None = None,
    target: Path | str | None = None,  # the database: the lab's SQLite file unless a postgresql:// URL
) -> AsyncIterator[Agent]:
    model = UserActs(script, hooks=hooks or {})
    env = ToolEnv(workdir=lab.workdir, home=lab.ml_intern_home, config=UNCONFINED)
    services = Services(
        model=ModelSpec(model_id="test/scripted", litellm_model="test/scripted"),
        chat_model=model,
        tools=build_tools(env, ["bash", "read", "write", "edit"]),
        config=UNCONFINED,
        prompt="You are the test agent.",
    )
    ctx = RunContext(model="test/scripted", workdir=str(lab.workdir), approval="auto", services=services)
    target = target or lab.ml_intern_home / "checkpoints.sqlite"
    async with open_session(target, home=lab.ml_intern_home) as session:
        yield Agent(session, ctx, thread)


def put(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def age(path: Path, seconds: float = 3600) -> None:
    """Date a file back, as the user's files usually are."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def stored_bytes(lab: Sandbox) -> bytes:
    """Every blob of the snapshot store, decompressed, and the database, as one byte string to grep."""
    found = []
    for path in sorted((lab.ml_intern_home / "snapshots").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            with suppress(zlib.error):
                data = zlib.decompress(data) if path.suffix == ".z" else data
            found.append(data)
    return b"\n".join(found)


def trash_bytes(lab: Sandbox) -> bytes:
    """Every file undo moved aside (ML_INTERN_HOME/undo-trash), as one byte string to grep."""
    root = lab.ml_intern_home / "undo-trash"
    return b"\n".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def why(report: UndoReport) -> dict[str, str]:
    return dict(report.not_restored)


# ---- the scenarios: each returns what a test or the fault bench checks ------------------------------------


async def user_edits_between_calls(lab: Sandbox) -> dict[str, Any]:
    """While the model thinks between two calls, the user edits their file, creates one, edits the agent's."""
    put(lab.workdir, {"mine.txt": "mine v1\n", "shared.txt": "shared v1\n"})

    def user() -> None:
        put(lab.workdir, {"mine.txt": "mine v2\n", "new.txt": "user's new file\n", "agent1.txt": "user\n"})
        put(lab.workdir, {"shared.txt": "shared v2 (user)\n"})

    script = [
        bash("echo a > agent1.txt && echo a > agent_only.txt"),
        bash("echo b > agent2.txt && echo agent >> shared.txt"),
        "done",
    ]
    async with open_agent(lab, script, hooks={2: user}) as agent:
        await agent.send("work")
        report = await agent.undo()
    w = lab.workdir
    return {
        "mine": (w / "mine.txt").read_text(),
        "new": (w / "new.txt").read_text() if (w / "new.txt").exists() else None,
        "agent1": (w / "agent1.txt").read_text() if (w / "agent1.txt").exists() else None,
        "shared": (w / "shared.txt").read_text(),
        "agent_files_left": sorted(p.name for p in w.glob("agent*")),
        "report": report,
    }


async def two_threads_one_workdir(lab: Sandbox) -> dict[str, Any]:
    """Threads A and B work at once in one directory, C before them; undoing A leaves B's and C's files."""
    async with open_agent(lab, [bash("echo c > c.txt"), "c done"], thread="C") as c:
        await c.send("c")
    a_script = [bash("sleep 1; echo a > a.txt"), "a done"]
    b_script = [bash("sleep 0.2; echo b > b.txt; mkdir -p bdir && echo b > bdir/x"), "b done"]
    async with open_agent(lab, a_script, thread="A") as a, open_agent(lab, b_script, thread="B") as b:
        await asyncio.gather(a.send("a"), b.send("b"))
        report = await a.undo()
    w = lab.workdir
    return {"left": sorted(p.relative_to(w).as_posix() for p in w.rglob("*")), "report": report}


async def renames_of_uncopyable_files(lab: Sandbox) -> dict[str, Any]:
    """The agent renames .env, server.key and a file under venv/: undo must not delete the only copies."""
    originals = {".env": f"HF_TOKEN={TOKEN}\n", "server.key": "KEY MATERIAL\n", "venv/lib/x.py": "x = 1\n"}
    put(lab.workdir, originals)
    age(lab.workdir / "venv/lib/x.py")
    script = [bash("mv .env envcopy && mv server.key k2 && mv venv/lib/x.py moved_x.py"), "done"]
    async with open_agent(lab, script) as agent:
        await agent.send("rename")
        report = await agent.undo()
    w = lab.workdir
    copies = {
        name: (w / name).read_text() if (w / name).exists() else None
        for name in ("envcopy", "k2", "moved_x.py")
    }
    return {"copies": copies, "originals": originals, "report": report, "stored": stored_bytes(lab)}


async def symlink_swapped_for_a_directory(lab: Sandbox) -> dict[str, Any]:
    """The agent replaces data/ by a symlink out of the workdir; then the user swaps notes/ for one too."""
    outside = lab.root / "outside"
    put(outside, {"f.txt": "outside original\n", "n.txt": "outside note\n"})
    put(lab.workdir, {"data/f.txt": "data original\n", "notes/n.txt": "note v1\n"})
    script = [bash(f"echo agent > notes/n.txt && rm -rf data && ln -s {outside} data"), "done"]
    async with open_agent(lab, script) as agent:
        await agent.send("swap")
        (lab.workdir / "notes" / "n.txt").unlink()
        (lab.workdir / "notes").rmdir()
        (lab.workdir / "notes").symlink_to(outside)  # the user's own swap, after the turn
        report = await agent.undo()
    w = lab.workdir
    return {
        "outside": sorted((p.name, p.read_text()) for p in outside.iterdir()),
        "data_is_dir": (w / "data").is_dir() and not (w / "data").is_symlink(),
        "data_f": (w / "data" / "f.txt").read_text() if (w / "data" / "f.txt").exists() else None,
        "notes_is_link": (w / "notes").is_symlink(),
        "report": report,
    }


async def secrets_written_by_the_agent(lab: Sandbox) -> dict[str, Any]:
    """`env > envdump.txt` (with the token in it), then more calls and a second turn: nothing stores it."""
    put(lab.workdir, {"config.py": f"token = '{TOKEN}'\n"})  # the user's file holding a secret
    script = [
        bash(f"printf 'HF_TOKEN=%s\\n' {TOKEN} > envdump.txt && env >> envdump.txt"),
        bash("echo more > more.txt && echo '# edited' >> config.py"),
        "one done",
        bash("echo again >> more.txt"),
        "two done",
    ]
    async with open_agent(lab, script) as agent:
        await agent.send("dump")
        await agent.send("again")
        first = await agent.undo()
        second = await agent.undo()
    w = lab.workdir
    return {
        "stored": stored_bytes(lab),
        "trash": trash_bytes(lab),
        "envdump_left": (w / "envdump.txt").exists(),
        "config": (w / "config.py").read_text(),
        "reports": (first, second),
    }


CREDENTIALS = {
    ".ssh/id_rsa": "RSA-PRIVATE-MARKER\n",
    ".aws/credentials": "AWS-MARKER\n",
    ".cache/huggingface/token": "HF-CACHE-MARKER\n",
    ".netrc": "NETRC-MARKER\n",
    ".envrc": "ENVRC-MARKER\n",
    "secrets.json": '{"k": "JSON-MARKER"}\n',
}


async def credential_files_edited(lab: Sandbox) -> dict[str, Any]:
    """The agent appends to credential files: none is ever copied; undo lists each, changes nothing."""
    put(lab.workdir, CREDENTIALS)
    appends = " && ".join(f"echo changed >> {rel}" for rel in CREDENTIALS)
    async with open_agent(lab, [bash("true"), bash(appends), "done"]) as agent:
        await agent.send("touch credentials")
        report = await agent.undo()
    stored = stored_bytes(lab)
    return {
        "copied": [rel for rel, text in CREDENTIALS.items() if text.strip().encode() in stored],
        "report": report,
        "contents": {rel: (lab.workdir / rel).read_text() for rel in CREDENTIALS},
    }


async def agent_create_edit_delete(lab: Sandbox) -> dict[str, Any]:
    """The agent's own create, edit, delete and chmod: put back byte for byte."""
    put(lab.workdir, {"a.txt": "a\n", "gone.txt": "gone\n", "sub/b.txt": "b\n"})
    before = {
        p.relative_to(lab.workdir).as_posix(): p.read_bytes() for p in lab.workdir.rglob("*") if p.is_file()
    }
    script = [
        bash("echo x >> a.txt && rm gone.txt && mkdir -p made/deep && echo n > made/deep/n.txt"),
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "write",
                    "args": {"path": "w/new.txt", "content": "w\n"},
                    "id": "w1",
                    "type": "tool_call",
                }
            ],
        ),
        bash("rm -r sub && chmod +x a.txt"),
        "done",
    ]
    async with open_agent(lab, script) as agent:
        await agent.send("work")
        report = await agent.undo()
    after = {
        p.relative_to(lab.workdir).as_posix(): p.read_bytes() for p in lab.workdir.rglob("*") if p.is_file()
    }
    mode = (lab.workdir / "a.txt").stat().st_mode & 0o777
    return {
        "same": before == after,
        "dirs": sorted(p.name for p in lab.workdir.iterdir()),
        "mode": mode,
        "report": report,
    }
