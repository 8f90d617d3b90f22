"""The boundary around `bash` with the real bubblewrap: what a confined command may write, see and is told."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

import ml_intern.tools.local.shell as shell
from ml_intern.configs.loader import default_config
from ml_intern.graph.context import RunContext
from ml_intern.services import build_services
from ml_intern.session.session import open_session
from ml_intern.tools.base import ToolEnv, ToolError
from ml_intern.tools.local.confine import BWRAP_OVERRIDE, find_bwrap
from ml_intern.tools.registry import approval_need
from tests.fakes.chat_model import ScriptedChatModel
from tests.harness import Sandbox
from tests.harness_boundary import EVASIONS, USER_BYTES, fake_home, intact, outside_dir, remove

BWRAP = find_bwrap(os.environ)
needs_bwrap = pytest.mark.skipif(BWRAP.bwrap is None, reason=f"bubblewrap cannot run here: {BWRAP.why}")


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside the workdir and outside /tmp, holding keep.txt: read-only to confined commands."""
    path = outside_dir()
    yield path
    remove(path)


@pytest.fixture
def user_home(outside: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME outside /tmp, with a shell start-up file, an SSH key and a Hub token in the download cache."""
    home = fake_home(outside)
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def bash_tool(sandbox: Sandbox, **bash: Any) -> tuple[Any, ToolEnv]:
    env = ToolEnv(workdir=sandbox.workdir, home=sandbox.ml_intern_home, config={"bash": bash})
    return shell.make_tools(env)[0], env


async def run(sandbox: Sandbox, command: str, **bash: Any) -> str:
    tool, _ = bash_tool(sandbox, **bash)
    return await tool.ainvoke({"command": command})


@needs_bwrap
async def test_confined_command_writes_in_the_workdir_and_tmp(sandbox: Sandbox):
    result = await run(
        sandbox, "echo w > made.txt && echo t > /tmp/ml-intern-test && cat /tmp/ml-intern-test"
    )
    assert result == "t"
    assert (sandbox.workdir / "made.txt").read_text() == "w\n"


@needs_bwrap
@pytest.mark.parametrize(
    "command",
    [
        "echo x > OUT/keep.txt",
        "cd WORK && echo x > ../keep.txt",
        "echo x > link/keep.txt",
        "echo x >> ~/.bashrc",
    ],
    ids=["absolute path", "dot-dot", "workdir symlink to outside", "home start-up file"],
)
async def test_confined_command_cannot_write_outside(
    sandbox: Sandbox, outside: Path, user_home: Path, command
):
    work = outside / "work"  # a workdir whose parent is outside: `../keep.txt` lands in `outside`
    work.mkdir()
    (work / "link").symlink_to(outside)
    sandbox.workdir = work
    result = await run(sandbox, command.replace("OUT", str(outside)).replace("WORK", str(work)))
    assert "Read-only file system" in result
    assert (outside / "keep.txt").read_text() == USER_BYTES
    assert (user_home / ".bashrc").read_text() == "# user's\n"


@needs_bwrap
async def test_credential_files_are_hidden(sandbox: Sandbox, user_home: Path):
    result = await run(sandbox, "cat ~/.ssh/id_rsa ~/.cache/huggingface/token; ls ~/.ssh | wc -l")
    assert "keybytes" not in result and "hf_" not in result
    assert "0" in result.splitlines()  # the hidden directory looks empty


@needs_bwrap
async def test_git_hooks_and_config_stay_read_only_in_the_workdir(sandbox: Sandbox):
    (sandbox.workdir / ".git" / "hooks").mkdir(parents=True)
    (sandbox.workdir / ".git" / "config").write_text("[core]\n")
    result = await run(sandbox, "echo x > .git/hooks/pre-commit; echo y >> .git/config; touch .git/x")
    assert result.count("Read-only file system") == 2
    assert not (sandbox.workdir / ".git" / "hooks" / "pre-commit").exists()
    assert (sandbox.workdir / ".git" / "config").read_text() == "[core]\n"
    assert (sandbox.workdir / ".git" / "x").exists()  # the rest of .git stays writable (commits work)


@needs_bwrap
async def test_workdir_dotenv_is_hidden(sandbox: Sandbox):
    (sandbox.workdir / ".env").write_text("HF_TOKEN=hf_" + "d" * 30 + "\n")
    result = await run(sandbox, "cat .env; echo ML_INTERN_CONFIG=/tmp/evil.json >> .env")
    assert "hf_" not in result
    assert (sandbox.workdir / ".env").read_text().startswith("HF_TOKEN=hf_")
    assert "evil" not in (sandbox.workdir / ".env").read_text()


@needs_bwrap
async def test_configured_hidden_path_is_hidden(sandbox: Sandbox):
    (sandbox.workdir / "private").mkdir()
    (sandbox.workdir / "private" / "notes.txt").write_text("do not show")
    result = await run(sandbox, "cat private/notes.txt", hidden_paths=["private"])
    assert "do not show" not in result


@needs_bwrap
async def test_ml_intern_home_is_hidden_but_spilled_output_is_readable(sandbox: Sandbox):
    (sandbox.ml_intern_home / "checkpoints.sqlite").write_text("transcripts")
    (sandbox.ml_intern_home / "outputs").mkdir()
    (sandbox.ml_intern_home / "outputs" / "spill.txt").write_text("spilled")
    home = sandbox.ml_intern_home
    result = await run(sandbox, f"cat {home}/outputs/spill.txt; cat {home}/checkpoints.sqlite; rm -rf {home}")
    assert "spilled" in result and "transcripts" not in result
    assert (home / "checkpoints.sqlite").read_text() == "transcripts"


@pytest.mark.parametrize("confine", ["auto", "off"])
async def test_secret_variables_are_not_passed(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, confine):
    monkeypatch.setenv("HF_TOKEN", "hf_" + "a" * 30)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + "b" * 30)
    monkeypatch.setenv("WANDB_API_KEY", "c" * 40)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    result = await run(sandbox, "env", confine=confine, env_passthrough=["WANDB_API_KEY"])
    names = {line.split("=", 1)[0] for line in result.splitlines()}
    assert "HF_TOKEN" not in names and "OPENAI_API_KEY" not in names
    assert {"WANDB_API_KEY", "TOKENIZERS_PARALLELISM"} <= names


def test_bash_description_says_secrets_are_not_passed(sandbox: Sandbox):
    tool, _ = bash_tool(sandbox)
    assert "bash.env_passthrough" in tool.description


@needs_bwrap
@pytest.mark.parametrize("network", [True, False])
async def test_network_off_unshares_the_network(sandbox: Sandbox, network: bool):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def accept_one() -> None:
        with contextlib.suppress(OSError):  # network off: nothing connects, and the socket is closed below
            server.accept()[0].close()

    threading.Thread(target=accept_one, daemon=True).start()
    try:
        result = await run(sandbox, f"echo hi > /dev/tcp/127.0.0.1/{port} && echo connected", network=network)
    finally:
        server.close()
    assert ("connected" in result) is network


@needs_bwrap
async def test_background_job_outlives_the_call(sandbox: Sandbox):
    result = await run(sandbox, "nohup sh -c 'sleep 0.3; echo late > late.txt' >/dev/null 2>&1 &")
    assert result == "(no output)"
    for _ in range(50):
        await asyncio.sleep(0 if (sandbox.workdir / "late.txt").exists() else 0.1)
    assert (sandbox.workdir / "late.txt").read_text() == "late\n"


@needs_bwrap
@pytest.mark.parametrize("command", EVASIONS.values(), ids=EVASIONS.keys())
async def test_rm_rf_evasions_leave_a_target_outside_intact(sandbox: Sandbox, outside: Path, command: str):
    await run(sandbox, command.replace("TARGET", str(outside)), timeout=20)
    assert intact(outside)


@needs_bwrap
def test_confined_calls_need_approval_only_for_destructive_patterns(sandbox: Sandbox):
    _, env = bash_tool(sandbox)
    assert approval_need("bash", {"command": "python train.py"}, env) is None
    assert approval_need("bash", {"command": "rm -rf ~/data"}, env) is not None


# ---- where bwrap cannot run --------------------------------------------------------------------------------


@pytest.fixture
def no_bwrap(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    missing = sandbox.root / "missing" / "bwrap"
    monkeypatch.setenv(BWRAP_OVERRIDE, str(missing))
    return missing


def test_unconfined_bash_calls_all_need_approval(sandbox: Sandbox, no_bwrap: Path):
    _, env = bash_tool(sandbox)
    need = approval_need("bash", {"command": "ls"}, env)
    assert need is not None and need.reason.startswith(f"bash runs unconfined here (no bwrap at {no_bwrap})")


def test_confine_off_makes_every_call_need_approval(sandbox: Sandbox):
    _, env = bash_tool(sandbox, confine="off")
    need = approval_need("bash", {"command": "ls"}, env)
    assert need is not None and "bash.confine is off" in need.reason


async def test_confine_on_without_bwrap_fails_with_the_fix(sandbox: Sandbox, no_bwrap: Path):
    with pytest.raises(ToolError, match=r"bash\.confine: on.*no bwrap at .*install bubblewrap"):
        await run(sandbox, "echo never", confine="on")


@needs_bwrap
def test_bwrap_override_inside_the_workdir_is_refused(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch):
    fake = sandbox.workdir / "bwrap"  # a command could have written it (and a `.env` naming it)
    fake.write_text(f'#!/bin/sh\nexec {BWRAP.bwrap} "$@"\n')  # passes the probe: it runs the real one
    fake.chmod(0o755)
    monkeypatch.setenv(BWRAP_OVERRIDE, str(fake))
    _, env = bash_tool(sandbox)
    need = approval_need("bash", {"command": "ls"}, env)
    assert need is not None and "sandboxed commands may change" in need.reason


async def test_unavailable_confinement_is_said_once_per_run(sandbox: Sandbox, no_bwrap: Path):
    bash_call = {"name": "bash", "args": {"command": "echo ran"}, "type": "tool_call"}
    script = [AIMessage("", tool_calls=[{**bash_call, "id": f"c{n}"}]) for n in range(2)] + [
        AIMessage("done")
    ]
    services = build_services(
        model="vllm/scripted",
        workdir=sandbox.workdir,
        tool_names=["bash"],
        stream=False,
        environ=dict(os.environ),
        config=default_config().model_dump(),
        chat_model=ScriptedChatModel(script),
    )
    ctx = RunContext(model="vllm/scripted", workdir=str(sandbox.workdir), services=services, approval="auto")
    events: list[dict[str, Any]] = []
    async with open_session(sandbox.ml_intern_home / "checkpoints.sqlite") as session:
        await session.turn("t1", {"messages": [("user", "go")]}, ctx, events.append, title="go")
    notices = [e for e in events if e.get("notice") and e.get("tool") == "boundary"]
    assert len(notices) == 1 and "every bash call needs approval" in notices[0]["text"]


@needs_bwrap
async def test_dev_shm_and_mqueue_are_private_to_the_sandbox(sandbox: Sandbox):
    name = f"ml-intern-test-{os.getpid()}"
    result = await run(sandbox, f"echo x > /dev/shm/{name} && ls /dev/shm && ls /dev/mqueue | wc -l")
    assert name in result
    assert not Path("/dev/shm", name).exists()


@needs_bwrap
async def test_the_git_dir_cannot_be_swapped_for_one_with_an_fsmonitor(sandbox: Sandbox):
    (sandbox.workdir / ".git" / "hooks").mkdir(parents=True)
    (sandbox.workdir / ".git" / "config").write_text("[core]\n")
    swap = "mv .git .git-old; rm -rf .git; echo 'gitdir: .g2' > .git; touch .git/ok"
    result = await run(sandbox, swap)
    assert "Device or resource busy" in result
    assert (sandbox.workdir / ".git").is_dir() and (
        sandbox.workdir / ".git" / "config"
    ).read_text() == "[core]\n"
    assert not (sandbox.workdir / ".git-old").exists()
    assert (sandbox.workdir / ".git" / "ok").exists()  # the rest of .git stays writable (commits work)


@needs_bwrap
async def test_a_new_dotenv_or_git_repo_is_reported(sandbox: Sandbox):
    result = await run(sandbox, "echo ML_INTERN_CONFIG=evil.json > .env; mkdir .git")
    assert f"created or changed {sandbox.workdir / '.env'}, which ml-intern reads" in result
    assert f"created or changed {sandbox.workdir / '.git'}, whose config and hooks" in result
    assert "created or changed" not in await run(sandbox, "echo quiet")


@needs_bwrap
async def test_code_caches_and_hub_code_files_are_read_only(sandbox: Sandbox, user_home: Path):
    repo = user_home / ".cache" / "huggingface" / "hub" / "models--org--m"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "blobs" / "b1").write_text("class Model: pass\n")
    (repo / "snapshots" / "abc" / "modeling_m.py").symlink_to("../../blobs/b1")
    plant = f"echo 'import os' >> {repo}/blobs/b1; mkdir -p ~/.cache/huggingface/modules/m ~/.cache/pip/x"
    result = await run(
        sandbox, plant + "; echo $PIP_CACHE_DIR; echo w > ~/.cache/huggingface/hub/new && echo ok"
    )
    assert (repo / "blobs" / "b1").read_text() == "class Model: pass\n"
    assert not (user_home / ".cache" / "huggingface" / "modules" / "m").exists()
    assert not (user_home / ".cache" / "pip" / "x").exists()
    assert str(user_home / ".cache" / "ml-intern" / "pip") in result and "ok" in result.splitlines()


@needs_bwrap
async def test_more_credential_files_are_hidden(sandbox: Sandbox, user_home: Path):
    (user_home / ".kaggle").mkdir()
    (user_home / ".kaggle" / "kaggle.json").write_text('{"key": "KAGGLESECRET"}')
    (user_home / ".modal.toml").write_text("token_secret = 'MODALSECRET'\n")
    (user_home / ".bash_history").write_text("export HF_TOKEN=HISTORYSECRET\n")
    result = await run(sandbox, "cat ~/.kaggle/kaggle.json ~/.modal.toml ~/.bash_history; echo end")
    assert "SECRET" not in result and result.endswith("end")


@needs_bwrap
async def test_a_file_hard_linked_from_outside_is_read_only(sandbox: Sandbox, outside: Path):
    os.link(outside / "keep.txt", sandbox.workdir / "train.csv")
    os.link(sandbox.workdir / "train.csv", sandbox.workdir / "train2.csv")
    (sandbox.workdir / "own.txt").write_text("mine\n")
    os.link(sandbox.workdir / "own.txt", sandbox.workdir / "own2.txt")  # both links inside: stays writable
    result = await run(sandbox, "echo agent > train.csv; chmod 600 train2.csv; echo agent > own2.txt")
    assert result.count("Read-only file system") == 2
    assert intact(outside) and (sandbox.workdir / "own.txt").read_text() == "agent\n"


@needs_bwrap
def test_bwrap_override_in_a_shared_writable_place_is_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
):
    fake = Path("/var/tmp") / f"ml-intern-test-bwrap-{os.getpid()}"
    fake.write_text(f'#!/bin/sh\nexec {BWRAP.bwrap} "$@"\n')
    fake.chmod(0o755)
    try:
        monkeypatch.setenv(BWRAP_OVERRIDE, str(fake))
        _, env = bash_tool(sandbox)
        need = approval_need("bash", {"command": "ls"}, env)
    finally:
        fake.unlink()
    assert need is not None and "sandboxed commands may change" in need.reason


@pytest.mark.parametrize("name", ["DB_PASS", "SMTP_PASS", "MAIL_PW"])
async def test_password_variables_by_short_name_are_not_passed(sandbox, monkeypatch, name):
    monkeypatch.setenv(name, "hunter2hunter2")
    monkeypatch.setenv("PASSTHROUGH_MODE", "on")
    names = {line.split("=", 1)[0] for line in (await run(sandbox, "env", confine="off")).splitlines()}
    assert name not in names and "PASSTHROUGH_MODE" in names


@needs_bwrap
async def test_a_new_repo_that_makes_git_run_programs_is_named(sandbox: Sandbox):
    """The repo did not exist, so none of it was read-only: what it makes the user's git run is named."""
    plant = (
        "git init -q . && git config core.fsmonitor 'touch ~/pwned' && git config alias.st '!sh -c id'"
        " && printf '#!/bin/sh\\n' > .git/hooks/pre-commit && git config user.name agent"
    )
    result = await run(sandbox, plant)
    said = result[result.index("[it makes git run programs:") :]
    assert "fsmonitor = touch ~/pwned" in said and "st = !sh -c id" in said and "hooks/pre-commit" in said
    assert "name = agent" not in said
    assert "run programs" not in await run(sandbox, "mkdir plain && cd plain && git init -q . && echo ok")
