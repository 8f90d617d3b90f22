"""A `.env` is a file anyone can plant (a cloned repo, another user of a shared machine): it may not say
where the HF token or a provider key goes, and only files the current user owns count (security review A1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml_intern.configs.loader import load_config
from ml_intern.configs.sources import project_root, read_dotenv
from tests.fakes.router_server import RouterServer
from tests.harness import Sandbox
from tests.harness_cli import Workspace

TOKEN = "hf_dotenvtrust0001"
ENDPOINTS = ["HF_ENDPOINT", "HF_ROUTER_URL", "HF_HOME", "HF_TOKEN_PATH", "ANTHROPIC_API_BASE"]
ENDPOINTS += ["OPENAI_BASE_URL", "LOCAL_LLM_BASE_URL", "AZURE_API_BASE", "OLLAMA_API_BASE", "GITHUB_API_URL"]
ENDPOINTS += ["HF_DATASETS_SERVER_URL", "CLAWD_WEB_SEARCH_BASE_URL", "AWS_ENDPOINT_URL"]


def project(root: Path) -> Path:
    """A git repository at `root` with a `sub` directory to work in."""
    (root / ".git").mkdir(parents=True)
    (root / "sub").mkdir()
    return root / "sub"


@pytest.mark.parametrize("key", ENDPOINTS)
def test_dotenv_cannot_say_where_credentials_go(sandbox: Sandbox, key: str) -> None:
    (sandbox.workdir / ".env").write_text(f"{key}=http://evil.example\nHF_TOKEN={TOKEN}\n")
    env = read_dotenv(sandbox.workdir, {})[0]
    assert key not in env and env["HF_TOKEN"] == TOKEN  # HF_TOKEN in .env is a normal habit: kept
    environ = {name: value for name, value in os.environ.items() if name != key}
    warnings = load_config(sandbox.workdir, environ).warnings
    assert f"ignored {key} from .env: set it in your shell or config" in warnings


def test_the_project_roots_dotenv_is_read_when_we_own_it(sandbox: Sandbox) -> None:
    work = project(sandbox.workdir / "repo")
    (sandbox.workdir / "repo" / ".env").write_text("SOME_KEY=from-root\n")
    assert read_dotenv(work, {"HOME": str(sandbox.home)})[0]["SOME_KEY"] == "from-root"


def test_dotenv_files_another_user_owns_are_skipped(sandbox: Sandbox) -> None:
    work = project(sandbox.workdir / "repo")
    (sandbox.workdir / "repo" / ".env").write_text("SOME_KEY=from-root\n")
    (work / ".env").write_text("OTHER_KEY=from-cwd\n")
    someone_else = os.geteuid() + 1  # every file here is ours: seen from another uid, none is
    env, paths = read_dotenv(work, {"HOME": str(sandbox.home)}, owner=someone_else)
    assert paths == [] and "SOME_KEY" not in env and "OTHER_KEY" not in env
    assert project_root(work, {"HOME": str(sandbox.home)}, owner=someone_else) is None
    warnings = load_config(work, dict(os.environ), owner=someone_else).warnings
    assert f"ignored {work.resolve() / '.env'}: another user owns it" in warnings


def test_the_project_root_is_not_looked_for_above_home(sandbox: Sandbox) -> None:
    home = sandbox.workdir / "users" / "me"
    work = home / "notes"
    work.mkdir(parents=True)
    (sandbox.workdir / "users" / ".git").mkdir()  # above $HOME: someone else's business
    (sandbox.workdir / "users" / ".env").write_text("SOME_KEY=planted\n")
    assert project_root(work, {"HOME": str(home)}) is None
    assert "SOME_KEY" not in read_dotenv(work, {"HOME": str(home)})[0]
    (home / ".git").mkdir()  # $HOME itself may be the repository
    assert project_root(work, {"HOME": str(home)}) == home.resolve()


@pytest.mark.e2e
def test_a_planted_router_url_never_receives_the_token(sandbox: Sandbox, llm_server) -> None:
    workspace = Workspace.create(sandbox.root / "ws", llm_server.url)
    for name in ("HF_ROUTER_URL", "HF_ENDPOINT"):  # unset: the `.env` is the only one to say
        workspace.env.pop(name)
    with RouterServer() as capture:
        (workspace.workdir / ".git").mkdir()
        lines = [f"HF_TOKEN={TOKEN}", f"HF_ROUTER_URL={capture.base_url}", f"HF_ENDPOINT={capture.url}"]
        (workspace.workdir / ".env").write_text("\n".join(lines) + "\n")
        done = workspace.run("-m", "moonshotai/Kimi-K2.6:novita", "hi", timeout=120)
        assert capture.requests == [], [r.path for r in capture.requests]
    assert "ignored HF_ROUTER_URL from .env" in done.stderr
    assert "ignored HF_ENDPOINT from .env" in done.stderr
